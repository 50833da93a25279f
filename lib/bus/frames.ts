// The bus's wire format (protocol 2; docs/protocol.md): JSON text frames, checked against
// schemas/bus-frame.schema.json. An event frame is a superset of the seed's
// {"event", "payload"}, so a client that never says hello (the seed's Python bridge) gets
// exactly what it expects; listeners of this package say hello and may get batches.

import type { ErrorObject, ValidateFunction } from "ajv";
import { randomBytes } from "node:crypto";
import { MAX_JSON_DEPTH, withinDepth } from "../limits";
import { jsonPath, loadSchema, validatorOf } from "../schema";
import { toFrameFields, type Sqi } from "../sqi";

/** 2: reports carry their counters in named groups (REPORT_GROUPS). A master of protocol 1 gets the flat form. */
export const PROTOCOL = 2;

/**
 * A report's counters in named groups, each with its own bound (schemas/bus-frame.schema.json
 * says the same): what a listener received and its link in `counters`, what its shapers fired
 * in `fired`, its power sensor in `measured` (fired_* and measured_* in the master's report
 * messages and in a protocol 1 listener's flat counters: flatCounters, knownReport). A group
 * that grows does not crowd out the others; a test keeps each group's keys under 80 % of it.
 */
export const REPORT_GROUPS = { counters: 50, fired: 40, measured: 20 } as const;
export type ReportGroup = keyof typeof REPORT_GROUPS;

export interface EventFrame {
  event: string;
  payload?: Record<string, unknown>;
  seq?: number;
  at?: number;
  container?: string;
  tick?: number;
  loop?: number;
  count?: number;
  window_ms?: number;
  /** the master's clock when the frame left: a free clock-sync sample for the listener */
  sent?: number;
  /** the master's run (see newRunId) */
  run?: string;
}

export type DownstreamFrame =
  | EventFrame
  | { type: "batch"; sent?: number; run?: string; events: EventFrame[] }
  | { type: "welcome"; protocol: number; master?: string; run?: string }
  | { type: "pong"; id: number; t0: number; t1: number; t2: number; report_ms?: number; ping_ms?: number };

export type UpstreamFrame =
  | { type: "hello"; name: string; protocol: number; instance?: string }
  | { type: "ping"; id: number; t0: number }
  | {
      type: "report";
      name: string;
      counters: Record<string, number>;
      fired?: Record<string, number>;
      measured?: Record<string, number>;
      offset_ms?: number;
      rtt_ms?: number;
      instance?: string;
      run?: string;
    };

export type ReportFrame = Extract<UpstreamFrame, { type: "report" }>;

/**
 * A new identity for a master's run, or a listener's life: each start gets its own, so that a
 * listener knows a restarted master's seqs begin again (whatever seq it reconnects at), and a
 * master knows a listener that restarted.
 */
export function newRunId(): string {
  return randomBytes(8).toString("hex");
}

/** `tooLarge`: a report refused only for the size of a counter group: honest, counted, never held against its listener. */
export type Decoded<T> = { ok: true; frame: T } | { ok: false; error: string; tooLarge?: true };

let validators: { up: ValidateFunction; down: ValidateFunction } | undefined;
/**
 * Compiles the frame schema now (about 0.1-0.5 s) rather than on the first frame: a bus node
 * calls it when it is deployed, so that the first frame cannot stall a pulse in flight.
 */
export function prepareFrames(): void {
  compiled();
}

function compiled(): { up: ValidateFunction; down: ValidateFunction } {
  if (!validators) {
    const loaded = loadSchema("bus-frame.schema.json", { allErrors: false, verbose: true, strict: false });
    validators = { up: validatorOf(loaded, "#/definitions/upstream"), down: validatorOf(loaded, "#/definitions/downstream") };
  }
  return validators;
}

function firstProblem(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return "is not a valid frame";
  const rule = (e.parentSchema as { errorMessage?: string } | undefined)?.errorMessage ?? e.message ?? "is not valid";
  if (e.keyword === "required") return `${jsonPath(e.instancePath, (e.params as { missingProperty: string }).missingProperty)}: is missing`;
  return `${jsonPath(e.instancePath)}: ${rule}`;
}

