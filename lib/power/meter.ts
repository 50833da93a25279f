// What a Pi's own power sensor says its coils drew, for the bus listener to report upstream:
// the meter's readings (an INA219/INA226 node, an ADC, a function node, or the simulated
// sensor), integrated into energy on this Pi's clock. This is electrical energy drawn from the
// coil supply, measured; the pulse-shapers' V^2/R x on-time is the estimate it is set beside.

/** No reading for this long and the sensor is "silent": flagged, and the gap is not integrated. */
export const SENSOR_SILENT_MS = 5000;
/** What a listener's status says of a sensor that went silent (it turns the status yellow). */
export const SENSOR_SILENT_TEXT = "sensor silent";
/** Readings above these are a sensor's or a flow's mistake, refused (a Pi's coil rig is far below). */
export const MAX_POWER_W = 100_000;
export const MAX_VOLTS = 1000;
export const MAX_AMPS = 1000;

export type Reading = { ok: true; watts: number } | { ok: false; error: string };

const UNITS = "msg.payload must be watts (a number), { power_w }, or { voltage_v, current_a }";

function quantity(x: unknown, path: string, unit: string, max: number): { ok: true; value: number } | { ok: false; error: string } {
  if (typeof x !== "number" || !Number.isFinite(x)) return { ok: false, error: `${path}: must be a finite number of ${unit}, got ${describe(x)}` };
  // A negative reading is a sensor wired the other way round (or a bidirectional one at rest): not averaged in.
  if (x < 0) return { ok: false, error: `${path}: must be 0 or more ${unit}, got ${x} (is the shunt wired the other way round?)` };
  if (x > max) return { ok: false, error: `${path}: must be at most ${max} ${unit}, got ${x}` };
  return { ok: true, value: x };
}

function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  if (x === null) return "null";
  if (typeof x === "string") return `the string ${JSON.stringify(x.length > 20 ? `${x.slice(0, 20)}…` : x)}`;
  if (typeof x === "number") return String(x);
  if (Array.isArray(x)) return "an array";
  return typeof x === "object" ? "an object" : `a ${typeof x}`;
}

