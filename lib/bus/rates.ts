// How often one listener (one WebSocket connection, or one MQTT listener name) may send each
// kind of upstream frame. A listener of this package pings a few times a second at most while
// it measures its offset, and reports every 2 s; more is a flood, rejected and counted (and
// enough rejected frames close a WebSocket connection).

/** Frames of each kind per second at most. */
export const MAX_PER_SECOND: Readonly<Record<"hello" | "ping" | "report", number>> = { hello: 2, ping: 50, report: 5 };

export class FrameRates {
  private second = -1;
  private readonly counts = { hello: 0, ping: 0, report: 0 };

  /** Counts one frame at `now` (ms); the reason to refuse it when it is over its kind's rate. */
  over(kind: "hello" | "ping" | "report", now: number): string | undefined {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.counts.hello = this.counts.ping = this.counts.report = 0;
    }
    const max = MAX_PER_SECOND[kind];
    return ++this.counts[kind] > max ? `more than ${max} ${kind} frames a second` : undefined;
  }
}
