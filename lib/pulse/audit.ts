// The pin-log auditor: checks what a pin actually did against a pulse-shaper's safety
// limits. The limits are promises about the pin, not the plan, so this reads the log the
// (simulated) GPIO wrote, one record per level change, and never the shaper's own report.
//
// Per pin it measures pulses, widths and off-times, and finds:
//   - edges closer than the edge spacing (1000 / max edge rate) and off-times under the
//     minimum off-time. rpi-gpio out's Python helper reads one line per edge from a pipe and
//     may take one a little late, so a gap short by at most `jitterMs` is tolerated on at
//     most `share` of the gaps; anything shorter, or more of them, is a violation;
//   - the longest continuous on-stretch: pulses joined by gaps shorter than the minimum
//     off-time (a coil driver cannot tell them from one pulse), against the maximum on-time;
//   - the highest duty over any duty window (level-weighted on a PWM pin).
// There is no jitter allowance on on-time or duty: those limits protect the hardware.

import { parseShaperSettings } from "./config";
import type { Limits } from "./output";
import { bcmPinOf } from "./pins";

/** One line of a pin log: {t, pin, value} for a level change, with `event` for setup ("out"/"pwm") and "released". */
export interface PinRecord {
  t: number;
  pin: number;
  value: number | null;
  event?: string;
}

export type AuditLimits = Pick<Limits, "minOffMs" | "maxEdgeRate" | "maxOnMs" | "maxDuty" | "dutyWindowMs">;

export interface Allowance {
  /** How much shorter than a limit a gap (edge spacing, off-time) may be, for pipe jitter. */
  jitterMs: number;
  /** On what share of the gaps (0..1) that is tolerated. */
  share: number;
  /** How far an on-stretch may run over the maximum on-time; 0 unless a test says otherwise. */
  onMs: number;
}

export const DEFAULT_ALLOWANCE: Allowance = { jitterMs: 0.5, share: 0.01, onMs: 0 };

/** Below this a difference is the log's rounding (it has 1 us resolution), not a violation. */
const EPS_MS = 0.002;

export interface Distribution {
  n: number;
  min: number;
  median: number;
  p99: number;
  max: number;
}

export interface GapCheck {
  /** Gaps looked at. */
  gaps: number;
  /** Under the limit by at most the jitter allowance. */
  tolerated: number;
  /** Under the limit by more than the allowance. */
  beyond: number;
  /** The shortest gap seen, and when it ended (epoch ms). */
  shortest?: { ms: number; at: number };
}

export interface PinAudit {
  pin: number;
  pwm: boolean;
  limits: AuditLimits;
  edges: number;
  pulses: number;
  widthMs: Distribution | null;
  offMs: Distribution | null;
  /** Every pulse's width in order, ms (not in the JSON report: it can be long). */
  widthList: number[];
  /** Consecutive edges against 1000 / maxEdgeRate. */
  spacing: GapCheck;
  /** Off-times against minOffMs. */
  off: GapCheck;
  /** The longest on-stretch: pulses joined by gaps shorter than minOffMs. */
  longestOn: { ms: number; at: number; pulses: number } | null;
  /** On-stretches longer than maxOnMs (+ the on allowance). */
  overOn: number;
  /** The highest duty (0..1) over any window of dutyWindowMs, and where that window starts. */
  maxDuty: { duty: number; from: number } | null;
  violations: string[];
}

export function distribution(xs: readonly number[] | Float64Array | Float32Array): Distribution | null {
  if (xs.length === 0) return null;
  const s = Float64Array.from(xs).sort();
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n: s.length,
    min: r(s[0]!),
    median: r(s[Math.floor(s.length / 2)]!),
    p99: r(s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!),
    max: r(s[s.length - 1]!),
  };
}

