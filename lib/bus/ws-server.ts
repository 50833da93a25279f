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
import type { TimerHandle } from "../clock";
import { decodeUpstream, plainTexts, welcomeText, type Decoded, type FrameText, type Serialised, type UpstreamFrame } from "./frames";
import { FrameRates } from "./rates";
import type { ListenerInfo, LinkStatus, MasterOptions, MasterTransport } from "./transport";
import { DEFAULT_MAX_BUFFERED, DEFAULT_MAX_CLIENTS, MasterBase } from "./transport-base";

export interface BusServerOptions extends MasterOptions {
  host: string;
  port: number;
  path: string;
  /** Shared token; undefined or "" = an open bus. */
  token?: string;
  maxPayload: number;
  /** key/cert for wss. */
  tls?: https.ServerOptions;
  /** Bytes waiting on all sockets together above which frames to slow clients are dropped. */
  maxTotalBuffered?: number;
  /** How often clients are pinged; one silent since the last time is closed (HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** A connection that has not finished its upgrade within this is cut (UPGRADE_TIMEOUT_MS). */
  upgradeTimeoutMs?: number;
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

/**
 * A connection that has not upgraded within this is cut: a client sending its headers a byte
 * a second would otherwise hold a file descriptor for as long as it likes (a Pi under systemd
 * has 1,024 of them, for the editor too).
 */
export const UPGRADE_TIMEOUT_MS = 10_000;
/** Connections not yet upgraded, over all addresses and from one address, at most. */
export const MAX_PENDING = 128;
export const MAX_PENDING_PER_ADDRESS = 16;

/** All clients together: 64 MiB waiting at most (16 clients that stopped reading at 4 MiB each). */
export const DEFAULT_MAX_TOTAL_BUFFERED = 64 * 1024 * 1024;

export class BusServer extends MasterBase implements MasterTransport {
  private readonly peers = new Set<Peer>();
  private readonly http: http.Server | https.Server;
  private readonly wss: WebSocketServer;
  private link: LinkStatus = { state: "connecting", detail: "starting" };
  /** Connections between the token check and the WebSocket handshake's end. */
  private upgrading = 0;
  /** Bytes waiting on all sockets, as of the last broadcast. */
  private totalBuffered = 0;
  private heartbeat: TimerHandle | undefined;
  /** Connections that have not yet upgraded (or been refused), and how many from each address. */
  private readonly pending = new Map<Duplex, TimerHandle>();
  private readonly pendingFrom = new Map<string, number>();

  declare protected readonly opts: BusServerOptions;

