// bench/fanout (npm run bench:fanout): what one master carries. The master is the lib/bus
// master a broadcast sqi-event-bus node opens, in a bare process (scripts/bare-master.ts);
// the listeners are lightweight simulated Pis (scripts/fleet.ts: the node's listener and
// arrival policy without Node-RED or GPIO), 250 to a process, each with its own clock offset.
// For 10, 100 and 1,000 listeners at 100 and 1,000 events/s, over WebSocket and over MQTT
// through one Mosquitto (and two bridged ones), it prints the master's CPU and memory, the
// delivery latency, how late events arrive against their `at`, the clock-sync error against
// the known offsets, and every event sent, received and counted lost; then the upkeep
// traffic (pings and reports a second at the master) before and after pacing; and, as the
// anchor in the same run, core Node-RED's `websocket out` serving as many plain clients.
// Every process is started here and stopped by its pid. Never fails on timing: the machine is
// shared and noisy, and on 2 cores the listeners' own processes compete with the master.
//   FANOUT_LISTENERS (10,100,1000), FANOUT_RATES (100,1000), FANOUT_TRANSPORTS (ws,mqtt,bridge),
//   FANOUT_SECONDS (10), FANOUT_PROCESSES (4), FANOUT_OFFSET_MS (200), FANOUT_DRIFT_PPM (50: each
//   listener's clock runs within +-50 ppm, with a +-5 ppm wander), FANOUT_SETTLE_MS (15000: after
//   all joined, before a case is measured), FANOUT_ANCHOR (1)

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BusConfig } from "../lib/bus/transport";
import { DEFAULT_LEAD_MS } from "../lib/container/player";
import { spread } from "../lib/pulse/measure";
import { mqttBus, startMaster, wsBus, type MasterHandle } from "../scripts/bare-master";
import { startFleet, type FleetHandle } from "../scripts/fleet";
import { mosquittoPath, startBridgedBrokers, startBroker, type Broker } from "../scripts/mosquitto";
import { freePort, waitFor } from "../test/helpers/processes";
import { measureCore, startNodeRedMaster } from "./fanout-anchor";
import { cpuSeconds, rssMb } from "./proc";

const list = (v: string | undefined, d: string): string[] =>
  (v ?? d)
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
const LISTENERS = list(process.env.FANOUT_LISTENERS, "10,100,1000").map(Number);
const RATES = list(process.env.FANOUT_RATES, "100,1000").map(Number);
const TRANSPORTS = list(process.env.FANOUT_TRANSPORTS, "ws,mqtt,bridge").filter((t) => t === "ws" || mosquittoPath() !== undefined);
const SECONDS = Number(process.env.FANOUT_SECONDS ?? 10);
const PROCESSES = Number(process.env.FANOUT_PROCESSES ?? 4);
const OFFSET = Number(process.env.FANOUT_OFFSET_MS ?? 200);
const DRIFT = Number(process.env.FANOUT_DRIFT_PPM ?? 50);
const ANCHOR = process.env.FANOUT_ANCHOR !== "0";
const TICK_MS = 10;
const SETTLE_MS = Number(process.env.FANOUT_SETTLE_MS ?? 15_000);

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : "-");

interface Setup {
  name: string;
  pid: number;
  /** Plays `rate` events/s for `seconds`; what the master counted meanwhile (NaN when it cannot say). */
  play: (rate: number, seconds: number) => Promise<{ sent: number; pings: number; reports: number }>;
  fleet: FleetHandle;
  /** the brokers' pids (MQTT): their CPU is part of the cost */
  brokerPids: number[];
  baseRssMb: number;
  stop: () => Promise<void>;
}

/** What a bare master counted while it played. */
function bareSource(master: MasterHandle): Setup["play"] {
  return async (rate, seconds) => {
    const before = await master.stats();
    // no events: the upkeep alone, for as long
    const after = rate > 0 ? await master.play(rate, seconds) : await new Promise<void>((r) => setTimeout(r, seconds * 1000)).then(() => master.stats());
    return { sent: after.sent - before.sent, pings: after.counters.pings - before.counters.pings, reports: after.counters.reports - before.counters.reports };
  };
}

