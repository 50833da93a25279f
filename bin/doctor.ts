// `sqi-dc doctor`: checks a Pi for what changes what happens at its pins, and says how to fix
// each problem: the GPIO library, how systemd stops Node-RED, the deployed flows, the system
// clock, Wi-Fi power saving, the power supply, and (with --master) the master's clock from a
// short probe. It reads the system through paths under --root and commands found on PATH, so a
// test points it at a fixture tree (a Pi 4 on Bullseye, a Pi 5 on Bookworm, a laptop). The
// judgement is lib/doctor.ts; this file only reads. Exit 0: all well; 1: a problem; 2: usage.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BusClient } from "../lib/bus/ws-client";
import { realClock } from "../lib/clock";
import { diagnose, formatChecks, type Check, type Readings } from "../lib/doctor";
import { readRegularFile } from "../lib/files";
import { parseCommand } from "./args";

export const DOCTOR_USAGE = `sqi-dc doctor [--root DIR] [--user-dir DIR] [--master URL] [--token TOKEN] [--probe-s N] [--format text|json]
  Checks this Pi for what changes what happens at its pins, and says how to fix each problem:
  the GPIO library (RPi.GPIO or rpi-lgpio) and lgpio, how systemd stops nodered.service (the
  drop-in), the deployed flows (every rpi-gpio out initialised low, no pin claimed twice, every
  pulse-shaper's limits valid), the system clock, Wi-Fi power saving, under-voltage and throttling.
  --root DIR      read the system's files under DIR (default /)
  --user-dir DIR  the Node-RED user dir with flows.json (default ~/.node-red)
  --master URL    also probe the master (ws:// or wss://) for N seconds: reachable, and the clock
                  offset and round trip this Pi would see
  --token TOKEN   the bus token, for --master
  --probe-s N     how long the probe lasts, 1-60 s (default 5)
  exit 0: all well; 1: a problem (each with its fix); 2: a usage problem`;

/** Files read here are small; anything larger is not what it claims to be. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_FLOWS_BYTES = 64 * 1024 * 1024;

function read(file: string, max = MAX_FILE_BYTES): string | undefined {
  const r = readRegularFile(file, max);
  return r.ok ? r.text : undefined;
}

/** A command's output, or undefined when it is not there or fails (a laptop has no vcgencmd). */
function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 * 1024 });
  } catch {
    return undefined;
  }
}

/** Everything diagnose() needs, read under `root` and from the commands on PATH. */
export function gather(root: string, userDir: string): Readings {
  const at = (p: string) => path.join(root, p);
  const r: Readings = {};
  const set = <K extends keyof Readings>(k: K, v: Readings[K] | undefined) => void (v !== undefined && (r[k] = v));
  set("model", read(at("proc/device-tree/model")));
  set("osRelease", read(at("etc/os-release")) ?? read(at("usr/lib/os-release")));
  set("dpkgStatus", read(at("var/lib/dpkg/status"), 64 * 1024 * 1024));
  // systemd: /etc overrides /lib; drop-ins in /etc and /run, applied in file-name order.
  for (const dir of ["etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"]) {
    const text = read(at(`${dir}/nodered.service`));
    if (text !== undefined) {
      r.unit = { path: `/${dir}/nodered.service`, text };
      break;
    }
  }
  if (r.unit) {
    const dropIns: Array<{ path: string; text: string }> = [];
    for (const dir of ["etc/systemd/system/nodered.service.d", "run/systemd/system/nodered.service.d"]) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(at(dir)).filter((n) => n.endsWith(".conf"));
      } catch {
        continue;
      }
      for (const n of names) {
        const text = read(at(`${dir}/${n}`));
        if (text !== undefined) dropIns.push({ path: `/${dir}/${n}`, text });
      }
    }
    r.dropIns = dropIns.sort((a, b) => path.basename(a.path).localeCompare(path.basename(b.path)));
  }
  const flowsPath = path.join(userDir, "flows.json");
  const flows = read(flowsPath, MAX_FLOWS_BYTES);
  if (flows !== undefined) r.flows = { path: flowsPath, text: flows };
  const ntp = run("timedatectl", ["show", "-p", "NTPSynchronized", "--value"]);
  if (ntp !== undefined) r.timedatectl = ntp;
  else set("chrony", run("chronyc", ["tracking"]));
  set("powerSave", run("iw", ["dev", "wlan0", "get", "power_save"]));
  set("throttled", run("vcgencmd", ["get_throttled"]));
  return r;
}

