import { eq } from "drizzle-orm";
import { ConfigError } from "../config.ts";
import type { DbLike } from "../db/database.ts";
import { instanceSettings } from "../db/schema.ts";
import { DecryptError, decryptText, encryptText } from "./aes-gcm.ts";

// Secrets in the database (private repo credentials, federation keys) are encrypted with
// PEPEUNIT_ENCRYPT_KEY. Started with another key (a lost data/.env, a database copied from
// another instance) the instance would fail later and far from the cause; this check
// refuses to start instead, saying why.

const KNOWN_TEXT = "pepeunit encrypt key check";

export async function verifyEncryptKey(db: DbLike, key: Uint8Array): Promise<void> {
  const [row] = await db
    .select({ keyCheck: instanceSettings.keyCheck })
    .from(instanceSettings)
    .where(eq(instanceSettings.id, 1));
  if (row?.keyCheck) {
    let text: string | null = null;
    try {
      text = decryptText(key, row.keyCheck);
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err;
    }
    if (text === KNOWN_TEXT) return;
    throw new ConfigError(
      "PEPEUNIT_ENCRYPT_KEY is not the key this database was created with: start with the " +
        "data directory (data/.env) that belongs to this database, or set the original key",
    );
  }
  await db
    .insert(instanceSettings)
    .values({ id: 1, keyCheck: encryptText(key, KNOWN_TEXT) })
    .onConflictDoUpdate({
      target: instanceSettings.id,
      set: { keyCheck: encryptText(key, KNOWN_TEXT) },
    });
}
