import { randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { createSemaphore } from "../semaphore.ts";

// scrypt is memory-hard and built into Node: no native addon to install.
const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** N = 2^logN; memory per hash is about 128·N·r bytes (2^16, 8 → 64 MiB). */
export type ScryptParams = { logN: number; r: number; p: number };

type Stored = { N: number; r: number; p: number; salt: Buffer; hash: Buffer };

const KEY_LENGTH = 32;
// Each hash holds 128·N·r bytes for its whole run: a burst of logins must not take
// the process's memory (or both cores) with it. Hashing and verifying share the slots.
const MAX_CONCURRENT_HASHES = 2;
const runLimited = createSemaphore(MAX_CONCURRENT_HASHES).run;
// Stored parameters beyond these are refused rather than computed (memory bomb).
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

function derive(password: string, salt: Buffer, N: number, r: number, p: number) {
  const maxmem = 128 * r * (N + p) + 1024 * 1024;
  return runLimited(() => scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem }));
}

function parse(stored: string): Stored | null {
  const [kind, n, r, p, salt, hash] = stored.split("$");
  if (kind !== "scrypt" || !n || !r || !p || !salt || !hash) return null;
  const parsed = { N: Number(n), r: Number(r), p: Number(p) };
  const { N } = parsed;
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return null;
  if (!Number.isInteger(parsed.r) || parsed.r < 1 || parsed.r > MAX_R) return null;
  if (!Number.isInteger(parsed.p) || parsed.p < 1 || parsed.p > MAX_P) return null;
  return { ...parsed, salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") };
}

export type PasswordHasher = {
  /** `scrypt$N$r$p$salt$hash`, so parameters can be raised later without breaking old hashes. */
  hash(password: string): Promise<string>;
  verify(password: string, stored: string): Promise<boolean>;
  /** The same work as verifying against a hash made now: an unknown login costs as much as a known one. */
  verifyNobody(password: string): Promise<false>;
  /** Whether the stored hash was made with other parameters than the configured ones. */
  needsRehash(stored: string): boolean;
};

export function createPasswordHasher(params: ScryptParams): PasswordHasher {
  const N = 2 ** params.logN;
  const { r, p } = params;
  return {
    async hash(password) {
      const salt = randomBytes(16);
      const hash = await derive(password, salt, N, r, p);
      return ["scrypt", N, r, p, salt.toString("base64"), hash.toString("base64")].join("$");
    },
    async verify(password, stored) {
      const s = parse(stored);
      if (!s || s.hash.length !== KEY_LENGTH) return false;
      const actual = await derive(password, s.salt, s.N, s.r, s.p);
      return timingSafeEqual(s.hash, actual);
    },
    async verifyNobody(password) {
      await derive(password, randomBytes(16), N, r, p);
      return false;
    },
    needsRehash(stored) {
      const s = parse(stored);
      return !s || s.N !== N || s.r !== r || s.p !== p;
    },
  };
}
