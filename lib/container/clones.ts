// Multiplexing: N clones of one container, each playing the same timeline shifted by its
// own phase. Nothing here has one object or one timer per clone: a spread answers "how
// many clones have a phase below x" by arithmetic (identical, even) or by a binary search
// in one sorted array (random), so a frame costs the same for 10 clones or 1,000,000.
//
// Phases are fractions of the spread's span (one tick, or one loop) in [0, 1); the player
// turns them into tick positions.

import { checkNumber, type NumberRule } from "../numbers";

export type Spread = "identical" | "even" | "random";
export type SpreadOver = "tick" | "loop";
export type Emission = "auto" | "each" | "aggregate";

export const SPREADS: readonly Spread[] = ["identical", "even", "random"];
export const MAX_CLONES = 1_000_000;
/** One message per clone event above this many clones would flood every node downstream. */
export const MAX_EACH = 10_000;

export interface CloneSettings {
  clones: number;
  spread: Spread;
  spreadOver: SpreadOver;
  /** For the random spread: the same seed gives the same phases. */
  seed: number;
  emission: Emission;
  /** With emission "auto": more clones than this are aggregated. */
  aggregateAbove: number;
  /** The length of one frame: aggregated messages count the events of one frame each. */
  frameMs: number;
}

export const DEFAULT_CLONES: CloneSettings = { clones: 1, spread: "even", spreadOver: "tick", seed: 1, emission: "auto", aggregateAbove: 100, frameMs: 20 };

/** The dc-container panel's multiplexing numbers (lib/ranges.ts gathers every node's). */
export const CLONE_RULES = {
  clones: { label: "Clones", min: 1, max: MAX_CLONES, integer: true, default: DEFAULT_CLONES.clones },
  seed: { label: "Seed", min: 0, max: 0xffffffff, integer: true, default: DEFAULT_CLONES.seed },
  aggregateAbove: { label: "Counts above", min: 0, max: MAX_EACH, integer: true, default: DEFAULT_CLONES.aggregateAbove, unit: "clones" },
  frameMs: { label: "Frame window", min: 1, max: 10_000, default: DEFAULT_CLONES.frameMs, unit: "ms" },
} satisfies Record<string, NumberRule>;
const rules = CLONE_RULES;

/** Reads the panel's multiplexing fields; every problem named in the panel's words. */
export function parseCloneSettings(def: Record<string, unknown>): { ok: true; settings: CloneSettings } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const num = (key: keyof typeof rules): number => {
    const r = checkNumber(def[key], rules[key]);
    if (r.ok) return r.value;
    errors.push(r.error);
    return rules[key].default;
  };
  const clones = num("clones");
  const seed = num("seed");
  const aggregateAbove = num("aggregateAbove");
  const frameMs = num("frameMs");
  const pick = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const v = def[key];
    if (v === undefined || v === null || v === "") return fallback;
    if ((allowed as readonly unknown[]).includes(v)) return v as T;
    errors.push(`${key} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
    return fallback;
  };
  const spread = pick("spread", SPREADS, DEFAULT_CLONES.spread);
  const spreadOver = pick<SpreadOver>("spreadOver", ["tick", "loop"], DEFAULT_CLONES.spreadOver);
  const emission = pick<Emission>("emission", ["auto", "each", "aggregate"], DEFAULT_CLONES.emission);
  if (emission === "each" && clones > MAX_EACH) {
    errors.push(`One message per clone event is limited to ${MAX_EACH.toLocaleString("en")} clones (got ${clones.toLocaleString("en")}): send counts instead`);
  }
  if (errors.length) return { ok: false, errors };
  return { ok: true, settings: { clones, spread, spreadOver, seed, emission, aggregateAbove, frameMs } };
}

/** Whether these settings emit one aggregated message per event name per frame. */
export function aggregates(s: CloneSettings): boolean {
  return s.emission === "aggregate" || (s.emission === "auto" && s.clones > s.aggregateAbove);
}

/** The phases of N clones as fractions of the span, in ascending order. */
export interface Phases {
  readonly n: number;
  /** How many clones have a phase below x (x in spans; any real number). */
  below(x: number): number;
  /** The phase of the i-th clone in ascending order. */
  phase(i: number): number;
}

class Identical implements Phases {
  constructor(readonly n: number) {}
  below(x: number): number {
    return x > 0 ? this.n : 0;
  }
  phase(): number {
    return 0;
  }
}

class Even implements Phases {
  constructor(readonly n: number) {}
  below(x: number): number {
    if (x <= 0) return 0;
    if (x >= 1) return this.n;
    // phase(i) = i / n < x  <=>  i < x n. A frame edge that falls exactly on a clone's phase
    // arrives here as x n = 40.0000000001 or 39.9999999999; the tolerance puts such ties in
    // the later frame every time, so frames hold even counts. (Totals are exact either way.)
    return Math.min(this.n, Math.ceil(x * this.n - 1e-6));
  }
  phase(i: number): number {
    return i / this.n;
  }
}

class Random implements Phases {
  private readonly sorted: Float64Array;
  constructor(
    readonly n: number,
    seed: number,
  ) {
    const next = mulberry32(seed);
    this.sorted = new Float64Array(n);
    for (let i = 0; i < n; i++) this.sorted[i] = next();
    this.sorted.sort();
  }
  below(x: number): number {
    if (x <= 0) return 0;
    if (x >= 1) return this.n;
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  phase(i: number): number {
    return this.sorted[i]!;
  }
}

export function makePhases(n: number, spread: Spread, seed: number): Phases {
  switch (spread) {
    case "identical":
      return new Identical(n);
    case "even":
      return new Even(n);
    case "random":
      return new Random(n, seed);
  }
}

/** A small, fast, seedable generator of uniform numbers in [0, 1): reproducible phases, not cryptography. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
