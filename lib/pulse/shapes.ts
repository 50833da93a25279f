// Event -> pulse plan: which output levels an event asks for, and when, relative to the
// moment it fires. Pure arithmetic; the limits and the timing live in output.ts and
// scheduler.ts. A plan never asks for edges closer together than the output can follow:
// a burst faster than that is slowed to the fastest rate allowed (digital) or turned into
// a PWM duty over the burst (PWM), and the plan says so.

export type ShapeKind = "pulse" | "burst" | "split" | "combined" | "pwm" | "ignore";
export const SHAPE_KINDS: readonly ShapeKind[] = ["pulse", "burst", "split", "combined", "pwm", "ignore"];

/** One row of the per-event table in the panel; blank fields take the shape's defaults. */
export interface ShapeRow {
  event: string;
  shape: ShapeKind;
  /** ms: the pulse (pulse), base width (split), the long pulse (combined), the hold time (pwm). */
  width?: number;
  /** pulses in the burst (burst, split's fast part, combined's burst). */
  count?: number;
  /** Hz: burst frequency when the payload gives none. */
  frequency?: number;
  /** 0..1: burst duty, or the PWM level, when the payload gives none. */
  duty?: number;
}

export type OutputMode = "digital" | "pwm";

export interface ShapeConfig {
  /** The pulse width W in ms (the panel's first field; default 5). */
  widthMs: number;
  output: OutputMode;
  /** What an event with no row and no built-in default becomes. */
  unknown: "pulse" | "ignore";
  rows: ShapeRow[];
  /** Consecutive edges are at least this far apart (from the maximum edge rate). */
  edgeSpacingMs: number;
}

/** A stretch of time in which the output should be at `level` (1 digital, or 0-100 duty), relative to the event. */
export interface Segment {
  start: number;
  end: number;
  level: number;
}

export type Plan =
  | { kind: "segments"; segments: Segment[]; rateClamp?: { intendedHz: number; deliveredHz: number; asDuty: boolean } }
  | { kind: "ignored" }
  | { kind: "rejected"; error: string };

export const DEFAULT_WIDTH_MS = 5;

/** The shapes SPEC's table gives the five well-known events. */
export function builtInRow(event: string, widthMs: number): ShapeRow | undefined {
  switch (event) {
    case "proton_collision":
      return { event, shape: "pulse", width: widthMs };
    case "atom_spin_flip":
      return { event, shape: "pulse", width: 50 };
    case "waveform_emit":
      return { event, shape: "burst", count: 10, frequency: 100, duty: 0.5 };
    case "time_dilation":
      return { event, shape: "split", width: widthMs, count: 5 };
    case "fusion_tick":
      return { event, shape: "combined", width: 50, count: 5, frequency: 100, duty: 0.5 };
    default:
      return undefined;
  }
}

/** The row that applies to an event: the panel's, else the built-in, else the unknown-event rule. */
export function rowFor(event: string, cfg: ShapeConfig): ShapeRow {
  const own = cfg.rows.find((r) => r.event === event);
  const builtIn = builtInRow(event, cfg.widthMs);
  if (own) return { ...builtIn, ...stripUndefined(own) };
  return builtIn ?? { event, shape: cfg.unknown, width: cfg.widthMs };
}

function stripUndefined(r: ShapeRow): ShapeRow {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as ShapeRow;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s;
}

/** Reads an optional positive number from the payload; undefined when absent, an error text when bad. */
/**
 * A burst's lowest frequency: below it a 10-pulse burst would last minutes, and 1e-7 Hz asked
 * for timers months away. Faster than a pin follows is not refused: it is slowed or held as a duty.
 */
export const MIN_BURST_HZ = 0.1;
/** time_dilation's slow factor at most: its pulse is cut at the maximum on-time anyway. */
export const MAX_FACTOR = 1000;

function payloadNumber(
  event: string,
  payload: Record<string, unknown>,
  key: string,
  check: (n: number) => boolean,
  rule: string,
): number | undefined | { error: string } {
  if (!(key in payload) || payload[key] === undefined) return undefined;
  const v = payload[key];
  if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) return { error: `${event}: msg.payload.${key} ${rule}, got ${describe(v)}` };
  return v;
}

/**
 * A burst of `count` pulses at `hz` with `duty`, starting at `start`. Digital: slowed to the fastest
 * rate whose high and low parts are both at least edgeSpacingMs. PWM: if too fast for edges, one
 * segment at the burst's duty for the burst's intended length.
 */
