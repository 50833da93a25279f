// The bus over MQTT, through a broker the user runs (Mosquitto, EMQX, ...): the same frames,
// sequence numbers, batching, clock sync and accounting as the WebSocket transport, carried
// on topics under one prefix (docs/protocol.md):
//   <prefix>/events              master -> all: event and batch frames (QoS 0 or 1)
//   <prefix>/master              master, retained: its welcome frame; emptied when it goes away
//   <prefix>/hello/<listener>    listener, retained: its hello; emptied (its will) when it goes away
//   <prefix>/sync/<listener>/ping, .../pong   clock sync, QoS 0, one pair per listener
//   <prefix>/report/<listener>   listener -> master: reports
// Listeners publish only under hello/, sync/<name>/ping and report/ (a broker ACL can enforce
// it); the master checks every frame it takes against the schema and its topic.
//
// Neither side lets the MQTT client queue while the broker is away: an event the master
// cannot publish now is dropped and counted (the listeners see the gap), so nothing fires
// late in a burst after a reconnect. Reconnects use our own capped backoff with jitter.
//
// This file is the connection both sides open (mqtt-master.ts, mqtt-listener.ts).

import type { IClientOptions, MqttClient } from "mqtt";
import type { Clock, TimerHandle } from "../clock";
import type { LinkState } from "./transport";
import { backoff } from "./transport-base";

// The mqtt package is loaded when a bus first uses MQTT, not with the nodes: most flows never
// do, and it is the largest module the nodes would load (bench/load-time.ts measures both).
let mqttModule: typeof import("mqtt") | undefined;
function mqttConnect(url: string, options: IClientOptions): MqttClient {
  mqttModule ??= require("mqtt") as typeof import("mqtt");
  return mqttModule.connect(url, options);
}

export interface MqttSettings {
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  qos: 0 | 1;
  /** Topics live under this, e.g. "sqi/SQI bus". */
  prefix: string;
  keepaliveS: number;
  /** ca/cert/key/rejectUnauthorized for mqtts:// and wss:// */
  tls?: Record<string, unknown>;
  maxPayload: number;
}

/** A topic level from a listener name: MQTT's wildcards and separator replaced. */
export function topicLevel(name: string): string {
  return name.replace(/[/+#\s]/g, "_").slice(0, 100) || "_";
}

/** What a broker's refusal means to a user (MQTT 3.1.1 return codes and MQTT 5 reason codes). */
export function brokerRefusal(e: Error & { code?: unknown }): { text: string; auth: boolean } {
  // e.code is a CONNACK return code (a number) or a socket errno (a string)
  const code = e.code;
  if (code === 4 || code === 5 || code === 134 || code === 135 || /not authori[sz]ed|bad user ?name or password/i.test(e.message)) {
    return { text: "not authorised by the broker: check the user name and password (and the broker's ACL)", auth: true };
  }
  if (code === "ECONNREFUSED") return { text: "connection refused: is the broker running?", auth: false };
  if (code === "ENOTFOUND") return { text: "cannot resolve the broker's host name", auth: false };
  return { text: e.message, auth: false };
}

export interface Connection {
  client: MqttClient;
  state: LinkState;
  detail: string;
  authFailed: boolean;
}

/** Opens one MQTT client with our own reconnect loop; the caller reacts to connect and message. */
export function open(
  s: MqttSettings,
  clock: Clock,
  extra: Partial<IClientOptions>,
  hooks: { onConnect: () => void; onMessage: (topic: string, payload: Buffer) => void; onState: () => void; onAuthFailure?: (text: string) => void },
  maxBackoffMs: number,
): { conn: Connection; stop: () => void } {
  const client = mqttConnect(s.url, {
    protocolVersion: 4,
    clean: true,
    keepalive: s.keepaliveS,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    queueQoSZero: false,
    resubscribe: false,
    ...(s.clientId ? { clientId: s.clientId } : {}),
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
    ...(s.tls ?? {}),
    ...extra,
  });
  const conn: Connection = { client, state: "connecting", detail: s.url, authFailed: false };
  let attempt = 0;
  let retry: TimerHandle | undefined;
  let stopped = false;
  client.on("connect", () => {
    // Events are small and due soon: send each at once, never held back by Nagle's algorithm.
    (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    attempt = 0;
    conn.authFailed = false;
    conn.state = "connected";
    conn.detail = s.url;
    hooks.onConnect();
    hooks.onState();
  });
  client.on("message", (topic, payload) => hooks.onMessage(topic, payload));
  client.on("error", (e) => {
    const r = brokerRefusal(e as Error & { code?: unknown });
    if (r.auth && !conn.authFailed) hooks.onAuthFailure?.(r.text);
    conn.authFailed ||= r.auth;
    conn.detail = r.text;
  });
  client.on("close", () => {
    if (stopped) return;
    conn.state = "disconnected";
    if (conn.detail === s.url) conn.detail = "the broker went away";
    hooks.onState();
    clock.clearTimer(retry);
    retry = clock.setTimer(
      () => {
        retry = undefined;
        if (stopped) return;
        conn.state = "connecting";
        hooks.onState();
        client.reconnect();
      },
      backoff(attempt++, maxBackoffMs),
    );
  });
  const stop = (): void => {
    stopped = true;
    clock.clearTimer(retry);
    client.end(true);
    conn.state = "stopped";
  };
  return { conn, stop };
}

/** The topics under a prefix (docs/protocol.md); `me` is a listener's topic level. */
export function topics(prefix: string, me = "+") {
  return {
    events: `${prefix}/events`,
    master: `${prefix}/master`,
    hello: `${prefix}/hello/${me}`,
    ping: `${prefix}/sync/${me}/ping`,
    pong: `${prefix}/sync/${me}/pong`,
    report: `${prefix}/report/${me}`,
  };
}

/** A broker URL without the credentials it may hold, for a status or a log line. */
export function brokerPlace(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//");
}
