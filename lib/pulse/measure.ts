// What a pulse output reports about itself: only what it fired. Counts, rate, duty, the
// absolute timing and width error of its own edges (as sent; the pin adds its own latency), and,
// when the user gives the coil supply voltage V and coil resistance R, the electrical
// energy put into the coil, E = V^2 / R x on-time, to compare with a meter.

import type { Edge, PulseRecord } from "./output";

const KEEP = 2000;

export interface Spread {
  median: number;
  p99: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    median: round(s[Math.floor(s.length / 2)]!),
    p99: round(s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!),
    max: round(s[s.length - 1]!),
    n: s.length,
  };
}

class Ring {
  private readonly xs: number[] = [];
  private i = 0;
  push(x: number): void {
    if (this.xs.length < KEEP) this.xs.push(x);
    else {
      this.xs[this.i] = x;
      this.i = (this.i + 1) % KEEP;
    }
  }
  values(): readonly number[] {
    return this.xs;
  }
}

export interface Coil {
  volts: number;
  ohms: number;
}

export class Measurements {
  private readonly timing = new Ring();
  private readonly width = new Ring();
  private periodStart: number;
  private periodOnMs = 0;
  private periodPulses = 0;
  private totalOnMs_ = 0;

  constructor(
    now: number,
    private readonly coil?: Coil,
  ) {
    this.periodStart = now;
  }

  /** On-time since the start, ms (level-weighted). */
  get totalOnMs(): number {
    return this.totalOnMs_;
  }

  /** The estimate of the electrical energy drawn since the start, V^2/R x on-time, J (undefined without V and R). */
  get totalEnergyJ(): number | undefined {
    return this.coil ? Math.round(((this.coil.volts * this.coil.volts) / this.coil.ohms) * (this.totalOnMs_ / 1000) * 1e6) / 1e6 : undefined;
  }

  edge(e: Edge): void {
    this.timing.push(Math.abs(e.sent - e.planned));
  }

  pulse(p: PulseRecord): void {
    const on = (p.fall - p.rise) * p.fraction;
    this.periodOnMs += on;
    this.totalOnMs_ += on;
    this.periodPulses++;
    if (!p.cut) this.width.push(Math.abs(p.fall - p.rise - p.plannedWidth));
  }

  /** The report since the last one (rate, duty, energy) and over the recent edges (errors). */
  report(now: number, counters: Record<string, number>): Record<string, unknown> {
    const seconds = Math.max(1e-3, (now - this.periodStart) / 1000);
    const out: Record<string, unknown> = {
      ...counters,
      period_s: Math.round(seconds * 1000) / 1000,
      rate_hz: Math.round((this.periodPulses / seconds) * 100) / 100,
      duty: Math.round((this.periodOnMs / (seconds * 1000)) * 10000) / 10000,
      on_time_ms: Math.round(this.periodOnMs * 1000) / 1000,
      timing_error_ms: spread(this.timing.values()),
      width_error_ms: spread(this.width.values()),
    };
    if (this.coil) {
      const watts = (this.coil.volts * this.coil.volts) / this.coil.ohms;
      out.electrical_input = {
        what: "electrical energy into the coil from its supply, V^2/R x on-time (an estimate from the settings; measure to confirm)",
        volts: this.coil.volts,
        ohms: this.coil.ohms,
        energy_j: Math.round(watts * (this.periodOnMs / 1000) * 1e6) / 1e6,
        total_energy_j: this.totalEnergyJ,
      };
    }
    this.periodStart = now;
    this.periodOnMs = 0;
    this.periodPulses = 0;
    return out;
  }
}
