import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createRouter, errorResponses, UuidParam } from "../http/openapi.ts";
import type { AppDeps, AppEnv } from "../http/types.ts";
import { createSemaphore } from "../semaphore.ts";
import { loadUnitArtifacts } from "../units/unit-artifacts.ts";
import { findUnit } from "../units/units.store.ts";
import { createArchiveBuilder } from "./archive-builder.ts";
import {
  type CompressionFormat,
  DEFAULT_LEVEL,
  DEFAULT_WBITS,
  isValidLevel,
  isValidWbits,
  parseCompression,
} from "./compression.ts";

// Firmware downloads (device-protocol §6). Devices read these with small HTTP
// clients: every response has a Content-Length, is never chunked and never carries
// Content-Encoding (the tgz is the payload, not a transfer encoding). The devices'
// "tgz" is a zlib stream by default, which tar -xzf cannot open: people get a real
// gzip from tar.gz, and each download's file name says which one it is.

const tags = ["firmware"];
const security = [{ token: [] }];

const TgzQuery = z.object({
  wbits: z.coerce
    .number()
    .refine(isValidWbits, "wbits must be 9..15 (zlib), 25..31 (gzip) or -15..-9 (raw deflate)")
    .default(DEFAULT_WBITS)
    .openapi({ param: { name: "wbits", in: "query" }, example: DEFAULT_WBITS }),
  level: z.coerce
    .number()
    .refine(isValidLevel, "level must be -1..9")
    .default(DEFAULT_LEVEL)
    .openapi({ param: { name: "level", in: "query" }, example: DEFAULT_LEVEL }),
});

const binary = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: z.string().openapi({ type: "string", format: "binary" }) } },
});

type ArchiveKind = "tgz" | "tar.gz" | "tar" | "zip";

const CONTENT_TYPES: Record<ArchiveKind, string> = {
  tgz: "application/octet-stream",
  "tar.gz": "application/gzip",
  tar: "application/octet-stream",
  zip: "application/zip",
};

function archiveRoute(kind: ArchiveKind, summary: string, description?: string) {
  return {
    method: "get" as const,
    path: `/firmware/${kind}/{uuid}`,
    tags,
    security,
    summary,
    description,
    responses: {
      200: binary(CONTENT_TYPES[kind], `The unit's firmware as ${kind}`),
      ...errorResponses(401, 404, 422),
    },
  };
}

const tgzRoute = createRoute({
  ...archiveRoute(
    "tgz",
    "Firmware for devices' OTA: a tar in a zlib stream (wbits 9) by default, not gzip",
    "What the device clients download and inflate (MicroPython's deflate with a 512-byte " +
      "window). wbits 9..15 give zlib, 25..31 gzip and -15..-9 raw deflate; the file name " +
      "says which (.tar.zlib, .tar.gz, .tar.deflate). For a .tar.gz that tar -xzf opens, " +
      "use /firmware/tar.gz/{uuid}.",
  ),
  request: { params: UuidParam, query: TgzQuery },
});
const tarGzRoute = createRoute({
  ...archiveRoute(
    "tar.gz",
    "Firmware as a gzip-compressed tar (.tar.gz) for people: tar -xzf opens it",
  ),
  request: { params: UuidParam },
});
const tarRoute = createRoute({
  ...archiveRoute("tar", "Firmware as an uncompressed ustar archive"),
  request: { params: UuidParam },
});
const zipRoute = createRoute({
  ...archiveRoute("zip", "Firmware as a zip archive"),
  request: { params: UuidParam },
});

/** The download's extension after ".tar.": what the stream really is. */
const EXTENSIONS: Record<CompressionFormat, string> = { zlib: "zlib", gzip: "gz", raw: "deflate" };
/** gzip around a 32 KiB window: what gunzip and tar -z expect. */
const GZIP_WBITS = 31;

/** A file name safe inside a quoted header value, on any OS. */
function downloadName(name: string | undefined, uuid: string, ext: string): string {
  const safe = (name ?? "").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "");
  return `${safe || uuid}.${ext}`;
}

export function firmwareRoutes(deps: AppDeps) {
  // One builder per app, so its version cache serves every request (a mass update).
  const builder = createArchiveBuilder({
    git: deps.git,
    maxFirmwareBytes: deps.config.maxFirmwareSizeBytes,
  });
  const app = createRouter();

  // A zip is a whole new buffer per download: at most this many exist at once,
  // each held until it has been sent (the others wait), so memory stays bounded.
  const zipSlots = createSemaphore(2);

  /**
   * Sends the archive's parts as they are (the cached version buffers are not
   * copied), always with Content-Length: device clients need it, never chunked.
   */
  async function send(
    c: Context<AppEnv>,
    uuid: string,
    ext: string,
    type: string,
    parts: Buffer[],
    onSent: () => void = () => {},
  ) {
    const unit = await findUnit(deps.database.db, uuid);
    const length = parts.reduce((n, p) => n + p.length, 0);
    let next = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const part = parts[next++];
        if (part) controller.enqueue(new Uint8Array(part.buffer, part.byteOffset, part.length));
        if (next >= parts.length) {
          controller.close();
          onSent();
        }
      },
      cancel: onSent,
    });
    return c.body(body, 200, {
      "Content-Type": type,
      "Content-Length": String(length),
      "Content-Disposition": `attachment; filename="${downloadName(unit?.name, uuid, ext)}"`,
      "Cache-Control": "no-store",
    });
  }

  app.openapi(tgzRoute, async (c) => {
    const { uuid } = c.req.valid("param");
    const { wbits, level } = c.req.valid("query");
    const compression = parseCompression(wbits, level);
    const unit = await loadUnitArtifacts(deps, c.get("principal"), uuid);
    const parts = await builder.tgzParts(unit, compression);
    return send(c, uuid, `tar.${EXTENSIONS[compression.format]}`, CONTENT_TYPES.tgz, parts);
  });

  app.openapi(tarGzRoute, async (c) => {
    const { uuid } = c.req.valid("param");
    const unit = await loadUnitArtifacts(deps, c.get("principal"), uuid);
    const parts = await builder.tgzParts(unit, parseCompression(GZIP_WBITS, DEFAULT_LEVEL));
    return send(c, uuid, "tar.gz", CONTENT_TYPES["tar.gz"], parts);
  });

  app.openapi(tarRoute, async (c) => {
    const { uuid } = c.req.valid("param");
    const unit = await loadUnitArtifacts(deps, c.get("principal"), uuid);
    return send(c, uuid, "tar", CONTENT_TYPES.tar, await builder.tarParts(unit));
  });

  app.openapi(zipRoute, async (c) => {
    const { uuid } = c.req.valid("param");
    const unit = await loadUnitArtifacts(deps, c.get("principal"), uuid);
    const release = await zipSlots.acquire();
    try {
      return await send(c, uuid, "zip", CONTENT_TYPES.zip, [await builder.zip(unit)], release);
    } catch (err) {
      release();
      throw err;
    }
  });

  return app;
}
