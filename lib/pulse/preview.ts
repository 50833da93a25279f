// What the pin will get for one event of each shape, for the pulse-shaper's panel: the
// runtime's own Shaper (shapes, limits, output), run on a virtual clock for one event. The
// panel draws it; nothing here is computed a second way. Beside the edges it keeps the
// shape's plan before the limits, and says in words what each limit did to it.

import * as path from "node:path";
import { VirtualClock } from "../clock";
import { loadContainerFile } from "../container/format";
import { bundledContainers } from "../container/source";
import { bundledContainersDir } from "../paths";
import { readShaperSettings, type ShaperSettings } from "./config";
import { enforced } from "./output";
import { builtInRow, planEvent, rowFor, type Segment, type ShapeKind, type ShapeRow } from "./shapes";
import { fmtHz, Shaper } from "./shaper";

/** The events that have a built-in shape, in the order the panel lists them. */
export const BUILT_IN_EVENTS = ["proton_collision", "atom_spin_flip", "waveform_emit", "time_dilation", "fusion_tick"] as const;

/** The built-in rows as the panel lists them; a width of null is the node's pulse width. */
export function builtInRows(): Array<Omit<ShapeRow, "width"> & { width: number | null }> {
  return BUILT_IN_EVENTS.map((event) => {
    const r = builtInRow(event, Number.NaN)!;
    return { ...r, width: r.width === undefined || Number.isNaN(r.width) ? null : r.width };
  });
}

/** The payload fields a shape reads, which the panel's sample stands in for. */
export const SAMPLE_KEYS = ["frequency_hz", "amplitude", "factor_fast", "factor_slow"] as const;
export type Sample = Partial<Record<(typeof SAMPLE_KEYS)[number], number>>;

/** Edges drawn at most per row (a 10-pulse burst has 20); a longer row is drawn that far and says so. */
export const MAX_PREVIEW_EDGES = 1000;
/**
 * Timers the virtual clock runs at most per row (pulses a limit skips take a timer and no edge):
 * about 10 ms of work, so that a row never holds up the runtime's pulses for long.
 */
export const MAX_ROW_TIMERS = 5000;
/** Rows previewed at most; a panel with more shows the first ones drawn. */
export const MAX_PREVIEW_ROWS = 100;

export interface PreviewEdge {
  /** ms after the event. */
  t: number;
  /** What is sent to the pin's node: 1/0, or the duty 0-100 on a PWM output. */
  level: number;
}

export interface RowPreview {
  /** The event name; "" for the row of other events. */
  event: string;
  shape: ShapeKind;
  /** The row that applies, blanks filled (what the panel shows as placeholders). */
  row: { width?: number; count?: number; frequency?: number; duty?: number };
  /** What the shape asks for before the output's limits, ms after the event. */
  planned: Segment[];
  /** What the pin gets: every edge after max on-time, min off-time, max edge rate, pin guard and duty. */
  edges: PreviewEdge[];
  /** Simulated only as far as MAX_PREVIEW_EDGES edges or MAX_ROW_TIMERS timers: the rest is not drawn. */
  truncated: boolean;
  pulses: number;
  /** When the last edge falls, ms after the event. */
  endMs: number;
  /** "10 × 8 ms on / 2 ms off", or "ignored", or the error. */
  summary: string;
  /** What the limits did, in words; empty when the pin gets the plan as it is. */
  limited: string[];
  /** The sample payload does not fit the shape (the event would be rejected). */
  error?: string;
}

const EPS = 1e-6;
const ms = (v: number): string => `${Math.round(v * 1000) / 1000} ms`;

