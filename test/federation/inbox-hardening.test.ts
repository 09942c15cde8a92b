import { generateCryptoKeyPair, signRequest } from "@fedify/fedify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FedInstance, startFedInstance } from "../helpers/federation.ts";
import { freePort } from "../helpers/ports.ts";
import { streamUntilAnswered } from "../http/streaming.ts";

// Inbox requests that used to hurt: a chunked body far over the limit (read whole
// before the size check), and a signature whose key cannot be fetched (a 500).

describe("federation inbox hardening", () => {
  let fi: FedInstance;
  beforeAll(async () => {
    fi = await startFedInstance({ PEPEUNIT_FEDERATION_MAX_INBOX_KB: "64" });
  });
  afterAll(async () => {
    await fi?.close();
  });

  it("stops reading a chunked activity past the inbox limit", async () => {
    const out = await streamUntilAnswered(`${fi.baseUrl}/ap/inbox`, {
      "content-type": "application/activity+json",
    });
    expect(out.status).toBe(413);
    expect(out.bytesSent).toBeLessThan(out.bytesOffered);
    expect((await fetch(`${fi.baseUrl}/healthz`)).status).toBe(200);
  });

  it("answers 401, not 500, when the signing key cannot be fetched", async () => {
    const deadPort = await freePort(); // nothing listens there
    const actor = `http://127.0.0.1:${deadPort}/ap/actors/instance`;
    const { privateKey } = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
    const activities = [
      {
        "@context": "https://www.w3.org/ns/activitystreams",
        id: `http://127.0.0.1:${deadPort}/ap/follows/1`,
        type: "Follow",
        actor,
        object: `${fi.baseUrl}/ap/actors/instance`,
      },
      {
        "@context": "https://www.w3.org/ns/activitystreams",
        id: `http://127.0.0.1:${deadPort}/ap/activities/1`,
        type: "Add",
        actor,
        object: { type: ["Object", "ReadingBatch"], readings: [] },
      },
    ];
    for (const activity of activities) {
      const signed = await signRequest(
        new Request(`${fi.baseUrl}/ap/inbox`, {
          method: "POST",
          headers: { "content-type": "application/activity+json" },
          body: JSON.stringify(activity),
        }),
        privateKey,
        new URL(`${actor}#main-key`),
      );
      const res = await fetch(signed);
      expect(res.status, activity.type).toBe(401);
    }
  });
});
