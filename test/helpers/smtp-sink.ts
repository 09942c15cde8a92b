import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export type SmtpSink = {
  url: string;
  messages: string[];
  next(): Promise<string>;
  close(): Promise<void>;
};

/** A real SMTP server on loopback that keeps every message it receives. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: string[] = [];
  const waiters: Array<(m: string) => void> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("end", () => {
        const msg = Buffer.concat(chunks).toString("utf8");
        const waiter = waiters.shift();
        if (waiter) waiter(msg);
        else messages.push(msg);
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    next: () => {
      const queued = messages.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => waiters.push(resolve));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
