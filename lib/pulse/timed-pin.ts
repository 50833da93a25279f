// One pin driven with whole, timed pulses: the pulse-out node's link to its helper process
// (helper/sqi_pulse_out.py, on lgpio). Node-RED says "high at T for W"; the helper times both
// edges in its own thread, so a stalled event loop can delay or drop a pulse but not stretch it.
// The helper enforces the maximum on-time, the minimum off-time, the edge rate, the duty and
// the late limit again on its own side, and goes low and releases the pin on EOF, SIGINT,
// SIGTERM, SIGHUP, a "Q" line, and when its parent is gone.
//
// Times cross the pipe on CLOCK_MONOTONIC, which Node's process.hrtime and Python's
// time.monotonic_ns both read on Linux. Everything the helper says back is counted here, in
// `counters`; nothing it drops goes uncounted.

import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { realClock, type TimerHandle } from "../clock";
import { packageRoot } from "../paths";
import { checkNumber, type NumberRule } from "../numbers";

export const HELPER_PATH = path.join(packageRoot, "helper", "sqi_pulse_out.py");
/** How far inside the maximum on-time the helper cuts every pulse (its own wake-up margin; the helper's HELPER_GUARD_US). */
export const HELPER_GUARD_MS = 0.25;
/** Bytes waiting for the helper to read, at most: past this (a helper that reads nothing) pulses are counted as unsent. */
export const MAX_UNREAD_BYTES = 16 * 1024;
/** A line from the helper longer than this is not the helper's. */
const MAX_REPLY_BYTES = 512;
/** How long close() waits for the helper to go low and exit before SIGTERM, then SIGKILL. */
export const CLOSE_WAIT_MS = 1000;

export interface TimedPinOptions {
  /** BCM GPIO 2-27. */
  pin: number;
  maxOnMs: number;
  minOffMs: number;
  /** Edges per second at most. */
  maxEdgeRate: number;
  /** A pulse that would start later than this after its due time is dropped. */
  lateMs: number;
  /** 0..1: the pin is on for at most this share of any dutyWindowMs (1: no duty limit). */
  maxDuty: number;
  dutyWindowMs: number;
  /** Ask for real-time priority for the timing thread (granted to root or with CAP_SYS_NICE / an rtprio limit). */
  realtime: boolean;
  python?: string;
  env?: NodeJS.ProcessEnv;
}

export interface TimedPinCounters {
  /** Pulses handed to the helper. */
  sent: number;
  /** Pulses the helper fired. */
  fired: number;
  /** Fired pulses cut at the helper's own maximum on-time or duty budget. */
  clamped: number;
  /** Pulses ended early or never started because of a "low now" (stop, close). */
  cut: number;
  /** Dropped by the helper: would have started more than the late limit after their due time. */
  late: number;
  /** Dropped by the helper: narrower than the edge rate allows. */
  narrow: number;
  /** Dropped by the helper: its queue was full. */
  full: number;
  /** Dropped by the helper: the duty budget left in the window was less than the narrowest pulse. */
  duty: number;
  /** Not handed on: the helper was not running, or was not reading. */
  unsent: number;
  /** Lines the helper refused (a bug on this side: counted and logged). */
  refused: number;
  /**
   * Limits passed at the pin, as the helper wrote them: a pulse on longer than the maximum on-time,
   * or over the maximum duty in its window, because its fall came late: the kernel did not run
   * the helper's thread in time (a busy machine, no real-time priority).
   */
  over: number;
}

export type TimedPinState = { state: "starting" } | { state: "ready"; chip: number; simulated: boolean; realtime: boolean } | { state: "down"; reason: string };

export interface FiredPulse {
  id: number;
  /** CLOCK_MONOTONIC ms of the rising edge. */
  riseMono: number;
  widthMs: number;
  lateMs: number;
  clamped: boolean;
  cut: boolean;
}

/** A pulse the helper wrote past a limit (longer than the maximum on-time, or over the duty in its window), and why. */
export interface OverPulse {
  id: number;
  /** Which limit: the maximum on-time, or the maximum duty. */
  limit: "on" | "duty";
  widthMs: number;
  /** The on-time of the duty window that ends at this pulse's fall. */
  windowOnMs: number;
  /** How long after it was due the helper wrote the fall: its thread was not run in time. */
  fallLateMs: number;
}

export interface TimedPinHooks {
  state: (s: TimedPinState) => void;
  fired?: (p: FiredPulse) => void;
  over?: (p: OverPulse) => void;
  /** Something to say in the log (a refused line). */
  warn?: (text: string) => void;
}

