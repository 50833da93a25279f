// Loss accounting for a stream of numbered events: what arrived, what is missing between
// what arrived (gaps), what came twice (duplicates, e.g. MQTT QoS 1 redelivery) and what
// came late but still new (reordered: it fills a gap counted earlier). A restarted master
// starts again at 1 under a new run identity (follow()): its events are a new stream,
// counted as one restart, not taken for duplicates of the old one, whatever seq the listener
// reconnects at. Without a run (an old master), a seq far below the last one is a restart.
// One frame cannot claim more than MAX_GAP missing events: a forged seq of 9e15 would
// otherwise poison `missing` for good; such a jump is counted as implausible and the count
// starts again from it.

export interface SequenceCounters {
  received: number;
  /** times one or more seqs were skipped */
  gaps: number;
  /** seqs skipped and not (yet) seen */
  missing: number;
  duplicates: number;
  reordered: number;
  restarts: number;
  /** seqs that jumped more than MAX_GAP ahead: not counted as missing */
  implausible: number;
}

/** The most events one jump of seq may claim as missing: 2,000 events/s for over 8 minutes. */
export const MAX_GAP = 1_000_000;

/** How many recent seqs are remembered to tell a duplicate from a late one. */
const WINDOW = 4096;

export class SequenceTracker {
  readonly counters: SequenceCounters = { received: 0, gaps: 0, missing: 0, duplicates: 0, reordered: 0, restarts: 0, implausible: 0 };
  private highest: number | undefined;
  private first: number | undefined;
  private run: string | undefined;
  /** A new run after another: its seqs before the first one seen went by while this listener reconnected. */
  private fromOne = false;
  /**
   * The seqs seen, one slot per seq modulo WINDOW: a slot holds the latest seq of its class,
   * so the last WINDOW seqs are remembered exactly, with no Set to grow and no garbage per
   * event (a Set's add and delete were a listener's largest cost at 1,000 listeners a process).
   */
  private readonly slots = new Float64Array(WINDOW).fill(NaN);

  /** Records one seq; "duplicate" means the event was already delivered and should be dropped. */
  see(seq: unknown): "new" | "duplicate" | "restart" {
    this.counters.received++;
    if (typeof seq !== "number" || !Number.isInteger(seq)) return "new";
    if (this.highest === undefined || seq > this.highest) {
      this.first ??= seq;
      const from = this.highest ?? (this.fromOne ? 0 : undefined);
      this.fromOne = false;
      if (from !== undefined && seq > from + MAX_GAP) this.counters.implausible++;
      else if (from !== undefined && seq > from + 1) {
        this.counters.gaps++;
        this.counters.missing += seq - from - 1;
      }
      this.highest = seq;
      this.remember(seq);
      return "new";
    }
    if (seq === 1 && this.highest > 1) return this.restart(seq);
    if (this.slots[slot(seq)] === seq) {
      this.counters.duplicates++;
      return "duplicate";
    }
    if (this.highest - seq < WINDOW) {
      this.counters.reordered++;
      this.counters.missing = Math.max(0, this.counters.missing - 1);
      this.remember(seq);
      return "new";
    }
    return this.restart(seq);
  }

  private restart(seq: number): "restart" {
    this.forget();
    this.first = this.highest = seq;
    this.remember(seq);
    return "restart";
  }

  private forget(): void {
    this.counters.restarts++;
    this.highest = this.first = undefined;
    this.slots.fill(NaN);
  }

  /**
   * The run the next seqs belong to (from the frame that carries them). A new run after
   * another is the master's restart: counted once, and its seqs are a new stream.
   */
  follow(run: string | undefined): void {
    if (run === undefined || run === this.run) return;
    if (this.run !== undefined) {
      this.forget();
      this.fromOne = true;
    }
    this.run = run;
  }

  get last(): number | undefined {
    return this.highest;
  }

  /** The run the seqs follow (without building `stream`). */
  get currentRun(): string | undefined {
    return this.run;
  }

  /** The first and highest seq of the current run, and the run: what a report tells the master about this stream. */
  get stream(): { first_seq?: number; last_seq?: number; run?: string } {
    return {
      ...(this.first !== undefined ? { first_seq: this.first } : {}),
      ...(this.highest !== undefined ? { last_seq: this.highest } : {}),
      ...(this.run !== undefined ? { run: this.run } : {}),
    };
  }

  private remember(seq: number): void {
    this.slots[slot(seq)] = seq;
  }
}

function slot(seq: number): number {
  return ((seq % WINDOW) + WINDOW) % WINDOW;
}