/** A master and `n` listeners on `transport`, all joined and synced. */
async function setUp(
  transport: string,
  n: number,
  dir: string,
  extra: { maxPingMs?: number; maxReportsPerS?: number; maxPingsPerS?: number } = {},
): Promise<Setup> {
  const brokers: Broker[] = [];
  let masterBus: BusConfig;
  let busOf: ((p: number) => BusConfig) | undefined;
  if (transport === "ws") masterBus = wsBus(await freePort());
  else if (transport === "mqtt") {
    brokers.push(await startBroker({ dir: path.join(dir, `mq-${n}`), port: await freePort() }));
    masterBus = mqttBus(brokers[0]!.url);
  } else {
    const [a, b] = await startBridgedBrokers(path.join(dir, `bridge-${n}`), [await freePort(), await freePort()]);
    brokers.push(a, b);
    masterBus = mqttBus(a.url);
    // half the listeners on each broker: the master's and the far one
    busOf = (p) => mqttBus((p % 2 === 0 ? a : b).url);
  }
  const master = await startMaster({
    bus: masterBus,
    tickMs: TICK_MS,
    leadMs: DEFAULT_LEAD_MS,
    ...(extra.maxReportsPerS !== undefined ? { maxReportsPerS: extra.maxReportsPerS } : {}),
    ...(extra.maxPingsPerS !== undefined ? { maxPingsPerS: extra.maxPingsPerS } : {}),
  });
  const baseRssMb = rssMb(master.pid);
  return withFleet(transport, master.pid, bareSource(master), baseRssMb, master.stop, masterBus, n, brokers, busOf, extra.maxPingMs);
}

/** `n` listeners toward a master that is up: resolves when all have joined and synced. */
async function withFleet(
  transport: string,
  pid: number,
  play: Setup["play"],
  baseRssMb: number,
  stopMaster: () => Promise<void>,
  masterBus: BusConfig,
  n: number,
  brokers: Broker[] = [],
  busOf?: (p: number) => BusConfig,
  maxPingMs?: number,
): Promise<Setup> {
  const processes = Math.max(1, Math.min(PROCESSES, Math.ceil(n / 50)));
  const fleet = await startFleet({
    bus: masterBus,
    ...(busOf ? { busOf } : {}),
    listeners: n,
    processes: transport === "bridge" ? Math.max(2, processes) : processes,
    offsetMs: OFFSET,
    driftPpm: DRIFT,
    startSpreadMs: Math.min(5000, n * 3),
    ...(maxPingMs !== undefined ? { maxPingMs } : {}),
  });
  const stop = async (): Promise<void> => {
    await fleet.stop();
    await stopMaster();
    for (const b of brokers) await b.stop();
  };
  try {
    await waitFor(`${n} listeners joined and synced`, async () => (await fleet.stats()).synced === n, 60_000, 250);
    // the estimates settle (their window fills and, with drift, their rate is said: about 8 s), as on a Pi that has been up a while
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  } catch (e) {
    await stop();
    throw e;
  }
  return { name: transport, pid, play, fleet, brokerPids: brokers.map((b) => b.pid ?? 0), baseRssMb, stop };
}

interface Row {
  transport: string;
  listeners: number;
  rate: number;
  cpuPct: number;
  fleetCpuPct: number;
  brokerCpuPct: number;
  rssMb: number;
  kbPerListener: number;
  lat: [number, number, number];
  late: [number, number, number];
  clock: [number, number, number];
  sent: number;
  expected: number;
  received: number;
  lost: number;
  unaccounted: number;
  firedLate: number;
  firedTwice: number;
  pingsPerS: number;
  reportsPerS: number;
}

