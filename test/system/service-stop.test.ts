// A systemd stop of Node-RED, in every output mode, at the pin. The `nodered.service` from
// Node-RED's Pi installer has KillSignal=SIGINT and no KillMode, so `systemctl stop nodered`
// sends SIGINT to every process of the service at once: Node-RED and each GPIO helper. Each
// mode's helper then does what its own code says, before Node-RED can take the pin low:
//   - rpi-gpio out, digital, "Initialise pin state" low: nrgpio.py's bare `except:` catches the
//     KeyboardInterrupt and writes the initial level, low; unless the signal lands while the
//     helper writes a level (outside its try): then it dies with the pin where it was (seen once
//     in 80 stops on a loaded CI machine, where each simulated write is a line in the pin log);
//   - rpi-gpio out, digital, not initialised: the same `except:` writes its third argument, the
//     frequency (100), so the pin goes high until Node-RED's close takes it low;
//   - rpi-gpio out, PWM: the KeyboardInterrupt is not caught; the helper dies without
//     GPIO.cleanup and the pin keeps what the PWM had at that instant;
//   - pulse-out: its helper goes low and releases the pin on SIGINT.
// A released pin is an input: the MOSFET gate's pull-down (which the wiring requires) holds it
// low. With rpi-lgpio (SQI_GPIO_LIB, CI's Node 24 leg) the kernel frees a dead helper's pin, so
// there the PWM helper's death ends its pin low too.
// The drop-in this package ships (systemd/nodered.service.d/sqi-pulse.conf: KillMode=mixed)
// sends SIGINT to Node-RED alone: the shapers go low, rpi-gpio out and pulse-out close their
// helpers, and only what is left once Node-RED has exited is killed. Emulated here on a real
// Node-RED tree (its main process signalled first, the rest SIGKILLed after it exits), every
// mode ends low every time. Evidence: the pin log of the simulated GPIO.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { parsePinLog, type PinRecord } from "../../lib/pulse/audit";
import { startDemo } from "../helpers/demo";
import { chain, type FlowNode } from "../helpers/pins";
import { isAlive, killAll, waitFor } from "../helpers/processes";

type Mode = "low" | "unticked" | "pwm" | "pulse-out";
const MODES: Record<Mode, { pins: number[]; label: string }> = {
  low: { pins: [2, 3, 4, 5, 6], label: 'rpi-gpio out, digital, "Initialise pin state" low' },
  unticked: { pins: [7, 8, 9, 10, 11], label: 'rpi-gpio out, digital, "Initialise pin state" unticked' },
  pwm: { pins: [12, 13, 16, 19, 20], label: "rpi-gpio out, PWM" },
  "pulse-out": { pins: [21, 22, 23, 24, 25], label: "pulse-out" },
};
const RUNS = Number(process.env.SQI_STOP_RUNS ?? 4); // x 5 pins: 20 stops of each mode
/** What a stop may take: Node-RED's own node close timeout (15 s) and a margin; the drop-in's TimeoutStopSec is 30 s. */
const STOP_TIMEOUT_MS = 20_000;

/** Pulses of 80-90 ms every 100 ms on every pin (a stop lands mid-pulse on most of them), each pin at its own phase. */
function stopFlow(): FlowNode[] {
  const tab = "stop.tab";
  const nodes: FlowNode[] = [{ id: tab, type: "tab", label: "service stop" }];
  for (const [mode, { pins }] of Object.entries(MODES) as Array<[Mode, { pins: number[] }]>) {
    pins.forEach((pin, i) => {
      const key = `${mode}-${pin}`;
      const limits = { maxOn: 100, maxDuty: 95, minOff: 1 };
      const c = chain(tab, key, {
        pin,
        tickMs: 100 + 3 * i,
        glyphs: [{ tick: 1, event: "glow", payload: { amplitude: 0.6 } }],
        pinOut: mode === "pwm" ? "pwm" : mode === "pulse-out" ? "timed" : "out",
        shaper: {
          ...limits,
          output: mode === "pwm" ? "pwm" : "digital",
          rows: [{ event: "glow", shape: mode === "pwm" ? "pwm" : "pulse", width: mode === "unticked" ? 30 : 85 }],
        },
      });
      nodes.push(
        ...c.map((n) =>
          n.id !== `${key}.pin` ? n : n.type === "pulse-out" ? { ...n, maxDuty: 95 } : mode === "unticked" ? { ...n, set: false, level: "0", freq: "" } : n,
        ),
      );
    });
  }
  return nodes;
}

/** Every process under `pid` (not itself), from /proc; not the simulated lgpio's stand-ins for the kernel, which no stop signals. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes("sqi-sim-kernel")) continue;
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}

interface PinEnd {
  pin: number;
  mode: Mode;
  /** Driven (level or duty above 0) when the stop began. */
  onAtSignal: boolean;
  /** How long it was driven after the stop began, ms (to its last low, or to the end of the log). */
  onAfterMs: number;
  /** Driven again after the stop began, having been low. */
  roseAfter: boolean;
  /** The last level or duty written. */
  lastLevel: number;
  released: boolean;
  /** Levels written after the stop began (by the helper's own handler, or by Node-RED's close). */
  writesAfter: number;
}

