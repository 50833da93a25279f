// `npm run soak -- --minutes N [--rate R] [--pis P]`: a master and P Pis (3) as real
// Node-REDs on 127.0.0.1 (scripts/cluster.ts), the master playing R events a second (200)
// to all of them for N minutes (10). Every 30 s it prints each process's RSS, each Pi's
// balance of what the master sent against what the Pi received and counted lost, and the
// pulses over the maximum on-time at each Pi's pins (the pin-log auditor). At the end the
// master stops playing, the last reports come in, and the balance must close: every event
// the master sent while a Pi was there either arrived or is counted lost. Exit 1 when an
// event is unaccounted for, a pulse exceeded the maximum on-time, or an RSS grew by 25 % or
// more from a third of the way to the end (the growth is printed: read it, not only the verdict).

import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { auditPin, byPin, DEFAULT_ALLOWANCE, limitsFromFlow, parsePinLog } from "../lib/pulse/audit";
import { packageRoot } from "../lib/paths";
import { startCluster, type Cluster, type Member } from "./cluster";

interface Report {
  name?: string;
  counters?: Record<string, number>;
  role?: string;
}

const PRINT_EVERY_MS = 30_000;

function usage(text: string): never {
  process.stderr.write(`[soak] ${text}\nusage: npm run soak -- [--minutes N] [--rate EVENTS_PER_S] [--pis P] [--bus-port PORT] [--base-port PORT]\n`);
  process.exit(2);
}

function num(v: string | undefined, fallback: number, name: string, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) usage(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** The role master flow playing `rate` events a second, a stop button the soak presses through the admin API, and the reports and stats in a file. */
function masterFlow(rate: number, reports: string): unknown[] {
  const flow = JSON.parse(fs.readFileSync(path.join(packageRoot, "flows", "master.json"), "utf8")) as Array<Record<string, unknown>>;
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const glyphs = Array.from({ length: perTick }, (_, i) => ({ tick: 1, event: i % 4 === 3 ? "atom_spin_flip" : "proton_collision" }));
  const container = { container_id: "soak", glyphs, loop: true, tick_interval_ms: tickMs, metadata: { runtime_speed: "realtime" } };
  for (const n of flow) {
    if (n.type === "dc-container") Object.assign(n, { source: "inline", file: "", json: JSON.stringify(container), startDelay: 2, accel: 1 });
    if (n.type === "sqi-event-bus") n.wires = [[], ["m.reports", "soak.file"]];
  }
  flow.push(
    {
      id: "soak.stop",
      z: "m.tab",
      type: "inject",
      name: "stop",
      props: [{ p: "payload" }],
      payload: "stop",
      payloadType: "str",
      repeat: "",
      once: false,
      wires: [["m.player"]],
    },
    {
      id: "soak.file",
      z: "m.tab",
      type: "file",
      name: "",
      filename: reports,
      filenameType: "str",
      appendNewline: true,
      createDir: false,
      overwriteFile: "false",
      encoding: "none",
      wires: [],
    },
  );
  return flow;
}

function rssMiB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The latest report of each Pi and the master's latest stats, from the reports file. */
function latest(file: string): { pis: Map<string, Record<string, number>>; sent: number } {
  const pis = new Map<string, Record<string, number>>();
  let sent = 0;
  if (!fs.existsSync(file)) return { pis, sent };
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    let r: Report;
    try {
      r = JSON.parse(line) as Report;
    } catch {
      continue; // a line being written
    }
    if (r.role === "broadcast" && r.counters) sent = r.counters.events ?? sent;
    else if (r.name && r.counters) pis.set(r.name, r.counters);
  }
  return { pis, sent };
}

interface Balance {
  before: number;
  received: number;
  lost: number;
  tail: number;
  unaccounted: number;
}

/**
 * One Pi's account of the `sent` events: before it joined (first_seq - 1), received once,
 * counted lost (missing, and lost_while_away by the master), not yet reported (sent after its
 * last_seq), and what is left: unaccounted, which must be 0.
 */
function balance(c: Record<string, number>, sent: number): Balance {
  // After a master restart, the new run's seqs before the Pi's first are counted missing instead.
  const before = c.restarts ? 0 : (c.first_seq ?? 1) - 1;
  const received = (c.received ?? 0) - (c.duplicates ?? 0);
  const lost = (c.missing ?? 0) + (c.lost_while_away ?? 0);
  const tail = Math.max(0, sent - (c.last_seq ?? 0));
  return { before, received, lost, tail, unaccounted: sent - before - received - lost - tail };
}

