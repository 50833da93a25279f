// bench/pulse-timing (npm run bench:pulse): 5 ms pulses at 50 Hz, measured at the
// simulated pin, in one Node-RED 4.1 process, one chain after the other:
//   (a) the anchor a Node-RED user has today: inject (repeat 20 ms) -> core trigger
//       (1, wait 5 ms, 0) -> rpi-gpio out;
//   (b) this package: dc-container (a 20 ms tick) -> pulse-shaper (5 ms) -> rpi-gpio out.
// For each: pulses expected vs seen, absolute width error and rising-edge period error
// (median, p99, max), mean period, and Node-RED's CPU; then the ratios. It prints and
// never fails on timing: the machine is shared and noisy.
//   BENCH_SECONDS (default 30) per chain.

import { execSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";
import { spread, type Spread } from "../lib/pulse/measure";
import { gpioEnv, parsePinLog } from "../scripts/gpio-sim";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const WARMUP_S = 3;
const WIDTH = 5;
const PERIOD = 20;
const TICKS_PER_S = Number(clockTicks());

function clockTicks(): string {
  try {
    return execSync("getconf CLK_TCK").toString().trim();
  } catch {
    return "100";
  }
}

const anchorFlow = [
  { id: "a.tab", type: "tab", label: "(a) inject -> trigger" },
  { id: "a.pin", z: "a.tab", type: "rpi-gpio out", name: "", pin: "20", set: true, level: "0", freq: "", out: "out", bcm: true, x: 500, y: 80, wires: [] },
  { id: "a.inject", z: "a.tab", type: "inject", name: "", props: [{ p: "payload" }], repeat: "0.02", crontab: "", once: true, onceDelay: "0.5", topic: "", payload: "", payloadType: "date", x: 100, y: 80, wires: [["a.trigger"]] },
  { id: "a.trigger", z: "a.tab", type: "trigger", name: "", op1: "1", op2: "0", op1type: "num", op2type: "num", duration: "5", extend: false, overrideDelay: false, units: "ms", reset: "", bytopic: "all", topic: "topic", outputs: 1, x: 300, y: 80, wires: [["a.pin"]] },
];

const ourFlow = [
  { id: "b.tab", type: "tab", label: "(b) dc-container -> pulse-shaper" },
  { id: "b.pin", z: "b.tab", type: "rpi-gpio out", name: "", pin: "21", set: true, level: "0", freq: "", out: "out", bcm: true, x: 500, y: 80, wires: [] },
  {
    id: "b.player",
    z: "b.tab",
    type: "dc-container",
    name: "",
    source: "inline",
    file: "",
    json: JSON.stringify({ container_id: "fifty_hz", glyphs: [{ tick: 1, event: "proton_collision" }], loop: true, tick_interval_ms: PERIOD, metadata: { runtime_speed: "realtime" } }),
    autostart: true,
    startDelay: 0.5,
    lead: 50,
    accel: 10,
    x: 100,
    y: 80,
    wires: [["b.shaper"]],
  },
  { id: "b.shaper", z: "b.tab", type: "pulse-shaper", name: "", width: WIDTH, output: "digital", unknown: "pulse", late: "fire", rows: [], maxOn: 100, maxDuty: 50, dutyWindow: 1000, minOff: 1, maxRate: 500, volts: "", ohms: "", measureEvery: 0, x: 300, y: 80, wires: [["b.pin"], ["b.report"]] },
  // The shaper's own view of its edges (sent vs planned), to tell its timing from the GPIO helper's.
  { id: "b.report", z: "b.tab", type: "file", name: "", filename: "", filenameType: "env", appendNewline: true, createDir: false, overwriteFile: "false", encoding: "none", x: 500, y: 140, wires: [] },
  { id: "b.ask", z: "b.tab", type: "inject", name: "", props: [{ p: "measure", v: "true", vt: "bool" }], repeat: "", crontab: "", once: false, topic: "", x: 100, y: 140, wires: [["b.shaper"]] },
];

interface Row {
  name: string;
  expected: number;
  seen: number;
  width: Spread | null;
  period: Spread | null;
  meanPeriod: number;
  cpu: number;
}

function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function analyse(name: string, log: string, pin: number, from: number, to: number, cpu: number): Row {
  const recs = parsePinLog(fs.readFileSync(log, "utf8")).filter((r) => r.pin === pin && r.event === undefined && r.t >= from && r.t <= to);
  const rises: number[] = [];
  const widths: number[] = [];
  let rise: number | undefined;
  for (const r of recs) {
    if (r.value === 1) {
      rise = r.t;
      rises.push(r.t);
    } else if (r.value === 0 && rise !== undefined) {
      widths.push(Math.abs(r.t - rise - WIDTH));
      rise = undefined;
    }
  }
  const periods = rises.slice(1).map((t, i) => Math.abs(t - rises[i]! - PERIOD));
  return {
    name,
    expected: Math.round(((to - from) / 1000) * (1000 / PERIOD)),
    seen: rises.length,
    width: spread(widths),
    period: spread(periods),
    meanPeriod: rises.length > 1 ? (rises[rises.length - 1]! - rises[0]!) / (rises.length - 1) : NaN,
    cpu,
  };
}

async function waitUp(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/settings`)).ok) return;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("Node-RED did not start");
}

async function deploy(port: number, flow: unknown[]): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${port}/flows`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
    body: JSON.stringify(flow),
  });
  if (r.status !== 204) throw new Error(`deploy answered ${r.status}`);
}

