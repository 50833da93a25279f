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
  /** About the bytes its JSON text would take, at most. */
  maxBytes?: number;
}

/**
 * The first way a value breaks the limits, as `{ path, message }` (path in the JSON-path style
 * of the .dc problems: `glyphs[3].payload.a.b`), or undefined when it keeps them. Iterative,
 * stops at the first problem; a cycle is too deep.
 */
export function checkShape(value: unknown, limits: ShapeLimits): { path: string; message: string } | undefined {
  const maxValues = limits.maxValues ?? Infinity;
  const maxBytes = limits.maxBytes ?? Infinity;
  let values = 0;
  let bytes = 0;
  // The path is kept only for the walk's current chain of parents, to name a problem.
  const stack: Array<{ v: unknown; depth: number; key: string | number | undefined; parent: number }> = [{ v: value, depth: 0, key: undefined, parent: -1 }];
  const chain: Array<{ key: string | number | undefined; parent: number }> = [];
  while (stack.length) {
    const item = stack.pop()!;
    chain.push({ key: item.key, parent: item.parent });
    const here = chain.length - 1;
    const v = item.v;
    values++;
    if (values > maxValues) return { path: pathOf(chain, here), message: `has more than ${maxValues} values` };
    if (typeof v === "string") bytes += v.length + 2;
    else if (typeof v !== "object" || v === null) bytes += 8;
    else {
      if (item.depth >= limits.maxDepth) return { path: pathOf(chain, here), message: `is nested more than ${limits.maxDepth} levels deep` };
      if (Array.isArray(v)) {
        bytes += 2 + v.length;
        for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: item.depth + 1, key: i, parent: here });
      } else {
        const keys = Object.keys(v);
        bytes += 2;
        for (let i = keys.length - 1; i >= 0; i--) {
          bytes += keys[i]!.length + 4;
          stack.push({ v: (v as Record<string, unknown>)[keys[i]!], depth: item.depth + 1, key: keys[i]!, parent: here });
        }
      }
    }
    if (bytes > maxBytes) return { path: pathOf(chain, here), message: `is over ${maxBytes} bytes as JSON` };
  }
  return undefined;
}

function pathOf(chain: Array<{ key: string | number | undefined; parent: number }>, at: number): string {
  const keys: Array<string | number> = [];
  for (let i = at; i >= 0 && chain[i]!.key !== undefined; i = chain[i]!.parent) keys.push(chain[i]!.key!);
  let out = "";
  for (const k of keys.reverse()) out += typeof k === "number" ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `${out ? "." : ""}${k}` : `[${JSON.stringify(k)}]`;
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
