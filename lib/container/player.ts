// Plays a .dc container on a Clock: ticks 1..max tick at tick_interval_ms / speed, glyphs
// sharing a tick in file order, empty ticks taking their time, looping, and each glyph
// emitted `lead` ms before it is due with `at` = its due time.
//
// Timing is an absolute schedule: the due time of every tick is computed from one anchor
// (anchorTime at tick position anchorG), never by adding intervals to late timers, so an
// hour of play does not drift. Pause, resume and speed changes move the anchor so that
// the playhead keeps its place. Only ticks that hold glyphs get a timer.

import type { Clock, TimerHandle } from "../clock";
import { DEFAULT_TICK_INTERVAL_MS, type Container, type Glyph, type RuntimeSpeed } from "./format";

export type PlayerState = "stopped" | "playing" | "paused" | "finished";

export interface PlayedGlyph {
  container: string;
  tick: number;
  /** 0 on the first pass through the container, 1 after the first wrap, ... */
  loop: number;
  /** Increases by one per emitted glyph for the life of the player. */
  seq: number;
  /** Wall-clock epoch ms at which the glyph is meant to fire. */
  at: number;
  event: string;
  /** A copy: downstream nodes may change it without touching the container. */
  payload: Record<string, unknown>;
}

export interface PlayerOptions {
  clock: Clock;
  onGlyph: (glyph: PlayedGlyph) => void;
  onStateChange?: (state: PlayerState) => void;
  /** Emit each glyph this many ms before it is due. Default 50. */
  leadMs?: number;
  /** The speed factor that `runtime_speed: "accelerated"` means. Default 10. */
  accelFactor?: number;
  /** A glyph due longer ago than this (a stalled process) is skipped and counted, not sent late. Default 1000. */
  maxLagMs?: number;
  /** Glyphs emitted per timer callback before yielding to the event loop. Default 10000. */
  maxBatch?: number;
}

export const DEFAULT_LEAD_MS = 50;
export const DEFAULT_ACCEL_FACTOR = 10;
export const MAX_SPEED = 1_000_000;

/** The speed factor a container asks for, given the node's acceleration factor. */
export function speedOf(spec: RuntimeSpeed | undefined, accelFactor: number): number {
  if (spec === undefined || spec === "realtime") return 1;
  if (spec === "accelerated") return accelFactor;
  return spec;
}

/** A container compiled for playing: the ticks that hold glyphs, in order, and their glyphs. */
class Timeline {
  readonly id: string;
  readonly ticks: number[];
  readonly groups: Glyph[][];
  /** prefix[k] = number of glyphs in groups 0..k-1, for counting skipped glyphs without a loop. */
  readonly prefix: number[];
  readonly maxTick: number;
  readonly loop: boolean;
  readonly intervalMs: number;
  readonly speedSpec: RuntimeSpeed | undefined;

  constructor(c: Container) {
    this.id = c.container_id;
    this.loop = c.loop === true;
    this.intervalMs = c.tick_interval_ms ?? DEFAULT_TICK_INTERVAL_MS;
    this.speedSpec = c.metadata?.runtime_speed;
    const byTick = new Map<number, Glyph[]>();
    for (const g of c.glyphs) {
      const list = byTick.get(g.tick);
      if (list) list.push(g);
      else byTick.set(g.tick, [g]);
    }
    this.ticks = [...byTick.keys()].sort((a, b) => a - b);
    this.groups = this.ticks.map((t) => byTick.get(t)!);
    this.prefix = [0];
    for (const g of this.groups) this.prefix.push(this.prefix[this.prefix.length - 1]! + g.length);
    this.maxTick = this.ticks[this.ticks.length - 1]!;
  }