/** Plays `rate` events/s for SECONDS on a set-up master and measures it. */
async function measure(s: Setup, n: number, rate: number): Promise<Row> {
  await s.fleet.reset();
  const cpu0 = cpuSeconds(s.pid);
  const fleetCpu0 = s.fleet.pids.reduce((a, p) => a + cpuSeconds(p), 0);
  const brokerCpu0 = s.brokerPids.reduce((a, p) => a + cpuSeconds(p), 0);
  const t0 = Date.now();
  let peakRss = rssMb(s.pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(s.pid))), 250);
  const played = await s.play(rate, SECONDS);
  await new Promise((r) => setTimeout(r, 300 + DEFAULT_LEAD_MS));
  clearInterval(sampler);
  const secs = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(s.pid) - cpu0;
  const fleetCpu = s.fleet.pids.reduce((a, p) => a + cpuSeconds(p), 0) - fleetCpu0;
  const brokerCpu = s.brokerPids.reduce((a, p) => a + cpuSeconds(p), 0) - brokerCpu0;
  const sent = played.sent;
  const lostOf = (c: Record<string, number>): number =>
    (c.missing ?? 0) + (c.late_dropped ?? 0) + (c.unsynced ?? 0) + (c.missed ?? 0) + (c.backlog_dropped ?? 0);
  // Listeners that fell behind still have events in flight: wait (20 s at most) until what
  // they received and counted stops growing, so that "unaccounted" means lost, not late.
  let f = await s.fleet.stats();
  const drainFrom = Date.now();
  for (let seen = -1; Date.now() - drainFrom < 20_000;) {
    const now = f.received + lostOf(f.counters);
    if (now >= sent * n || now === seen) break;
    seen = now;
    await new Promise((r) => setTimeout(r, 1000));
    f = await s.fleet.stats();
  }
  const drainS = (Date.now() - drainFrom) / 1000;
  const c = f.counters;
  const lost = lostOf(c);
  const unique = f.received - (c.duplicates ?? 0);
  const clock = spread(f.clock_error.map(Math.abs));
  return {
    transport: drainS >= 1 ? `${s.name} (drained ${drainS.toFixed(0)} s after)` : s.name,
    listeners: n,
    rate,
    cpuPct: (cpu / secs) * 100,
    fleetCpuPct: (fleetCpu / secs) * 100,
    brokerCpuPct: (brokerCpu / secs) * 100,
    rssMb: peakRss,
    kbPerListener: ((peakRss - s.baseRssMb) * 1024) / n,
    lat: [f.latencyHist.quantile(0.5), f.latencyHist.quantile(0.99), f.latencyHist.max],
    late: [f.latenessHist.quantile(0.5), f.latenessHist.quantile(0.99), f.latenessHist.max],
    clock: clock ? [clock.median, clock.p99, clock.max] : [NaN, NaN, NaN],
    sent,
    expected: sent * n,
    received: unique,
    lost,
    unaccounted: Math.max(0, sent * n - unique - lost),
    firedLate: c.late ?? 0,
    firedTwice: f.fired_twice,
    pingsPerS: played.pings / secs,
    reportsPerS: played.reports / secs,
  };
}

