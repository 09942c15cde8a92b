import type { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { createWebSocketStream, WebSocketServer } from "ws";

// The ways in: MQTT over plain TCP, over TLS, and over WebSocket on the HTTP server.
// Each hands the broker a byte stream plus where it came from.

export type HandleConnection = (stream: Duplex, remote: string, req?: IncomingMessage) => void;

export type Listener = {
  port: number;
  /** Stops accepting; open connections are the broker's to close. */
  close(): Promise<void>;
};

function listen(server: net.Server, host: string, port: number): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve({
        port: typeof address === "object" && address ? address.port : port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function remoteOf(socket: net.Socket): string {
  return `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
}

export function listenTcp(host: string, port: number, handle: HandleConnection) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    handle(socket, remoteOf(socket));
  });
  return listen(server, host, port);
}

export function listenTls(
  host: string,
  port: number,
  files: { cert: string; key: string },
  handle: HandleConnection,
  onTlsError: (err: Error, remote: string) => void,
) {
  const server = tls.createServer(
    { cert: readFileSync(files.cert), key: readFileSync(files.key) },
    (socket) => {
      socket.setNoDelay(true);
      handle(socket, remoteOf(socket));
    },
  );
  // A failed handshake concerns that client only.
  server.on("tlsClientError", (err, socket) => onTlsError(err, remoteOf(socket)));
  return listen(server, host, port);
}

/**
 * MQTT over WebSocket on the HTTP server's `path` (subprotocol "mqtt"). Upgrades on
 * other paths are left to other handlers, or refused when there are none.
 */
export function attachWebSocket(
  server: EventEmitter,
  path: string,
  maxPayload: number,
  handle: HandleConnection,
): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    let pathname = "";
    try {
      pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    } catch {}
    if (pathname !== path) {
      if (server.listenerCount("upgrade") === 1) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      }
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
      handle(createWebSocketStream(ws), remote, req);
    });
  };
  server.on("upgrade", onUpgrade);
  return () => {
    server.off("upgrade", onUpgrade);
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}
