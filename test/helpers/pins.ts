// Pin-level checks for the system tests and benchmarks: a flow with every built-in shape on
// its own pin, a run of any flow file in a real Node-RED (npm start with SQI_FLOW) on the
// simulated GPIO, the audit of its pin log against the flow's own shaper limits, and busy
// processes that load every core.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { auditPin, byPin, DEFAULT_ALLOWANCE, formatAudit, limitsFromFlow, parsePinLog, type Allowance, type PinAudit } from "../../lib/pulse/audit";
import { PIN_GUARD_MS } from "../../lib/pulse/output";
import { startDemo, type Demo } from "./demo";
import { SHAPER_DEFAULTS } from "./flows";
import { killAll } from "./processes";

export type FlowNode = Record<string, unknown>;

/**
 * A pulse-out node with the shaper's default limits, its helper at normal priority (as on a Pi
 * where Node-RED runs as a user without CAP_SYS_NICE: the case to prove).
 */
export function pulseOutNode(id: string, z: string, pin: number): FlowNode {
  return { id, z, type: "pulse-out", name: "", pin, maxOn: 100, minOff: 1, maxRate: 500, late: 50, maxDuty: 50, dutyWindow: 1000, realtime: false, wires: [] };
}

/** dc-container (a looping inline container) -> pulse-shaper -> rpi-gpio out (or pulse-out), on one tab. */
export function chain(
  tab: string,
  key: string,
  o: { pin: number; tickMs: number; glyphs: unknown[]; shaper?: FlowNode; pinOut?: "out" | "pwm" | "timed"; player?: FlowNode },
): FlowNode[] {
  const id = (s: string) => `${key}.${s}`;
  const container = {
    container_id: key.replace(/\W/g, "_"),
    glyphs: o.glyphs,
    loop: true,
    tick_interval_ms: o.tickMs,
    metadata: { runtime_speed: "realtime" },
  };
  return [
    {
      id: id("player"),
      z: tab,
      type: "dc-container",
      name: key,
      source: "inline",
      file: "",
      json: JSON.stringify(container),
      autostart: true,
      startDelay: 3,
      lead: 50,
      accel: 10,
      ...o.player,
      wires: [[id("shaper")]],
    },
    {
      id: id("shaper"),
      z: tab,
      type: "pulse-shaper",
      name: key,
      width: 5,
      rows: [],
      ...SHAPER_DEFAULTS,
      ...o.shaper,
      ...(o.pinOut === "timed" ? { output: "pulses" } : {}),
      wires: [[id("pin")], []],
    },
    o.pinOut === "timed"
      ? { ...pulseOutNode(id("pin"), tab, o.pin), name: key }
      : {
          id: id("pin"),
          z: tab,
          type: "rpi-gpio out",
          name: key,
          pin: String(o.pin),
          set: true,
          level: "0",
          freq: o.pinOut === "pwm" ? "100" : "",
          out: o.pinOut ?? "out",
          bcm: true,
          wires: [],
        },
  ];
}

/** Every built-in shape on its own pin, each near or past what the pin can follow. Pin -> what it shows. */
export const SHAPE_PINS: Record<number, string> = {
  5: "pulse: 5 ms at 100 Hz",
  6: "pulse, saturated: 5 ms pulses asked every 3 ms (they merge, cut at the maximum on-time)",
  12: "burst, saturated: waveform_emit at 50 kHz, amplitude 0.8 (planned 8 ms on / 2 ms off)",
  13: "burst: 200 Hz, duty 0.5 (2.5 ms on / 2.5 ms off)",
  16: "split: time_dilation (a saturated fast burst, a pause, a slow pulse)",
  19: "combined: fusion_tick (5 pulses at 100 Hz, then 50 ms)",
  20: "pwm shape on a digital pin (amplitude 0.3 of 10 ms)",
  21: "PWM output: duties 30 and 90, and a saturated burst held as a duty",
  26: "counted trains at saturation: 1,000 clones of one 5 ms pulse per 20 ms tick",
};

