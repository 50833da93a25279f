// The master's side of the bus over MQTT (topics in mqtt-link.ts): publishes its welcome
// (retained, emptied by its will when it goes away), every turn's events as batch frames on
// <prefix>/events, answers each listener's pings on its own pong topic and takes reports.
// Listeners are known by the topic level they say hello on; their number is capped, and each
// has its own frame rates. An event it cannot publish now is dropped and counted, never queued.

import type { TimerHandle } from "../clock";
import { decodeUpstream, welcomeText, type Serialised } from "./frames";
import { brokerPlace, open, topicLevel, topics, type Connection, type MqttSettings } from "./mqtt-link";
import { FrameRates } from "./rates";
import type { LinkStatus, ListenerInfo, MasterCounters, MasterOptions, MasterTransport } from "./transport";
import { DEFAULT_MAX_BUFFERED, DEFAULT_MAX_CLIENTS, MasterBase } from "./transport-base";

export interface MqttMasterOptions extends MasterOptions {
  settings: MqttSettings;
}

/** A listener not heard from (hello, ping, report) for this long may make room for a new one. */
const SILENT_MS = 60_000;
/**
 * A listener whose empty hello came (its will, its goodbye, or on an open broker anybody's) stays
 * listed this long; a ping or report from it meanwhile says it never left. Longer than the
 * longest ping pace (2 s), so that one forged goodbye cannot take a Pi off the list.
 */
export const GOODBYE_GRACE_MS = 3000;

export class MqttMaster extends MasterBase implements MasterTransport {
  declare readonly counters: MasterCounters & { broker_reconnects: number; goodbyes_overruled: number };
  /** `gone`: when an empty hello (its will, its goodbye, or anyone's on an open broker) said it left; a ping or report after it says otherwise. */
  private readonly listeners = new Map<string, { name: string; limits: FrameRates; heard: number; gone?: number }>();
  private readonly strangers = new FrameRates();
  private readonly topics: ReturnType<typeof topics>;
  private conn: Connection | undefined;
  private stopConn: (() => void) | undefined;
  private connects = 0;
  private goodbyeTimer: TimerHandle | undefined;
  declare protected readonly opts: MqttMasterOptions;

  constructor(opts: MqttMasterOptions) {
    super(opts);
    this.counters = Object.assign(this.counters, { broker_reconnects: 0, goodbyes_overruled: 0 });
    this.topics = topics(opts.settings.prefix);
  }

  get status(): LinkStatus {
    return this.conn ? { state: this.conn.state, detail: this.conn.detail } : { state: "disconnected", detail: "" };
  }

  get where(): string {
    return brokerPlace(this.opts.settings.url);
  }

  describe(): Record<string, unknown> {
    return { broker: this.where, state: this.status.state };
  }

  protected get maxPayload(): number {
    return this.opts.settings.maxPayload;
  }

  protected get listenerCount(): number {
    return this.listeners.size;
  }

