// Fires callbacks at absolute deadlines, as precisely as the Clock allows: a coarse timer to
// shortly before a deadline (timers fire up to ~1 ms early or late), then a short bounded
// wait in which the clock is re-read, then the callback. On a virtual clock the timer is
// exact and no wait is needed.
//
// Every EdgeScheduler of one runtime shares one DeadlineQueue, which the runtime's owner makes
// and hands to each output (the pulse-shaper nodes: one per Node-RED). A short wait holds up the whole
// event loop, so with one wait per output, one output waiting for its edge would make
// another output's edge late (and a late falling edge is a longer pulse). The queue instead
// serves every deadline due within the wait in time order, in one session. A session that
// has held the loop for MAX_SESSION_MS yields a turn before it waits again, so a train of
// close edges cannot starve everything else.
//
// A deadline armed with `hold` (the falling edge of a pulse already at its on-time or duty
// limit) wakes HOLD_MARGIN_MS early instead, and a session waiting for it does not yield: its
// timer is kept ahead of work queued on the event loop, which would otherwise make the pulse
// longer than its limit. After it, the session yields as usual.

import { MAX_BLOCK_MS, type Clock, type TimerHandle } from "../clock";

/** How far before the deadline the coarse timer aims, on a clock with blockUntil. */
export const COARSE_MARGIN_MS = 2;
/** The same for a held deadline: it may stand up to this much work queued ahead of it. */
export const HOLD_MARGIN_MS = 10;
/** The longest a session of waits and edges may hold the event loop before it yields a turn. */
export const MAX_SESSION_MS = 4;

interface Entry {
  deadline: number;
  /** When the session for it starts: deadline minus its margin. */
  wake: number;
  hold: boolean;
  fn: () => void;
}

/** The deadlines of every output that shares it, served in time order (see the header). */
export class DeadlineQueue {
  /** By deadline; equal deadlines in the order they were armed. */
  private readonly entries: Entry[] = [];
  private timer: TimerHandle | undefined;
  private timerFor = Infinity;
  private running = false;
  private yielded = false;
  private readonly precise: boolean;

  constructor(private readonly clock: Clock) {
    this.precise = clock.blockUntil !== undefined;
  }

  entry(deadline: number, hold: boolean, fn: () => void): Entry {
    const margin = !this.precise ? 0 : hold ? HOLD_MARGIN_MS : Math.min(COARSE_MARGIN_MS, MAX_BLOCK_MS);
    return { deadline, wake: deadline - margin, hold, fn };
  }

  add(e: Entry): void {
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1]!.deadline > e.deadline) i--;
    this.entries.splice(i, 0, e);
    if (this.running || this.yielded) return;
    // Within its margin already: served now, as the caller would expect of a deadline this close.
    if (e.wake <= this.clock.now()) this.run();
    else this.arm();
  }

  remove(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
    if (this.entries.length === 0) {
      this.clock.clearTimer(this.timer);
      this.timer = undefined;
      this.timerFor = Infinity;
    }
  }

  private earliestWake(): number {
    let wake = Infinity;
    for (const e of this.entries) wake = Math.min(wake, e.wake);
    return wake;
  }

  private arm(): void {
    const wake = this.earliestWake();
    if (wake === Infinity) return;
    if (this.timer && this.timerFor <= wake) return;
    this.clock.clearTimer(this.timer);
    this.timerFor = wake;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerFor = Infinity;
      this.run();
    }, wake - this.clock.now());
  }

  private run(): void {
    this.running = true;
    const began = this.clock.now();
    try {
      for (;;) {
        const e = this.entries[0];
        if (!e) return;
        const now = this.clock.now();
        if (this.earliestWake() > now) break;
        const wait = e.deadline - now;
        if (wait > 0) {
          // Long enough: yield, unless the wait is for a held falling edge itself (and the session
          // is not longer than that hold's margin allows). Never for a chain of them: a saturated
          // burst at its duty limit would otherwise hold the loop for the whole burst.
          const forHold = e.hold && now - began < HOLD_MARGIN_MS + MAX_SESSION_MS;
          if (now - began + wait > MAX_SESSION_MS && !forHold) {
            this.yielded = true;
            this.clock.defer(() => {
              this.yielded = false;
              this.run();
            });
            return;
          }
          this.clock.blockUntil?.(e.deadline);
          if (this.clock.now() < e.deadline) continue; // the wait is bounded; wait again
        }
        this.entries.shift();
        e.fn();
      }
    } finally {
      this.running = false;
    }
    this.arm();
  }
}

/** One deadline at a time for one output: at() replaces it. */
export class EdgeScheduler {
  private current: Entry | undefined;
  constructor(private readonly queue: DeadlineQueue) {}

  /** The deadline armed, or undefined. */
  get armedFor(): number | undefined {
    return this.current?.deadline;
  }

  at(deadline: number, fn: () => void, hold = false): void {
    this.cancel();
    const entry = this.queue.entry(deadline, hold, () => {
      if (this.current === entry) this.current = undefined;
      fn();
    });
    this.current = entry;
    this.queue.add(entry); // may serve it at once (a deadline within its margin)
  }

  cancel(): void {
    if (this.current) this.queue.remove(this.current);
    this.current = undefined;
  }
}
