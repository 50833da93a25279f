// A fleet of lightweight simulated listeners: many Pis in one process, with no Node-RED and
// no GPIO. Each is the same lib/bus listener a sqi-event-bus node opens (hello, clock-sync
// pings, reports, reconnect backoff) feeding the same arrival policy (sequence accounting,
// conversion of `at` to its own clock, late and missed), on a clock shifted by its own offset.
// What it does with an event is record it: when it arrived against the master's send time
// and against its `at`, and whether it was fired twice. bench/fanout.ts and the storm and
// bridge tests run several of these processes (startFleet) and merge what they say.
//
// Time: every process reads the same machine clock (RealClock); a listener's own clock is
// that plus its configured offset, so the truth its clock sync should find is known.

import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { Arrivals } from "../lib/bus/arrivals";
import { openListener } from "../lib/bus/connect";
import type { EventFrame } from "../lib/bus/frames";
import { newRunId } from "../lib/bus/frames";
import { listenerReport } from "../lib/bus/status";
import type { BusConfig, LinkState, ListenerTransport } from "../lib/bus/transport";
import { DriftClock, RealClock, type Drift } from "../lib/clock";

/** A histogram of milliseconds in fixed steps over [min, max): cheap enough for a million values a second. */
export class Histogram {
  readonly counts: Uint32Array;
  n = 0;
  max = -Infinity;
  below = 0;
  above = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    readonly stepMs: number,
  ) {
    this.counts = new Uint32Array(Math.ceil((maxMs - minMs) / stepMs));
  }

  add(ms: number): void {
    this.n++;
    if (ms > this.max) this.max = ms;
    const i = Math.floor((ms - this.minMs) / this.stepMs);
    if (i < 0) this.below++;
    else if (i >= this.counts.length) this.above++;
    else this.counts[i]!++;
  }

  /** The non-empty buckets, to send to another process. */
  sparse(): HistogramData {
    const buckets: Array<[number, number]> = [];
    this.counts.forEach((c, i) => {
      if (c) buckets.push([i, c]);
    });
    return { n: this.n, max: this.max, below: this.below, above: this.above, buckets };
  }

  merge(d: HistogramData): void {
    this.n += d.n;
    this.max = Math.max(this.max, d.max);
    this.below += d.below;
    this.above += d.above;
    for (const [i, c] of d.buckets) this.counts[i] = (this.counts[i] ?? 0) + c;
  }

  /** The value below which a fraction q of the values lie (a bucket's upper bound), or NaN when empty. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    let left = Math.ceil(q * this.n) - this.below;
    if (left <= 0) return this.minMs;
    for (let i = 0; i < this.counts.length; i++) {
      left -= this.counts[i]!;
      if (left <= 0) return this.minMs + (i + 1) * this.stepMs;
    }
    return this.max;
  }

  clear(): void {
    this.counts.fill(0);
    this.n = this.below = this.above = 0;
    this.max = -Infinity;
  }
}

export interface HistogramData {
  n: number;
  max: number;
  below: number;
  above: number;
  buckets: Array<[number, number]>;
}

/** Delivery latency (receive - the master's send time) and lateness (hand-on - `at`): -1 s to 5 s in 0.05 ms. */
const histogram = (): Histogram => new Histogram(-1000, 5000, 0.05);

export interface FleetConfig {
  bus: BusConfig;
  /** Listeners in this process. */
  count: number;
  /** Their names: `${prefix}${first + i}`. */
  prefix: string;
  first: number;
  /** Each listener's clock is off by a value spread over +-offsetMs (known, to check its sync against). */
  offsetMs: number;
  /** Each listener's rate error is spread over +-driftPpm, plus a +-5 ppm wander (0 or absent: clocks that keep time). */
  driftPpm?: number;
  /** Listeners connect spread over this long at the start (0: all at once). */
  startSpreadMs: number;
  /** The longest steady ping interval (the default of the bus), or 100 for the old fixed cadence. */
  maxPingMs?: number;
  reportEveryMs?: number;
}

