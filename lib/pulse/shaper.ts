// What a pulse-shaper decides, on a Clock and without Node-RED: each event is planned into
// pulses (shapes.ts), checked (its count, how far ahead or late it is due), and queued on the
// one output under the safety limits (output.ts), which fires the edges on time. Counted
// messages of one frame are placed together as trains (train.ts). It counts what it refused
// and clamped, measures what it fired (measure.ts), and says so in a status line. The node
// shell (nodes/pulse-shaper.ts) hands the edges to rpi-gpio out and wires the rest.

import type { Clock } from "../clock";
import { LATE_TOLERANCE_MS, readCount, type Sqi } from "../sqi";
import { statusText, type StatusLine } from "../status-line";
import type { ShaperSettings } from "./config";
import { FiredWhilePinUp } from "./fired";
import { Measurements } from "./measure";
import { PulseOutput, type Edge, type Origin } from "./output";
import type { DeadlineQueue } from "./scheduler";
import { planEvent } from "./shapes";
import { TrainPlanner, type TrainItem } from "./train";

/** Events due further ahead than this are refused: a wrong clock, not a plan. */
export const MAX_AHEAD_MS = 60_000;
/** A rate clamp stays the news in the status this long after it happened. */
const CLAMP_NEWS_MS = 5000;

export interface ShaperHooks {
  /** An edge to fire now (its measurement is taken already). */
  edge: (edge: Edge) => void;
  /** The status has news (pulses began, a stop). */
  changed: () => void;
  /** Placing a frame's trains failed: the output went low and goes on. */
  failed: (error: Error) => void;
}

export type ShaperCounts = Record<"late" | "late_dropped" | "rejected" | "ignored" | "rate_clamped" | "train_events" | "train_clamped", number>;