type ChainSpec = Parameters<typeof chain>[2] & { key: string };

/** The chains of SHAPE_PINS. */
const SHAPE_CHAINS: ChainSpec[] = [
  { key: "pulse", pin: 5, tickMs: 10, glyphs: [{ tick: 1, event: "proton_collision" }] },
  { key: "pulse-saturated", pin: 6, tickMs: 3, glyphs: [{ tick: 1, event: "proton_collision" }] },
  { key: "burst-saturated", pin: 12, tickMs: 150, glyphs: [{ tick: 1, event: "waveform_emit", payload: { frequency_hz: 50_000, amplitude: 0.8 } }] },
  { key: "burst", pin: 13, tickMs: 60, glyphs: [{ tick: 1, event: "waveform_emit", payload: { frequency_hz: 200, amplitude: 0.5 } }] },
  { key: "split", pin: 16, tickMs: 80, glyphs: [{ tick: 1, event: "time_dilation", payload: { factor_fast: 10, factor_slow: 5 } }] },
  { key: "combined", pin: 19, tickMs: 150, glyphs: [{ tick: 1, event: "fusion_tick" }] },
  {
    key: "pwm-digital",
    pin: 20,
    tickMs: 10,
    glyphs: [{ tick: 1, event: "glow", payload: { amplitude: 0.3 } }],
    shaper: { rows: [{ event: "glow", shape: "pwm", width: 10 }] },
  },
  {
    key: "pwm-output",
    pin: 21,
    tickMs: 25,
    pinOut: "pwm",
    shaper: { output: "pwm", rows: [{ event: "glow", shape: "pwm", width: 20 }] },
    glyphs: [
      { tick: 1, event: "glow", payload: { amplitude: 0.3 } },
      { tick: 2, event: "glow", payload: { amplitude: 0.9 } },
      { tick: 3, event: "waveform_emit", payload: { frequency_hz: 50_000, amplitude: 0.6 } },
    ],
  },
  {
    key: "trains",
    pin: 26,
    tickMs: 20,
    glyphs: [{ tick: 1, event: "proton_collision" }],
    player: { clones: 1000, spread: "even", spreadOver: "tick", seed: 1, emission: "auto", aggregateAbove: 100, frameMs: 20 },
  },
];

/** Each digital shape of SHAPE_PINS again, through pulse-out: its pin -> the rpi-gpio out pin it copies. */
export const TIMED_PINS: Record<number, number> = { 2: 5, 3: 6, 4: 12, 7: 13, 8: 16, 9: 19, 10: 20, 11: 26 };

/**
 * Every shape through rpi-gpio out (SHAPE_PINS) and, with `timed`, each digital one again through
 * pulse-out (TIMED_PINS), in one flow: both paths under the same load in one run.
 */
export function shapesFlow(o: { timed?: boolean } = {}): FlowNode[] {
  const tab = "shapes";
  const copies = o.timed
    ? Object.entries(TIMED_PINS).map(([pin, of]) => ({ ...SHAPE_CHAINS.find((c) => c.pin === of)!, pin: Number(pin), pinOut: "timed" as const }))
    : [];
  return [
    { id: tab, type: "tab", label: "every shape at the pin" },
    ...SHAPE_CHAINS.flatMap((c) => chain(tab, c.key, c)),
    ...copies.map((c) => ({ ...c, key: `${c.key}-timed` })).flatMap((c) => chain(tab, c.key, c)),
  ];
}