/** One event through the runtime's Shaper on a virtual clock: the edges the pin's node would be handed. */
export function previewEvent(settings: ShaperSettings, event: string, payload: Sample): RowPreview {
  const shape = settings.shape;
  const row = rowFor(event, shape);
  const base: Omit<RowPreview, "summary"> = {
    event,
    shape: row.shape,
    row: { width: row.width ?? shape.widthMs, count: row.count, frequency: row.frequency, duty: row.duty },
    planned: [],
    edges: [],
    truncated: false,
    pulses: 0,
    endMs: 0,
    limited: [],
  };
  const plan = planEvent(event, payload, shape);
  if (plan.kind === "ignored") return { ...base, summary: "ignored: no pulse" };
  if (plan.kind === "rejected") return { ...base, summary: plan.error, error: plan.error };

  const clock = new VirtualClock(0);
  const edges: PreviewEdge[] = [];
  const shaper = new Shaper(clock, settings, {
    // A whole pulse (pulse-out) carries its width on the rise; its fall is the driver's, at `planned`.
    edge: (e) => edges.push({ t: e.driven ? e.planned : e.sent, level: e.level }),
    changed: () => undefined,
    failed: () => undefined,
  });
  shaper.take(event, payload, undefined);
  for (let timers = 0; clock.pending() > 0 && edges.length < MAX_PREVIEW_EDGES && timers < MAX_ROW_TIMERS;) timers += clock.runAll(64);
  const truncated = clock.pending() > 0;
  shaper.close();
  // Drawn as far as it was simulated, ending low: a pulse left open there is not drawn (close() just ended it).
  const drawn = truncated ? edges.slice(0, MAX_PREVIEW_EDGES) : edges;
  if (truncated && drawn.length && drawn.at(-1)!.level !== 0) drawn.pop();

  const pulses = pairs(drawn);
  const limited = whatLimitsDid(settings, plan.segments, pulses, shaper.output.counters.skipped, plan.rateClamp);
  const count = truncated ? pulses.length : shaper.output.counters.pulses;
  const summary = summarise(pulses, count, settings.shape.output === "pwm");
  return {
    ...base,
    // The plan as far as it is drawn (a 10,000-pulse burst's plan would be most of the answer).
    planned: truncated
      ? plan.segments.filter((seg) => seg.start <= (drawn.at(-1)?.t ?? 0)).slice(0, MAX_PREVIEW_EDGES)
      : plan.segments.slice(0, MAX_PREVIEW_EDGES),
    edges: drawn,
    truncated,
    pulses: count,
    endMs: drawn.at(-1)?.t ?? 0,
    summary: truncated ? `the first ${plural(count, "pulse")}: ${summary} (the rest not drawn)` : summary,
    limited,
  };
}

interface Fired {
  rise: number;
  fall: number;
  level: number;
}

function pairs(edges: PreviewEdge[]): Fired[] {
  const out: Fired[] = [];
  let open: PreviewEdge | undefined;
  for (const e of edges) {
    if (e.level > 0 && !open) open = e;
    else if (e.level === 0 && open) {
      out.push({ rise: open.t, fall: e.t, level: open.level });
      open = undefined;
    }
  }
  return out;
}

function summarise(p: Fired[], count: number, pwm: boolean): string {
  if (count === 0) return "no pulse";
  const widths = p.map((x) => x.fall - x.rise);
  const offs = p.slice(1).map((x, i) => x.rise - p[i]!.fall);
  const range = (v: number[]): string => {
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    return hi - lo < 1e-3 ? ms(lo) : `${Math.round(lo * 1000) / 1000}-${ms(hi)}`;
  };
  const duty = pwm ? ` at ${[...new Set(p.map((x) => x.level))].map((l) => `${l}%`).join("/")} duty` : "";
  if (count === 1) return `1 pulse, ${range(widths)}${duty}`;
  const head = `${count} × ${range(widths)} on / ${range(offs)} off${duty}`;
  const evenly = Math.max(...offs) - Math.min(...offs) < 1e-3 && Math.max(...widths) - Math.min(...widths) < 1e-3;
  return evenly ? `${head} (${fmtHz(1000 / (widths[0]! + offs[0]!))})` : head;
}