/** What a fleet says about itself, summed over its listeners. */
export interface FleetStats {
  listeners: number;
  connected: number;
  synced: number;
  /** since the last reset: events each listener received (summed), and fired (handed on after the arrival policy) */
  received: number;
  fired: number;
  /** fired a second time: a seq at or below one already fired in the same run */
  fired_twice: number;
  counters: Record<string, number>;
  latency: HistogramData;
  lateness: HistogramData;
  /** clock estimate - the truth, ms, one per synced listener */
  clock_error: number[];
  /** machine-clock times of each connect after the first, and of each resync after it */
  rejoins: number[];
  resyncs: number[];
  pings: number;
  reports: number;
}

const real = new RealClock();

/** One simulated Pi: the node's listener and arrival policy on its own clock. */
export class SimListener {
  readonly clock: DriftClock;
  readonly arrivals: Arrivals;
  readonly client: ListenerTransport;
  state: LinkState = "disconnected";
  private lastRun: string | undefined;
  private lastFired = -Infinity;
  private joined = false;
  private waitingSync = false;

  constructor(
    readonly name: string,
    readonly offsetMs: number,
    private readonly fleet: Fleet,
    cfg: FleetConfig,
    drift: Drift = {},
  ) {
    this.clock = new DriftClock(real, { ...drift, offsetMs });
    this.arrivals = new Arrivals(this.clock, {
      late: "fire",
      toLocal: (at) => this.client.sync.toLocal(at),
      emit: (a) => {
        const run = this.arrivals.run;
        const seq = typeof a.sqi.seq === "number" ? a.sqi.seq : NaN;
        if (run !== this.lastRun) this.lastRun = run;
        else if (seq <= this.lastFired) fleet.firedTwice++;
        this.lastFired = seq;
        fleet.fired++;
        if (typeof a.sqi.master_at === "number") fleet.lateness.add(real.now() - a.sqi.master_at);
      },
    });
    this.client = openListener(cfg.bus, undefined, {
      clock: this.clock,
      name,
      instance: newRunId(),
      run: () => this.arrivals.run,
      onEvents: (events, receivedAt, run) => {
        fleet.delivered(events);
        this.arrivals.push(events, receivedAt, run);
      },
      onState: (state) => {
        this.state = state;
        this.arrivals.linked(state);
        if (state !== "connected") return;
        if (this.joined) fleet.rejoins.push(real.now());
        this.joined = true;
        this.waitingSync = true;
      },
      report: () => listenerReport(this.client, this.arrivals, {}),
      ...(cfg.maxPingMs !== undefined ? { maxPingMs: cfg.maxPingMs } : {}),
      ...(cfg.reportEveryMs !== undefined ? { reportEveryMs: cfg.reportEveryMs } : {}),
    });
  }

  /** Called often: notes the moment a (re)joined listener has a clock estimate again. */
  checkSync(): void {
    if (!this.waitingSync || this.state !== "connected" || !this.client.sync.estimate()) return;
    this.waitingSync = false;
    if (this.client.counters.connects > 1) this.fleet.resyncs.push(real.now());
  }

  /** Its estimate against the truth (master clock - this clock = -this clock's error now), ms. */
  clockError(): number | undefined {
    const t = real.now();
    const e = this.client.sync.estimate(t + this.clock.errorAt(t));
    return e ? e.offsetMs + this.clock.errorAt(t) : undefined;
  }
}

export class Fleet {
  readonly listeners: SimListener[] = [];
  readonly latency = histogram();
  readonly lateness = histogram();
  received = 0;
  fired = 0;
  firedTwice = 0;
  rejoins: number[] = [];
  resyncs: number[] = [];
  private readonly syncTimer: NodeJS.Timeout;
  /** the counters at the last reset: stats() says what happened since */
  private base: Record<string, number> = {};

