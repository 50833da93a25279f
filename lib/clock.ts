// The one Clock every part of the package reads time from and sets timers on.
// Real time in production, a drifting clock (offset, ppm, wander) for simulated Pis, virtual time in tests,
// so that nothing schedules against Date.now() or setTimeout directly.

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Wall-clock epoch milliseconds, fractional (sub-ms precision). */
  now(): number;
  /** Calls fn once after delayMs (clamped to >= 0). Timers may fire late, never early on a virtual clock. */
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle | undefined | null): void;
  /** Calls fn after the current I/O callbacks (setImmediate on a real clock): for batching what arrives together. */
  defer(fn: () => void): void;
  /**
   * Blocks the thread until `deadline` without burning the CPU (at most a few ms; callers
   * bound it). Only a real clock has it: timers there fire up to ~1 ms off, so precise
   * edges take a coarse timer to just before the deadline and then this short wait.
   */
  blockUntil?(deadline: number): void;
}

/** How long blockUntil may be asked to wait: it holds up the whole event loop meanwhile. */
export const MAX_BLOCK_MS = 3;

/**
 * Real time: a monotonic high-resolution clock anchored to the epoch once, so that
 * consecutive readings never go backwards when the system clock is stepped.
 */
/** The longest delay Node's setTimeout takes. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  now(): number {
    return performance.timeOrigin + performance.now();
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.arm(id, fn, this.now() + (Number.isFinite(delayMs) ? Math.max(0, delayMs) : MAX_TIMEOUT_MS));
    return { id };
  }

  /**
   * Node's setTimeout takes at most 2^31-1 ms (24.8 days): a longer delay fires after 1 ms with a
   * TimeoutOverflowWarning, and a caller that re-arms would spin. A long delay is a chain of
   * shorter timers under the same handle; an infinite one waits the longest a timer can.
   */
  private arm(id: number, fn: () => void, due: number): void {
    const wait = Math.max(0, due - this.now());
    const t = setTimeout(
      () => {
        if (wait > MAX_TIMEOUT_MS) return this.arm(id, fn, due);
        this.timers.delete(id);
        fn();
      },
      Math.min(wait, MAX_TIMEOUT_MS),
    );
    this.timers.set(id, t);
  }

  defer(fn: () => void): void {
    setImmediate(fn);
  }

  clearTimer(handle: TimerHandle | undefined | null): void {
    if (!handle) return;
    const t = this.timers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(handle.id);
    }
  }

  /** Number of timers not yet fired or cleared; lets tests prove that close() stops everything. */
  pending(): number {
    return this.timers.size;
  }

  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  blockUntil(deadline: number): void {
    const stop = Math.min(deadline, this.now() + MAX_BLOCK_MS);
    // Sleep in the kernel for all but the last 0.15 ms, then spin: futex wake-ups are ~50 us late.
    for (let rest = stop - this.now(); rest > 0.15; rest = stop - this.now()) Atomics.wait(this.sleeper, 0, 0, rest - 0.1);
    while (this.now() < stop) {
      /* the last fraction of a millisecond */
    }
  }
}

/**
 * How a simulated clock is wrong, against the true time it is built on: a constant offset, a
 * rate error (a crystal's ppm), a temperature-like wander of the rate (a sine of +-wanderPpm
 * over wanderPeriodS, from a phase), slews (NTP steering the rate for a while) and steps.
 * Times in `steps` and `slews` count true milliseconds from the clock's origin.
 */
export interface Drift {
  offsetMs?: number;
  ppm?: number;
  wanderPpm?: number;
  wanderPeriodS?: number;
  /** radians */
  wanderPhase?: number;
  slews?: { atMs: number; forMs: number; ppm: number }[];
  steps?: { atMs: number; byMs: number }[];
}

/** A wander's default period: a swing of the room or the case over ten minutes. */
export const WANDER_PERIOD_S = 600;

/** The clock's error (its reading - true time), ms, `sinceMs` true ms after its origin. */
export function driftOffset(d: Drift, sinceMs: number): number {
  let ms = d.offsetMs ?? 0;
  ms += (d.ppm ?? 0) * 1e-6 * sinceMs;
  if (d.wanderPpm) {
    const w = (2 * Math.PI) / ((d.wanderPeriodS ?? WANDER_PERIOD_S) * 1000);
    const phase = d.wanderPhase ?? 0;
    ms += ((d.wanderPpm * 1e-6) / w) * (Math.cos(phase) - Math.cos(w * sinceMs + phase));
  }
  for (const s of d.slews ?? []) ms += s.ppm * 1e-6 * Math.max(0, Math.min(sinceMs, s.atMs + s.forMs) - s.atMs);
  for (const s of d.steps ?? []) if (sinceMs >= s.atMs) ms += s.byMs;
  return ms;
}