export interface Stalls {
  edges: number;
  /** Node-RED itself stalled: an edge handed on more than NODE_STALL_MS after its timer chose it, or its timer fired more than TIMER_STALL_MS late. */
  node: number;
  /**
   * Edges Node-RED delayed past what the shaper's pin guard absorbs: a stall as above, or handed
   * on more than PIN_GUARD_MS after its plan (a timer 1.4 ms late is no stall, but it eats the
   * guard). A violation in what the shaper handed on is accepted only beside such an edge.
   */
  nodeEvidence: number;
  /** rpi-gpio out's helper took an edge more than HELPER_STALL_MS after it was handed on. */
  helper: number;
  /**
   * Edges with evidence of a delay after the shaper planned them: a Node-RED stall, a helper
   * stall, or the whole way from plan to pin longer than the pin guard the shaper keeps inside
   * every limit (jitter in Node-RED and in the helper that adds up past it). A violation at the
   * pin is accepted only beside such an edge; only a driver that times the fall itself can do better.
   */
  evidence: number;
  /** From hand-on to the pin, ms. */
  helperDelay: { p50: number; p99: number; max: number };
}

/** What pulse-out said of the limits its helper passed at the pin, on-time or duty (its warnings in the log). */
export interface OverReports {
  /** The helper's own count, from the last warning. */
  total: number;
  /** The warnings, as logged: each says how wide and how late the fall was (the stall). */
  lines: string[];
}

/** pulse-out's warnings in a Node-RED log, by GPIO. */
export function overReports(log: string): Map<number, OverReports> {
  const out = new Map<number, OverReports>();
  for (const m of log.matchAll(/pulse-out: GPIO (\d+): ([^\n]*?) · (\d+) over in all/g)) {
    const r = out.get(Number(m[1])) ?? { total: 0, lines: [] };
    r.total = Math.max(r.total, Number(m[3]));
    r.lines.push(m[2]!);
    out.set(Number(m[1]), r);
  }
  return out;
}

export interface PinRun {
  /** The pin log of the simulated GPIO, audited with the given allowance for the helper. */
  pins: PinAudit[];
  /** pulse-out pins: the limits its helper reported passed at the pin (on-time or duty), with why. */
  overs: Map<number, OverReports>;
  /** When the shaper handed each edge to rpi-gpio out (a tap wired before it), audited with no allowance at all. */
  arrivals: PinAudit[];
  stalls: Map<number, Stalls>;
  /** Everything above as a person reads it. */
  text: string;
}

/** Above these, a process was not running when it should have been: the evidence a test needs to excuse a violation. */
export const HELPER_STALL_MS = PIN_GUARD_MS + 0.5;
export const NODE_STALL_MS = 1;
export const TIMER_STALL_MS = 2;

/**
 * No pulse longer than the maximum on-time + 2 ms, as handed to rpi-gpio out and at the pin,
 * and every limit held, except with a stall as evidence beside each violation (Node-RED's own
 * timer late, the GPIO helper late: on a busy machine a process now and then waits several ms
 * for a core). How often stalls happen is the machine's business: benchmarks report it.
 */
export function assertNeverLonger(run: PinRun, what: string, maxOnMs: number): void {
  for (const seen of run.pins) {
    const sent = run.arrivals.find((a) => a.pin === seen.pin)!;
    const stalls = run.stalls.get(seen.pin);
    // A pin with no arrival tap is a pulse-out pin: its helper times each fall and reports its own stalls.
    if (!stalls) {
      assertTimedPin(run, seen, what, TIMED_SLACK_MS);
      continue;
    }
    assert.ok(seen.widthMs, `${what}: pin ${seen.pin} pulsed\n${run.text}`);
    const over = (a: typeof seen) => a.widthList.filter((w) => w > maxOnMs + 2).length;
    assert.ok(
      over(sent) <= stalls.nodeEvidence,
      `${what}: pin ${seen.pin}: handed on, no pulse over ${maxOnMs} + 2 ms but where Node-RED stalled (${over(sent)} over, widest ${sent.widthMs!.max} ms)\n${run.text}`,
    );
    assert.ok(
      over(seen) <= stalls.evidence,
      `${what}: pin ${seen.pin}: at the pin, no pulse over ${maxOnMs} + 2 ms but where a process stalled (${over(seen)} over, widest ${seen.widthMs.max} ms)\n${run.text}`,
    );
    assert.ok(violationCount(seen) <= 2 * stalls.evidence, `${what}: pin ${seen.pin} within the limits, but where a process stalled\n${run.text}`);
  }
}

