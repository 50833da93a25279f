// `npm run cluster -- --pis N [--jitter-ms J] [--wifi-stalls] [--clock-offset-ms R] [--clock-drift-ppm D] [--duration S] [--mqtt]`:
// one master and N Pi listeners as real Node-RED processes on 127.0.0.1, each with its
// own user dir, editor port, simulated GPIO pin log (true wall-clock time) and a
// simulated clock offset within +-R ms and, with D, a rate error within +-D ppm plus a
// temperature-like wander of +-5 ppm over 10 minutes (lib/clock.ts, DriftClock); optionally a jitter proxy between master and
// listeners, and with --wifi-stalls each Pi's link stalls as Wi-Fi does (scripts/jitter-proxy.ts,
// WIFI_STALLS: 50-300 ms about once a minute, some in bursts; each Pi counts what came late). With --mqtt the bus goes through a Mosquitto the cluster starts on the bus
// port (the jitter proxy then sits between the Pis and the broker). Everything stops
// cleanly (by pid) at the end, on Ctrl-C or SIGTERM.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { driftOffset, type Drift } from "../lib/clock";
import { packageRoot } from "../lib/paths";
import { startJitterProxy, WIFI_STALLS, type JitterProxy, type StallModel } from "./jitter-proxy";
import { startBroker, type Broker } from "./mosquitto";

/** The wander every drifting Pi's rate gets on top of its own ppm. */
export const WANDER_PPM = 5;

/** A member's clock error (its reading - true time) at true epoch ms `t`. */
export function clockErrorAt(m: Member, t: number): number {
  return driftOffset(m.drift, t - m.origin);
}

export interface ClusterOptions {
  pis: number;
  jitterMs: number;
  /** Wi-Fi stalls on each Pi's link (through the jitter proxy). */
  stalls?: StallModel;
  clockOffsetMs: number;
  /** each Pi's rate error is drawn within +-this, ppm, with a +-WANDER_PPM wander (0: clocks that keep time) */
  clockDriftPpm?: number;
  dir: string;
  basePort: number;
  busPort: number;
  token?: string;
  /** The bus through a Mosquitto started on busPort, instead of the master's WebSocket. */
  mqtt?: boolean;
  /** Flow files to use instead of the role flows. */
  masterFlow?: string;
  piFlow?: string;
  random?: () => number;
}

export interface Member {
  name: string;
  role: "master" | "pi";
  port: number;
  offsetMs: number;
  /** how its clock runs against true time (the pin log's), from `origin` (true epoch ms) */
  drift: Drift;
  origin: number;
  pinLog: string;
  log: string;
  child: ChildProcess;
  /** Node-RED's own pid, once up */
  redPid?: number;
}

