// Aggregated counts (msg.sqi.count events in msg.sqi.window_ms, from dc-container clones)
// -> a pulse train on one output. The count's events are spread evenly across the window,
// each one the event's own shape (its "unit"), but never closer together than the output
// can follow: a unit needs its own length plus the minimum off-time (or the edge spacing),
// and no more on-time than the duty limit allows. What does not fit is clamped: counted,
// never queued, so a million events a second cannot flood rpi-gpio out.
//
// On a PWM output the rate becomes a duty instead: rate x the unit's on-time, held for the
// window, capped at the maximum duty.
//
// Several event names counted in the same window share the pin (placeGroup). While the pin
// can follow them all, each event keeps its slot. When it cannot, the room is shared in
// proportion to the counts, with the fractions carried from window to window, so that over
// time each name gets its share of the pulses instead of the first name taking them all.

import { enforced, type Enforced, type Limits } from "./output";
import type { Segment } from "./shapes";

export interface Train {
  /** Digital: when each unit starts (absolute). */
  starts: number[];
  /** PWM: one segment for the window at the duty the rate asks for (absolute times). */
  hold?: Segment;
  /** Events of the count that the output did not deliver. */
  clamped: number;
  intendedHz: number;
  /** Digital: units per second placed in this window; PWM: the intended rate when the duty was not capped. */
  deliveredHz: number;
  /** PWM: the duty (0-100) the window was given. */
  duty?: number;
}

/** One event name's count in a shared window. */
export interface TrainItem {
  name: string;
  unit: Segment[];
  count: number;
}

/** Event names whose share fractions are remembered; more than this and the memory starts afresh. */
const MAX_NAMES = 256;

export class TrainPlanner {
  /** The earliest the next unit may start: trains of consecutive windows and event names share the pin. */
  private nextFree = -Infinity;
  /** Per event name, the share of the pin it was due but has not had yet (a fraction of a unit, or a unit that did not fit). */
  private readonly credit = new Map<string, number>();

  /** The limits as the output will enforce them (pin guard included): fixed, so worked out once. */
  private readonly enforced: Enforced;

  constructor(
    private readonly limits: Limits,
    private readonly pwm: boolean,
  ) {
    this.enforced = enforced(limits);
  }

  /** The shortest period at which `unit` can repeat on this output. */
  minPeriod(unit: Segment[]): number {
    const { spacing, minGap: gap, maxOn, dutyBudget: budget } = this.enforced;
    let length = 0;
    let on = 0;
    for (const s of unit) {
      const width = Math.min(Math.max(s.end - s.start, spacing), maxOn);
      length = Math.max(length, s.start + width);
      on += width * (this.pwm ? s.level / 100 : s.level > 0 ? 1 : 0);
    }
    // Duty: any window of dutyWindowMs may hold up to window / period + 1 units, and their
    // on-time must stay within maxDuty of the window, or the output would have to skip one.
    const forDuty = on >= budget ? this.limits.dutyWindowMs : (this.limits.dutyWindowMs * on) / (budget - on);
    return Math.max(length + gap, forDuty, 2 * spacing);
  }

  /** Places `count` units evenly across [t0, t0 + windowMs), as many as the output can follow. */
  place(unit: Segment[], count: number, windowMs: number, t0: number): Train {
    const intendedHz = (count * 1000) / windowMs;
    if (unit.length === 0) return { starts: [], clamped: count, intendedHz, deliveredHz: 0 };
    if (this.pwm) return this.asDuty(unit, count, windowMs, t0, intendedHz);
    const period = this.minPeriod(unit);
    const spacing = windowMs / count;
    const end = t0 + windowMs;
    const starts: number[] = [];
    // Event k's slot is t0 + k x spacing; when the output is still busy it waits until the
    // output is free, and what no longer fits in the window is clamped. One pass per unit placed,
    // never one per event.
    for (let k = 0; k < count; k++) {
      const t = Math.max(t0 + k * spacing, this.nextFree);
      if (t >= end) break;
      starts.push(t);
      this.nextFree = t + period;
    }
    return { starts, clamped: count - starts.length, intendedHz, deliveredHz: (starts.length * 1000) / windowMs };
  }

