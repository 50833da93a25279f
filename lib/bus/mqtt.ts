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

import type { IClientOptions, MqttClient } from "mqtt";
import type { Clock, TimerHandle } from "../clock";
import { ClockSync } from "./clock-sync";
import { decodeDownstream, decodeUpstream, prepareFrames, PROTOCOL, type EventFrame, type ReportFrame, type UpstreamFrame } from "./frames";
import { WARM_UP } from "./slices";
import type { ClientCounters, ClientState } from "./client";
import { FrameRates } from "./rates";
import { batchFrames, DEFAULT_MAX_CLIENTS, knownReport, serverCounters, type ServerCounters } from "./server";
import { backoff, ListenerUpkeep, TurnBatcher } from "./upkeep";

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

interface Connection {
  client: MqttClient;
  state: ClientState;
  detail: string;
  authFailed: boolean;
}

/** Opens one MQTT client with our own reconnect loop; the caller reacts to connect and message. */
function open(
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
    retry = clock.setTimer(() => {
      retry = undefined;
      if (stopped) return;
      conn.state = "connecting";
      hooks.onState();
      client.reconnect();
    }, backoff(attempt++, maxBackoffMs));
  });
  const stop = (): void => {
    stopped = true;
    clock.clearTimer(retry);
    client.end(true);
    conn.state = "stopped";
  };
  return { conn, stop };
}

export interface MqttMasterOptions {
  clock: Clock;
  settings: MqttSettings;
  name?: string;
  maxRejected?: number;
  maxBuffered?: number;
  /** Listener names known at most; hellos of more are ignored and counted. */
  maxClients?: number;
  /** This master's run (newRunId()), in the welcome and on every frame. */
  run?: string;
  onReport?: (report: ReportFrame & { remote: string }) => void;
  onChange?: () => void;
  onAuthFailure?: (text: string) => void;
  maxBackoffMs?: number;
}

/** A listener not heard from (hello, ping, report) for this long may make room for a new one. */
const SILENT_MS = 60_000;

export class MqttMaster {
  readonly counters: ServerCounters & { broker_reconnects: number } = { ...serverCounters(), broker_reconnects: 0 };
  readonly lastErrors: string[] = [];
  private readonly listeners = new Map<string, { name: string; limits: FrameRates; heard: number }>();
  private readonly strangers = new FrameRates();
  private readonly topics: { events: string; master: string };
  private readonly queue: TurnBatcher;
  private conn: Connection | undefined;
  private stopConn: (() => void) | undefined;
  private connects = 0;

  constructor(private readonly opts: MqttMasterOptions) {
    prepareFrames();
    const p = opts.settings.prefix;
    this.topics = { events: `${p}/events`, master: `${p}/master` };
    this.queue = new TurnBatcher(opts.clock, (events) => this.publishEvents(events));
  }

  get status(): { state: ClientState; detail: string } {
    return this.conn ? { state: this.conn.state, detail: this.conn.detail } : { state: "disconnected", detail: "" };
  }

  /** Connects to the broker; resolves at once (the status tells how it goes). */
  listen(): Promise<void> {
    const s = this.opts.settings;
    const p = s.prefix;
    const welcome = JSON.stringify({ type: "welcome", protocol: PROTOCOL, ...(this.opts.name ? { master: this.opts.name } : {}), ...(this.opts.run ? { run: this.opts.run } : {}) });
    const { conn, stop } = open(
      s,
      this.opts.clock,
      { will: { topic: this.topics.master, payload: Buffer.alloc(0), qos: 1, retain: true } },
      {
        onConnect: () => {
          if (++this.connects > 1) this.counters.broker_reconnects++;
          this.listeners.clear();
          conn.client.subscribe([`${p}/hello/+`, `${p}/report/+`, `${p}/sync/+/ping`], { qos: 0 });
          conn.client.publish(this.topics.master, welcome, { qos: 1, retain: true });
        },
        onMessage: (topic, payload) => this.receive(topic, payload),
        onState: () => this.opts.onChange?.(),
        onAuthFailure: (text) => {
          this.counters.unauthorized++;
          this.note(text);
          this.opts.onAuthFailure?.(text);
        },
      },
      this.opts.maxBackoffMs ?? 10_000,
    );
    this.conn = conn;
    this.stopConn = stop;
    return Promise.resolve();
  }

  get clients(): Array<{ name?: string; remote: string; hello: boolean }> {
    return [...this.listeners.values()].map((l) => ({ name: l.name, remote: "mqtt", hello: true }));
  }

  send(frame: EventFrame): void {
    this.queue.push(frame);
  }

