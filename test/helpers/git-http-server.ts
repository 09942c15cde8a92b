import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

// A private git host for tests: smart HTTP through `git http-backend` (run as CGI)
// behind basic auth, on a random loopback port.

export type GitHttpServer = {
  /** Clone URL of a repository directory under the root (e.g. a fixture's dir). */
  urlFor(repoDir: string): string;
  /** Every Authorization header received (to prove what the client sent). */
  authHeaders: string[];
  /** Every Host header received (to prove which name the client connected for). */
  hosts: string[];
  /** Every request: method, path and whether it carried the right credentials (to count fetches). */
  requests: Array<{ method: string; path: string; authorized: boolean }>;
  port: number;
  close(): Promise<void>;
};

export async function startGitHttpServer(opts: {
  root: string;
  username: string;
  password: string;
}): Promise<GitHttpServer> {
  const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString("base64")}`;
  const authHeaders: string[] = [];
  const hosts: string[] = [];
  const requests: GitHttpServer["requests"] = [];

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const auth = req.headers.authorization ?? "";
    authHeaders.push(auth);
    hosts.push(req.headers.host ?? "");
    requests.push({
      method: req.method ?? "GET",
      path: new URL(req.url ?? "/", "http://localhost").pathname,
      authorized: auth === expected,
    });
    if (auth !== expected) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' });
      res.end("unauthorized\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: opts.root,
      GIT_HTTP_EXPORT_ALL: "1",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: opts.root,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_USER: opts.username,
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_PROTOCOL: "HTTP/1.1",
    };
    if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
    // git clients gzip large request bodies; http-backend inflates them itself.
    const encoding = req.headers["content-encoding"];
    if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
    const protocol = req.headers["git-protocol"];
    if (typeof protocol === "string") env.GIT_PROTOCOL = protocol;

    const cgi = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    req.pipe(cgi.stdin);
    cgi.stdin.on("error", () => {});
    cgi.stderr.resume();

    // CGI output: header lines, a blank line, then the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const text = head.toString("latin1");
      const m = /\r?\n\r?\n/.exec(text);
      if (!m) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, m.index).split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 200;
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(Buffer.byteLength(text.slice(0, m.index + m[0].length), "latin1")));
    });
    cgi.on("close", () => {
      if (!headersDone) res.writeHead(502);
      res.end();
    });
    cgi.on("error", () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  }

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    urlFor: (repoDir) => `http://127.0.0.1:${port}/${path.relative(opts.root, repoDir)}`,
    authHeaders,
    hosts,
    requests,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
