// sqi-bus: where the bus is, shared by sqi-event-bus nodes like mqtt-broker is by mqtt
// nodes. WebSocket: the master's bind address/port/path, the listeners' URL and a token.
// MQTT: the broker URL, client id, user name and password, QoS, topic prefix and keepalive.
// Both: a tls-config for wss/mqtts and the maximum frame size.
// Secrets are credentials (Node-RED substitutes "${NAME}" in them, as in every property), or
// environment variables named in the panel (tokenEnv, userEnv, passwordEnv), read through
// Node-RED's environment: the group's, the flow's, the global one, then the process's.

import type { BusConfig } from "../lib/bus/transport";
import { checkNumber } from "../lib/numbers";
import { PANEL_RANGES } from "../lib/ranges";
import type { Node, NodeDef, RED } from "./red";
import { rangesSetting } from "./shell";

export type BusConfigNode = Node & { bus: BusConfig };

interface Credentials {
  token?: string;
  user?: string;
  password?: string;
}

module.exports = function (RED: RED) {
  function SqiBusNode(this: BusConfigNode, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const errors: string[] = [];
    const creds = (this as unknown as { credentials?: Credentials }).credentials ?? {};
    // A flow file cannot carry credentials: role flows name environment variables instead.
    const secret = (own: string | undefined, envKey: unknown): string => {
      const name = String(envKey ?? "").trim();
      return own || (name ? String(RED.util.evaluateNodeProperty(name, "env", this, {}) ?? "") : "");
    };
    const rawTransport = String(def.transport ?? "").trim();
    const transport = rawTransport === "mqtt" ? "mqtt" : "ws";
    if (rawTransport !== "" && rawTransport !== "ws" && rawTransport !== "mqtt")
      errors.push(`Transport must be "ws" or "mqtt", got ${JSON.stringify(rawTransport)}`);
    const ranges = PANEL_RANGES["sqi-bus"];
    const port = checkNumber(def.port, ranges.port);
    const maxFrame = checkNumber(def.maxFrame, ranges.maxFrame);
    const qos = checkNumber(def.qos, ranges.qos);
    const keepalive = checkNumber(def.keepalive, ranges.keepalive);
    for (const c of transport === "mqtt" ? [maxFrame, qos, keepalive] : [port, maxFrame]) if (!c.ok) errors.push(c.error);
    const path = String(def.path ?? "/").trim() || "/";
    if (transport === "ws" && !path.startsWith("/")) errors.push(`Path must start with "/", got ${JSON.stringify(path)}`);
    const url = String(def.url ?? "").trim();
    const token = secret(creds.token, def.tokenEnv);
    if (/\s/.test(token)) errors.push("the token contains spaces or line breaks: it must be one word (it travels in an HTTP header)");

    const brokerUrl = String(def.broker ?? "").trim();
    const prefix = String(def.topicPrefix ?? "").trim() || `sqi/${String(def.name ?? "").trim() || "bus"}`;
    if (transport === "mqtt") {
      if (!/^(mqtts?|wss?):\/\/[^\s]+$/.test(brokerUrl))
        errors.push(`Broker URL must be mqtt://, mqtts://, ws:// or wss:// with a host, got ${JSON.stringify(brokerUrl)}`);
      if (/[+#]/.test(prefix) || prefix.endsWith("/")) errors.push(`Topic prefix may not hold + or # or end with /, got ${JSON.stringify(prefix)}`);
    }
    this.bus = {
      transport,
      host: String(def.host ?? "0.0.0.0").trim() || "0.0.0.0",
      port: port.ok ? port.value : 8765,
      path,
      url,
      token,
      maxFrame: maxFrame.ok ? maxFrame.value : 1024 * 1024,
      ...(typeof def.tls === "string" && def.tls ? { tls: def.tls } : {}),
      mqtt: {
        url: brokerUrl,
        clientId: String(def.clientId ?? "").trim(),
        username: secret(creds.user, def.userEnv),
        password: secret(creds.password, def.passwordEnv),
        qos: qos.ok && qos.value === 1 ? 1 : 0,
        prefix,
        keepaliveS: keepalive.ok ? keepalive.value : 15,
      },
      errors,
    };
  }
  RED.nodes.registerType("sqi-bus", SqiBusNode as unknown as (this: Node, def: NodeDef) => void, {
    credentials: { token: { type: "password" }, user: { type: "text" }, password: { type: "password" } },
    settings: rangesSetting("sqi-bus"),
  });
};
