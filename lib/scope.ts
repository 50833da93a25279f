// The "SQI scope" sidebar's data, without Node-RED: what each pulse-shaper fired lately (its
// edges over the last few seconds) and, on a master, what each listener reported (pulse rate,
// duty, clock sync and losses over time), plus their sum. Nothing here is shared by the
// process: each pulse-shaper node keeps its own EdgeTrace, each master its Roster (the one
// record of its listeners), and the scope plugin draws a snapshot from the running nodes a few
// times a second, only while an editor is watching. Drawing is a pure read.

import { HISTORY_MS, MAX_LISTED, worse, type Roster, type RosterEntry } from "./bus/roster";
import type { Clock, TimerHandle } from "./clock";
import { sumPower, type PiPower, type PowerSum } from "./power/tally";

export const SCOPE_WINDOW_MS = 2000;
/** Snapshots a second while watched: a few, so the editor redraws smoothly at little cost. */
export const SCOPE_UPDATES_PER_S = 4;
/** An editor that has not said it is watching for this long is gone: publishing stops. */
const WATCH_MS = 10_000;
/** Edges kept per shaper: the window at the fastest edge rate the panel allows, bounded. */
const MAX_EDGES = 4000;

export interface ShaperTrace {
  id: string;
  label: string;
  /** [ms before `t`, duty 0..1 from then on] for each edge in the window, oldest first (1 % PWM is 0.01) */
  edges: Array<[number, number]>;
  /** duty before the first edge in the window */
  start: number;
  rate_hz: number;
  duty_pct: number;
  counters: Record<string, number>;
}

export interface ListenerTrace {
  name: string;
  master: string;
  /** [ms before `t`, pulse rate Hz, duty %] per report interval, oldest first */
  samples: Array<[number, number, number]>;
  offset_ms?: number;
  rtt_ms?: number;
  lost: number;
  /** events it fired late */
  late: number;
  /** with a power sensor: its readings now, and [ms before `t`, measured W, estimated W or null] per report interval */
  power?: PiPower & { samples: Array<[number, number, number | null]> } & Recent;
}

/** Every listener that reports, in one line: the view stays readable at 1,000 of them. */
export interface ListenersSummary {
  listeners: number;
  synced: number;
  late: number;
  lost: number;
  /** listeners that lost or fired late anything */
  troubled: number;
}

/**
 * Power over each Pi's last report interval, measured and estimated alike (energy between two
 * reports over their time), so that the two are said side by side on the same footing; summed
 * over the Pis for the total.
 */
export interface Recent {
  measured_w: number | null;
  estimated_w: number | null;
}

export interface ScopeSnapshot {
  t: number;
  window_ms: number;
  shapers: ShaperTrace[];
  /** the worst MAX_LISTED listeners (most lost, then most late), of `summary.listeners` */
  listeners: ListenerTrace[];
  summary: ListenersSummary;
  /** the listeners' summed pulse rate over time: [ms before t, Hz] */
  sum: Array<[number, number]>;
  /** what every Pi with a power sensor measured, summed (absent when none has one), and over time: [ms before t, measured W, estimated W] */
  power?: PowerSum & { samples: Array<[number, number, number]> } & Recent;
}

/**
 * A pulse-shaper's recent edges, kept by its node: the edges of the last SCOPE_WINDOW_MS (and
 * the one before, which says the level at the window's start), at most MAX_EDGES.
 */
export class EdgeTrace {
  private readonly edges: Array<[number, number]> = [];

  constructor(
    readonly id: string,
    readonly label: string,
    private readonly counters: () => Record<string, number>,
  ) {}

  /** An edge handed to the pin at `t`: the pin is on `duty` (0..1) of the time from then on. */
  edge(t: number, duty: number): void {
    this.edges.push([t, duty]);
    let k = 0;
    while (k + 1 < this.edges.length && this.edges[k + 1]![0] < t - SCOPE_WINDOW_MS) k++;
    k = Math.max(k, this.edges.length - MAX_EDGES);
    if (k > 0) this.edges.splice(0, k);
  }

