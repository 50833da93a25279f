// Aggregated counts (msg.sqi.count events in msg.sqi.window_ms, from dc-container clones)
// -> a pulse train on one output. The count's events are spread evenly across the window,
// each one the event's own shape (its "unit"), but never closer together than the output
// can follow: a unit needs its own length plus the minimum off-time (or the edge spacing),
// and no more on-time than the duty limit allows. What does not fit is clamped: counted,
// never queued, so a million events a second cannot flood rpi-gpio out.
//
// On a PWM output the rate becomes a duty instead: rate x the unit's on-time, held for the
// window, capped at the maximum duty.

import type { Limits } from "./output";
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

export class TrainPlanner {
  /** The earliest the next unit may start: trains of consecutive windows and event names share the pin. */
  private nextFree = -Infinity;

  constructor(
    private readonly limits: Limits,
    private readonly pwm: boolean,
  ) {}

  /** The shortest period at which `unit` can repeat on this output. */
  minPeriod(unit: Segment[]): number {
    const spacing = 1000 / this.limits.maxEdgeRate;
    const gap = Math.max(this.limits.minOffMs, spacing);
    let length = 0;
    let on = 0;
    for (const s of unit) {
      const width = Math.min(Math.max(s.end - s.start, spacing), this.limits.maxOnMs);
      length = Math.max(length, s.start + width);
      on += width * (this.pwm ? s.level / 100 : s.level > 0 ? 1 : 0);
    }
    // Duty: any window of dutyWindowMs may hold up to window / period + 1 units, and their
    // on-time must stay within maxDuty of the window, or the output would have to skip one.
    const budget = this.limits.maxDuty * this.limits.dutyWindowMs;
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

  /** After a stop: the next train starts when its window says. */
  reset(): void {
    this.nextFree = -Infinity;
  }

  private asDuty(unit: Segment[], count: number, windowMs: number, t0: number, intendedHz: number): Train {
    let onMs = 0;
    for (const s of unit) onMs += (s.end - s.start) * (s.level / 100);
    const wanted = (intendedHz * onMs) / 10; // Hz x ms / 1000 x 100 %
    const cap = this.limits.maxDuty * 100;
    const duty = Math.round(Math.min(wanted, cap) * 10) / 10;
    const delivered = wanted > 0 ? Math.min(1, duty / wanted) : 0;
    const clamped = count - Math.round(count * delivered);
    const train: Train = { starts: [], clamped, intendedHz, deliveredHz: intendedHz * delivered, duty };
    if (duty > 0) train.hold = { start: t0, end: t0 + windowMs, level: duty };
    return train;
  }
}
