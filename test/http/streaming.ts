import http from "node:http";

export type StreamOutcome = {
  status: number;
  body: string;
  bytesSent: number;
  bytesOffered: number;
};

/**
 * POSTs a body far larger than any limit, chunk by chunk, until the server
 * answers; reports how much was sent by then. With `declaredLength`, the request
 * carries that Content-Length (and sends at most one chunk: a server that waits
 * for the body would hang); without, it is chunked (no Content-Length at all).
 */
export function streamUntilAnswered(
  url: string,
  headers: Record<string, string>,
  opts: { declaredLength?: number; offerBytes?: number } = {},
): Promise<StreamOutcome> {
  const chunk = Buffer.alloc(64 * 1024, "a");
  const offered = opts.offerBytes ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = http.request(url, {
      method: "POST",
      headers: {
        ...headers,
        ...(opts.declaredLength !== undefined
          ? { "content-length": String(opts.declaredLength) }
          : { "transfer-encoding": "chunked" }),
      },
    });
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, bytesSent: sent, bytesOffered: offered });
      });
    });
    // The server may close the connection once it has answered: not an error here.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    req.write("["); // the start of a JSON array that never ends in time
    const pump = () => {
      while (!answered && sent < offered) {
        if (opts.declaredLength !== undefined && sent > 0) return; // headers + one chunk only
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}
