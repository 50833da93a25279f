// bench/pulse-timing (npm run bench:pulse): pulses measured at the simulated pin, in one
// Node-RED 4.1 process, one chain after the other:
//   (a) the anchor a Node-RED user has today: inject (repeat 20 ms) -> core trigger
//       (1, wait 5 ms, 0) -> rpi-gpio out: 5 ms pulses at 50 Hz;
//   (b) this package: dc-container (a 20 ms tick) -> pulse-shaper (5 ms) -> rpi-gpio out;
//   (c) bursts of 10 pulses, 8 ms on / 2 ms off, one every 200 ms;
//   (d) 1 ms pulses at 100 Hz;
//   (e) as (b), through pulse-out: the shaper hands each pulse on whole, the helper times its fall
//       (at normal priority, as for a Pi user without CAP_SYS_NICE);
//   then (b) and (e) together while a busy loop per core (at Node-RED's own priority) starves them.
// For (a) and (b): pulses expected vs seen, absolute width error and rising-edge period error
// (median, p99, max), mean period, and Node-RED's CPU; then the ratios. For (b)-(d): width
// and off-time error at the pin and in the shaper's plan (the same settings and events on a
// virtual clock), and the pin-log auditor's
// violations (sqi-dc audit, the allowance 0.5 ms on 1 % of gaps). It prints and never fails
// on timing: the machine is shared and noisy.
//   BENCH_SECONDS (default 30) per chain.

import { execSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";
import { auditPin, DEFAULT_ALLOWANCE, distribution, limitsFromFlow, type Distribution } from "../lib/pulse/audit";
import { VirtualClock } from "../lib/clock";
import { parseShaperSettings } from "../lib/pulse/config";
import { spread, type Spread } from "../lib/pulse/measure";
import { PulseOutput } from "../lib/pulse/output";
import { planEvent } from "../lib/pulse/shapes";
import { gpioEnv, parsePinLog, type PinRecord } from "../scripts/gpio-sim";
import { resolveNodeRed } from "../scripts/node-red-path";
import { SHAPER_DEFAULTS } from "../test/helpers/flows";
import { loadEveryCore, pulseOutNode } from "../test/helpers/pins";

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
  {
    id: "a.inject",
    z: "a.tab",
    type: "inject",
    name: "",
    props: [{ p: "payload" }],
    repeat: "0.02",
    crontab: "",
    once: true,
    onceDelay: "0.5",
    topic: "",
    payload: "",
    payloadType: "date",
    x: 100,
    y: 80,
    wires: [["a.trigger"]],
  },
  {
    id: "a.trigger",
    z: "a.tab",
    type: "trigger",
    name: "",
    op1: "1",
    op2: "0",
    op1type: "num",
    op2type: "num",
    duration: "5",
    extend: false,
    overrideDelay: false,
    units: "ms",
    reset: "",
    bytopic: "all",
    topic: "topic",
    outputs: 1,
    x: 300,
    y: 80,
    wires: [["a.pin"]],
  },
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
    json: JSON.stringify({
      container_id: "fifty_hz",
      glyphs: [{ tick: 1, event: "proton_collision" }],
      loop: true,
      tick_interval_ms: PERIOD,
      metadata: { runtime_speed: "realtime" },
    }),
    autostart: true,
    startDelay: 0.5,
    lead: 50,
    accel: 10,
    x: 100,
    y: 80,
    wires: [["b.shaper"]],
  },
  {
    id: "b.shaper",
    z: "b.tab",
    type: "pulse-shaper",
    name: "",
    width: WIDTH,
    ...SHAPER_DEFAULTS,
    rows: [],
    x: 300,
    y: 80,
    wires: [["b.pin"], ["b.report"]],
  },
  // The shaper's own view of its edges (sent vs planned), to tell its timing from the GPIO helper's.
  {
    id: "b.report",
    z: "b.tab",
    type: "file",
    name: "",
    filename: "",
    filenameType: "env",
    appendNewline: true,
    createDir: false,
    overwriteFile: "false",
    encoding: "none",
    x: 500,
    y: 140,
    wires: [],
  },
  {
    id: "b.ask",
    z: "b.tab",
    type: "inject",
    name: "",
    props: [{ p: "measure", v: "true", vt: "bool" }],
    repeat: "",
    crontab: "",
    once: false,
    topic: "",
    x: 100,
    y: 140,
    wires: [["b.shaper"]],
  },
];