  get size(): number {
    return this.ticks.length;
  }
  get glyphCount(): number {
    return this.prefix[this.prefix.length - 1]!;
  }
  /** Global tick position (0-based, counting across loops) of occurrence `occ`. */
  position(occ: number): number {
    const loop = Math.floor(occ / this.size);
    return loop * this.maxTick + this.ticks[occ % this.size]! - 1;
  }
  /** Glyphs in occurrences 0..occ-1. */
  glyphsBefore(occ: number): number {
    return Math.floor(occ / this.size) * this.glyphCount + this.prefix[occ % this.size]!;
  }
  /** The first occurrence whose tick position is >= pos. */
  firstAtOrAfter(pos: number): number {
    const p = Math.max(0, Math.ceil(pos - 1e-9));
    let loop = Math.floor(p / this.maxTick);
    const within = p - loop * this.maxTick; // 0-based tick index inside the loop
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ticks[mid]! - 1 < within) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.size) {
      loop++;
      lo = 0;
    }
    return loop * this.size + lo;
  }
}

export interface PlayerStats {
  emitted: number;
  /** Glyphs not emitted because the process stalled past maxLagMs. */
  skipped: number;
  tick: number;
  loop: number;
}

export class Player {
  private readonly clock: Clock;
  private readonly leadMs: number;
  private readonly accelFactor: number;
  private readonly maxLagMs: number;
  private readonly maxBatch: number;
  private timeline: Timeline | undefined;
  private _state: PlayerState = "stopped";
  private speedOverride: number | null = null;
  private anchorPos = 0;
  private anchorTime = 0;
  /** Next occurrence (tick holding glyphs, counted across loops) to emit. */
  private occ = 0;
  private pausedPos = 0;
  private timer: TimerHandle | undefined;
  /** Bumped whenever the schedule is torn down, so that a callback that stops, reloads or
   *  restarts the player from inside onGlyph ends the emission loop that called it. */
  private generation = 0;
  private seq = 0;
  readonly stats: PlayerStats = { emitted: 0, skipped: 0, tick: 0, loop: 0 };

  constructor(private readonly opts: PlayerOptions) {
    this.clock = opts.clock;
    this.leadMs = opts.leadMs ?? DEFAULT_LEAD_MS;
    this.accelFactor = opts.accelFactor ?? DEFAULT_ACCEL_FACTOR;
    this.maxLagMs = opts.maxLagMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 10_000;
  }

  get state(): PlayerState {
    return this._state;
  }
  get containerId(): string | undefined {
    return this.timeline?.id;
  }
  /** The speed factor in effect: the override from `speed`, else the container's runtime_speed. */
  get speed(): number {
    return this.speedOverride ?? speedOf(this.timeline?.speedSpec, this.accelFactor);
  }
  /** Milliseconds between ticks at the current speed. */
  get periodMs(): number {
    return (this.timeline?.intervalMs ?? DEFAULT_TICK_INTERVAL_MS) / this.speed;
  }

  /** Replaces the container. A playing player starts the new one at tick 1; otherwise it is stopped. */
  load(container: Container): void {
    const wasPlaying = this._state === "playing";
    this.halt();
    this.timeline = new Timeline(container);
    this.occ = 0;
    this.stats.tick = 0;
    this.stats.loop = 0;
    this.setState("stopped");
    if (wasPlaying) this.start();
  }

  /** From stopped or finished: plays from tick 1. From paused: resumes. */
  start(): void {
    if (!this.timeline || this._state === "playing") return;
    if (this._state === "paused") return this.resume();
    this.halt();
    this.occ = 0;
    this.anchorPos = 0;
    this.anchorTime = this.clock.now() + this.leadMs;
    this.setState("playing");
    this.pump();
  }

  stop(): void {
    this.halt();
    this.occ = 0;
    this.setState("stopped");
  }

  pause(): void {
    if (this._state !== "playing") return;
    this.pausedPos = this.playhead();
    this.halt();
    this.setState("paused");
  }

  resume(): void {
    if (this._state !== "paused") return;
    this.halt();
    this.anchorPos = this.pausedPos;
    this.anchorTime = this.clock.now() + this.leadMs;
    this.setState("playing");
    this.pump();
  }

  /** Emits the next tick that holds glyphs at once (due `lead` ms from now) and stays paused. */
  step(): void {
    const tl = this.timeline;
    if (!tl) return;
    if (this._state === "playing") this.pause();
    if (this._state === "stopped" || this._state === "finished") this.occ = 0;
    if (!tl.loop && this.occ >= tl.size) {
      this.setState("finished");
      return;
    }
    const occ = this.occ++;
    this.pausedPos = tl.position(occ);
    this.setState("paused");
    this.emit(occ, this.clock.now() + this.leadMs);
  }

