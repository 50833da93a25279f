// Clock estimate for a listener: the master's clock as a line over this listener's clock,
// offset and rate, because every crystal runs at its own rate (a Pi's, a few to tens of ppm,
// and it moves with temperature) and the monotonic clock NTP slews runs at yet another.
//
// A ping leaves at t0 (listener clock), the master receives it at t1 and answers at t2 (master
// clock), the pong arrives at t3 (listener clock). With offset = master clock - listener clock:
//   up = t1 - t0 = offset + up delay       down = t3 - t2 = -offset + down delay
// Delays only ever add. So the samples that came quickest say the most:
//  1. Minimum filters pick them. Time is cut into 1 s bins; each bin keeps its quickest up and
//     its quickest down sample, separately (each direction only needs one quick trip, not
//     both in the same exchange). Event frames carry the master's send time: free down samples.
//  2. The rate: the one under which the quickest up trips and the quickest down trips of the
//     window (up to 120 s), each detrended, leave the widest gap between them. Each direction's
//     lower envelope is flat at the true rate; a wrong rate tilts both and narrows the gap. It
//     is taken once it is said well: at least 10 bins over 6 s, and the envelope's own spread
//     (how far its second quickest trip sits above its quickest) over the span under 5 ppm.
//     Until then, the last rate said well (0 at first): a few noisy pings seconds apart would
//     say hundreds of ppm.
//  3. The offset: the middle of that gap over the last 30 s, as the minimum filters always did,
//     now with the rate taken out, so it is the offset now and not the one of 15 s ago. A
//     weighted least-squares fit of each bin's offset ((up - down) / 2, weighted by how close
//     its round trip is to the quickest) gives a first guess of the rate and the fit's errors.
//  4. Old bins that no longer fit a line are dropped, in the spirit of chrony's regression: no
//     line may need a negative delay (the gap must stay >= 0), and the residuals of the trusted
//     bins must change sign often enough (a runs test); otherwise the oldest quarter goes,
//     again until the rest fits. A rate that changed (the crystal warmed, NTP began a slew)
//     so costs the window, not the estimate.
//  5. Converting an event's `at` uses the offset and the rate at that instant. While no
//     sample comes (holdover), the line goes on at the last rate.
// The uncertainty is the delay bound (half the window's quickest round trip: the most a path
// that is slower one way than the other can hide, for NTP and PTP alike), plus three standard
// errors of the fit at that instant, plus, once samples stop, what a wandering rate can add
// since the last one. Asymmetry of the paths' quickest delays biases every two-way method by
// half their difference; only the bound says so, nothing can measure it.
//
// A sample is evidence, not truth: on an open broker anybody can publish a pong. Once the
// estimate is settled, a sample whose offset interval does not overlap the line's (plus
// STEP_MARGIN_MS) is held back; STEP_CONFIRM such samples in a row that agree with each other
// are a real step of a clock (the master's was set), and the estimate restarts from them.

export interface SyncEstimate {
  /** master clock - listener clock at the instant asked for (the last sample's, or now), ms */
  offsetMs: number;
  /** the window's quickest pseudo round trip (min up + min down of one bin), ms */
  rttMs: number;
  /** the offset is within +- this of the truth: the delay bound, the fit's error, and what holdover adds */
  uncertaintyMs: number;
  /** the master's clock runs this much faster than this listener's, ppm */
  ratePpm: number;
  /** whether that rate was said well by the samples (else it is 0, or the last one said well) */
  rateSaid: boolean;
  /** since the newest sample (holdover), ms */
  ageMs: number;
  /** the span of the bins the fit uses, ms */
  windowMs: number;
  /** samples in the window */
  samples: number;
}