/** CLOCK_MONOTONIC in microseconds (process.hrtime reads it on Linux, as Python's time.monotonic_ns does). */
export function monoUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The helper's arguments for these options. */
export function helperArgs(o: TimedPinOptions): string[] {
  const us = (ms: number) => String(Math.round(ms * 1000));
  return [
    HELPER_PATH,
    "--pin",
    String(o.pin),
    "--max-on-us",
    us(o.maxOnMs),
    "--min-off-us",
    us(o.minOffMs),
    "--min-edge-us",
    us(1000 / o.maxEdgeRate),
    "--late-us",
    us(o.lateMs),
    "--duty-on-us",
    o.maxDuty >= 1 ? "0" : us(o.maxDuty * o.dutyWindowMs),
    "--duty-window-us",
    us(o.dutyWindowMs),
    "--rt",
    o.realtime ? "1" : "0",
  ];
}

export class TimedPin {
  readonly counters: TimedPinCounters = { sent: 0, fired: 0, clamped: 0, cut: 0, late: 0, narrow: 0, full: 0, duty: 0, unsent: 0, refused: 0, over: 0 };
  private child: ChildProcess | undefined;
  private nextId = 0;
  private current: TimedPinState = { state: "starting" };
  private stderr = "";
  private closing: Promise<void> | undefined;

  constructor(
    readonly options: TimedPinOptions,
    private readonly hooks: TimedPinHooks,
  ) {}

  get state(): TimedPinState {
    return this.current;
  }

  start(): void {
    const child = spawn(this.options.python ?? "python3", helperArgs(this.options), {
      stdio: ["pipe", "pipe", "pipe"],
      env: this.options.env ?? process.env,
    });
    this.child = child;
    let pending = "";
    child.stdout!.setEncoding("latin1");
    child.stdout!.on("data", (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        this.reply(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_REPLY_BYTES) pending = "";
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-2000);
    });
    // A helper gone before it read everything: the writes fail, and exit says why.
    child.stdin!.on("error", () => undefined);
    child.on("error", (e) => this.down(`the helper did not start: ${e.message}`));
    child.on("exit", (code, signal) => {
      // Asked to close: its exit is the end, not news.
      if (this.closing) this.current = { state: "down", reason: "closed" };
      else if (this.current.state !== "down") {
        const said = this.stderr.trim().split("\n").pop();
        this.down(`the helper exited (${signal ?? `code ${code}`})${said ? `: ${said}` : ""}`);
      }
    });
  }

  /**
   * A pulse of `widthMs`, due `agoMs` ago (0: now; the time it waited before this call). Returns
   * false when it could not be handed on (counted as unsent).
   */
  pulse(widthMs: number, agoMs = 0): boolean {
    const stdin = this.child?.stdin;
    if (this.current.state === "down" || this.closing || !stdin || stdin.writableLength > MAX_UNREAD_BYTES) {
      this.counters.unsent++;
      return false;
    }
    const due = monoUs() - Math.max(0, Math.round(agoMs * 1000));
    stdin.write(`P ${++this.nextId} ${due} ${Math.max(1, Math.round(widthMs * 1000))}\n`);
    this.counters.sent++;
    return true;
  }

  /** Low now: the pulse on now ends, the ones waiting are dropped. */
  low(): void {
    if (this.current.state !== "down" && !this.closing) this.child?.stdin?.write("L\n");
  }

  /** Low, released and exited: "Q", then SIGTERM, then SIGKILL, each after CLOSE_WAIT_MS. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const child = this.child;
    this.closing = new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      // Real time, whatever clock the flow runs on: a process is waited for.
      const timers: TimerHandle[] = [];
      child.once("exit", () => {
        timers.forEach((t) => realClock.clearTimer(t));
        resolve();
      });
      child.stdin?.end("Q\n");
      timers.push(realClock.setTimer(() => child.kill("SIGTERM"), CLOSE_WAIT_MS));
      timers.push(realClock.setTimer(() => child.kill("SIGKILL"), 2 * CLOSE_WAIT_MS));
    });
    return this.closing;
  }

  private down(reason: string): void {
    this.current = { state: "down", reason };
    this.hooks.state(this.current);
  }

  private reply(line: string): void {
    const f = line.split(" ");
    const c = this.counters;
    switch (f[0]) {
      case "ready":
        this.current = { state: "ready", chip: Number(f[2]), simulated: f[3] === "simulated", realtime: f[4] === "rt" };
        this.hooks.state(this.current);
        return;
      case "fired": {
        const p: FiredPulse = {
          id: Number(f[1]),
          riseMono: Number(f[2]) / 1000,
          widthMs: Number(f[3]) / 1000,
          lateMs: Number(f[4]) / 1000,
          clamped: f[5] === "1",
          cut: f[6] === "cut",
        };
        c.fired++;
        if (p.clamped) c.clamped++;
        if (p.cut) c.cut++;
        this.hooks.fired?.(p);
        return;
      }
      case "over": {
        // The helper's own total rides along, so a report line lost on a full pipe loses no count.
        c.over = Math.max(c.over + 1, Number(f[4]) || 0);
        this.hooks.over?.({
          id: Number(f[1]),
          limit: f[5] === "duty" ? "duty" : "on",
          widthMs: Number(f[2]) / 1000,
          fallLateMs: Number(f[3]) / 1000,
          windowOnMs: Number(f[6]) / 1000 || 0,
        });
        return;
      }
      case "dropped":
        if (f[2] === "late") c.late++;
        else if (f[2] === "narrow") c.narrow++;
        else if (f[2] === "full") c.full++;
        else if (f[2] === "duty") c.duty++;
        else if (f[2] === "cut") c.cut++;
        return;
      case "refused":
        c.refused++;
        this.hooks.warn?.(`the helper refused line ${f[1]}: ${f.slice(2).join(" ")}`);
        return;
      case "fatal":
        this.down(f.slice(1).join(" "));
        return;
      default:
        return; // "low", "bye": nothing to count
    }
  }
}

export const PULSE_OUT_RULES = {
  pin: { label: "GPIO (BCM)", min: 2, max: 27, integer: true, default: 18 },
  maxOn: { label: "Maximum on-time", min: 1, max: 60_000, default: 100, unit: "ms" },
  minOff: { label: "Minimum off-time", min: 0, max: 60_000, default: 1, unit: "ms" },
  maxRate: { label: "Maximum edge rate", min: 0, max: 10_000, exclusiveMin: true, default: 500, unit: "edges/s" },
  late: { label: "Late limit", min: 0, max: 10_000, default: 50, unit: "ms" },
  maxDuty: { label: "Maximum duty", min: 0, max: 100, exclusiveMin: true, default: 50, unit: "%" },
  dutyWindow: { label: "Duty window", min: 10, max: 3_600_000, default: 1000, unit: "ms" },
} satisfies Record<string, NumberRule>;

/** The pulse-out panel's settings, each problem in the panel's own words. */
export function parsePulseOutSettings(def: Record<string, unknown>): { ok: true; options: TimedPinOptions } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const num = (k: keyof typeof PULSE_OUT_RULES): number => {
    const r = checkNumber(def[k], PULSE_OUT_RULES[k]);
    if (r.ok) return r.value;
    errors.push(r.error);
    return PULSE_OUT_RULES[k].default;
  };
  const options: TimedPinOptions = {
    pin: num("pin"),
    maxOnMs: num("maxOn"),
    minOffMs: num("minOff"),
    maxEdgeRate: num("maxRate"),
    lateMs: num("late"),
    maxDuty: num("maxDuty") / 100,
    dutyWindowMs: num("dutyWindow"),
    realtime: def.realtime !== false,
  };
  if (1000 / options.maxEdgeRate >= options.maxOnMs)
    errors.push(`Maximum edge rate ${options.maxEdgeRate}/s leaves no pulse under the maximum on-time of ${options.maxOnMs} ms`);
  return errors.length ? { ok: false, errors } : { ok: true, options };
}

