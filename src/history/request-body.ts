import { HttpError, unprocessable } from "../http/errors.ts";

// Bodies the history routes read themselves: a YAML config or a CSV file, sent raw or as
// the `file` field of a multipart form. They are read as a stream and cut off at a cap,
// so a client cannot make the instance hold more than that in memory.

export const tooLarge = (maxBytes: number) =>
  new HttpError(413, `the body is larger than ${Math.round(maxBytes / 1024)} KiB`);

/** A web stream's chunks; leaving early cancels the stream (the client stops being read). */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
}

/** The request body as chunks, failing with 413 once more than `maxBytes` arrived. */
export async function* cappedChunks(req: Request, maxBytes: number): AsyncGenerator<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!req.body) return;
  let total = 0;
  for await (const chunk of chunksOf(req.body)) {
    total += chunk.byteLength;
    if (total > maxBytes) throw tooLarge(maxBytes);
    yield chunk;
  }
}

async function readCapped(req: Request, maxBytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of cappedChunks(req, maxBytes)) parts.push(chunk);
  return Buffer.concat(parts);
}

const isMultipart = (req: Request) =>
  (req.headers.get("content-type") ?? "").toLowerCase().startsWith("multipart/form-data");

/** The multipart field `file` (a file or a plain field), read within the cap. */
async function multipartFile(req: Request, maxBytes: number): Promise<Blob> {
  const bytes = await readCapped(req, maxBytes);
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(bytes), {
      headers: { "content-type": req.headers.get("content-type") ?? "" },
    }).formData();
  } catch {
    throw unprocessable("the multipart body could not be read");
  }
  const file = form.get("file");
  if (file === null) throw unprocessable("the multipart body has no field named file");
  return typeof file === "string" ? new Blob([file]) : file;
}

/** A text body: raw (any text type) or the multipart field `file`. */
export async function readTextBody(req: Request, maxBytes: number): Promise<string> {
  if (isMultipart(req)) return (await multipartFile(req, maxBytes)).text();
  return new TextDecoder().decode(await readCapped(req, maxBytes));
}

/**
 * A body to stream into a parser. Raw bodies stream as they arrive; a multipart body is
 * read whole (within the cap) first, since its parts can only be found by reading it.
 */
export async function streamBody(
  req: Request,
  maxBytes: number,
): Promise<AsyncIterable<Uint8Array>> {
  if (!isMultipart(req)) return cappedChunks(req, maxBytes);
  const file = await multipartFile(req, maxBytes);
  return chunksOf(file.stream());
}