function overOnTime(m: Member, piFlow: unknown): { over: number; pulses: number } {
  const { pins } = limitsFromFlow(piFlow);
  const records = byPin(parsePinLog(fs.existsSync(m.pinLog) ? fs.readFileSync(m.pinLog, "utf8") : "").records);
  let over = 0;
  let pulses = 0;
  for (const [pin, l] of pins) {
    const a = auditPin(pin, records.get(pin) ?? [], l.limits, DEFAULT_ALLOWANCE);
    over += a.overOn;
    pulses += a.pulses;
  }
  return { over, pulses };
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        minutes: { type: "string" },
        rate: { type: "string" },
        pis: { type: "string" },
        "bus-port": { type: "string" },
        "base-port": { type: "string" },
      },
      strict: true,
    });
  } catch (e) {
    usage((e as Error).message);
  }
  const minutes = num(args.values.minutes, 10, "minutes", 0.5, 24 * 60);
  const rate = num(args.values.rate, 200, "rate", 1, 5000);
  const pis = Math.round(num(args.values.pis, 3, "pis", 1, 20));
  const dir = path.resolve(process.env.SQI_SOAK_DIR ?? path.join(packageRoot, ".soak"));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const reports = path.join(dir, "reports.jsonl");
  const flowFile = path.join(dir, "master-flow.json");
  fs.writeFileSync(flowFile, JSON.stringify(masterFlow(rate, reports)));
  const piFlow = JSON.parse(fs.readFileSync(path.join(packageRoot, "flows", "pi-node.json"), "utf8")) as unknown;
  const say = (t: string): void => void process.stdout.write(`[soak] ${t}\n`);

  say(`a master and ${pis} Pis, ${rate} events/s for ${minutes} min, in ${dir}`);
  let cluster: Cluster | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      await cluster?.stop();
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(130));
  process.on("SIGTERM", () => void stop(143));

  cluster = await startCluster({
    pis,
    jitterMs: 0,
    clockOffsetMs: 0,
    dir,
    basePort: num(args.values["base-port"], 1890, "base-port", 1024, 65000),
    busPort: num(args.values["bus-port"], 8775, "bus-port", 1024, 65000),
    masterFlow: flowFile,
  });
  const members = [cluster.master, ...cluster.pis];
  const rss = new Map<string, number[]>(members.map((m) => [m.name, []]));
  const began = Date.now();
  const end = began + minutes * 60_000;
  const print = (): void => {
    const t = ((Date.now() - began) / 1000).toFixed(0).padStart(5);
    const mem = members.map((m) => {
      const v = rssMiB(m.redPid);
      rss.get(m.name)!.push(v);
      return `${m.name} ${v.toFixed(0)} MiB`;
    });
    const { pis: reps, sent } = latest(reports);
    // While it plays, each Pi's account up to the last seq it reported (the master's stats come less often).
    const bal = [...reps].map(([name, c]) => {
      const b = balance(c, c.last_seq ?? 0);
      return `${name} seq ${b.before + 1}-${c.last_seq ?? 0}: received ${b.received} + lost ${b.lost} (unaccounted ${b.unaccounted})`;
    });
    const over = cluster.pis.map((m) => {
      const o = overOnTime(m, piFlow);
      return `${m.name} ${o.over} of ${o.pulses}`;
    });
    say(`${t} s  RSS: ${mem.join(", ")}`);
    say(`${t} s  the master sent ${sent} by its last stats; ${bal.join("; ") || "no reports yet"}`);
    say(`${t} s  pulses over the maximum on-time at the pin: ${over.join(", ")}`);
  };
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(PRINT_EVERY_MS, end - Date.now())));
    print();
  }

  // The master stops playing; the Pis' next reports (every 2 s) and its stats (every 5 s) close the account.
  const res = await fetch(`http://127.0.0.1:${cluster.master.port}/inject/soak.stop`, { method: "POST" });
  if (!res.ok) say(`could not press stop on the master: HTTP ${res.status}`);
  await new Promise((r) => setTimeout(r, 12_000));
  const { pis: reps, sent } = latest(reports);
  let failed = false;
  say(`final: the master sent ${sent} events`);
  for (const m of cluster.pis) {
    const c = reps.get(m.name);
    if (!c) {
      say(`${m.name}: no report`);
      failed = true;
      continue;
    }
    const b = balance(c, sent);
    const o = overOnTime(m, piFlow);
    say(
      `${m.name}: received ${b.received}, counted lost ${b.lost} (missing ${c.missing ?? 0}, while away ${c.lost_while_away ?? 0}), before it joined ${b.before}, unreported ${b.tail}: unaccounted ${b.unaccounted}; duplicates ${c.duplicates ?? 0}, late ${c.late ?? 0}, backlog dropped ${c.backlog_dropped ?? 0}; pulses ${o.pulses}, over the maximum on-time ${o.over}`,
    );
    if (b.unaccounted !== 0 || b.tail !== 0 || o.over > 0) failed = true;
  }
  for (const [name, list] of rss) {
    const third = list.slice(Math.floor(list.length / 3));
    const first = third[0] ?? NaN;
    const last = third[third.length - 1] ?? NaN;
    const growth = (last - first) / first;
    say(
      `${name}: RSS ${list.map((v) => v.toFixed(0)).join(" ")} MiB; from a third of the way to the end ${growth >= 0 ? "+" : ""}${(growth * 100).toFixed(1)}%`,
    );
    if (list.length >= 6 && growth > 0.25) failed = true;
  }
  say(failed ? "FAILED: see above" : "ok: every event accounted for, no pulse over the maximum on-time, no RSS grew 25 % or more after the first third");
  await stop(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`[soak] ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