/** A list of numbers in a typed array that grows by half: 8 (or 4) bytes a number, not an object each. */
class Numbers {
  private a: Float64Array | Float32Array;
  length = 0;
  constructor(private readonly wide = true) {
    this.a = wide ? new Float64Array(1024) : new Float32Array(1024);
  }
  push(x: number): void {
    if (this.length === this.a.length) {
      const b = this.wide ? new Float64Array(Math.ceil(this.a.length * 1.5)) : new Float32Array(Math.ceil(this.a.length * 1.5));
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = x;
  }
  /** The numbers as a typed array of their own length (a view, no copy). */
  view(): Float64Array | Float32Array {
    return this.a.subarray(0, this.length);
  }
  at(i: number): number {
    return this.a[i]!;
  }
  set(i: number, x: number): void {
    this.a[i] = x;
  }
}

/** A pin log line is short; a longer one is not a pin record and is not parsed. */
const MAX_LINE = 512;

/** One line of a pin log: its record, "blank", or undefined for a torn or foreign line. */
export function parsePinLine(line: string): PinRecord | "blank" | undefined {
  if (!line.trim()) return "blank";
  let r: unknown;
  try {
    r = line.length <= MAX_LINE ? JSON.parse(line) : undefined;
  } catch {
    return undefined;
  }
  const rec = r as PinRecord | undefined;
  return rec &&
    typeof rec === "object" &&
    typeof rec.t === "number" &&
    Number.isFinite(rec.t) &&
    Number.isInteger(rec.pin) &&
    (rec.value === null || typeof rec.value === "number")
    ? rec
    : undefined;
}

/** Reads a pin log (JSON lines). Torn or foreign lines (a writer mid-append) are counted, not parsed further. */
export function parsePinLog(text: string): { records: PinRecord[]; malformed: number } {
  const records: PinRecord[] = [];
  let malformed = 0;
  for (const line of text.split("\n")) {
    const r = parsePinLine(line);
    if (r === "blank") continue;
    if (r) records.push(r);
    else malformed++;
  }
  return { records, malformed };
}

/** Splits a pin log into one record list per pin, in time order. */
export function byPin(records: readonly PinRecord[]): Map<number, PinRecord[]> {
  const pins = new Map<number, PinRecord[]>();
  for (const r of records) {
    let list = pins.get(r.pin);
    if (!list) pins.set(r.pin, (list = []));
    list.push(r);
  }
  for (const list of pins.values()) list.sort((a, b) => a.t - b.t);
  return pins;
}

/** Audits one pin's records (in time order) against the limits. */
export function auditPin(pin: number, records: readonly PinRecord[], limits: AuditLimits, allowance: Allowance = DEFAULT_ALLOWANCE): PinAudit {
  const a = new PinAuditor(pin, limits, allowance);
  for (const r of records) a.add(r);
  return a.finish();
}

/**
 * The auditor of one pin, fed its records one at a time in time order: what a pin log of
 * hundreds of MiB needs (the CLI streams it). It keeps 24 bytes a pulse (rise, fall, level),
 * nothing per record; a record older than the one before it is counted and skipped.
 */
export class PinAuditor {
  private pwm = false;
  private level = 0;
  /** the pulse being high now: its rise and its highest level */
  private openRise: number | undefined;
  private openLevel = 0;
  /** Each pulse: its rise (epoch ms), its width (ms, 4 bytes: a microsecond over hours) and its highest level. */
  private readonly rises = new Numbers();
  private readonly widths = new Numbers(false);
  private readonly levels = new Numbers(false);
  private edges = 0;
  private lastEdge: number | undefined;
  private lastT: number | undefined;
  private readonly spacingMs: number;
  private readonly spacing: GapCheck = { gaps: 0, tolerated: 0, beyond: 0 };
  /** records older than the one before them, skipped */
  outOfOrder = 0;

  constructor(
    readonly pin: number,
    readonly limits: AuditLimits,
    readonly allowance: Allowance = DEFAULT_ALLOWANCE,
  ) {
    this.spacingMs = 1000 / limits.maxEdgeRate;
  }