  private publishEvents(events: EventFrame[]): void {
    this.counters.events += events.length;
    const c = this.conn?.client;
    const { texts, dropped } = batchFrames(events, this.opts.settings.maxPayload, this.opts.clock.now(), this.opts.run);
    if (dropped) {
      this.counters.events_dropped += dropped;
      this.note(`dropped ${dropped} event frame(s) over the ${this.opts.settings.maxPayload}-byte frame limit`);
    }
    for (const b of texts) {
      // Not connected, or the socket already holds more than the bound: drop and count, never queue.
      const buffered = (c?.stream as { writableLength?: number } | undefined)?.writableLength ?? 0;
      if (!c?.connected || buffered > (this.opts.maxBuffered ?? 4 * 1024 * 1024)) {
        this.counters.frames_dropped++;
        this.counters.events_dropped += b.events;
        continue;
      }
      c.publish(this.topics.events, b.text, { qos: this.opts.settings.qos });
    }
  }

  close(): Promise<void> {
    const c = this.conn?.client;
    return new Promise((resolve) => {
      if (!c?.connected) {
        this.stopConn?.();
        resolve();
        return;
      }
      // Say goodbye: the retained welcome is removed, so listeners know the master is gone.
      // A broker that is going away may never confirm: do not wait for it for long.
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.opts.clock.clearTimer(timer);
        this.stopConn?.();
        resolve();
      };
      const timer = this.opts.clock.setTimer(finish, 500);
      c.publish(this.topics.master, "", { qos: 0, retain: true }, finish);
    });
  }

  private receive(topic: string, payload: Buffer): void {
    const t1 = this.opts.clock.now();
    const levels = topic.slice(this.opts.settings.prefix.length + 1).split("/");
    const kind = levels[0];
    const who = levels[1] ?? "";
    const text = payload.toString();
    if (kind === "hello" && text === "") {
      // a listener's will, or its goodbye
      if (this.listeners.delete(who)) this.opts.onChange?.();
      return;
    }
    if (payload.length > this.opts.settings.maxPayload) {
      this.counters.oversize++;
      return this.reject(who, `a frame over ${this.opts.settings.maxPayload} bytes`);
    }
    const decoded = decodeUpstream(text);
    if (!decoded.ok) return this.reject(who, decoded.error);
    const f = decoded.frame;
    const expected = kind === "sync" ? "ping" : kind;
    if (f.type !== expected) return this.reject(who, `a ${f.type} frame on the ${kind} topic`);
    if ((f.type === "hello" || f.type === "report") && topicLevel(f.name) !== who) return this.reject(who, `the frame names ${JSON.stringify(f.name)} but came on ${topic}`);
    // Each listener that said hello has its own rates; the number of them is capped.
    let l = this.listeners.get(who);
    // A ping or report may overtake its listener's hello (another topic), or come from a client
    // that never says hello: taken, within one rate for all such together.
    if (!l && f.type !== "hello") l = { name: who, limits: this.strangers, heard: t1 };
    if (!l) {
      // A listener that went away without its will (a broker that lost it) is forgotten once silent for a minute.
      if (this.listeners.size >= (this.opts.maxClients ?? DEFAULT_MAX_CLIENTS)) for (const [k, x] of this.listeners) if (x.heard < t1 - SILENT_MS) this.listeners.delete(k);
      if (this.listeners.size >= (this.opts.maxClients ?? DEFAULT_MAX_CLIENTS)) {
        this.counters.refused_full++;
        return this.note(`ignored the hello of ${who}: ${this.opts.maxClients ?? DEFAULT_MAX_CLIENTS} listeners are known`);
      }
      this.counters.connections++;
      this.listeners.set(who, (l = { name: f.type === "hello" ? f.name : who, limits: new FrameRates(), heard: t1 }));
      this.opts.onChange?.();
    }
    const over = l.limits.over(f.type, t1);
    if (over) return this.reject(who, over);
    l.heard = t1;
    switch (f.type) {
      case "hello":
        break;
      case "ping":
        this.conn?.client.publish(`${this.opts.settings.prefix}/sync/${who}/pong`, JSON.stringify({ type: "pong", id: f.id, t0: f.t0, t1, t2: this.opts.clock.now() }), { qos: 0 });
        break;
      case "report":
        this.opts.onReport?.({ ...knownReport(f), remote: "mqtt" });
        break;
    }
  }

  private reject(who: string, why: string): void {
    this.counters.rejected++;
    this.note(`rejected a frame from ${who || "?"}: ${why}`);
  }

  private note(text: string): void {
    this.lastErrors.push(text);
    if (this.lastErrors.length > 20) this.lastErrors.shift();
  }
}

export interface MqttListenerOptions {
  clock: Clock;
  settings: MqttSettings;
  name: string;
  /** Events in the order they came, when, and under which master run (absent from an old master). */
  onEvents: (events: EventFrame[], receivedAt: number, run: string | undefined) => void;
  /** This listener's life (newRunId()): in its hello and reports. */
  instance?: string;
  /** The master run its events follow, for its reports. */
  run?: () => string | undefined;
  onState?: (state: ClientState, detail: string) => void;
  onAuthFailure?: (text: string) => void;
  report?: () => Record<string, number>;
  reportEveryMs?: number;
  maxBackoffMs?: number;
}

