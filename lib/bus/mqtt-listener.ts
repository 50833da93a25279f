// A listener's side of the bus over MQTT (topics in mqtt-link.ts): subscribes to the events,
// the master's retained welcome and its own pong topic, then says hello (retained, emptied by
// its will when it goes away), pings and reports on its own topics. It tells "no master" from
// "no broker": the broker may be up while no master has announced itself.

import type { UpstreamFrame } from "./frames";
import { decodeDownstream, helloText } from "./frames";
import { open, topicLevel, topics, type Connection, type MqttSettings } from "./mqtt-link";
import type { LinkStatus, ListenerOptions } from "./transport";
import { ListenerBase, silentText } from "./transport-base";

export interface MqttListenerOptions extends ListenerOptions {
  settings: MqttSettings;
}

export class MqttListener extends ListenerBase {
  private conn: Connection | undefined;
  private stopConn: (() => void) | undefined;
  private masterPresent: boolean | undefined;
  /** Said while the link is re-made after the master fell silent, until the next connect. */
  private silence = "";
  private readonly topics: ReturnType<typeof topics>;
  declare protected readonly opts: MqttListenerOptions;

  constructor(opts: MqttListenerOptions) {
    super(opts, (f) => this.publish(f.type === "ping" ? this.topics.ping : this.topics.report, f));
    this.topics = topics(opts.settings.prefix, topicLevel(opts.name));
  }

  get status(): LinkStatus {
    if (!this.conn) return { state: "disconnected", detail: "" };
    if (this.silence && this.conn.state !== "connected") return { state: this.conn.state, detail: this.silence };
    if (this.conn.state === "connected" && this.masterPresent === false)
      return { state: "connected", detail: "the broker is up, but no master has announced itself" };
    return { state: this.conn.state, detail: this.conn.detail };
  }

  start(): void {
    const s = this.opts.settings;
    const t = this.topics;
    const { conn, stop } = open(
      s,
      this.opts.clock,
      { will: { topic: t.hello, payload: Buffer.alloc(0), qos: 1, retain: true } },
      {
        onConnect: () => {
          this.silence = "";
          this.connected();
          this.upkeep.stop();
          conn.client.subscribe({ [t.events]: { qos: s.qos }, [t.master]: { qos: 1 }, [t.pong]: { qos: 0 } }, () => {
            conn.client.publish(t.hello, helloText(this.opts.name, this.opts.instance), { qos: 1, retain: true });
            this.upkeep.start();
          });
        },
        onMessage: (topic, payload) => this.receive(topic, payload),
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

  protected silent(ms: number): boolean {
    // A master that announced itself went quiet. The broker link may be dead without a FIN (MQTT's
    // keepalive notices only after 1.5 x keepalive): cut it and reconnect with the usual backoff.
    // A master that said goodbye (its retained welcome emptied) is absent, not silent: the status says so.
    if (this.masterPresent === false) {
      this.upkeep.start();
      return false;
    }
    this.silence = silentText(ms);
    this.conn?.client.stream?.destroy();
    return true;
  }

  private publish(topic: string, f: UpstreamFrame): void {
    const c = this.conn?.client;
    if (c?.connected) c.publish(topic, JSON.stringify(f), { qos: 0 });
  }

  private receive(topic: string, payload: Buffer): void {
    if (topic === this.topics.master) {
      const was = this.masterPresent;
      this.masterPresent = payload.length > 0;
      // Its retained welcome says its protocol: how this listener writes its reports.
      const w = this.masterPresent && payload.length <= this.opts.settings.maxPayload ? decodeDownstream(payload.toString()) : undefined;
      this.upkeep.masterProtocol = w?.ok && "type" in w.frame && w.frame.type === "welcome" ? w.frame.protocol : 1;
      if (was !== this.masterPresent) this.opts.onState?.(this.status.state, this.status.detail);
      return;
    }
    // Over the limit: rejected unread (the broker may carry bigger messages than this listener takes).
    const text = payload.length > this.opts.settings.maxPayload ? null : payload.toString();
    this.take(text, topic === this.topics.pong ? "pong" : "events");
  }
}
