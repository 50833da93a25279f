// The "SQI scope" sidebar's data, without Node-RED: what each pulse-shaper fired lately (its
// edges over the last few seconds) and, on a master, what each listener reported (pulse rate,
// duty, clock sync and losses over time), plus their sum. The nodes feed it; a publisher
// sends a compact snapshot a few times a second, and only while an editor is watching.

import { lossOf, MAX_LISTED, silence } from "./bus/roster";
import type { Clock, TimerHandle } from "./clock";
import { powerOf, sumPower, type PiPower, type PowerSum } from "./power/tally";

export const SCOPE_WINDOW_MS = 2000;
/** Snapshots a second while watched: a few, so the editor redraws smoothly at little cost. */
export const SCOPE_UPDATES_PER_S = 4;
/** An editor that has not said it is watching for this long is gone: publishing stops. */
const WATCH_MS = 10_000;
/** Edges kept per shaper: the window at the fastest edge rate the panel allows, bounded. */
const MAX_EDGES = 4000;
/** Listener history: this long, one sample per report. */
const HISTORY_MS = 30_000;
/** A listener silent this long is dropped from the scope (its reports come every 2 s). */
export const SILENT_LISTENER_MS = 60_000;
/** Listeners shown at most, over all masters: the oldest-heard go first. */
export const MAX_SCOPE_LISTENERS = 2000;

export interface ShaperTrace {
  id: string;
  label: string;
  /** [ms before `t`, level] for each edge in the window, oldest first */
  edges: Array<[number, number]>;
  /** level before the first edge in the window */
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

interface Shaper {
  label: string;
  edges: Array<[number, number]>;
  level: number;
  counters: () => Record<string, number>;
}

interface Listener {
  master: string;
  /** per report: pulses and on-time fired, and energy measured (mJ) and estimated (eJ) since deploy */
  history: Array<{ t: number; pulses: number; onMs: number; mJ: number; eJ: number | null }>;
  power: PiPower | undefined;
  offset_ms?: number;
  rtt_ms?: number;
  lost: number;
  late: number;
}

export class Scope {
  private readonly shapers = new Map<string, Shaper>();
  private readonly listeners = new Map<string, Listener>();

  /** A pulse-shaper's edges; returns the function to call with each edge, and one to remove it. */
  addShaper(id: string, label: string, counters: () => Record<string, number>): { edge: (t: number, level: number) => void; remove: () => void } {
    const s: Shaper = { label, edges: [], level: 0, counters };
    this.shapers.set(id, s);
    return {
      edge: (t, level) => {
        s.edges.push([t, level]);
        if (s.edges.length > MAX_EDGES) s.edges.splice(0, s.edges.length - MAX_EDGES);
      },
      remove: () => {
        if (this.shapers.get(id) === s) this.shapers.delete(id);
      },
    };
  }

  /** A listener's report, as a master's sqi-event-bus receives it. */
  report(master: string, t: number, r: { name: string; counters: Record<string, number>; offset_ms?: number; rtt_ms?: number }): void {
    const key = `${master}/${r.name}`;
    let l = this.listeners.get(key);
    if (l)
      this.listeners.delete(key); // re-inserted: the map stays in order of last report
    else l = { master, history: [], lost: 0, late: 0, power: undefined };
    this.listeners.set(key, l);
    const c = r.counters;
    l.power = powerOf(c);
    l.history.push({ t, pulses: c.fired_pulses ?? 0, onMs: c.fired_on_time_ms ?? 0, mJ: l.power?.energy_j ?? 0, eJ: l.power?.estimated_j ?? null });
    while (l.history.length > 2 && (l.history[0]?.t ?? t) < t - HISTORY_MS) l.history.shift();
    l.offset_ms = r.offset_ms;
    l.rtt_ms = r.rtt_ms;
    l.lost = lossOf(c);
    l.late = c.late ?? 0;
    // Names that went silent are forgotten, and there are never more than the cap: one
    // connection reporting under 50,000 names (before names were bound) kept them all.
    for (const [k, x] of this.listeners) {
      if (this.listeners.size <= MAX_SCOPE_LISTENERS && (x.history[x.history.length - 1]?.t ?? t) >= t - SILENT_LISTENER_MS) break;
      this.listeners.delete(k);
    }
  }

  /** Forgets the listeners a master reported (when that master's node closes). */
  removeMaster(master: string): void {
    for (const [k, l] of this.listeners) if (l.master === master) this.listeners.delete(k);
  }

  get empty(): boolean {
    return this.shapers.size === 0 && this.listeners.size === 0;
  }