  constructor(private readonly cfg: FleetConfig) {
    for (let i = 0; i < cfg.count; i++) {
      const n = cfg.first + i;
      // offsets spread evenly over +-offsetMs, so every run checks the same spread
      const spread = (r: number) => (cfg.count > 1 ? -r + (2 * r * i) / (cfg.count - 1) : r);
      // each drifting clock wanders too, every one from its own phase
      const drift = cfg.driftPpm ? { ppm: spread(cfg.driftPpm), wanderPpm: 5, wanderPhase: i } : {};
      this.listeners.push(new SimListener(`${cfg.prefix}${n}`, spread(cfg.offsetMs), this, cfg, drift));
    }
    this.syncTimer = setInterval(() => {
      for (const l of this.listeners) l.checkSync();
    }, 10);
  }

  start(): void {
    this.listeners.forEach((l, i) => setTimeout(() => l.client.start(), (this.cfg.startSpreadMs * i) / Math.max(1, this.listeners.length)));
  }

  delivered(events: EventFrame[]): void {
    const now = real.now();
    this.received += events.length;
    for (const e of events) {
      // t0: a bare master's send time; t: bench-generator's (Date.now(), in Node-RED)
      const t0 = e.payload?.t0 ?? e.payload?.t;
      if (typeof t0 === "number") this.latency.add(now - t0);
    }
  }

  /** Clears what was measured (after a warm-up), keeping the listeners connected. */
  reset(): void {
    this.latency.clear();
    this.lateness.clear();
    this.received = this.fired = this.firedTwice = 0;
    this.rejoins = [];
    this.resyncs = [];
    this.base = this.counters();
    for (const l of this.listeners) l.client.counters.pings = l.client.counters.reports = 0;
  }

  /** The arrival and link counters, summed over the listeners. */
  private counters(): Record<string, number> {
    const sum: Record<string, number> = {};
    const add = (c: Record<string, number>): void => {
      for (const [k, v] of Object.entries(c)) sum[k] = (sum[k] ?? 0) + v;
    };
    for (const l of this.listeners) {
      add(l.arrivals.counters());
      add({ reconnects: l.client.counters.reconnects, rejected: l.client.counters.rejected });
    }
    return sum;
  }

  stats(): FleetStats {
    const counters = this.counters();
    for (const k of Object.keys(counters)) counters[k]! -= this.base[k] ?? 0;
    let connected = 0;
    let synced = 0;
    let pings = 0;
    let reports = 0;
    const clockError: number[] = [];
    for (const l of this.listeners) {
      if (l.state === "connected") connected++;
      const err = l.clockError();
      if (err !== undefined && l.state === "connected") {
        synced++;
        clockError.push(err);
      }
      pings += l.client.counters.pings;
      reports += l.client.counters.reports;
    }
    return {
      listeners: this.listeners.length,
      connected,
      synced,
      received: this.received,
      fired: this.fired,
      fired_twice: this.firedTwice,
      counters,
      latency: this.latency.sparse(),
      lateness: this.lateness.sparse(),
      clock_error: clockError,
      rejoins: this.rejoins,
      resyncs: this.resyncs,
      pings,
      reports,
    };
  }

  stop(): void {
    clearInterval(this.syncTimer);
    for (const l of this.listeners) {
      l.client.stop();
      l.arrivals.clear();
    }
  }
}

// ---- many fleet processes, from a parent ----

export type MergedStats = FleetStats & { latencyHist: Histogram; latenessHist: Histogram };

export interface FleetHandle {
  pids: number[];
  stats(): Promise<MergedStats>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

type Reply = { id: number; stats?: FleetStats };

function ask(child: ChildProcess, id: number, cmd: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Reply): void => {
      if (m.id !== id) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(m);
    };
    const onExit = (): void => {
      child.off("message", onMessage);
      reject(new Error(`fleet process ${child.pid} exited before answering ${cmd}`));
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ id, cmd });
  });
}