  add(r: PinRecord): void {
    if (this.lastT !== undefined && r.t < this.lastT) {
      this.outOfOrder++;
      return;
    }
    this.lastT = r.t;
    const v = r.event === "released" || typeof r.value !== "number" ? 0 : r.value;
    if (r.event === "pwm" || (r.event === undefined && v !== 0 && v !== 1)) this.pwm = true;
    if (r.event !== undefined && r.event !== "released") {
      // Setup: the pin starts at this level; it is not an edge the shaper made.
      this.level = v;
      if (v > 0) ((this.openRise = r.t), (this.openLevel = v));
      return;
    }
    if (v === this.level) return;
    this.edges++;
    if (this.lastEdge !== undefined) gap(this.spacing, r.t - this.lastEdge, r.t, this.spacingMs, this.allowance);
    this.lastEdge = r.t;
    if (this.level === 0 && v > 0) ((this.openRise = r.t), (this.openLevel = v));
    else if (v === 0 && this.openRise !== undefined) {
      this.pulse(this.openRise, r.t, this.openLevel);
      this.openRise = undefined;
    } else if (this.openRise !== undefined) this.openLevel = Math.max(this.openLevel, v);
    this.level = v;
  }

  private pulse(rise: number, fall: number, level: number): void {
    this.rises.push(rise);
    this.widths.push(fall - rise);
    this.levels.push(level);
  }

