import { connectAsync, type MqttClient } from "mqtt";

/** A device's MQTT.js connection with its unit token (username; empty password). */
export async function connectUnit(mqttUrl: string, unitToken: string): Promise<MqttClient> {
  const client = await connectAsync(mqttUrl, {
    username: unitToken,
    password: "",
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  client.on("error", () => {});
  return client;
}
