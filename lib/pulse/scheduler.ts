// Fires one callback at an absolute deadline, as precisely as the Clock allows: a coarse
// timer to shortly before the deadline (timers fire up to ~1 ms early or late), then a
// short bounded wait in which the clock is re-read, then the callback. On a virtual clock
// the timer is exact and no wait is needed. One deadline at a time: at() replaces it.

import { MAX_BLOCK_MS, type Clock, type TimerHandle } from "../clock";

/** How far before the deadline the coarse timer aims, on a clock with blockUntil. */
export const COARSE_MARGIN_MS = 2;

export class EdgeScheduler {
  private timer: TimerHandle | undefined;
  private deadline = 0;
  private fn: (() => void) | undefined;
  private readonly margin: number;

  constructor(private readonly clock: Clock) {
    this.margin = clock.blockUntil ? Math.min(COARSE_MARGIN_MS, MAX_BLOCK_MS) : 0;
  }

  /** The deadline armed, or undefined. */
  get armedFor(): number | undefined {
    return this.fn ? this.deadline : undefined;
  }

  at(deadline: number, fn: () => void): void {
    this.cancel();
    this.deadline = deadline;
    this.fn = fn;
    this.arm();
  }

  cancel(): void {
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.fn = undefined;
  }

  private arm(): void {
    this.timer = undefined;
    const wait = this.deadline - this.clock.now();
    if (wait > this.margin) {
      this.timer = this.clock.setTimer(() => this.arm(), wait - this.margin);
      return;
    }
    if (wait > 0) this.clock.blockUntil?.(this.deadline);
    const fn = this.fn;
    this.fn = undefined;
    fn?.();
  }
}