/** Connects to the master as a listener named "doctor" for `seconds`: reachable, and the clock estimate it would use. */
export async function probeMaster(url: string, token: string | undefined, seconds: number): Promise<Check> {
  const what = `master ${url}`;
  let last = "";
  let connected = false;
  const client = new BusClient({
    clock: realClock,
    name: `doctor-${os.hostname()}`.slice(0, 64),
    url,
    ...(token ? { token } : {}),
    maxPayload: 1 << 20,
    onEvents: () => undefined,
    onState: (state, detail) => {
      if (state === "connected") connected = true;
      if (detail) last = detail;
    },
  });
  client.start();
  try {
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const e = client.sync.estimate();
    if (!connected)
      return {
        what,
        verdict: "problem",
        detail: `not reachable in ${seconds} s${last ? `: ${last}` : ""}`,
        fix: "check the address and port (the master's sqi-bus config), that the master's flow is deployed, and the token",
      };
    if (!e)
      return {
        what,
        verdict: "problem",
        detail: `connected, but no clock estimate in ${seconds} s: the master did not answer pings`,
        fix: "update the master to this version",
      };
    const f = (x: number) => x.toFixed(2);
    const slow = e.rttMs > 20;
    return {
      what,
      verdict: slow ? "problem" : "ok",
      detail: `reachable; clock offset ${e.offsetMs >= 0 ? "+" : ""}${f(e.offsetMs)} ± ${f(e.uncertaintyMs)} ms, quickest round trip ${f(e.rttMs)} ms (${e.samples} samples)`,
      ...(slow ? { fix: "a slow link: on Wi-Fi turn power saving off, and give dc-container a 300-400 ms lead" } : {}),
    };
  } finally {
    client.stop();
  }
}

export async function doctor(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const parsed = parseCommand(args, {
    root: { type: "string", default: "/" },
    "user-dir": { type: "string" },
    master: { type: "string" },
    token: { type: "string" },
    "probe-s": { type: "string", default: "5" },
    format: { type: "string", default: "text" },
  });
  const usage = (problem: string): number => {
    err(`sqi-dc doctor: ${problem}\nTry 'sqi-dc doctor --help'.\n`);
    return 2;
  };
  if (typeof parsed === "string") return usage(parsed);
  const { values, positionals } = parsed;
  if (positionals.length) return usage(`takes no files, got ${positionals[0]}`);
  if (values.format !== "text" && values.format !== "json") return usage(`--format must be text or json, got ${values.format}`);
  const probeS = Number(values["probe-s"]);
  if (!/^\d+$/.test(values["probe-s"]) || probeS < 1 || probeS > 60) return usage(`--probe-s needs a whole number of seconds, 1-60, got ${values["probe-s"]}`);
  if (values.master !== undefined && !/^wss?:\/\/[^\s]+$/.test(values.master)) return usage(`--master needs a ws:// or wss:// URL, got ${values.master}`);
  const root = path.resolve(values.root);
  const userDir = path.resolve(values["user-dir"] ?? path.join(os.homedir(), ".node-red"));
  const checks = diagnose(gather(root, userDir));
  if (values.master) checks.push(await probeMaster(values.master, values.token, probeS));
  if (values.format === "json") out(`${JSON.stringify({ ok: !checks.some((c) => c.verdict === "problem"), checks })}\n`);
  else out(formatChecks(checks));
  return checks.some((c) => c.verdict === "problem") ? 1 : 0;
}
