// What a message sent into dc-container asks for. Pure, so the rules users read in the
// node's help are tested without Node-RED.

export type Command =
  | { kind: "start" | "stop" | "toggle" | "pause" | "resume" | "step" | "reload" }
  | { kind: "load"; container: object | string }
  | { kind: "speed"; speed: number | null };

const HELP = `use msg.payload "start", "stop", "toggle", "pause", "resume", "step", "reload", "load" (with msg.container) or "speed" (with msg.speed)`;

function looksLikeContainer(v: unknown): v is object {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "glyphs" in v;
}

/** Reads the command from msg.payload (and its argument from msg.container / msg.speed). */
export function parseCommand(msg: { payload?: unknown; container?: unknown; speed?: unknown }): Command | { error: string } {
  const p = msg.payload;
  if (p === true) return { kind: "start" };
  if (p === false) return { kind: "stop" };
  if (looksLikeContainer(p)) return { kind: "load", container: p };
  if (typeof p !== "string") {
    return { error: `unknown command ${describe(p)}: ${HELP}` };
  }
  const name = p.trim().toLowerCase();
  switch (name) {
    case "start":
    case "stop":
    case "toggle":
    case "pause":
    case "resume":
    case "step":
    case "reload":
      return { kind: name };
    case "load": {
      const c = msg.container;
      if (looksLikeContainer(c) || (typeof c === "string" && c.trim() !== "")) {
        return { kind: "load", container: typeof c === "string" ? c.trim() : c };
      }
      if (typeof c === "object" && c !== null) return { kind: "load", container: c };
      return { error: `load needs msg.container: a container object or a .dc file path, got ${describe(c)}` };
    }
    case "speed": {
      const s = msg.speed;
      if (s === null || s === undefined || s === "container") return { kind: "speed", speed: null };
      const n = typeof s === "string" && s.trim() !== "" ? Number(s) : s;
      if (typeof n !== "number" || !Number.isFinite(n) || n <= 0 || n > 1_000_000) {
        return { error: `speed needs msg.speed: a positive number up to 1000000 (or null for the container's own speed), got ${describe(s)}` };
      }
      return { kind: "speed", speed: n };
    }
    default:
      return { error: `unknown command ${describe(p)}: ${HELP}` };
  }
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
