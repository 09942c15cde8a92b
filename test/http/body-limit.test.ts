import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { requestBodyLimit } from "../../src/http/body-limit.ts";

// The per-route override of the global body limit (LARGER_BODY_ROUTES): a route
// listed there takes its larger body, every other route keeps the global limit.

describe("requestBodyLimit", () => {
  const app = new Hono();
  app.use(
    "*",
    requestBodyLimit(1024, [{ method: "POST", path: /^\/import\/[^/]+$/, maxBytes: 8 * 1024 }]),
  );
  app.post("*", async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));

  /** A chunked body (no Content-Length), as a streaming client sends it. */
  const chunked = (size: number) =>
    new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let sent = 0; sent < size; sent += 512) ctl.enqueue(new Uint8Array(512));
        ctl.close();
      },
    });
  const post = (path: string, size: number) =>
    app.request(path, { method: "POST", body: chunked(size), duplex: "half" } as RequestInit);

  it("lets a listed route take more than the global limit, up to its own", async () => {
    const ok = await post("/import/abc", 4096);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ bytes: 4096 });
    const over = await post("/import/abc", 16 * 1024);
    expect(over.status).toBe(413);
    expect((await over.json()).detail).toMatch(/too large/);
  });

  it("keeps the global limit everywhere else", async () => {
    expect((await post("/other", 512)).status).toBe(200);
    expect((await post("/other", 4096)).status).toBe(413);
    expect((await post("/import/abc/more", 4096)).status).toBe(413);
    const declared = await app.request("/other", {
      method: "POST",
      headers: { "content-length": "4096" },
      body: "x".repeat(4096),
    });
    expect(declared.status).toBe(413);
  });
});