export class MqttListener {
  readonly sync = new ClockSync();
  readonly counters: ClientCounters = { connects: 0, reconnects: 0, rejected: 0, frames: 0, events: 0 };
  /** The longest one message took to decode and hand on (after the first WARM_UP), ms: this listener's own stall of the event loop. */
  longestReceiveMs = 0;
  private received = 0;
  private conn: Connection | undefined;
  private stopConn: (() => void) | undefined;
  private readonly upkeep: ListenerUpkeep;
  private masterPresent: boolean | undefined;
  private readonly topics: { events: string; master: string; hello: string; ping: string; pong: string; report: string };

  constructor(private readonly opts: MqttListenerOptions) {
    prepareFrames();
    const p = opts.settings.prefix;
    const me = topicLevel(opts.name);
    this.topics = { events: `${p}/events`, master: `${p}/master`, hello: `${p}/hello/${me}`, ping: `${p}/sync/${me}/ping`, pong: `${p}/sync/${me}/pong`, report: `${p}/report/${me}` };
    this.upkeep = new ListenerUpkeep({ ...opts, sync: this.sync, send: (f) => this.publish(f.type === "ping" ? this.topics.ping : this.topics.report, f) });
  }

  get status(): { state: ClientState; detail: string } {
    if (!this.conn) return { state: "disconnected", detail: "" };
    if (this.conn.state === "connected" && this.masterPresent === false) return { state: "connected", detail: "the broker is up, but no master has announced itself" };
    return { state: this.conn.state, detail: this.conn.detail };
  }

  start(): void {
    const s = this.opts.settings;
    const { conn, stop } = open(
      s,
      this.opts.clock,
      { will: { topic: this.topics.hello, payload: Buffer.alloc(0), qos: 1, retain: true } },
      {
        onConnect: () => {
          this.counters.connects++;
          if (this.counters.connects > 1) this.counters.reconnects++;
          this.sync.reset();
          this.upkeep.stop();
          conn.client.subscribe({ [this.topics.events]: { qos: s.qos }, [this.topics.master]: { qos: 1 }, [this.topics.pong]: { qos: 0 } }, () => {
            conn.client.publish(this.topics.hello, JSON.stringify({ type: "hello", name: this.opts.name, protocol: PROTOCOL, ...(this.opts.instance ? { instance: this.opts.instance } : {}) }), { qos: 1, retain: true });
            this.upkeep.start();
          });
        },
        onMessage: (topic, payload) => {
          const began = this.opts.clock.now();
          this.receive(topic, payload);
          if (++this.received > WARM_UP) this.longestReceiveMs = Math.max(this.longestReceiveMs, this.opts.clock.now() - began);
        },
        onState: () => {
          if (conn.state !== "connected") this.upkeep.stop();
          this.opts.onState?.(this.status.state, this.status.detail);
        },
        ...(this.opts.onAuthFailure ? { onAuthFailure: this.opts.onAuthFailure } : {}),
      },
      this.opts.maxBackoffMs ?? 10_000,
    );
    this.conn = conn;
    this.stopConn = stop;
  }

  stop(): void {
    this.upkeep.stop();
    const c = this.conn?.client;
    if (c?.connected) c.publish(this.topics.hello, "", { qos: 0, retain: true });
    this.stopConn?.();
    this.opts.onState?.("stopped", "");
  }

  private publish(topic: string, f: UpstreamFrame): void {
    const c = this.conn?.client;
    if (c?.connected) c.publish(topic, JSON.stringify(f), { qos: 0 });
  }

  private receive(topic: string, payload: Buffer): void {
    const now = this.opts.clock.now();
    if (topic === this.topics.master) {
      const was = this.masterPresent;
      this.masterPresent = payload.length > 0;
      if (was !== this.masterPresent) this.opts.onState?.(this.status.state, this.status.detail);
      return;
    }
    this.counters.frames++;
    if (payload.length > this.opts.settings.maxPayload) {
      this.counters.rejected++;
      return;
    }
    const decoded = decodeDownstream(payload.toString());
    if (!decoded.ok) {
      this.counters.rejected++;
      return;
    }
    const f = decoded.frame;
    if (topic === this.topics.pong) {
      if ("type" in f && f.type === "pong") this.sync.add(f.t0, f.t1, f.t2, now);
      else this.counters.rejected++;
      return;
    }
    if ("type" in f) {
      if (f.type === "batch") {
        if (f.sent !== undefined) this.sync.addDownstream(f.sent, now);
        this.counters.events += f.events.length;
        this.opts.onEvents(f.events, now, f.run);
      } else this.counters.rejected++;
      return;
    }
    if (f.sent !== undefined) this.sync.addDownstream(f.sent, now);
    this.counters.events++;
    this.opts.onEvents([f], now, f.run);
  }
}
