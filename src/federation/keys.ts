import { exportJwk, generateCryptoKeyPair, importJwk } from "@fedify/fedify";
import { and, eq } from "drizzle-orm";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import type { DbLike } from "../db/database.ts";
import { type FederationKeyAlgorithm, federationKeys } from "../db/schema.ts";
import { INSTANCE_ACTOR } from "./core.ts";

// Key pairs of local actors, made on first use and kept in the database (private
// halves encrypted with the instance key), so signatures stay verifiable across
// restarts. RSA for HTTP and Linked Data signatures, Ed25519 for proofs. The instance
// actor has a third, RSA of 2 048 bits, that signs readings (relay.ts): a delivery
// every few milliseconds, where a signature with the 4 096-bit key Fedify makes cost
// 2.3–2.8 ms of CPU here and one with this key 0.6–0.8 ms (main thread and libuv pool
// together). Peers verify it as any other key of the actor (its `publicKey` list;
// Fedify's verifier picks the key by id).

/** The stored `algorithm` of the instance's readings key. */
const READINGS_KEY = "RSASSA-PKCS1-v1_5/2048" satisfies FederationKeyAlgorithm;
const ALGORITHMS: FederationKeyAlgorithm[] = ["RSASSA-PKCS1-v1_5", "Ed25519"];
const INSTANCE_ALGORITHMS: FederationKeyAlgorithm[] = [...ALGORITHMS, READINGS_KEY];

export type KeyStore = {
  /** The key pairs of an actor: RSA (4 096 bits), Ed25519, and for the instance its readings key. */
  pairsOf(actor: string): Promise<CryptoKeyPair[]>;
  /** The instance's readings key: one of `pairsOf(INSTANCE_ACTOR)`, the same objects. */
  readingsPair(): Promise<CryptoKeyPair>;
};

function generate(algorithm: FederationKeyAlgorithm): Promise<CryptoKeyPair> {
  if (algorithm !== READINGS_KEY) return generateCryptoKeyPair(algorithm);
  return crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
}

export function createKeyStore(db: DbLike, encryptKey: Uint8Array): KeyStore {
  const cache = new Map<string, Promise<CryptoKeyPair[]>>();

  async function load(actor: string): Promise<CryptoKeyPair[]> {
    const out: CryptoKeyPair[] = [];
    for (const algorithm of actor === INSTANCE_ACTOR ? INSTANCE_ALGORITHMS : ALGORITHMS) {
      const where = and(eq(federationKeys.actor, actor), eq(federationKeys.algorithm, algorithm));
      let [row] = await db.select().from(federationKeys).where(where);
      if (!row) {
        const pair = await generate(algorithm);
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

  function pairsOf(actor: string): Promise<CryptoKeyPair[]> {
    let hit = cache.get(actor);
    if (!hit) {
      hit = load(actor);
      hit.catch(() => cache.delete(actor));
      cache.set(actor, hit);
    }
    return hit;
  }

  return {
    pairsOf,
    async readingsPair() {
      const pair = (await pairsOf(INSTANCE_ACTOR))[INSTANCE_ALGORITHMS.indexOf(READINGS_KEY)];
      if (!pair) throw new Error("the instance actor has no readings key");
      return pair;
    },
  };
}
