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

export interface SyncEstimate {
  /** master clock - listener clock, ms */
  offsetMs: number;
  /** the pseudo round trip: min up + min down, ms */
  rttMs: number;
  /** the offset is within +- this of the truth */
  uncertaintyMs: number;
  samples: number;
}

interface Sample {
  at: number;
  /** t1 - t0 for a ping */
  up?: number;
  /** t3 - t2 for a pong, or receive - send for an event frame */
  down?: number;
}

export const SYNC_WINDOW_MS = 30_000;
const MAX_SAMPLES = 2048;

export class ClockSync {
  private readonly recent: Sample[] = [];
  private pings = 0;

  constructor(private readonly windowMs = SYNC_WINDOW_MS) {}

  /** Adds one ping/pong exchange. Returns false for an impossible one. */
  add(t0: number, t1: number, t2: number, t3: number): boolean {
    if (![t0, t1, t2, t3].every(Number.isFinite) || t3 < t0 || t2 < t1 || t3 - t0 < t2 - t1) return false;
    this.push({ at: t3, up: t1 - t0, down: t3 - t2 });
    this.pings++;
    return true;
  }

  /** Adds a downstream-only sample: a frame the master sent at `masterSent` arrived at `localReceived`. */
  addDownstream(masterSent: number, localReceived: number): void {
    if (Number.isFinite(masterSent) && Number.isFinite(localReceived)) this.push({ at: localReceived, down: localReceived - masterSent });
  }

  get samples(): number {
    return this.recent.length;
  }

  estimate(): SyncEstimate | undefined {
    let minUp = Infinity;
    let minDown = Infinity;
    for (const s of this.recent) {
      if (s.up !== undefined && s.up < minUp) minUp = s.up;
      if (s.down !== undefined && s.down < minDown) minDown = s.down;
    }
    if (minUp === Infinity || minDown === Infinity) return undefined;
    const rtt = Math.max(0, minUp + minDown);
    return { offsetMs: (minUp - minDown) / 2, rttMs: rtt, uncertaintyMs: rtt / 2, samples: this.recent.length };
  }

  /** Converts a master-clock time to this listener's clock. */
  toLocal(masterTime: number): number | undefined {
    const e = this.estimate();
    return e ? masterTime - e.offsetMs : undefined;
  }

  /** After a reconnect (maybe to a restarted master) old samples say nothing. */
  reset(): void {
    this.recent.length = 0;
    this.pings = 0;
  }

  /** How long to wait before the next ping: quickly right after connecting, then steadily. */
  nextPingDelay(fastMs = 50, steadyMs = 100, fastCount = 20): number {
    return this.pings < fastCount ? fastMs : steadyMs;
  }

  private push(s: Sample): void {
    this.recent.push(s);
    const horizon = s.at - this.windowMs;
    while (this.recent.length > MAX_SAMPLES || (this.recent.length && this.recent[0]!.at < horizon)) this.recent.shift();
  }
}