/** Each pin's end, from the pin log, after a stop that began at `signalAt` (epoch ms). */
function ends(records: PinRecord[], signalAt: number, endAt: number): PinEnd[] {
  const out: PinEnd[] = [];
  for (const [mode, { pins }] of Object.entries(MODES) as Array<[Mode, { pins: number[] }]>) {
    for (const pin of pins) {
      const recs = records.filter((r) => r.pin === pin);
      let level = 0;
      let onAtSignal = false;
      let onSince: number | undefined;
      let onAfterMs = 0;
      let roseAfter = false;
      let released = false;
      let seenSignal = false;
      let writesAfter = 0;
      for (const r of recs) {
        if (!seenSignal && r.t >= signalAt) {
          seenSignal = true;
          onAtSignal = level > 0;
          if (onAtSignal) onSince = signalAt;
        }
        if (r.event === "released") {
          // An input from here on: the gate's pull-down holds it low (how a Pi's released pin ends).
          released = true;
          if (level > 0 && seenSignal && onSince !== undefined) onAfterMs += r.t - onSince;
          onSince = undefined;
          continue;
        }
        if (r.value === null) continue;
        const next = Number(r.value);
        if (seenSignal) writesAfter++;
        if (seenSignal) {
          if (level <= 0 && next > 0) {
            roseAfter = true;
            onSince = r.t;
          } else if (level > 0 && next <= 0 && onSince !== undefined) {
            onAfterMs += r.t - onSince;
            onSince = undefined;
          }
        }
        level = next;
      }
      if (!seenSignal) onAtSignal = level > 0;
      if (level > 0 && !released) onAfterMs += endAt - (onSince ?? signalAt);
      out.push({ pin, mode, onAtSignal, onAfterMs, roseAfter, lastLevel: level, released, writesAfter });
    }
  }
  return out;
}

/**
 * One Node-RED with the stop flow, pulsing; then a stop as systemd makes it: "group" (the
 * installer's unit: SIGINT to every process of Node-RED's tree at once) or "mixed" (the drop-in:
 * SIGINT to Node-RED alone, and SIGKILL to whatever is left once it has exited). Waits up to
 * STOP_TIMEOUT_MS, then SIGKILLs the rest, as systemd does after TimeoutStopSec.
 */
async function stopOnce(how: "group" | "mixed"): Promise<{ ends: PinEnd[]; stopMs: number; killed: number }> {
  const demo = await startDemo({ SQI_FLOW: writeFlow() });
  let tree: number[] = [];
  try {
    const records = () => parsePinLog(fs.existsSync(demo.pinLog) ? fs.readFileSync(demo.pinLog, "utf8") : "").records;
    // Every pin has pulsed a few times: the helpers run and the stop lands in the pulsing.
    const all = Object.values(MODES).flatMap((m) => m.pins);
    await waitFor(
      "every pin pulsing",
      () => {
        const recs = records();
        return all.every((p) => recs.filter((r) => r.pin === p && Number(r.value) > 0).length >= 3);
      },
      60_000,
      100,
    );
    await new Promise((r) => setTimeout(r, Math.random() * 100));
    tree = [demo.redPid, ...descendants(demo.redPid)];
    const signalAt = Date.now();
    // At once, the helpers first (the deepest processes): the worst order for the pins, where a
    // helper acts on the signal before Node-RED can send it a low.
    // A process of the tree may end between the listing and its signal (a helper restarting): gone is fine.
    const signal = (pid: number) => {
      try {
        process.kill(pid, "SIGINT");
      } catch {
        /* gone meanwhile */
      }
    };
    if (how === "group") for (const pid of [...tree].reverse()) signal(pid);
    else signal(demo.redPid);
    // systemd waits for the main process (mixed) or for every process (control-group) up to
    // TimeoutStopSec, then SIGKILLs what is left.
    const waitedFor = how === "mixed" ? [demo.redPid] : tree;
    await waitFor("the stop", () => !waitedFor.some(isAlive), STOP_TIMEOUT_MS, 20).catch(() => undefined);
    const stopMs = Date.now() - signalAt;
    const left = tree.filter(isAlive);
    killAll(...left);
    await waitFor("the tree gone", () => !tree.some(isAlive), 5000, 20).catch(() => undefined);
    return { ends: ends(records(), signalAt, Date.now()), stopMs, killed: left.length };
  } finally {
    killAll(...tree);
    await demo.cleanUp();
  }
}

let flowFile: string | undefined;
function writeFlow(): string {
  if (!flowFile) {
    const dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : "/tmp", "sqi-service-stop-"));
    flowFile = path.join(dir, "flow.json");
    fs.writeFileSync(flowFile, JSON.stringify(stopFlow()));
  }
  return flowFile;
}