  /** The audit of everything added; `withList` keeps every width (tests read them; a CLI need not). */
  finish(withList = true): PinAudit {
    const { limits, allowance, rises } = this;
    if (this.openRise !== undefined) this.pulse(this.openRise, Math.max(this.openRise, this.lastT ?? 0), this.openLevel); // still high at the end
    this.openRise = undefined;
    const n = rises.length;
    const widths = this.widths.view();
    const falls = { at: (i: number) => rises.at(i) + widths[i]! };
    // A level is a fraction of full on: 1 on a digital pin, duty / 100 on a PWM pin.
    const levels = this.levels;
    const fraction = this.pwm ? (i: number) => levels.at(i) / 100 : () => 1;
    const offs = new Float32Array(Math.max(0, n - 1));
    const off: GapCheck = { gaps: 0, tolerated: 0, beyond: 0 };
    for (let i = 1; i < n; i++) {
      offs[i - 1] = rises.at(i) - falls.at(i - 1);
      gap(off, offs[i - 1]!, rises.at(i), limits.minOffMs, allowance);
    }

    // On-stretches: pulses joined while the gap between them is under the minimum off-time.
    let longestOn: PinAudit["longestOn"] = null;
    let overOn = 0;
    for (let i = 0; i < n;) {
      let j = i;
      while (j + 1 < n && rises.at(j + 1) - falls.at(j) < limits.minOffMs) j++;
      const ms = falls.at(j) - rises.at(i);
      if (ms > limits.maxOnMs + allowance.onMs + EPS_MS) overOn++;
      if (!longestOn || ms > longestOn.ms) longestOn = { ms: round(ms), at: rises.at(i), pulses: j - i + 1 };
      i = j + 1;
    }

    const maxDuty = highestDuty(n, rises.at.bind(rises), falls.at, fraction, limits.dutyWindowMs);
    const violations: string[] = [];
    const gapText = (c: GapCheck, what: string, limit: number): void => {
      if (c.beyond > 0)
        violations.push(
          `${c.beyond} ${what} under ${fmt(limit)} ms by more than the ${fmt(allowance.jitterMs)} ms allowance (shortest ${fmt(c.shortest!.ms)} ms)`,
        );
      const allowedHere = Math.floor(allowance.share * c.gaps + 1e-9);
      if (c.tolerated > allowedHere)
        violations.push(
          `${c.tolerated} of ${c.gaps} ${what} under ${fmt(limit)} ms within the jitter allowance, more than the ${allowedHere} (${fmt(allowance.share * 100)}%) allowed`,
        );
    };
    gapText(this.spacing, "edge gaps", this.spacingMs);
    gapText(off, "off-times", limits.minOffMs);
    if (overOn > 0)
      violations.push(
        `${overOn} on-stretches over the maximum on-time of ${fmt(limits.maxOnMs)} ms (longest ${fmt(longestOn!.ms)} ms of ${longestOn!.pulses} pulses)`,
      );
    if (maxDuty && maxDuty.duty > limits.maxDuty + 1e-9)
      violations.push(
        `duty reached ${fmt(maxDuty.duty * 100)}% over a ${fmt(limits.dutyWindowMs)} ms window, over the maximum of ${fmt(limits.maxDuty * 100)}%`,
      );

    return {
      pin: this.pin,
      pwm: this.pwm,
      limits,
      edges: this.edges,
      pulses: n,
      widthMs: distribution(widths),
      widthList: withList ? Array.from(widths, round) : [],
      offMs: distribution(offs),
      spacing: { ...this.spacing },
      off,
      longestOn,
      overOn,
      maxDuty,
      violations,
    };
  }
}

/** One gap against its limit: counted, and tolerated when short by at most the jitter allowance. */
function gap(c: GapCheck, g: number, at: number, limit: number, allowance: Allowance): void {
  c.gaps++;
  if (!c.shortest || g < c.shortest.ms) c.shortest = { ms: round(g), at };
  const short = limit - g;
  if (short <= EPS_MS) return;
  if (short <= allowance.jitterMs + EPS_MS) c.tolerated++;
  else c.beyond++;
}

/**
 * The highest level-weighted on-time over any window of length w, as a share of w. The
 * maximum is reached by a window that starts at a rising edge or ends at a falling edge,
 * so only those are tried, each with two binary searches over prefix sums.
 */
function highestDuty(
  n: number,
  rise: (i: number) => number,
  fall: (i: number) => number,
  fraction: (i: number) => number,
  w: number,
): { duty: number; from: number } | null {
  if (n === 0) return null;
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + (fall(i) - rise(i)) * fraction(i);
  // On-time in [a, b]: whole pulses inside plus the parts of the two at the ends.
  const onTime = (a: number, b: number): number => {
    const first = lowerBound(n, (i) => fall(i) > a); // first pulse ending after a
    const last = lowerBound(n, (i) => rise(i) >= b) - 1; // last pulse starting before b
    if (last < first) return 0;
    let on = prefix[last + 1]! - prefix[first]!;
    if (rise(first) < a) on -= (a - rise(first)) * fraction(first);
    if (fall(last) > b) on -= (fall(last) - b) * fraction(last);
    return on;
  };
  let best = { duty: 0, from: rise(0) };
  for (let i = 0; i < n; i++) {
    for (const from of [rise(i), fall(i) - w]) {
      const d = onTime(from, from + w) / w;
      if (d > best.duty) best = { duty: d, from };
    }
  }
  return { duty: Math.round(best.duty * 1e6) / 1e6, from: best.from };
}

/** The first index in [0, n) where pred holds (pred is false then true), or n. */
function lowerBound(n: number, pred: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function fmt(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

export interface PinLimits {
  pin: number;
  limits: AuditLimits;
  /** The shapers wired to this pin (their names or ids); with several, the strictest limit of each kind applies. */
  shapers: string[];
}

/**
 * The limits of each `rpi-gpio out` or `pulse-out` pin from a flow file: those of the pulse-shapers wired
 * to it (first output). A shaper whose settings do not parse is named in `problems`.
 */
export function limitsFromFlow(flow: unknown): { pins: Map<number, PinLimits>; problems: string[] } {
  const pins = new Map<number, PinLimits>();
  const problems: string[] = [];
  if (!Array.isArray(flow)) return { pins, problems: ["the flow file must hold a JSON array of nodes"] };
  const nodes = flow.filter((n): n is Record<string, unknown> => typeof n === "object" && n !== null && !Array.isArray(n));
  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  for (const s of nodes) {
    if (s.type !== "pulse-shaper" || s.d === true) continue;
    const label = typeof s.name === "string" && s.name.trim() ? s.name.trim() : `pulse-shaper ${String(s.id)}`;
    const parsed = parseShaperSettings(s);
    if (!parsed.ok) {
      problems.push(`${label}: ${parsed.errors.join("; ")}`);
      continue;
    }
    const limits: AuditLimits = parsed.settings.limits;
    const wires = Array.isArray(s.wires) && Array.isArray(s.wires[0]) ? (s.wires[0] as unknown[]) : [];
    for (const id of wires) {
      const out = byId.get(String(id));
      if (!out || (out.type !== "rpi-gpio out" && out.type !== "pulse-out") || out.d === true) continue;
      const pin = bcmPinOf(out);
      if (pin === undefined) continue;
      const have = pins.get(pin);
      if (!have) pins.set(pin, { pin, limits: pick(limits), shapers: [label] });
      else {
        const a = have.limits;
        const b = limits;
        have.limits = {
          minOffMs: Math.max(a.minOffMs, b.minOffMs),
          maxEdgeRate: Math.min(a.maxEdgeRate, b.maxEdgeRate),
          maxOnMs: Math.min(a.maxOnMs, b.maxOnMs),
          maxDuty: Math.min(a.maxDuty, b.maxDuty),
          dutyWindowMs: a.maxDuty <= b.maxDuty ? a.dutyWindowMs : b.dutyWindowMs,
        };
        have.shapers.push(label);
      }
    }
  }
  return { pins, problems };
}

/** A pin audit as the lines a person reads. */
export function formatAudit(a: Omit<PinAudit, "widthList">): string[] {
  const d = (x: Distribution | null) => (x ? `min ${fmt(x.min)} / median ${fmt(x.median)} / p99 ${fmt(x.p99)} / max ${fmt(x.max)} ms` : "-");
  const g = (c: GapCheck) =>
    `${c.tolerated + c.beyond} of ${c.gaps} short (${c.tolerated} within the allowance, ${c.beyond} beyond)${c.shortest ? `, shortest ${fmt(c.shortest.ms)} ms` : ""}`;
  const l = a.limits;
  return [
    `pin ${a.pin}${a.pwm ? " (PWM)" : ""}: ${a.pulses} pulses, ${a.edges} edges; limits: min off ${fmt(l.minOffMs)} ms, edges >= ${fmt(1000 / l.maxEdgeRate)} ms apart, max on ${fmt(l.maxOnMs)} ms, max duty ${fmt(l.maxDuty * 100)}% over ${fmt(l.dutyWindowMs)} ms`,
    `  width     ${d(a.widthMs)}`,
    `  off-time  ${d(a.offMs)}`,
    `  edge gaps under ${fmt(1000 / l.maxEdgeRate)} ms: ${g(a.spacing)}`,
    `  off-times under ${fmt(l.minOffMs)} ms: ${g(a.off)}`,
    `  longest on-stretch ${a.longestOn ? `${fmt(a.longestOn.ms)} ms (${a.longestOn.pulses} pulse${a.longestOn.pulses === 1 ? "" : "s"})` : "-"}; highest duty ${a.maxDuty ? `${fmt(a.maxDuty.duty * 100)}%` : "-"}`,
    a.violations.length ? a.violations.map((v) => `  VIOLATION: ${v}`).join("\n") : "  ok",
  ];
}

function pick(l: AuditLimits): AuditLimits {
  return { minOffMs: l.minOffMs, maxEdgeRate: l.maxEdgeRate, maxOnMs: l.maxOnMs, maxDuty: l.maxDuty, dutyWindowMs: l.dutyWindowMs };
}
