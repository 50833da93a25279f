// A bus master in a bare process, for the fan-out benchmark and the storm and bridge tests:
// the same lib/bus master a broadcast sqi-event-bus node opens (openMaster), its listeners'
// reports through the same absence ledger, and a source of events at a steady rate, each
// due `lead` ms after it leaves (as dc-container sends them) and carrying the machine-clock
// time it left in its payload (t0), so that a listener can tell its delivery latency.
// startMaster() runs it as a child process, by pid, so that it can be killed and restarted.

import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { openMaster } from "../lib/bus/connect";
import { newRunId, type EventFrame } from "../lib/bus/frames";
import { AbsenceLedger } from "../lib/bus/ledger";
import type { BusConfig, MasterCounters } from "../lib/bus/transport";
import { RealClock } from "../lib/clock";

export interface MasterConfig {
  bus: BusConfig;
  /** Events go out in bursts this often (a .dc frame's tick), ms. */
  tickMs: number;
  leadMs: number;
  maxReportsPerS?: number;
  maxPingsPerS?: number;
}

export interface MasterStats {
  counters: MasterCounters;
  listeners: number;
  /** events the source made */
  sent: number;
  /** reports taken, and the sum of what they say was lost while away */
  reports: number;
  lost_while_away: number;
  run: string;
}

/** A WebSocket bus on 127.0.0.1:`port` with a token, as a sqi-bus config node gives it (both ends). */
export function wsBus(port: number): BusConfig {
  return {
    transport: "ws",
    host: "127.0.0.1",
    port,
    path: "/",
    url: `ws://127.0.0.1:${port}/`,
    token: "bench",
    maxFrame: 1 << 20,
    mqtt: { url: "", clientId: "", username: "", password: "", qos: 0, prefix: "sqi/bench", keepaliveS: 15 },
    errors: [],
  };
}

/** An MQTT bus through the broker at `url`, under sqi/bench. */
export function mqttBus(url: string, qos: 0 | 1 = 0): BusConfig {
  return { ...wsBus(0), transport: "mqtt", token: "", mqtt: { url, clientId: "", username: "", password: "", qos, prefix: "sqi/bench", keepaliveS: 15 } };
}

type Command = { id: number; cmd: "ready" | "stats" | "rate" | "stop"; rate?: number; seconds?: number };
type Reply = { id: number; stats?: MasterStats };

export interface MasterHandle {
  readonly pid: number;
  stats(): Promise<MasterStats>;
  /** Sends `rate` events a second for `seconds`; resolves when the last has gone. */
  play(rate: number, seconds: number): Promise<MasterStats>;
  /** Stops it gracefully (closes the bus). */
  stop(): Promise<void>;
  /** Kills it (SIGKILL): its listeners see their connections drop. */
  kill(): Promise<void>;
}

function ask(child: ChildProcess, m: Command): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onMessage = (r: Reply): void => {
      if (r.id !== m.id) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(r);
    };
    const onExit = (): void => {
      child.off("message", onMessage);
      reject(new Error(`master ${child.pid} exited before answering ${m.cmd}`));
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send(m);
  });
}

export async function startMaster(cfg: MasterConfig): Promise<MasterHandle> {
  const child = fork(path.join(__dirname, "bare-master.js"), [], {
    env: { ...process.env, SQI_MASTER: JSON.stringify(cfg) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let id = 0;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await ask(child, { id: ++id, cmd: "ready" });
  return {
    pid: child.pid ?? 0,
    stats: async () => (await ask(child, { id: ++id, cmd: "stats" })).stats!,
    play: async (rate, seconds) => (await ask(child, { id: ++id, cmd: "rate", rate, seconds })).stats!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ id: ++id, cmd: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

// ---- the child process ----

if (require.main === module && process.send) {
  const cfg = JSON.parse(process.env.SQI_MASTER ?? "{}") as MasterConfig;
  const clock = new RealClock();
  const run = newRunId();
  const ledger = new AbsenceLedger(run);
  let reports = 0;
  const away = new Map<string, number>();
  const master = openMaster(cfg.bus, undefined, {
    clock,
    name: "bench-master",
    run,
    ...(cfg.maxReportsPerS !== undefined ? { maxReportsPerS: cfg.maxReportsPerS } : {}),
    ...(cfg.maxPingsPerS !== undefined ? { maxPingsPerS: cfg.maxPingsPerS } : {}),
    onReport: (r) => {
      reports++;
      away.set(r.name, ledger.take(r, clock.now()).counters.lost_while_away ?? 0);
    },
  });
  let seq = 0;
  let sent = 0;
  const stats = (): MasterStats => {
    let lost = 0;
    for (const v of away.values()) lost += v;
    return { counters: { ...master.counters }, listeners: master.clients.length, sent, reports, lost_while_away: lost, run };
  };
  /** `rate` events a second for `seconds`, in bursts every tick; each burst is one batch per listener. */
  const play = (rate: number, seconds: number, done: () => void): void => {
    const start = clock.now();
    const total = Math.round(rate * seconds);
    let made = 0;
    const tick = (): void => {
      const now = clock.now();
      const due = Math.min(total, Math.floor(((now - start) * rate) / 1000) + 1);
      for (; made < due; made++) {
        const e: EventFrame = { event: "fanout", payload: { t0: now }, seq: ++seq, at: now + cfg.leadMs };
        master.send(e);
        sent++;
      }
      if (made < total) setTimeout(tick, cfg.tickMs);
      else done();
    };
    tick();
  };
  process.on("disconnect", () => process.exit(0));
  const listening = master.listen().then(
    () => undefined,
    (e: Error) => {
      console.error(`bare-master: cannot listen: ${e.message}`);
      process.exit(1);
    },
  );
  process.on("message", (m: Command) => {
    if (m.cmd === "stats") process.send!({ id: m.id, stats: stats() });
    else if (m.cmd === "rate") play(m.rate ?? 0, m.seconds ?? 0, () => setTimeout(() => process.send!({ id: m.id, stats: stats() }), 200));
    else if (m.cmd === "stop") void master.close().then(() => process.exit(0));
    else void listening.then(() => process.send!({ id: m.id }));
  });
}