export class Shaper {
  readonly output: PulseOutput;
  /** What became of the events it took (late, refused, ignored, rate-clamped, in trains); allCounters() adds the output's. */
  readonly eventCounts: ShaperCounts = { late: 0, late_dropped: 0, rejected: 0, ignored: 0, rate_clamped: 0, train_events: 0, train_clamped: 0 };
  private readonly measure: Measurements;
  private readonly trains: TrainPlanner;
  private readonly pins = new FiredWhilePinUp();
  private pinDownText = "";
  private rateClamp: { text: string; at: number } | undefined;
  /** Counted messages since the last status: what the clones asked for and what the pin got. */
  private tally: { at: number; events: number; delivered: number; clamped: number; duty: number | undefined };
  /** Counted messages since the last report. */
  private reported: { at: number; events: number; delivered: number };
  private statusMark: { at: number; pulses: number };
  /** Counted messages of one frame (the same at and window) arrive one by one in one turn: gathered, then placed together. */
  private pending = new Map<string, { t0: number; windowMs: number; items: Array<TrainItem & { origin: Origin }> }>();
  private placing = false;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly s: ShaperSettings,
    private readonly hooks: ShaperHooks,
    /** The deadline queue shared by the shapers of one runtime (scheduler.ts). */
    deadlines?: DeadlineQueue,
  ) {
    const now = clock.now();
    this.tally = { at: now, events: 0, delivered: 0, clamped: 0, duty: undefined };
    this.reported = { at: now, events: 0, delivered: 0 };
    this.statusMark = { at: now, pulses: 0 };
    this.measure = new Measurements(now, s.coil);
    const pwm = s.shape.output === "pwm";
    this.output = new PulseOutput(
      clock,
      s.limits,
      pwm,
      (edge) => {
        // An edge planned while the pin's helper is down reaches no pin: not measured (the
        // measurements, the scope, the status and the reports all say what reached a pin).
        if (!this.pins.pinDown) this.measure.edge(edge);
        hooks.edge(edge);
        hooks.changed();
      },
      (p) => {
        if (!this.pins.pinDown) this.measure.pulse(p);
      },
      s.wholePulses,
      deadlines,
    );
    this.trains = new TrainPlanner(s.limits, pwm);
  }

  /**
   * One event: planned and queued, or counted as ignored, late or rejected. Returns the
   * error to show for a rejected event (the caller says it, throttled), else undefined.
   */
  take(topic: unknown, payload: unknown, sqi: Sqi | undefined): string | undefined {
    const plan = planEvent(topic, payload, this.s.shape);
    if (plan.kind === "ignored") {
      this.eventCounts.ignored++;
      return undefined;
    }
    if (plan.kind === "rejected") return this.reject(plan.error);
    const now = this.clock.now();
    const counted = readCount(sqi);
    if (typeof counted === "string") return this.reject(`${String(topic)}: ${counted}`);
    const at = sqi?.at;
    let t0 = typeof at === "number" && Number.isFinite(at) ? at : now;
    if (t0 > now + MAX_AHEAD_MS)
      return this.reject(`${String(topic)}: msg.sqi.at is ${((t0 - now) / 1000).toFixed(1)} s ahead (more than ${MAX_AHEAD_MS / 1000} s): check the clocks`);
    if (t0 < now - LATE_TOLERANCE_MS) {
      this.eventCounts.late++;
      if (this.s.late === "drop") {
        this.eventCounts.late_dropped++;
        return undefined;
      }
      t0 = now;
    }
    if (plan.rateClamp) {
      this.eventCounts.rate_clamped++;
      const r = plan.rateClamp;
      const duty = plan.segments[0]?.level ?? 0;
      this.rateClamp = {
        at: now,
        text: r.asDuty ? `⚠ ${fmtHz(r.intendedHz)} as ${duty.toFixed(0)}% duty` : `⚠ ${fmtHz(r.intendedHz)} in, ${fmtHz(r.deliveredHz)} delivered`,
      };
    }
    const origin: Origin = { event: String(topic), ...(sqi ? { sqi: { ...sqi } } : {}) };
    if (counted) this.queueTrain({ name: origin.event, unit: plan.segments, count: counted.count, origin }, counted.windowMs, t0);
    else this.output.add(plan.segments, t0, origin);
    this.hooks.changed();
    return undefined;
  }

  private reject(error: string): string {
    this.eventCounts.rejected++;
    return error;
  }

  /** msg.stop: what came before it is placed and counted, then the output goes low and everything pending is dropped; it goes on. */
  stop(): boolean {
    this.placeTrains();
    const fell = this.output.stop();
    this.trains.reset();
    return fell;
  }

  /** The output goes low now and everything pending is dropped, for good (close, an error). Returns whether a falling edge was sent. */
  close(): boolean {
    this.closed = true;
    return this.output.close();
  }

  /** After an error: low now and everything dropped, then on again. */
  failSafe(): void {
    this.output.close();
    this.output.resume();
  }

  private queueTrain(item: TrainItem & { origin: Origin }, windowMs: number, t0: number): void {
    const key = `${t0}|${windowMs}`;
    let group = this.pending.get(key);
    if (!group) this.pending.set(key, (group = { t0, windowMs, items: [] }));
    group.items.push(item);
    if (this.placing) return;
    this.placing = true;
    this.clock.defer(() => {
      try {
        this.placeTrains();
      } catch (e) {
        this.failSafe();
        this.hooks.failed(e as Error);
      }
    });
  }

  private placeTrains(): void {
    this.placing = false;
    const groups = this.pending;
    this.pending = new Map();
    if (this.closed) return;
    for (const g of groups.values()) {
      const placed = this.trains.placeGroup(g.items, g.windowMs, g.t0);
      g.items.forEach((it, i) => {
        const train = placed[i];
        if (!train) return;
        this.eventCounts.train_events += it.count;
        this.eventCounts.train_clamped += train.clamped;
        this.tally.events += it.count;
        this.tally.delivered += train.starts.length;
        this.reported.events += it.count;
        this.reported.delivered += train.starts.length;
        this.tally.clamped += train.clamped;
        if (train.duty !== undefined && train.clamped > 0) this.tally.duty = train.duty;
        for (const start of train.starts) this.output.add(it.unit, start, it.origin);
        if (train.hold) this.output.add([{ start: 0, end: train.hold.end - train.hold.start, level: train.hold.level }], train.hold.start, it.origin);
      });
    }
    this.hooks.changed();
  }

  /** Every counter: the output's, this policy's, and what waits in the queue. */
  allCounters(): Record<string, number> {
    return { ...this.output.counters, ...this.eventCounts, queued: this.output.queued };
  }

  /**
   * The counters as they concern a pin: the output's held where they were while the pin's
   * helper was down, and `unfired_pulses` for what was planned meanwhile. What the measurements
   * output, the SQI scope and the status show (the reports carry the same as fired_*).
   */
  reached(): Record<string, number> {
    const { on_time_ms: _total, energy_j: _energy, ...fired } = this.fired();
    return { ...this.allCounters(), ...fired };
  }

  /** Whether the pin's helper is down now (nothing planned reaches a pin). */
  get pinIsDown(): boolean {
    return this.pins.pinDown;
  }

  /** What the pins got, for the bus's reports: the output's counters and the on-time. */
  fired(): Record<string, number> {
    return this.pins.fired(this.firedNow());
  }

  private firedNow(): Record<string, number> {
    const energy = this.measure.totalEnergyJ;
    // energy_j: the estimate a Pi's power sensor is set beside on the master (only with V and R).
    return { ...this.output.counters, on_time_ms: Math.round(this.measure.totalOnMs * 1000) / 1000, ...(energy !== undefined ? { energy_j: energy } : {}) };
  }

  /**
   * The pin's helper died (`said` is how rpi-gpio out put it): what is planned from now on is
   * not counted as fired. True the first time (a moment to say so in the log).
   */
  pinDown(said: string): boolean {
    if (this.pins.pinDown) return false;
    this.pins.down(this.firedNow());
    this.pinDownText = `pin ${said}: nothing fired`;
    return true;
  }

  /** Every pin's helper runs again. True when one was down. */
  pinUp(): boolean {
    if (!this.pins.pinDown) return false;
    this.pins.up(this.firedNow());
    this.pinDownText = "";
    return true;
  }

  /** The measurements since the last report (msg.measure, or every measureEvery s). */
  report(): Record<string, unknown> {
    const now = this.clock.now();
    const payload: Record<string, unknown> = this.measure.report(now, this.reached());
    const r = this.reported;
    if (r.events > 0) {
      const seconds = Math.max(1e-3, (now - r.at) / 1000);
      payload.train_intended_hz = Math.round((r.events / seconds) * 10) / 10;
      payload.train_delivered_hz = Math.round((r.delivered / seconds) * 10) / 10;
    }
    this.reported = { at: now, events: 0, delivered: 0 };
    return payload;
  }

  /**
   * The status line now, and whether to draw it again soon (while pulses go on). Saturation
   * (the clones ask for more than the pin can follow) is the news first; else the pulse rate
   * and duty over the last second, and what was clamped, skipped, dropped, late or rejected.
   */
  status(): { status: StatusLine; again: boolean } {
    const now = this.clock.now();
    const c = this.output.counters;
    const rate = ((c.pulses - this.statusMark.pulses) * 1000) / Math.max(1, now - this.statusMark.at);
    const t = this.tally;
    if (t.clamped > 0) {
      const dt = Math.max(1, now - t.at);
      const intended = (t.events * 1000) / dt;
      this.rateClamp = {
        at: now,
        text:
          t.duty !== undefined
            ? `⚠ ${fmtHz(intended)} as ${t.duty.toFixed(0)}% duty (capped)`
            : `⚠ ${fmtHz(intended)} in, ${fmtHz((t.delivered * 1000) / dt)} delivered`,
      };
    }
    this.tally = { at: now, events: 0, delivered: 0, clamped: 0, duty: undefined };
    this.statusMark = { at: now, pulses: c.pulses };
    if (this.pinDownText) return { status: { fill: "red", shape: "ring", text: statusText(this.pinDownText) }, again: false };
    const duty = this.output.onTimeBetween(now - 1000, now) / 10;
    const problems = [
      c.clamped ? `clamped ${c.clamped}` : "",
      c.skipped ? `skipped ${c.skipped}` : "",
      c.dropped ? `dropped ${c.dropped}` : "",
      this.eventCounts.late ? `late ${this.eventCounts.late}` : "",
      this.eventCounts.rejected ? `rejected ${this.eventCounts.rejected}` : "",
    ].filter(Boolean);
    const saturated = this.rateClamp && now - this.rateClamp.at < CLAMP_NEWS_MS ? this.rateClamp.text : "";
    const busy = this.output.level !== 0 || this.output.queued > 0;
    const pulses = `${rate.toFixed(rate >= 10 ? 0 : 1)} p/s · duty ${duty.toFixed(1)}%`;
    return {
      status: {
        fill: saturated || problems.length ? "yellow" : busy || rate > 0 ? "green" : "grey",
        shape: busy ? "dot" : "ring",
        text: saturated ? statusText(saturated, problems) : statusText(pulses, [...problems, `${c.pulses} pulses`]),
      },
      again: busy || rate > 0,
    };
  }

  /** The status before the first event. */
  ready(): StatusLine {
    return {
      fill: "grey",
      shape: "ring",
      text: statusText("ready", [`${this.s.shape.widthMs} ms pulses`, this.s.wholePulses ? "timed" : this.s.shape.output]),
    };
  }
}

export function fmtHz(hz: number): string {
  if (hz >= 1e6) return `${(hz / 1e6).toFixed(hz >= 1e7 ? 0 : 1)} MHz`;
  return hz >= 1000 ? `${(hz / 1000).toFixed(hz >= 10_000 ? 0 : 1)} kHz` : `${hz.toFixed(hz >= 10 ? 0 : 1)} Hz`;
}
