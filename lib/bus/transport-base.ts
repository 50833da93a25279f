// What both transports do the same way around their sockets. On a listener: ping the
// master for clock sync (quickly after connecting, then steadily), report upstream every
// few seconds while connected, read what the master sends, and back off between
// reconnects. On the master: gather the events sent in one turn of the event loop, so that
// they go out as one batch, answer pings, pass reports on, and keep the last errors.

import type { Clock, TimerHandle } from "../clock";
import { ClockSync, SYNC_WINDOW_MS } from "./clock-sync";
import {
  batchTexts,
  decodeDownstream,
  knownReport,
  pongText,
  prepareFrames,
  reportGroups,
  REPORT_EVERY_MS,
  pace,
  serialise,
  type EventFrame,
  type FrameText,
  type ReportGroups,
  type Serialised,
  type UpstreamFrame,
} from "./frames";
import type { FrameRates } from "./rates";
import { WARM_UP } from "./slices";
import type { LinkStatus, ListenerCounters, ListenerOptions, ListenerTransport, MasterCounters, MasterOptions } from "./transport";

/** Capped exponential backoff with jitter, so that many Pis do not reconnect in lock-step. */
export function backoff(attempt: number, capMs: number): number {
  const base = Math.min(capMs, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/** Pings a listener remembers while it waits for their pongs; older ones are forgotten (their pongs are unmatched). */
export const OUTSTANDING_PINGS = 32;
/** A master silent (no pong, no frame, no WebSocket ping) for SILENT_PINGS pings in a row, and at least MIN_SILENT_MS, or for MAX_SILENT_MS whatever the pings, is gone. */
export const SILENT_PINGS = 3;
export const MIN_SILENT_MS = 3000;
export const MAX_SILENT_MS = 10_000;
/** The ranges a master's pace may set (ms); outside, it is clamped. The protocol documents them. */
export const REPORT_PACE_MS = { min: 500, max: 60_000 } as const;
export const PING_PACE_MS = { min: 0, max: 2000 } as const;

/** How a listener's status begins while it reconnects after its master fell silent. */
export const MASTER_SILENT = "master silent";
export const silentText = (ms: number): string => `${MASTER_SILENT} ${(ms / 1000).toFixed(0)} s · reconnecting`;

const clamp = (v: number, r: { min: number; max: number }): number => Math.min(r.max, Math.max(r.min, v));

export class ListenerUpkeep {
  private pingId = 0;
  private pingTimer: TimerHandle | undefined;
  private reportTimer: TimerHandle | undefined;
  private watchTimer: TimerHandle | undefined;
  /** Pings sent and not yet answered: id -> t0 (NTP's origin-timestamp check). */
  private readonly outstanding = new Map<number, number>();
  private lastHeard = 0;
  private unanswered = 0;
  /** The protocol of the master this listener follows (from its welcome): how its reports are written. 1 until it says. */
  masterProtocol = 1;
  /** The master's pace for reports and pings (from its pongs), ms. */
  private paceMs = 0;
  private pingPaceMs = 0;

  constructor(
    private readonly o: {
      clock: Clock;
      sync: ClockSync;
      name: string;
      send: (f: UpstreamFrame) => void;
      /** pings and reports sent, and counters cut from reports over a group's bound */
      counters: { pings: number; reports: number; report_keys_dropped: number };
      report?: () => ReportGroups;
      reportEveryMs?: number;
      maxPingMs?: number;
      /** This listener's life (newRunId()), and the master run it follows: the master's accounting of its absences. */
      instance?: string;
      run?: () => string | undefined;
      /** The master said nothing for this long (ms): the link is dead, though no socket said so. */
      onSilent?: (silentMs: number) => void;
    },
  ) {}

  /** On (re)connect: the first ping now, reports from now on, and the watch for a silent master. */
  start(): void {
    this.stop();
    this.lastHeard = this.o.clock.now();
    this.unanswered = 0;
    this.ping();
    this.scheduleReport();
    this.watch();
  }

  stop(): void {
    this.o.clock.clearTimer(this.pingTimer);
    this.o.clock.clearTimer(this.reportTimer);
    this.o.clock.clearTimer(this.watchTimer);
    this.pingTimer = this.reportTimer = this.watchTimer = undefined;
    this.outstanding.clear();
  }

  /** The master spoke (a frame, a matched pong, a WebSocket ping): the link is alive. */
  heard(now: number): void {
    this.lastHeard = now;
    this.unanswered = 0;
  }

  /** Whether a pong answers a ping this listener sent and has not yet seen answered: its id and its t0, echoed. */
  answers(pong: { id: number; t0: number }): boolean {
    if (this.outstanding.get(pong.id) !== pong.t0) return false;
    this.outstanding.delete(pong.id);
    return true;
  }

  /** The master's pace, from a matched pong, within the documented ranges: never more often than it asks (nor than this listener's own cadence). */
  pace(reportMs: number | undefined, pingMs: number | undefined): void {
    this.paceMs = reportMs === undefined ? 0 : clamp(reportMs, REPORT_PACE_MS);
    this.pingPaceMs = pingMs === undefined ? 0 : clamp(pingMs, PING_PACE_MS);
  }

  private watch(): void {
    this.watchTimer = this.o.clock.setTimer(() => {
      const silent = this.o.clock.now() - this.lastHeard;
      if ((this.unanswered >= SILENT_PINGS && silent >= MIN_SILENT_MS) || silent >= MAX_SILENT_MS) {
        this.stop();
        this.o.onSilent?.(silent);
        return;
      }
      this.watch();
    }, 1000);
  }

  private ping(): void {
    this.o.counters.pings++;
    const t0 = this.o.clock.now();
    this.outstanding.set(++this.pingId, t0);
    if (this.outstanding.size > OUTSTANDING_PINGS) this.outstanding.delete(this.outstanding.keys().next().value!);
    this.unanswered++;
    this.o.send({ type: "ping", id: this.pingId, t0 });
    this.pingTimer = this.o.clock.setTimer(() => this.ping(), Math.max(this.pingPaceMs, this.o.sync.nextPingDelay(this.o.maxPingMs)));
  }

  private scheduleReport(): void {
    const report = this.o.report;
    if (!report) return;
    this.reportTimer = this.o.clock.setTimer(
      () => {
        const e = this.o.sync.estimate();
        const run = this.o.run?.();
        this.o.counters.reports++;
        const { groups, dropped } = reportGroups(report(), this.masterProtocol);
        this.o.counters.report_keys_dropped = dropped;
        this.o.send({
          type: "report",
          name: this.o.name,
          ...groups,
          ...(this.o.instance ? { instance: this.o.instance } : {}),
          ...(run ? { run } : {}),
          ...(e ? { offset_ms: e.offsetMs, rtt_ms: e.rttMs } : {}),
        });
        this.scheduleReport();
      },
      Math.max(this.o.reportEveryMs ?? REPORT_EVERY_MS, this.paceMs),
    );
  }
}

/** Collects events and hands everything queued in one turn of the event loop to `flush` at once. */
export class TurnBatcher {
  private pending: EventFrame[] = [];
  private queued = false;

  constructor(
    private readonly clock: Clock,
    private readonly flush: (events: EventFrame[]) => void,
  ) {}

  push(frame: EventFrame): void {
    this.pending.push(frame);
    if (this.queued) return;
    this.queued = true;
    this.clock.defer(() => this.now());
  }

  /** Flushes what is queued now (also called by the defer). */
  now(): void {
    this.queued = false;
    const events = this.pending;
    this.pending = [];
    if (events.length) this.flush(events);
  }
}

/** Listeners and plain clients a master knows at most, each with its own socket or rates. */
export const DEFAULT_MAX_CLIENTS = 2000;
/** Bytes waiting on one socket above which its frames are dropped. */
export const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;

export function masterCounters(): MasterCounters {
  return {
    connections: 0,
    unauthorized: 0,
    rejected: 0,
    oversize: 0,
    disconnected_for_abuse: 0,
    events: 0,
    frames_dropped: 0,
    events_dropped: 0,
    bad_requests: 0,
    refused_full: 0,
    slow_closed: 0,
    refused_pending: 0,
    replies_dropped: 0,
    silent_closed: 0,
    replaced: 0,
    pings: 0,
    reports: 0,
    reports_too_large: 0,
  };
}

/**
 * What a master does the same way on every transport: counts, keeps the last 20 errors in
 * words, gathers one turn's events into one batch, answers pings and passes reports on. A
 * transport adds its sockets: how frames reach the listeners and how theirs come in.
 */
export abstract class MasterBase {
  readonly counters: MasterCounters = masterCounters();
  readonly lastErrors: string[] = [];
  private readonly queue: TurnBatcher;

  constructor(protected readonly opts: MasterOptions) {
    prepareFrames();
    this.queue = new TurnBatcher(opts.clock, (events) => this.flushEvents(events));
  }

  /** Queues an event; everything queued in one turn of the event loop goes out as one batch. */
  send(frame: EventFrame): void {
    this.queue.push(frame);
  }

  /** Sends what is queued now, without waiting for the end of this turn. */
  flush(): void {
    this.queue.now();
  }

  /** One turn's events, each serialised once (an event over the frame limit is dropped and counted), to go out. */
  private flushEvents(events: EventFrame[]): void {
    this.counters.events += events.length;
    const s = serialise(events, this.maxPayload);
    if (s.dropped) {
      this.counters.events_dropped += s.dropped;
      this.note(`dropped ${s.dropped} event frame(s) over the ${this.maxPayload}-byte frame limit`);
    }
    this.broadcast(s, this.opts.clock.now());
  }

  /** The batch frames of a turn's events, as a listener that said hello gets them. */
  protected batches(s: Serialised, sent: number): FrameText[] {
    return batchTexts(s, sent, this.maxPayload, this.opts.run);
  }

  protected abstract readonly maxPayload: number;
  /** Listeners known now (without building the list `clients` returns). */
  protected abstract readonly listenerCount: number;
  /** Sends a turn's serialised events to the listeners. */
  protected abstract broadcast(s: Serialised, sent: number): void;

  /**
   * A checked upstream frame from a listener, which came at t1: over its rate, or refused by
   * the transport's own `check`, it is refused (the reason is returned); a ping is answered
   * through `reply`, a report passed on. A hello is the transport's own business.
   */
  protected answer(
    f: UpstreamFrame,
    t1: number,
    limits: FrameRates,
    remote: string,
    reply: (text: string) => void,
    check?: () => string | undefined,
  ): string | undefined {
    const refused = limits.over(f.type, t1) ?? check?.();
    if (refused) return refused;
    if (f.type === "ping") {
      this.counters.pings++;
      reply(pongText(f, t1, this.opts.clock.now(), pace(this.listenerCount, this.opts.maxReportsPerS, this.opts.maxPingsPerS)));
    } else if (f.type === "report") {
      this.counters.reports++;
      this.opts.onReport?.({ ...knownReport(f), remote });
    }
    return undefined;
  }

  /** An honest report too large for the protocol's groups: counted and said, never held against its listener. */
  protected tooLarge(who: string, why: string): void {
    this.counters.reports_too_large++;
    this.note(`a report from ${who} was too large: ${why}`);
  }

  protected note(text: string): void {
    keepRecent(this.lastErrors, text);
  }
}

/** Reasons kept on either side of the bus (the master's refusals, a listener's rejections), newest last. */
export const RECENT_REASONS = 20;

/** Adds `text` to `recent`, keeping the last RECENT_REASONS. */
function keepRecent(recent: string[], text: string): void {
  recent.push(text);
  if (recent.length > RECENT_REASONS) recent.shift();
}

/**
 * What a listener does the same way on every transport: keeps its clock offset, counts, says
 * hello and pings and reports while connected (ListenerUpkeep), times how long each frame
 * holds the event loop, and reads the master's frames. A transport adds its connection.
 */
export abstract class ListenerBase implements ListenerTransport {
  readonly sync: ClockSync;
  readonly counters: ListenerCounters = {
    connects: 0,
    reconnects: 0,
    rejected: 0,
    frames: 0,
    events: 0,
    pings: 0,
    reports: 0,
    unmatched_pongs: 0,
    silent_closes: 0,
    report_keys_dropped: 0,
  };
  longestReceiveMs = 0;
  /** Why the last frames were rejected, newest last (as the master keeps its refusals). */
  readonly lastErrors: string[] = [];
  protected readonly upkeep: ListenerUpkeep;
  private received = 0;

  constructor(
    protected readonly opts: ListenerOptions,
    send: (f: UpstreamFrame) => void,
  ) {
    prepareFrames();
    this.sync = new ClockSync(SYNC_WINDOW_MS, () => opts.clock.now());
    this.upkeep = new ListenerUpkeep({
      ...opts,
      sync: this.sync,
      send,
      counters: this.counters,
      onSilent: (ms) => {
        if (this.silent(ms)) this.counters.silent_closes++;
      },
    });
  }

  /** The master said nothing for `ms`: close the link as dead, say "master silent", and reconnect with the usual backoff (true: closed). */
  protected abstract silent(ms: number): boolean;

  abstract readonly status: LinkStatus;
  abstract start(): void;
  abstract stop(): void;

  /** A new connection to the master is up: counted; the clock line is held over until the first pong says whether it still holds. */
  protected connected(): void {
    this.counters.connects++;
    if (this.counters.connects > 1) this.counters.reconnects++;
    this.sync.rejoined();
    this.upkeep.masterProtocol = 1;
  }

  /**
   * One frame from the master (null: not text). `on` is where it came: the one WebSocket
   * ("socket": pongs and events, a welcome is taken and ignored), or an MQTT topic ("events",
   * "pong"), where anything else is rejected. Timed: a listener's own stall of the event loop.
   */
  protected take(text: string | null, on: "socket" | "events" | "pong"): void {
    const now = this.opts.clock.now();
    this.counters.frames++;
    this.read(text, on, now);
    if (++this.received > WARM_UP) this.longestReceiveMs = Math.max(this.longestReceiveMs, this.opts.clock.now() - now);
  }

  private read(text: string | null, on: "socket" | "events" | "pong", now: number): void {
    const decoded =
      text === null ? ({ ok: false, error: on === "socket" ? "a binary frame" : "a message over the frame limit" } as const) : decodeDownstream(text);
    if (!decoded.ok) return this.reject(`${on === "socket" ? "a frame" : `a message on ${on}`}: ${decoded.error}`);
    const f = decoded.frame;
    if (!("type" in f)) {
      if (on === "pong") this.reject("an event on the pong topic");
      else this.events([f], f.sent, f.run, now);
    } else if (f.type === "pong" && on !== "events") {
      // A pong for no ping of ours (forged, replayed, or too late) says nothing about the clock or the pace.
      if (!this.upkeep.answers(f)) {
        this.counters.unmatched_pongs++;
        return;
      }
      this.upkeep.heard(now);
      this.sync.add(f.t0, f.t1, f.t2, now);
      this.upkeep.pace(f.report_ms, f.ping_ms);
    } else if (f.type === "batch" && on !== "pong") this.events(f.events, f.sent, f.run, now);
    else if (on === "socket" && f.type === "welcome") {
      this.upkeep.heard(now);
      this.upkeep.masterProtocol = f.protocol;
    } else this.reject(`a ${f.type} frame ${on === "socket" ? "on the socket" : `on ${on}`}`);
  }

  /** A frame from the master this listener does not take: counted, and its reason kept. */
  private reject(reason: string): void {
    this.counters.rejected++;
    keepRecent(this.lastErrors, reason);
  }

  private events(events: EventFrame[], sent: number | undefined, run: string | undefined, now: number): void {
    this.upkeep.heard(now);
    if (sent !== undefined) this.sync.addDownstream(sent, now);
    this.counters.events += events.length;
    this.opts.onEvents(events, now, run);
  }
}
