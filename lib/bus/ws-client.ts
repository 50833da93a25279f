// A listener's side of the bus over WebSocket: connects (with the token as a Bearer
// header), says hello, keeps its clock offset to the master by pinging (quickly after
// connecting, then steadily) and from the send time on event frames, hands events on,
// sends reports upstream, and reconnects with capped exponential backoff and jitter.

import WebSocket from "ws";
import type { TimerHandle } from "../clock";
import { helloText, type UpstreamFrame } from "./frames";
import type { LinkState, LinkStatus, ListenerOptions } from "./transport";
import { backoff, ListenerBase, silentText } from "./transport-base";

export interface BusClientOptions extends ListenerOptions {
  url: string;
  token?: string;
  maxPayload: number;
  /** ca/cert/key/rejectUnauthorized for wss */
  tls?: WebSocket.ClientOptions;
}

export class BusClient extends ListenerBase {
  private ws: WebSocket | undefined;
  private state: LinkState = "disconnected";
  private detail = "";
  private attempt = 0;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;
  /** Why the link was closed from this side (the master fell silent): said until the next connect succeeds. */
  private silence = "";
  declare protected readonly opts: BusClientOptions;

  constructor(opts: BusClientOptions) {
    super(opts, (f) => this.sendFrame(f));
  }

  get status(): LinkStatus {
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

  private setState(state: LinkState, detail: string): void {
    this.state = state;
    this.detail = detail;
    this.opts.onState?.(state, detail);
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState("connecting", this.silence || this.opts.url);
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
      why ||=
        e.code === "ENOTFOUND"
          ? `cannot resolve ${new URL(this.opts.url).hostname}`
          : e.code === "ECONNREFUSED"
            ? "connection refused: is the master running?"
            : e.message;
    });
    ws.on("open", () => {
      this.connected();
      this.attempt = 0;
      this.silence = "";
      this.setState("connected", this.opts.url);
      ws.send(helloText(this.opts.name, this.opts.instance));
      this.upkeep.start();
    });
    ws.on("message", (data, isBinary) => this.take(isBinary ? null : data.toString(), "socket"));
    // The master's own heartbeat is a sign of life too.
    ws.on("ping", () => this.upkeep.heard(this.opts.clock.now()));
    ws.on("close", (code, reason) => {
      this.upkeep.stop();
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      const text =
        why ||
        this.silence ||
        (code === 1009 ? "a frame from the master was over the size limit" : `closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
      this.setState("disconnected", text);
      this.retry();
    });
  }

  protected silent(ms: number): boolean {
    // No FIN came (a Wi-Fi drop, a hung master): the socket looks open. Cut it; close() retries.
    this.silence = silentText(ms);
    this.ws?.terminate();
    return true;
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
}