function table(all: PinEnd[]): string {
  return (Object.keys(MODES) as Mode[])
    .map((m) => {
      const e = all.filter((x) => x.mode === m);
      const n = (f: (x: PinEnd) => boolean) => e.filter(f).length;
      const on = e.map((x) => x.onAfterMs).sort((a, b) => a - b);
      return `  ${MODES[m].label}: ${e.length} stops, ${n((x) => x.onAtSignal)} mid-pulse; driven low ${n((x) => x.lastLevel <= 0)}, released ${n((x) => x.released)} (${n((x) => x.released && x.lastLevel > 0)} of them while driven: low by the pull-down from then), left driven ${n((x) => x.lastLevel > 0 && !x.released)}, driven again after the signal ${n((x) => x.roseAfter)}; on after the signal: median ${on[Math.floor(on.length / 2)]?.toFixed(0)} / max ${on[on.length - 1]?.toFixed(0)} ms`;
    })
    .join("\n");
}

describe("a systemd stop of Node-RED, in every output mode, at the pin", () => {
  const results: Record<"group" | "mixed", PinEnd[]> = { group: [], mixed: [] };
  after(() => {
    if (flowFile) fs.rmSync(path.dirname(flowFile), { recursive: true, force: true });
  });

  for (const how of ["mixed", "group"] as const) {
    it(
      how === "mixed"
        ? `with the drop-in (KillMode=mixed: SIGINT to Node-RED alone), ${RUNS * 5} stops of each mode: every pin ends low and released`
        : `as the installer's unit stops it (SIGINT to every process at once), ${RUNS * 5} stops of each mode: the modes the README calls safe end low`,
      async (t) => {
        const lines: string[] = [];
        for (let k = 0; k < RUNS; k++) {
          const r = await stopOnce(how);
          results[how].push(...r.ends);
          lines.push(
            `stop ${k + 1}: ${how === "mixed" ? "Node-RED" : "every process"} exited ${r.stopMs} ms after the signal; ${r.killed} processes left to SIGKILL`,
          );
        }
        const all = results[how];
        t.diagnostic(`${lines.join("\n")}\n${table(all)}`);
        const mid = (m: Mode) => all.filter((e) => e.mode === m && e.onAtSignal).length;
        for (const m of ["low", "pwm", "pulse-out"] as Mode[]) assert.ok(mid(m) >= RUNS * 2, `${MODES[m].label}: most stops landed mid-pulse (${mid(m)})`);
        const bad = (f: (e: PinEnd) => boolean, modes: Mode[]) => all.filter((e) => modes.includes(e.mode) && f(e));
        const show = (es: PinEnd[]) =>
          es.map((e) => `GPIO ${e.pin} (${e.mode}): last ${e.lastLevel}, released ${e.released}, on ${e.onAfterMs.toFixed(0)} ms after`).join("; ");
        if (how === "mixed") {
          const notLow = bad((e) => e.lastLevel > 0 || !e.released, Object.keys(MODES) as Mode[]);
          assert.deepEqual(notLow, [], `every pin of every mode ends low and released: ${show(notLow)}\n${table(all)}`);
        } else {
          // The modes the README calls safe under the installer's unit; the others are measured
          // above (their helpers' own code decides, not this package's).
          // Low at the pin: driven low, or released (an input from then on, which the gate's
          // pull-down holds low). With rpi-lgpio a helper that survived the signal may follow the
          // shaper's edges until Node-RED closes it, and be freed in a pulse: that is low too.
          //
          // One exception, in node-red-node-pi-gpio's code: nrgpio.py writes each level outside its
          // try, so a SIGINT that lands during that write is not caught, and the helper dies with
          // the pin where it was (with RPi.GPIO, never released). Its evidence: on at the signal,
          // nothing written after it, never released. Such a pin is counted and shown; any other
          // that ends high fails, and the helpers' handler must be seen at work.
          const diedInWrite = (e: PinEnd) => e.mode === "low" && e.onAtSignal && e.writesAfter === 0 && !e.released;
          const died = all.filter(diedInWrite);
          if (died.length) t.diagnostic(`"Initialise pin state" low: ${died.length} helper(s) died of the SIGINT while writing a level: ${show(died)}`);
          const safe = bad((e) => e.lastLevel > 0 && !e.released && !diedInWrite(e), ["low", "pulse-out"]);
          assert.deepEqual(safe, [], `initialised low and pulse-out end low (driven low, or released): ${show(safe)}\n${table(all)}`);
          assert.ok(
            all.some((e) => e.mode === "low" && e.onAtSignal && e.writesAfter > 0 && e.lastLevel <= 0),
            `an initialised-low pin that was on at the signal was driven low after it\n${table(all)}`,
          );
        }
      },
    );
  }
});