function printRows(rows: Row[]): void {
  console.log(
    "| bus | listeners | ev/s | master CPU % | master RSS MB | KB/listener | latency p50/p99/max ms | vs `at` p50/p99/max ms | clock error p50/p99/max ms | sent × listeners | received | counted lost | unaccounted | late | fired twice | pings/s | reports/s | listeners' CPU % | brokers' CPU % |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows)
    console.log(
      `| ${r.transport} | ${r.listeners} | ${r.rate} | ${fmt(r.cpuPct)} | ${fmt(r.rssMb)} | ${fmt(r.kbPerListener)} | ${r.lat.map((x) => fmt(x, 2)).join(" / ")} | ${r.late.map((x) => fmt(x, 2)).join(" / ")} | ${r.clock.map((x) => fmt(x, 3)).join(" / ")} | ${r.expected} | ${r.received} | ${r.lost} | ${r.unaccounted} | ${r.firedLate} | ${r.firedTwice} | ${fmt(r.pingsPerS, 0)} | ${fmt(r.reportsPerS, 0)} | ${fmt(r.fleetCpuPct, 0)} | ${r.transport.startsWith("ws") ? "-" : fmt(r.brokerCpuPct, 0)} |`,
    );
}

function verdict(rows: Row[]): void {
  const big = rows.filter((r) => r.listeners === Math.max(...LISTENERS) && r.rate === Math.max(...RATES));
  for (const r of big) {
    const checks: Array<[string, boolean]> = [
      [`every event received or counted (${r.unaccounted} unaccounted)`, r.unaccounted === 0],
      [
        `p99 delivery ${fmt(r.lat[1], 2)} ms within the ${DEFAULT_LEAD_MS} ms lead, no event late (${r.firedLate})`,
        r.lat[1] <= DEFAULT_LEAD_MS && r.firedLate === 0,
      ],
      [`master CPU ${fmt(r.cpuPct)} % <= 50 % of a core`, r.cpuPct <= 50],
      [`${fmt(r.kbPerListener)} KB master memory per listener <= 50 KB`, r.kbPerListener <= 50],
      [`clock error p99 ${fmt(r.clock[1], 3)} ms <= 0.5 ms`, r.clock[1] <= 0.5],
    ];
    console.log(`\ntargets, ${r.transport}, ${r.listeners} listeners at ${r.rate} events/s:`);
    for (const [text, ok] of checks) console.log(`  ${ok ? "met    " : "MISSED "} ${text}`);
  }
}

/**
 * In one Node-RED master: core `websocket out` serving as many plain clients (one message per
 * event, no batching, no seq: what is lost is not counted anywhere), and the sqi-event-bus
 * node itself serving the largest fleet, beside the bare master's figures above.
 */
async function anchors(dir: string, ours: Row[]): Promise<void> {
  const m = await startNodeRedMaster(dir);
  const anchorRows: Array<{ n: number; rate: number; r: Awaited<ReturnType<typeof measureCore>> }> = [];
  try {
    console.log("\nAnchor: core Node-RED `websocket out` serving as many plain `ws` clients, in one Node-RED (Date.now() latency, 0.5 ms buckets):\n");
    console.log("| clients | ev/s | Node-RED CPU % | RSS MB | latency p50/p99/max ms | received | of | lost (uncounted) |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const n of LISTENERS)
      for (const rate of RATES) {
        const r = await measureCore(m, n, rate, SECONDS, PROCESSES);
        console.log(
          `| ${r.connected}/${n} | ${rate} | ${fmt(r.cpuPct)} | ${fmt(r.rssMb)} | ${[r.p50, r.p99, r.max].map((x) => fmt(x, 1)).join(" / ")} | ${r.received} | ${r.expected} | ${r.expected - r.received} |`,
        );
        anchorRows.push({ n, rate, r });
      }
    // The ratios, this run: the bus over WebSocket (bare master) against core websocket out, same clients and rate.
    console.log("\nRatios, bus over WebSocket / core `websocket out` (same run; below 1 is better, delivered above 1 is better):\n");
    console.log("| clients | ev/s | master CPU | latency p50 | latency p99 | delivered |");
    console.log("|---|---|---|---|---|---|");
    for (const { n, rate, r } of anchorRows) {
      const o = ours.find((x) => x.transport.startsWith("ws") && x.listeners === n && x.rate === rate);
      if (!o) continue;
      console.log(
        `| ${n} | ${rate} | ${fmt(o.cpuPct / r.cpuPct, 2)} | ${fmt(o.lat[0] / r.p50, 2)} | ${fmt(o.lat[1] / r.p99, 2)} | ${fmt(o.received / Math.max(1, r.received), 2)} |`,
      );
    }
    const n = Math.max(...LISTENERS);
    console.log(`\nThe sqi-event-bus node in the same Node-RED (open bus, bench-generator: Date.now() send times), ${n} lightweight listeners:\n`);
    const bus = { ...wsBus(m.busPort), token: "" };
    const play: Setup["play"] = async (rate, seconds) => {
      await m.play("bus", rate, seconds);
      await new Promise((r) => setTimeout(r, 1500)); // the end marker
      return { sent: Math.round(rate * seconds) + 2, pings: NaN, reports: NaN };
    };
    const s = await withFleet("ws, Node-RED node", m.pid, play, rssMb(m.pid), () => Promise.resolve(), bus, n);
    const rows: Row[] = [];
    try {
      for (const rate of RATES) rows.push(await measure(s, n, rate));
    } finally {
      await s.stop();
    }
    printRows(rows);
  } finally {
    await m.stop();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-fanout-"));
  console.log(
    `bench:fanout — a bare lib/bus master (scripts/bare-master.ts), lightweight listeners in ${PROCESSES} processes at most, clock offsets within ±${OFFSET} ms and rates within ±${DRIFT} ppm,`,
  );
  console.log(
    `events in bursts every ${TICK_MS} ms, each due ${DEFAULT_LEAD_MS} ms (the default lead) after it leaves; ${SECONDS} s a case; ${os.cpus().length} cores.\n`,
  );
  const rows: Row[] = [];
  try {
    for (const transport of TRANSPORTS)
      for (const n of LISTENERS) {
        if (transport === "bridge" && n !== Math.max(...LISTENERS)) continue;
        const s = await setUp(transport, n, dir);
        try {
          for (const rate of RATES) rows.push(await measure(s, n, rate));
        } finally {
          await s.stop();
        }
        printRows(rows.slice(-RATES.length));
      }
    console.log("\nAll cases:\n");
    printRows(rows);
    verdict(rows);

    // Upkeep: the same 1,000 listeners with the old cadence (pings every 100 ms for ever, a report every 2 s whatever the number of listeners).
    const n = Math.max(...LISTENERS);
    console.log(`\nUpkeep traffic at the master, ${n} listeners over WebSocket, no events (the master's CPU is then the upkeep's):`);
    const upkeep: Row[] = [];
    for (const [label, extra] of [
      ["before: pings every 100 ms, reports every 2 s", { maxPingMs: 100, maxReportsPerS: 1e9, maxPingsPerS: 1e9 }],
      ["after: pings back off to 2 s once steady and are paced to 1,000/s, reports to 100/s", {}],
    ] as const) {
      const s = await setUp("ws", n, dir, extra);
      try {
        // reports are paced once each listener has had a pong since the master knew them all
        await new Promise((r) => setTimeout(r, 12_000));
        const r = await measure(s, n, 0);
        upkeep.push({ ...r, transport: `ws (${label})` });
      } finally {
        await s.stop();
      }
    }
    printRows(upkeep);

    if (ANCHOR) await anchors(dir, rows);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