  /** Connects to the broker; resolves at once (the status tells how it goes). */
  listen(): Promise<void> {
    const t = this.topics;
    const { conn, stop } = open(
      this.opts.settings,
      this.opts.clock,
      { will: { topic: t.master, payload: Buffer.alloc(0), qos: 1, retain: true } },
      {
        onConnect: () => {
          if (++this.connects > 1) this.counters.broker_reconnects++;
          this.listeners.clear();
          conn.client.subscribe([t.hello, t.report, t.ping], { qos: 0 });
          conn.client.publish(t.master, welcomeText(this.opts.name, this.opts.run), { qos: 1, retain: true });
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

  get clients(): ListenerInfo[] {
    return [...this.listeners.values()].map((l) => ({ name: l.name, remote: "mqtt", hello: true }));
  }

  protected broadcast(s: Serialised, sent: number): void {
    const c = this.conn?.client;
    for (const b of this.batches(s, sent)) {
      // Not connected, or the socket already holds more than the bound: drop and count, never queue.
      const buffered = (c?.stream as { writableLength?: number } | undefined)?.writableLength ?? 0;
      if (!c?.connected || buffered > (this.opts.maxBuffered ?? DEFAULT_MAX_BUFFERED)) {
        this.counters.frames_dropped++;
        this.counters.events_dropped += b.events;
        continue;
      }
      c.publish(this.topics.events, b.text, { qos: this.opts.settings.qos });
    }
  }

  close(): Promise<void> {
    this.opts.clock.clearTimer(this.goodbyeTimer);
    this.goodbyeTimer = undefined;
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
      // A listener's will, or its goodbye; on an open broker, maybe a stranger's. It leaves the
      // list only if it stays silent for GOODBYE_GRACE_MS.
      const l = this.listeners.get(who);
      if (l && l.gone === undefined) {
        l.gone = t1;
        this.goodbyeTimer ??= this.opts.clock.setTimer(() => this.sweepGone(), GOODBYE_GRACE_MS);
      }
      return;
    }
    if (payload.length > this.maxPayload) {
      this.counters.oversize++;
      return this.reject(who, `a frame over ${this.maxPayload} bytes`);
    }
    const decoded = decodeUpstream(text);
    if (!decoded.ok && decoded.tooLarge) {
      // Honest but too large: counted, within the rate of reports of its listener (or of all strangers).
      const over = (this.listeners.get(who)?.limits ?? this.strangers).over("report", t1);
      return over ? this.reject(who, over) : this.tooLarge(who, decoded.error);
    }
    if (!decoded.ok) return this.reject(who, decoded.error);
    const f = decoded.frame;
    const expected = kind === "sync" ? "ping" : kind;
    if (f.type !== expected) return this.reject(who, `a ${f.type} frame on the ${kind} topic`);
    if ((f.type === "hello" || f.type === "report") && topicLevel(f.name) !== who)
      return this.reject(who, `the frame names ${JSON.stringify(f.name)} but came on ${topic}`);
    // Each listener that said hello has its own rates; the number of them is capped.
    let l = this.listeners.get(who);
    // A ping or report may overtake its listener's hello (another topic), or come from a client
    // that never says hello: taken, within one rate for all such together.
    if (!l && f.type !== "hello") l = { name: who, limits: this.strangers, heard: t1 };
    if (!l) {
      const max = this.opts.maxClients ?? DEFAULT_MAX_CLIENTS;
      // A listener that went away without its will (a broker that lost it) is forgotten once silent for a minute.
      if (this.listeners.size >= max) for (const [k, x] of this.listeners) if (x.heard < t1 - SILENT_MS) this.listeners.delete(k);
      if (this.listeners.size >= max) {
        this.counters.refused_full++;
        return this.note(`ignored the hello of ${who}: ${max} listeners are known`);
      }
      this.counters.connections++;
      this.listeners.set(who, (l = { name: f.type === "hello" ? f.name : who, limits: new FrameRates(), heard: t1 }));
      this.opts.onChange?.();
    }
    const pong = `${this.opts.settings.prefix}/sync/${who}/pong`;
    const over = this.answer(f, t1, l.limits, "mqtt", (answer) => this.conn?.client.publish(pong, answer, { qos: 0 }));
    if (over) return this.reject(who, over);
    l.heard = t1;
    if (l.gone !== undefined) {
      // It said goodbye (or someone said so for it) and speaks on: it is here. A new hello is a return.
      if (f.type !== "hello") this.counters.goodbyes_overruled++;
      l.gone = undefined;
      this.opts.onChange?.();
    }
  }

  /** Takes off the list every listener that said goodbye GOODBYE_GRACE_MS ago and has not spoken since. */
  private sweepGone(): void {
    this.goodbyeTimer = undefined;
    const now = this.opts.clock.now();
    let waiting = false;
    for (const [k, l] of this.listeners) {
      if (l.gone === undefined) continue;
      if (now - l.gone >= GOODBYE_GRACE_MS) this.listeners.delete(k);
      else waiting = true;
    }
    if (waiting) this.goodbyeTimer = this.opts.clock.setTimer(() => this.sweepGone(), GOODBYE_GRACE_MS);
    this.opts.onChange?.();
  }

  private reject(who: string, why: string): void {
    this.counters.rejected++;
    this.note(`rejected a frame from ${who || "?"}: ${why}`);
  }
}
