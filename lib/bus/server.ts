// The master's side of the bus over WebSocket: accepts listeners (token checked on the HTTP
// upgrade, refused with 401 before any frame), answers their hellos and pings, takes their
// reports, and broadcasts events: a batch frame per flush to listeners that said hello,
// one plain {"event","payload",...} frame per event to clients that did not (the seed's
// bridge). A slow client never makes the master buffer without bound: above maxBuffered
// bytes waiting on its socket (or maxTotalBuffered over all of them), frames for it are
// dropped and counted, and it sees the gap; welcomes and pongs are held to the same bound.
// Everything from outside is hostile until checked: a malformed upgrade gets 400, a full
// master 503, every frame is checked before use, a listener keeps the name it said hello
// with, and hellos, pings and reports are limited per connection. Each refusal is counted.

import { timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Clock, TimerHandle } from "../clock";
import { decodeUpstream, prepareFrames, PROTOCOL, type EventFrame, type ReportFrame } from "./frames";
import { FrameRates } from "./rates";
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
  /** Bytes waiting on all sockets together above which frames to slow clients are dropped. */
  maxTotalBuffered?: number;
  /** Connections at most (listeners and plain clients); more get 503. */
  maxClients?: number;
  /** A client that sends this many rejected frames is disconnected. */
  maxRejected?: number;
  /** This master's run (newRunId()), sent in the welcome and on every frame to listeners. */
  run?: string;
  /** How often clients are pinged; one silent since the last time is closed (HEARTBEAT_MS). */
  heartbeatMs?: number;
  onReport?: (report: ReportFrame & { remote: string }) => void;
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
  /** upgrade requests refused as malformed (400) */
  bad_requests: number;
  /** connections refused because maxClients were connected (503) */
  refused_full: number;
  /** welcomes and pongs not sent to a client that does not read */
  replies_dropped: number;
  /** connections closed because they answered nothing for HEARTBEAT_MS twice (a Pi that lost power leaves one open) */
  silent_closed: number;
  /** connections closed because the same listener name said hello on a new one */
  replaced: number;
}

export function serverCounters(): ServerCounters {
  return { connections: 0, unauthorized: 0, rejected: 0, oversize: 0, disconnected_for_abuse: 0, events: 0, frames_dropped: 0, events_dropped: 0, bad_requests: 0, refused_full: 0, replies_dropped: 0, silent_closed: 0, replaced: 0 };
}

interface Peer {
  ws: WebSocket;
  remote: string;
  name?: string;
  hello: boolean;
  rejected: number;
  limits: FrameRates;
  /** anything heard (a frame or a pong) since the last heartbeat */
  alive: boolean;
}

/** Every this often each client is pinged (WebSocket ping); one that answered nothing since the last time is closed. */
export const HEARTBEAT_MS = 10_000;

export const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
/** All clients together: 64 MiB waiting at most (16 clients that stopped reading at 4 MiB each). */
export const DEFAULT_MAX_TOTAL_BUFFERED = 64 * 1024 * 1024;
/** Listeners and plain clients at most, each with its own socket and buffer. */
export const DEFAULT_MAX_CLIENTS = 2000;
/** Events in one batch frame at most; a listener refuses a bigger batch (schemas/bus-frame.schema.json says the same). */
export const MAX_EVENTS_PER_FRAME = 2000;

export class BusServer {
  readonly counters: ServerCounters = serverCounters();
  readonly lastErrors: string[] = [];
  private readonly peers = new Set<Peer>();
  private readonly http: http.Server | https.Server;
  private readonly wss: WebSocketServer;
  private readonly queue: TurnBatcher;
  /** Connections between the token check and the WebSocket handshake's end. */
  private upgrading = 0;
  /** Bytes waiting on all sockets, as of the last broadcast. */
  private totalBuffered = 0;
  private heartbeat: TimerHandle | undefined;