  /**
   * Places the counts of several event names in one window [t0, t0 + windowMs) on the pin they
   * share. Returns one Train per item, in the same order.
   */
  placeGroup(items: TrainItem[], windowMs: number, t0: number): Train[] {
    if (items.length === 1) return [this.place(items[0]!.unit, items[0]!.count, windowMs, t0)];
    if (this.pwm) return items.map((it) => this.place(it.unit, it.count, windowMs, t0));
    const end = t0 + windowMs;
    const trains: Train[] = items.map((it) => ({ starts: [], clamped: 0, intendedHz: (it.count * 1000) / windowMs, deliveredHz: 0 }));
    const period = items.map((it) => (it.unit.length ? this.minPeriod(it.unit) : Infinity));
    const live = items.map((_, i) => i).filter((i) => period[i]! < Infinity);
    const total = live.reduce((n, i) => n + items[i]!.count, 0);
    // Each event at its own slot, in time order, while the pin is free for it. Ends at the
    // window's end, so it costs the units placed, not the events counted.
    const inOrder = (quota: number[]): void => {
      const next = quota.map(() => 0);
      for (;;) {
        let best = -1;
        let bestSlot = Infinity;
        for (const i of live) {
          if (next[i]! >= quota[i]!) continue;
          const slot = t0 + (next[i]! * windowMs) / quota[i]!;
          if (slot < bestSlot) {
            bestSlot = slot;
            best = i;
          }
        }
        if (best < 0) break;
        const t = Math.max(bestSlot, this.nextFree);
        if (t >= end) break;
        trains[best]!.starts.push(t);
        this.nextFree = t + period[best]!;
        next[best]!++;
      }
    };
    const before = this.nextFree;
    inOrder(items.map((it) => it.count));
    const room = trains.reduce((n, t) => n + t.starts.length, 0);
    if (room < total) {
      // Saturated: the room found is shared in proportion to the counts, fractions carried over.
      this.nextFree = before;
      for (const t of trains) t.starts = [];
      if (this.credit.size > MAX_NAMES) this.credit.clear();
      const quota = items.map(() => 0);
      for (const i of live) {
        const it = items[i]!;
        const due = (this.credit.get(it.name) ?? 0) + (room * it.count) / total;
        quota[i] = Math.min(it.count, Math.floor(due + 1e-9));
        this.credit.set(it.name, due - quota[i]);
      }
      inOrder(quota);
      // A unit that was due but did not fit (the periods differ) goes first next time.
      for (const i of live) {
        const missed = quota[i]! - trains[i]!.starts.length;
        if (missed > 0) this.credit.set(items[i]!.name, Math.min(2, this.credit.get(items[i]!.name)! + missed));
      }
    }
    items.forEach((it, i) => {
      const t = trains[i]!;
      t.clamped = it.count - t.starts.length;
      t.deliveredHz = (t.starts.length * 1000) / windowMs;
    });
    return trains;
  }

  /** After a stop: the next train starts when its window says. */
  reset(): void {
    this.nextFree = -Infinity;
    this.credit.clear();
  }

  private asDuty(unit: Segment[], count: number, windowMs: number, t0: number, intendedHz: number): Train {
    let onMs = 0;
    for (const s of unit) onMs += (s.end - s.start) * (s.level / 100);
    const wanted = (intendedHz * onMs) / 10; // Hz x ms / 1000 x 100 %
    const cap = (this.enforced.dutyBudget / this.limits.dutyWindowMs) * 100;
    const duty = Math.round(Math.min(wanted, cap) * 10) / 10;
    const delivered = wanted > 0 ? Math.min(1, duty / wanted) : 0;
    const clamped = count - Math.round(count * delivered);
    const train: Train = { starts: [], clamped, intendedHz, deliveredHz: intendedHz * delivered, duty };
    if (duty > 0) train.hold = { start: t0, end: t0 + windowMs, level: duty };
    return train;
  }
}
