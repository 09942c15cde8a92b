import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { freePort } from "../helpers/ports.ts";
import {
  connectClient,
  linkNodes,
  makeUnit,
  makeWorld,
  refusedCode,
  subscribeCode,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

/** A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI. */
function selfSignedCert(dir: string) {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

describe("MQTT over TLS and over WebSocket", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  let certDir: string;
  let ca: Buffer;
  let tlsPort: number;

  beforeAll(async () => {
    certDir = mkdtempSync(path.join(tmpdir(), "pepeunit-tls-"));
    const files = selfSignedCert(certDir);
    ca = readFileSync(files.cert);
    tlsPort = await freePort();
    inst = await startTestInstance({
      PEPEUNIT_TLS_CERT: files.cert,
      PEPEUNIT_TLS_KEY: files.key,
      PEPEUNIT_MQTTS_PORT: String(tlsPort),
    });
    world = await makeWorld(inst);
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
  });
  afterAll(async () => {
    await inst?.close();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  it("serves MQTT over TLS with the configured certificate, with the same access rules", async () => {
    expect(inst.broker.tlsPort).toBe(tlsPort);
    const url = `mqtts://127.0.0.1:${tlsPort}`;
    const receiver = await connectClient(url, b.token, {
      clientId: b.uuid,
      ca,
      rejectUnauthorized: true,
    });
    expect(await subscribeCode(receiver, a.topic("Output", "temperature"))).toBe(1);
    expect(await subscribeCode(receiver, "#")).toBe(0x80);
    // A plain TCP publisher reaches the TLS subscriber.
    const sender = await connectClient(inst.mqttUrl, a.token, { clientId: a.uuid });
    await sender.publishAsync(a.topic("Output", "temperature"), "over-tls", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "over-tls");
    expect(await refusedCode(url, "bad-token", { ca, rejectUnauthorized: true })).toBe(4);
    await Promise.all([receiver.endAsync(), sender.endAsync()]);
  });

  it("refuses a TLS client that does not trust the certificate, and keeps serving", async () => {
    const url = `mqtts://127.0.0.1:${tlsPort}`;
    await expect(connectClient(url, b.token, { rejectUnauthorized: true })).rejects.toThrow();
    const ok = await connectClient(url, b.token, { ca, rejectUnauthorized: true });
    expect(ok.connected).toBe(true);
    await ok.endAsync();
  });

  it("serves MQTT over WebSocket at /mqtt on the HTTP port", async () => {
    const wsUrl = `${inst.httpUrl.replace("http://", "ws://")}/mqtt`;
    const receiver = await connectClient(wsUrl, b.token, { clientId: b.uuid });
    expect(await subscribeCode(receiver, a.topic("Output", "temperature"))).toBe(1);
    expect(await subscribeCode(receiver, a.base("input_base_topic", "update/pepeunit"))).toBe(0x80);
    const sender = await connectClient(inst.mqttUrl, a.token, { clientId: a.uuid });
    const bytes = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]);
    await sender.publishAsync(a.topic("Output", "temperature"), bytes, { qos: 1 });
    const got = await receiver.waitFor((m) => m.payload.length === 5);
    expect(got.payload.equals(bytes)).toBe(true);
    expect(await refusedCode(wsUrl, "bad-token")).toBe(4);
    await Promise.all([receiver.endAsync(), sender.endAsync()]);
    // The HTTP API on the same port is untouched.
    expect((await inst.api.get("/healthz")).status).toBe(200);
  });

  it("does not upgrade other paths", async () => {
    const other = `${inst.httpUrl.replace("http://", "ws://")}/not-mqtt`;
    const status = await new Promise<number | string>((resolve) => {
      const ws = new WebSocket(other, "mqtt");
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => {
        resolve("opened");
        ws.close();
      });
      ws.on("error", (err) => resolve(err.message));
    });
    expect(status).toBe(404);
  });
});