/** The clock's rate error, ppm, `sinceMs` true ms after its origin. */
export function driftRate(d: Drift, sinceMs: number): number {
  let ppm = d.ppm ?? 0;
  if (d.wanderPpm) ppm += d.wanderPpm * Math.sin((2 * Math.PI * sinceMs) / ((d.wanderPeriodS ?? WANDER_PERIOD_S) * 1000) + (d.wanderPhase ?? 0));
  for (const s of d.slews ?? []) if (sinceMs >= s.atMs && sinceMs < s.atMs + s.forMs) ppm += s.ppm;
  return ppm;
}

/**
 * A simulated Pi's clock: true time (the base clock) read through a Drift. Its timers fire by
 * its own time, as a fast or slow crystal's do: a 1,000 ms timer on a +100 ppm clock fires
 * after 999.9 true ms. What true time is is the base's; pin logs keep it, so skews at the pin
 * are measured against the truth.
 */
export class DriftClock implements Clock {
  readonly origin: number;

  constructor(
    private readonly base: Clock,
    readonly drift: Drift,
    origin?: number,
  ) {
    this.origin = origin ?? base.now();
  }

  /** This clock's error (its reading - true time) at true time `t`, ms. */
  errorAt(t: number): number {
    return driftOffset(this.drift, t - this.origin);
  }

  now(): number {
    const t = this.base.now();
    return t + this.errorAt(t);
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const rate = driftRate(this.drift, this.base.now() - this.origin) * 1e-6;
    return this.base.setTimer(fn, delayMs / (1 + rate));
  }

  clearTimer(handle: TimerHandle | undefined | null): void {
    this.base.clearTimer(handle);
  }

  defer(fn: () => void): void {
    this.base.defer(fn);
  }

  get blockUntil(): ((deadline: number) => void) | undefined {
    const base = this.base;
    return base.blockUntil ? (deadline: number) => base.blockUntil!(deadline - this.errorAt(base.now())) : undefined;
  }
}

interface VirtualTimer {
  id: number;
  due: number;
  order: number;
  fn: () => void;
}

/**
 * Virtual time for tests and for computing timelines instantly (`sqi-dc play --no-wait`).
 * Time only moves when advance()/runUntil() is called. An optional lateness function
 * makes timers fire late, like a busy event loop does, to prove schedules do not drift.
 */
export class VirtualClock implements Clock {
  private t: number;
  private readonly timers: VirtualTimer[] = [];
  private nextId = 1;
  private order = 0;
  /** With `blocking`, blockUntil moves time on without firing a timer, as a real blocked thread does. */
  readonly blockUntil?: (deadline: number) => void;

  constructor(
    startMs = 0,
    private readonly lateness: () => number = () => 0,
    options: { blocking?: boolean } = {},
  ) {
    this.t = startMs;
    if (options.blocking) {
      this.blockUntil = (deadline) => {
        this.t = Math.max(this.t, Math.min(deadline, this.t + MAX_BLOCK_MS));
      };
    }
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    const due = this.t + Math.max(0, delayMs) + Math.max(0, this.lateness());
    this.timers.push({ id, due, order: this.order++, fn });
    return { id };
  }

  defer(fn: () => void): void {
    this.setTimer(fn, 0);
  }

  clearTimer(handle: TimerHandle | undefined | null): void {
    if (!handle) return;
    const i = this.timers.findIndex((x) => x.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms, firing every timer that falls due, in order. */
  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  /** Fires timers due up to `until` (inclusive), then sets the time to `until`. */
  runUntil(until: number): void {
    for (;;) {
      const next = this.earliest();
      if (!next || next.due > until) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      if (next.due > this.t) this.t = next.due;
      next.fn();
    }
    if (until > this.t) this.t = until;
  }

  /** Fires timers until none is left or maxTimers have fired; returns how many fired. */
  runAll(maxTimers = 1_000_000): number {
    let fired = 0;
    while (fired < maxTimers) {
      const next = this.earliest();
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      if (next.due > this.t) this.t = next.due;
      next.fn();
      fired++;
    }
    return fired;
  }

  private earliest(): VirtualTimer | undefined {
    let best: VirtualTimer | undefined;
    for (const x of this.timers) {
      if (!best || x.due < best.due || (x.due === best.due && x.order < best.order)) best = x;
    }
    return best;
  }
}

export const realClock = new RealClock();
