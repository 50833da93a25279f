// A master and three Pis (the role flows, as `npm run cluster -- --pis 3` runs them) whose
// SIMULATED sensors measure the coil on pin 18: the master's sum of measured energy is checked
// against what the pin logs say the coils were on for, times the simulated V/R. Used by the
// system test (MQTT) and the browser test (WebSocket, with the SQI scope).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../../lib/paths";
import { PinOnTime, reading } from "../../lib/power/sim-sensor";
import type { PowerSum } from "../../lib/power/tally";
import { parsePinLog } from "../../scripts/gpio-sim";
import { startCluster, type Cluster } from "../../scripts/cluster";
import { fileNode } from "./flows";
import { freePort, freePortRange, waitFor } from "./processes";

export const COIL_PIN = 18;

interface Line {
  role?: string;
  name?: string;
  counters?: Record<string, number>;
  summary?: { power?: PowerSum };
  worst?: Array<{ name: string; power?: { energy_j: number; estimated_j: number | null; ratio: number | null; silent: boolean } }>;
}

export interface PowerCluster {
  cluster: Cluster;
  /** The master's latest stats message (its output 2, written to a file each second). */
  stats(): Line | undefined;
  stop(): Promise<void>;
}

/** The simulated sensor as the Pi role flow sets it up: its coil, for the expected energy. */
export function roleSensor(): { volts: number; ohms: number; sagPct: number; pin: number } {
  const flow = JSON.parse(fs.readFileSync(path.join(packageRoot, "flows", "pi-node.json"), "utf8")) as Array<Record<string, unknown>>;
  const s = flow.find((n) => n.type === "sqi-sim-sensor");
  assert.ok(s, "the Pi role flow has a simulated sensor");
  return { volts: Number(s.volts), ohms: Number(s.ohms), sagPct: Number(s.sag), pin: Number(s.pin) };
}

export async function startPowerCluster(dir: string, mqtt: boolean): Promise<PowerCluster> {
  const out = path.join(dir, "master-output.jsonl");
  const master = JSON.parse(fs.readFileSync(path.join(packageRoot, "flows", "master.json"), "utf8")) as Array<Record<string, unknown>>;
  const bus = master.find((n) => n.id === "m.broadcast")!;
  // The container starts once every Pi listens and its sensor has read a while (below): a pulse in
  // a sensor's first interval would be on the pin but in no integrated reading (the meter has no
  // reading before it to integrate from), and the sum would come out short.
  master.find((n) => n.id === "m.player")!.autostart = false;
  bus.statsEvery = 1;
  bus.wires = [[], ["m.reports", "t.file"]];
  master.push(fileNode("t.file", "m.tab", out));
  fs.writeFileSync(path.join(dir, "master-flow.json"), JSON.stringify(master));
  const cluster = await startCluster({
    pis: 3,
    jitterMs: 0,
    clockOffsetMs: 100,
    dir,
    basePort: await freePortRange(4),
    busPort: await freePort(),
    mqtt,
    masterFlow: path.join(dir, "master-flow.json"),
  });
  const stats = (): Line | undefined => {
    if (!fs.existsSync(out)) return undefined;
    const lines = fs.readFileSync(out, "utf8").trim().split("\n").reverse();
    for (const l of lines) {
      try {
        const x = JSON.parse(l) as Line;
        if (x.role === "broadcast") return x;
      } catch {
        /* a torn line */
      }
    }
    return undefined;
  };
  await waitFor("three Pis listening to the master", () => (stats()?.worst ?? []).length === 3, 60_000, 250);
  await new Promise((r) => setTimeout(r, 2000)); // each Pi's sensor reads every 0.5 s: several readings of a pin at rest
  const started = await fetch(`http://127.0.0.1:${cluster.master.port}/dc-container/m.player/start`, { method: "POST" });
  assert.equal(started.status, 200, "the master's container starts");
  return { cluster, stats, stop: () => cluster.stop() };
}

export interface SumCheck {
  measured_j: number;
  expected_j: number;
  estimated_j: number;
  ratio: number;
  /** measured / estimated over the run, once the GPIO helpers ran */
  windowRatio: number;
  /** each Pi's coil on-time at the pin, ms */
  onMs: number[];
  /** the coil shapers' on-time, all Pis, as handed on (from the estimate: the role flow's shaper has the sensor's V and R) */
  shaperOnMs: number;
}

/**
 * Lets the Pis pulse and measure for `runMs`, stops the master's container, waits for the
 * master's sum to settle, and compares it with the pin logs: each Pi's on-time on the coil pin
 * times the simulated sensor's power while on. Returns the numbers for the test's diagnostics.
 */
