// What a listener does with the events that arrive, whatever the transport: each frame's events
// go on in slices (a turn of the event loop each, so that a big frame cannot hold up a pulse's
// falling edge); each event is checked against the sequence (duplicates dropped, gaps counted),
// its master time converted once to this Pi's clock, and dropped and counted when it cannot be
// fired honestly: no clock offset yet (unsynced), due before this listener was connected
// (missed: a broker redelivering after a reconnect, never fired late in a burst), or late
// (fired at once, or dropped, as the late policy says).

import type { Clock } from "../clock";
import { fromFrame, LATE_TOLERANCE_MS, type Sqi } from "../sqi";
import type { EventFrame } from "./frames";
import { SequenceTracker } from "./sequence";
import { Slices } from "./slices";
import type { LinkState } from "./transport";

/** One event as the flow gets it: a new object each, sent as it is (a message). */
export interface Arrival {
  topic: string;
  payload: Record<string, unknown>;
  sqi: Sqi;
  [key: string]: unknown;
}

export interface ArrivalOptions {
  late: "fire" | "drop";
  /** The master's time as this Pi's, or undefined while the offset is unknown. */
  toLocal: (masterAt: number) => number | undefined;
  /** Each event that is to be fired, in order. */
  emit: (a: Arrival) => void;
}

export class Arrivals {
  readonly tracker = new SequenceTracker();
  /** missed: events that fell due while this listener was not connected. */
  readonly counts = { late: 0, late_dropped: 0, unsynced: 0, missed: 0 };
  private connectedSince = -Infinity;
  private readonly slices: Slices<{ e: EventFrame; receivedAt: number; run: string | undefined }>;

  constructor(
    private readonly clock: Clock,
    private readonly o: ArrivalOptions,
  ) {
    this.slices = new Slices(clock, ({ e, receivedAt, run }) => {
      this.tracker.follow(run);
      const a = this.arrive(e, receivedAt);
      if (a) o.emit(a);
    });
  }

  /** The link to the master changed: events due before it came up are missed, not late. */
  linked(state: LinkState): void {
    if (state !== "connected") this.connectedSince = -Infinity;
    else if (this.connectedSince === -Infinity) this.connectedSince = this.clock.now();
  }

  /** A frame's events, when they arrived and under which master run. */
  push(events: EventFrame[], receivedAt: number, run: string | undefined): void {
    this.slices.push(events.map((e) => ({ e, receivedAt, run })));
  }

  /** Drops what waits in the slices (the node closes). */
  clear(): void {
    this.slices.clear();
  }

  /** The master run the events follow (for reports). */
  get run(): string | undefined {
    return this.tracker.currentRun;
  }

  /** The longest one slice held the event loop, ms. */
  get longestHandOnMs(): number {
    return this.slices.longestMs;
  }

  /** The sequence's and this policy's counters, and the events the slices could not hold. */
  counters(): Record<string, number> {
    return { ...this.tracker.counters, ...this.counts, backlog_dropped: this.slices.dropped };
  }

  /** What was lost, in words for a status: empty when nothing was. */
  losses(): string[] {
    const c = this.tracker.counters;
    const n = this.counts;
    return [
      c.missing ? `missing ${c.missing}` : "",
      c.implausible ? `implausible ${c.implausible}` : "",
      n.late ? `late ${n.late}` : "",
      n.unsynced ? `unsynced ${n.unsynced}` : "",
      n.missed ? `missed ${n.missed}` : "",
      this.slices.dropped ? `backlog dropped ${this.slices.dropped}` : "",
    ].filter(Boolean);
  }

  /** One event as the flow gets it, or undefined (and counted) when it is not to be fired. */
  private arrive(e: EventFrame, receivedAt: number): Arrival | undefined {
    if (this.tracker.see(e.seq) === "duplicate") return undefined;
    const sqi = fromFrame(e);
    if (e.at !== undefined) {
      const local = this.o.toLocal(e.at);
      if (local === undefined) {
        this.counts.unsynced++;
        return undefined;
      }
      sqi.master_at = e.at;
      sqi.at = local;
      if (local < this.connectedSince - LATE_TOLERANCE_MS) {
        this.counts.missed++;
        return undefined;
      }
      // Late against when it arrived, not when its slice went on: waiting in the slices is this listener's doing.
      if (local < receivedAt - LATE_TOLERANCE_MS) {
        this.counts.late++;
        if (this.o.late === "drop") {
          this.counts.late_dropped++;
          return undefined;
        }
        sqi.at = receivedAt;
      }
    }
    return { topic: e.event, payload: e.payload ?? {}, sqi };
  }
}
