// Plays a .dc container on a Clock: ticks 1..max tick at tick_interval_ms / speed, glyphs
// sharing a tick in file order, empty ticks taking their time, looping, and each glyph
// emitted `lead` ms before it is due with `at` = its due time.
//
// Timing is an absolute schedule: the due time of every tick is computed from one anchor
// (anchorTime at tick position anchorG), never by adding intervals to late timers, so an
// hour of play does not drift. Pause, resume and speed changes move the anchor so that
// the playhead keeps its place. Only ticks that hold glyphs get a timer.
//
// With clones (clones.ts) the player works in frames instead: every frame_ms it asks, for
// each tick that holds glyphs near the frame, how many clones' events fall inside the frame
// (a difference of two "phases below x" answers), and emits either one message per clone
// event (exact, for a few clones) or one message per event name with the count. Frame
// edges are positions stored once and reused as the next frame's start, so over any run
// the counts add up to exactly clones x events: nothing lost or counted twice.
//
// Nothing holds the event loop for long: what a tick or a frame emits goes into an outbox,
// sent in slices of at most SLICE_MS (and maxBatch messages), yielding between them, so
// that a shaper's falling edge and the editor's requests run between slices. A container
// whose clones x glyphs exceed MAX_EACH_EVENTS is played as counted messages whatever the
// emission setting: a million messages in one go is not something any flow can take.

import type { Clock, TimerHandle } from "../clock";
import { aggregates, DEFAULT_CLONES, makePhases, type CloneSettings, type Phases } from "./clones";
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
  /** Clones, one message per clone event: which clone, counted in ascending phase order. */
  clone?: number;
  /** Clones, aggregated: how many events of this name fall in the frame [at, at + window_ms). */
  count?: number;
  window_ms?: number;
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
  /** Messages sent in one slice at most before yielding to the event loop. Default 1000 (and SLICE_MS). */
  maxBatch?: number;
  /** Multiplexing; absent means one copy, played tick by tick. */
  clones?: CloneSettings;
}

/**
 * A message made but not yet sent: its glyph by reference. The payload is copied, and the seq
 * given, only when it is sent, so that making a tick's 40,000 messages costs no copies up front.
 */
interface Outgoing {
  glyph: Glyph;
  tick: number;
  loop: number;
  at: number;
  clone?: number;
  count?: number;
  window_ms?: number;
}