function burst(
  start: number,
  count: number,
  hz: number,
  duty: number,
  cfg: ShapeConfig,
  out: Segment[],
): { intendedHz: number; deliveredHz: number; asDuty: boolean } | undefined {
  const d = Math.min(Math.max(duty, 0), 1);
  if (count <= 0 || d === 0) return undefined;
  const s = cfg.edgeSpacingMs;
  const intendedPeriod = 1000 / hz;
  // Both the high part (d * period) and the low part ((1 - d) * period) must be >= s; duty 1 is one long pulse.
  const minPeriod = d >= 1 ? s : s / Math.min(d, 1 - d);
  if (intendedPeriod >= minPeriod) {
    for (let k = 0; k < count; k++) {
      const t = start + k * intendedPeriod;
      out.push({ start: t, end: t + (d >= 1 ? intendedPeriod : d * intendedPeriod), level: cfg.output === "pwm" ? 100 : 1 });
    }
    return undefined;
  }
  if (cfg.output === "pwm") {
    out.push({ start, end: start + count * intendedPeriod, level: Math.round(d * 1000) / 10 });
    return { intendedHz: hz, deliveredHz: hz, asDuty: true };
  }
  for (let k = 0; k < count; k++) {
    const t = start + k * minPeriod;
    out.push({ start: t, end: t + (d >= 1 ? minPeriod : d * minPeriod), level: 1 });
  }
  return { intendedHz: hz, deliveredHz: Math.round((1000 / minPeriod) * 100) / 100, asDuty: false };
}

/** Turns one event into its segments, relative to the moment it fires (0). */
export function planEvent(event: unknown, payload: unknown, cfg: ShapeConfig): Plan {
  if (typeof event !== "string" || event.trim() === "") {
    return { kind: "rejected", error: `msg.topic must be the event name (a non-empty string), got ${describe(event)}` };
  }
  const row = rowFor(event, cfg);
  if (row.shape === "ignore") return { kind: "ignored" };
  const readsPayload = row.shape === "burst" || row.shape === "split" || row.shape === "pwm";
  const isObject = typeof payload === "object" && payload !== null && !Array.isArray(payload);
  if (readsPayload && payload !== undefined && !isObject) {
    return { kind: "rejected", error: `${event}: msg.payload must be an object (the glyph's payload), got ${describe(payload)}` };
  }
  const p = (isObject ? payload : {}) as Record<string, unknown>;
  const on = cfg.output === "pwm" ? 100 : 1;
  const W = row.width ?? cfg.widthMs;
  const segments: Segment[] = [];
  let rateClamp: ReturnType<typeof burst>;

  switch (row.shape) {
    case "pulse":
      segments.push({ start: 0, end: W, level: on });
      break;
    case "burst": {
      const hz = payloadNumber(event, p, "frequency_hz", (n) => n >= MIN_BURST_HZ, `must be at least ${MIN_BURST_HZ} Hz`);
      const amp = payloadNumber(event, p, "amplitude", (n) => n >= 0 && n <= 1, "must be a number from 0 to 1");
      if (typeof hz === "object") return { kind: "rejected", error: hz.error };
      if (typeof amp === "object") return { kind: "rejected", error: amp.error };
      rateClamp = burst(0, row.count ?? 10, hz ?? row.frequency ?? 100, amp ?? row.duty ?? 0.5, cfg, segments);
      break;
    }
    case "split": {
      // A fast burst of `count` pulses W / factor_fast wide (as many gaps), a pause of W, then one slow pulse W x factor_slow.
      const fast = payloadNumber(event, p, "factor_fast", (n) => n > 0, "must be a positive number");
      const slow = payloadNumber(event, p, "factor_slow", (n) => n > 0 && n <= MAX_FACTOR, `must be a positive number up to ${MAX_FACTOR}`);
      if (typeof fast === "object") return { kind: "rejected", error: fast.error };
      if (typeof slow === "object") return { kind: "rejected", error: slow.error };
      const fastWidth = W / (fast ?? 10);
      rateClamp = burst(0, row.count ?? 5, 1000 / (2 * fastWidth), 0.5, cfg, segments);
      const burstEnd = segments.at(-1)?.end ?? 0;
      const slowStart = burstEnd + Math.max(W, cfg.edgeSpacingMs);
      segments.push({ start: slowStart, end: slowStart + W * (slow ?? 5), level: on });
      break;
    }
    case "combined": {
      rateClamp = burst(0, row.count ?? 5, row.frequency ?? 100, row.duty ?? 0.5, cfg, segments);
      const burstEnd = segments.at(-1)?.end ?? 0;
      const period = 1000 / (row.frequency ?? 100);
      const longStart = burstEnd + Math.max(period * (1 - (row.duty ?? 0.5)), cfg.edgeSpacingMs);
      segments.push({ start: longStart, end: longStart + W, level: on });
      break;
    }
    case "pwm": {
      const amp = payloadNumber(event, p, "amplitude", (n) => n >= 0 && n <= 1, "must be a number from 0 to 1");
      if (typeof amp === "object") return { kind: "rejected", error: amp.error };
      const level = (amp ?? row.duty ?? 0.5) * (cfg.output === "pwm" ? 100 : 1);
      if (cfg.output === "digital") {
        // A digital pin cannot hold a duty: the amplitude becomes the share of W it is high.
        if (level > 0) segments.push({ start: 0, end: Math.max(W * level, cfg.edgeSpacingMs), level: 1 });
      } else if (level > 0) {
        segments.push({ start: 0, end: W, level: Math.round(level * 10) / 10 });
      }
      break;
    }
  }
  return rateClamp ? { kind: "segments", segments, rateClamp } : { kind: "segments", segments };
}
