// One pulse output: the queue of what it should do, the safety limits, and the edges it
// fires. Segments from planned events merge (the output is high while any of them wants
// it high), so the edges strictly alternate. The limits are enforced where nothing can get
// past them, when each edge is due:
//   - maximum on-time per pulse: a pulse (merged or not) is cut at that length;
//   - maximum duty over a sliding window: at each rising edge, the pulse may only be as
//     long as the window's remaining budget, judged on the pulses already fired;
//   - minimum off-time and maximum edge rate: a rising edge too soon after the last falling
//     edge waits (the pulse keeps its end, so it is shortened); edges closer than 1/max-rate
//     never happen; a pulse left shorter than that is skipped.
// A rising edge that goes out late (a busy event loop) keeps its pulse's width: the falling
// edge moves by the same lateness, as far as the limits and the next pulse allow.
// The limits are kept with a pin guard (Limits.pinGuardMs, enforced()): gaps that much wider,
// pulses that much shorter and a little of the duty budget held back, for what rpi-gpio out's
// helper adds between an edge sent and the pin. Gaps count from when an edge was handed on.
// Every cut, wait and skip is counted. The queue is bounded; what does not fit is counted.

import type { Clock } from "../clock";
import { DeadlineQueue, EdgeScheduler } from "./scheduler";
import type { Segment } from "./shapes";

export interface Limits {
  maxOnMs: number;
  /** 0..1 */
  maxDuty: number;
  dutyWindowMs: number;
  minOffMs: number;
  /** Edges per second; consecutive edges are at least 1000 / maxEdgeRate ms apart. */
  maxEdgeRate: number;
  /** Pulses waiting at most; more are dropped and counted. */
  maxQueue: number;
  /**
   * How far inside the gap and on-time limits the output stays when it sends, for what
   * rpi-gpio out's helper may add on the way to the pin. Default PIN_GUARD_MS.
   */
  pinGuardMs: number;
}

/**
 * What rpi-gpio out's helper may add to an edge on its way to the pin (it reads one line per
 * edge from a pipe and must be woken for each; measured here: p50 0.2-0.3 ms, p99 0.6-3 ms on a
 * shared 2-core machine): the output keeps this far inside the gap and on-time limits when it
 * sends, so that they hold at the pin, not only in what was sent.
 */
export const PIN_GUARD_MS = 1;

export const DEFAULT_LIMITS: Limits = {
  maxOnMs: 100,
  maxDuty: 0.5,
  dutyWindowMs: 1000,
  minOffMs: 1,
  maxEdgeRate: 500,
  maxQueue: 10_000,
  pinGuardMs: PIN_GUARD_MS,
};

export interface Enforced {
  /** Consecutive edges are sent at least this far apart; also the narrowest pulse. */
  spacing: number;
  /** A rising edge is sent at least this long after the last falling edge. */
  minGap: number;
  /** No pulse is sent longer than this. */
  maxOn: number;
  /** Level-weighted on-time allowed in any duty window, with a reserve for the pin's width jitter. */
  dutyBudget: number;
}

/** The limits as the output enforces them when it sends: the pin guard inside each, and a duty reserve. */
export function enforced(l: Limits): Enforced {
  const g = l.pinGuardMs;
  const spacing = 1000 / l.maxEdgeRate + g;
  const budget = l.maxDuty * l.dutyWindowMs;
  // The width errors of the pulses in one window add up; hold back 1 % of the budget (at least
  // four pulses' worth of guard), but never more than a quarter of it.
  const reserve = g > 0 ? Math.min(budget / 4, Math.max(budget / 100, 4 * g)) : 0;
  return { spacing, minGap: Math.max(l.minOffMs + g, spacing), maxOn: Math.max(l.maxOnMs - g, spacing), dutyBudget: budget - reserve };
}

/** What caused a pulse: carried onto its edge messages. */
export interface Origin {
  event: string;
  sqi?: Record<string, unknown>;
}

export interface Edge {
  /** 1 or 0 on a digital output; the duty 0-100 on a PWM output: what is sent to the pin's node. */
  level: number;
  /** The share of the time the pin is on from this edge, 0..1, on either output: 1 % PWM is 0.01. */
  duty: number;
  /**
   * Whole pulses (a timed driver, pulse-out): on a rising edge, the pulse's width in ms, which the
   * driver times itself. On the falling edge that ends such a pulse by its plan, `driven` is true:
   * the driver makes it, nothing is to be sent.
   */
  width?: number;
  driven?: boolean;
  /** When the edge was meant to happen (after the limits), on this output's clock. */
  planned: number;
  /** When it was sent. */
  sent: number;
  origin: Origin;
}

export interface OutputCounters {
  /** Pulses completed (a rising and a falling edge). */
  pulses: number;
  /** Pulses cut short or delayed by a limit. */
  clamped: number;
  /** Pulses that a limit left too short to fire, so not fired. */
  skipped: number;
  /** Pulses refused because the queue was full. */
  dropped: number;
  edges: number;
}

