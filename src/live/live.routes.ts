import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { readToken } from "../http/auth.ts";
import { forbidden } from "../http/errors.ts";
import { createRouter, errorResponses } from "../http/openapi.ts";
import type { LiveHub, LiveSink } from "./live-hub.ts";
import { sseText } from "./live-hub.ts";

// Transport: server-sent events on an ordinary authenticated GET. The alternative, instance
// topics on the MQTT-over-WebSocket channel, would need a topic per visibility audience and
// per user (and the broker's ACL to grant them), or the broker filtering every publish per
// subscriber; here the session's principal is resolved once, like any REST call, and the
// hub filters each message with the same canSee() rule the REST lists use. The SPA reads
// the stream with fetch (EventSource cannot send the x-auth-token header).

/** Writes a session may have in flight before it counts as stalled and is dropped. */
const MAX_PENDING = 500;
const KEEPALIVE_MS = 25_000;

export function liveRoutes(deps: { live: LiveHub }) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["live"],
      summary:
        "Server-sent events: repos, units (online, last seen, update status), variables and links the caller may see, as they change. Variable values are not here (MQTT over WebSocket at /mqtt)",
      responses: {
        200: {
          description:
            "text/event-stream. Events: hello; unit / repo {uuid} (created or changed: read it again), unit-removed / repo-removed {uuid}; unit-state {uuid, is_online?, last_seen_datetime?, last_state?, current_commit?, update_status?, update_error?}; link {link} (a UnitNodeEdge), link-removed {uuid}",
          content: { "text/event-stream": { schema: z.string() } },
        },
        ...errorResponses(401, 403),
      },
    }),
    (c) => {
      const principal = c.get("principal");
      if (principal.kind === "unit") throw forbidden("the live channel is for users, not units");
      const token = readToken(c.req.raw.headers);
      // A reverse proxy (nginx) would otherwise hold messages back to fill its buffer.
      c.header("X-Accel-Buffering", "no");
      return streamSSE(c, async (stream) => {
        let pending = 0;
        let done = () => {};
        const ended = new Promise<void>((resolve) => {
          done = resolve;
        });
        const sink: LiveSink = {
          write(text) {
            if (stream.aborted || pending >= MAX_PENDING) return false;
            pending++;
            void stream.write(text).then(() => pending--);
            return true;
          },
          close: () => done(),
        };
        stream.onAbort(() => done());
        const leave = deps.live.open(principal, token, sink);
        sink.write(sseText("hello", { anonymous: principal.kind === "anonymous" }));
        const beat = setInterval(() => {
          if (!sink.write(": keep-alive\n\n")) done();
        }, KEEPALIVE_MS);
        try {
          await ended;
        } finally {
          clearInterval(beat);
          leave();
        }
      });
    },
  );
  return app;
}
