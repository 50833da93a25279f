// bench/bus-throughput (npm run bench:bus): the highest event rate that reaches 3 listener
// Node-RED processes with nothing lost and a p99 latency under 50 ms, counted by a minimal
// node after each listener (bench/nodes): this bus over WebSocket and over MQTT through a
// Mosquitto started here (QoS 0 and 1), against core websocket out/in nodes, and raw `ws`
// (1 and 100 events per frame, no Node-RED) as the ceiling, in the same run.
// Rates go up a ladder, 3 s each, until one fails. Prints a table; never fails on figures.
//   BENCH_RATES (comma list), BENCH_STEP_S (default 3).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { WebSocketServer } from "ws";
import { packageRoot } from "../lib/paths";
import { startCluster } from "../scripts/cluster";
import { mosquittoPath, startBroker, type Broker } from "../scripts/mosquitto";
import { cpuSeconds } from "./proc";
import { masterMqtt, masterTransports, piMqtt, piTransports } from "./transports";

const RATES = (process.env.BENCH_RATES ?? "5000,10000,15000,20000,25000,30000,40000,50000,60000,70000,85000,100000,120000,150000,200000,300000,400000")
  .split(",")
  .map(Number);
const STEP_S = Number(process.env.BENCH_STEP_S ?? 3);
const LISTENERS = 3;
const MAX_P99_MS = 50;

interface Step {
  rate: number;
  counts: number[];
  p99: number;
  ok: boolean;
}

const masterFlow = (corePath: string) => [
  { id: "m", type: "tab", label: "throughput master" },
  ...masterTransports(corePath),
  { id: "gen.bus", z: "m", type: "bench-generator", wires: [["m.broadcast"]] },
  { id: "gen.core", z: "m", type: "bench-generator", wires: [["m.wsout"]] },
  ...(mosquittoPath()
    ? [
        ...masterMqtt([0, 1]),
        { id: "gen.mqtt0", z: "m", type: "bench-generator", wires: [["m.mqtt0"]] },
        { id: "gen.mqtt1", z: "m", type: "bench-generator", wires: [["m.mqtt1"]] },
      ]
    : []),
];

const piFlow = [
  { id: "p", type: "tab", label: "throughput pi" },
  ...piTransports(16777216),
  {
    id: "p.listen",
    z: "p",
    type: "sqi-event-bus",
    role: "listen",
    bus: "p.bus",
    listenerName: "${SQI_NODE_NAME}",
    late: "fire",
    statsEvery: 0,
    wires: [["p.countBus"], []],
  },
  { id: "p.countBus", z: "p", type: "bench-counter", file: "bus.jsonl", wires: [] },
  { id: "p.wsin", z: "p", type: "websocket in", server: "", client: "p.core", wires: [["p.countCore"]] },
  { id: "p.countCore", z: "p", type: "bench-counter", file: "core.jsonl", wires: [] },
  ...(mosquittoPath()
    ? [
        ...piMqtt([0, 1], { 0: "p.countMqtt0", 1: "p.countMqtt1" }),
        { id: "p.countMqtt0", z: "p", type: "bench-counter", file: "mqtt0.jsonl", wires: [] },
        { id: "p.countMqtt1", z: "p", type: "bench-counter", file: "mqtt1.jsonl", wires: [] },
      ]
    : []),
];

function lastLine(file: string): { count: number; p99: number } | undefined {
  if (!fs.existsSync(file)) return undefined;
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  return lines[0] ? (JSON.parse(lines[lines.length - 1]!) as { count: number; p99: number }) : undefined;
}

