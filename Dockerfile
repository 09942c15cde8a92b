# syntax=docker/dockerfile:1
# Pepeunit: one container, the whole instance (HTTP + web UI + MQTT broker + workers).
# Data and repository clones live in one volume, /var/lib/pepeunit.
#   docker build -t pepeunit .
#   docker run -d --init -p 8080:8080 -p 1883:1883 -v pepeunit:/var/lib/pepeunit pepeunit
# test/deploy/deploy.test.ts checks these commands against the README and .ci/run.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# The graph UI (web/dist) and the server's JavaScript (build/) are built here, so `npm start`
# (its prestart) finds both up to date and skips the build; TypeScript is pruned after.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# git: the instance clones and fetches unit repositories with it.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --home-dir /var/lib/pepeunit --shell /usr/sbin/nologin pepeunit \
  && mkdir -p /var/lib/pepeunit \
  && chown pepeunit:pepeunit /var/lib/pepeunit \
  && chmod 0700 /var/lib/pepeunit
WORKDIR /app
# The code stays root's: the instance only writes to its volume.
COPY --from=build /app /app
ENV NODE_ENV=production \
  HOME=/var/lib/pepeunit \
  PEPEUNIT_HTTP_HOST=0.0.0.0 \
  PEPEUNIT_HTTP_PORT=8080 \
  PEPEUNIT_MQTT_PORT=1883 \
  PEPEUNIT_DATA_DIR=/var/lib/pepeunit/data \
  PEPEUNIT_REPOSITORIES_DIR=/var/lib/pepeunit/repositories
USER pepeunit
VOLUME ["/var/lib/pepeunit"]
# HTTP (web UI, API, MQTT over WebSocket at /mqtt), MQTT, MQTT over TLS (with PEPEUNIT_TLS_*).
EXPOSE 8080 1883 8883
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PEPEUNIT_HTTP_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["npm", "start"]