  /** The trace over the window ending `now`, with pulses/s and duty over it. */
  read(now: number): ShaperTrace {
    const from = now - SCOPE_WINDOW_MS;
    let k = 0;
    while (k < this.edges.length && this.edges[k]![0] < from) k++;
    const start = k > 0 ? this.edges[k - 1]![1] : 0;
    const inWindow = this.edges.slice(k);
    let on = 0;
    let duty = start;
    let at = from;
    let rises = 0;
    for (const [t, v] of inWindow) {
      on += (t - at) * duty;
      if (v > 0 && duty === 0) rises++;
      duty = v;
      at = t;
    }
    on += (now - at) * duty;
    return {
      id: this.id,
      label: this.label,
      edges: inWindow.map(([t, v]) => [Math.round((now - t) * 10) / 10, v]),
      start,
      rate_hz: Math.round((rises * 1000 * 10) / SCOPE_WINDOW_MS) / 10,
      duty_pct: Math.round((on / SCOPE_WINDOW_MS) * 1000) / 10,
      counters: this.counters(),
    };
  }
}

/** What the scope draws: the running pulse-shapers' traces, and each running master's roster. */
export interface ScopeSources {
  shapers: Iterable<EdgeTrace>;
  masters: Iterable<{ id: string; roster: Roster }>;
}

/** The snapshot at `now`: a pure read of the sources. */
export function scopeSnapshot(now: number, sources: ScopeSources): ScopeSnapshot {
  const shapers = [...sources.shapers].map((s) => s.read(now));
  const summary: ListenersSummary = { listeners: 0, synced: 0, late: 0, lost: 0, troubled: 0 };
  const sums = new GridSum(1);
  const powerSums = new GridSum(2);
  const powers: PiPower[] = [];
  const recent = { measured: 0, estimated: 0, pis: 0, estimates: 0 };
  const drawn: Array<{ trace: ListenerTrace; entry: RosterEntry }> = [];
  for (const { id: master, roster } of sources.masters) {
    const s = roster.summary(0, now);
    summary.synced += s.synced;
    summary.late += s.late;
    summary.lost += s.lost;
    summary.troubled += s.troubled;
    // Only the worst are drawn (the roster's order), but the sums are over every listener.
    const worst = new Set(roster.ranked(now).map(([name]) => name));
    for (const [name, l] of roster.reporting(now)) {
      summary.listeners++;
      if (l.power) powers.push(l.power);
      const samples: Array<[number, number, number]> = [];
      const power: Array<[number, number, number | null]> = [];
      for (let i = 1; i < l.history.length; i++) {
        const a = l.history[i - 1]!;
        const b = l.history[i]!;
        const dt = Math.max(1, b.t - a.t);
        const rate = Math.max(0, ((b.pulses - a.pulses) * 1000) / dt);
        samples.push([Math.round(now - b.t), Math.round(rate * 10) / 10, Math.round((Math.max(0, b.onMs - a.onMs) / dt) * 1000) / 10]);
        // The sums: each value holds over its report interval (and the last one until now).
        const newer = i === l.history.length - 1 && now - b.t <= HOLD_MS ? 0 : now - b.t;
        sums.add(now - a.t, newer, [rate]);
        if (l.power) {
          // measured and estimated power, each the energy between two reports over their interval
          const measured = round3((Math.max(0, b.measuredJ - a.measuredJ) * 1000) / dt);
          const estimated = a.estimatedJ !== null && b.estimatedJ !== null ? round3((Math.max(0, b.estimatedJ - a.estimatedJ) * 1000) / dt) : null;
          power.push([Math.round(now - b.t), measured, estimated]);
          powerSums.add(now - a.t, newer, [measured, estimated ?? 0]);
        }
      }
      const p = power[power.length - 1];
      const last: Recent = { measured_w: p ? p[1] : null, estimated_w: p ? p[2] : null };
      if (p) {
        recent.pis++;
        recent.measured += p[1];
        if (p[2] !== null) {
          recent.estimates++;
          recent.estimated += p[2];
        }
      }
      if (!worst.has(name)) continue;
      const trace: ListenerTrace = {
        name,
        master,
        samples,
        ...(l.offset !== null ? { offset_ms: l.offset } : {}),
        ...(l.rtt !== null ? { rtt_ms: l.rtt } : {}),
        lost: l.lost,
        late: l.late,
        ...(l.power ? { power: { ...l.power, samples: power, ...last } } : {}),
      };
      drawn.push({ trace, entry: l });
    }
  }
  // Over all masters, the worst MAX_LISTED in the roster's order.
  const byName = (a: ListenerTrace, b: ListenerTrace): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.master < b.master ? -1 : 1);
  const listeners = drawn
    .sort((a, b) => worse(a.entry, b.entry) || byName(a.trace, b.trace))
    .slice(0, MAX_LISTED)
    .map((d) => d.trace);
  const sum = sums.rows().map(([ago, hz]) => [ago, Math.round(hz! * 10) / 10] as [number, number]);
  const powerSum = powers.length
    ? {
        ...sumPower(powers),
        measured_w: recent.pis ? round3(recent.measured) : null,
        estimated_w: recent.estimates ? round3(recent.estimated) : null,
        samples: powerSums.rows().map(([ago, m, e]) => [ago, round3(m!), round3(e!)] as [number, number, number]),
      }
    : undefined;
  return { t: now, window_ms: SCOPE_WINDOW_MS, shapers, listeners, summary, sum, ...(powerSum ? { power: powerSum } : {}) };
}

