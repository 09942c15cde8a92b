import { randomBytes } from "node:crypto";
import { gcm } from "@noble/ciphers/aes.js";

// The text form shared with devices (device-protocol §8):
// base64(12-byte nonce) + "." + base64(ciphertext ‖ 16-byte tag), no AAD.

export class DecryptError extends Error {}

function checkKey(key: Uint8Array): void {
  if (![16, 24, 32].includes(key.length)) throw new Error("AES key must be 16, 24 or 32 bytes");
}

export function encryptText(key: Uint8Array, plaintext: string | Uint8Array): string {
  checkKey(key);
  const nonce = new Uint8Array(randomBytes(12));
  const data = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
  const sealed = gcm(key, nonce).encrypt(data);
  return `${Buffer.from(nonce).toString("base64")}.${Buffer.from(sealed).toString("base64")}`;
}

export function decryptBytes(key: Uint8Array, text: string): Uint8Array {
  checkKey(key);
  const [n, c, extra] = text.split(".");
  if (!n || !c || extra !== undefined) throw new DecryptError("not an AES-GCM text");
  const nonce = Buffer.from(n, "base64");
  if (nonce.length !== 12) throw new DecryptError("nonce must be 12 bytes");
  try {
    return gcm(key, new Uint8Array(nonce)).decrypt(new Uint8Array(Buffer.from(c, "base64")));
  } catch {
    throw new DecryptError("authentication failed");
  }
}

export function decryptText(key: Uint8Array, text: string): string {
  return new TextDecoder().decode(decryptBytes(key, text));
}

/** JSON round trip through the text form: used for every secret kept in the database. */
export function encryptJson(key: Uint8Array, value: unknown): string {
  return encryptText(key, JSON.stringify(value));
}

export function decryptJson<T>(key: Uint8Array, text: string): T {
  return JSON.parse(decryptText(key, text)) as T;
}