export interface Cluster {
  master: Member;
  pis: Member[];
  proxy?: JitterProxy;
  broker?: Broker;
  busUrl: string;
  /** Stops the master (with SIGTERM, or as kill -9 would) and starts it again with the same settings (the Pis stay up). */
  restartMaster(how?: { kill9?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

function launch(name: string, role: "master" | "pi", port: number, dir: string, env: Record<string, string>): Member {
  const userDir = path.join(dir, name);
  fs.mkdirSync(userDir, { recursive: true });
  const log = path.join(userDir, "node-red.log");
  const out = fs.openSync(log, "w");
  const pinLog = path.join(userDir, "pins.jsonl");
  const child = spawn(process.execPath, [path.join(packageRoot, "dist", "scripts", "start.js"), "--role", role], {
    env: { ...process.env, PORT: String(port), SQI_USER_DIR: userDir, SQI_PIN_LOG: pinLog, ...env },
    stdio: ["ignore", out, out],
  });
  fs.closeSync(out);
  const offsetMs = Number(env.SQI_CLOCK_OFFSET_MS ?? 0);
  const drift: Drift = { ...(env.SQI_CLOCK_DRIFT ? (JSON.parse(env.SQI_CLOCK_DRIFT) as Drift) : {}), offsetMs };
  return { name, role, port, offsetMs, drift, origin: Number(env.SQI_CLOCK_ORIGIN ?? 0), pinLog, log, child };
}

async function up(m: Member, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pidFile = path.join(path.dirname(m.log), "node-red.pid");
  while (Date.now() < deadline) {
    if (m.child.exitCode !== null) throw new Error(`${m.name} exited (${m.child.exitCode}); see ${m.log}`);
    if (fs.existsSync(m.log) && fs.readFileSync(m.log, "utf8").includes("editor: http://localhost:")) {
      m.redPid = Number(fs.readFileSync(pidFile, "utf8"));
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${m.name} did not start within ${timeoutMs / 1000} s; see ${m.log}`);
}

async function stopMember(m: Member, kill9 = false): Promise<void> {
  if (kill9) {
    // Node-RED first, with no chance to say goodbye, then its launcher.
    const gone = new Promise((r) => m.child.once("exit", r));
    for (const pid of [m.redPid, m.child.pid]) {
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    return;
  }
  if (m.child.exitCode === null && m.child.signalCode === null) {
    const gone = new Promise((r) => m.child.once("exit", r));
    m.child.kill("SIGTERM");
    await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
  }
  for (const pid of [m.child.pid, m.redPid]) {
    try {
      if (pid) process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const random = o.random ?? Math.random;
  fs.mkdirSync(o.dir, { recursive: true });
  const common: Record<string, string> = { ...(o.token ? { SQI_TOKEN: o.token } : {}), SQI_TRANSPORT: o.mqtt ? "mqtt" : "ws" };
  const broker = o.mqtt ? await startBroker({ dir: path.join(o.dir, "broker"), port: o.busPort }) : undefined;
  const masterEnv = {
    ...common,
    SQI_BUS_PORT: String(o.busPort),
    SQI_BROKER_URL: `mqtt://127.0.0.1:${o.busPort}`,
    ...(o.masterFlow ? { SQI_FLOW: o.masterFlow } : {}),
  };
  let master = launch("master", "master", o.basePort, o.dir, masterEnv);
  const members: Member[] = [master];
  let proxy: JitterProxy | undefined;
  const stop = async (): Promise<void> => {
    for (const m of [...members].reverse()) await stopMember(m);
    await proxy?.close();
    await broker?.stop();
  };
  try {
    await up(master);
    if (o.jitterMs > 0 || o.stalls)
      proxy = await startJitterProxy({ port: 0, targetPort: o.busPort, jitterMs: o.jitterMs, random, ...(o.stalls ? { stalls: o.stalls } : {}) });
    const busPort = proxy ? proxy.port : o.busPort;
    const busUrl = o.mqtt ? `mqtt://127.0.0.1:${busPort}` : `ws://127.0.0.1:${busPort}/`;
    const pis: Member[] = [];
    for (let i = 1; i <= o.pis; i++) {
      const offset = Math.round((random() * 2 - 1) * o.clockOffsetMs * 1000) / 1000;
      const drift: Drift | undefined = o.clockDriftPpm
        ? {
            ppm: Math.round((random() * 2 - 1) * o.clockDriftPpm * 100) / 100,
            wanderPpm: WANDER_PPM,
            wanderPhase: Math.round(random() * 2 * Math.PI * 100) / 100,
          }
        : undefined;
      const env: Record<string, string> = {
        ...common,
        SQI_MASTER_URL: busUrl,
        SQI_BROKER_URL: busUrl,
        SQI_NODE_NAME: `pi-${i}`,
        SQI_CLOCK_OFFSET_MS: String(offset),
        ...(drift ? { SQI_CLOCK_DRIFT: JSON.stringify(drift), SQI_CLOCK_ORIGIN: String(Date.now()) } : {}),
        ...(o.piFlow ? { SQI_FLOW: o.piFlow } : {}),
      };
      const m = launch(`pi-${i}`, "pi", o.basePort + i, o.dir, env);
      members.push(m);
      pis.push(m);
    }
    await Promise.all(pis.map((m) => up(m)));
    const cluster: Cluster = {
      master,
      pis,
      ...(proxy ? { proxy } : {}),
      ...(broker ? { broker } : {}),
      busUrl,
      stop,
      restartMaster: async (how) => {
        await stopMember(master, how?.kill9);
        members.splice(members.indexOf(master), 1);
        master = launch("master", "master", o.basePort, o.dir, masterEnv);
        members.unshift(master);
        cluster.master = master;
        await up(master);
      },
    };
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`[cluster] ${name} needs a number >= 0, got ${process.argv[i + 1]}\n`);
    process.exit(2);
  }
  return v;
}

async function main(): Promise<void> {
  const opts: ClusterOptions = {
    pis: Math.max(1, Math.floor(arg("--pis", 3))),
    jitterMs: arg("--jitter-ms", 0),
    ...(process.argv.includes("--wifi-stalls") ? { stalls: WIFI_STALLS } : {}),
    clockOffsetMs: arg("--clock-offset-ms", 0),
    clockDriftPpm: arg("--clock-drift-ppm", 0),
    dir: path.resolve(process.env.SQI_CLUSTER_DIR ?? path.join(packageRoot, ".cluster")),
    basePort: arg("--base-port", 1880),
    busPort: arg("--bus-port", 8765),
    ...(process.env.SQI_TOKEN ? { token: process.env.SQI_TOKEN } : {}),
    mqtt: process.argv.includes("--mqtt"),
  };
  const duration = arg("--duration", 0);
  fs.rmSync(opts.dir, { recursive: true, force: true });
  process.stdout.write(`[cluster] starting a master and ${opts.pis} Pis in ${opts.dir} ...\n`);
  const c = await startCluster(opts);
  let stopping = false;
  const finish = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`[cluster] ${why}: stopping the Pis, then the master\n`);
    await c.stop();
    process.stdout.write("[cluster] stopped\n");
    process.exit(0);
  };
  process.on("SIGINT", () => void finish("SIGINT"));
  process.on("SIGTERM", () => void finish("SIGTERM"));
  process.stdout.write(
    `[cluster] bus ${c.busUrl}${c.proxy ? ` (jitter proxy, 0-${opts.jitterMs} ms${opts.stalls ? `, Wi-Fi stalls of ${opts.stalls.minMs}-${opts.stalls.maxMs} ms about every ${opts.stalls.everyS} s on each Pi's link` : ""}, in front of :${opts.busPort})` : ""}${c.broker ? ` (Mosquitto pid ${c.broker.pid}, started for this cluster)` : ""}\n`,
  );
  for (const m of [c.master, ...c.pis]) {
    process.stdout.write(
      `[cluster] ${m.name.padEnd(7)} editor http://localhost:${m.port}  clock offset ${String(m.offsetMs).padStart(9)} ms${m.drift.ppm !== undefined ? `, ${m.drift.ppm >= 0 ? "+" : ""}${m.drift.ppm} ppm +-${m.drift.wanderPpm} ppm wander` : ""}  pins ${m.pinLog}  log ${m.log}\n`,
    );
  }
  if (duration > 0) setTimeout(() => void finish(`${duration} s are up`), duration * 1000);
  else process.stdout.write("[cluster] running; Ctrl-C stops everything\n");
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`[cluster] ${(e as Error).message}\n`);
    process.exit(1);
  });
}
