// Measured power in Node-RED: a listening sqi-event-bus takes its power sensor's readings
// (msg.topic "measure"), refuses bad ones with the path and counts them, and reports the
// integrated energy to the master, which sums it; the SIMULATED sensor reads a pin log.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, it } from "node:test";
import { realClock } from "../../lib/clock";
import { freePort, waitFor } from "../helpers/processes";
import { helper, lastStatus, record, settle } from "../helpers/red";

const sqiBus = require("../../nodes/sqi-bus");
const sqiEventBus = require("../../nodes/sqi-event-bus");
const simSensor = require("../../nodes/sqi-sim-sensor");

type Report = { name: string; counters: Record<string, number> };

describe("measured power through the bus nodes", () => {
  afterEach(async () => {
    await helper.unload();
  });

  it("a listener integrates its sensor's readings, refuses bad ones with the path, and the master sums them", async () => {
    const port = await freePort();
    helper.settings({});
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: `ws://127.0.0.1:${port}/`, maxFrame: 1048576 },
        { id: "master", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], ["mout"]] },
        { id: "pi", z: "f", type: "sqi-event-bus", role: "listen", bus: "bus", listenerName: "pi-a", statsEvery: 0, wires: [[], ["pout"]] },
        { id: "mout", z: "f", type: "helper" },
        { id: "pout", z: "f", type: "helper" },
      ],
      { bus: { token: "tok" } },
    );
    const master = record("master", "mout");
    const pi = record("pi", "pout");
    const node = helper.getNode("pi");
    // 10 W every 50 ms for 1 s (a mix of the three forms), and two bad readings in between.
    const first = realClock.now();
    let last = first;
    for (let i = 0; i <= 20; i++) {
      node.receive({ topic: "measure", payload: [10, { power_w: 10 }, { voltage_v: 20, current_a: 0.5 }][i % 3] });
      last = realClock.now();
      if (i === 7) node.receive({ topic: "measure", payload: { power_w: "ten" } });
      if (i === 9) node.receive({ topic: "measure", payload: -3 });
      await new Promise((r) => setTimeout(r, 50));
    }
    await settle();
    assert.deepEqual(pi.errors, [
      'sqi-event-bus: measurement refused (counted as measured_bad, not averaged in): msg.payload.power_w: must be a finite number of W, got the string "ten"',
      "sqi-event-bus: measurement refused (counted as measured_bad, not averaged in): msg.payload: must be 0 or more W, got -3 (is the shunt wired the other way round?)",
    ]);
    assert.match(lastStatus(pi), /· 10\.0 W/);
    const report = (await waitFor(
      "a report with the readings",
      () => master.messages.find((m) => m.topic === "report" && (m.payload as Report).counters.measured_samples === 21),
      10_000,
    ))!.payload as Report;
    const expected = 10 * ((last - first) / 1000);
    assert.equal(report.name, "pi-a");
    assert.equal(report.counters.measured_bad, 2);
    assert.equal(report.counters.measured_power_w, 10);
    assert.ok(Math.abs(report.counters.measured_energy_j! - expected) < 0.05 * expected, `${report.counters.measured_energy_j} J against ${expected} J`);
    node.receive({ stats: true });
    await waitFor("the listener's stats", () => pi.messages.some((m) => m.topic === "stats"));
    const measured = (pi.messages.find((m) => m.topic === "stats")!.payload as { measured: Record<string, number> }).measured;
    assert.equal(measured.measured_samples, 21);
    helper.getNode("master").receive({ stats: true });
    const stats = (await waitFor("the master's stats", () => master.messages.find((m) => m.topic === "stats")))!.payload as {
      summary: { power: { pis: number; energy_j: number; estimated_j: number | null; what: string } };
      worst: Array<{ name: string; power: { energy_j: number } }>;
    };
    assert.equal(stats.summary.power.pis, 1);
    assert.equal(stats.summary.power.energy_j, report.counters.measured_energy_j);
    assert.equal(stats.summary.power.estimated_j, null, "no shaper with V and R on that Pi: no estimate");
    assert.match(stats.summary.power.what, /^electrical energy drawn from the coil supplies/);
    assert.equal(stats.worst[0]!.power.energy_j, report.counters.measured_energy_j);
  });

  it("the simulated sensor reads what the pin log says: V_on^2/R while high, 0 while low, SIMULATED in its status", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-sim-sensor-"));
    const log = path.join(dir, "pins.jsonl");
    fs.writeFileSync(log, `${JSON.stringify({ t: realClock.now() - 5000, pin: 18, value: 1 })}\n`); // before deploy: not this meter's
    helper.settings({});
    await helper.load(
      [simSensor],
      [
        { id: "f", type: "tab" },
        { id: "s", z: "f", type: "sqi-sim-sensor", pin: 18, volts: 12, ohms: 6, sag: 10, every: 0.1, pinLog: log, wires: [["out"]] },
        { id: "quiet", z: "f", type: "sqi-sim-sensor", pin: 18, volts: 12, ohms: 6, sag: 0, every: 0.1, pinLog: "", wires: [["qout"]] },
        { id: "bad", z: "f", type: "sqi-sim-sensor", pin: 99, volts: -1, ohms: 6, sag: 0, every: 0.1, wires: [[]] },
        { id: "out", z: "f", type: "helper" },
        { id: "qout", z: "f", type: "helper" },
      ],
    );
    const s = record("s", "out");
    const quiet = record("quiet", "qout");
    const bad = record("bad");
    const high = (value: number) => fs.appendFileSync(log, `${JSON.stringify({ t: realClock.now(), pin: 18, value })}\n`);
    await waitFor("readings", () => s.messages.length >= 2, 5000);
    assert.ok(
      s.messages.every((m) => (m.payload as { power_w: number }).power_w === 0),
      "what the pin did before deploy is not counted",
    );
    high(1);
    fs.appendFileSync(log, `${JSON.stringify({ t: realClock.now(), pin: 17, value: 1 })}\n`); // another pin: not this coil
    const n = s.messages.length;
    await waitFor("readings while high", () => (s.messages.length >= n + 5 ? true : undefined), 5000);
    high(0);
    const m = s.messages.length;
    await waitFor("readings after the fall", () => (s.messages.length >= m + 3 ? true : undefined), 5000);
    const watts = s.messages.map((x) => (x.payload as { power_w: number }).power_w);
    const on = (12 * 0.9) ** 2 / 6;
    // Whole intervals while high read exactly V_on^2/R; the last ones read 0.
    assert.ok(
      watts.slice(n + 1, m - 1).every((w) => Math.abs(w - on) < 1e-6),
      `while high: ${watts.slice(n + 1, m - 1).join(", ")} W (${on} W expected)`,
    );
    assert.deepEqual(watts.slice(-2), [0, 0]);
    const msg = s.messages[n + 2]!;
    assert.equal(msg.topic, "measure");
    assert.equal(msg.simulated, true);
    assert.deepEqual(msg.payload, { power_w: Math.round(on * 1e6) / 1e6, voltage_v: 10.8, current_a: 1.8 });
    assert.ok(
      s.statuses.some((x) => /^SIMULATED pin 18 · 19\.4 W$/.test(x.text ?? "")),
      JSON.stringify(s.statuses.slice(-3)),
    );
    assert.match(lastStatus(s), /^SIMULATED pin 18 · 0\.0 W$/);
    // A line that is not a record is skipped, and said.
    fs.appendFileSync(log, "not a record\n");
    await waitFor("the bad line said", () => (/^SIMULATED pin 18 · 0\.0 W · 1 bad line$/.test(lastStatus(s)) ? true : undefined), 5000);
    assert.equal(lastStatus(quiet), "SIMULATED: no pin log here, silent");
    assert.equal(quiet.messages.length, 0);
    assert.deepEqual(bad.errors, [
      "sqi-sim-sensor: Pin must be a whole number from 1 to 40, got 99; Coil supply voltage must be a number above 0 and up to 1000 V, got -1",
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
