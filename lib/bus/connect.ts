// The transport a bus config names, as the interfaces of transport.ts: the one place that
// knows which classes implement WebSocket and MQTT. (The mqtt package itself is loaded only
// when a bus first uses it: mqtt-link.ts.)

import { MqttListener } from "./mqtt-listener";
import { MqttMaster } from "./mqtt-master";
import type { MqttSettings } from "./mqtt-link";
import type { BusConfig, ListenerOptions, ListenerTransport, MasterOptions, MasterTransport } from "./transport";
import { BusClient } from "./ws-client";
import { BusServer } from "./ws-server";

/** TLS options from a tls-config node (ca, cert, key, rejectUnauthorized), for wss:// and mqtts://. */
export type TlsOptions = Record<string, unknown>;

function mqttSettings(bus: BusConfig, tls: TlsOptions | undefined): MqttSettings {
  return { ...bus.mqtt, maxPayload: bus.maxFrame, ...(tls ? { tls } : {}) };
}

export function openMaster(bus: BusConfig, tls: TlsOptions | undefined, o: MasterOptions): MasterTransport {
  if (bus.transport === "mqtt") return new MqttMaster({ ...o, settings: mqttSettings(bus, tls) });
  return new BusServer({ ...o, host: bus.host, port: bus.port, path: bus.path, token: bus.token, maxPayload: bus.maxFrame, ...(tls ? { tls } : {}) });
}

export function openListener(bus: BusConfig, tls: TlsOptions | undefined, o: ListenerOptions): ListenerTransport {
  if (bus.transport === "mqtt") return new MqttListener({ ...o, settings: mqttSettings(bus, tls) });
  return new BusClient({ ...o, url: bus.url, token: bus.token, maxPayload: bus.maxFrame, ...(tls ? { tls } : {}) });
}
