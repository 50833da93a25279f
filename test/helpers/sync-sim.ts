// Ping/pong exchanges between an exact master clock and a listener clock that drifts, on
// virtual time, fed to a clock estimate; the error of converting an event's `at` is measured
// against the truth. Used by the estimator's unit tests and by bench:sync's drift table.

import { driftOffset, type Drift } from "../../lib/clock";
import { mulberry32 } from "../../lib/container/clones";

export interface Estimator {
  add(t0: number, t1: number, t2: number, t3: number): string;
  addDownstream?(masterSent: number, localReceived: number): void;
  nextPingDelay?(): number;
  toLocal(masterTime: number): number | undefined;
  estimate(t?: number): { offsetMs: number; uncertaintyMs: number; ratePpm?: number } | undefined;
}

export interface SyncRun {
  drift: Drift;
  /** ms between pings (true time; the listener's own timers differ from it by its ppm only); 0: the listener's own cadence (nextPingDelay) */
  pingEveryMs: number;
  /** event frames every this many ms, each a downstream sample through the same down path */
  framesEveryMs?: number;
  /** each direction: fixed delay + uniform 0..jitter ms */
  jitterMs: number;
  baseDelayMs?: number;
  /** extra fixed delay on the way up (a path slower one way) */
  upExtraMs?: number;
  /** jitter only on the way up */
  jitterUpOnly?: boolean;
  durationMs: number;
  /** errors are measured from here on */
  measureFromMs: number;
  /** no exchange in [from, from + for): the master unreachable */
  gap?: { fromMs: number; forMs: number };
  /** how far ahead an event is due when it is converted */
  leadMs?: number;
  seed?: number;
}

export interface SyncResult {
  /** estimate - truth of each converted event's local time, ms (after measureFromMs, outside the gap) */
  errors: number[];
  /** |error| <= stated uncertainty, for each of them */
  covered: number;
  /** at the end of the gap: the error, and the uncertainty the estimate states */
  holdover?: { errorMs: number; uncertaintyMs: number };
  /** the last estimate's rate against the truth's mean rate over the window, ppm */
  rate?: { estimated: number; truth: number };
}

export function runSync(make: () => Estimator, o: SyncRun): SyncResult {
  const rand = mulberry32(o.seed ?? 1);
  const sync = make();
  const local = (t: number) => t + driftOffset(o.drift, t);
  const base = o.baseDelayMs ?? 0.2;
  const lead = o.leadMs ?? 50;
  const errors: number[] = [];
  let covered = 0;
  let holdover: SyncResult["holdover"];
  const convert = (t: number): { error: number; within: boolean } | undefined => {
    const got = sync.toLocal(t + lead);
    const e = sync.estimate(local(t));
    if (got === undefined || !e) return undefined;
    const error = got - local(t + lead);
    return { error, within: Math.abs(error) <= e.uncertaintyMs };
  };
  let nextFrame = 0;
  for (let t = 0; t < o.durationMs; t += o.pingEveryMs || sync.nextPingDelay?.() || 2000) {
    for (; o.framesEveryMs && nextFrame < t; nextFrame += o.framesEveryMs) {
      const down = base + (o.jitterUpOnly ? 0 : rand() * o.jitterMs);
      sync.addDownstream?.(nextFrame, local(nextFrame + down));
    }
    const inGap = o.gap && t >= o.gap.fromMs && t < o.gap.fromMs + o.gap.forMs;
    if (o.gap && !holdover && t >= o.gap.fromMs + o.gap.forMs) {
      const c = convert(t);
      const e = sync.estimate(local(t));
      if (c && e) holdover = { errorMs: c.error, uncertaintyMs: e.uncertaintyMs };
    }
    if (inGap) continue;
    const up = base + (o.upExtraMs ?? 0) + rand() * o.jitterMs;
    const down = base + (o.jitterUpOnly ? 0 : rand() * o.jitterMs);
    const t1 = t + up;
    const t2 = t1 + 0.05;
    sync.add(local(t), t1, t2, local(t2 + down));
    if (t >= o.measureFromMs) {
      const c = convert(t2 + down + rand() * (o.pingEveryMs || 100) * 0.5);
      if (c) {
        errors.push(c.error);
        if (c.within) covered++;
      }
    }
  }
  const e = sync.estimate();
  const end = o.durationMs;
  // The truth's rate: master - local changes by -(local's rate); the estimate's rate is the master's against this clock.
  const span = 10_000;
  const truth = (-(driftOffset(o.drift, end) - driftOffset(o.drift, end - span)) / span) * 1e6;
  return { errors, covered, holdover, rate: e?.ratePpm !== undefined ? { estimated: e.ratePpm, truth } : undefined };
}

/** The q-quantile of |xs|. */
export function absQuantile(xs: number[], q: number): number {
  const a = xs.map(Math.abs).sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.floor(q * a.length))] ?? NaN;
}