async function nodeRedLadder(name: string, gen: string, file: string, port: number, userDirs: string[], pids: Array<number | undefined>): Promise<Step[]> {
  const steps: Step[] = [];
  // Warm up (JIT, sockets) at a low rate first; not counted.
  await fetch(`http://127.0.0.1:${port}/bench-gen/${gen}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ rate: 2000, seconds: 2 }),
  });
  await new Promise((res) => setTimeout(res, 5000));
  for (const rate of RATES) {
    const cpu0 = pids.map(cpuSeconds);
    const t0 = Date.now();
    for (const d of userDirs) fs.rmSync(path.join(d, file), { force: true });
    const r = await fetch(`http://127.0.0.1:${port}/bench-gen/${gen}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rate, seconds: STEP_S }),
    });
    if (!r.ok) throw new Error(`generator ${gen}: HTTP ${r.status}`);
    const deadline = Date.now() + (STEP_S + 20) * 1000;
    let results: Array<{ count: number; p99: number } | undefined> = [];
    while (Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 250));
      results = userDirs.map((d) => lastLine(path.join(d, file)));
      if (results.every(Boolean)) break;
    }
    const expected = rate * STEP_S;
    const counts = results.map((x) => x?.count ?? 0);
    const p99 = Math.max(...results.map((x) => x?.p99 ?? Infinity));
    const ok = counts.every((c) => c === expected) && p99 < MAX_P99_MS;
    steps.push({ rate, counts, p99, ok });
    const secs = (Date.now() - t0) / 1000;
    const cpu = pids.map((pid, i) => (((cpuSeconds(pid) - cpu0[i]!) / secs) * 100).toFixed(0)).join("/");
    process.stdout.write(
      `  ${name.padEnd(30)} ${String(rate).padStart(7)}/s  received ${counts.join(" / ")} of ${expected}  p99 ${Number.isFinite(p99) ? p99.toFixed(1) : "-"} ms  ${ok ? "ok" : "FAIL"}  CPU% master/pis ${cpu}\n`,
    );
    if (!ok) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  return steps;
}

const clientScript = (wsPath: string) => `
const WebSocket = require(${JSON.stringify(wsPath)});
const ws = new WebSocket(process.argv[1]);
let count = 0; const lat = [];
ws.on("message", (d) => {
  const f = JSON.parse(d.toString());
  for (const e of Array.isArray(f) ? f : [f]) {
    if (e.end) { lat.sort((a, b) => a - b); process.stdout.write(JSON.stringify({ count, p99: lat[Math.floor(lat.length * 0.99)] ?? null }) + "\\n"); process.exit(0); }
    count++; lat.push(Date.now() - e.t);
  }
});`;

async function rawLadder(perFrame: number): Promise<Step[]> {
  const steps: Step[] = [];
  const script = clientScript(require.resolve("ws", { paths: [packageRoot] }));
  for (const rate of RATES) {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => wss.once("listening", r));
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
    const outputs: string[] = Array.from({ length: LISTENERS }, () => "");
    const kids = outputs.map((_, i) => {
      const k = spawn(process.execPath, ["-e", script, url], { stdio: ["ignore", "pipe", "inherit"] });
      k.stdout.on("data", (d) => (outputs[i] += d));
      return k;
    });
    while (wss.clients.size < LISTENERS) await new Promise((r) => setTimeout(r, 20));
    const total = rate * STEP_S;
    const start = Date.now();
    let sent = 0;
    await new Promise<void>((done) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * rate));
        while (sent < due) {
          const n = Math.min(perFrame, due - sent);
          const t = Date.now();
          const frame = JSON.stringify(Array.from({ length: n }, (_, i) => ({ event: "proton_collision", payload: {}, seq: sent + i + 1, t })));
          for (const c of wss.clients) c.send(frame);
          sent += n;
        }
        if (sent >= total) {
          clearInterval(tick);
          done();
        }
      }, 5);
    });
    for (const c of wss.clients) c.send(JSON.stringify([{ end: true }]));
    await Promise.all(kids.map((k) => new Promise((r) => k.once("exit", r))));
    wss.close();
    const results = outputs.map((o) => (o.trim() ? (JSON.parse(o.trim()) as { count: number; p99: number }) : undefined));
    const counts = results.map((x) => x?.count ?? 0);
    const p99 = Math.max(...results.map((x) => x?.p99 ?? Infinity));
    const ok = counts.every((c) => c === total) && p99 < MAX_P99_MS;
    steps.push({ rate, counts, p99, ok });
    process.stdout.write(
      `  ${`raw ws, ${perFrame}/frame`.padEnd(30)} ${String(rate).padStart(7)}/s  received ${counts.join(" / ")} of ${total}  p99 ${Number.isFinite(p99) ? p99.toFixed(1) : "-"} ms  ${ok ? "ok" : "FAIL"}\n`,
    );
    if (!ok) break;
  }
  return steps;
}