/** One measurement message's payload, read as watts; anything else is an error that names the path. */
export function readMeasure(payload: unknown): Reading {
  if (typeof payload === "number") {
    const w = quantity(payload, "msg.payload", "W", MAX_POWER_W);
    return w.ok ? { ok: true, watts: w.value } : w;
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return { ok: false, error: `${UNITS}, got ${describe(payload)}` };
  const p = payload as Record<string, unknown>;
  // power_w wins: a sensor that reads its own power register (averaged) knows it better than V x I of two readings.
  if (p.power_w !== undefined) {
    const w = quantity(p.power_w, "msg.payload.power_w", "W", MAX_POWER_W);
    return w.ok ? { ok: true, watts: w.value } : w;
  }
  if (p.voltage_v === undefined && p.current_a === undefined) return { ok: false, error: `${UNITS}, got an object with neither` };
  const v = quantity(p.voltage_v, "msg.payload.voltage_v", "V", MAX_VOLTS);
  if (!v.ok) return v;
  const a = quantity(p.current_a, "msg.payload.current_a", "A", MAX_AMPS);
  if (!a.ok) return a;
  return { ok: true, watts: v.value * a.value };
}

/** What a listener reports of its sensor: a report's `measured` group. */
export interface MeasuredGroup {
  /** the latest reading, W */
  power_w?: number;
  /** lowest and highest reading since the last report, W */
  min_w?: number;
  max_w?: number;
  /** electrical energy drawn since deploy, J: readings integrated on this Pi's clock */
  energy_j: number;
  samples: number;
  /** payloads refused (never averaged in) */
  bad: number;
  /** silences longer than SENSOR_SILENT_MS: spans not integrated */
  gaps: number;
  /** ms since the latest reading (absent before the first) */
  age_ms?: number;
}

/** The same in a listener's stats message, each key prefixed measured_. */
export interface MeasuredCounters {
  /** the latest reading, W */
  measured_power_w?: number;
  /** lowest and highest reading since the last report, W */
  measured_min_w?: number;
  measured_max_w?: number;
  /** electrical energy drawn since deploy, J: readings integrated on this Pi's clock */
  measured_energy_j: number;
  measured_samples: number;
  /** payloads refused (never averaged in) */
  measured_bad: number;
  /** silences longer than SENSOR_SILENT_MS: spans not integrated */
  measured_gaps: number;
  /** ms since the latest reading (absent before the first) */
  measured_age_ms?: number;
}

/**
 * Integrates a sensor's readings into energy by the trapezoid rule, on the listener's clock,
 * and keeps the latest power, the lowest and highest since the last report, and the counts.
 * A silence longer than SENSOR_SILENT_MS is not bridged: what the coils drew then is unknown,
 * so it is counted as a gap, never guessed.
 */
export class PowerMeter {
  private last: { t: number; w: number } | undefined;
  private energyJ = 0;
  private samples = 0;
  private bad = 0;
  private gaps = 0;
  private min = Infinity;
  private max = -Infinity;

  /** Takes one measurement payload that came at `now`; returns the error for a bad one (counted, not used). */
  take(payload: unknown, now: number): string | undefined {
    let r: Reading;
    try {
      r = readMeasure(payload);
    } catch (e) {
      // A payload whose getter throws (a function node can make one): refused like any bad reading.
      r = { ok: false, error: `msg.payload could not be read: ${(e as Error)?.message ?? String(e)}`.slice(0, 200) };
    }
    if (!r.ok) {
      this.bad++;
      return r.error;
    }
    const w = r.watts;
    if (this.last) {
      const dt = now - this.last.t;
      if (dt > SENSOR_SILENT_MS) this.gaps++;
      else if (dt > 0) this.energyJ += ((this.last.w + w) / 2) * (dt / 1000);
    }
    this.last = { t: now, w };
    this.samples++;
    this.min = Math.min(this.min, w);
    this.max = Math.max(this.max, w);
    return undefined;
  }

  /** Whether any measurement message came at all (a Pi without a sensor reports none of this). */
  get present(): boolean {
    return this.samples + this.bad > 0;
  }

  /** True when the sensor spoke once and then nothing for SENSOR_SILENT_MS (or only bad payloads came). */
  silent(now: number): boolean {
    return this.present && (!this.last || now - this.last.t >= SENSOR_SILENT_MS);
  }

  get energy(): number {
    return this.energyJ;
  }

  /** A report's `measured` group; `report` true starts a new min/max period. */
  group(now: number, report = false): MeasuredGroup {
    const out: MeasuredGroup = { energy_j: round6(this.energyJ), samples: this.samples, bad: this.bad, gaps: this.gaps };
    if (this.last) {
      out.power_w = round6(this.last.w);
      out.age_ms = Math.max(0, Math.round(now - this.last.t));
    }
    if (this.max >= this.min) {
      out.min_w = round6(this.min);
      out.max_w = round6(this.max);
    }
    if (report) {
      this.min = Infinity;
      this.max = -Infinity;
    }
    return out;
  }

  /** The same for a listener's stats message, as it has always read: each key prefixed measured_. */
  counters(now: number, report = false): MeasuredCounters {
    return Object.fromEntries(Object.entries(this.group(now, report)).map(([k, v]) => [`measured_${k}`, v])) as unknown as MeasuredCounters;
  }

  /** A status part: "12.3 W", or "sensor silent" (and `silent`, which the status shows as trouble). */
  statusPart(now: number): PowerStatus {
    if (!this.present) return { text: "", silent: false };
    if (this.silent(now)) return { text: SENSOR_SILENT_TEXT, silent: true };
    return { text: formatWatts(this.last?.w ?? 0), silent: false };
  }
}

/** The power sensor's part of a listener's status. */
export interface PowerStatus {
  text: string;
  silent: boolean;
}

/** Watts for a status or a label: "12.3 W", "850 mW", "1.25 kW". */
export function formatWatts(w: number): string {
  if (w >= 1000) return `${(w / 1000).toFixed(2)} kW`;
  if (w > 0 && w < 1) return `${(w * 1000).toFixed(0)} mW`;
  return `${w.toFixed(w >= 100 ? 0 : 1)} W`;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