/**
 * Compares the plan with what fired and names the limit behind each difference, with the
 * numbers the output enforced (the limit plus the pin guard).
 */
function whatLimitsDid(
  s: ShaperSettings,
  planned: Segment[],
  fired: Fired[],
  skipped: number,
  rateClamp: { intendedHz: number; deliveredHz: number; asDuty: boolean } | undefined,
): string[] {
  const l = s.limits;
  const e = enforced(l);
  const guard = l.pinGuardMs > 0 ? ` + pin guard ${ms(l.pinGuardMs)}` : "";
  const spacingWhy = `max edge rate ${l.maxEdgeRate}/s${guard}`;
  const gapWhy = l.minOffMs + l.pinGuardMs >= e.spacing - EPS ? `min off-time ${ms(l.minOffMs)}${guard}` : spacingWhy;
  const out: string[] = [];
  if (rateClamp) {
    const level = planned[0]?.level ?? 0;
    out.push(
      rateClamp.asDuty
        ? `${fmtHz(rateClamp.intendedHz)} held as ${level}% duty: faster than ${spacingWhy} allows edges`
        : `${fmtHz(rateClamp.intendedHz)} slowed to ${fmtHz(rateClamp.deliveredHz)} by ${spacingWhy}`,
    );
  }
  let cutOn = 0;
  let cutDuty = 0;
  let widened = 0;
  let moved = 0;
  let movedBy = 0;
  let merged = 0;
  const used = new Set<number>();
  let k = 0;
  for (const seg of planned) {
    // The fired pulse this planned one became: on when it starts (merged into one before), or
    // rising within it (a limit moved its rise; it keeps its end). None: it was skipped.
    while (k < fired.length && fired[k]!.fall < seg.start - EPS) k++;
    const p = fired[k];
    if (!p || p.rise >= Math.max(seg.end, seg.start + EPS) - EPS) continue;
    if (p.rise < seg.start - EPS || used.has(k)) {
      merged++;
      continue;
    }
    used.add(k);
    const want = seg.end - seg.start;
    const got = p.fall - p.rise;
    if (p.rise > seg.start + EPS) {
      moved++;
      movedBy = Math.max(movedBy, p.rise - seg.start);
    }
    if (want > e.maxOn + EPS && Math.abs(got - e.maxOn) < 1e-3) cutOn++;
    else if (want < e.spacing - EPS && got > want + EPS) widened++;
    else if (p.fall < Math.min(seg.end, p.rise + e.maxOn) - 1e-3 && p.rise <= seg.start + EPS) cutDuty++;
  }
  if (cutOn) out.push(`${plural(cutOn, "pulse")} cut to ${ms(e.maxOn)} by max on-time ${ms(l.maxOnMs)}${guard ? ` - pin guard ${ms(l.pinGuardMs)}` : ""}`);
  if (widened) out.push(`${plural(widened, "pulse")} widened to ${ms(e.spacing)}, the narrowest ${spacingWhy} allows`);
  if (moved) out.push(`${plural(moved, "pulse")} started up to ${ms(movedBy)} later (keeping their end) for ${gapWhy}`);
  if (cutDuty) out.push(`${plural(cutDuty, "pulse")} cut by max duty ${l.maxDuty * 100}% over ${ms(l.dutyWindowMs)}`);
  if (merged) out.push(`${plural(merged, "pulse")} merged with the one before (they overlap)`);
  if (skipped) {
    const budgetSpent = fired.reduce((sum, p) => sum + p.fall - p.rise, 0) >= e.dutyBudget - e.spacing;
    out.push(
      budgetSpent
        ? `${plural(skipped, "pulse")} skipped: max duty ${l.maxDuty * 100}% over ${ms(l.dutyWindowMs)} is spent`
        : `${plural(skipped, "pulse")} skipped: under ${ms(e.spacing)} of each was left after ${gapWhy}`,
    );
  }
  return out;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export type PanelRow = RowPreview & { builtIn: boolean; own: boolean };

/** The rows the panel shows, one at a time: each built-in (or the node's own row for it), the node's other rows, and other events. */
export function* previewRows(settings: ShaperSettings, sample: Sample): Generator<PanelRow> {
  const own = new Set(settings.shape.rows.map((r) => r.event));
  const names = [...new Set([...BUILT_IN_EVENTS, ...settings.shape.rows.map((r) => r.event)])].slice(0, MAX_PREVIEW_ROWS);
  for (const event of names) yield { ...previewEvent(settings, event, sample), builtIn: builtInRow(event, 0) !== undefined, own: own.has(event) };
  // Other events: a name no row and no built-in has.
  let other = "other_event";
  while (own.has(other)) other += "_";
  yield { ...previewEvent(settings, other, sample), event: "", builtIn: true, own: false };
}

export interface ShaperPreview {
  /** Settings the node refuses outright: nothing is drawn. */
  errors: string[];
  /** Widths over the maximum on-time: drawn as the limit would cut them, but the node refuses them until fixed. */
  refused: string[];
  rows: PanelRow[];
}

/**
 * The panel's whole preview from its fields as they are now (saved or not) and the sample
 * payload. `pause` is awaited between rows: the runtime's pulses go on meanwhile.
 */
export async function previewShaper(
  def: Record<string, unknown>,
  sample: unknown,
  defaults: Sample = {},
  pause: () => Promise<void> = async () => undefined,
): Promise<ShaperPreview> {
  const r = readShaperSettings(def);
  if (!r.settings) return { errors: r.errors, refused: r.overMaxOn, rows: [] };
  const rows: PanelRow[] = [];
  for (const row of previewRows(r.settings, samplePayload(sample, defaults))) {
    rows.push(row);
    await pause();
  }
  return { errors: [], refused: r.overMaxOn, rows };
}

/**
 * The panel's sample fields as an event's payload: a blank field takes `defaults` (the bundled
 * containers' value), else the shape's own default; text that is a number is that number. Anything
 * else is passed on as it is, for the shape to refuse with its own words.
 */
export function samplePayload(sample: unknown, defaults: Sample = {}): Sample {
  const fields = typeof sample === "object" && sample !== null ? (sample as Record<string, unknown>) : {};
  const payload: Record<string, unknown> = {};
  for (const key of SAMPLE_KEYS) {
    const v = fields[key];
    if (v === undefined || v === null || v === "") {
      if (defaults[key] !== undefined) payload[key] = defaults[key];
      continue;
    }
    payload[key] = typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return payload as Sample;
}

/** The first value of each sample key in the given containers' glyph payloads (the bundled ones, for the panel's defaults). */
export function sampleFrom(payloads: Iterable<unknown>): Sample {
  const out: Sample = {};
  for (const p of payloads) {
    if (typeof p !== "object" || p === null) continue;
    for (const key of SAMPLE_KEYS) {
      const v = (p as Record<string, unknown>)[key];
      if (out[key] === undefined && typeof v === "number" && Number.isFinite(v)) out[key] = v;
    }
  }
  return out;
}

/**
 * The panel's sample defaults: the first value of each payload field in the bundled containers,
 * the demo's (synthetic_star_core) first. Read once per call; a container that does not load is passed over.
 */
export function bundledSample(): Sample {
  const names = bundledContainers().sort((a, b) => Number(b === DEMO_CONTAINER) - Number(a === DEMO_CONTAINER));
  const payloads: unknown[] = [];
  for (const name of names) {
    const r = loadContainerFile(path.join(bundledContainersDir, name));
    if (r.ok) for (const g of r.container.glyphs) payloads.push(g.payload);
  }
  return sampleFrom(payloads);
}
const DEMO_CONTAINER = "synthetic_star_core.dc";
