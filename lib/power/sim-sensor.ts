// The simulated power sensor's model, the only place a model stands in for a meter: it reads
// the simulated GPIO's pin log and, while the coil's pin is high, says the coil drew V/R from
// its supply, with the supply sagging by a set share under that load. Like an averaging meter
// (an INA226 with averaging on), each reading is the mean over the interval since the last.
// Off a Pi only: there is no pin log on a real one, and this says nothing there.

import type { PinRecord } from "../pulse/audit";

/** The simulated sensor node's settings: its panel says the same ranges. */
export const SIM_RULES = {
  pin: { label: "Pin", min: 1, max: 40, integer: true, default: 18 },
  volts: { label: "Coil supply voltage", min: 0, max: 1000, exclusiveMin: true, default: 12, unit: "V" },
  ohms: { label: "Coil resistance", min: 0, max: 1e6, exclusiveMin: true, default: 6, unit: "ohm" },
  sag: { label: "Supply sag under load", min: 0, max: 50, default: 3, unit: "%" },
  every: { label: "Read every", min: 0.05, max: 60, default: 0.5, unit: "s" },
} as const;

export interface SimCoil {
  /** the coil supply's voltage at rest, V */
  volts: number;
  /** the coil's resistance, ohm */
  ohms: number;
  /** how far the supply sags while the coil draws, % of volts */
  sagPct: number;
}

export interface SimReading {
  power_w: number;
  voltage_v: number;
  current_a: number;
  /** share of the interval the pin was on (level-weighted on a PWM pin) */
  duty: number;
}

/**
 * One pin's on-time, accumulated from its log records in the log's own time (the machine's
 * wall clock, whatever clock offset a simulated Pi has). `onMsUntil(t)` is the on-time from
 * the first record to t, assuming the level holds after the last record.
 */
export class PinOnTime {
  private level = 0;
  private pwm = false;
  private at: number | undefined;
  private onMs = 0;
  /** records for this pin taken, and those out of time order (ignored) */
  records = 0;
  disordered = 0;

  constructor(readonly pin: number) {}

  take(r: PinRecord): void {
    if (r.pin !== this.pin) return;
    if (this.at !== undefined && r.t < this.at) {
      this.disordered++;
      return;
    }
    this.records++;
    if (this.at !== undefined) this.onMs += (r.t - this.at) * this.level;
    this.at = r.t;
    // A "pwm" setup record says the values are duties (0-100) from then on, an "out" one that they
    // are levels: 1 % PWM is 0.01 on. A sensor that started after the setup record (it reads from
    // the log's end) knows PWM only from a value other than 0 and 1, and takes 1 as on until then.
    const v = r.event === "released" || r.value === null ? 0 : r.value;
    if (r.event === "pwm" || (r.event === undefined && v !== 0 && v !== 1)) this.pwm = true;
    else if (r.event === "out") this.pwm = false;
    // A "released" record leaves the pin low (a released pin floats, and the gate's pull-down holds it low).
    this.level = this.pwm ? Math.min(100, Math.max(0, v)) / 100 : v > 0 ? 1 : 0;
  }

  onMsUntil(t: number): number {
    return this.onMs + (this.at !== undefined && t > this.at ? (t - this.at) * this.level : 0);
  }

  get high(): boolean {
    return this.level > 0;
  }
}

/**
 * Readings from one pin's on-time: each is the mean over the interval since the previous
 * one. A record that reaches the log after a reading was taken (the helper writes a moment
 * late) would make an interval's on-time negative: it is carried into the next instead, so
 * that no reading is below zero and the readings' total is exactly the log's.
 */
export class SimSensor {
  readonly onTime: PinOnTime;
  private lastT: number | undefined;
  private lastOn = 0;
  private carryMs = 0;

  constructor(
    pin: number,
    private readonly coil: SimCoil,
  ) {
    this.onTime = new PinOnTime(pin);
  }

  /** The reading for the interval ending at `t` (wall clock, as in the log); undefined for the first call, which only starts. */
  read(t: number): SimReading | undefined {
    const on = this.onTime.onMsUntil(t);
    if (this.lastT === undefined || t <= this.lastT) {
      this.lastT ??= t;
      this.lastOn = on;
      return undefined;
    }
    const span = t - this.lastT;
    let onMs = on - this.lastOn + this.carryMs;
    this.carryMs = 0;
    if (onMs < 0) {
      this.carryMs = onMs;
      onMs = 0;
    }
    if (onMs > span) {
      this.carryMs = onMs - span;
      onMs = span;
    }
    this.lastT = t;
    this.lastOn = on;
    return reading(this.coil, onMs / span);
  }
}

/** What the modelled sensor reads over an interval in which the pin was on for `duty` of it. */
export function reading(coil: SimCoil, duty: number): SimReading {
  const vOn = coil.volts * (1 - coil.sagPct / 100);
  const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
  return {
    power_w: r6(((vOn * vOn) / coil.ohms) * duty),
    voltage_v: r6(coil.volts - (coil.volts - vOn) * duty),
    current_a: r6((vOn / coil.ohms) * duty),
    duty: r6(duty),
  };
}
