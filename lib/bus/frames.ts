// The bus's wire format (protocol 1; docs/protocol.md): JSON text frames, checked against
// schemas/bus-frame.schema.json. An event frame is a superset of the seed's
// {"event", "payload"}, so a client that never says hello (the seed's Python bridge) gets
// exactly what it expects; listeners of this package say hello and may get batches.

import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { jsonPath } from "../container/format";
import { MAX_JSON_DEPTH, withinDepth } from "../limits";
import { schemasDir } from "../paths";
import { toFrameFields, type Sqi } from "../sqi";

export const PROTOCOL = 1;

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
  | { type: "pong"; id: number; t0: number; t1: number; t2: number };

export type UpstreamFrame =
  | { type: "hello"; name: string; protocol: number; instance?: string }
  | { type: "ping"; id: number; t0: number }
  | { type: "report"; name: string; counters: Record<string, number>; offset_ms?: number; rtt_ms?: number; instance?: string; run?: string };

export type ReportFrame = Extract<UpstreamFrame, { type: "report" }>;

/**
 * A new identity for a master's run, or a listener's life: each start gets its own, so that a
 * listener knows a restarted master's seqs begin again (whatever seq it reconnects at), and a
 * master knows a listener that restarted.
 */
export function newRunId(): string {
  return randomBytes(8).toString("hex");
}

export type Decoded<T> = { ok: true; frame: T } | { ok: false; error: string };

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
    const schema = JSON.parse(fs.readFileSync(path.join(schemasDir, "bus-frame.schema.json"), "utf8"));
    const ajv = new Ajv({ allErrors: false, verbose: true, strict: false });
    ajv.addKeyword({ keyword: "errorMessage", schemaType: "string" });
    ajv.addSchema(schema);
    validators = { up: ajv.getSchema(`${schema.$id}#/definitions/upstream`)!, down: ajv.getSchema(`${schema.$id}#/definitions/downstream`)! };
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
  if (!validate(value)) return { ok: false, error: firstProblem(validate.errors) };
  return { ok: true, frame: value as T };
}

/** What the master accepts from a listener: hello, ping, report. */
export function decodeUpstream(text: string): Decoded<UpstreamFrame> {
  return decode<UpstreamFrame>(text, compiled().up);
}

/** What a listener accepts from the master. */
export function decodeDownstream(text: string): Decoded<DownstreamFrame> {
  return decode<DownstreamFrame>(text, compiled().down);
}

/** The event frame for a dc-container message: {event, payload} plus seq, at, container, tick, loop (and counts). */
export function eventFrame(topic: string, payload: unknown, sqi: Sqi | undefined, seq: number): EventFrame {
  const f: EventFrame = { event: topic, payload: typeof payload === "object" && payload !== null && !Array.isArray(payload) ? (payload as Record<string, unknown>) : {}, seq };
  return Object.assign(f, toFrameFields(sqi));
}
