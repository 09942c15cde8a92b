import { createHash } from "node:crypto";
import { chmod, mkdir, unlink } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { BackupBusyError, type BackupService } from "./backup.service.ts";
import { BackupError, type Progress } from "./backup-format.ts";
import type { BackupResult } from "./backup-writer.ts";

// The local channel of `npm run backup` to the running instance: a Unix socket,
// <PEPEUNIT_DATA_DIR>/backup.sock, mode 0600 in the 0700 data dir, so only the
// instance's own user reaches it. PGlite is one process's alone, and the clones'
// sync lock lives in the instance, so the instance makes the snapshot itself and
// writes the file the CLI names. One JSON line each way per message:
//   → {"op":"ping"} | {"op":"backup","out":"/abs/file.tar.gz"}
//   ← {"progress":"database: users","fraction":0.1} ... then {"ok":true,...} or {"error":"..."}
// The CLI hanging up mid-backup aborts it (the temporary file is removed).

export const SOCKET_NAME = "backup.sock";

/**
 * `<dataDir>/backup.sock`; when that is longer than a socket path may be (108 bytes on
 * Linux), one in the temporary directory named by the data dir's hash (still 0600).
 */
export function socketPath(dataDir: string): string {
  const inDataDir = path.join(dataDir, SOCKET_NAME);
  if (Buffer.byteLength(inDataDir) <= 100) return inDataDir;
  const hash = createHash("sha256").update(path.resolve(dataDir)).digest("hex").slice(0, 16);
  return path.join(tmpdir(), `pepeunit-backup-${hash}.sock`);
}

type Request = { op: "ping" } | { op: "backup"; out: string };

export type BackupSocket = { close(): Promise<void> };

export async function listenBackupSocket(
  dataDir: string,
  backups: BackupService,
  log: Logger,
): Promise<BackupSocket | undefined> {
  const file = socketPath(dataDir);
  if (await answers(file)) {
    log.warn({ file }, "another process answers on the backup socket: not listening");
    return undefined;
  }
  await unlink(file).catch(() => undefined); // left by an instance that did not stop cleanly
  // The data dir may not exist yet (secrets given as variables, database elsewhere); libuv
  // reports a missing directory as EACCES, which would read as a permissions problem.
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    serve(socket, backups);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(file, () => resolve());
  });
  await chmod(file, 0o600);
  return {
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(file).catch(() => undefined);
    },
  };
}

function serve(socket: net.Socket, backups: BackupService): void {
  let buffered = "";
  const send = (msg: object) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
  };
  socket.on("data", (data) => {
    buffered += data.toString("utf8");
    const nl = buffered.indexOf("\n");
    if (nl < 0) {
      if (buffered.length > 64 * 1024) socket.destroy();
      return;
    }
    socket.removeAllListeners("data");
    let req: Request;
    try {
      req = JSON.parse(buffered.slice(0, nl)) as Request;
    } catch {
      socket.end(`${JSON.stringify({ error: "bad request" })}\n`);
      return;
    }
    if (req.op === "ping") {
      socket.end(`${JSON.stringify({ ok: true })}\n`);
      return;
    }
    if (req.op !== "backup" || typeof req.out !== "string" || !path.isAbsolute(req.out)) {
      socket.end(`${JSON.stringify({ error: "bad request" })}\n`);
      return;
    }
    const abort = new AbortController();
    socket.on("close", () => abort.abort(new Error("the backup command hung up")));
    backups
      .run({
        out: req.out,
        signal: abort.signal,
        progress: (step, fraction) => send({ progress: step, fraction }),
      })
      .then(
        (r) => {
          send({ ok: true, file: r.file, size: r.size, created_at: r.createdAt });
          socket.end();
        },
        (err: unknown) => {
          send({
            error: err instanceof Error ? err.message : String(err),
            busy: err instanceof BackupBusyError,
          });
          socket.end();
        },
      );
  });
}

/** Whether a running instance answers on the socket (a stale file does not). */
export async function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    let reply = "";
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("connect", () => socket.write(`${JSON.stringify({ op: "ping" })}\n`));
    socket.on("data", (d) => {
      reply += d.toString("utf8");
    });
    socket.on("error", () => resolve(false));
    socket.on("close", () => resolve(reply.includes('"ok":true')));
  });
}

/** Asks the instance listening on `file` for a backup to `out`. */
export async function requestBackup(
  file: string,
  out: string,
  progress: Progress,
): Promise<BackupResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    let buffered = "";
    let settled = false;
    const settle = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    socket.on("connect", () => socket.write(`${JSON.stringify({ op: "backup", out })}\n`));
    socket.on("data", (d) => {
      buffered += d.toString("utf8");
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const msg = JSON.parse(buffered.slice(0, nl)) as {
          progress?: string;
          fraction?: number;
          ok?: boolean;
          file?: string;
          size?: number;
          created_at?: string;
          error?: string;
        };
        buffered = buffered.slice(nl + 1);
        if (msg.progress !== undefined) progress(msg.progress, msg.fraction ?? 0);
        else if (msg.ok) {
          settle(() =>
            resolve({
              file: msg.file ?? out,
              size: msg.size ?? 0,
              createdAt: msg.created_at ?? "",
            }),
          );
        } else if (msg.error)
          settle(() => reject(new BackupError(`the instance refused: ${msg.error}`)));
      }
    });
    socket.on("error", (err) => settle(() => reject(err)));
    socket.on("close", () =>
      settle(() => reject(new BackupError("the instance closed the backup channel early"))),
    );
  });
}
