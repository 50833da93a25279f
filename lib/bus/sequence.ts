// Loss accounting for a stream of numbered events: what arrived, what is missing between
// what arrived (gaps), what came twice (duplicates, e.g. MQTT QoS 1 redelivery) and what
// came late but still new (reordered: it fills a gap counted earlier). A restarted master
// starts again at 1: a seq far below the last one is a new stream, counted as a restart,
// not as a flood of duplicates.

export interface SequenceCounters {
  received: number;
  /** times one or more seqs were skipped */
  gaps: number;
  /** seqs skipped and not (yet) seen */
  missing: number;
  duplicates: number;
  reordered: number;
  restarts: number;
}

/** How many recent seqs are remembered to tell a duplicate from a late one. */
const WINDOW = 4096;

export class SequenceTracker {
  readonly counters: SequenceCounters = { received: 0, gaps: 0, missing: 0, duplicates: 0, reordered: 0, restarts: 0 };
  private highest: number | undefined;
  private readonly seen = new Set<number>();
  /** the last WINDOW seqs remembered, as a ring: shifting an array per event costs O(WINDOW) */
  private readonly order = new Float64Array(WINDOW);
  private orderNext = 0;
  private orderSize = 0;

  /** Records one seq; "duplicate" means the event was already delivered and should be dropped. */
  see(seq: unknown): "new" | "duplicate" | "restart" {
    this.counters.received++;
    if (typeof seq !== "number" || !Number.isInteger(seq)) return "new";
    if (this.highest === undefined || seq > this.highest) {
      if (this.highest !== undefined && seq > this.highest + 1) {
        this.counters.gaps++;
        this.counters.missing += seq - this.highest - 1;
      }
      this.highest = seq;
      this.remember(seq);
      return "new";
    }
    if (seq === 1 && this.highest > 1) return this.restart(seq);
    if (this.seen.has(seq)) {
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
    this.counters.restarts++;
    this.highest = seq;
    this.seen.clear();
    this.orderNext = this.orderSize = 0;
    this.remember(seq);
    return "restart";
  }

  get last(): number | undefined {
    return this.highest;
  }

  private remember(seq: number): void {
    if (this.orderSize === WINDOW) this.seen.delete(this.order[this.orderNext]!);
    else this.orderSize++;
    this.order[this.orderNext] = seq;
    this.orderNext = (this.orderNext + 1) % WINDOW;
    this.seen.add(seq);
  }
}
