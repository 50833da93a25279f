// `npm start` runs the demo; `npm run master` and `npm run pi` run the role flows.
// Node-RED 4.1 (the dev dependency) with its own user dir, this package and
// node-red-node-pi-gpio loaded, the simulated GPIO when there is no Raspberry Pi, and the
// role's flow deployed.
//
// Stopping is graceful on purpose: Ctrl-C or SIGTERM first stops every dc-container
// through the admin API, waits for the pulses in flight to end low, then stops Node-RED.
// Node-RED runs in its own process group so that a terminal's Ctrl-C cannot reach its
// GPIO helper processes and kill them with a pin high.
//
// Environment: PORT (default 1880), HOST (default 127.0.0.1), SQI_PIN_LOG (pin log path),
// SQI_USER_DIR, SQI_FLOW (flow file to deploy), SQI_EXTRA_NODES_DIR (more nodes, for the
// benchmarks); for the roles SQI_BUS_PORT (master, 8765),
// SQI_MASTER_URL (pi, ws://127.0.0.1:8765/), SQI_TOKEN, SQI_NODE_NAME; SQI_TRANSPORT (ws
// or mqtt) with SQI_BROKER_URL (mqtt://127.0.0.1:1883), SQI_BROKER_USER, SQI_BROKER_PASS;
// and, for simulating a Pi with a wrong clock, SQI_CLOCK_OFFSET_MS, SQI_CLOCK_DRIFT (a Drift of
// lib/clock.ts as JSON: ppm, wanderPpm, ...) and SQI_CLOCK_ORIGIN (true epoch ms the drift counts from).

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";
import { gpioEnv } from "./gpio-sim";
import { resolveNodeRed } from "./node-red-path";

const SETTLE_MS = 300;
const STOP_TIMEOUT_MS = 10_000;

function log(text: string): void {
  process.stdout.write(`[sqi ${role}] ${text}\n`);
}

type Role = "demo" | "master" | "pi";
const roleArg = process.argv.indexOf("--role");
const role = (roleArg >= 0 ? process.argv[roleArg + 1] : "demo") as Role;
if (!["demo", "master", "pi"].includes(role)) {
  process.stderr.write(`[sqi] --role must be demo, master or pi, got ${JSON.stringify(role)}\n`);
  process.exit(2);
}
if (role === "master") process.env.SQI_BUS_PORT ||= "8765";
process.env.SQI_TRANSPORT ||= "ws";
if (!["ws", "mqtt"].includes(process.env.SQI_TRANSPORT)) {
  process.stderr.write(`[sqi] SQI_TRANSPORT must be ws or mqtt, got ${JSON.stringify(process.env.SQI_TRANSPORT)}\n`);
  process.exit(2);
}
process.env.SQI_BROKER_URL ||= "mqtt://127.0.0.1:1883";
const mqtt = process.env.SQI_TRANSPORT === "mqtt";
if (role === "pi") {
  process.env.SQI_MASTER_URL ||= `ws://127.0.0.1:${process.env.SQI_BUS_PORT || 8765}/`;
  process.env.SQI_NODE_NAME ||= os.hostname();
}
const roleFlow = { demo: "demo.json", master: "master.json", pi: "pi-node.json" }[role];
const roleDir = { demo: ".node-red-demo", master: ".node-red-master", pi: `.node-red-pi-${(process.env.SQI_NODE_NAME ?? "").replace(/[^\w.-]/g, "_")}` }[role];

const port = Number(process.env.PORT ?? 1880);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`[sqi] PORT must be a port number, got ${JSON.stringify(process.env.PORT)}\n`);
  process.exit(2);
}
const host = process.env.HOST ?? "127.0.0.1";
const userDir = path.resolve(process.env.SQI_USER_DIR ?? path.join(packageRoot, roleDir));
const flowSource = path.resolve(process.env.SQI_FLOW ?? path.join(packageRoot, "flows", roleFlow));
const pinLog = path.resolve(process.env.SQI_PIN_LOG ?? path.join(userDir, "pin-log.jsonl"));
const adminUrl = `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`;

function prepareUserDir(): void {
  fs.mkdirSync(userDir, { recursive: true });
  fs.mkdirSync(path.dirname(pinLog), { recursive: true });
  fs.writeFileSync(pinLog, ""); // one run per log: the pin log starts empty
  const settings = {
    uiPort: port,
    uiHost: host,
    flowFile: "flows.json",
    // Load this package straight from the repo; node-red-node-pi-gpio is found beside node-red.
    nodesDir: [packageRoot, ...(process.env.SQI_EXTRA_NODES_DIR ? [path.resolve(process.env.SQI_EXTRA_NODES_DIR)] : [])],
    logging: { console: { level: "info", metrics: false, audit: false } },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    editorTheme: { projects: { enabled: false }, tours: false },
  };
  // A simulated Pi with a wrong clock: every node of this package reads time from sqiClock.
  const clockJs = JSON.stringify(path.join(packageRoot, "dist", "lib", "clock.js"));
  fs.writeFileSync(
    path.join(userDir, "settings.js"),
    `// Written by npm start on each run.\nconst settings = ${JSON.stringify(settings, null, 2)};\n` +
      `const offset = Number(process.env.SQI_CLOCK_OFFSET_MS || 0);\n` +
      `const drift = process.env.SQI_CLOCK_DRIFT ? JSON.parse(process.env.SQI_CLOCK_DRIFT) : undefined;\n` +
      `if (offset || drift) {\n  const { DriftClock, realClock } = require(${clockJs});\n` +
      `  settings.sqiClock = new DriftClock(realClock, { ...drift, offsetMs: offset }, Number(process.env.SQI_CLOCK_ORIGIN) || undefined);\n}\n` +
      `module.exports = settings;\n`,
  );

  // Deploy the demo flow when it is new or changed; edits made in the editor survive restarts.
  const flow = fs.readFileSync(flowSource);
  JSON.parse(flow.toString("utf8"));
  const hash = createHash("sha256").update(flow).digest("hex");
  const hashFile = path.join(userDir, ".deployed-flow.sha256");
  const target = path.join(userDir, "flows.json");
  const previous = fs.existsSync(hashFile) ? fs.readFileSync(hashFile, "utf8").trim() : "";
  if (!fs.existsSync(target) || previous !== hash) {
    if (fs.existsSync(target)) fs.copyFileSync(target, `${target}.bak`);
    fs.writeFileSync(target, flow);
    fs.writeFileSync(hashFile, `${hash}\n`);
    log(`deployed ${path.relative(packageRoot, flowSource) || flowSource}`);
  }
}

