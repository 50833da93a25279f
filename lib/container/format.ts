// The .dc container format: its types, and a loader that turns text or a value into
// either a valid container or the list of every problem, each with its JSON path and a
// plain-words rule (`glyphs[2].tick: must be a positive integer`). The rules live in
// schemas/dc-container.schema.json, which editors such as VS Code can use as well.

import type { ErrorObject, ValidateFunction } from "ajv";
import { readRegularFile } from "../files";
import { checkShape, MAX_JSON_DEPTH } from "../limits";
import { jsonPath, loadSchema, pointerSteps, validatorOf, type SchemaNode } from "../schema";
import { JsonLocator, linesAndColumns, locateJsonSyntaxError } from "./json-position";

export interface Glyph {
  tick: number;
  event: string;
  payload?: Record<string, unknown>;
  [key: string]: unknown;
}

export type RuntimeSpeed = "realtime" | "accelerated" | number;

export interface Container {
  container_id: string;
  metadata?: { runtime_speed?: RuntimeSpeed; [key: string]: unknown };
  glyphs: Glyph[];
  loop?: boolean;
  tick_interval_ms?: number;
  [key: string]: unknown;
}

export interface Problem {
  /** JSON path such as `glyphs[2].tick`, a `line 3, column 5` location, or "" for the whole file. */
  path: string;
  message: string;
  /** Where in the text (1-based), for problems found in a text: syntax and schema problems alike. */
  line?: number;
  column?: number;
  /** The file could not be read at all (missing, a directory, no permission): not an invalid container. */
  unreadable?: true;
  /** The value's place as keys and indices (ajv's instancePath), for finding its line. */
  at?: string[];
}

export type LoadResult = { ok: true; container: Container } | { ok: false; problems: Problem[] };

export const MAX_CONTAINER_BYTES = 5 * 1024 * 1024;
export const DEFAULT_TICK_INTERVAL_MS = 500;
/** More problems than this are summarised: a broken 100,000-glyph file must not flood the log. */
export const MAX_LISTED_PROBLEMS = 50;

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  // errorMessage is the plain-words rule; VS Code shows the same keyword in its JSON editor.
  compiled ??= validatorOf(loadSchema("dc-container.schema.json", { allErrors: true, verbose: true, strict: true, allowUnionTypes: true }), "");
  return compiled;
}

