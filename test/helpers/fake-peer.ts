import http from "node:http";
import type { AddressInfo } from "node:net";
import { generateCryptoKeyPair } from "@fedify/fedify";

// A stand-in ActivityPub peer for inbox tests: an actor document with a key the
// test holds (so it can sign what it posts), served from loopback.

export type FakePeer = {
  origin: string;
  actor: string;
  privateKey: CryptoKey;
  close(): Promise<void>;
};

/** An ActivityPub actor on loopback whose key we hold; it accepts whatever is delivered to it. */
export async function startFakePeer(): Promise<FakePeer> {
  const { privateKey, publicKey } = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
  const spki = Buffer.from(await crypto.subtle.exportKey("spki", publicKey)).toString("base64");
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki.match(/.{1,64}/g)?.join("\n")}\n-----END PUBLIC KEY-----\n`;
  let origin = "";
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.method === "GET" && req.url === "/actor") {
      res.writeHead(200, { "content-type": "application/activity+json" });
      res.end(
        JSON.stringify({
          "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
          id: `${origin}/actor`,
          type: "Service",
          preferredUsername: "fuzzer",
          inbox: `${origin}/inbox`,
          publicKey: {
            id: `${origin}/actor#main-key`,
            owner: `${origin}/actor`,
            publicKeyPem: pem,
          },
        }),
      );
      return;
    }
    res.writeHead(req.method === "POST" ? 202 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    actor: `${origin}/actor`,
    privateKey,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