function decode<T>(text: string, validate: ValidateFunction): Decoded<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: "not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "(root): must be a JSON object" };
  // Before the schema and before any node clones it (cloneMessage recurses): a payload 20,000 levels deep overflows the stack.
  if (!withinDepth(value, MAX_JSON_DEPTH)) return { ok: false, error: `(root): is nested more than ${MAX_JSON_DEPTH} levels deep` };
  if (!validate(value)) {
    const big = oversizeGroup(value as Record<string, unknown>);
    if (!big) return { ok: false, error: firstProblem(validate.errors) };
    // Too large, and otherwise a good report (checked with every group cut to its bound): honest.
    // Anything else wrong with it is said as for any frame.
    const cut = cutGroups(value as Record<string, unknown>);
    return validate(cut) ? { ok: false, error: big, tooLarge: true } : { ok: false, error: firstProblem(validate.errors) };
  }
  return { ok: true, frame: value as T };
}

/** Why a report is too large (a group over its bound), or undefined. */
function oversizeGroup(f: Record<string, unknown>): string | undefined {
  if (f.type !== "report") return undefined;
  for (const [group, max] of Object.entries(REPORT_GROUPS)) {
    const g = f[group];
    const n = typeof g === "object" && g !== null ? Object.keys(g).length : 0;
    if (n > max) return `${group}: ${n} counters, over the ${max} a report's ${group} carries (a report too large: counted, the listener stays)`;
  }
  return undefined;
}

/** A report with each group cut to its bound (the first keys kept). */
function cutGroups(f: Record<string, unknown>): Record<string, unknown> {
  const out = { ...f };
  for (const [group, max] of Object.entries(REPORT_GROUPS)) {
    const g = f[group];
    if (typeof g === "object" && g !== null && !Array.isArray(g)) out[group] = Object.fromEntries(Object.entries(g).slice(0, max));
  }
  return out;
}

/**
 * A listener's report groups as it sends them to a master of `protocol`: each group cut to its
 * bound, and what was cut counted in `dropped`; a master of protocol 1 takes only flat counters
 * (fired_*, measured_* among them), at most 50.
 */
export function reportGroups(report: ReportGroups, protocol: number): { groups: Pick<ReportFrame, "counters" | "fired" | "measured">; dropped: number } {
  let dropped = 0;
  const bounded = (from: Record<string, number> | undefined, max: number): Record<string, number> => {
    const into: Record<string, number> = {};
    for (const [k, v] of Object.entries(from ?? {})) {
      if (Object.keys(into).length < max) into[k] = v;
      else dropped++;
    }
    return into;
  };
  if (protocol < 2) return { groups: { counters: bounded(flatCounters(report), REPORT_GROUPS.counters) }, dropped };
  const counters = bounded(report.counters, REPORT_GROUPS.counters);
  const fired = bounded(report.fired, REPORT_GROUPS.fired);
  const measured = bounded(report.measured, REPORT_GROUPS.measured);
  return {
    groups: { counters, ...(Object.keys(fired).length ? { fired } : {}), ...(Object.keys(measured).length ? { measured } : {}) },
    dropped,
  };
}

/**
 * A ping exactly as a listener of this package writes it: read without JSON.parse or the
 * schema. At 1,000 listeners the master takes hundreds of pings a second; anything else
 * (another key order, spaces, a bigger id) goes the full way and is checked as before.
 */
const PING = /^\{"type":"ping","id":(\d{1,15}),"t0":(\d{1,16}(?:\.\d{1,20})?)\}$/;

/** What the master accepts from a listener: hello, ping, report. */
export function decodeUpstream(text: string): Decoded<UpstreamFrame> {
  const ping = text.length < 80 ? PING.exec(text) : null;
  if (ping) return { ok: true, frame: { type: "ping", id: Number(ping[1]), t0: Number(ping[2]) } };
  return decode<UpstreamFrame>(text, compiled().up);
}

/** What a listener accepts from the master. */
export function decodeDownstream(text: string): Decoded<DownstreamFrame> {
  return decode<DownstreamFrame>(text, compiled().down);
}

