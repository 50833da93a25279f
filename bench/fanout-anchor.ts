// The anchors of bench/fanout, in the same run: a Node-RED master (scripts/cluster.ts, no
// Pis) with a bench-generator wired to core `websocket out` (a websocket-listener) and to a
// broadcast sqi-event-bus. The core node is served by as many plain `ws` clients (this file
// as a child process: each counts its messages and their latency from payload.t); the
// sqi-event-bus by the lightweight listeners of scripts/fleet.ts, to show the node in
// Node-RED beside the bare master.

import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import WebSocket from "ws";
import { packageRoot } from "../lib/paths";
import { startCluster, type Cluster } from "../scripts/cluster";
import { Histogram, type HistogramData } from "../scripts/fleet";
import { waitFor } from "../test/helpers/processes";
import { cpuSeconds, rssMb } from "./proc";
import { masterTransports } from "./transports";

export interface AnchorMaster {
  cluster: Cluster;
  pid: number;
  /** where plain clients connect (core websocket-listener), and the sqi-event-bus port */
  coreUrl: string;
  busPort: number;
  /** POSTs the generator: `rate` events a second for `seconds` ("core": to websocket out, "bus": to sqi-event-bus). */
  play(to: "core" | "bus", rate: number, seconds: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startNodeRedMaster(dir: string): Promise<AnchorMaster> {
  const flow = [
    { id: "m", type: "tab", label: "fanout anchor" },
    ...masterTransports("/core"),
    { id: "gen.core", z: "m", type: "bench-generator", wires: [["m.wsout"]] },
    { id: "gen.bus", z: "m", type: "bench-generator", wires: [["m.broadcast"]] },
  ];
  const flowFile = path.join(dir, "anchor-master.json");
  fs.writeFileSync(flowFile, JSON.stringify(flow));
  process.env.SQI_EXTRA_NODES_DIR = path.join(packageRoot, "bench", "nodes");
  const basePort = 25000 + Math.floor(Math.random() * 1000);
  const cluster = await startCluster({
    pis: 0,
    jitterMs: 0,
    clockOffsetMs: 0,
    dir: path.join(dir, "anchor"),
    basePort,
    busPort: basePort + 50,
    masterFlow: flowFile,
  });
  return {
    cluster,
    pid: cluster.master.redPid ?? 0,
    coreUrl: `ws://127.0.0.1:${cluster.master.port}/core`,
    busPort: basePort + 50,
    play: async (to, rate, seconds) => {
      const r = await fetch(`http://127.0.0.1:${cluster.master.port}/bench-gen/gen.${to}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rate, seconds }),
      });
      if (!r.ok) throw new Error(`bench-generator answered ${r.status}`);
      await new Promise((res) => setTimeout(res, 200 + seconds * 1000));
    },
    stop: () => cluster.stop(),
  };
}

export interface AnchorRow {
  cpuPct: number;
  rssMb: number;
  p50: number;
  p99: number;
  max: number;
  received: number;
  expected: number;
  connected: number;
}

type ClientsReply = { id: number; connected: number; received: number; latency: HistogramData };

function ask(child: ChildProcess, id: number, cmd: string): Promise<ClientsReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ClientsReply): void => {
      if (m.id !== id) return;
      child.off("message", onMessage);
      resolve(m);
    };
    child.on("message", onMessage);
    child.once("exit", () => reject(new Error("anchor clients exited")));
    child.send({ id, cmd });
  });
}

/** `n` plain clients of core `websocket out` while the generator sends `rate` events/s for `seconds`. */
export async function measureCore(m: AnchorMaster, n: number, rate: number, seconds: number, processes: number): Promise<AnchorRow> {
  const per = Math.ceil(n / processes);
  const kids: ChildProcess[] = [];
  for (let left = n; left > 0; left -= per)
    kids.push(
      fork(__filename, [], {
        env: { ...process.env, SQI_ANCHOR_CLIENTS: String(Math.min(per, left)), SQI_ANCHOR_URL: m.coreUrl },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    );
  let id = 0;
  const all = (cmd: string): Promise<ClientsReply[]> => Promise.all(kids.map((k) => ask(k, ++id, cmd)));
  try {
    await waitFor(`${n} plain clients connected`, async () => (await all("stats")).reduce((a, r) => a + r.connected, 0) === n, 60_000, 250);
    await all("reset");
    const cpu0 = cpuSeconds(m.pid);
    const t0 = Date.now();
    let peak = rssMb(m.pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(m.pid))), 250);
    await m.play("core", rate, seconds);
    await new Promise((r) => setTimeout(r, 2000)); // the generator's end marker comes 1.5 s after the last event
    clearInterval(sampler);
    const cpu = ((cpuSeconds(m.pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
    const replies = await all("stats");
    const h = new Histogram(-1000, 60_000, 0.5);
    for (const r of replies) h.merge(r.latency);
    return {
      cpuPct: cpu,
      rssMb: peak,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      max: h.max,
      received: replies.reduce((a, r) => a + r.received, 0),
      expected: Math.round(rate * seconds) * n,
      connected: replies.reduce((a, r) => a + r.connected, 0),
    };
  } finally {
    await Promise.all(
      kids.map(async (k) => {
        if (k.exitCode !== null || k.signalCode !== null) return;
        const gone = new Promise((r) => k.once("exit", r));
        k.kill("SIGTERM");
        await gone;
      }),
    );
  }
}

// ---- the child: plain clients ----

if (require.main === module && process.send && process.env.SQI_ANCHOR_CLIENTS) {
  const n = Number(process.env.SQI_ANCHOR_CLIENTS);
  const url = process.env.SQI_ANCHOR_URL ?? "";
  const latency = new Histogram(-1000, 60_000, 0.5);
  let received = 0;
  let connected = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i++) {
    setTimeout(() => {
      const ws = new WebSocket(url);
      ws.on("open", () => connected++);
      ws.on("close", () => connected--);
      ws.on("error", () => undefined);
      ws.on("message", (data) => {
        const text = data.toString();
        // the generator's reset and end markers are not events
        if (text.includes('"reset"') || text.includes('"end"')) return;
        received++;
        const t = /"t":(\d+)/.exec(text);
        if (t) latency.add(Date.now() - Number(t[1]));
      });
      sockets.push(ws);
    }, i * 2);
  }
  process.on("disconnect", () => process.exit(0));
  process.on("SIGTERM", () => {
    for (const s of sockets) s.terminate();
    process.exit(0);
  });
  process.on("message", (m: { id: number; cmd: string }) => {
    if (m.cmd === "reset") {
      latency.clear();
      received = 0;
    }
    process.send!({ id: m.id, connected, received, latency: latency.sparse() });
  });
}