export const DEFAULT_LEAD_MS = 50;
/** The longest one slice of sending holds the event loop, ms. */
export const SLICE_MS = 3;
/** Clones x glyphs above which every event name travels as one counted message per frame. */
export const MAX_EACH_EVENTS = 100_000;
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
  /** One past the last occurrence (Infinity when looping). */
  get end(): number {
    return this.loop ? Infinity : this.size;
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
  /** Messages sent. */
  emitted: number;
  /** Events represented: with clones, every clone's event (an aggregated message counts its count). */
  events: number;
  /** Frames played (clones only). */
  frames: number;
  /** Events not emitted because the process stalled past maxLagMs (or a stop, pause or reload cut a tick being sent). */
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
  readonly stats: PlayerStats = { emitted: 0, events: 0, frames: 0, skipped: 0, tick: 0, loop: 0 };
  /** Clones: the phases, and whether to aggregate; undefined plays one copy tick by tick. Set by load(). */
  private multi: { phases: Phases; settings: CloneSettings; aggregate: boolean } | undefined;
  /** Whether the container's size alone (clones x glyphs over MAX_EACH_EVENTS) made the messages counted. */
  private countedForSize = false;
  /** Messages made and not yet sent: sent in slices by drain(), dropped (counted skipped) by halt(). */
  private outbox: Outgoing[] = [];
  private outHead = 0;
  /** When the current slice of sending began. */
  private sliceStart = 0;
  private sliceSent = 0;
  /** Clones: the tick position up to which every clone's events have been emitted or skipped. */
  private countedPos = 0;
  /** Clones: frames since the anchor; frame k covers [anchorPos + k f, anchorPos + (k + 1) f). */
  private frameIdx = 0;

  constructor(private readonly opts: PlayerOptions) {
    this.clock = opts.clock;
    this.leadMs = opts.leadMs ?? DEFAULT_LEAD_MS;
    this.accelFactor = opts.accelFactor ?? DEFAULT_ACCEL_FACTOR;
    this.maxLagMs = opts.maxLagMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 1000;
    this.multi = this.plan(undefined);
  }

  /** How a container is played: tick by tick, one message per clone event, or counted (also when it is too big for anything else). */
  private plan(tl: Timeline | undefined): Player["multi"] {
    const c = this.opts.clones;
    const n = c?.clones ?? 1;
    this.countedForSize = tl !== undefined && n * tl.glyphCount > MAX_EACH_EVENTS && !(c && c.emission === "aggregate") && !(c && aggregates(c));
    if (this.countedForSize) {
      const s = c ?? DEFAULT_CLONES;
      return { phases: makePhases(n, s.spread, s.seed), settings: s, aggregate: true };
    }
    if (c && (c.clones > 1 || aggregates(c))) return { phases: makePhases(c.clones, c.spread, c.seed), settings: c, aggregate: aggregates(c) };
    return undefined;
  }

  /** True when clones x glyphs exceed MAX_EACH_EVENTS, so events travel as counted messages whatever the emission setting. */
  get countedBySize(): boolean {
    return this.countedForSize;
  }

  get clones(): number {
    return this.multi?.phases.n ?? 1;
  }
  get aggregated(): boolean {
    return this.multi?.aggregate ?? false;
  }
  /** Clones: the tick position up to which every clone's events are out (emitted or skipped). */
  get countedPosition(): number {
    return this.countedPos;
  }
  /** Events per second the container asks for, over all clones, at the current speed. */
  get intendedRate(): number {
    const tl = this.timeline;
    if (!tl) return 0;
    return (this.clones * tl.glyphCount * 1000) / (tl.maxTick * this.periodMs);
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
    this.multi = this.plan(this.timeline);
    this.occ = 0;
    this.countedPos = 0;
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
    this.countedPos = 0;
    this.frameIdx = 0;
    this.anchorPos = 0;
    this.anchorTime = this.clock.now() + this.leadMs;
    this.setState("playing");
    this.pump();
  }

  stop(): void {
    this.halt();
    this.occ = 0;
    this.countedPos = 0;
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
    this.countedPos = this.pausedPos;
    this.frameIdx = 0;
    this.setState("playing");
    this.pump();
  }

  /** Emits the next tick that holds glyphs at once (due `lead` ms from now) and stays paused. */
  step(): void {
    const tl = this.timeline;
    if (!tl) return;
    if (this._state === "playing") this.pause();
    if (this._state === "stopped" || this._state === "finished") {
      this.occ = 0;
      this.countedPos = 0;
    }
    if (this.multi) {
      // One tick of every clone: from where the counting stands to the next whole tick.
      if (this.countedPos >= this.endPos()) return this.setState("finished");
      const from = this.countedPos;
      const to = Math.min(Math.floor(from + 1e-9) + 1, this.endPos());
      this.countedPos = this.pausedPos = to;
      this.setState("paused");
      this.emitFrame(from, to, this.clock.now() + this.leadMs);
      this.beginSlice();
      this.drain(() => undefined);
      return;
    }
    if (!tl.loop && this.occ >= tl.size) {
      this.setState("finished");
      return;
    }
    const occ = this.occ++;
    this.pausedPos = tl.position(occ);
    this.setState("paused");
    this.emit(occ, this.clock.now() + this.leadMs);
    this.beginSlice();
    this.drain(() => undefined);
  }

  /** Sets the speed factor; null goes back to the container's runtime_speed. The playhead keeps its place. */
  setSpeed(factor: number | null): void {
    if (factor !== null && !(Number.isFinite(factor) && factor > 0 && factor <= MAX_SPEED)) {
      throw new RangeError(`speed must be a positive number up to ${MAX_SPEED}, got ${JSON.stringify(factor)}`);
    }
    if (this._state === "playing") {
      const pos = this.playhead();
      // Clones: what is counted stays counted; the rest follows at the new speed from the
      // moment the counted part was due (or the lead from now, whichever is later).
      const time = this.multi ? Math.max(this.clock.now() + this.leadMs, this.frameTime(this.frameIdx)) : this.clock.now() + this.leadMs;
      this.speedOverride = factor;
      this.anchorPos = pos;
      this.anchorTime = time;
      this.frameIdx = 0;
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
    if (this.multi) return this.countedPos;
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
    // A tick or frame cut off while being sent: what was not sent is counted, never sent later.
    for (let i = this.outHead; i < this.outbox.length; i++) this.stats.skipped += this.outbox[i]!.count ?? 1;
    this.outbox = [];
    this.outHead = 0;
  }

  /** Starts a slice of sending (a timer or a deferral called back). */
  private beginSlice(): void {
    this.sliceStart = this.clock.now();
    this.sliceSent = 0;
  }

  /**
   * Sends from the outbox until it is empty (true) or the slice is spent (false: the rest goes
   * after a yield to the event loop, then `then` runs). A stop, pause or reload from inside
   * onGlyph ends it (false).
   */
  private drain(then: () => void): boolean {
    const generation = this.generation;
    while (this.outHead < this.outbox.length) {
      if (this.sliceSent >= this.maxBatch || (this.sliceSent % 16 === 15 && this.clock.now() - this.sliceStart >= SLICE_MS)) {
        this.timer = this.clock.setTimer(() => {
          this.timer = undefined;
          this.beginSlice();
          if (this.generation === generation && this.drain(then)) then();
        }, 0);
        return false;
      }
      const o = this.outbox[this.outHead++]!;
      this.sliceSent++;
      this.stats.emitted++;
      this.stats.events += o.count ?? 1;
      this.opts.onGlyph(this.message(o));
      // onGlyph may have stopped, paused or reloaded the player: then send nothing more.
      if (this.generation !== generation) return false;
    }
    this.outbox = [];
    this.outHead = 0;
    return true;
  }

  /** The message for an outgoing glyph: its payload copied (downstream nodes may change it), the next seq. */
  private message(o: Outgoing): PlayedGlyph {
    const g: PlayedGlyph = {
      container: this.timeline!.id,
      tick: o.tick,
      loop: o.loop,
      seq: ++this.seq,
      at: o.at,
      event: o.glyph.event,
      payload: o.glyph.payload === undefined ? {} : structuredClone(o.glyph.payload),
    };
    if (o.clone !== undefined) g.clone = o.clone;
    if (o.count !== undefined) ((g.count = o.count), (g.window_ms = o.window_ms!));
    return g;
  }

  private setState(s: PlayerState): void {
    if (s === this._state) return;
    this._state = s;
    this.opts.onStateChange?.(s);
  }

  /** Clones: the position after which no clone has an event left (a container that does not loop). */
  private endPos(): number {
    const tl = this.timeline!;
    return tl.loop ? Infinity : tl.maxTick - 1 + this.spanPos();
  }

  /** Clones: the spread's span in tick positions. */
  private spanPos(): number {
    return this.multi!.settings.spreadOver === "loop" ? this.timeline!.maxTick : 1;
  }

  private frameTime(k: number): number {
    return this.anchorTime + k * this.multi!.settings.frameMs;
  }
  private framePos(k: number): number {
    return this.anchorPos + (k * this.multi!.settings.frameMs) / this.periodMs;
  }

  /**
   * Clones: every clone event at a position in [from, to), emitted as messages; t0 is when
   * `from` is due. The occurrences scanned start one tick before the span could reach, so
   * that rounding never decides whether a clone's event is counted in this frame or the last.
   */
  private emitFrame(from: number, to: number, t0: number): number {
    const tl = this.timeline!;
    const { phases, aggregate } = this.multi!;
    const span = this.spanPos();
    const period = this.periodMs;
    const sums = new Map<string, { count: number; glyph: Glyph; tick: number; loop: number }>();
    const each: { at: number; clone: number; glyph: Glyph; tick: number; loop: number }[] = [];
    for (let o = tl.firstAtOrAfter(from - span - 1); o < tl.end; o++) {
      const pos = tl.position(o);
      if (pos >= to) break;
      const a = phases.below((from - pos) / span);
      const b = phases.below((to - pos) / span);
      if (b <= a) continue;
      const tick = tl.ticks[o % tl.size]!;
      const loop = Math.floor(o / tl.size);
      for (const glyph of tl.groups[o % tl.size]!) {
        if (aggregate) {
          const sum = sums.get(glyph.event);
          if (sum) sum.count += b - a;
          else sums.set(glyph.event, { count: b - a, glyph, tick, loop });
        } else {
          for (let i = a; i < b; i++) each.push({ at: t0 + (pos + phases.phase(i) * span - from) * period, clone: i, glyph, tick, loop });
        }
      }
    }
    this.stats.frames++;
    this.stats.tick = (Math.floor(from + 1e-9) % tl.maxTick) + 1;
    this.stats.loop = Math.floor((from + 1e-9) / tl.maxTick);
    if (aggregate) {
      const windowMs = Math.round((to - from) * period * 1e6) / 1e6; // the frame length, without float dust
      for (const { count, glyph, tick, loop } of sums.values()) this.outbox.push({ glyph, tick, loop, at: t0, count, window_ms: windowMs });
      return sums.size;
    }
    each.sort((x, y) => x.at - y.at);
    for (const e of each) this.outbox.push(e);
    return each.length;
  }

  /** Clones: how many clone events lie before position p (for counting what a stall skipped). */
  private eventsBefore(p: number): number {
    const tl = this.timeline!;
    const { phases } = this.multi!;
    const span = this.spanPos();
    const o0 = Math.min(tl.firstAtOrAfter(p - span - 1), tl.end);
    let n = phases.n * tl.glyphsBefore(o0);
    for (let o = o0; o < tl.end; o++) {
      const pos = tl.position(o);
      if (pos >= p) break;
      n += tl.groups[o % tl.size]!.length * phases.below((p - pos) / span);
    }
    return n;
  }

  /** Clones: emits every frame due within the lead, then sets one timer for the next frame. */
  private pumpFrames(): void {
    this.timer = undefined;
    this.beginSlice();
    this.produceFrames();
  }

  private produceFrames(): void {
    const generation = this.generation;
    const frameMs = this.multi!.settings.frameMs;
    for (;;) {
      if (this._state !== "playing" || this.generation !== generation) return;
      const now = this.clock.now();
      const endPos = this.endPos();
      if (this.countedPos >= endPos) {
        const end = this.frameTime(this.frameIdx);
        if (end > now) this.timer = this.clock.setTimer(() => this.pumpFrames(), end - now);
        else this.setState("finished");
        return;
      }
      const t0 = this.frameTime(this.frameIdx);
      if (t0 - this.leadMs > now) {
        this.timer = this.clock.setTimer(() => this.pumpFrames(), t0 - this.leadMs - now);
        return;
      }
      const k = Math.floor((now - this.anchorTime) / frameMs);
      if (now - t0 > this.maxLagMs && k > this.frameIdx) {
        // Stalled: skip to the frame that holds `now`, counting every clone event in between.
        const to = Math.min(this.framePos(k), endPos);
        this.stats.skipped += this.eventsBefore(to) - this.eventsBefore(this.countedPos);
        this.frameIdx = k;
        this.countedPos = to;
        continue;
      }
      const to = Math.min(this.framePos(this.frameIdx + 1), endPos);
      this.emitFrame(this.countedPos, to, t0);
      this.countedPos = to;
      this.frameIdx++;
      if (!this.drain(() => this.produceFrames())) return; // yielded, or stopped, paused or reloaded from inside onGlyph
    }
  }

  private emit(occ: number, at: number): number {
    const tl = this.timeline!;
    const group = tl.groups[occ % tl.size]!;
    const tick = tl.ticks[occ % tl.size]!;
    const loop = Math.floor(occ / tl.size);
    this.stats.tick = tick;
    this.stats.loop = loop;
    for (const glyph of group) this.outbox.push({ glyph, tick, loop, at });
    return group.length;
  }

  /** Emits everything due within the lead, then sets one timer for the next tick that holds glyphs. */
  private pump(): void {
    if (this.multi) return this.pumpFrames();
    this.timer = undefined;
    this.beginSlice();
    this.produceTicks();
  }

  private produceTicks(): void {
    const tl = this.timeline!;
    const generation = this.generation;
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
      this.emit(this.occ++, due);
      if (!this.drain(() => this.produceTicks())) return; // yielded, or stopped, paused or reloaded from inside onGlyph
    }
  }
}