/** The sums' grid, and how long a listener's last value is held after its last report (reports come every 2 to 10 s). */
const GRID_MS = 1000;
const HOLD_MS = 15_000;

/**
 * Step functions summed on a 1 s grid: each listener's value holds over its report interval,
 * so listeners that report at different moments add up. (One point per report, slotted by
 * its time, made the sum zigzag as two listeners' reports fell in alternate slots.)
 */
class GridSum {
  private readonly slots = new Map<number, number[]>();

  constructor(private readonly width: number) {}

  /** `values` held from `olderAgo` (exclusive) to `newerAgo` (inclusive), ms before now. */
  add(olderAgo: number, newerAgo: number, values: number[]): void {
    for (let k = Math.max(0, Math.ceil(newerAgo / GRID_MS)); k * GRID_MS < olderAgo && k * GRID_MS <= HISTORY_MS; k++) {
      let slot = this.slots.get(k);
      if (!slot) this.slots.set(k, (slot = new Array<number>(this.width).fill(0)));
      for (let i = 0; i < this.width; i++) slot[i]! += values[i] ?? 0;
    }
  }

  /** [ms before now, ...sums], oldest first. */
  rows(): number[][] {
    return [...this.slots.entries()].sort((a, b) => b[0] - a[0]).map(([k, v]) => [k * GRID_MS, ...v]);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Sends a snapshot a few times a second while an editor is watching, and nothing (not even a
 * timer) when none is: the sidebar says it is watching every few seconds while it is shown.
 */
export class ScopePublisher {
  private watchedUntil = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly snapshot: (now: number) => ScopeSnapshot,
    private readonly sink: (snapshot: ScopeSnapshot) => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  watch(): void {
    this.watchedUntil = this.clock.now() + WATCH_MS;
    if (!this.timer) this.tick();
  }

  private tick(): void {
    this.timer = undefined;
    const now = this.clock.now();
    if (now > this.watchedUntil) return;
    this.sink(this.snapshot(now));
    this.timer = this.clock.setTimer(() => this.tick(), 1000 / SCOPE_UPDATES_PER_S);
  }
}