async function waitForEditor(isAlive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && isAlive()) {
    try {
      const r = await fetch(`${adminUrl}/settings`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Stops every deployed dc-container so that no new pulse starts; best effort. */
async function stopContainers(): Promise<number> {
  const r = await fetch(`${adminUrl}/flows`, { headers: { "Node-RED-API-Version": "v1" }, signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`GET /flows answered ${r.status}`);
  const nodes = (await r.json()) as Array<{ id: string; type: string }>;
  let stopped = 0;
  for (const n of nodes.filter((x) => x.type === "dc-container")) {
    const s = await fetch(`${adminUrl}/dc-container/${encodeURIComponent(n.id)}/stop`, { method: "POST", signal: AbortSignal.timeout(2000) });
    if (s.ok) stopped++;
  }
  return stopped;
}

function main(): void {
  prepareUserDir();
  const gpio = gpioEnv(pinLog);
  if (role !== "demo" && mqtt) {
    const broker = process.env.SQI_BROKER_URL!.replace(/\/\/[^@/]*@/, "//");
    log(
      `role ${role}: the bus over MQTT through ${broker}${role === "pi" ? ` as ${process.env.SQI_NODE_NAME}` : ""}${process.env.SQI_BROKER_USER ? ` as user ${process.env.SQI_BROKER_USER}` : " (anonymous)"}`,
    );
  } else if (role !== "demo") {
    log(
      `role ${role}: ${role === "master" ? `bus on port ${process.env.SQI_BUS_PORT}` : `listening to ${process.env.SQI_MASTER_URL} as ${process.env.SQI_NODE_NAME}`}${process.env.SQI_TOKEN ? " with a token" : " (no token: an open bus)"}`,
    );
  }
  if (Number(process.env.SQI_CLOCK_OFFSET_MS || 0)) log(`simulated clock offset: ${process.env.SQI_CLOCK_OFFSET_MS} ms`);
  if (process.env.SQI_CLOCK_DRIFT) log(`simulated clock drift: ${process.env.SQI_CLOCK_DRIFT}`);
  if (gpio.simulated)
    log(`simulated GPIO (no RPi.GPIO here)${gpio.lib === "rpi-lgpio" ? ", as rpi-lgpio on a Pi 5" : ""}: pin changes are logged to ${gpio.pinLog}`);
  else log("real RPi.GPIO found: the rpi-gpio out nodes drive this Pi's pins");

  const red = resolveNodeRed("node-red/red.js");
  const child = spawn(
    process.execPath,
    ["--require", path.join(__dirname, "exit-with-parent.js"), red, "--userDir", userDir, "--settings", path.join(userDir, "settings.js")],
    { env: gpio.env, stdio: ["ignore", "inherit", "inherit", "ipc"], detached: true },
  );
  // The pid file lets tests and scripts stop this Node-RED by pid if the launcher is gone.
  const pidFile = path.join(userDir, "node-red.pid");
  fs.writeFileSync(pidFile, `${child.pid}\n`);
  let exited = false;
  let stopping = false;
  let firstSignalAt = 0;
  child.on("exit", (code, signal) => {
    exited = true;
    fs.rmSync(pidFile, { force: true });
    log(`Node-RED stopped (${signal ?? `exit ${code}`})`);
    process.exit(stopping ? 0 : (code ?? 1));
  });

  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      // npm forwards the terminal's Ctrl-C too; only a second press a moment later forces.
      if (Date.now() - firstSignalAt > 1000 && !exited) {
        log("forced stop");
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
      return;
    }
    stopping = true;
    firstSignalAt = Date.now();
    log(`${signal}: stopping the containers, letting pulses in flight end low, then Node-RED`);
    try {
      await stopContainers();
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    } catch (e) {
      log(`could not stop the containers first (${(e as Error).message}); stopping Node-RED anyway`);
    }
    if (!exited) child.kill("SIGTERM");
    setTimeout(() => {
      if (!exited) {
        log("Node-RED did not stop in time: killing it");
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }, STOP_TIMEOUT_MS).unref();
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  void waitForEditor(() => !exited).then((up) => {
    if (up) {
      log(`editor: http://localhost:${port}  (${role === "demo" ? "the demo is playing" : `the ${role} flow is running`}; Ctrl-C stops it)`);
      if (gpio.simulated) log(`pin log: ${gpio.pinLog}`);
    } else if (!exited) log(`the editor did not answer at ${adminUrl} within 60 s; see Node-RED's log above`);
  });
}

main();