/** The longest the fit looks back. */
export const SYNC_WINDOW_MS = 120_000;
/** Each bin keeps its quickest up and its quickest down sample. */
export const BIN_MS = 1000;
/** The longest a steady listener waits between pings. */
export const DEFAULT_MAX_PING_MS = 2000;
/** An estimate that moved less than this since the last ping is steady. */
export const STEADY_WITHIN_MS = 0.05;
/** Slack beyond both uncertainties before a sample is said to disagree with a settled estimate. */
export const STEP_MARGIN_MS = 5;
/** Disagreeing samples in a row, agreeing with each other, that make a step of the clock. */
export const STEP_CONFIRM = 3;
/** Ping samples after which an estimate is settled (and samples that disagree with it are held back). */
export const SETTLED_AFTER = 5;
/** A round trip longer than this says nothing useful about the offset. */
export const MAX_RTT_MS = 10_000;
/** Holdover: how fast a rate may wander (ppm per second; a Pi's crystal warming is well under this), and a floor for a rate error. */
export const WANDER_PPM_PER_S = 0.1;
export const RATE_FLOOR_PPM = 0.5;
/** A rate is taken from at least this many bins over at least this span, said within MAX_RATE_SE (5 ppm). */
const MIN_RATE_SPAN_MS = 6000;
const MIN_RATE_BINS = 10;
const MAX_RATE_SE = 5e-6;
/** Pings do not back off before a rate is said well, unless this many could not say it. */
export const RATE_PATIENCE = 300;
/** Over a shorter span the feasibility test (gap >= 0) takes the last rate. */
const MIN_GAP_SPAN_MS = 4000;
/** No clock runs this far off (a crystal's 100 ppm and NTP's largest slew, 500 ppm, with room); a fit that says so is noise. */
const MAX_RATE = 2e-3;
/** The offset is the middle of the detrended quickest trips over this last stretch: long enough for many samples, short enough that a wandering rate bends it little. */
export const OFFSET_WINDOW_MS = 30_000;
/** A bin's error floor in the weights, ms: two bins both at the quickest are not infinitely sure. */
const WEIGHT_FLOOR_MS = 0.02;
/** The runs test needs this many trusted bins, and the fit keeps at least this many. */
const MIN_FIT_BINS = 8;

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

interface Bin {
  key: number;
  /** quickest up and down samples, moved to the bin's middle at the rate known when they came */
  up: number;
  down: number;
  n: number;
}

/** offset(t) = a + b (t - t0), within the fit's errors. */
interface Fit {
  a: number;
  b: number;
  t0: number;
  /** weighted mean time, sum of weights, weighted spread of times: the fit's standard error at any t */
  tc: number;
  sw: number;
  sxx: number;
  /** variance per unit weight */
  s2: number;
  rtt: number;
  /** the widest gap of the detrended quickest trips: below 0, no line fits these bins with delays >= 0 */
  gap: number;
  /** whether this fit's rate was said well (else it is the last one that was) */
  said: boolean;
  last: number;
  span: number;
}

export class ClockSync {
  private bins: Bin[] = [];
  private pings = 0;
  private fitted: Fit | undefined | null = null;
  private rate = 0;
  /** whether a rate was said well since the last reset: until then pings do not back off */
  private rateSaid = false;
  /** the line the last ping's cadence decision saw, to tell whether the estimate holds */
  private lastLine: Fit | undefined;
  private steadyDelay = 0;
  /** Reconnected, waiting for the first pong to tell whether the held-over line still holds. */
  private rejoining = false;
  /** Samples that disagreed with the settled estimate, in a row, waiting for confirmation. */
  private suspects: Exchange[] = [];
  /** Samples held back (never used, or used only once confirmed) and steps taken, since the start. */
  held = 0;
  steps = 0;

  /** `now`: this listener's clock, so that an estimate knows its age; without it, estimates are at the newest sample. */
  constructor(
    private readonly windowMs = SYNC_WINDOW_MS,
    private readonly now?: () => number,
  ) {}