  /** Sets the speed factor; null goes back to the container's runtime_speed. The playhead keeps its place. */
  setSpeed(factor: number | null): void {
    if (factor !== null && !(Number.isFinite(factor) && factor > 0 && factor <= MAX_SPEED)) {
      throw new RangeError(`speed must be a positive number up to ${MAX_SPEED}, got ${JSON.stringify(factor)}`);
    }
    if (this._state === "playing") {
      const pos = this.playhead();
      this.speedOverride = factor;
      this.anchorPos = pos;
      this.anchorTime = this.clock.now() + this.leadMs;
      this.halt();
      this.pump();
    } else {
      this.speedOverride = factor;
    }
  }

  /** Stops every timer; the player can still be started again. */
  dispose(): void {
    this.halt();
    this._state = "stopped";
  }

  /** Where the timeline is at `now`, in tick positions, never past the next glyph not yet emitted. */
  private playhead(): number {
    const tl = this.timeline!;
    const pos = this.anchorPos + (this.clock.now() + this.leadMs - this.anchorTime) / this.periodMs;
    const next = !tl.loop && this.occ >= tl.size ? tl.maxTick : tl.position(this.occ);
    return Math.max(this.anchorPos, Math.min(pos, next));
  }

  private dueAt(pos: number): number {
    return this.anchorTime + (pos - this.anchorPos) * this.periodMs;
  }

  private halt(): void {
    this.generation++;
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private setState(s: PlayerState): void {
    if (s === this._state) return;
    this._state = s;
    this.opts.onStateChange?.(s);
  }

  private emit(occ: number, at: number): number {
    const tl = this.timeline!;
    const group = tl.groups[occ % tl.size]!;
    const tick = tl.ticks[occ % tl.size]!;
    const loop = Math.floor(occ / tl.size);
    this.stats.tick = tick;
    this.stats.loop = loop;
    for (const g of group) {
      this.stats.emitted++;
      this.opts.onGlyph({
        container: tl.id,
        tick,
        loop,
        seq: ++this.seq,
        at,
        event: g.event,
        payload: g.payload === undefined ? {} : structuredClone(g.payload),
      });
      // onGlyph may have stopped or reloaded the player: then send nothing more of this tick.
      if (this.timeline !== tl || this._state === "stopped") break;
    }
    return group.length;
  }

  /** Emits everything due within the lead, then sets one timer for the next tick that holds glyphs. */
  private pump(): void {
    this.timer = undefined;
    const tl = this.timeline!;
    const generation = this.generation;
    let sent = 0;
    for (;;) {
      if (this._state !== "playing" || this.generation !== generation) return;
      const now = this.clock.now();
      if (!tl.loop && this.occ >= tl.size) {
        // The last tick still takes its time before the container counts as finished.
        const end = this.dueAt(tl.maxTick);
        if (end > now) this.timer = this.clock.setTimer(() => this.pump(), end - now);
        else this.setState("finished");
        return;
      }
      const due = this.dueAt(tl.position(this.occ));
      if (due - this.leadMs > now) {
        this.timer = this.clock.setTimer(() => this.pump(), due - this.leadMs - now);
        return;
      }
      if (now - due > this.maxLagMs) {
        // Stalled (a blocked event loop, a suspended laptop): keep to the wall-clock schedule
        // and count what was missed instead of bursting it out late.
        let next = tl.firstAtOrAfter(this.anchorPos + (now - this.anchorTime) / this.periodMs);
        if (!tl.loop) next = Math.min(next, tl.size);
        this.stats.skipped += tl.glyphsBefore(next) - tl.glyphsBefore(this.occ);
        this.occ = next;
        continue;
      }
      sent += this.emit(this.occ++, due);
      if (sent >= this.maxBatch) {
        this.timer = this.clock.setTimer(() => this.pump(), 0);
        return;
      }
    }
  }
}
