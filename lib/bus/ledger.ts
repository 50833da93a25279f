// The master's account of each listener's absences. A listener counts what it missed while
// it was connected (gaps in seq), and across a reconnect of the same process too. What it
// cannot count is what went by while its Node-RED was down: a restarted listener starts
// counting afresh. Each listener reports its life (instance), the master run it follows and
// the first and highest seq it saw of that run; when a listener comes back as a new life,
// the seqs between the old life's last report and the new life's first event were sent
// while it was away: its loss, `lost_while_away`, added to its reports here. Events the old
// life received after its last report are counted in that loss too (it cannot tell us).

import type { ReportFrame } from "./frames";

/** What the ledger reads of a report: whose it is, its life and run, and its counters (where the loss goes). */
type Accountable = Pick<ReportFrame, "name" | "instance" | "run" | "counters">;

/** Listener names remembered at most; the longest silent go first. */
export const MAX_LEDGER_NAMES = 5000;
/** A name not heard from for this long is forgotten (a Pi away for longer starts a new account). */
export const LEDGER_FORGET_MS = 24 * 3600 * 1000;

interface Account {
  instance: string;
  lastSeq: number | undefined;
  lost: number;
  heard: number;
}

export class AbsenceLedger {
  private readonly accounts = new Map<string, Account>();

  /** @param run this master's run: only reports that follow it are accounted. */
  constructor(private readonly run: string) {}

  /** The report as it goes on: with `lost_while_away` in its counters once the listener was away. */
  take<R extends Accountable>(report: R, now: number): R {
    // The loss is the master's to say: a listener's own claim of it is dropped.
    const { lost_while_away: _claimed, ...c } = report.counters;
    if (!report.instance || report.run !== this.run) return { ...report, counters: c };
    let a = this.accounts.get(report.name);
    if (a) this.accounts.delete(report.name);
    const first = c.first_seq;
    if (!a) a = { instance: report.instance, lastSeq: undefined, lost: 0, heard: now };
    else if (a.instance !== report.instance) {
      // A new life: its first event tells where it came back. Until it has one, wait.
      if (first === undefined) {
        this.accounts.set(report.name, a);
        return this.withLoss(report, c, a);
      }
      if (a.lastSeq !== undefined) a.lost += Math.max(0, first - 1 - a.lastSeq);
      a.instance = report.instance;
    }
    if (c.last_seq !== undefined) a.lastSeq = c.last_seq;
    a.heard = now;
    this.accounts.set(report.name, a);
    for (const [k, x] of this.accounts) {
      if (this.accounts.size <= MAX_LEDGER_NAMES && x.heard >= now - LEDGER_FORGET_MS) break;
      this.accounts.delete(k);
    }
    return this.withLoss(report, c, a);
  }

  private withLoss<R extends Accountable>(report: R, counters: Record<string, number>, a: Account): R {
    return { ...report, counters: { ...counters, lost_while_away: a.lost } };
  }
}