interface Pending {
  start: number;
  end: number;
  level: number;
  origin: Origin;
  /** Set once the rising edge has fired. */
  rise?: number;
  /** The latest the falling edge may come, fixed at the rising edge by the on-time and duty limits. */
  maxEnd?: number;
}

export interface PulseRecord {
  rise: number;
  fall: number;
  /** share of full on: 1 digital, duty/100 PWM */
  fraction: number;
  plannedWidth: number;
  /** Ended early by stop/close, not by its plan: no width error to speak of. */
  cut: boolean;
}

export class PulseOutput {
  readonly counters: OutputCounters = { pulses: 0, clamped: 0, skipped: 0, dropped: 0, edges: 0 };
  private queue: Pending[] = [];
  private history: PulseRecord[] = [];
  private lastFall = -Infinity;
  private readonly scheduler: EdgeScheduler;
  private readonly spacing: number;
  private readonly minGap: number;
  private readonly maxOn: number;
  private readonly dutyBudget: number;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    readonly limits: Limits,
    /** PWM: levels are duties 0-100; digital: 1 is on. */
    private readonly pwm: boolean,
    private readonly onEdge: (edge: Edge) => void,
    private readonly onPulse?: (pulse: PulseRecord) => void,
    /**
     * Whole pulses: each rising edge carries its pulse's width, fixed when it is handed on (a
     * driver times the fall), so a pulse that is on takes no more merges: what overlaps it waits
     * for the minimum off-time after it.
     */
    private readonly whole = false,
    /** The queue this output's edges share with the other outputs of its runtime (scheduler.ts); its own when none is given. */
    deadlines: DeadlineQueue = new DeadlineQueue(clock),
  ) {
    this.scheduler = new EdgeScheduler(deadlines);
    ({ spacing: this.spacing, minGap: this.minGap, maxOn: this.maxOn, dutyBudget: this.dutyBudget } = enforced(limits));
  }

  /** The level the output is at now. */
  get level(): number {
    return this.queue[0]?.rise !== undefined ? this.queue[0].level : 0;
  }
  get queued(): number {
    return this.queue.length;
  }

  /** Adds an event's segments, placed at absolute time t0. Returns how many were queued. */
  add(segments: Segment[], t0: number, origin: Origin): number {
    if (this.stopped) return 0;
    let added = 0;
    const now = this.clock.now();
    for (const s of segments) {
      const start = Math.max(t0 + s.start, now);
      let end = t0 + s.end;
      if (end - start > this.maxOn) {
        end = start + this.maxOn;
        this.counters.clamped++;
      } else if (end - start < this.spacing) {
        // Narrower than the output can follow: widened to the narrowest pulse it can make.
        end = start + this.spacing;
        this.counters.clamped++;
      }
      if (this.insert({ start, end, level: s.level, origin })) added++;
    }
    this.arm();
    return added;
  }

  /** Cancels everything pending; if the output is on, sends the falling edge now. */
  stop(): boolean {
    this.scheduler.cancel();
    const active = this.queue[0]?.rise !== undefined ? this.queue[0] : undefined;
    this.queue = [];
    if (!active) return false;
    const now = this.clock.now();
    this.fall(active, now, now, true);
    return true;
  }

  /** After stop(): accept new pulses again. */
  resume(): void {
    this.stopped = false;
  }

  /** Stops for good (close): nothing is accepted any more. Returns whether a falling edge was sent. */
  close(): boolean {
    this.stopped = true;
    return this.stop();
  }

  /** On-time (level-weighted) of the pulses fired within [from, to]. */
  onTimeBetween(from: number, to: number): number {
    let on = 0;
    for (const p of this.history) {
      const a = Math.max(p.rise, from);
      const b = Math.min(p.fall, to);
      if (b > a) on += (b - a) * p.fraction;
    }
    const active = this.queue[0];
    if (active?.rise !== undefined) {
      const a = Math.max(active.rise, from);
      const b = Math.min(to, this.clock.now());
      if (b > a) on += (b - a) * this.fractionOf(active.level);
    }
    return on;
  }

  private insert(p: Pending): boolean {
    const q = this.queue;
    // Pulses that overlap or touch p merge with it; one that is merely too close is left to
    // the minimum off-time at its rising edge. lo: the first pending pulse ending at or after p.start
    // (with whole pulses, not the one on now: its width was handed on).
    let lo = this.whole && q[0]?.rise !== undefined ? 1 : 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid]!.end < p.start) lo = mid + 1;
      else hi = mid;
    }
    let last = lo;
    while (last < q.length && q[last]!.start <= p.end) last++;
    if (last === lo) {
      if (q.length >= this.limits.maxQueue) {
        this.counters.dropped++;
        return false;
      }
      q.splice(lo, 0, p);
      return true;
    }
    // Merge p with q[lo..last): one pulse from the earliest start to the latest end.
    const first = q[lo]!;
    const merged: Pending = first.rise !== undefined ? first : { ...first };
    merged.start = Math.min(first.start, first.rise === undefined ? p.start : first.start);
    for (let k = lo; k < last; k++) {
      merged.end = Math.max(merged.end, q[k]!.end);
      if (q[k]!.rise === undefined) merged.level = Math.max(merged.level, q[k]!.level);
    }
    merged.end = Math.max(merged.end, p.end);
    if (merged.rise === undefined) merged.level = Math.max(merged.level, p.level);
    const cap = merged.maxEnd ?? merged.start + this.maxOn;
    if (merged.end > cap) {
      merged.end = cap;
      this.counters.clamped++;
    }
    q.splice(lo, last - lo, merged);
    return true;
  }

  private arm(): void {
    if (this.stopped && this.queue.length === 0) return;
    const next = this.queue[0];
    if (!next) {
      this.scheduler.cancel();
      return;
    }
    const due = next.rise === undefined ? next.start : next.end;
    // The falling edge of a pulse cut at its on-time or duty limit has no room to come late.
    // With whole pulses the driver times the fall: this timer only keeps the books.
    const hold = !this.whole && next.rise !== undefined && next.maxEnd !== undefined && next.end >= next.maxEnd - 1e-6;
    if (this.scheduler.armedFor !== due) this.scheduler.at(due, () => this.fire(), hold);
  }

  private fire(): void {
    const p = this.queue[0];
    if (!p) return;
    const now = this.clock.now();
    if (p.rise !== undefined) {
      this.fall(p, p.end, now, false);
      this.arm();
      return;
    }
    // Minimum off-time and edge spacing: the rising edge waits for them and the pulse keeps its
    // end, so it is shortened (its timing stays the plan's: the Pis of a bus stay in step). A
    // wait within the pin guard (the falling edge took that long to hand on) is the guard at
    // work; a longer one is counted.
    const earliest = this.lastFall + this.minGap;
    if (now < earliest - 1e-6) {
      if (earliest - p.start > this.limits.pinGuardMs + 1e-6) this.counters.clamped++;
      p.start = earliest;
      if (p.end - p.start < this.spacing) this.skip();
      this.arm();
      return;
    }
    // Duty budget over the window ending now, judged on the pulses already fired.
    const fraction = this.fractionOf(p.level);
    const budget = this.dutyBudget - this.onTimeBetween(now - this.limits.dutyWindowMs, now);
    const maxEnd = Math.min(now + this.maxOn, now + Math.max(0, budget) / fraction);
    if (maxEnd - now < this.spacing) {
      this.skip();
      this.arm();
      return;
    }
    const planned = p.start;
    const late = now - planned;
    if (late > 0) {
      // Keep the width that was set; a pulse queued behind keeps its own rising edge.
      const next = this.queue[1];
      const room = next ? Math.max(p.end, next.start - this.minGap) : Infinity;
      p.end = Math.min(p.end + late, room);
      p.start = now;
    }
    if (p.end > maxEnd) {
      p.end = maxEnd;
      this.counters.clamped++;
    }
    p.end = Math.max(p.end, now + this.spacing);
    p.rise = now;
    p.maxEnd = maxEnd;
    this.counters.edges++;
    if (this.whole) {
      p.maxEnd = p.end; // handed on whole: nothing merges into it now
      this.onEdge({ level: p.level, duty: this.fractionOf(p.level), planned, sent: now, origin: p.origin, width: p.end - now });
    } else {
      this.onEdge({ level: p.level, duty: this.fractionOf(p.level), planned, sent: now, origin: p.origin });
      // Handing the edge on can take a moment (the GPIO helper, woken by the write, may take the
      // CPU): the pulse is at least `spacing` wide from when it was handed on.
      p.end = Math.max(p.end, this.clock.now() + this.spacing);
    }
    this.arm();
  }

  private skip(): void {
    this.queue.shift();
    this.counters.skipped++;
  }

  private fractionOf(level: number): number {
    return this.pwm ? level / 100 : level > 0 ? 1 : 0;
  }

  private fall(p: Pending, planned: number, now: number, cut: boolean): void {
    this.queue.shift();
    const record: PulseRecord = { rise: p.rise!, fall: now, fraction: this.fractionOf(p.level), plannedWidth: p.end - p.start, cut };
    this.history.push(record);
    const horizon = now - this.limits.dutyWindowMs;
    while ((this.history[0]?.fall ?? horizon) < horizon) this.history.shift();
    this.counters.pulses++;
    this.counters.edges++;
    this.onEdge({ level: 0, duty: 0, planned, sent: now, origin: p.origin, ...(this.whole && !cut ? { driven: true } : {}) });
    // The off-time and the duty count from when the falling edge was handed on, not decided.
    this.lastFall = record.fall = Math.max(now, this.clock.now());
    this.onPulse?.(record);
  }
}
