import { exportJwk, generateCryptoKeyPair, importJwk } from "@fedify/fedify";
import { and, eq } from "drizzle-orm";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import type { DbLike } from "../db/database.ts";
import { federationKeys } from "../db/schema.ts";

// Key pairs of local actors, made on first use and kept in the database (private
// halves encrypted with the instance key), so signatures stay verifiable across
// restarts. RSA for HTTP and Linked Data signatures, Ed25519 for proofs.

type Algorithm = "RSASSA-PKCS1-v1_5" | "Ed25519";
const ALGORITHMS: Algorithm[] = ["RSASSA-PKCS1-v1_5", "Ed25519"];

export type KeyStore = {
  /** Both key pairs of an actor, RSA first. */
  pairsOf(actor: string): Promise<CryptoKeyPair[]>;
};

export function createKeyStore(db: DbLike, encryptKey: Uint8Array): KeyStore {
  const cache = new Map<string, Promise<CryptoKeyPair[]>>();

  async function load(actor: string): Promise<CryptoKeyPair[]> {
    const out: CryptoKeyPair[] = [];
    for (const algorithm of ALGORITHMS) {
      const where = and(eq(federationKeys.actor, actor), eq(federationKeys.algorithm, algorithm));
      let [row] = await db.select().from(federationKeys).where(where);
      if (!row) {
        const pair = await generateCryptoKeyPair(algorithm);
        await db
          .insert(federationKeys)
          .values({
            actor,
            algorithm,
            publicJwk: await exportJwk(pair.publicKey),
            privateJwkEnc: encryptJson(encryptKey, await exportJwk(pair.privateKey)),
          })
          .onConflictDoNothing();
        // Another request may have won the race: always use what is stored.
        [row] = await db.select().from(federationKeys).where(where);
      }
      if (!row) throw new Error(`no ${algorithm} key for ${actor}`);
      out.push({
        publicKey: await importJwk(row.publicJwk as JsonWebKey, "public"),
        privateKey: await importJwk(
          decryptJson<JsonWebKey>(encryptKey, row.privateJwkEnc),
          "private",
        ),
      });
    }
    return out;
  }

  return {
    pairsOf(actor) {
      let hit = cache.get(actor);
      if (!hit) {
        hit = load(actor);
        hit.catch(() => cache.delete(actor));
        cache.set(actor, hit);
      }
      return hit;
    },
  };
}
