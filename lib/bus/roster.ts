// A master's view of its listeners from their reports, readable at 1,000 of them: one summary
// (joined, synced, late, lost) and the worst few, never a row each. The status line, the stats
// output and the SQI scope's listener view all say the same (lossOf is what counts as lost).
// Where Pis have a power sensor, the summary also sums what their coils drew (lib/power).

import { powerOf, sumPower, type PiPower, type PowerSum } from "../power/tally";

/** Listeners listed by name at most (the worst first); the rest are in the summary. */
export const MAX_LISTED = 20;
/** A listener not heard from for this long is left out of the roster (reports come every 2 to 10 s). */
export const ROSTER_FORGET_MS = 60_000;
/** Names remembered at most (the longest silent go first). */
export const MAX_ROSTER = 5000;

/** What a listener's counters say it lost: gaps, late, missed, unsynced, what its shapers could not fire, and what went by while it was away. */
export function lossOf(c: Readonly<Record<string, number>>): number {
  return (
    (c.missing ?? 0) +
    (c.late_dropped ?? 0) +
    (c.missed ?? 0) +
    (c.unsynced ?? 0) +
    (c.backlog_dropped ?? 0) +
    (c.fired_dropped ?? 0) +
    (c.fired_skipped ?? 0) +
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

interface Entry {
  lost: number;
  late: number;
  offset: number | null;
  rtt: number | null;
  heard: number;
  power: PiPower | undefined;
}

/** A silent power sensor is trouble too, ranked after loss and lateness: 1 when it is silent. */
export function silence(p: PiPower | undefined): number {
  return p?.silent ? 1 : 0;
}

export class Roster {
  private readonly entries = new Map<string, Entry>();

  take(r: { name: string; counters: Record<string, number>; offset_ms?: number; rtt_ms?: number }, now: number): void {
    this.entries.delete(r.name); // re-inserted: the map stays in order of last report
    this.entries.set(r.name, {
      lost: lossOf(r.counters),
      late: r.counters.late ?? 0,
      offset: r.offset_ms ?? null,
      rtt: r.rtt_ms ?? null,
      heard: now,
      power: powerOf(r.counters),
    });
    for (const [k, e] of this.entries) {
      if (this.entries.size <= MAX_ROSTER && e.heard >= now - ROSTER_FORGET_MS) break;
      this.entries.delete(k);
    }
  }

  summary(joined: number, now: number): RosterSummary {
    const s: RosterSummary = { joined, synced: 0, late: 0, lost: 0, troubled: 0 };
    const power: PiPower[] = [];
    for (const e of this.fresh(now)) {
      if (e.offset !== null) s.synced++;
      s.late += e.late;
      s.lost += e.lost;
      if (e.late || e.lost || silence(e.power)) s.troubled++;
      if (e.power) power.push(e.power);
    }
    if (power.length) s.power = sumPower(power);
    return s;
  }

  /** The `n` worst listeners: most lost, then most late, then a silent power sensor, then the largest round trip. */
  worst(now: number, n = MAX_LISTED): ListenerLine[] {
    const lines: ListenerLine[] = [];
    for (const [name, e] of this.entries)
      if (e.heard >= now - ROSTER_FORGET_MS)
        lines.push({
          name,
          lost: e.lost,
          late: e.late,
          offset_ms: e.offset,
          rtt_ms: e.rtt,
          heard_ms: Math.round(now - e.heard),
          ...(e.power ? { power: e.power } : {}),
        });
    return lines
      .sort(
        (a, b) =>
          b.lost - a.lost ||
          b.late - a.late ||
          silence(b.power) - silence(a.power) ||
          (b.rtt_ms ?? Infinity) - (a.rtt_ms ?? Infinity) ||
          (a.name < b.name ? -1 : 1),
      )
      .slice(0, n);
  }

  private *fresh(now: number): Iterable<Entry> {
    for (const e of this.entries.values()) if (e.heard >= now - ROSTER_FORGET_MS) yield e;
  }
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
