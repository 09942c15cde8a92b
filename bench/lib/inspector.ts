// Talks to a bench server started with --inspect (Chrome DevTools Protocol over the
// inspector's WebSocket) to force a full garbage collection before a memory reading, so
// RSS figures compare live memory rather than how much garbage happened to be waiting.

export type Inspector = {
  collectGarbage(): Promise<void>;
  close(): void;
};

export async function connectInspector(port: number): Promise<Inspector> {
  const deadline = Date.now() + 10_000;
  let url: string | undefined;
  while (!url) {
    try {
      const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
        webSocketDebuggerUrl?: string;
      }>;
      url = targets[0]?.webSocketDebuggerUrl;
    } catch {}
    if (!url) {
      if (Date.now() > deadline) throw new Error(`no inspector on port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error("inspector connection failed")), {
      once: true,
    });
  });
  let nextId = 1;
  const waiting = new Map<number, () => void>();
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(String(event.data)) as { id?: number };
    if (msg.id !== undefined) waiting.get(msg.id)?.();
  });
  const call = (method: string) =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      waiting.set(id, () => {
        waiting.delete(id);
        resolve();
      });
      ws.send(JSON.stringify({ id, method }));
    });
  return {
    async collectGarbage() {
      // Twice: the first pass can leave objects that only the second finds unreachable.
      await call("HeapProfiler.collectGarbage");
      await call("HeapProfiler.collectGarbage");
    },
    close: () => ws.close(),
  };
}
