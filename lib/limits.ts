// Limits on a value from outside (a frame, a report, a .dc container, a message from another
// node), checked without recursion before anything that recurses over it: JSON.stringify,
// structuredClone and Node-RED's cloneMessage all overflow the stack a few thousand levels
// down, and take the process with them. JSON.parse itself does not recurse, so text is
// parsed first and its value checked here.

/** Nesting depth of any JSON value this package takes in: a glyph payload or an event payload is a few levels deep. */
export const MAX_JSON_DEPTH = 32;

export interface ShapeLimits {
  maxDepth: number;
  /** Values (objects, arrays, strings, numbers, ...) at most. */
  maxValues?: number;
  /** The bytes of its JSON text (UTF-8, as JSON.stringify writes it, without spaces), at most. */
  maxBytes?: number;
}

export interface ShapeProblem {
  /** JSON-path style (`glyphs[3].payload.a.b`), or "(root)". */
  path: string;
  /** The same place as keys and indices, for finding its line in a text. */
  steps: Array<string | number>;
  message: string;
}

/**
 * The first way a value breaks the limits, or undefined when it keeps them. Iterative, stops
 * at the first problem; a cycle is too deep. The size is what JSON.stringify(value) would
 * write, byte for byte, for plain data; for an object with toJSON (a Date) it counts the
 * object's own keys instead, so it never counts more than the text would hold: a value is
 * refused for its size only when its JSON really is over the limit.
 */
export function checkShape(value: unknown, limits: ShapeLimits): ShapeProblem | undefined {
  const maxValues = limits.maxValues ?? Infinity;
  const maxBytes = limits.maxBytes ?? Infinity;
  let values = 0;
  let bytes = 0;
  // The path is kept only for the walk's current chain of parents, to name a problem.
  const stack: Array<{ v: unknown; depth: number; key: string | number | undefined; parent: number }> = [{ v: value, depth: 0, key: undefined, parent: -1 }];
  const chain: Array<{ key: string | number | undefined; parent: number }> = [];
  const problem = (here: number, message: string): ShapeProblem => {
    const steps = stepsOf(chain, here);
    return { path: pathOf(steps), steps, message };
  };
  while (stack.length) {
    const item = stack.pop()!;
    chain.push({ key: item.key, parent: item.parent });
    const here = chain.length - 1;
    const v = item.v;
    values++;
    if (values > maxValues) return problem(here, `has more than ${maxValues} values`);
    if (typeof v === "object" && v !== null) {
      if (item.depth >= limits.maxDepth) return problem(here, `is nested more than ${limits.maxDepth} levels deep`);
      if (Array.isArray(v)) {
        bytes += 2 + Math.max(0, v.length - 1);
        for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: item.depth + 1, key: i, parent: here });
      } else {
        // JSON leaves out a key whose value it cannot write (undefined, a function, a symbol).
        const keys = Object.keys(v).filter((k) => writable((v as Record<string, unknown>)[k]));
        bytes += 2 + Math.max(0, keys.length - 1);
        for (let i = keys.length - 1; i >= 0; i--) {
          bytes += stringBytes(keys[i]!) + 1;
          stack.push({ v: (v as Record<string, unknown>)[keys[i]!], depth: item.depth + 1, key: keys[i]!, parent: here });
        }
      }
    } else bytes += scalarBytes(v);
    if (bytes > maxBytes) return problem(here, `is over ${maxBytes} bytes as JSON`);
  }
  return undefined;
}

function writable(v: unknown): boolean {
  return v !== undefined && typeof v !== "function" && typeof v !== "symbol";
}

/** Bytes of a string as JSON text: quotes, escapes and UTF-8. */
function stringBytes(s: string): number {
  // Plain printable ASCII is the common case: no escapes, one byte each.
  return /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(s) ? s.length + 2 : Buffer.byteLength(JSON.stringify(s));
}

/** Bytes of a number, boolean, null or string as JSON (in an array, what cannot be written is null). */
function scalarBytes(v: unknown): number {
  if (typeof v === "string") return stringBytes(v);
  if (typeof v === "number") return Number.isFinite(v) ? String(v).length : 4;
  if (typeof v === "boolean") return v ? 4 : 5;
  if (typeof v === "bigint") return String(v).length;
  return 4; // null, and undefined or a function in an array
}

function stepsOf(chain: Array<{ key: string | number | undefined; parent: number }>, at: number): Array<string | number> {
  const keys: Array<string | number> = [];
  for (let i = at; i >= 0 && chain[i]!.key !== undefined; i = chain[i]!.parent) keys.push(chain[i]!.key!);
  return keys.reverse();
}

function pathOf(keys: Array<string | number>): string {
  let out = "";
  for (const k of keys) out += typeof k === "number" ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `${out ? "." : ""}${k}` : `[${JSON.stringify(k)}]`;
  return out || "(root)";
}

/** A value's depth is within the limit: the quick check for frames on the hot path (no path, no counting). */
export function withinDepth(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length) {
    const { v, depth } = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= maxDepth) return false;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === "object" && x !== null) stack.push({ v: x, depth: depth + 1 });
    } else {
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === "object" && x !== null) stack.push({ v: x, depth: depth + 1 });
      }
    }
  }
  return true;
}