/** The event frame for a dc-container message: {event, payload} plus seq, at, container, tick, loop (and counts). */
export function eventFrame(topic: string, payload: unknown, sqi: Sqi | undefined, seq: number): EventFrame {
  const f: EventFrame = {
    event: topic,
    payload: typeof payload === "object" && payload !== null && !Array.isArray(payload) ? (payload as Record<string, unknown>) : {},
    seq,
  };
  return Object.assign(f, toFrameFields(sqi));
}

/** Events in one batch frame at most; a listener refuses a bigger batch (schemas/bus-frame.schema.json says the same). */
export const MAX_EVENTS_PER_FRAME = 2000;

/** Events serialised once, to be shared by every listener: each as JSON text and its size. */
export interface Serialised {
  texts: string[];
  bytes: number[];
  /** events too big for any frame (the caller counts them) */
  dropped: number;
}

/** Each event as JSON text, once; an event too big for any frame is dropped (counted by the caller). */
export function serialise(events: EventFrame[], maxPayload: number): Serialised {
  const texts: string[] = [];
  const bytes: number[] = [];
  let dropped = 0;
  for (const e of events) {
    const t = JSON.stringify(e);
    const n = Buffer.byteLength(t);
    if (n + 64 > maxPayload) {
      dropped++;
      continue;
    }
    texts.push(t);
    bytes.push(n);
  }
  return { texts, bytes, dropped };
}

/** A frame's text and how many events it carries. */
export interface FrameText {
  text: string;
  events: number;
}

/**
 * Batch frames of serialised events, cut so that none is over the frame limit (a listener
 * would close on it): what a listener that said hello gets (and every MQTT listener). A batch
 * of one is sent as the plain event frame with `sent` (and the run).
 */
export function batchTexts(s: Serialised, sent: number, maxPayload: number, run: string | undefined): FrameText[] {
  const { texts, bytes } = s;
  const out: FrameText[] = [];
  const tail = run ? `,"run":"${run}"` : "";
  const head = `{"type":"batch","sent":${sent}${tail},"events":[`;
  let from = 0;
  while (from < texts.length) {
    // The first event always goes: serialise kept only events that fit a frame as a plain one
    // (the head of a batch is longer than that margin: waiting for room would loop for ever).
    let size = head.length + 2 + (bytes[from] ?? 0) + 1;
    let to = from + 1;
    for (; to < texts.length && to - from < MAX_EVENTS_PER_FRAME; to++) {
      const n = bytes[to] ?? 0;
      if (size + n + 1 > maxPayload) break;
      size += n + 1;
    }
    const first = texts[from];
    out.push({
      text: to - from === 1 && first !== undefined ? `${first.slice(0, -1)},"sent":${sent}${tail}}` : `${head}${texts.slice(from, to).join(",")}]}`,
      events: to - from,
    });
    from = to;
  }
  return out;
}

/** One plain event frame per event, with the run: what a client that never said hello gets (the seed's bridge). */
export function plainTexts(s: Serialised, run: string | undefined): string[] {
  return run ? s.texts.map((t) => `${t.slice(0, -1)},"run":"${run}"}`) : s.texts;
}

/** A report's counters in their named groups (REPORT_GROUPS): what the master reads, by group and name. */
export interface ReportGroups {
  /** what the listener received, and its link */
  counters: Record<string, number>;
  /** what the pulse-shapers it speaks for fired: pulses, on_time_ms, energy_j, dropped, skipped, ... */
  fired?: Record<string, number>;
  /** its power sensor: energy_j, power_w, samples, bad, age_ms, ... */
  measured?: Record<string, number>;
}

/** A listener's report as the master takes it, whichever protocol the listener speaks: typed, in groups. */
export type ListenerReport = Omit<ReportFrame, "fired" | "measured"> & Required<Pick<ReportGroups, "fired" | "measured">>;

/** The prefixes of a group's keys in flat counters: protocol 1's reports, and the report messages the master's node sends. */
const FLAT_PREFIX = { fired: "fired_", measured: "measured_" } as const;

/**
 * A report with only the keys the protocol knows, as the master passes it on (the schema has
 * already refused any other), in its groups. A listener of protocol 1 sends them flat
 * (fired_*, measured_* among its counters): they are put in their groups here, the one place
 * that reads the prefixes.
 */