async function phase(pid: number, port: number, flow: unknown[]): Promise<{ from: number; to: number; cpu: number }> {
  await deploy(port, flow);
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
  const from = Date.now();
  const c0 = cpuTicks(pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const to = Date.now();
  const cpu = ((cpuTicks(pid) - c0) / TICKS_PER_S / ((to - from) / 1000)) * 100;
  return { from, to, cpu };
}

const f = (s: Spread | null, k: keyof Spread) => (s ? (s[k] as number).toFixed(3) : "-");

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-pulse-"));
  const log = path.join(dir, "pins.jsonl");
  const port = 18000 + Math.floor(Math.random() * 2000);
  fs.writeFileSync(path.join(dir, "settings.js"), `module.exports = ${JSON.stringify({ uiPort: port, uiHost: "127.0.0.1", flowFile: "flows.json", nodesDir: [packageRoot], logging: { console: { level: "warn" } }, telemetry: { enabled: false }, editorTheme: { projects: { enabled: false }, tours: false } })};\n`);
  fs.writeFileSync(path.join(dir, "flows.json"), "[]");
  const gpio = gpioEnv(log);
  const reportFile = path.join(dir, "shaper-report.jsonl");
  gpio.env.SQI_BENCH_REPORT = reportFile;
  (ourFlow.find((n) => n.id === "b.report") as { filename: string }).filename = "SQI_BENCH_REPORT";
  const red = spawn(process.execPath, [require.resolve("node-red/red.js", { paths: [packageRoot] }), "--userDir", dir, "--settings", path.join(dir, "settings.js")], { env: gpio.env, stdio: ["ignore", "inherit", "inherit"] });
  try {
    await waitUp(port);
    process.stdout.write(`pulse timing: 5 ms pulses at 50 Hz, ${SECONDS} s per chain after ${WARMUP_S} s warm-up, one Node-RED ${red.pid} on the ${gpio.simulated ? "simulated" : "real"} GPIO\n`);
    const a = await phase(red.pid!, port, anchorFlow);
    const b = await phase(red.pid!, port, ourFlow);
    await fetch(`http://127.0.0.1:${port}/inject/b.ask`, { method: "POST" });
    await new Promise((r) => setTimeout(r, 500));
    const own = fs.existsSync(reportFile) ? (JSON.parse(fs.readFileSync(reportFile, "utf8").trim().split("\n").pop()!) as { timing_error_ms: Spread | null; width_error_ms: Spread | null }) : undefined;
    const rows = [analyse("(a) inject -> trigger", log, 20, a.from, a.to, a.cpu), analyse("(b) dc-container -> pulse-shaper", log, 21, b.from, b.to, b.cpu)];
    process.stdout.write(`\n${"chain".padEnd(34)} ${"expected".padStart(8)} ${"seen".padStart(6)} | ${"|width err| ms: median".padStart(22)} ${"p99".padStart(7)} ${"max".padStart(7)} | ${"|period err| ms: median".padStart(23)} ${"p99".padStart(7)} ${"max".padStart(7)} | ${"mean period".padStart(11)} | ${"CPU %".padStart(6)}\n`);
    for (const r of rows) {
      process.stdout.write(
        `${r.name.padEnd(34)} ${String(r.expected).padStart(8)} ${String(r.seen).padStart(6)} | ${f(r.width, "median").padStart(22)} ${f(r.width, "p99").padStart(7)} ${f(r.width, "max").padStart(7)} | ${f(r.period, "median").padStart(23)} ${f(r.period, "p99").padStart(7)} ${f(r.period, "max").padStart(7)} | ${r.meanPeriod.toFixed(4).padStart(11)} | ${r.cpu.toFixed(1).padStart(6)}\n`,
      );
    }
    const [ra, rb] = rows as [Row, Row];
    const ratio = (x: number | undefined, y: number | undefined) => (x !== undefined && y !== undefined ? (x / Math.max(y, 0.001)).toFixed(1) : "-");
    process.stdout.write(
      `\nratios (a)/(b): width error median ${ratio(ra.width?.median, rb.width?.median)}x, p99 ${ratio(ra.width?.p99, rb.width?.p99)}x; period error median ${ratio(ra.period?.median, rb.period?.median)}x\n` +
        `mean period off 20 ms: (a) ${(((ra.meanPeriod - PERIOD) / PERIOD) * 100).toFixed(3)}%, (b) ${(((rb.meanPeriod - PERIOD) / PERIOD) * 100).toFixed(4)}%\n` +
        `(b) as sent by the shaper, before rpi-gpio out and its Python helper: edge timing error median ${f(own?.timing_error_ms ?? null, "median")}, p99 ${f(own?.timing_error_ms ?? null, "p99")}, max ${f(own?.timing_error_ms ?? null, "max")} ms; width error median ${f(own?.width_error_ms ?? null, "median")}, p99 ${f(own?.width_error_ms ?? null, "p99")} ms (last ${own?.timing_error_ms?.n ?? 0} edges)\n` +
        `targets for (b): median width error <= 0.1 ms and >= 4x smaller than (a); p99 <= 2 ms; mean period within 0.01% of 20 ms; CPU <= 15% of a core\n`,
    );
  } finally {
    red.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    if (red.exitCode === null) red.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