  constructor(opts: BusServerOptions) {
    super(opts);
    this.http = opts.tls ? https.createServer(opts.tls) : http.createServer();
    // Node's own timeouts as a second line behind ours (its check runs every connectionsCheckingInterval).
    this.http.headersTimeout = this.http.requestTimeout = 2 * (opts.upgradeTimeoutMs ?? UPGRADE_TIMEOUT_MS);
    this.http.on(opts.tls ? "secureConnection" : "connection", (socket: import("node:net").Socket) => this.arrived(socket));
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

  /**
   * A new connection, before a byte of its request is read: over the caps it is cut at once;
   * otherwise it has upgradeTimeoutMs to become a WebSocket (or be answered), or it is cut.
   * Each cut is counted.
   */
  private arrived(socket: import("node:net").Socket): void {
    const from = socket.remoteAddress ?? "?";
    const fromHere = this.pendingFrom.get(from) ?? 0;
    if (this.pending.size >= MAX_PENDING || fromHere >= MAX_PENDING_PER_ADDRESS) {
      this.counters.refused_pending++;
      this.note(
        `refused a connection from ${from}: ${fromHere >= MAX_PENDING_PER_ADDRESS ? `${fromHere} from it` : `${this.pending.size} in all`} have not finished their upgrade`,
      );
      socket.destroy();
      return;
    }
    this.pendingFrom.set(from, fromHere + 1);
    const ms = this.opts.upgradeTimeoutMs ?? UPGRADE_TIMEOUT_MS;
    const timer = this.opts.clock.setTimer(() => {
      this.settled(socket);
      this.counters.slow_closed++;
      this.note(`cut a connection from ${from}: no upgrade within ${ms / 1000} s`);
      socket.destroy();
    }, ms);
    this.pending.set(socket, timer);
    socket.once("close", () => this.settled(socket));
  }

  /** A connection is no longer waiting for its upgrade: it became a WebSocket, was answered, or closed. */
  private settled(socket: Duplex): void {
    const timer = this.pending.get(socket);
    if (timer === undefined) return;
    this.opts.clock.clearTimer(timer);
    this.pending.delete(socket);
    const from = (socket as import("node:net").Socket).remoteAddress ?? "?";
    const n = (this.pendingFrom.get(from) ?? 1) - 1;
    if (n > 0) this.pendingFrom.set(from, n);
    else this.pendingFrom.delete(from);
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
      this.settled(socket);
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
      const fail = (e: NodeJS.ErrnoException): void => {
        this.link = { state: "disconnected", detail: e.code === "EADDRINUSE" ? `port ${this.opts.port} is in use` : e.message };
        reject(e);
      };
      this.http.once("error", fail);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off("error", fail);
        this.link = { state: "connected", detail: "" };
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

  get clients(): ListenerInfo[] {
    return [...this.peers].map((p) => ({ ...(p.name ? { name: p.name } : {}), remote: p.remote, hello: p.hello }));
  }

  get status(): LinkStatus {
    return this.link;
  }

  get where(): string {
    return `:${this.port}`;
  }

  describe(): Record<string, unknown> {
    return { port: this.port, buffered_bytes: this.buffered };
  }

  protected get maxPayload(): number {
    return this.opts.maxPayload;
  }

  protected get listenerCount(): number {
    return this.peers.size;
  }

  /** Each event was serialised once and is shared by every peer. */
  protected broadcast(s: Serialised, sent: number): void {
    let batches: FrameText[] | undefined;
    let plain: string[] | undefined;
    let total = 0;
    for (const p of this.peers) total += p.ws.bufferedAmount;
    this.totalBuffered = total;
    for (const p of this.peers) {
      if (p.hello) {
        batches ??= this.batches(s, sent);
        for (const b of batches) this.write(p, b.text, b.events);
      } else {
        // The seed's bridge: one frame per event, the same keys it reads. (A listener of this
        // package gets these too until its hello is read: they carry the run as well.)
        plain ??= plainTexts(s, this.opts.run);
        for (const t of plain) this.write(p, t, 1);
      }
    }
  }

  /**
   * A connection whose other end is gone without a FIN (a Pi that lost power) stays open here
   * until something notices: it would hold its slot and its buffer. Listeners ping every 2 s
   * at most and plain clients answer WebSocket pings, so one silent for a heartbeat is gone.
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
    this.link = { state: "stopped", detail: "" };
    this.opts.clock.clearTimer(this.heartbeat);
    for (const [socket, timer] of this.pending) {
      this.opts.clock.clearTimer(timer);
      socket.destroy();
    }
    this.pending.clear();
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
    const decoded: Decoded<UpstreamFrame> = text === null ? { ok: false, error: "binary frames are not part of the protocol" } : decodeUpstream(text);
    // Too large but honest: counted, never held against the listener, within its rate of reports.
    if (!decoded.ok && decoded.tooLarge) {
      const over = peer.limits.over("report", t1);
      return over ? this.reject(peer, over) : this.tooLarge(peer.name ?? peer.remote, decoded.error);
    }
    if (!decoded.ok) return this.reject(peer, decoded.error);
    const f = decoded.frame;
    // A listener is who it said hello as (or first reported as): it cannot report for another.
    const refused = this.answer(
      f,
      t1,
      peer.limits,
      peer.remote,
      (text) => this.reply(peer, text),
      () => {
        if (f.type !== "ping" && peer.name !== undefined && f.name !== peer.name)
          return `a ${f.type} as ${JSON.stringify(f.name)} from the listener ${JSON.stringify(peer.name)}`;
        if (f.type === "hello" && peer.hello) return "a second hello on one connection";
        if (f.type === "report") peer.name ??= f.name;
        return undefined;
      },
    );
    if (refused) return this.reject(peer, refused);
    if (f.type !== "hello") return;
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
    this.reply(peer, welcomeText(this.opts.name, this.opts.run));
    this.opts.onChange?.();
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
