import net from "node:net";

// Ports for servers that must know their port before they bind (env.json carries the
// MQTT port, a federated instance's domain carries its HTTP port). They come from below
// the kernel's ephemeral range (32768+ on Linux), so an outgoing connection of another
// test cannot take one between its choice and its bind, and each vitest worker walks
// its own slice, so two workers never choose the same one at the same moment.

const LOW = 20_000;
const HIGH = 32_767;
const SLICES = 16;
const SLICE = Math.floor((HIGH - LOW) / SLICES);

const slot = Number(process.env.VITEST_POOL_ID ?? process.pid) % SLICES;
let offset = process.pid % SLICE;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A loopback TCP port nobody listens on, from this worker's slice (not handed out again soon). */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < SLICE; tries++) {
    const port = LOW + slot * SLICE + (offset % SLICE);
    offset++;
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port in this worker's slice ${slot}`);
}
