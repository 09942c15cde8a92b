import { connectClient, type TestClient, type WorldUnit } from "../broker/mqtt-helpers.ts";

/** A device that reports the sha of every Update it receives, as a real one would after updating. */
export async function answeringDevice(
  inst: { mqttUrl: string },
  unit: WorldUnit,
): Promise<TestClient> {
  const client = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
  const updateTopic = unit.base("input_base_topic", "update/pepeunit");
  client.on("message", (topic, payload) => {
    if (topic !== updateTopic) return;
    const sha = JSON.parse(payload.toString()).PU_COMMIT_VERSION;
    client.publish(
      unit.base("output_base_topic", "state/pepeunit"),
      JSON.stringify({ millis: 1, pu_commit_version: sha }),
      { qos: 1 },
    );
  });
  await client.subscribeAsync(updateTopic, { qos: 1 });
  return client;
}