  /**
   * Adds one ping/pong exchange: "taken", "held" back as disagreeing with the settled
   * estimate (until others confirm it), or "refused" as impossible.
   */
  add(t0: number, t1: number, t2: number, t3: number): "taken" | "held" | "refused" {
    if (![t0, t1, t2, t3].every(Number.isFinite) || t3 < t0 || t2 < t1 || t3 - t0 < t2 - t1 || t3 - t0 > MAX_RTT_MS) return "refused";
    const x = { t0, t1, t2, t3 };
    const s = offsetOf(x);
    const mid = (t0 + t3) / 2;
    if (this.rejoining) {
      // The first sample after a reconnect: the line held over if it agrees, else a new start
      // (another master, or one whose clock was set while away).
      this.rejoining = false;
      const held = this.fit();
      if (!held || Math.abs(s.offset - at(held, mid)) > this.uncertainty(held, mid) + s.within + STEP_MARGIN_MS) {
        if (held) this.steps++;
        this.reset();
      }
      this.take(x);
      return "taken";
    }
    const f = this.pings >= SETTLED_AFTER ? this.fit() : undefined;
    if (f && Math.abs(s.offset - at(f, mid)) > this.uncertainty(f, mid) + s.within + STEP_MARGIN_MS) {
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
    const f = this.pings >= SETTLED_AFTER ? this.fit() : undefined;
    if (f && masterSent - localReceived > at(f, localReceived) + this.uncertainty(f, localReceived) + STEP_MARGIN_MS) {
      this.held++;
      return;
    }
    this.put(localReceived, undefined, localReceived - masterSent);
  }

  private take(x: Exchange): void {
    this.pings++;
    this.put((x.t0 + x.t3) / 2, x.t1 - x.t0, x.t3 - x.t2);
  }

  /** Keeps a sample in its bin if it is the bin's quickest (moved to the bin's middle at the known rate). */
  private put(t: number, up: number | undefined, down: number): void {
    const key = Math.floor(t / BIN_MS);
    let bin = this.bins[this.bins.length - 1];
    if (!bin || bin.key < key) {
      bin = { key, up: Infinity, down: Infinity, n: 0 };
      this.bins.push(bin);
    } else if (bin.key > key) {
      // A sample from an earlier bin (rare: a slow pong). Look back a little; older than that, it is only counted out.
      bin = this.bins.slice(-8).find((b) => b.key === key);
      if (!bin) return;
    }
    bin.n++;
    const shift = this.rate * (t - (key + 0.5) * BIN_MS);
    let changed = false;
    if (up !== undefined && up - shift < bin.up) {
      bin.up = up - shift;
      changed = true;
    }
    if (down + shift < bin.down) {
      bin.down = down + shift;
      changed = true;
    }
    // Forget bins older than the window (measured from the newest).
    const horizon = key - Math.ceil(this.windowMs / BIN_MS);
    let drop = 0;
    while (drop < this.bins.length && this.bins[drop]!.key < horizon) drop++;
    if (drop) {
      this.bins.splice(0, drop);
      changed = true;
    }
    if (changed) this.fitted = null;
  }

  /** Samples within the window. */
  get samples(): number {
    let n = 0;
    for (const b of this.bins) n += b.n;
    return n;
  }

  /**
   * The line through the trusted bins; bins older than the part that still fits one are
   * dropped for good. Cached until a sample changes a bin.
   */
  private fit(): Fit | undefined {
    if (this.fitted !== null) return this.fitted;
    const full = this.bins.filter((b) => Number.isFinite(b.up) && Number.isFinite(b.down));
    if (!full.length) return (this.fitted = undefined);
    let lo = 0;
    let f: Fit;
    for (;;) {
      const part = full.slice(lo);
      // Each direction's quickest trips come from every bin, also those with only event frames (down).
      const from = part[0]!.key;
      f = this.line(
        part,
        this.bins.filter((b) => b.key >= from),
      );
      // A line fits if no bin needs a negative delay under it, and its residuals change sign often enough.
      if (part.length === 1 || (f.gap >= 0 && (part.length < MIN_FIT_BINS * 2 || runsFit(part, f)))) break;
      lo += Math.max(1, Math.floor(part.length / 4));
    }
    if (lo > 0) {
      const oldest = full[lo]!.key;
      this.bins = this.bins.filter((b) => b.key >= oldest);
    }
    this.rate = f.b;
    if (f.said) this.rateSaid = true;
    return (this.fitted = f);
  }

  /**
   * The line through the bins (steps 2 and 3 above). `part` are the bins with both an up and a
   * down sample (for the least-squares fit), `all` every bin since the oldest of them (the
   * envelopes: event frames add down samples to bins without a ping).
   */
  private line(part: Bin[], all: Bin[]): Fit {
    let rtt = Infinity;
    for (const x of part) rtt = Math.min(rtt, x.up + x.down);
    const t0 = mid(part[part.length - 1]!);
    // A bin's offset is wrong by about uniform +- (its excess + a typical excess) / 2: the
    // window's quickest bin is not exact either. The typical excess is the median one.
    const excesses = part.map((x) => x.up + x.down - rtt).sort((p1, p2) => p1 - p2);
    const typical = Math.max(WEIGHT_FLOOR_MS, excesses[excesses.length >> 1]!);
    const weight = (x: Bin) => {
      const excess = x.up + x.down - rtt;
      return 1 / (excess * excess + typical * typical);
    };
    let sw = 0;
    let st = 0;
    let sy = 0;
    for (const x of part) {
      const w = weight(x);
      sw += w;
      st += w * (mid(x) - t0);
      sy += w * ((x.up - x.down) / 2);
    }
    const tc = st / sw;
    const yc = sy / sw;
    let sxx = 0;
    let sxy = 0;
    for (const x of part) {
      const w = weight(x);
      const dt = mid(x) - t0 - tc;
      sxx += w * dt * dt;
      sxy += w * dt * ((x.up - x.down) / 2 - yc);
    }
    const span = mid(part[part.length - 1]!) - mid(part[0]!);
    const fitted = span >= MIN_RATE_SPAN_MS && sxx > 0;
    // The rate the quick samples say, if they say it well; else the last one said well.
    let b = this.rate;
    let said = false;
    const lp = span >= MIN_GAP_SPAN_MS && sxx > 0 ? widestGap(all, t0, clampRate(sxy / sxx)) : this.rate;
    if (fitted) {
      // How well the envelope says the rate: its lowest point in each direction is about as far
      // from the floor as from the next lowest, and a tilt of that much over the span moves the
      // rate by spread / span (twice: each end).
      const se = (2 * envelopeSpread(all, t0, lp)) / span;
      said = part.length >= MIN_RATE_BINS && se <= MAX_RATE_SE;
      if (said) b = lp;
    }
    // Whether any line fits, at the rate that fits best, said well or not.
    const gap = envelopeGap(all, t0, lp);
    // Variance per unit weight: a bin's error is about uniform within +- excess / 2 (1/12 per
    // unit weight), or what the residuals say if they say more (a rate that wanders in the window).
    let rss = 0;
    for (const x of part) {
      const r = (x.up - x.down) / 2 - (yc + b * (mid(x) - t0 - tc));
      rss += weight(x) * r * r;
    }
    const s2 = Math.max(1 / 12, part.length > 2 ? rss / (part.length - 2) : 0);
    let up = Infinity;
    let down = Infinity;
    for (const x of all) {
      const dt = mid(x) - t0;
      if (dt < -OFFSET_WINDOW_MS) continue;
      up = Math.min(up, x.up - b * dt);
      down = Math.min(down, x.down + b * dt);
    }
    return { a: (up - down) / 2, b, t0, tc: tc + t0, sw, sxx: fitted ? sxx : 0, s2, rtt, gap, said, last: t0 + BIN_MS / 2, span };
  }

  /** The bound on the offset at local time t: delay bound, fit error, holdover. */
  private uncertainty(f: Fit, t: number): number {
    const dt = t - f.tc;
    const se = Math.sqrt(f.s2 * (1 / f.sw + (f.sxx > 0 ? (dt * dt) / f.sxx : 0)));
    const age = Math.max(0, t - f.last);
    const wander = (WANDER_PPM_PER_S * 1e-9 * age * age) / 2 + RATE_FLOOR_PPM * 1e-6 * age;
    return Math.max(0, f.rtt) / 2 + 3 * se + wander;
  }

  /** The estimate at local time `t` (default: now if this sync knows its clock, else the newest sample). */
  estimate(t?: number): SyncEstimate | undefined {
    if (this.rejoining) return undefined;
    const f = this.fit();
    if (!f) return undefined;
    const when = t ?? this.now?.() ?? f.last;
    return {
      offsetMs: at(f, when),
      rttMs: Math.max(0, f.rtt),
      uncertaintyMs: this.uncertainty(f, when),
      ratePpm: f.b * 1e6,
      rateSaid: this.rateSaid,
      ageMs: Math.max(0, when - f.last),
      windowMs: f.span + BIN_MS,
      samples: this.samples,
    };
  }

  /** Converts a master-clock time to this listener's clock, with the offset and the rate at that instant. */
  toLocal(masterTime: number): number | undefined {
    if (this.rejoining) return undefined;
    const f = this.fit();
    // local + a + b (local - t0) = master
    return f ? (masterTime - f.a + f.b * f.t0) / (1 + f.b) : undefined;
  }

  /**
   * A new connection to the master: the line is held over, but says nothing (no estimate, no
   * conversion) until the first pong on the new connection agrees with it; one that does not
   * starts the estimate afresh. So a Pi back from a Wi-Fi stall has its rate from its first
   * pong, and one that came back to another master (or one whose clock was set) never
   * converts with the old line.
   */
  rejoined(): void {
    this.suspects = [];
    this.rejoining = this.bins.length > 0;
  }

  /** Forgets every sample: the estimate starts afresh. */
  reset(): void {
    this.rejoining = false;
    this.bins = [];
    this.pings = 0;
    this.rate = 0;
    this.rateSaid = false;
    this.lastLine = undefined;
    this.steadyDelay = 0;
    this.fitted = null;
    this.suspects = [];
  }

  /**
   * How long to wait before the next ping: quickly right after connecting (fastCount pings
   * fastMs apart), then every steadyMs; once a rate is said well (or RATE_PATIENCE pings could
   * not say it), while the line holds within STEADY_WITHIN_MS from one ping to the next (the
   * old line's offset now against the new one's), each wait doubles, up to maxMs. A master with 1,000 listeners takes 10,000 pings a second at a
   * fixed 100 ms, about 500 once they are steady. Event frames add downstream samples, so
   * fewer pings cost little precision; any move of the line brings the cadence back to steadyMs.
   */
  nextPingDelay(maxMs = DEFAULT_MAX_PING_MS, fastMs = 50, steadyMs = 100, fastCount = 20): number {
    // Fewer than fastCount pings, a step waiting for confirmation, or a line held over a reconnect: ask again soon.
    if (this.pings < fastCount || this.suspects.length > 0 || this.rejoining) return fastMs;
    const f = this.fit();
    // Steady once the line holds, and its rate has been said well (or RATE_PATIENCE pings could not say it: a noisy path).
    const held =
      f !== undefined &&
      this.lastLine !== undefined &&
      Math.abs(at(f, f.last) - at(this.lastLine, f.last)) <= STEADY_WITHIN_MS &&
      (this.rateSaid || this.pings >= RATE_PATIENCE);
    this.lastLine = f;
    this.steadyDelay = held ? Math.min(maxMs, Math.max(steadyMs, this.steadyDelay * 2)) : steadyMs;
    return this.steadyDelay;
  }
}

function at(f: Fit, t: number): number {
  return f.a + f.b * (t - f.t0);
}

/** A bin's middle, local ms. */
function mid(b: Bin): number {
  return (b.key + 0.5) * BIN_MS;
}

function clampRate(r: number): number {
  return Math.max(-MAX_RATE, Math.min(MAX_RATE, r));
}

/** The quickest up plus the quickest down trip of the bins, each detrended at `rate`. */
function envelopeGap(part: Bin[], t0: number, rate: number): number {
  let up = Infinity;
  let down = Infinity;
  for (const x of part) {
    const dt = mid(x) - t0;
    up = Math.min(up, x.up - rate * dt);
    down = Math.min(down, x.down + rate * dt);
  }
  return up + down;
}

/**
 * How far the second quickest up and down trips (each detrended at `rate`) sit above the
 * quickest, summed: the quickest is about that far above the floor too.
 */
function envelopeSpread(part: Bin[], t0: number, rate: number): number {
  const up = [Infinity, Infinity];
  const down = [Infinity, Infinity];
  const keep = (two: number[], v: number) => {
    if (v < two[0]!) {
      two[1] = two[0]!;
      two[0] = v;
    } else if (v < two[1]!) two[1] = v;
  };
  for (const x of part) {
    const dt = mid(x) - t0;
    if (Number.isFinite(x.up)) keep(up, x.up - rate * dt);
    keep(down, x.down + rate * dt);
  }
  return up[1]! - up[0]! + (down[1]! - down[0]!);
}

/**
 * The rate under which the detrended quickest up and quickest down trips of the bins leave the
 * widest gap (their sum, the pseudo round trip, is largest). The gap is concave in the rate
 * (a sum of two minima of lines), so a golden-section search finds it, from a bracket around
 * the least-squares rate that widens while the best lies at its edge.
 */
function widestGap(part: Bin[], t0: number, guess: number): number {
  const gap = (r: number) => envelopeGap(part, t0, r);
  let half = 20e-6;
  while (half < MAX_RATE && (gap(guess + half) > gap(guess + half * 0.99) || gap(guess - half) > gap(guess - half * 0.99))) half *= 4;
  let lo = clampRate(guess - half);
  let hi = clampRate(guess + half);
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = hi - g * (hi - lo);
  let x2 = lo + g * (hi - lo);
  let f1 = gap(x1);
  let f2 = gap(x2);
  while (hi - lo > 1e-9) {
    if (f1 < f2) {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = gap(x2);
    } else {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = gap(x1);
    }
  }
  return (lo + hi) / 2;
}

/**
 * The runs test: the signs of the trusted bins' residuals (the quicker half), in time order,
 * change often enough for noise. A line that no longer fits leaves long runs of one sign.
 */
function runsFit(part: Bin[], f: Fit): boolean {
  const excess = part.map((b) => b.up + b.down - f.rtt).sort((x, y) => x - y);
  const cut = excess[excess.length >> 1]!;
  let n = 0;
  let runs = 0;
  let sign = 0;
  for (const b of part) {
    if (b.up + b.down - f.rtt > cut) continue;
    const r = (b.up - b.down) / 2 - at(f, mid(b));
    const s = r >= 0 ? 1 : -1;
    n++;
    if (s !== sign) runs++;
    sign = s;
  }
  if (n < MIN_FIT_BINS) return true;
  // Random signs make (n + 1) / 2 runs, with a spread of about sqrt(n - 1) / 2; fewer than 2.5 spreads below is no longer noise.
  return runs >= (n + 1) / 2 - 2.5 * (Math.sqrt(n - 1) / 2);
}
