import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/ports.ts";

// The reference broker: our own Mosquitto on a free loopback port (the system one on
// 1883 is not ours), anonymous, no persistence, queues large enough that it never
// drops what the load generator sends, pinned to core 0 like the Pepeunit server.

export type ReferenceBroker = { port: number; pid: number; version: string; stop(): Promise<void> };

export function mosquittoPath(): string | null {
  for (const p of ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]) {
    try {
      execFileSync(p, ["-h"], { stdio: "ignore" });
      return p;
    } catch (err) {
      // `mosquitto -h` exits 3 after printing its help: it exists.
      if ((err as { status?: number }).status !== undefined) return p;
    }
  }
  return null;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error("mosquitto did not listen in 10 s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts Mosquitto, or returns null when it is not installed. */
export async function startMosquitto(): Promise<ReferenceBroker | null> {
  const bin = mosquittoPath();
  if (!bin) return null;
  const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-bench-mosquitto-"));
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "max_queued_messages 0",
      "set_tcp_nodelay true",
      "max_inflight_messages 0",
      "max_connections -1",
      "log_dest stderr",
      "log_type error",
      "",
    ].join("\n"),
  );
  let version = "";
  try {
    execFileSync(bin, ["-h"], { encoding: "utf8" });
  } catch (err) {
    version =
      /mosquitto version (\S+)/.exec(String((err as { stdout?: string }).stdout))?.[1] ?? "";
  }
  const child = spawn("taskset", ["-c", "0", bin, "-c", conf], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitForPort(port, child);
  return {
    port,
    pid: child.pid ?? 0,
    version,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
      }),
  };
}
