// Decides whether rpi-gpio out can reach a real RPi.GPIO, and if not, puts the simulated
// one on PYTHONPATH with SQI_PIN_LOG naming its pin log. Used by the demo launcher and by the
// tests, so both run the real rpi-gpio out code path. Which RPi.GPIO is simulated follows
// SQI_GPIO_LIB: "RPi.GPIO" (the default: sim/RPi/GPIO.py, as on a Pi 4 with Bullseye) or
// "rpi-lgpio" (sim/rpi-lgpio/RPi/GPIO.py on the simulated lgpio, as on a Pi 5 or any Pi with
// Bookworm and later: one process per pin, pins freed when a process exits, lgpio's PWM).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";
import { parsePinLog as readPinLog, type PinRecord } from "../lib/pulse/audit";

export const simDir = path.join(packageRoot, "sim");

export interface GpioEnv {
  env: NodeJS.ProcessEnv;
  /** true: no real RPi.GPIO here, the simulated GPIO writes pin changes to pinLog. */
  simulated: boolean;
  pinLog: string;
  /** Which library RPi.GPIO is, or is simulated as (SQI_GPIO_LIB). */
  lib: GpioLib;
}

/** true when python3 can import a real RPi.GPIO (it raises off a Pi, not only when missing). */
export function realGpioAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  const r = spawnSync("python3", ["-c", "import RPi.GPIO as G; import sys; sys.exit(1 if getattr(G, 'SIMULATED', False) else 0)"], {
    env,
    stdio: "ignore",
    timeout: 10_000,
  });
  return r.status === 0;
}

/** The GPIO libraries the simulation can stand in for (SQI_GPIO_LIB). */
export const GPIO_LIBS = ["RPi.GPIO", "rpi-lgpio"] as const;
export type GpioLib = (typeof GPIO_LIBS)[number];

/** SQI_GPIO_LIB, checked: an unknown name is an error, not a silent default. */
export function gpioLib(base: NodeJS.ProcessEnv = process.env): GpioLib {
  const v = base.SQI_GPIO_LIB ?? "RPi.GPIO";
  if (!(GPIO_LIBS as readonly string[]).includes(v)) throw new Error(`SQI_GPIO_LIB must be one of ${GPIO_LIBS.join(", ")}, got ${JSON.stringify(v)}`);
  return v as GpioLib;
}

export function gpioEnv(pinLog: string, base: NodeJS.ProcessEnv = process.env): GpioEnv {
  const lib = gpioLib(base);
  if (realGpioAvailable(base)) return { env: { ...base }, simulated: false, pinLog, lib };
  const dirs = lib === "rpi-lgpio" ? [path.join(simDir, "rpi-lgpio"), simDir] : [simDir];
  const pythonPath = [...dirs, ...(base.PYTHONPATH ? [base.PYTHONPATH] : [])].join(path.delimiter);
  return { env: { ...base, PYTHONPATH: pythonPath, SQI_PIN_LOG: pinLog }, simulated: true, pinLog, lib };
}

export type { PinRecord } from "../lib/pulse/audit";

/** Reads a pin log's records; a torn last line (a writer mid-append) is ignored. */
export function parsePinLog(text: string): PinRecord[] {
  return readPinLog(text).records;
}

/** When `pin` went high, from a pin log file (none if the file is not there yet). */
export function risesIn(file: string, pin: number): number[] {
  return parsePinLog(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "")
    .filter((r) => r.pin === pin && r.value === 1 && r.event === undefined)
    .map((r) => r.t);
}
