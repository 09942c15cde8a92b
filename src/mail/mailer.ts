import type { Transporter } from "nodemailer";
import type { Logger } from "pino";

export type Mail = { to: string; subject: string; text: string };

export type Mailer = {
  /** False when no SMTP server is configured: features needing mail refuse to turn on. */
  readonly configured: boolean;
  send(mail: Mail): Promise<void>;
  close(): void;
};

export function createMailer(opts: {
  smtpUrl: string | undefined;
  from: string;
  log: Logger;
}): Mailer {
  if (!opts.smtpUrl) {
    return {
      configured: false,
      send: async () => {
        throw new Error("no SMTP server configured (PEPEUNIT_SMTP_URL)");
      },
      close: () => {},
    };
  }
  const smtpUrl = opts.smtpUrl;
  // nodemailer (~5 MB of heap) is loaded with the first mail: most instances send a few a day.
  let transport: Promise<Transporter> | undefined;
  return {
    configured: true,
    async send(mail) {
      transport ??= import("nodemailer").then((m) => m.default.createTransport(smtpUrl));
      await (await transport).sendMail({ from: opts.from, ...mail });
      // Never the recipient: addresses stay out of the logs.
      opts.log.info({ subject: mail.subject }, "mail sent");
    },
    close: () => void transport?.then((t) => t.close()),
  };
}

/**
 * What may be logged of a failed send: the SMTP codes, not the message (servers quote
 * the rejected recipient's address in it).
 */
export function mailFailure(err: unknown): { code?: unknown; responseCode?: unknown } {
  const e = err as { code?: unknown; responseCode?: unknown } | null;
  return { code: e?.code, responseCode: e?.responseCode };
}
