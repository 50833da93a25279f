// What a bus node needs from a transport, whichever it is: a master broadcasts events and
// takes reports; a listener hands events on and keeps its clock offset. WebSocket
// (ws-server.ts, ws-client.ts) and MQTT (mqtt-master.ts, mqtt-listener.ts) implement these;
// the frames (frames.ts) and the base classes (transport-base.ts) are shared. A new transport implements
// the two interfaces and is chosen in connect.ts.

import type { Clock } from "../clock";
import type { ClockSync } from "./clock-sync";
import type { EventFrame, ListenerReport, ReportGroups } from "./frames";

export type LinkState = "connecting" | "connected" | "disconnected" | "stopped";

export interface LinkStatus {
  state: LinkState;
  /** Why it is not connected, or where to: for a status line. */
  detail: string;
}

/** The bus as the sqi-bus config node describes it. */
export interface BusConfig {
  transport: "ws" | "mqtt";
  host: string;
  port: number;
  path: string;
  url: string;
  token: string;
  maxFrame: number;
  /** the id of a tls-config node */
  tls?: string;
  mqtt: { url: string; clientId: string; username: string; password: string; qos: 0 | 1; prefix: string; keepaliveS: number };
  errors: string[];
}

export interface MasterCounters {
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
  /** connections refused (503), or hellos ignored, because maxClients were known */
  refused_full: number;
  /** WebSocket only: connections cut for not finishing their upgrade in time (a slow-headers attack), and refused for too many such at once */
  slow_closed: number;
  refused_pending: number;
  /** welcomes and pongs not sent to a client that does not read */
  replies_dropped: number;
  /** connections closed because they answered nothing for HEARTBEAT_MS twice (a Pi that lost power leaves one open) */
  silent_closed: number;
  /** connections closed because the same listener name said hello on a new one */
  replaced: number;
  /** pings answered and reports taken: the upkeep traffic of all listeners together */
  pings: number;
  reports: number;
  /** reports refused only for the size of a counter group: honest but too large, counted, never held against their listener */
  reports_too_large: number;
  /** MQTT only: connections to the broker after the first */
  broker_reconnects?: number;
  /** MQTT only: empty hellos (a will, a goodbye, or a stranger's on an open broker) after which the listener spoke on, so it stayed listed */
  goodbyes_overruled?: number;
}

export interface ListenerCounters {
  connects: number;
  reconnects: number;
  /** frames from the master that failed the schema (or came where they do not belong) */
  rejected: number;
  frames: number;
  events: number;
  /** pings and reports sent */
  pings: number;
  reports: number;
  /** pongs that answered no ping this listener sent (by id and t0): forged, replayed, or too late; never used */
  unmatched_pongs: number;
  /** links closed because the master said nothing for a bounded time (no FIN: a Wi-Fi drop, a hung master) */
  silent_closes: number;
  /** counters cut from the last report: a group over its bound (REPORT_GROUPS), or over 50 for a master of protocol 1 */
  report_keys_dropped: number;
}

/** A listener as the master knows it. */
export interface ListenerInfo {
  name?: string;
  remote: string;
  hello: boolean;
}

export interface MasterOptions {
  clock: Clock;
  /** This master's name (the host name), in its welcome. */
  name?: string;
  /** This master's run (newRunId()), in the welcome and on every frame. */
  run?: string;
  /** A listener's report, with only the protocol's keys, and where it came from. */
  onReport?: (report: ListenerReport & { remote: string }) => void;
  /** The listeners or the link changed: a moment to redraw a status. */
  onChange?: () => void;
  /** The broker refused the credentials (MQTT; WebSocket listeners are refused with a counter). */
  onAuthFailure?: (text: string) => void;
  /** A client that sends this many rejected frames is disconnected (WebSocket). */
  maxRejected?: number;
  /** Bytes waiting on one socket above which frames are dropped. */
  maxBuffered?: number;
  /** Listeners at most; more are refused and counted. */
  maxClients?: number;
  maxBackoffMs?: number;
  /** Reports a second from all listeners together, at most: the master paces them in its pongs (MAX_REPORTS_PER_S). */
  maxReportsPerS?: number;
  /** Pings a second from all listeners together, at most (MAX_PINGS_PER_S). */
  maxPingsPerS?: number;
}

export interface ListenerOptions {
  clock: Clock;
  /** This listener's name, in its hello and reports. */
  name: string;
  /** Events in the order they came, when, and under which master run (absent from an old master). */
  onEvents: (events: EventFrame[], receivedAt: number, run: string | undefined) => void;
  /** This listener's life (newRunId()): in its hello and reports. */
  instance?: string;
  /** The master run its events follow, for its reports. */
  run?: () => string | undefined;
  onState?: (state: LinkState, detail: string) => void;
  /** The broker refused the credentials (MQTT; a WebSocket refusal is in the status). */
  onAuthFailure?: (text: string) => void;
  /** What to report upstream every reportEveryMs (or less often when the master paces its listeners' reports). */
  report?: () => ReportGroups;
  reportEveryMs?: number;
  /** The longest wait between clock-sync pings once the estimate is steady (DEFAULT_MAX_PING_MS). */
  maxPingMs?: number;
  /** Cap of the reconnect backoff. */
  maxBackoffMs?: number;
}

export interface MasterTransport {
  readonly counters: MasterCounters;
  /** The last refusals and drops in words, newest last (20 at most). */
  readonly lastErrors: readonly string[];
  readonly status: LinkStatus;
  /** Where listeners find this master, for a status: ":8765", or the broker without credentials. */
  readonly where: string;
  readonly clients: ListenerInfo[];
  /** What the stats output says about the transport itself (port and buffered bytes, or broker and state). */
  describe(): Record<string, unknown>;
  /** Binds or connects; rejects when it cannot (a port in use). */
  listen(): Promise<void>;
  /** Queues an event; everything queued in one turn of the event loop goes out together. */
  send(frame: EventFrame): void;
  close(): Promise<void>;
}

export interface ListenerTransport {
  readonly sync: ClockSync;
  readonly counters: ListenerCounters;
  /** Why the last frames from the master were rejected, newest last. */
  readonly lastErrors: readonly string[];
  readonly status: LinkStatus;
  /** The longest one frame took to decode and hand on (after the first WARM_UP), ms: this listener's own stall of the event loop. */
  readonly longestReceiveMs: number;
  start(): void;
  stop(): void;
}
