// Hands a listener's events on in slices, a turn of the event loop each. A frame of 2,000
// events sent on in one loop would queue 2,000 deliveries that Node-RED then runs back to
// back, and a pulse-shaper's falling-edge timer waits behind all of them (a 50 ms pulse
// measured 176-294 ms at the pin). The first slice goes at once, so a small frame is as
// prompt as before. What waits is bounded; beyond that, events are dropped and counted.

import type { Clock } from "../clock";

/** Events handed on per turn: each costs about 0.1 ms of Node-RED work downstream (filter, shaper), so a turn stays near 2-3 ms. */
export const SLICE = 25;
/** Events waiting at most (10 full frames); more are dropped and counted. */
export const MAX_WAITING = 20_000;
/** Slices or frames not counted in the longest stall: the first ones run while V8 still compiles the code. */
export const WARM_UP = 20;

export class Slices<T> {
  private items: T[] = [];
  private head = 0;
  private scheduled = false;
  /** Events dropped because too many were waiting. */
  dropped = 0;
  /** The longest one slice took to hand on, ms, after the first WARM_UP (while the code is still being compiled). */
  longestMs = 0;
  private slicesRun = 0;

  constructor(
    private readonly clock: Clock,
    private readonly handOn: (item: T) => void,
    private readonly slice = SLICE,
    private readonly max = MAX_WAITING,
  ) {}

  get waiting(): number {
    return this.items.length - this.head;
  }

  push(items: readonly T[]): void {
    const room = Math.max(0, this.max - this.waiting);
    if (items.length > room) this.dropped += items.length - room;
    for (const item of items.length > room ? items.slice(0, room) : items) this.items.push(item);
    if (!this.scheduled) this.run();
  }

  /** Drops whatever waits (the node is closing). */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  private run(): void {
    this.scheduled = false;
    const began = this.clock.now();
    const end = Math.min(this.items.length, this.head + this.slice);
    while (this.head < end) this.handOn(this.items[this.head++]!);
    if (++this.slicesRun > WARM_UP) this.longestMs = Math.max(this.longestMs, this.clock.now() - began);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      return;
    }
    if (this.head > 4096) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.scheduled = true;
    this.clock.defer(() => this.run());
  }
}