  snapshot(now: number): ScopeSnapshot {
    const from = now - SCOPE_WINDOW_MS;
    const shapers: ShaperTrace[] = [];
    for (const [id, s] of this.shapers) {
      let k = 0;
      while (k < s.edges.length && s.edges[k]![0] < from) k++;
      const start = k > 0 ? s.edges[k - 1]![1] : 0;
      s.edges.splice(0, Math.max(0, k - 1)); // keep the last edge before the window: it says the level at its start
      const inWindow = s.edges.filter((e) => e[0] >= from);
      let on = 0;
      let level = start;
      let at = from;
      let rises = 0;
      for (const [t, v] of inWindow) {
        if (level > 0) on += (t - at) * (level > 1 ? level / 100 : 1);
        if (v > 0 && level === 0) rises++;
        level = v;
        at = t;
      }
      if (level > 0) on += (now - at) * (level > 1 ? level / 100 : 1);
      shapers.push({
        id,
        label: s.label,
        edges: inWindow.map(([t, v]) => [Math.round((now - t) * 10) / 10, v]),
        start,
        rate_hz: Math.round((rises * 1000 * 10) / SCOPE_WINDOW_MS) / 10,
        duty_pct: Math.round((on / SCOPE_WINDOW_MS) * 1000) / 10,
        counters: s.counters(),
      });
    }
    const listeners: ListenerTrace[] = [];
    const summary: ListenersSummary = { listeners: this.listeners.size, synced: 0, late: 0, lost: 0, troubled: 0 };
    const sums = new GridSum(1);
    const powerSums = new GridSum(2);
    const powers: PiPower[] = [];
    const recent = { measured: 0, estimated: 0, pis: 0, estimates: 0 };
    for (const l of this.listeners.values()) {
      if (l.power) powers.push(l.power);
      if (l.offset_ms !== undefined) summary.synced++;
      summary.late += l.late;
      summary.lost += l.lost;
      if (l.late || l.lost || l.power?.silent) summary.troubled++;
    }
    // The worst first; only they are drawn, but the sum is over every listener.
    const worst = new Set(
      [...this.listeners.entries()]
        .sort(([ka, a], [kb, b]) => b.lost - a.lost || b.late - a.late || silence(b.power) - silence(a.power) || (ka < kb ? -1 : 1))
        .slice(0, MAX_LISTED)
        .map(([k]) => k),
    );
    for (const [key, l] of this.listeners) {
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
          const measured = round3((Math.max(0, b.mJ - a.mJ) * 1000) / dt);
          const estimated = a.eJ !== null && b.eJ !== null ? round3((Math.max(0, b.eJ - a.eJ) * 1000) / dt) : null;
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
      if (!worst.has(key)) continue;
      listeners.push({
        name: key.slice(l.master.length + 1),
        master: l.master,
        samples,
        ...(l.offset_ms !== undefined ? { offset_ms: l.offset_ms } : {}),
        ...(l.rtt_ms !== undefined ? { rtt_ms: l.rtt_ms } : {}),
        lost: l.lost,
        late: l.late,
        ...(l.power ? { power: { ...l.power, samples: power, ...last } } : {}),
      });
    }
    listeners.sort((a, b) => b.lost - a.lost || b.late - a.late || silence(b.power) - silence(a.power) || (a.name < b.name ? -1 : 1));
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

/** The one scope of this Node-RED, shared by every node of the package. */
export const scope = new Scope();

/**
 * Sends the scope's snapshot a few times a second while an editor is watching, and nothing
 * (not even a timer) when none is: the sidebar says it is watching every few seconds.
 */
export class ScopePublisher {
  private watchedUntil = 0;
  private timer: TimerHandle | undefined;
  /** Where snapshots go: the editors, through the runtime that loaded the nodes last. */
  sink: ((snapshot: ScopeSnapshot) => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly source: Scope,
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
    if (now > this.watchedUntil || !this.sink) return;
    this.sink(this.source.snapshot(now));
    this.timer = this.clock.setTimer(() => this.tick(), 1000 / SCOPE_UPDATES_PER_S);
  }
}

let shared: ScopePublisher | undefined;
const routed = new WeakSet<object>();

/** This Node-RED's publisher (one per process), and whether `app` still needs its watch route. */
export function sharedPublisher(clock: Clock, app: object): { publisher: ScopePublisher; needsRoute: boolean } {
  shared ??= new ScopePublisher(clock, scope);
  const needsRoute = !routed.has(app);
  routed.add(app);
  return { publisher: shared, needsRoute };
}
