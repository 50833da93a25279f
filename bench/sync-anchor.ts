// The anchor for bench:sync's drift table: the listener's clock estimate as it was before it
// fitted a rate (lib/bus/clock-sync.ts until 2026-12), kept unchanged so that every run measures
// the new estimate against it on the same samples. Not used by the product.
//
// NTP-style clock offset estimation for a listener. A ping leaves at t0 (listener clock),
// the master receives it at t1 and answers at t2 (master clock), the pong arrives at t3
// (listener clock). With offset = master clock - listener clock:
//   t1 - t0 = offset + up       t3 - t2 = -offset + down
// Network jitter only ever adds delay. Classic NTP keeps the exchange with the smallest
// round trip; this keeps the smallest `up` and the smallest `down` of the recent window
// separately, which converges much faster under jitter (each direction only needs one
// quick trip, not both in the same exchange): offset = (min(t1-t0) - min(t3-t2)) / 2, within
// +- (min(t1-t0) + min(t3-t2)) / 2. Downstream samples also come from event frames that
// carry the master's send time. The window is short (seconds), so clock drift inside it
// is negligible.
//
// A sample is evidence, not truth: on an open broker anybody can publish a pong. Once the
// estimate is settled, a sample whose offset interval does not overlap the estimate's (plus
// STEP_MARGIN_MS) is held back; STEP_CONFIRM such samples in a row that agree with each other
// are a real step of a clock (the master's was set), and the estimate restarts from them.

export interface SyncEstimate {
  /** master clock - listener clock, ms */
  offsetMs: number;
  /** the pseudo round trip: min up + min down, ms */
  rttMs: number;
  /** the offset is within +- this of the truth */
  uncertaintyMs: number;
  samples: number;
}

export const SYNC_WINDOW_MS = 30_000;
/** The longest a steady listener waits between pings. */
export const DEFAULT_MAX_PING_MS = 2000;
/** An estimate that moved less than this since the last ping is steady. */
export const STEADY_WITHIN_MS = 0.05;
/** Slack beyond both uncertainties before a sample is said to disagree with a settled estimate (clock drift over the window included). */
export const STEP_MARGIN_MS = 5;
/** Disagreeing samples in a row, agreeing with each other, that make a step of the clock. */
export const STEP_CONFIRM = 3;
/** Ping samples after which an estimate is settled (and samples that disagree with it are held back). */
export const SETTLED_AFTER = 5;
/** A round trip longer than this says nothing useful about the offset. */
export const MAX_RTT_MS = 10_000;

interface Exchange {
  t0: number;
  t1: number;
  t2: number;
  t3: number;
}

/** The offset an exchange says, and within what. */
function offsetOf(x: Exchange): { offset: number; within: number } {
  return { offset: (x.t1 - x.t0 - (x.t3 - x.t2)) / 2, within: (x.t3 - x.t0 - (x.t2 - x.t1)) / 2 };
}

/**
 * The minimum of the values pushed in the last windowMs, in O(1) amortised per push and O(1)
 * per read (a monotonic deque): the listener converts every event's `at` with the estimate,
 * so reading it must not cost a scan of every sample at 50,000 events a second.
 */
class WindowMin {
  private readonly at: number[] = [];
  private readonly value: number[] = [];
  private head = 0;

  push(at: number, value: number): void {
    while (this.value.length > this.head && this.value[this.value.length - 1]! >= value) {
      this.value.pop();
      this.at.pop();
    }
    this.at.push(at);
    this.value.push(value);
  }

  expire(horizon: number): void {
    while (this.head < this.at.length && this.at[this.head]! < horizon) this.head++;
    if (this.head > 1024 && this.head * 2 > this.at.length) {
      this.at.splice(0, this.head);
      this.value.splice(0, this.head);
      this.head = 0;
    }
  }

  get min(): number | undefined {
    return this.head < this.value.length ? this.value[this.head] : undefined;
  }

  clear(): void {
    this.at.length = this.value.length = this.head = 0;
  }
}

export class ClockSync {
  private readonly up = new WindowMin();
  private readonly down = new WindowMin();
  /** receive times of the samples in the window, to count them */
  private readonly times: number[] = [];
  private timesHead = 0;
  private pings = 0;
  private lastOffset: number | undefined;
  private steadyDelay = 0;
  private cached: SyncEstimate | undefined | null = null;
  /** Samples that disagreed with the settled estimate, in a row, waiting for confirmation. */
  private suspects: Exchange[] = [];
  /** Samples held back (never used, or used only once confirmed) and steps taken, since the start. */
  held = 0;
  steps = 0;

  constructor(private readonly windowMs = SYNC_WINDOW_MS) {}

