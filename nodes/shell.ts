// What every node shell of this package does the same way: the one Clock (a test's virtual
// clock from settings.sqiClock, else real time), refusing its inputs after a configuration
// error, a status redrawn at most every STATUS_EVERY_MS, a rate meter, timers that repeat,
// and errors said at most once a second each. The decisions live in lib/; this is wiring.

import { realClock, type Clock, type TimerHandle } from "../lib/clock";
import { PANEL_RANGES, type RangedType } from "../lib/ranges";
import type { NumberRule } from "../lib/numbers";
import { clip } from "../lib/status-line";
import type { DoneFn, Node, NodeStatus, RED } from "./red";

/** How often a busy node's status is redrawn at most. */
export const STATUS_EVERY_MS = 500;
/** The same error is logged at most once a second, with how many were held back. */
export const ERROR_EVERY_MS = 1000;

/**
 * The Clock of this runtime: settings.sqiClock when the runtime's settings set one (a test's
 * virtual clock; a simulated Pi's drifting clock in scripts/start.ts), else real time. Each node
 * module reads it once, as Node-RED loads it, and its nodes use that one: the one place a
 * runtime's time is chosen, as settings.js chooses the rest of a runtime.
 */
export function clockOf(red: RED): Clock {
  return (red.settings.sqiClock as Clock | undefined) ?? realClock;
}

/**
 * A node whose configuration is wrong: says why in the log (after `prefix: `, when given) and
 * in a red status, and fails every message with the same error (done(err): a catch node sees
 * it), said at most once a second (ThrottledErrors). Nothing is passed on.
 */
export function refuseInputs(node: Node, clock: Clock, prefix: string, problems: string[]): void {
  const text = problems.join("; ");
  node.error(`${prefix ? `${prefix}: ` : ""}${text}`);
  node.status({ fill: "red", shape: "ring", text: clip(problems[0] ?? "configuration error") });
  const errors = new ThrottledErrors(clock, node, prefix);
  node.on("input", (_msg, _send, done) => errors.fail(text, done));
}

/**
 * A status drawn by `draw`, at most every STATUS_EVERY_MS: `soon()` asks for a redraw (one
 * timer at most), `now()` draws at once. When `draw` returns true it draws again after the
 * interval (while something moves), else it waits for the next `soon()`.
 */
export class StatusTicker {
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly node: Pick<Node, "status">,
    private readonly draw: () => { status: NodeStatus; again?: boolean },
  ) {}

  soon(): void {
    if (!this.timer && !this.stopped) this.timer = this.clock.setTimer(() => this.now(), STATUS_EVERY_MS);
  }

  now(): void {
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const { status, again } = this.draw();
    this.node.status(status);
    if (again) this.soon();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }
}

/** Per second since the last reading, of a total that only grows (events, pulses). */
export class RateMeter {
  private mark: { at: number; total: number };

  constructor(private readonly clock: Clock) {
    this.mark = { at: clock.now(), total: 0 };
  }

  /** The rate since the last reading (or since `reset`), and a new mark. */
  read(total: number): number {
    const now = this.clock.now();
    const r = ((total - this.mark.total) * 1000) / Math.max(1, now - this.mark.at);
    this.mark = { at: now, total };
    return r;
  }

  /** Starts over from `total` now, without a reading. */
  reset(total: number): void {
    this.mark = { at: this.clock.now(), total };
  }

  /** ms since the last reading. */
  get age(): number {
    return this.clock.now() - this.mark.at;
  }
}

/** Runs `f` every `ms` (never when ms <= 0) until the returned stop is called. */
export function every(clock: Clock, ms: number, f: () => void): () => void {
  let timer: TimerHandle | undefined;
  let stopped = false;
  const next = (): void => {
    timer = clock.setTimer(() => {
      if (stopped) return;
      f();
      next();
    }, ms);
  };
  if (ms > 0) next();
  return () => {
    stopped = true;
    clock.clearTimer(timer);
  };
}

/**
 * The one way this package's nodes say an error that may come at the rate of the input (a bad
 * event 1,000 times a second), by Node-RED 1.0's contract: a message that failed ends with
 * done(err), so a catch node gets it and a complete node does not (node.error then done() told
 * both). The same text is said at most once per ERROR_EVERY_MS, then with how many like it were
 * held back; a message held back is counted in that number and not ended (neither catch nor
 * complete hears of it), so the log stays bounded.
 */
export class ThrottledErrors {
  private readonly shown = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly node: Pick<Node, "error">,
    private readonly prefix: string,
  ) {}

  /** The message whose `done` this is failed for `text`: done(err), or counted when the same text was said within the last second. */
  fail(text: string, done: DoneFn): void {
    const said = this.say(text);
    if (said) done(new Error(said));
  }

  /** An error of the node's own (no message failed): logged, at most once a second per text. */
  error(text: string): void {
    const said = this.say(text);
    if (said) this.node.error(said);
  }

  /** The line to say now, or undefined when the same text was said within ERROR_EVERY_MS (then it is counted). */
  private say(text: string): string | undefined {
    const now = this.clock.now();
    const seen = this.shown.get(text);
    if (seen && now - seen.at < ERROR_EVERY_MS) {
      seen.held++;
      return undefined;
    }
    if (this.shown.size > 100) this.shown.clear();
    const held = seen?.held ? ` (and ${seen.held} more like this in the last second)` : "";
    this.shown.set(text, { at: now, held: 0 });
    return `${this.prefix ? `${this.prefix}: ` : ""}${text}${held}`;
  }
}

/**
 * The node setting that carries a type's ranges (lib/ranges.ts) to the editor, for
 * RED.nodes.registerType's `settings`: named `<type in camel case>Ranges`, as Node-RED requires
 * of a node's settings, and exportable, so the panel reads it as RED.settings.<name>.
 */
export function rangesSetting(type: RangedType): Record<string, { value: Record<string, NumberRule>; exportable: true }> {
  const camel = type.replace(/-(.)/g, (_, c: string) => c.toUpperCase());
  return { [`${camel}Ranges`]: { value: PANEL_RANGES[type], exportable: true } };
}