export async function checkSumAgainstPins(p: PowerCluster, runMs: number): Promise<SumCheck> {
  const { cluster } = p;
  const sensor = roleSensor();
  await waitFor(
    "three Pis reporting measured energy",
    () => {
      const s = p.stats();
      return s?.summary?.power?.pis === 3 && (s.worst ?? []).every((l) => (l.power?.energy_j ?? 0) > 0) && (s.worst ?? []).length === 3 ? s : undefined;
    },
    60_000,
    250,
  );
  // Once the GPIO helpers run (they start slowly while four Node-REDs start on two cores, and
  // the pulses handed to them meanwhile reach the pin as a rise and a fall together), the ratio
  // over a window is near what the sensor's model says (the sag, squared) on a quiet machine.
  const from = p.stats()!.summary!.power!;
  await new Promise((r) => setTimeout(r, runMs));
  const to = p.stats()!.summary!.power!;
  const windowRatio = (to.energy_j - from.energy_j) / ((to.estimated_j ?? 0) - (from.estimated_j ?? 0));
  const stopped = await fetch(`http://127.0.0.1:${cluster.master.port}/dc-container/m.player/stop`, { method: "POST" });
  assert.equal(stopped.status, 200, "the master's container stops");
  // The last pulses end, the sensors read 0 W, the Pis report (every 2 s), the master's stats follow (every 1 s).
  let last = -1;
  let steadySince = Date.now();
  const settled = await waitFor(
    "the master's sum settled",
    () => {
      const s = p.stats()?.summary?.power;
      if (!s) return undefined;
      if (s.energy_j !== last) {
        last = s.energy_j;
        steadySince = Date.now();
        return undefined;
      }
      return Date.now() - steadySince > 4500 ? s : undefined;
    },
    60_000,
    250,
  );
  const onMs = cluster.pis.map((pi) => {
    const on = new PinOnTime(sensor.pin);
    for (const r of parsePinLog(fs.readFileSync(pi.pinLog, "utf8"))) on.take(r);
    assert.equal(on.high, false, `${pi.name}: the coil pin ended low`);
    return on.onMsUntil(Number.MAX_SAFE_INTEGER);
  });
  const watts = reading(sensor, 1).power_w;
  const expected = onMs.reduce((a, b) => a + b, 0) * (watts / 1000);
  assert.ok(
    onMs.every((x) => x > 100),
    `each coil was on for a while: ${onMs.map((x) => x.toFixed(1)).join(", ")} ms`,
  );
  assert.ok(
    Math.abs(settled.energy_j - expected) / expected < 0.02,
    `the master's sum ${settled.energy_j} J is within 2 % of the pin logs' ${expected.toFixed(4)} J (on-time ${onMs.map((x) => x.toFixed(1)).join(" + ")} ms at ${watts.toFixed(3)} W)`,
  );
  assert.equal(settled.pis, 3);
  assert.equal(settled.silent, 0);
  assert.ok(settled.estimated_j !== null && settled.ratio !== null, "the estimate and the ratio beside the measured sum");
  // The ratio is the measured sum over the estimated one. The estimate is V^2/R x the on-time the
  // shapers handed on; the pins were on for less when the GPIO helper took edges late (under
  // this load a rise can reach the pin just before its fall), so the ratio is at most the sag's.
  const sagged = (1 - sensor.sagPct / 100) ** 2;
  // Against the pin logs, not the report's own sum: what the coils drew at the pins over the estimate.
  assert.ok(
    Math.abs(settled.ratio! - expected / settled.estimated_j!) <= 0.02 * (expected / settled.estimated_j!) + 0.0005,
    `the ratio ${settled.ratio} is the pin logs' ${expected.toFixed(4)} J over the estimate ${settled.estimated_j} J`,
  );
  assert.ok(settled.ratio! > 0.3 && settled.ratio! < sagged + 0.05, `measured/estimated ${settled.ratio}: at most the sag's ${sagged.toFixed(3)}`);
  // Over the window once running, the same bound (its ends are reports a reading apart, the sensor
  // reads every 0.5 s: a few % either way). How near the sag's it comes depends on how loaded the
  // machine is (CI, running beside other tests, saw 0.821 against 0.941): a figure, not an invariant;
  // what must hold is above (the measured sum is the pin logs' on-time at the sensor's power).
  assert.ok(
    windowRatio > 0.3 && windowRatio < sagged + 0.1,
    `measured/estimated over ${runMs / 1000} s once running: ${windowRatio.toFixed(3)}, at most the sag's ${sagged.toFixed(3)}`,
  );
  return {
    measured_j: settled.energy_j,
    expected_j: expected,
    estimated_j: settled.estimated_j!,
    ratio: settled.ratio!,
    windowRatio,
    onMs,
    shaperOnMs: (settled.estimated_j! / (sensor.volts ** 2 / sensor.ohms)) * 1000,
  };
}