export function knownReport(f: ReportFrame): ListenerReport {
  const counters: Record<string, number> = {};
  const fired: Record<string, number> = {};
  const measured: Record<string, number> = {};
  for (const [k, v] of Object.entries(f.counters)) {
    if (k.startsWith(FLAT_PREFIX.fired)) fired[k.slice(FLAT_PREFIX.fired.length)] = v;
    else if (k.startsWith(FLAT_PREFIX.measured)) measured[k.slice(FLAT_PREFIX.measured.length)] = v;
    else counters[k] = v;
  }
  // A group says it last, as the flat form did when the groups were merged into it.
  const out: ListenerReport = { type: "report", name: f.name, counters, fired: { ...fired, ...f.fired }, measured: { ...measured, ...f.measured } };
  if (f.offset_ms !== undefined) out.offset_ms = f.offset_ms;
  if (f.rtt_ms !== undefined) out.rtt_ms = f.rtt_ms;
  if (f.instance !== undefined) out.instance = f.instance;
  if (f.run !== undefined) out.run = f.run;
  return out;
}

/** A report's groups as flat counters (fired_*, measured_*), as the master's report messages have always carried them. */
export function flatCounters(r: ReportGroups): Record<string, number> {
  const out = { ...r.counters };
  for (const [k, v] of Object.entries(r.fired ?? {})) out[`${FLAT_PREFIX.fired}${k}`] = v;
  for (const [k, v] of Object.entries(r.measured ?? {})) out[`${FLAT_PREFIX.measured}${k}`] = v;
  return out;
}

/** The master's answer to a hello: its protocol, name and run. */
export function welcomeText(master: string | undefined, run: string | undefined): string {
  return JSON.stringify({ type: "welcome", protocol: PROTOCOL, ...(master ? { master } : {}), ...(run ? { run } : {}) });
}

/** How often the master wants each listener's reports, and its pings at most (ms): its pace, in every pong. */
export interface Pace {
  reportMs: number;
  /** absent: as often as the listener's own cadence */
  pingMs?: number;
}

/**
 * The master's answer to a ping: t1 when it came, t2 when the answer leaves, and its pace
 * (pace()), written without JSON.stringify.
 */
export function pongText(ping: { id: number; t0: number }, t1: number, t2: number, pace?: Pace): string {
  const report = pace ? `,"report_ms":${pace.reportMs}` : "";
  const pings = pace?.pingMs !== undefined ? `,"ping_ms":${pace.pingMs}` : "";
  return `{"type":"pong","id":${ping.id},"t0":${ping.t0},"t1":${t1},"t2":${t2}${report}${pings}}`;
}

/** Reports a second a master takes at most from all its listeners together, by pacing them. */
export const MAX_REPORTS_PER_S = 100;
/** Pings a second a master takes at most from all its listeners together, by pacing them. */
export const MAX_PINGS_PER_S = 1000;
/** A listener's report interval with few listeners (and from a master that does not pace). */
export const REPORT_EVERY_MS = 2000;

/**
 * The pace for `listeners` listeners, so that all together send at most `maxReportsPerS`
 * reports and `maxPingsPerS` pings a second: reports every 2 s up to 200 listeners, then
 * slower (10 s at 1,000, 60 s at most); pings as the listener likes (50 ms while it measures,
 * backing off to 2 s) up to 50 listeners, then no more often than every listeners / 1,000 s
 * (1 s at 1,000, 2 s at most). Without it, 1,000 listeners that rejoin together ping
 * 20,000 times a second, and a master behind a broker falls seconds behind on its pongs.
 */
export function pace(listeners: number, maxReportsPerS = MAX_REPORTS_PER_S, maxPingsPerS = MAX_PINGS_PER_S): Pace {
  const reportMs = Math.min(60_000, Math.max(REPORT_EVERY_MS, Math.ceil((listeners * 1000) / maxReportsPerS / 100) * 100));
  const pingMs = Math.min(2000, Math.ceil((listeners * 1000) / maxPingsPerS / 10) * 10);
  return pingMs > 50 ? { reportMs, pingMs } : { reportMs };
}

/** A listener's hello. */
export function helloText(name: string, instance: string | undefined): string {
  return JSON.stringify({ type: "hello", name, protocol: PROTOCOL, ...(instance ? { instance } : {}) });
}
