// Where things are in a JSON text, as line and column: where it first goes wrong (V8's
// JSON.parse messages only sometimes carry a position and never a line), and where the value at
// a JSON path starts (so that schema problems get a line and column too).
// Neither recurses: a hostile text of a million '[' must not blow the stack.

import { MAX_JSON_DEPTH } from "../limits";

export interface JsonSyntaxError {
  line: number;
  column: number;
  offset: number;
  reason: string;
}

export function locateJsonSyntaxError(text: string): JsonSyntaxError | null {
  let i = 0;
  let depth = 0;
  const fail = (reason: string): never => {
    throw new LocatedError(i, reason);
  };
  const ws = (): void => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const describe = (): string => {
    if (i >= text.length) return "the text ends too early";
    const c = text[i]!;
    return c === "\n" || c === "\r" ? "unexpected line break" : `unexpected ${JSON.stringify(c)}`;
  };
  const literal = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) fail(`expected ${word}, ${describe()}`);
      i++;
    }
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail("a string is not closed");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail("a string contains a raw control character (a line break inside quotes?)");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("a \\u escape needs four hex digits");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          i++; // point at the letter after the backslash, as V8 does
          fail("a string has an invalid escape");
        }
      } else {
        i++;
      }
    }
  };
  const number = (): void => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "-") fail("a number is malformed");
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if ((c === "{" || c === "[") && ++depth > MAX_JSON_DEPTH) fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        depth--;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"')
          fail(text[i] === "}" ? "a comma before } is not allowed" : `expected a "quoted" property name, found ${describe().replace("unexpected ", "")}`);
        string();
        ws();
        if (text[i] !== ":") fail("expected ':' after a property name");
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          depth--;
          return;
        }
        fail("expected ',' or '}' after a property value");
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        depth--;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          ws();
          if (text[i] === "]") fail("a comma before ] is not allowed");
          continue;
        }
        if (text[i] === "]") {
          i++;
          depth--;
          return;
        }
        fail("expected ',' or ']' after an array element");
      }
    } else if (c === '"') {
      string();
    } else if (c === "t") {
      literal("true");
    } else if (c === "f") {
      literal("false");
    } else if (c === "n") {
      literal("null");
    } else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      number();
    } else {
      fail(describe());
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail("unexpected text after the end of the JSON value");
    return null;
  } catch (e) {
    if (!(e instanceof LocatedError)) throw e;
    const { line, column } = lineAndColumn(text, e.offset);
    return { line, column, offset: e.offset, reason: e.reason };
  }
}

class LocatedError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** 1-based line and column of each offset, in one pass over the text however many there are. */
export function linesAndColumns(text: string, offsets: number[]): Array<{ line: number; column: number }> {
  const order = offsets.map((o, k) => [Math.min(Math.max(o, 0), text.length), k] as const).sort((a, b) => a[0] - b[0]);
  const out: Array<{ line: number; column: number }> = new Array(offsets.length);
  let line = 1;
  let lineStart = 0;
  let k = 0;
  for (const [offset, index] of order) {
    for (; k < offset; k++) {
      if (text.charCodeAt(k) === 0x0a) {
        line++;
        lineStart = k + 1;
      }
    }
    out[index] = { line, column: offset - lineStart + 1 };
  }
  return out;
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  return linesAndColumns(text, [offset])[0]!;
}

/**
 * Where values start in a JSON text that JSON.parse accepted, found by counting brackets,
 * without recursion. Each object or array walked is remembered with how far it was read, so
 * that many paths into one large array (50 problems among 60,000 glyphs) cost one pass.
 */
export class JsonLocator {
  private readonly members = new Map<string, { found: Map<string, number>; index: number; pos: number; done: boolean }>();
  private readonly root: number;

  constructor(private readonly text: string) {
    this.root = this.ws(0);
  }

  /** Where the value at `path` (keys and indices, as in ajv's instancePath) starts; the nearest ancestor's start when a step is not there. */
  offsetOf(path: readonly string[]): number {
    let at = this.root;
    for (let depth = 0; depth < path.length; depth++) {
      const next = this.member(at, path.slice(0, depth).join("\u0000"), path[depth]!);
      if (next === undefined) return at;
      at = next;
    }
    return at;
  }

  private member(start: number, key: string, step: string): number | undefined {
    const t = this.text;
    const open = t[start];
    if (open !== "{" && open !== "[") return undefined;
    let m = this.members.get(key);
    if (!m) this.members.set(key, (m = { found: new Map(), index: 0, pos: this.ws(start + 1), done: false }));
    while (!m.found.has(step) && !m.done) {
      let i = m.pos;
      if (t[i] === "}" || t[i] === "]" || i >= t.length) {
        m.done = true;
        break;
      }
      let name = String(m.index);
      if (open === "{") {
        const keyStart = i;
        i = this.skipString(i);
        name = JSON.parse(t.slice(keyStart, i)) as string;
        i = this.ws(this.ws(i) + 1); // past ':'
      }
      if (!m.found.has(name)) m.found.set(name, i);
      i = this.ws(this.skipValue(i));
      if (t[i] === ",") i = this.ws(i + 1);
      m.pos = i;
      m.index++;
    }
    return m.found.get(step);
  }

  private ws(i: number): number {
    const t = this.text;
    while (i < t.length && (t[i] === " " || t[i] === "\t" || t[i] === "\n" || t[i] === "\r" || t.charCodeAt(i) === 0xfeff)) i++;
    return i;
  }

  private skipString(i: number): number {
    const t = this.text;
    for (i++; i < t.length && t[i] !== '"'; i++) if (t[i] === "\\") i++;
    return i + 1;
  }

  private skipValue(i: number): number {
    const t = this.text;
    let depth = 0;
    do {
      const c = t[i];
      if (c === '"') i = this.skipString(i);
      else {
        if (c === "{" || c === "[") depth++;
        else if (c === "}" || c === "]") depth--;
        else if (depth === 0) {
          while (i < t.length && !",}] \t\r\n".includes(t[i]!)) i++; // a number or literal
          return i;
        }
        i++;
      }
    } while (depth > 0 && i < t.length);
    return i;
  }
}