/** Sums what several fleets say. */
export function mergeStats(all: FleetStats[]): MergedStats {
  const latencyHist = histogram();
  const latenessHist = histogram();
  const counters: Record<string, number> = {};
  const out = {
    listeners: 0,
    connected: 0,
    synced: 0,
    received: 0,
    fired: 0,
    fired_twice: 0,
    counters,
    clock_error: [] as number[],
    rejoins: [] as number[],
    resyncs: [] as number[],
    pings: 0,
    reports: 0,
  };
  for (const s of all) {
    out.listeners += s.listeners;
    out.connected += s.connected;
    out.synced += s.synced;
    out.received += s.received;
    out.fired += s.fired;
    out.fired_twice += s.fired_twice;
    out.pings += s.pings;
    out.reports += s.reports;
    for (const [k, v] of Object.entries(s.counters)) counters[k] = (counters[k] ?? 0) + v;
    out.clock_error.push(...s.clock_error);
    out.rejoins.push(...s.rejoins);
    out.resyncs.push(...s.resyncs);
    latencyHist.merge(s.latency);
    latenessHist.merge(s.lateness);
  }
  return { ...out, latency: latencyHist.sparse(), lateness: latenessHist.sparse(), latencyHist, latenessHist };
}

/**
 * `listeners` simulated Pis in `processes` child processes (names pi-1 .. pi-N), toward the
 * bus `bus`. Resolves once every process has started its listeners (not once they joined).
 */
export async function startFleet(o: {
  bus: BusConfig;
  listeners: number;
  processes: number;
  offsetMs: number;
  driftPpm?: number;
  startSpreadMs: number;
  prefix?: string;
  maxPingMs?: number;
  reportEveryMs?: number;
  /** the bus for each process (bridged brokers: half on each), by index */
  busOf?: (p: number) => BusConfig;
}): Promise<FleetHandle> {
  const children: ChildProcess[] = [];
  let id = 0;
  const per = Math.ceil(o.listeners / o.processes);
  for (let p = 0, first = 1; first <= o.listeners; p++, first += per) {
    const cfg: FleetConfig = {
      bus: o.busOf?.(p) ?? o.bus,
      count: Math.min(per, o.listeners - first + 1),
      prefix: o.prefix ?? "pi-",
      first,
      offsetMs: o.offsetMs,
      ...(o.driftPpm ? { driftPpm: o.driftPpm } : {}),
      startSpreadMs: o.startSpreadMs,
      ...(o.maxPingMs !== undefined ? { maxPingMs: o.maxPingMs } : {}),
      ...(o.reportEveryMs !== undefined ? { reportEveryMs: o.reportEveryMs } : {}),
    };
    const child = fork(path.join(__dirname, "fleet.js"), [], {
      env: { ...process.env, SQI_FLEET: JSON.stringify(cfg) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(child);
  }
  await Promise.all(children.map((c) => ask(c, ++id, "ready")));
  const all = <T>(cmd: string, f: (r: Reply) => T): Promise<T[]> => Promise.all(children.map((c) => ask(c, ++id, cmd).then(f)));
  return {
    pids: children.map((c) => c.pid ?? 0),
    stats: async () => mergeStats(await all("stats", (r) => r.stats!)),
    reset: async () => void (await all("reset", () => undefined)),
    stop: async () => {
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode !== null || c.signalCode !== null) return;
          const gone = new Promise((r) => c.once("exit", r));
          c.send({ id: ++id, cmd: "stop" });
          const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
          await gone;
          clearTimeout(timer);
        }),
      );
    },
  };
}

// ---- the child process ----

if (require.main === module && process.send) {
  const cfg = JSON.parse(process.env.SQI_FLEET ?? "{}") as FleetConfig;
  const fleet = new Fleet(cfg);
  fleet.start();
  // The parent gone (even by SIGKILL): stop, never linger as an orphan.
  process.on("disconnect", () => {
    fleet.stop();
    process.exit(0);
  });
  process.on("message", (m: { id: number; cmd: string }) => {
    if (m.cmd === "stats") process.send!({ id: m.id, stats: fleet.stats() });
    else if (m.cmd === "reset") {
      fleet.reset();
      process.send!({ id: m.id });
    } else if (m.cmd === "stop") {
      fleet.stop();
      process.send!({ id: m.id }, () => process.exit(0));
    } else process.send!({ id: m.id });
  });
}