  constructor(private readonly opts: BusServerOptions) {
    prepareFrames();
    this.queue = new TurnBatcher(opts.clock, (events) => this.broadcast(events));
    this.http = opts.tls ? https.createServer(opts.tls) : http.createServer();
    this.http.on("request", (_req, res) => {
      res.writeHead(426, { "Content-Type": "text/plain" });
      res.end("sqi-event-bus: connect with a WebSocket\n");
    });
    // A request Node's HTTP parser refuses: 400, counted (Node's default answer, without the count).
    this.http.on("clientError", (_e, socket) => {
      this.counters.bad_requests++;
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
    this.http.on("upgrade", (req, socket: Duplex, head) => {
      // Node has taken its own error handler off an upgraded socket: a reset while refusing would crash the process.
      socket.on("error", () => socket.destroy());
      try {
        this.upgrade(req, socket, head);
      } catch (e) {
        this.badRequest(socket, `an upgrade request that could not be handled (${(e as Error).message})`);
      }
    });
  }

  /** Before authentication: everything here is an attacker's text until the token matched. */
  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = parseRequestUrl(req.url);
    if (!url) return this.badRequest(socket, `a malformed request path from ${req.socket.remoteAddress}`);
    if (url.pathname !== this.opts.path) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    if (this.opts.token && !tokenMatches(req, url, this.opts.token)) {
      this.counters.unauthorized++;
      this.note(`refused ${req.socket.remoteAddress}: no or wrong token`);
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="sqi-event-bus"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (this.peers.size + this.upgrading >= (this.opts.maxClients ?? DEFAULT_MAX_CLIENTS)) {
      this.counters.refused_full++;
      this.note(`refused ${req.socket.remoteAddress}: ${this.opts.maxClients ?? DEFAULT_MAX_CLIENTS} clients are connected`);
      socket.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.upgrading++;
    let counted = true;
    const settle = (): void => {
      if (counted) this.upgrading--;
      counted = false;
    };
    socket.once("close", settle);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      settle();
      this.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`);
    });
  }

  private badRequest(socket: Duplex, why: string): void {
    this.counters.bad_requests++;
    this.note(`refused ${why}`);
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    else socket.destroy();
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(e);
      this.http.once("error", fail);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off("error", fail);
        this.beat();
        resolve();
      });
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.http.address();
    return typeof a === "object" && a ? a.port : this.opts.port;
  }

  /** Bytes waiting on all clients' sockets now. */
  get buffered(): number {
    let total = 0;
    for (const p of this.peers) total += p.ws.bufferedAmount;
    return total;
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
    let plain: string[] | undefined;
    let total = 0;
    for (const p of this.peers) total += p.ws.bufferedAmount;
    this.totalBuffered = total;
    for (const p of this.peers) {
      if (p.hello) {
        batches ??= batch(texts, bytes, sent, this.opts.maxPayload, this.opts.run);
        for (const b of batches) this.write(p, b.text, b.events);
      } else {
        // The seed's bridge: one frame per event, the same keys it reads. (A listener of this
        // package gets these too until its hello is read: they carry the run as well.)
        const run = this.opts.run;
        plain ??= run ? texts.map((t) => `${t.slice(0, -1)},"run":"${run}"}`) : texts;
        for (const t of plain) this.write(p, t, 1);
      }
    }
  }

  /**
   * A connection whose other end is gone without a FIN (a Pi that lost power) stays open here
   * until something notices: it would hold its slot and its buffer. Listeners ping ten times
   * a second and plain clients answer WebSocket pings, so one silent for a heartbeat is gone.
   */
  private beat(): void {
    this.heartbeat = this.opts.clock.setTimer(() => {
      for (const p of this.peers) {
        if (!p.alive) {
          this.counters.silent_closed++;
          this.note(`closed ${p.name ?? p.remote}: silent for ${(this.opts.heartbeatMs ?? HEARTBEAT_MS) / 1000} s`);
          p.ws.terminate();
          continue;
        }
        p.alive = false;
        if (p.ws.readyState === p.ws.OPEN) p.ws.ping();
      }
      this.beat();
    }, this.opts.heartbeatMs ?? HEARTBEAT_MS);
  }

  close(): Promise<void> {
    this.opts.clock.clearTimer(this.heartbeat);
    for (const p of this.peers) p.ws.terminate();
    this.peers.clear();
    return new Promise((resolve) => {
      this.wss.close(() => this.http.close(() => resolve()));
      this.http.closeAllConnections?.();
    });
  }

  private write(p: Peer, text: string, events: number): void {
    if (p.ws.readyState !== p.ws.OPEN) return;
    if (!this.room(p)) {
      this.counters.frames_dropped++;
      this.counters.events_dropped += events;
      return;
    }
    p.ws.send(text);
  }

  /** A welcome or a pong: held to the same bound as frames (a client that never reads gets none). */
  private reply(p: Peer, text: string): void {
    if (p.ws.readyState !== p.ws.OPEN) return;
    if (!this.room(p)) {
      this.counters.replies_dropped++;
      return;
    }
    p.ws.send(text);
  }

  /**
   * Whether a client's socket may take more: under its own bound, and, while all sockets
   * together hold over the total bound, only if it keeps up (nothing waiting on it).
   */
  private room(p: Peer): boolean {
    const waiting = p.ws.bufferedAmount;
    if (waiting > (this.opts.maxBuffered ?? DEFAULT_MAX_BUFFERED)) return false;
    return waiting === 0 || this.totalBuffered <= (this.opts.maxTotalBuffered ?? DEFAULT_MAX_TOTAL_BUFFERED);
  }

  private accept(ws: WebSocket, remote: string): void {
    const peer: Peer = { ws, remote, hello: false, rejected: 0, limits: new FrameRates(), alive: true };
    ws.on("pong", () => (peer.alive = true));
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
    peer.alive = true;
    const decoded = text === null ? ({ ok: false, error: "binary frames are not part of the protocol" } as const) : decodeUpstream(text);
    if (!decoded.ok) return this.reject(peer, decoded.error);
    const f = decoded.frame;
    const over = peer.limits.over(f.type, t1);
    if (over) return this.reject(peer, over);
    // A listener is who it said hello as (or first reported as): it cannot report for another.
    if (f.type !== "ping" && peer.name !== undefined && f.name !== peer.name) return this.reject(peer, `a ${f.type} as ${JSON.stringify(f.name)} from the listener ${JSON.stringify(peer.name)}`);
    switch (f.type) {
      case "hello":
        if (peer.hello) return this.reject(peer, "a second hello on one connection");
        peer.hello = true;
        peer.name = f.name;
        // The same listener on a new connection (it reconnected before this one timed out): the new one wins.
        for (const other of this.peers) {
          if (other === peer || other.name !== f.name || !other.hello) continue;
          this.counters.replaced++;
          this.note(`closed an older connection of ${f.name}: it said hello again on a new one`);
          other.ws.close(4000, "replaced by a new connection of the same listener");
          other.name = undefined;
        }
        this.reply(peer, JSON.stringify({ type: "welcome", protocol: PROTOCOL, ...(this.opts.name ? { master: this.opts.name } : {}), ...(this.opts.run ? { run: this.opts.run } : {}) }));
        this.opts.onChange?.();
        break;
      case "ping":
        this.reply(peer, JSON.stringify({ type: "pong", id: f.id, t0: f.t0, t1, t2: this.opts.clock.now() }));
        break;
      case "report":
        peer.name ??= f.name;
        this.opts.onReport?.({ ...knownReport(f), remote: peer.remote });
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
function batch(texts: string[], bytes: number[], sent: number, maxPayload: number, run: string | undefined): Array<{ text: string; events: number }> {
  const out: Array<{ text: string; events: number }> = [];
  const tail = run ? `,"run":"${run}"` : "";
  const head = `{"type":"batch","sent":${sent}${tail},"events":[`;
  let from = 0;
  while (from < texts.length) {
    let size = head.length + 2;
    let to = from;
    while (to < texts.length && to - from < MAX_EVENTS_PER_FRAME && size + bytes[to]! + 1 <= maxPayload) size += bytes[to++]! + 1;
    const one = to - from === 1;
    out.push({ text: one ? `${texts[from]!.slice(0, -1)},"sent":${sent}${tail}}` : `${head}${texts.slice(from, to).join(",")}]}`, events: to - from });
    from = to;
  }
  return out;
}

/** Events as the batch frames a listener that said hello gets (the MQTT transport sends these to everyone). */
export function batchFrames(events: EventFrame[], maxPayload: number, sent: number, run?: string): { texts: Array<{ text: string; events: number }>; dropped: number } {
  const s = serialise(events, maxPayload);
  return { texts: batch(s.texts, s.bytes, sent, maxPayload, run), dropped: s.dropped };
}

/** The request's path and query, or undefined when it is not a URL path (`//`, `http://[`, ...). */
function parseRequestUrl(raw: string | undefined): URL | undefined {
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//") || raw.length > 8192) return undefined;
  try {
    return new URL(raw, "http://bus");
  } catch {
    return undefined;
  }
}

/** A report with only the keys the protocol knows, as the master passes it on (the schema has already refused any other). */
export function knownReport(f: ReportFrame): ReportFrame {
  const out: ReportFrame = { type: "report", name: f.name, counters: { ...f.counters } };
  if (f.offset_ms !== undefined) out.offset_ms = f.offset_ms;
  if (f.rtt_ms !== undefined) out.rtt_ms = f.rtt_ms;
  if (f.instance !== undefined) out.instance = f.instance;
  if (f.run !== undefined) out.run = f.run;
  return out;
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
