// sqi-bus: where the bus is, shared by sqi-event-bus nodes like mqtt-broker is by mqtt
// nodes. Transport (WebSocket), the master's bind address/port/path, the listeners' URL,
// a token (a credential; "${NAME}" reads it from the environment), a tls-config for wss,
// and the maximum frame size.

import { checkNumber, fromEnv } from "../lib/settings";
import type { Node, NodeDef, RED } from "./red";

export interface BusConfig {
  transport: "ws";
  host: string;
  port: number;
  path: string;
  url: string;
  token: string;
  maxFrame: number;
  tls?: string;
  errors: string[];
}

export type BusConfigNode = Node & { bus: BusConfig };

module.exports = function (RED: RED) {
  function SqiBusNode(this: BusConfigNode, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const errors: string[] = [];
    const port = checkNumber(def.port, { label: "Bus port", min: 1, max: 65535, integer: true, default: 8765 });
    const maxFrame = checkNumber(def.maxFrame, { label: "Maximum frame size", min: 1024, max: 100 * 1024 * 1024, integer: true, default: 1024 * 1024, unit: "bytes" });
    if (!port.ok) errors.push(port.error);
    if (!maxFrame.ok) errors.push(maxFrame.error);
    const path = String(def.path ?? "/").trim() || "/";
    if (!path.startsWith("/")) errors.push(`Path must start with "/", got ${JSON.stringify(path)}`);
    const url = fromEnv(String(def.url ?? "").trim());
    const creds = (this as unknown as { credentials?: { token?: string } }).credentials;
    // A flow file cannot carry credentials: role flows name an environment variable instead.
    const tokenEnv = String(def.tokenEnv ?? "").trim();
    const token = fromEnv(creds?.token ?? "") || (tokenEnv ? (process.env[tokenEnv] ?? "") : "");
    if (/\s/.test(token)) errors.push("the token contains spaces or line breaks: it must be one word (it travels in an HTTP header)");
    this.bus = {
      transport: "ws",
      host: String(def.host ?? "0.0.0.0").trim() || "0.0.0.0",
      port: port.ok ? port.value : 8765,
      path,
      url,
      token,
      maxFrame: maxFrame.ok ? maxFrame.value : 1024 * 1024,
      ...(typeof def.tls === "string" && def.tls ? { tls: def.tls } : {}),
      errors,
    };
  }
  RED.nodes.registerType("sqi-bus", SqiBusNode as unknown as (this: Node, def: NodeDef) => void, { credentials: { token: { type: "password" } } });
};
