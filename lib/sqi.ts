// msg.sqi, the envelope every event of this package carries: where it came from (container,
// tick, loop, seq, clone), when it is due (at, on this Node-RED's clock; master_at on the
// master's) and, for a counted message from multiplexed clones, how many events it stands for
// (count in window_ms, with rate_hz = count per second). This file owns it: the nodes and the
// bus read, build, scale and convert it only through these functions.

import type { PlayedGlyph } from "./container/player";

export interface Sqi {
  container?: string;
  tick?: number;
  loop?: number;
  seq?: number;
  clone?: number;
  /** When the event is due, in ms on this Node-RED's clock. */
  at?: number;
  /** On a listener: when the event is due on the master's clock. */
  master_at?: number;
  /** A counted message: it stands for `count` events spread over `window_ms`. */
  count?: number;
  window_ms?: number;
  /** count per second, kept in step with count and window_ms. */
  rate_hz?: number;
  /** How many clones the container plays (counted messages only). */
  clones?: number;
  /** Anything else a flow put there is kept as it is. */
  [key: string]: unknown;
}

/** Events up to this far past their `at` are on time: timer jitter, not lateness. */
export const LATE_TOLERANCE_MS = 2;
/** The longest window a counted message may have. */
export const MAX_WINDOW_MS = 3_600_000;
/** The keys of the envelope that travel in a bus frame (at is converted, seq is the bus's own). */
const FRAME_KEYS = ["container", "tick", "loop", "count", "window_ms"] as const;

/** msg.sqi when it is an object, else undefined (a message from another node may hold anything). */
export function sqiOf(msg: Record<string, unknown>): Sqi | undefined {
  const s = msg.sqi;
  return typeof s === "object" && s !== null && !Array.isArray(s) ? (s as Sqi) : undefined;
}

/** The envelope of an event the player emitted. */
export function fromGlyph(g: PlayedGlyph, clones: number): Sqi {
  const sqi: Sqi = { container: g.container, tick: g.tick, loop: g.loop, seq: g.seq, at: g.at };
  if (g.clone !== undefined) sqi.clone = g.clone;
  if (g.count !== undefined && g.window_ms !== undefined) {
    setCount(sqi, g.count, g.window_ms);
    sqi.clones = clones;
  }
  return sqi;
}

/** Sets a counted message's count and window, and its rate to match. */
function setCount(sqi: Sqi, count: number, windowMs: number): void {
  sqi.count = count;
  sqi.window_ms = windowMs;
  sqi.rate_hz = (count * 1000) / windowMs;
}

/**
 * A counted message's count and window: undefined for a message that stands for one event,
 * or what is wrong with them.
 */
export function readCount(sqi: Sqi | undefined): { count: number; windowMs: number } | undefined | string {
  if (sqi?.count === undefined) return undefined;
  const { count, window_ms: windowMs } = sqi;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1)
    return `msg.sqi.count must be a positive whole number of events, got ${JSON.stringify(count)}`;
  if (typeof windowMs !== "number" || !Number.isFinite(windowMs) || windowMs <= 0 || windowMs > MAX_WINDOW_MS)
    return `msg.sqi.window_ms must be the frame's length in ms (above 0, at most one hour) when msg.sqi.count is set, got ${JSON.stringify(windowMs)}`;
  return { count, windowMs };
}

/** How many events a message stands for: its count when that is a positive whole number, else 1. */
export function eventsIn(sqi: Sqi | undefined): number {
  const c = sqi?.count;
  return typeof c === "number" && Number.isInteger(c) && c > 0 ? c : 1;
}

/** A counted message keeps `kept` of its events (decimation): count and rate_hz change together. */
export function scaleCount(sqi: Sqi, kept: number): void {
  sqi.count = kept;
  if (typeof sqi.window_ms === "number" && sqi.window_ms > 0) sqi.rate_hz = (kept * 1000) / sqi.window_ms;
  else delete sqi.rate_hz;
}

/** The envelope's keys that travel in a bus event frame (see docs/protocol.md). */
export function toFrameFields(sqi: Sqi | undefined): Partial<Pick<Sqi, "at" | (typeof FRAME_KEYS)[number]>> {
  const out: Record<string, unknown> = {};
  if (sqi) for (const k of ["at", ...FRAME_KEYS] as const) if (sqi[k] !== undefined) out[k] = sqi[k];
  return out as Partial<Pick<Sqi, "at" | (typeof FRAME_KEYS)[number]>>;
}

/** The envelope of an event frame as a listener hands it on, before its `at` is put on this clock. */
export function fromFrame(frame: { seq?: number } & Partial<Record<(typeof FRAME_KEYS)[number], unknown>>): Sqi {
  const sqi: Record<string, unknown> = {};
  for (const k of ["container", "tick", "loop", "seq", "count", "window_ms"] as const) if (frame[k] !== undefined) sqi[k] = frame[k];
  if (typeof sqi.count === "number" && typeof sqi.window_ms === "number" && sqi.window_ms > 0) sqi.rate_hz = (sqi.count * 1000) / sqi.window_ms;
  return sqi as Sqi;
}

/** The envelope of a pin edge a pulse-shaper sends: its event's envelope, and the edge's level, planned and sent times. */
export function withEdge(sqi: Sqi | undefined, edge: { level: number; planned: number; sent: number }): Sqi {
  return { ...(sqi ?? {}), edge: { level: edge.level, planned: edge.planned, sent: edge.sent } };
}