export type PulseInput = { kind: "pulse"; widthMs: number; agoMs: number } | { kind: "low" } | { kind: "error"; error: string };

/**
 * What a message asks of pulse-out: `payload: {on_ms}` a pulse (due at msg.sqi.edge.planned when
 * given, on the flow's clock `now`), `payload: 0 | false` or `msg.stop` low now. Anything else is
 * an error that says what to send instead.
 */
export function readPulseInput(msg: { payload?: unknown; stop?: unknown; sqi?: unknown }, now: number): PulseInput {
  if (msg.stop === true || msg.payload === 0 || msg.payload === false) return { kind: "low" };
  const p = msg.payload;
  if (typeof p === "object" && p !== null && !Array.isArray(p) && "on_ms" in p) {
    const on = (p as { on_ms: unknown }).on_ms;
    if (typeof on !== "number" || !Number.isFinite(on) || on <= 0 || on > PULSE_OUT_RULES.maxOn.max)
      return {
        kind: "error",
        error: `msg.payload.on_ms must be a number of ms above 0 and up to ${PULSE_OUT_RULES.maxOn.max}, got ${JSON.stringify(on)?.slice(0, 40)}`,
      };
    const edge = (msg.sqi as { edge?: { planned?: unknown } } | undefined)?.edge;
    const planned = typeof edge === "object" && edge !== null ? edge.planned : undefined;
    const ago = typeof planned === "number" && Number.isFinite(planned) ? Math.min(Math.max(0, now - planned), 60_000) : 0;
    return { kind: "pulse", widthMs: on, agoMs: ago };
  }
  const shown =
    typeof p === "string"
      ? JSON.stringify(p.slice(0, 40))
      : typeof p === "object" && p !== null
        ? Array.isArray(p)
          ? "an array"
          : "an object without on_ms"
        : String(p);
  return {
    kind: "error",
    error: `pulse-out takes msg.payload {on_ms: N} (a whole pulse) or 0 (low now), got ${shown}${p === 1 || p === true ? ': to drive it from a pulse-shaper, set the shaper\'s Output to "timed pulses (pulse-out)"' : ""}`,
  };
}