/** (b) through pulse-out on pin 24: whole pulses, the fall timed by the helper. */
const timedFlow = [
  ...ourFlow
    .filter((n) => n.id === "b.tab" || n.id === "b.player" || n.id === "b.shaper")
    .map(
      (n) => JSON.parse(JSON.stringify(n).replaceAll('"b.', '"e.').replace("(b) dc-container -> pulse-shaper", "(e) -> pulse-out")) as Record<string, unknown>,
    ),
  { ...pulseOutNode("e.pin", "e.tab", 24), x: 500, y: 80 },
].map((n) => (n.id === "e.shaper" ? { ...n, output: "pulses", wires: [["e.pin"], []] } : n));

/** A dc-container -> pulse-shaper -> rpi-gpio out chain, one event per tick. */
function shaperChain(key: string, label: string, pin: number, tickMs: number, event: string, shaper: Record<string, unknown>): Array<Record<string, unknown>> {
  const z = `${key}.tab`;
  return [
    { id: z, type: "tab", label },
    { id: `${key}.pin`, z, type: "rpi-gpio out", name: "", pin: String(pin), set: true, level: "0", freq: "", out: "out", bcm: true, x: 500, y: 80, wires: [] },
    {
      id: `${key}.player`,
      z,
      type: "dc-container",
      name: "",
      source: "inline",
      file: "",
      json: JSON.stringify({
        container_id: key.replace(/\W/g, "_"),
        glyphs: [{ tick: 1, event }],
        loop: true,
        tick_interval_ms: tickMs,
        metadata: { runtime_speed: "realtime" },
      }),
      autostart: true,
      startDelay: 2,
      lead: 50,
      accel: 10,
      x: 100,
      y: 80,
      wires: [[`${key}.shaper`]],
    },
    {
      id: `${key}.shaper`,
      z,
      type: "pulse-shaper",
      name: label,
      ...SHAPER_DEFAULTS,
      ...shaper,
      x: 300,
      y: 80,
      wires: [[`${key}.pin`], []],
    },
  ];
}

// 8 ms on / 2 ms off: with edges allowed 1 ms apart (1,000 edges/s) and a 1 ms minimum off-time,
// the 1 ms pin guard leaves exactly 2 ms. 80 ms on in every 200 ms: 40 % duty.
const burstFlow = shaperChain("c", "(c) bursts 8 ms on / 2 ms off", 22, 200, "burst", {
  width: 5,
  maxRate: 1000,
  minOff: 1,
  pinGuard: 1,
  rows: [{ event: "burst", shape: "burst", count: 10, frequency: 100, duty: 0.8 }],
});
// 1 ms pulses: the edge spacing (0.5 ms at 2,000 edges/s) plus a 0.5 ms guard still lets a 1 ms pulse through.
const shortFlow = shaperChain("d", "(d) 1 ms pulses at 100 Hz", 23, 10, "tick", { width: 1, maxRate: 2000, minOff: 1, pinGuard: 0.5, rows: [] });

interface Shape {
  name: string;
  pulses: number;
  width: Distribution | null;
  off: Distribution | null;
  planned: { width: Distribution | null; off: Distribution | null; violations: number };
  violations: string[];
}

/**
 * The shaper's plan for the same chain: the same settings and one event per tick, on a virtual
 * clock (no lateness anywhere), as pin-log records. (A node tapping the edges in the real run
 * would itself delay the GPIO helper: measured, the width error at the pin went from 0.06 to 0.3 ms.)
 */