  /**
   * Adds one ping/pong exchange: "taken", "held" back as disagreeing with the settled
   * estimate (until others confirm it), or "refused" as impossible.
   */
  add(t0: number, t1: number, t2: number, t3: number): "taken" | "held" | "refused" {
    if (![t0, t1, t2, t3].every(Number.isFinite) || t3 < t0 || t2 < t1 || t3 - t0 < t2 - t1 || t3 - t0 > MAX_RTT_MS) return "refused";
    const x = { t0, t1, t2, t3 };
    const e = this.pings >= SETTLED_AFTER ? this.estimate() : undefined;
    const s = offsetOf(x);
    if (e && Math.abs(s.offset - e.offsetMs) > e.uncertaintyMs + s.within + STEP_MARGIN_MS) {
      this.held++;
      const last = this.suspects[this.suspects.length - 1];
      const l = last && offsetOf(last);
      if (l && Math.abs(s.offset - l.offset) > l.within + s.within + STEP_MARGIN_MS) this.suspects = [];
      this.suspects.push(x);
      if (this.suspects.length < STEP_CONFIRM) return "held";
      // They agree with each other and not with the past: a clock was stepped. Start afresh from them.
      const confirmed = this.suspects;
      this.reset();
      this.steps++;
      for (const c of confirmed) this.take(c);
      return "taken";
    }
    this.suspects = [];
    this.take(x);
    return "taken";
  }

  /**
   * Adds a downstream-only sample: a frame the master sent at `masterSent` arrived at
   * `localReceived`. It bounds the offset from below only; one that a settled estimate says is
   * impossible (a frame from the future) is held back and never used.
   */
  addDownstream(masterSent: number, localReceived: number): void {
    if (!Number.isFinite(masterSent) || !Number.isFinite(localReceived)) return;
    const e = this.pings >= SETTLED_AFTER ? this.estimate() : undefined;
    if (e && masterSent - localReceived > e.offsetMs + e.uncertaintyMs + STEP_MARGIN_MS) {
      this.held++;
      return;
    }
    this.down.push(localReceived, localReceived - masterSent);
    this.added(localReceived);
  }

  private take(x: Exchange): void {
    this.up.push(x.t3, x.t1 - x.t0);
    this.down.push(x.t3, x.t3 - x.t2);
    this.pings++;
    this.added(x.t3);
  }

  /** Samples within the window. */
  get samples(): number {
    return this.times.length - this.timesHead;
  }

  estimate(): SyncEstimate | undefined {
    if (this.cached !== null) return this.cached;
    const minUp = this.up.min;
    const minDown = this.down.min;
    if (minUp === undefined || minDown === undefined) return (this.cached = undefined);
    const rtt = Math.max(0, minUp + minDown);
    return (this.cached = { offsetMs: (minUp - minDown) / 2, rttMs: rtt, uncertaintyMs: rtt / 2, samples: this.samples });
  }

  /** Converts a master-clock time to this listener's clock. */
  toLocal(masterTime: number): number | undefined {
    const e = this.estimate();
    return e ? masterTime - e.offsetMs : undefined;
  }

  /** After a reconnect (maybe to a restarted master) old samples say nothing. */
  reset(): void {
    this.up.clear();
    this.down.clear();
    this.times.length = this.timesHead = 0;
    this.pings = 0;
    this.lastOffset = undefined;
    this.steadyDelay = 0;
    this.cached = null;
    this.suspects = [];
  }

  /**
   * How long to wait before the next ping: quickly right after connecting (fastCount pings
   * fastMs apart), then every steadyMs; while the estimate holds within STEADY_WITHIN_MS from
   * one ping to the next, each wait doubles, up to maxMs. A master with 1,000 listeners
   * takes 10,000 pings a second at a fixed 100 ms, about 500 once they are steady. The
   * estimate keeps the window's best samples, and event frames add downstream ones, so fewer
   * pings cost little precision; any move of the estimate brings the cadence back to steadyMs.
   */
  nextPingDelay(maxMs = DEFAULT_MAX_PING_MS, fastMs = 50, steadyMs = 100, fastCount = 20): number {
    // Fewer than fastCount pings, or a step waiting for confirmation: ask again soon.
    if (this.pings < fastCount || this.suspects.length > 0) return fastMs;
    const offset = this.estimate()?.offsetMs;
    const held = offset !== undefined && this.lastOffset !== undefined && Math.abs(offset - this.lastOffset) <= STEADY_WITHIN_MS;
    this.lastOffset = offset;
    this.steadyDelay = held ? Math.min(maxMs, Math.max(steadyMs, this.steadyDelay * 2)) : steadyMs;
    return this.steadyDelay;
  }

  private added(at: number): void {
    this.times.push(at);
    const horizon = at - this.windowMs;
    this.up.expire(horizon);
    this.down.expire(horizon);
    while (this.timesHead < this.times.length && this.times[this.timesHead]! < horizon) this.timesHead++;
    if (this.timesHead > 4096 && this.timesHead * 2 > this.times.length) {
      this.times.splice(0, this.timesHead);
      this.timesHead = 0;
    }
    this.cached = null;
  }
}