const best = (steps: Step[]) => steps.filter((s) => s.ok).reduce((m, s) => Math.max(m, s.rate), 0);

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-bus-"));
  const basePort = 23000 + Math.floor(Math.random() * 1000);
  fs.writeFileSync(path.join(dir, "master.json"), JSON.stringify(masterFlow("/bench-core")));
  fs.writeFileSync(path.join(dir, "pi.json"), JSON.stringify(piFlow));
  process.env.SQI_EXTRA_NODES_DIR = path.join(packageRoot, "bench", "nodes");
  process.env.SQI_CORE_WS_URL = `ws://127.0.0.1:${basePort}/bench-core`;
  process.stdout.write(
    `bus throughput: ${LISTENERS} listener Node-RED processes, ${STEP_S} s per rate, pass = nothing lost at any listener and p99 latency < ${MAX_P99_MS} ms\n`,
  );
  let broker: Broker | undefined;
  if (mosquittoPath()) {
    broker = await startBroker({ dir: path.join(dir, "broker"), port: basePort + 60 });
    process.env.SQI_BENCH_BROKER_MASTER = process.env.SQI_BENCH_BROKER_PI = broker.url;
  } else {
    process.stdout.write("(no mosquitto here: the MQTT rows are left out; sudo apt-get install -y mosquitto)\n");
  }
  const cluster = await startCluster({
    pis: LISTENERS,
    jitterMs: 0,
    clockOffsetMs: 0,
    dir,
    basePort,
    busPort: basePort + 50,
    masterFlow: path.join(dir, "master.json"),
    piFlow: path.join(dir, "pi.json"),
  });
  let bus: Step[] = [];
  let core: Step[] = [];
  let mqtt0: Step[] = [];
  let mqtt1: Step[] = [];
  try {
    await new Promise((r) => setTimeout(r, 3000)); // listeners connect and take their first clock samples
    const dirs = cluster.pis.map((p) => path.dirname(p.log));
    const pids = [cluster.master.redPid, ...cluster.pis.map((p) => p.redPid)];
    bus = await nodeRedLadder("sqi-event-bus", "gen.bus", "bus.jsonl", cluster.master.port, dirs, pids);
    core = await nodeRedLadder("core websocket out/in", "gen.core", "core.jsonl", cluster.master.port, dirs, pids);
    if (broker) {
      const withBroker = [...pids, broker.pid];
      mqtt0 = await nodeRedLadder("sqi-event-bus, MQTT QoS 0", "gen.mqtt0", "mqtt0.jsonl", cluster.master.port, dirs, withBroker);
      mqtt1 = await nodeRedLadder("sqi-event-bus, MQTT QoS 1", "gen.mqtt1", "mqtt1.jsonl", cluster.master.port, dirs, withBroker);
    }
  } finally {
    await cluster.stop();
    await broker?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const raw1 = await rawLadder(1);
  const raw100 = await rawLadder(100);
  const b = best(bus);
  const c = best(core);
  process.stdout.write(
    `\nhighest rate with nothing lost and p99 < ${MAX_P99_MS} ms, to each of ${LISTENERS} listeners (events/s):\n` +
      `  sqi-event-bus (Node-RED)        ${b}\n` +
      (broker ? `  sqi-event-bus, MQTT QoS 0       ${best(mqtt0)}\n  sqi-event-bus, MQTT QoS 1       ${best(mqtt1)}\n` : "") +
      `  core websocket nodes            ${c}\n  raw ws, 1 event per frame      ${best(raw1)}\n  raw ws, 100 events per frame    ${best(raw100)}\n` +
      `ratios: bus/core ${c ? (b / c).toFixed(1) : "-"}x${broker && c ? `, MQTT QoS 0/core ${(best(mqtt0) / c).toFixed(1)}x, QoS 1/core ${(best(mqtt1) / c).toFixed(1)}x` : ""}; bus / raw ws 100-per-frame ${best(raw100) ? ((100 * b) / best(raw100)).toFixed(0) : "-"}%\n` +
      `targets: bus >= 50,000 events/s to each listener and >= 4x the core websocket nodes\n`,
  );
}

void main();
