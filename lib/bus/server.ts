// The master's side of the bus over WebSocket: accepts listeners (token checked on the HTTP
// upgrade, refused with 401 before any frame), answers their hellos and pings, takes their
// reports, and broadcasts events: a batch frame per flush to listeners that said hello,
// one plain {"event","payload",...} frame per event to clients that did not (the seed's
// bridge). A slow client never makes the master buffer without bound: above maxBuffered
// bytes waiting on its socket, frames for it are dropped and counted, and it sees the gap.

import { timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import { WebSocketServer, type WebSocket } from "ws";
import type { Clock } from "../clock";
import { decodeUpstream, prepareFrames, PROTOCOL, type EventFrame, type UpstreamFrame } from "./frames";
import { TurnBatcher } from "./upkeep";

export interface BusServerOptions {
  clock: Clock;
  host: string;
  port: number;
  path: string;
  /** Shared token; undefined or "" = an open bus. */
  token?: string;
  maxPayload: number;
  /** Bytes waiting on one client's socket above which its frames are dropped. */
  maxBuffered?: number;
  /** key/cert for wss. */
  tls?: https.ServerOptions;
  name?: string;
  /** A client that sends this many rejected frames is disconnected. */
  maxRejected?: number;
  onReport?: (report: Extract<UpstreamFrame, { type: "report" }> & { remote: string }) => void;
  onChange?: () => void;
}

export interface ServerCounters {
  connections: number;
  unauthorized: number;
  rejected: number;
  oversize: number;
  disconnected_for_abuse: number;
  events: number;
  frames_dropped: number;
  events_dropped: number;
}

interface Peer {
  ws: WebSocket;
  remote: string;
  name?: string;
  hello: boolean;
  rejected: number;
  /** pings answered in the current second, and which second */
  pings: number;
  pingSecond: number;
}

/** Pings answered per client per second; more are a flood, rejected and counted. */
const MAX_PINGS_PER_S = 50;

export const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
/** Events per batch frame at most, so one frame never holds up a listener for long. */
/** Events in one batch frame at most; a listener refuses a bigger batch (schemas/bus-frame.schema.json says the same). */
export const MAX_EVENTS_PER_FRAME = 2000;

export class BusServer {
  readonly counters: ServerCounters = { connections: 0, unauthorized: 0, rejected: 0, oversize: 0, disconnected_for_abuse: 0, events: 0, frames_dropped: 0, events_dropped: 0 };
  readonly lastErrors: string[] = [];
  private readonly peers = new Set<Peer>();
  private readonly http: http.Server | https.Server;
  private readonly wss: WebSocketServer;
  private readonly queue: TurnBatcher;

  constructor(private readonly opts: BusServerOptions) {
    prepareFrames();
    this.queue = new TurnBatcher(opts.clock, (events) => this.broadcast(events));
    this.http = opts.tls ? https.createServer(opts.tls) : http.createServer();
    this.http.on("request", (_req, res) => {
      res.writeHead(426, { "Content-Type": "text/plain" });
      res.end("sqi-event-bus: connect with a WebSocket\n");
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
    this.http.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "http://bus");
      if (url.pathname !== opts.path) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      if (opts.token && !tokenMatches(req, url, opts.token)) {
        this.counters.unauthorized++;
        this.note(`refused ${req.socket.remoteAddress}: no or wrong token`);
        socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="sqi-event-bus"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`));
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(e);
      this.http.once("error", fail);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off("error", fail);
        resolve();
      });
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.http.address();
    return typeof a === "object" && a ? a.port : this.opts.port;
  }

  get clients(): Array<{ name?: string; remote: string; hello: boolean }> {
    return [...this.peers].map((p) => ({ ...(p.name ? { name: p.name } : {}), remote: p.remote, hello: p.hello }));
  }

  /** Queues an event; everything queued in one turn of the event loop goes out as one batch. */
  send(frame: EventFrame): void {
    this.queue.push(frame);
  }

  /** Sends what is queued now, without waiting for the end of this turn. */
  flush(): void {
    this.queue.now();
  }

  private broadcast(events: EventFrame[]): void {
    this.counters.events += events.length;
    const sent = this.opts.clock.now();
    // Each event is serialised once and shared by every peer.
    const { texts, bytes, dropped } = serialise(events, this.opts.maxPayload);
    if (dropped) {
      this.counters.events_dropped += dropped;
      this.note(`dropped ${dropped} event frame(s) over the ${this.opts.maxPayload}-byte frame limit`);
    }
    let batches: Array<{ text: string; events: number }> | undefined;
    for (const p of this.peers) {
      if (p.hello) {
        batches ??= batch(texts, bytes, sent, this.opts.maxPayload);
        for (const b of batches) this.write(p, b.text, b.events);
      } else {
        // The seed's bridge: one frame per event, the same keys it reads.
        for (const t of texts) this.write(p, t, 1);
      }
    }
  }

  close(): Promise<void> {
    for (const p of this.peers) p.ws.terminate();
    this.peers.clear();
    return new Promise((resolve) => {
      this.wss.close(() => this.http.close(() => resolve()));
      this.http.closeAllConnections?.();
    });
  }

  private write(p: Peer, text: string, events: number): void {
    if (p.ws.readyState !== p.ws.OPEN) return;
    if (p.ws.bufferedAmount > (this.opts.maxBuffered ?? DEFAULT_MAX_BUFFERED)) {
      this.counters.frames_dropped++;
      this.counters.events_dropped += events;
      return;
    }
    p.ws.send(text);
  }

  private accept(ws: WebSocket, remote: string): void {
    const peer: Peer = { ws, remote, hello: false, rejected: 0, pings: 0, pingSecond: 0 };
    this.peers.add(peer);
    this.counters.connections++;
    this.opts.onChange?.();
    ws.on("message", (data, isBinary) => this.receive(peer, isBinary ? null : data.toString()));
    ws.on("error", (e) => {
      if ((e as { code?: string }).code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.counters.oversize++;
        this.note(`closed ${peer.name ?? remote}: a frame over ${this.opts.maxPayload} bytes`);
      }
    });
    ws.on("close", () => {
      this.peers.delete(peer);
      this.opts.onChange?.();
    });
  }

  private receive(peer: Peer, text: string | null): void {
    const t1 = this.opts.clock.now();
    const decoded = text === null ? ({ ok: false, error: "binary frames are not part of the protocol" } as const) : decodeUpstream(text);
    if (!decoded.ok) return this.reject(peer, decoded.error);
    const f = decoded.frame;
    if (f.type === "ping") {
      const second = Math.floor(t1 / 1000);
      if (second !== peer.pingSecond) {
        peer.pingSecond = second;
        peer.pings = 0;
      }
      if (++peer.pings > MAX_PINGS_PER_S) return this.reject(peer, `more than ${MAX_PINGS_PER_S} pings a second`);
    }
    switch (f.type) {
      case "hello":
        peer.hello = true;
        peer.name = f.name;
        peer.ws.send(JSON.stringify({ type: "welcome", protocol: PROTOCOL, ...(this.opts.name ? { master: this.opts.name } : {}) }));
        this.opts.onChange?.();
        break;
      case "ping":
        peer.ws.send(JSON.stringify({ type: "pong", id: f.id, t0: f.t0, t1, t2: this.opts.clock.now() }));
        break;
      case "report":
        peer.name ??= f.name;
        this.opts.onReport?.({ ...f, remote: peer.remote });
        break;
    }
  }

  private reject(peer: Peer, why: string): void {
    this.counters.rejected++;
    peer.rejected++;
    this.note(`rejected a frame from ${peer.name ?? peer.remote}: ${why}`);
    if (peer.rejected === (this.opts.maxRejected ?? 10)) {
      this.counters.disconnected_for_abuse++;
      peer.ws.close(1008, "too many rejected frames");
    }
  }

  private note(text: string): void {
    this.lastErrors.push(text);
    if (this.lastErrors.length > 20) this.lastErrors.shift();
  }
}

/** Each event as JSON text, once; an event too big for any frame is dropped (counted by the caller). */
function serialise(events: EventFrame[], maxPayload: number): { texts: string[]; bytes: number[]; dropped: number } {
  const texts: string[] = [];
  const bytes: number[] = [];
  let dropped = 0;
  for (const e of events) {
    const t = JSON.stringify(e);
    const n = Buffer.byteLength(t);
    if (n + 64 > maxPayload) {
      dropped++;
      continue;
    }
    texts.push(t);
    bytes.push(n);
  }
  return { texts, bytes, dropped };
}

/** Batch frames of serialised events, cut so that none is over the frame limit (a listener would close on it). */
function batch(texts: string[], bytes: number[], sent: number, maxPayload: number): Array<{ text: string; events: number }> {
  const out: Array<{ text: string; events: number }> = [];
  const head = `{"type":"batch","sent":${sent},"events":[`;
  let from = 0;
  while (from < texts.length) {
    let size = head.length + 2;
    let to = from;
    while (to < texts.length && to - from < MAX_EVENTS_PER_FRAME && size + bytes[to]! + 1 <= maxPayload) size += bytes[to++]! + 1;
    const one = to - from === 1;
    out.push({ text: one ? `${texts[from]!.slice(0, -1)},"sent":${sent}}` : `${head}${texts.slice(from, to).join(",")}]}`, events: to - from });
    from = to;
  }
  return out;
}

/** Events as the batch frames a listener that said hello gets (the MQTT transport sends these to everyone). */
export function batchFrames(events: EventFrame[], maxPayload: number, sent: number): { texts: Array<{ text: string; events: number }>; dropped: number } {
  const s = serialise(events, maxPayload);
  return { texts: batch(s.texts, s.bytes, sent, maxPayload), dropped: s.dropped };
}

function sameSecret(given: string | null | undefined, token: string): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function tokenMatches(req: http.IncomingMessage, url: URL, token: string): boolean {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ") && sameSecret(auth.slice(7), token)) return true;
  return sameSecret(url.searchParams.get("token"), token);
}
