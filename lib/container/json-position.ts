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
        if (text[i] !== '"') fail(text[i] === "}" ? "a comma before } is not allowed" : `expected a "quoted" property name, found ${describe().replace("unexpected ", "")}`);
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
  constructor(readonly offset: number, readonly reason: string) {
    super(reason);
  }
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let k = 0; k < end; k++) {
    if (text.charCodeAt(k) === 0x0a) {
      line++;
      lineStart = k + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/**
 * Where the value at `path` (object keys and array indices, as in ajv's instancePath) starts in
 * a JSON text that JSON.parse accepted: its offset, or that of the nearest ancestor found when a
 * step is not there. Values on the way are skipped by counting brackets, without recursion.
 */
export function offsetOfPath(text: string, path: readonly string[]): number {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r" || text.charCodeAt(i) === 0xfeff)) i++;
  };
  const skipString = (): void => {
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    i++;
  };
  const skipValue = (): void => {
    ws();
    let depth = 0;
    do {
      const c = text[i];
      if (c === '"') skipString();
      else {
        if (c === "{" || c === "[") depth++;
        else if (c === "}" || c === "]") depth--;
        else if (depth === 0) {
          while (i < text.length && !",}] \t\r\n".includes(text[i]!)) i++; // a number or literal
          return;
        }
        i++;
      }
    } while (depth > 0 && i < text.length);
  };
  ws();
  let found = i;
  for (const step of path) {
    const open = text[i];
    if (open !== "{" && open !== "[") return found;
    i++;
    ws();
    let at = -1;
    for (let index = 0; text[i] !== "}" && text[i] !== "]" && i < text.length; index++) {
      if (open === "{") {
        const keyStart = i;
        skipString();
        const key = JSON.parse(text.slice(keyStart, i)) as string;
        ws();
        i++; // ':'
        ws();
        if (key === step) at = i;
      } else if (String(index) === step) at = i;
      if (at >= 0) break;
      skipValue();
      ws();
      if (text[i] === ",") i++;
      ws();
    }
    if (at < 0) return found;
    found = i = at;
  }
  return found;
}