/**
 * What pulse-out promises at the pin under a CPU load at Node-RED's own priority: no off-time or
 * edge gap more than this under its limit (and no pulse over the maximum on-time, no duty over
 * its maximum, at all but where its helper reported a late fall).
 */
export const TIMED_SLACK_MS = 1;

/** The pin log's clock (wall time in the simulated lgpio) against the helper's (CLOCK_MONOTONIC): a width may differ by this. */
const CLOCKS_MS = 0.1;

/**
 * A pulse-out pin at the pin: pulsed, and within every limit but `slackMs` (0: exactly within).
 * Its helper waits out the off-time and edge gap after the fall it wrote, so those hold exactly
 * whatever the load. Only a fall the kernel runs late can stretch a pulse past the maximum
 * on-time: the helper measures each pulse it wrote (from before its rise to after its fall, so
 * never narrower than at the pin) and reports every one over, with how late its fall came. So a
 * pulse over the limit at the pin is accepted only with that report beside it: the stall is the
 * evidence, and nothing over the limit goes unsaid.
 */
export function assertTimedPin(run: PinRun, a: PinAudit, what: string, slackMs: number): void {
  const l = a.limits;
  assert.ok(a.pulses > 0, `${what}: pin ${a.pin} pulsed`);
  const said = run.overs.get(a.pin) ?? { total: 0, lines: [] };
  const evidence = said.lines.length ? `; the helper said: ${said.lines.join(" | ")}` : "; the helper reported none";
  const overAtPin = a.widthList.filter((w) => w > l.maxOnMs + CLOCKS_MS).length;
  assert.ok(
    overAtPin === 0 || (overAtPin <= said.total && said.lines.some((x) => x.includes("over the maximum on-time"))),
    `${what}: pin ${a.pin} (pulse-out): ${overAtPin} pulses over the maximum on-time of ${l.maxOnMs} ms at the pin, ${said.total} limits passed as its helper reported${evidence}`,
  );
  const shortOff = l.minOffMs - (a.off.shortest?.ms ?? Infinity);
  assert.ok(shortOff <= slackMs + 1e-3, `${what}: pin ${a.pin} (pulse-out): shortest off-time ${a.off.shortest?.ms} ms, limit ${l.minOffMs} - ${slackMs} ms`);
  // The duty the same way: over the limit at the pin only where the helper said a late fall put it there.
  const dutyOver = ((a.maxDuty?.duty ?? 0) - l.maxDuty) * l.dutyWindowMs;
  assert.ok(
    dutyOver <= CLOCKS_MS || said.lines.some((x) => x.includes("over the maximum duty")),
    `${what}: pin ${a.pin} (pulse-out): highest duty ${a.maxDuty?.duty} over ${l.dutyWindowMs} ms, limit ${l.maxDuty}, and its helper said no late fall put it there${evidence}`,
  );
  const shortGap = 1000 / l.maxEdgeRate - (a.spacing.shortest?.ms ?? Infinity);
  assert.ok(
    shortGap <= slackMs + 1e-3,
    `${what}: pin ${a.pin} (pulse-out): shortest edge gap ${a.spacing.shortest?.ms} ms, limit ${1000 / l.maxEdgeRate} - ${slackMs} ms`,
  );
}

/** How many things an audit found wrong: gaps short beyond the allowance, too many within it, stretches over the on-time, a duty over the limit. */
export function violationCount(a: PinAudit): number {
  const excess = a.violations.some((v) => v.includes("within the jitter allowance")) ? 1 : 0;
  return a.spacing.beyond + a.off.beyond + a.overOn + (a.violations.some((v) => v.startsWith("duty")) ? 1 : 0) + excess;
}

/**
 * Runs a flow in a real Node-RED (npm start with SQI_FLOW) for `seconds` (and until `during`
 * has finished: what the test does meanwhile, e.g. a master sending frames), stops it
 * gracefully, and audits every pin a pulse-shaper drives against that shaper's limits, twice:
 * the pin log (what the GPIO helper did), and the times the edges were handed to rpi-gpio out,
 * taken by a function node the shaper delivers to just before the pin (what this package did).
 */
