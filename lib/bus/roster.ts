// A master's view of its listeners from their reports, readable at 1,000 of them: one summary
// (joined, synced, late, lost) and the worst few, never a row each. It is the one place a
// master keeps its listeners: the status line, the stats output and the SQI scope (lib/scope.ts,
// which draws each listener's recent history from here) all read it, so they say the same.
// Where Pis have a power sensor, the summary also sums what their coils drew (lib/power).

import { powerOf, sumPower, type PiPower, type PowerSum } from "../power/tally";
import type { ReportGroups } from "./frames";

/** Listeners listed by name at most (the worst first); the rest are in the summary. */
export const MAX_LISTED = 20;
/** A listener not heard from for this long is left out of the roster (reports come every 2 to 10 s). */
export const ROSTER_FORGET_MS = 60_000;
/** Names remembered at most (the longest silent go first). */
export const MAX_ROSTER = 5000;
/** Each listener's history for the SQI scope: this long, one sample per report (at least two kept). */
export const HISTORY_MS = 30_000;

/** What a listener's report says it lost: gaps, late, missed, unsynced, what its shapers could not fire, and what went by while it was away. */
export function lossOf(r: ReportGroups): number {
  const c = r.counters;
  const f = r.fired ?? {};
  return (
    (c.missing ?? 0) +
    (c.late_dropped ?? 0) +
    (c.missed ?? 0) +
    (c.unsynced ?? 0) +
    (c.backlog_dropped ?? 0) +
    (f.dropped ?? 0) +
    (f.skipped ?? 0) +
    (c.lost_while_away ?? 0)
  );
}

export interface ListenerLine {
  name: string;
  lost: number;
  late: number;
  offset_ms: number | null;
  rtt_ms: number | null;
  /** ms since its last report */
  heard_ms: number;
  /** its power sensor's readings and the estimate beside them (only when it has a sensor) */
  power?: PiPower;
}

export interface RosterSummary {
  /** connected now (from the transport) */
  joined: number;
  /** reported a clock offset */
  synced: number;
  /** events fired late, and lost, summed over every listener that reports */
  late: number;
  lost: number;
  /** listeners that lost or fired late anything, or whose power sensor went silent */
  troubled: number;
  /** what the Pis with a power sensor measured, summed (absent when none has one) */
  power?: PowerSum;
}

/** One report's running totals: pulses and on-time fired, and energy measured and estimated (J) since that Pi's deploy. */
export interface HistoryPoint {
  t: number;
  pulses: number;
  onMs: number;
  measuredJ: number;
  estimatedJ: number | null;
}

/** What the roster keeps of a listener, as of its last report. */
export interface RosterEntry {
  readonly lost: number;
  readonly late: number;
  readonly offset: number | null;
  readonly rtt: number | null;
  /** when its last report came */
  readonly heard: number;
  readonly power: PiPower | undefined;
  /** oldest first, over the last HISTORY_MS */
  readonly history: readonly HistoryPoint[];
}

type Entry = { -readonly [K in keyof RosterEntry]: RosterEntry[K] } & { history: HistoryPoint[] };

/** A silent power sensor is trouble too, ranked after loss and lateness: 1 when it is silent. */
export function silence(p: PiPower | undefined): number {
  return p?.silent ? 1 : 0;
}

export class Roster {
  private readonly entries = new Map<string, Entry>();

  take(r: ReportGroups & { name: string; offset_ms?: number; rtt_ms?: number }, now: number): void {
    const c = r.counters;
    const power = powerOf(r);
    const history = this.entries.get(r.name)?.history ?? [];
    history.push({
      t: now,
      pulses: r.fired?.pulses ?? 0,
      onMs: r.fired?.on_time_ms ?? 0,
      measuredJ: power?.energy_j ?? 0,
      estimatedJ: power?.estimated_j ?? null,
    });
    while (history.length > 2 && history[0]!.t < now - HISTORY_MS) history.shift();
    this.entries.delete(r.name); // re-inserted: the map stays in order of last report
    this.entries.set(r.name, { lost: lossOf(r), late: c.late ?? 0, offset: r.offset_ms ?? null, rtt: r.rtt_ms ?? null, heard: now, power, history });
    for (const [k, e] of this.entries) {
      if (this.entries.size <= MAX_ROSTER && e.heard >= now - ROSTER_FORGET_MS) break;
      this.entries.delete(k);
    }
  }

  summary(joined: number, now: number): RosterSummary {
    const s: RosterSummary = { joined, synced: 0, late: 0, lost: 0, troubled: 0 };
    const power: PiPower[] = [];
    for (const [, e] of this.reporting(now)) {
      if (e.offset !== null) s.synced++;
      s.late += e.late;
      s.lost += e.lost;
      if (e.late || e.lost || silence(e.power)) s.troubled++;
      if (e.power) power.push(e.power);
    }
    if (power.length) s.power = sumPower(power);
    return s;
  }

  /** The `n` worst listeners (in the order of `worse`). */
  worst(now: number, n = MAX_LISTED): ListenerLine[] {
    return this.ranked(now, n).map(([name, e]) => ({
      name,
      lost: e.lost,
      late: e.late,
      offset_ms: e.offset,
      rtt_ms: e.rtt,
      heard_ms: Math.round(now - e.heard),
      ...(e.power ? { power: e.power } : {}),
    }));
  }

  /** The `n` worst listeners heard within ROSTER_FORGET_MS, with what the roster keeps of each. */
  ranked(now: number, n = MAX_LISTED): Array<[string, RosterEntry]> {
    return [...this.reporting(now)].sort(([an, a], [bn, b]) => worse(a, b) || (an < bn ? -1 : 1)).slice(0, n);
  }

  /** Every listener heard within ROSTER_FORGET_MS (a pure read: the silent ones are skipped, not removed). */
  *reporting(now: number): Iterable<[string, RosterEntry]> {
    for (const entry of this.entries) if (entry[1].heard >= now - ROSTER_FORGET_MS) yield entry;
  }
}

/** Which of two listeners is worse, first: most lost, then most late, then a silent power sensor, then the largest round trip (none is largest). */
export function worse(a: RosterEntry, b: RosterEntry): number {
  return b.lost - a.lost || b.late - a.late || silence(b.power) - silence(a.power) || (b.rtt ?? Infinity) - (a.rtt ?? Infinity);
}

/** What a master's status says of its listeners after their number, most telling first: "lost 12", "late 3", "998 synced". */
export function summaryParts(s: RosterSummary): string[] {
  const silent = s.power?.silent ?? 0;
  return [
    s.lost ? `lost ${s.lost}` : "",
    s.late ? `late ${s.late}` : "",
    silent ? `${silent} sensor${silent === 1 ? "" : "s"} silent` : "",
    s.synced < s.joined ? `${s.synced} synced` : "",
  ].filter(Boolean);
}