function problemsFromAjv(errors: ErrorObject[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  // Several ajv errors can describe one place (a oneOf and its branches); keep one line per place.
  const byPath = new Map<string, { message: string; isRule: boolean; at: string[] }>();
  for (const e of errors) {
    const parent = e.parentSchema as SchemaNode | undefined;
    if (e.keyword === "required") {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const p = jsonPath(e.instancePath, missing);
      const rule = parent?.properties?.[missing]?.errorMessage;
      const message = rule ? `is missing (it ${rule})` : "is missing";
      const key = `${p}\u0000${message}`;
      if (!seen.has(key)) {
        seen.add(key);
        problems.push({ path: p, message, at: pointerSteps(e.instancePath) }); // found at the object that lacks it
      }
      continue;
    }
    const p = jsonPath(e.instancePath);
    const known = byPath.get(p);
    // The nearest plain-words rule wins over ajv's generic wording for the same place.
    if (parent?.errorMessage && !known?.isRule) byPath.set(p, { message: parent.errorMessage, isRule: true, at: pointerSteps(e.instancePath) });
    else if (!known) byPath.set(p, { message: e.message ?? "is not valid", isRule: false, at: pointerSteps(e.instancePath) });
  }
  for (const [p, { message, at }] of byPath) problems.push({ path: p, message, at });
  return problems;
}

/**
 * Checks a parsed value against the .dc rules. Unknown keys are kept, never stripped. A value
 * parsed from a text whose size was checked (`sized`) is not measured again: the limit is the
 * text's byte length, and a value's JSON is never longer than the text it came from.
 */
export function validateContainer(value: unknown, sized = false): LoadResult {
  // Before the schema and before anything that recurses over it (a glyph payload is cloned on
  // every emit): the depth, and the size its JSON would have (an object from msg.container has no file size).
  const shape = checkShape(value, sized ? { maxDepth: MAX_JSON_DEPTH } : { maxDepth: MAX_JSON_DEPTH, maxBytes: MAX_CONTAINER_BYTES });
  if (shape)
    return {
      ok: false,
      problems: [
        {
          path: shape.path,
          message: shape.message.startsWith("is over")
            ? `is over the ${MAX_CONTAINER_BYTES / 1024 / 1024} MiB limit for .dc containers as JSON`
            : `${shape.message} (at most ${MAX_JSON_DEPTH})`,
          at: shape.steps.map(String),
        },
      ],
    };
  const validate = validator();
  if (validate(value)) return { ok: true, container: value as Container };
  let problems = problemsFromAjv(validate.errors ?? []);
  if (problems.length > MAX_LISTED_PROBLEMS) {
    const more = problems.length - MAX_LISTED_PROBLEMS;
    problems = problems.slice(0, MAX_LISTED_PROBLEMS);
    problems.push({ path: "", message: `and ${more} more problems` });
  }
  return { ok: false, problems };
}

/** Parses .dc text: JSON syntax errors come back with line and column. */
export function parseContainerText(text: string): LoadResult {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_CONTAINER_BYTES) return { ok: false, problems: [{ ...tooBig(bytes), line: 1, column: 1 }] };
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === "")
    return { ok: false, problems: [{ path: "", message: "is empty: a container is a JSON object with container_id and glyphs", line: 1, column: 1 }] };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (e) {
    const where = locateJsonSyntaxError(body);
    const detail = where ? where.reason : (e as Error).message;
    return {
      ok: false,
      problems: [
        {
          path: where ? `line ${where.line}, column ${where.column}` : "",
          message: `not valid JSON: ${detail}`,
          line: where?.line ?? 1,
          column: where?.column ?? 1,
        },
      ],
    };
  }
  const r = validateContainer(value, true);
  if (!r.ok) {
    // Every problem gets a line and column: where its value (or the object lacking a key) starts.
    const locate = new JsonLocator(body);
    const offsets = r.problems.map((p) => (p.at ? locate.offsetOf(p.at) : 0));
    linesAndColumns(body, offsets).forEach((where, k) => Object.assign(r.problems[k]!, where));
  }
  return r;
}

function tooBig(bytes: number): Problem {
  const mib = (bytes / 1024 / 1024).toFixed(1);
  return { path: "", message: `is ${mib} MiB, over the ${MAX_CONTAINER_BYTES / 1024 / 1024} MiB limit for .dc containers` };
}

/** Reads and checks a .dc file; never throws for a bad or missing file (opened as every user-named file is: lib/files.ts). */
export function loadContainerFile(file: string): LoadResult {
  const r = readRegularFile(file, MAX_CONTAINER_BYTES);
  if (r.ok) return parseContainerText(r.text);
  if (r.tooBig !== undefined) return { ok: false, problems: [{ ...tooBig(r.tooBig), line: 1, column: 1 }] };
  const message =
    r.error === "is a directory, not a file"
      ? "is a directory, not a .dc file"
      : r.error.startsWith("is not a regular file")
        ? `${r.error}: a .dc container must be a file`
        : r.error;
  return { ok: false, problems: [{ path: "", message, unreadable: true }] };
}

/** One line per problem, each starting with the source: `star.dc: glyphs[2].tick: must be a positive integer`. */
export function formatProblems(source: string, problems: Problem[]): string[] {
  return problems.map((p) => (p.path ? `${source}: ${p.path}: ${p.message}` : `${source}: ${p.message}`));
}

/** `FILE:LINE:COL: message (json.path)`, the form editors and terminals make clickable (sqi-dc validate, the dc-container panel). */
export function problemLine(file: string, p: Problem): string {
  if (p.unreadable || p.line === undefined) return `${file}: ${p.message}`;
  const where = p.path && !p.path.startsWith("line ") ? ` (${p.path})` : "";
  return `${file}:${p.line}:${p.column ?? 1}: ${p.message}${where}`;
}
