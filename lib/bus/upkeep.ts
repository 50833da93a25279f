// What both transports do the same way around their sockets. On a listener: ping the
// master for clock sync (quickly after connecting, then steadily), report upstream every
// few seconds while connected, and back off between reconnects. On the master: gather the
// events sent in one turn of the event loop, so that they go out as one batch.

import type { Clock, TimerHandle } from "../clock";
import type { ClockSync } from "./clock-sync";
import type { EventFrame, UpstreamFrame } from "./frames";

/** Capped exponential backoff with jitter, so that many Pis do not reconnect in lock-step. */
export function backoff(attempt: number, capMs: number): number {
  const base = Math.min(capMs, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export class ListenerUpkeep {
  private pingId = 0;
  private pingTimer: TimerHandle | undefined;
  private reportTimer: TimerHandle | undefined;

  constructor(
    private readonly o: {
      clock: Clock;
      sync: ClockSync;
      name: string;
      send: (f: UpstreamFrame) => void;
      report?: () => Record<string, number>;
      reportEveryMs?: number;
      /** This listener's life (newRunId()), and the master run it follows: the master's accounting of its absences. */
      instance?: string;
      run?: () => string | undefined;
    },
  ) {}

  /** On (re)connect: the first ping now, reports from now on. */
  start(): void {
    this.stop();
    this.ping();
    this.scheduleReport();
  }

  stop(): void {
    this.o.clock.clearTimer(this.pingTimer);
    this.o.clock.clearTimer(this.reportTimer);
    this.pingTimer = this.reportTimer = undefined;
  }

  private ping(): void {
    this.o.send({ type: "ping", id: ++this.pingId, t0: this.o.clock.now() });
    this.pingTimer = this.o.clock.setTimer(() => this.ping(), this.o.sync.nextPingDelay());
  }

  private scheduleReport(): void {
    const report = this.o.report;
    if (!report) return;
    this.reportTimer = this.o.clock.setTimer(() => {
      const e = this.o.sync.estimate();
      const run = this.o.run?.();
      this.o.send({ type: "report", name: this.o.name, counters: report(), ...(this.o.instance ? { instance: this.o.instance } : {}), ...(run ? { run } : {}), ...(e ? { offset_ms: e.offsetMs, rtt_ms: e.rttMs } : {}) });
      this.scheduleReport();
    }, this.o.reportEveryMs ?? 2000);
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