function plannedEdges(flow: Array<Record<string, unknown>>, pin: number, tickMs: number, seconds: number): PinRecord[] {
  const def = flow.find((n) => n.type === "pulse-shaper")!;
  const parsed = parseShaperSettings(def);
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  const s = parsed.settings;
  const event = String((JSON.parse(String(flow.find((n) => n.type === "dc-container")!.json)) as { glyphs: Array<{ event: string }> }).glyphs[0]!.event);
  const clock = new VirtualClock(0);
  const recs: PinRecord[] = [];
  const out = new PulseOutput(clock, s.limits, false, (e) => recs.push({ t: e.planned, pin, value: e.level }));
  const plan = planEvent(event, {}, s.shape);
  if (plan.kind !== "segments") throw new Error(`${event}: ${plan.kind}`);
  for (let t = 0; t < seconds * 1000; t += tickMs) clock.setTimer(() => out.add(plan.segments, t + 50, { event }), t);
  clock.runUntil(seconds * 1000 + 1000);
  return recs;
}

/** Width and off-time errors against the nominal ones, at the pin and in the plan, and the audits. */
function shapeRow(
  name: string,
  flow: Array<Record<string, unknown>>,
  pinLog: string,
  pin: number,
  from: number,
  to: number,
  on: number,
  off: number,
  tickMs: number,
): Shape {
  const limits = limitsFromFlow(flow).pins.get(pin)!.limits;
  const errors = (recs: PinRecord[]) => {
    const widths: number[] = [];
    const offs: number[] = [];
    const edges = recs.filter((r) => r.event === undefined);
    for (let i = 1; i < edges.length; i++) {
      const d = edges[i]!.t - edges[i - 1]!.t;
      if (edges[i - 1]!.value === 1) widths.push(Math.abs(d - on));
      else if (d < off * 3) offs.push(Math.abs(d - off)); // within a burst, not the pause between bursts
    }
    return { width: distribution(widths), off: distribution(offs) };
  };
  const atPin = parsePinLog(fs.readFileSync(pinLog, "utf8")).filter((r) => r.pin === pin && r.t >= from && r.t <= to);
  const planned = plannedEdges(flow, pin, tickMs, (to - from) / 1000);
  const audit = auditPin(pin, atPin, limits, DEFAULT_ALLOWANCE);
  const plannedAudit = auditPin(pin, planned, limits, { jitterMs: 0, share: 0, onMs: 0 });
  return {
    name,
    pulses: audit.pulses,
    ...errors(atPin),
    planned: { ...errors(planned), violations: plannedAudit.violations.length },
    violations: audit.violations,
  };
}

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
  fs.writeFileSync(
    path.join(dir, "settings.js"),
    `module.exports = ${JSON.stringify({ uiPort: port, uiHost: "127.0.0.1", flowFile: "flows.json", nodesDir: [packageRoot], logging: { console: { level: "warn" } }, telemetry: { enabled: false }, editorTheme: { projects: { enabled: false }, tours: false } })};\n`,
  );
  fs.writeFileSync(path.join(dir, "flows.json"), "[]");
  const gpio = gpioEnv(log);
  const reportFile = path.join(dir, "shaper-report.jsonl");
  gpio.env.SQI_BENCH_REPORT = reportFile;
  (ourFlow.find((n) => n.id === "b.report") as { filename: string }).filename = "SQI_BENCH_REPORT";
  const red = spawn(process.execPath, [resolveNodeRed("node-red/red.js"), "--userDir", dir, "--settings", path.join(dir, "settings.js")], {
    env: gpio.env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  try {
    await waitUp(port);
    process.stdout.write(
      `pulse timing: 5 ms pulses at 50 Hz, bursts, 1 ms pulses; ${SECONDS} s per chain after ${WARMUP_S} s warm-up, one Node-RED ${red.pid} on the ${gpio.simulated ? "simulated" : "real"} GPIO\n`,
    );
    const a = await phase(red.pid!, port, anchorFlow);
    const b = await phase(red.pid!, port, ourFlow);
    await fetch(`http://127.0.0.1:${port}/inject/b.ask`, { method: "POST" });
    await new Promise((r) => setTimeout(r, 500));
    const c = await phase(red.pid!, port, burstFlow);
    const d = await phase(red.pid!, port, shortFlow);
    const e = await phase(red.pid!, port, timedFlow);
    const load = loadEveryCore(0);
    let loaded: { from: number; to: number; cpu: number };
    try {
      loaded = await phase(red.pid!, port, [
        ...ourFlow.filter((n) => n.id !== "b.report" && n.id !== "b.ask").map((n) => (n.id === "b.shaper" ? { ...n, wires: [["b.pin"], []] } : n)),
        ...timedFlow,
      ]);
    } finally {
      load.stop();
    }
    const own = fs.existsSync(reportFile)
      ? (JSON.parse(fs.readFileSync(reportFile, "utf8").trim().split("\n").pop()!) as { timing_error_ms: Spread | null; width_error_ms: Spread | null })
      : undefined;
    const rows = [
      analyse("(a) inject -> trigger", log, 20, a.from, a.to, a.cpu),
      analyse("(b) dc-container -> pulse-shaper", log, 21, b.from, b.to, b.cpu),
      analyse("(e) (b) -> pulse-out", log, 24, e.from, e.to, e.cpu),
      analyse("(b) under load", log, 21, loaded.from, loaded.to, loaded.cpu),
      analyse("(e) under load", log, 24, loaded.from, loaded.to, loaded.cpu),
    ];
    process.stdout.write(
      `\n${"chain".padEnd(34)} ${"expected".padStart(8)} ${"seen".padStart(6)} | ${"|width err| ms: median".padStart(22)} ${"p99".padStart(7)} ${"max".padStart(7)} | ${"|period err| ms: median".padStart(23)} ${"p99".padStart(7)} ${"max".padStart(7)} | ${"mean period".padStart(11)} | ${"CPU %".padStart(6)}\n`,
    );
    for (const r of rows) {
      process.stdout.write(
        `${r.name.padEnd(34)} ${String(r.expected).padStart(8)} ${String(r.seen).padStart(6)} | ${f(r.width, "median").padStart(22)} ${f(r.width, "p99").padStart(7)} ${f(r.width, "max").padStart(7)} | ${f(r.period, "median").padStart(23)} ${f(r.period, "p99").padStart(7)} ${f(r.period, "max").padStart(7)} | ${r.meanPeriod.toFixed(4).padStart(11)} | ${r.cpu.toFixed(1).padStart(6)}\n`,
      );
    }
    const [ra, rb, re, rbl, rel] = rows as [Row, Row, Row, Row, Row];
    const over = (pin: number, from: number, to: number) => {
      const audit = auditPin(
        pin,
        parsePinLog(fs.readFileSync(log, "utf8")).filter((r) => r.pin === pin && r.t >= from && r.t <= to),
        limitsFromFlow(ourFlow).pins.get(21)!.limits,
        DEFAULT_ALLOWANCE,
      );
      return `${audit.violations.length} violations${audit.violations.length ? ` (${audit.violations.join("; ")})` : ""}`;
    };
    const ratio = (x: number | undefined, y: number | undefined) => (x !== undefined && y !== undefined ? (x / Math.max(y, 0.001)).toFixed(1) : "-");
    process.stdout.write(
      `\nratios (a)/(b): width error median ${ratio(ra.width?.median, rb.width?.median)}x, p99 ${ratio(ra.width?.p99, rb.width?.p99)}x; period error median ${ratio(ra.period?.median, rb.period?.median)}x\n` +
        `mean period off 20 ms: (a) ${(((ra.meanPeriod - PERIOD) / PERIOD) * 100).toFixed(3)}%, (b) ${(((rb.meanPeriod - PERIOD) / PERIOD) * 100).toFixed(4)}%\n` +
        `(b) as sent by the shaper, before rpi-gpio out and its Python helper: edge timing error median ${f(own?.timing_error_ms ?? null, "median")}, p99 ${f(own?.timing_error_ms ?? null, "p99")}, max ${f(own?.timing_error_ms ?? null, "max")} ms; width error median ${f(own?.width_error_ms ?? null, "median")}, p99 ${f(own?.width_error_ms ?? null, "p99")} ms (last ${own?.timing_error_ms?.n ?? 0} edges)\n` +
        `targets for (b): median width error <= 0.1 ms and >= 4x smaller than (a); p99 <= 2 ms; mean period within 0.01% of 20 ms; CPU <= 15% of a core\n` +
        `\n(e) pulse-out, quiet: width error p99 ${f(re.width, "p99")} ms (target <= 0.2 ms: ${(re.width?.p99 ?? 9) <= 0.2 ? "met" : "MISSED"}); ratios of width error p99: (a)/(e) ${ratio(ra.width?.p99, re.width?.p99)}x, (b)/(e) ${ratio(rb.width?.p99, re.width?.p99)}x\n` +
        `under a busy loop per core at Node-RED's priority: width error p99 / max (b) ${f(rbl.width, "p99")} / ${f(rbl.width, "max")} ms, (e) ${f(rel.width, "p99")} / ${f(rel.width, "max")} ms; ratio of max (b)/(e) ${ratio(rbl.width?.max, rel.width?.max)}x\n` +
        `  at the pin under load: (b) ${over(21, loaded.from, loaded.to)}; (e) ${over(24, loaded.from, loaded.to)}\n`,
    );
    const shapes = [
      shapeRow("(b) 5 ms pulses at 50 Hz", ourFlow, log, 21, b.from, b.to, WIDTH, PERIOD - WIDTH, PERIOD),
      shapeRow("(c) bursts 8 ms on / 2 ms off", burstFlow, log, 22, c.from, c.to, 8, 2, 200),
      shapeRow("(d) 1 ms pulses at 100 Hz", shortFlow, log, 23, d.from, d.to, 1, 9, 10),
    ];
    const g = (x: Distribution | null) => (x ? `${x.median.toFixed(3)} / ${x.p99.toFixed(3)} / ${x.max.toFixed(3)}` : "-");
    process.stdout.write(
      `\n${"shape (at the pin; planned)".padEnd(32)} ${"pulses".padStart(6)} | ${"|width err| ms med / p99 / max".padStart(30)} | ${"|off-time err| ms med / p99 / max".padStart(33)} | violations\n`,
    );
    for (const r of shapes) {
      process.stdout.write(
        `${r.name.padEnd(32)} ${String(r.pulses).padStart(6)} | ${g(r.width).padStart(30)} | ${g(r.off).padStart(33)} | ${r.violations.length}${r.violations.length ? ` (${r.violations.join("; ")})` : ""}\n`,
      );
      process.stdout.write(
        `${"  planned by the shaper".padEnd(32)} ${"".padStart(6)} | ${g(r.planned.width).padStart(30)} | ${g(r.planned.off).padStart(33)} | ${r.planned.violations}\n`,
      );
    }
    const [pb, pc] = shapes as [Shape, Shape, Shape];
    const ok = (cond: boolean) => (cond ? "met" : "MISSED");
    process.stdout.write(
      `targets at the pin: 5 ms pulses width error median <= 0.05 ms (${pb.width?.median.toFixed(3)}: ${ok((pb.width?.median ?? 9) <= 0.05)}) and p99 <= 1 ms (${pb.width?.p99.toFixed(3)}: ${ok((pb.width?.p99 ?? 9) <= 1)}); ` +
        `bursts off-time error median <= 0.1 ms (${pc.off?.median.toFixed(3)}: ${ok((pc.off?.median ?? 9) <= 0.1)}); zero violations (${shapes.reduce((n, r) => n + r.violations.length, 0)}: ${ok(shapes.every((r) => r.violations.length === 0))})\n`,
    );
  } finally {
    red.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    if (red.exitCode === null) red.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