export async function runAndAudit(
  flow: FlowNode[],
  seconds: number,
  allowance?: Partial<Allowance>,
  extraEnv: Record<string, string> = {},
  during?: (demo: Demo) => Promise<void>,
): Promise<PinRun> {
  const dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "sqi-pins-"));
  const flowFile = path.join(dir, "flow.json");
  const arrivalsFile = path.join(dir, "arrivals.jsonl");
  fs.writeFileSync(flowFile, JSON.stringify(withArrivalTaps(flow, arrivalsFile)));
  const demo = await startDemo({ SQI_FLOW: flowFile, SQI_PIN_LOG: path.join(dir, "pins.jsonl"), ...extraEnv });
  try {
    await Promise.all([new Promise((r) => setTimeout(r, seconds * 1000)), during?.(demo)]);
  } finally {
    await demo.cleanUp();
  }
  const overs = overReports(demo.output());
  try {
    const pinLog = fs.readFileSync(path.join(dir, "pins.jsonl"), "utf8");
    const arrivalLog = fs.existsSync(arrivalsFile) ? fs.readFileSync(arrivalsFile, "utf8") : "";
    const pins = auditLog(pinLog, flow, allowance);
    const arrivals = auditLog(arrivalLog, flow, { jitterMs: 0, share: 0, onMs: 0 });
    const stalls = countStalls(pinLog, arrivalLog);
    const text = [
      "at the pin:",
      pins.text,
      "as the shaper handed the edges to rpi-gpio out:",
      arrivals.text,
      "stalls (the evidence for any violation above):",
      ...[...overs].map(
        ([pin, r]) => `  pin ${pin} (pulse-out): ${r.total} limits passed at the pin (on-time or duty), as its helper said: ${r.lines.join(" | ")}`,
      ),
      ...[...stalls].map(
        ([pin, x]) =>
          `  pin ${pin}: ${x.node} of ${x.edges} edges late in Node-RED (handed on > ${NODE_STALL_MS} ms after chosen, or timer > ${TIMER_STALL_MS} ms late), ${x.nodeEvidence} handed on > ${PIN_GUARD_MS} ms after their plan; ${x.helper} taken by the GPIO helper > ${HELPER_STALL_MS} ms after hand-on (p50 ${x.helperDelay.p50.toFixed(3)} / p99 ${x.helperDelay.p99.toFixed(3)} / max ${x.helperDelay.max.toFixed(3)} ms); ${x.evidence} with a delay after the plan (either, or plan to pin > ${PIN_GUARD_MS} ms, the pin guard)`,
      ),
    ].join("\n");
    return { pins: pins.audits, overs, arrivals: arrivals.audits, stalls, text };
  } finally {
    // SQI_KEEP_PIN_LOGS=1 keeps the logs (pins.jsonl, arrivals.jsonl, flow.json) to look into.
    if (process.env.SQI_KEEP_PIN_LOGS) process.stderr.write(`pin logs kept in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A function node beside every rpi-gpio out that a pulse-shaper drives, logging when each edge arrived. */
function withArrivalTaps(flow: FlowNode[], file: string): FlowNode[] {
  const out = flow.map((n) => ({ ...n }));
  const byId = new Map(out.map((n) => [n.id, n]));
  for (const shaper of out.filter((n) => n.type === "pulse-shaper")) {
    const wires = (shaper.wires as string[][]).map((w) => [...w]);
    for (const id of [...(wires[0] ?? [])]) {
      const pinNode = byId.get(id);
      if (pinNode?.type !== "rpi-gpio out") continue;
      const tapId = `${id}.arrivals`;
      out.push({
        id: tapId,
        z: shaper.z,
        type: "function",
        name: "arrival tap",
        libs: [
          { var: "fs", module: "fs" },
          { var: "perf", module: "perf_hooks" },
        ],
        func: `fs.appendFileSync(${JSON.stringify(file)}, JSON.stringify({ t: perf.performance.timeOrigin + perf.performance.now(), pin: ${Number(pinNode.pin)}, value: msg.payload, sent: msg.sqi.edge.sent, planned: msg.sqi.edge.planned }) + "\\n"); return null;`,
        outputs: 1,
        wires: [[]],
      });
      // Before the pin: its time is when the edge was handed on. (After it, the tap would also
      // count the moment rpi-gpio out's helper, woken by the write, took the CPU.)
      wires[0]!.unshift(tapId);
    }
    shaper.wires = wires;
  }
  return out;
}

/** Per pin, the stalls of Node-RED and of the GPIO helper, from the tap's records matched in order with the pin log's changes. */
function countStalls(pinLog: string, arrivalLog: string): Map<number, Stalls> {
  const pins = byPin(parsePinLog(pinLog).records);
  const taps = new Map<number, TapRecord[]>();
  for (const line of arrivalLog.split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line) as TapRecord;
    let list = taps.get(r.pin);
    if (!list) taps.set(r.pin, (list = []));
    list.push(r);
  }
  const out = new Map<number, Stalls>();
  for (const [pin, sent] of taps) {
    const changes = (pins.get(pin) ?? []).filter((r) => r.event === undefined);
    const n = Math.min(changes.length, sent.length);
    const d = Array.from({ length: n }, (_, i) => changes[i]!.t - sent[i]!.t);
    const sorted = [...d].sort((a, b) => a - b);
    const nodeStall = (r: TapRecord) => r.t - r.sent > NODE_STALL_MS || r.sent - r.planned > TIMER_STALL_MS;
    out.set(pin, {
      edges: sent.length,
      node: sent.filter(nodeStall).length,
      nodeEvidence: sent.filter((r) => nodeStall(r) || r.t - r.planned > PIN_GUARD_MS).length,
      helper: d.filter((x) => x > HELPER_STALL_MS).length,
      evidence: sent.filter((r, i) => nodeStall(r) || (i < n && (d[i]! > HELPER_STALL_MS || changes[i]!.t - r.planned > PIN_GUARD_MS))).length,
      helperDelay: n
        ? { p50: sorted[Math.floor(n / 2)]!, p99: sorted[Math.min(n - 1, Math.floor(n * 0.99))]!, max: sorted[n - 1]! }
        : { p50: NaN, p99: NaN, max: NaN },
    });
  }
  return out;
}

interface TapRecord {
  t: number;
  pin: number;
  value: number;
  sent: number;
  planned: number;
}

export function auditLog(log: string, flow: unknown, allowance?: Partial<Allowance>): { audits: PinAudit[]; text: string } {
  const { pins, problems } = limitsFromFlow(flow);
  if (problems.length) throw new Error(problems.join("; "));
  const records = byPin(parsePinLog(log).records);
  const audits: PinAudit[] = [];
  for (const [pin, l] of pins) {
    audits.push(auditPin(pin, records.get(pin) ?? [], l.limits, { ...DEFAULT_ALLOWANCE, ...allowance }));
  }
  audits.sort((a, b) => a.pin - b.pin);
  return { audits, text: audits.map((a) => formatAudit(a).join("\n")).join("\n") };
}

/**
 * One busy-loop process per core (each ends by itself after 10 minutes), until stop(), by pid;
 * at nice `niceness` (0: the same priority as Node-RED; 19: the lowest).
 */
export function loadEveryCore(niceness = 0): { stop: () => void } {
  const kids: ChildProcess[] = os
    .cpus()
    .map(() => spawn(process.execPath, ["-e", "const end = Date.now() + 600000; while (Date.now() < end) {}"], { stdio: "ignore" }));
  if (niceness) for (const k of kids) os.setPriority(k.pid!, niceness);
  return { stop: () => killAll(...kids.map((k) => k.pid)) };
}
