// Hostile power readings and reports: a flood of readings into a listener (bad ones of every
// kind among them, a getter that throws, 100,000 in one go) is counted, never averaged in, and
// said in a few throttled errors; a listener that reports impossible energies to its master
// does not poison the sum. The flow keeps running.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import WebSocket from "ws";
import { freePort, waitFor } from "../helpers/processes";
import { helper, record, settle } from "../helpers/red";

const sqiBus = require("../../nodes/sqi-bus");
const sqiEventBus = require("../../nodes/sqi-event-bus");

afterEach(async () => helper.unload());

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
/** The heap in use after a full collection, MB: what is really kept. */
function heapKept(): number {
  gc();
  return process.memoryUsage().heapUsed / 1e6;
}

type Stats = { summary: { power?: { pis: number; energy_j: number; power_w: number; estimated_j: number | null; ratio: number | null } } };

describe("hostile power readings and reports", () => {
  it("100,000 readings, a third of them bad in every way: each counted, none averaged in, a few throttled errors", async (t) => {
    const port = await freePort();
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "cfg", type: "sqi-bus", transport: "ws", host: "127.0.0.1", port: String(port), path: "/", url: `ws://127.0.0.1:${port}/` },
        { id: "pi", z: "f", type: "sqi-event-bus", role: "listen", bus: "cfg", listenerName: "pi-h", statsEvery: 0, wires: [[], ["out"]] },
        { id: "out", z: "f", type: "helper" },
      ],
    );
    const pi = record("pi", "out");
    const node = helper.getNode("pi");
    const throwing = Object.defineProperty({}, "power_w", {
      get() {
        throw new Error("sensor bus fault");
      },
      enumerable: true,
    });
    let deep: unknown = 5;
    for (let i = 0; i < 50_000; i++) deep = { power_w: deep };
    const bad: unknown[] = [
      throwing,
      deep,
      "x".repeat(1_000_000),
      { power_w: Number.NaN },
      { power_w: -1 },
      { power_w: 1e300 },
      { voltage_v: 12, current_a: "1" },
      JSON.parse('{"__proto__": {"power_w": 5}}'),
      [12],
      null,
      undefined,
      true,
    ];
    const heapBefore = heapKept();
    let badSent = 0;
    const started = Date.now();
    for (let i = 0; i < 100_000; i++) {
      if (i % 3 === 1) {
        node.receive({ topic: "measure", payload: bad[badSent % bad.length] });
        badSent++;
      } else node.receive({ topic: "measure", payload: 0 });
      if (i % 5000 === 0) await settle(1);
    }
    await settle(20);
    node.receive({ stats: true });
    const stats = (await waitFor("stats", () => pi.messages.find((m) => m.topic === "stats"), 20_000))!.payload as { measured: Record<string, number> };
    assert.equal(stats.measured.measured_bad, badSent, "every bad reading counted");
    assert.equal(stats.measured.measured_samples, 100_000 - badSent);
    assert.equal(stats.measured.measured_energy_j, 0, "none averaged in: the good ones were all 0 W");
    assert.equal(stats.measured.measured_max_w, 0);
    // One error per distinct text a second at most: a handful, not 33,000.
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.ok(pi.errors.length <= bad.length * seconds, `${pi.errors.length} errors logged in ${seconds} s`);
    assert.ok(
      pi.errors.some((e) => e.includes("msg.payload could not be read: sensor bus fault")),
      "the throwing getter is refused",
    );
    assert.ok(
      pi.errors.some((e) => /msg\.payload\.power_w: must be a finite number of W, got an object/.test(e)),
      "the deep one is refused at its first level",
    );
    // The test helper's log spy keeps every log call (two per message at trace level): not ours.
    (helper.log() as unknown as { resetHistory(): void }).resetHistory();
    const grew = heapKept() - heapBefore;
    t.diagnostic(`${badSent} bad readings in ${seconds} s: ${pi.errors.length} errors logged; the heap kept ${grew.toFixed(1)} MB more`);
    assert.ok(grew < 20, `the heap grew ${grew.toFixed(1)} MB`);
  });

  it("a listener reporting impossible energies to its master is not summed: negative, huge, the estimate too", async () => {
    const port = await freePort();
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "cfg", type: "sqi-bus", transport: "ws", host: "127.0.0.1", port: String(port), path: "/", url: "" },
        { id: "bus", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "cfg", statsEvery: 0, wires: [[], ["out"]] },
        { id: "out", z: "f", type: "helper" },
      ],
    );
    const master = record("bus", "out");
    const pis = ["good", "negative", "huge"].map((name) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      ws.on("error", () => undefined);
      return { name, ws, open: new Promise((r) => ws.once("open", r)) };
    });
    const counters: Record<string, Record<string, number>> = {
      good: { measured_energy_j: 10, measured_power_w: 2, measured_samples: 5, measured_bad: 0, measured_age_ms: 100, fired_energy_j: 20 },
      negative: { measured_energy_j: -1e9, measured_power_w: -50, measured_samples: 5, measured_bad: -3, measured_age_ms: -1, fired_energy_j: -4 },
      huge: { measured_energy_j: 1e308, measured_power_w: 1e300, measured_samples: 5, measured_bad: 0, measured_age_ms: 100, fired_energy_j: 1e308 },
    };
    for (const p of pis) {
      await p.open;
      p.ws.send(JSON.stringify({ type: "hello", name: p.name, protocol: 1 }));
      p.ws.send(JSON.stringify({ type: "report", name: p.name, counters: counters[p.name] }));
    }
    await waitFor("three reports", () => (master.messages.filter((m) => m.topic === "report").length >= 3 ? true : undefined), 5000);
    helper.getNode("bus").receive({ stats: true });
    const stats = (await waitFor("stats", () => master.messages.find((m) => m.topic === "stats"), 5000))!.payload as Stats;
    const power = stats.summary.power!;
    assert.equal(power.pis, 3);
    assert.equal(power.energy_j, 10, "only the good Pi's energy");
    assert.equal(power.power_w, 2);
    assert.equal(power.estimated_j, 20);
    assert.equal(power.ratio, 0.5);
    assert.ok(JSON.stringify(stats).length < 100_000);
    for (const p of pis) p.ws.terminate();
  });
});
