// npm start as a user runs it, for the system and browser tests: the launcher in its own
// user dir on a free port, with the pin log where the test can read it and a clean-up that
// stops everything by pid.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../../lib/paths";
import type { PinRecord } from "../../scripts/gpio-sim";
import { exited, freePort, killAll, waitFor } from "./processes";

/** The widths (ms) of the pulses on one pin, in order. */
export function widths(recs: PinRecord[], pin: number): number[] {
  const out: number[] = [];
  let rise: number | undefined;
  for (const r of recs) {
    if (r.pin !== pin || r.event !== undefined) continue;
    if (r.value === 1) rise = r.t;
    else if (r.value === 0 && rise !== undefined) {
      out.push(r.t - rise);
      rise = undefined;
    }
  }
  return out;
}

/** The demo launcher as a user starts it, in its own user dir and on a free port. */
export interface Demo {
  child: ChildProcess;
  port: number;
  userDir: string;
  pinLog: string;
  output: () => string;
  /** Node-RED's pid, read from the launcher's pid file once the editor is up. */
  redPid: number;
  /** Stops whatever is still running, by pid, and removes the user dir; for finally blocks. */
  cleanUp: () => Promise<void>;
}

export async function startDemo(extraEnv: Record<string, string> = {}, prepare?: (userDir: string) => Record<string, string>): Promise<Demo> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-demo-"));
  const pinLog = path.join(userDir, "pins.jsonl");
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), SQI_USER_DIR: userDir, SQI_PIN_LOG: pinLog, ...extraEnv, ...(prepare ? prepare(userDir) : {}) };
  const child = spawn(process.execPath, [path.join(packageRoot, "dist", "scripts", "start.js")], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const demo: Demo = {
    child,
    port,
    userDir,
    pinLog,
    output: () => out,
    redPid: 0,
    cleanUp: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited(child, 20_000).catch(() => undefined);
      }
      killAll(child.pid, demo.redPid || undefined);
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor("the editor URL", () => out.includes(`editor: http://localhost:${port}`), 60_000);
    demo.redPid = Number(fs.readFileSync(path.join(userDir, "node-red.pid"), "utf8"));
  } catch (e) {
    await demo.cleanUp();
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  return demo;
}
