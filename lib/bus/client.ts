// A listener's side of the bus over WebSocket: connects (with the token as a Bearer
// header), says hello, keeps its clock offset to the master by pinging (quickly after
// connecting, then steadily) and from the send time on event frames, hands events on,
// sends reports upstream, and reconnects with capped exponential backoff and jitter.

import WebSocket from "ws";
import type { Clock, TimerHandle } from "../clock";
import { ClockSync } from "./clock-sync";
import { decodeDownstream, prepareFrames, PROTOCOL, type EventFrame, type UpstreamFrame } from "./frames";
import { WARM_UP } from "./slices";
import { backoff, ListenerUpkeep } from "./upkeep";

export type ClientState = "connecting" | "connected" | "disconnected" | "stopped";

export interface BusClientOptions {
  clock: Clock;
  url: string;
  token?: string;
  name: string;
  maxPayload: number;
  /** ca/cert/key/rejectUnauthorized for wss */
  tls?: WebSocket.ClientOptions;
  /** Events in the order they came, when, and under which master run (absent from an old master). */
  onEvents: (events: EventFrame[], receivedAt: number, run: string | undefined) => void;
  /** This listener's life (newRunId()): in its hello and reports. */
  instance?: string;
  /** The master run its events follow, for its reports. */
  run?: () => string | undefined;
  onState?: (state: ClientState, detail: string) => void;
  /** What to report upstream every reportEveryMs. */
  report?: () => Record<string, number>;
  reportEveryMs?: number;
  /** Cap of the reconnect backoff. */
  maxBackoffMs?: number;
}

export interface ClientCounters {
  connects: number;
  reconnects: number;
  /** frames from the master that failed the schema */
  rejected: number;
  frames: number;
  events: number;
}

export class BusClient {
  readonly sync = new ClockSync();
  readonly counters: ClientCounters = { connects: 0, reconnects: 0, rejected: 0, frames: 0, events: 0 };
  /** The longest one frame took to decode and hand on (after the first WARM_UP), ms: this listener's own stall of the event loop. */
  longestReceiveMs = 0;
  private ws: WebSocket | undefined;
  private state: ClientState = "disconnected";
  private detail = "";
  private attempt = 0;
  private readonly upkeep: ListenerUpkeep;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly opts: BusClientOptions) {
    prepareFrames();
    this.upkeep = new ListenerUpkeep({ ...opts, sync: this.sync, send: (f) => this.sendFrame(f) });
  }

  get status(): { state: ClientState; detail: string } {
    return { state: this.state, detail: this.detail };
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.upkeep.stop();
    this.opts.clock.clearTimer(this.retryTimer);
    this.retryTimer = undefined;
    this.ws?.removeAllListeners();
    this.ws?.on("error", () => undefined);
    this.ws?.terminate();
    this.ws = undefined;
    this.setState("stopped", "");
  }

  private setState(state: ClientState, detail: string): void {
    this.state = state;
    this.detail = detail;
    this.opts.onState?.(state, detail);
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState("connecting", this.opts.url);
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url, {
        maxPayload: this.opts.maxPayload,
        handshakeTimeout: 5000,
        headers: this.opts.token ? { Authorization: `Bearer ${this.opts.token}` } : {},
        ...(this.opts.tls ?? {}),
      });
    } catch (e) {
      // A malformed URL: retrying will not help, but keep the same cadence so the status stays visible.
      this.setState("disconnected", `bad URL ${JSON.stringify(this.opts.url)}: ${(e as Error).message}`);
      this.retry();
      return;
    }
    this.ws = ws;
    let why = "";
    ws.on("unexpected-response", (_req, res) => {
      why = res.statusCode === 401 ? "401 unauthorized: the token is missing or wrong" : `HTTP ${res.statusCode} from the master`;
      res.resume();
      ws.terminate();
    });
    ws.on("error", (e: NodeJS.ErrnoException) => {
      why ||= e.code === "ENOTFOUND" ? `cannot resolve ${new URL(this.opts.url).hostname}` : e.code === "ECONNREFUSED" ? "connection refused: is the master running?" : e.message;
    });
    ws.on("open", () => {
      this.counters.connects++;
      if (this.counters.connects > 1) this.counters.reconnects++;
      this.attempt = 0;
      this.sync.reset();
      this.setState("connected", this.opts.url);
      this.sendFrame({ type: "hello", name: this.opts.name, protocol: PROTOCOL, ...(this.opts.instance ? { instance: this.opts.instance } : {}) });
      this.upkeep.start();
    });
    ws.on("message", (data, isBinary) => this.timed(() => this.receive(isBinary ? null : data.toString())));
    ws.on("close", (code, reason) => {
      this.upkeep.stop();
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      const text = why || (code === 1009 ? "a frame from the master was over the size limit" : `closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
      this.setState("disconnected", text);
      this.retry();
    });
  }

  private retry(): void {
    if (this.stopped) return;
    const delay = backoff(this.attempt++, this.opts.maxBackoffMs ?? 10_000);
    this.retryTimer = this.opts.clock.setTimer(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private sendFrame(f: UpstreamFrame): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(f));
  }

  private received = 0;

  private timed(f: () => void): void {
    const began = this.opts.clock.now();
    f();
    if (++this.received > WARM_UP) this.longestReceiveMs = Math.max(this.longestReceiveMs, this.opts.clock.now() - began);
  }

  private receive(text: string | null): void {
    const now = this.opts.clock.now();
    this.counters.frames++;
    const decoded = text === null ? ({ ok: false, error: "binary frame" } as const) : decodeDownstream(text);
    if (!decoded.ok) {
      this.counters.rejected++;
      return;
    }
    const f = decoded.frame;
    if ("type" in f) {
      if (f.type === "pong") this.sync.add(f.t0, f.t1, f.t2, now);
      else if (f.type === "batch") {
        if (f.sent !== undefined) this.sync.addDownstream(f.sent, now);
        this.counters.events += f.events.length;
        this.opts.onEvents(f.events, now, f.run);
      }
      return;
    }
    if (f.sent !== undefined) this.sync.addDownstream(f.sent, now);
    this.counters.events++;
    this.opts.onEvents([f], now, f.run);
  }
}
