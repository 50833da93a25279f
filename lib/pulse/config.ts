// Reads the pulse-shaper's panel settings into the core's types, with every problem named
// in the panel's own words (the editor marks the same fields red before deploy).

import { checkNumber, type NumberRule } from "../numbers";
import type { Coil } from "./measure";
import { DEFAULT_LIMITS, enforced, type Limits } from "./output";
import { DEFAULT_WIDTH_MS, SHAPE_KINDS, type ShapeConfig, type ShapeKind, type ShapeRow } from "./shapes";

export type LatePolicy = "fire" | "drop";

export interface ShaperSettings {
  shape: ShapeConfig;
  limits: Limits;
  late: LatePolicy;
  /** Output "pulses": whole pulses ({on_ms}) for pulse-out, which times each pulse's fall itself. Digital shapes. */
  wholePulses: boolean;
  coil?: Coil;
  /** 0: only on request */
  measureEveryMs: number;
}

/** The pulse-shaper panel's numbers (lib/ranges.ts gathers every node's): a row's width is checked as `width`. */
export const SHAPER_RULES = {
  width: { label: "Pulse width", min: 0, max: 60_000, exclusiveMin: true, default: DEFAULT_WIDTH_MS, unit: "ms" },
  maxOn: { label: "Maximum on-time", min: 0, max: 60_000, exclusiveMin: true, default: DEFAULT_LIMITS.maxOnMs, unit: "ms" },
  maxDuty: { label: "Maximum duty", min: 0, max: 100, exclusiveMin: true, default: DEFAULT_LIMITS.maxDuty * 100, unit: "%" },
  dutyWindow: { label: "Duty window", min: 10, max: 3_600_000, default: DEFAULT_LIMITS.dutyWindowMs, unit: "ms" },
  minOff: { label: "Minimum off-time", min: 0, max: 60_000, default: DEFAULT_LIMITS.minOffMs, unit: "ms" },
  maxRate: { label: "Maximum edge rate", min: 0, max: 10_000, exclusiveMin: true, default: DEFAULT_LIMITS.maxEdgeRate, unit: "edges/s" },
  pinGuard: { label: "Pin guard", min: 0, max: 20, default: DEFAULT_LIMITS.pinGuardMs, unit: "ms" },
  volts: { label: "Coil supply voltage", min: 0, max: 1000, exclusiveMin: true, default: 0, unit: "V" },
  ohms: { label: "Coil resistance", min: 0, max: 1e6, exclusiveMin: true, default: 0, unit: "ohm" },
  measureEvery: { label: "Report every", min: 0, max: 3600, default: 1, unit: "s" },
  rowCount: { label: "count", min: 1, max: 10_000, integer: true, default: 1 },
  rowFrequency: { label: "frequency", min: 0, max: 1e7, exclusiveMin: true, default: 100, unit: "Hz" },
  rowDuty: { label: "duty", min: 0, max: 1, default: 0.5 },
} satisfies Record<string, NumberRule>;
const rules = SHAPER_RULES;

export interface RawRow {
  event?: unknown;
  shape?: unknown;
  width?: unknown;
  count?: unknown;
  frequency?: unknown;
  duty?: unknown;
}

function optional(raw: unknown, rule: NumberRule, errors: string[]): number | undefined {
  if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) return undefined;
  const r = checkNumber(raw, rule);
  if (!r.ok) {
    errors.push(r.error);
    return undefined;
  }
  return r.value;
}

export function parseShaperSettings(def: Record<string, unknown>): { ok: true; settings: ShaperSettings } | { ok: false; errors: string[] } {
  const r = readShaperSettings(def);
  const errors = [...r.errors, ...r.overMaxOn];
  return errors.length || !r.settings ? { ok: false, errors } : { ok: true, settings: r.settings };
}

/**
 * The settings as the output would take them, for the panel's preview: a width over the
 * maximum on-time (which the node refuses, in `overMaxOn`) is kept, so that the preview can
 * show how the on-time limit would cut it. No settings when anything else is wrong.
 */
export function readShaperSettings(def: Record<string, unknown>): { settings?: ShaperSettings; errors: string[]; overMaxOn: string[] } {
  const errors: string[] = [];
  const overMaxOn: string[] = [];
  const num = (key: keyof typeof rules): number => {
    const r = checkNumber(def[key], rules[key]);
    if (!r.ok) {
      errors.push(r.error);
      return rules[key].default;
    }
    return r.value;
  };
  const widthMs = num("width");
  const maxOnMs = num("maxOn");
  const limits: Limits = {
    maxOnMs,
    maxDuty: num("maxDuty") / 100,
    dutyWindowMs: num("dutyWindow"),
    minOffMs: num("minOff"),
    maxEdgeRate: num("maxRate"),
    maxQueue: DEFAULT_LIMITS.maxQueue,
    pinGuardMs: num("pinGuard"),
  };
  if (widthMs > maxOnMs) overMaxOn.push(`Pulse width ${widthMs} ms is over the maximum on-time of ${maxOnMs} ms`);

  const rows: ShapeRow[] = [];
  const rawRows = Array.isArray(def.rows) ? (def.rows as RawRow[]) : [];
  rawRows.forEach((r, i) => {
    const where = `Shape row ${i + 1}`;
    const event = typeof r.event === "string" ? r.event.trim() : "";
    if (!event) errors.push(`${where}: the event name is empty`);
    const shape = r.shape as ShapeKind;
    if (!SHAPE_KINDS.includes(shape)) errors.push(`${where} (${event}): shape must be one of ${SHAPE_KINDS.join(", ")}, got ${JSON.stringify(r.shape)}`);
    const row: ShapeRow = { event, shape };
    const w = optional(r.width, { ...rules.width, label: `${where} (${event}): width` }, errors);
    if (w !== undefined && w > maxOnMs) overMaxOn.push(`${where} (${event}): width ${w} ms is over the maximum on-time of ${maxOnMs} ms`);
    const count = optional(r.count, { ...rules.rowCount, label: `${where} (${event}): count` }, errors);
    const frequency = optional(r.frequency, { ...rules.rowFrequency, label: `${where} (${event}): frequency` }, errors);
    const duty = optional(r.duty, { ...rules.rowDuty, label: `${where} (${event}): duty` }, errors);
    if (w !== undefined) row.width = w;
    if (count !== undefined) row.count = count;
    if (frequency !== undefined) row.frequency = frequency;
    if (duty !== undefined) row.duty = duty;
    rows.push(row);
  });

  const output = def.output === "pwm" ? "pwm" : "digital";
  const unknown = def.unknown === "ignore" ? "ignore" : "pulse";
  const late: LatePolicy = def.late === "drop" ? "drop" : "fire";
  const volts = optional(def.volts, rules.volts, errors);
  const ohms = optional(def.ohms, rules.ohms, errors);
  const measureEveryMs = num("measureEvery") * 1000;
  if (errors.length) return { errors, overMaxOn };
  const settings: ShaperSettings = {
    shape: { widthMs, output, unknown, rows, edgeSpacingMs: enforced(limits).spacing },
    limits,
    late,
    wholePulses: def.output === "pulses",
    measureEveryMs,
  };
  if (volts !== undefined && ohms !== undefined) settings.coil = { volts, ohms };
  return { settings, errors, overMaxOn };
}
