// 1,000 clones end to end on a virtual clock: dc-container (counted messages) ->
// event-filter -> pulse-shaper. What a user watches: a 1 kHz-intended stream that the
// shaper turns into a pulse train the pin can follow, with every event it could not
// deliver counted and the status saying "saturated".
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { packageRoot } from "../../lib/paths";
import { container, T0 } from "../helpers/containers";
import { helper, lastStatus, record, settle } from "../helpers/red";

const dcContainer = require("../../nodes/dc-container");
const eventFilter = require("../../nodes/event-filter");
const pulseShaper = require("../../nodes/pulse-shaper");

let clock: VirtualClock;

const oneHz = JSON.stringify(container([{ tick: 1, event: "proton_collision", payload: {} }], { loop: true, tick_interval_ms: 1000 }));

async function chain(every: number, output = "digital", json = oneHz, rule = "proton_*") {
  await helper.load(
    [dcContainer, eventFilter, pulseShaper],
    [
      { id: "f", type: "tab" },
      {
        id: "dc",
        z: "f",
        type: "dc-container",
        source: "inline",
        json,
        autostart: true,
        startDelay: 0,
        lead: 50,
        clones: 1000,
        spread: "even",
        spreadOver: "tick",
        emission: "auto",
        aggregateAbove: 100,
        frameMs: 20,
        wires: [["ef"]],
      },
      { id: "ef", z: "f", type: "event-filter", rules: [{ event: rule }], checkall: "first", every, maxLate: 0, wires: [["ps"]] },
      {
        id: "ps",
        z: "f",
        type: "pulse-shaper",
        width: 5,
        output,
        unknown: "pulse",
        late: "fire",
        rows: [],
        maxOn: 100,
        maxDuty: 50,
        dutyWindow: 1000,
        minOff: 1,
        maxRate: 500,
        measureEvery: 0,
        wires: [["edges"], ["meas"]],
      },
      { id: "edges", z: "f", type: "helper" },
      { id: "meas", z: "f", type: "helper" },
    ],
  );
  const edges: Array<{ topic: string; payload: number; sqi: { edge: { sent: number } } }> = [];
  const meas: Array<{ payload: Record<string, number> }> = [];
  helper.getNode("edges").on("input", (m: (typeof edges)[number]) => edges.push(m));
  helper.getNode("meas").on("input", (m: (typeof meas)[number]) => meas.push(m));
  const status = record("ps");
  const filterStatus = record("ef");
  await settle();
  return { edges, meas, status, filterStatus };
}

/** Virtual time in 10 ms steps, letting Node-RED deliver between them (well within the 50 ms lead). */
async function run(ms: number) {
  for (let t = 0; t < ms; t += 10) {
    clock.advance(10);
    await settle();
  }
}

/** The keys of a pulse-shaper's measurements these tests read (the report always has them). */
type Measured = Record<"train_events" | "train_clamped" | "pulses" | "queued" | "late" | "train_intended_hz" | "train_delivered_hz", number>;

async function measurements(meas: Array<{ payload: Record<string, number> }>): Promise<Measured> {
  helper.getNode("ps").receive({ measure: true });
  await settle();
  const m = meas[meas.length - 1]?.payload;
  assert.ok(m, "a measurements message");
  return m as Measured;
}

describe("1,000 clones through filter and shaper", () => {
  beforeEach(() => {
    clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock });
  });
  afterEach(async () => helper.unload());

  it("a 1 kHz-intended stream becomes a bounded 98 Hz train of 5 ms pulses; the rest is counted as clamped and the status says saturated", async () => {
    const { edges, meas, status } = await chain(1);
    await run(10_000);
    const m = await measurements(meas);
    const rises = edges.filter((e) => e.payload === 1).map((e) => e.sqi.edge.sent);
    const falls = edges.filter((e) => e.payload === 0).map((e) => e.sqi.edge.sent);
    // 5 ms pulses within 50 % duty over any second, less the 1 % the pin guard holds back (495 ms):
    // one every 1000 x 5 / (495 - 5) = 10.2 ms at most, so about 980 in 10 s.
    assert.ok(rises.length >= 970 && rises.length <= 981, `${rises.length} pulses in 10 s`);
    assert.ok(
      rises.every((t, i) => i === 0 || t - rises[i - 1]! >= 10.2 - 1e-6),
      "never faster than the pin's limits allow",
    );
    assert.ok(
      falls.every((t, i) => Math.abs(t - rises[i]! - 5) < 1e-6),
      "every pulse 5 ms wide",
    );
    assert.ok(
      edges.every((e, i) => e.payload === (i % 2 === 0 ? 1 : 0)),
      "edges alternate: no pin left high between pulses",
    );
    assert.ok(m.train_events >= 9_900 && m.train_events <= 10_050, `${m.train_events} events represented`);
    assert.ok(m.train_clamped > 8_900, `${m.train_clamped} clamped`);
    assert.ok(
      Math.abs(m.train_events - m.train_clamped - m.pulses - (m.queued ?? 0) / 1) <= 2,
      `events ${m.train_events} = clamped ${m.train_clamped} + pulses ${m.pulses} (+ queued)`,
    );
    assert.ok(m.queued <= 8, `the queue holds no more than the lead and one frame: (50 + 20) / 10.2 + 1, got ${m.queued}`);
    assert.equal(m.late, 0);
    assert.match(lastStatus(status), /^⚠ 1\.0 kHz in, (97|98|99) Hz delivered/);
    assert.ok(
      Math.abs(m.train_intended_hz - 1000) < 15 && Math.abs(m.train_delivered_hz - 98) < 2,
      `report: intended ${m.train_intended_hz} Hz, delivered ${m.train_delivered_hz} Hz`,
    );
  });

  it("decimated by 20 in the filter, the same clones ask for 50 Hz, which the pin delivers whole", async () => {
    const { edges, meas, status, filterStatus } = await chain(20);
    await run(10_000);
    const m = await measurements(meas);
    const rises = edges.filter((e) => e.payload === 1).length;
    assert.ok(rises >= 495 && rises <= 501, `${rises} pulses in 10 s`);
    assert.equal(m.train_clamped, 0);
    assert.equal(m.train_events, m.pulses + m.queued);
    assert.doesNotMatch(lastStatus(status), /⚠/);
    const [, out, decimated] = /out (\d+) · decimated (\d+)/.exec(lastStatus(filterStatus))!;
    assert.equal(Number(decimated), 19 * Number(out), "each counted message of 20 events keeps 1 and counts 19 as decimated");
    // The envelope the pin's edges carry: count and rate scaled together (rate_hz stayed at 1,000 before lib/sqi.ts).
    const sqi = edges[0]!.sqi as unknown as { count: number; window_ms: number; rate_hz: number };
    assert.deepEqual([sqi.count, sqi.window_ms, sqi.rate_hz], [1, 20, 50]);
  });

  it("on a PWM output the 1 kHz becomes a duty, capped at the 50 % maximum less the pin guard's 1 % reserve, without a flood of edges", async () => {
    const { edges, status } = await chain(1, "pwm");
    await run(2_000);
    assert.ok(edges.length < 100, `${edges.length} edges in 2 s`);
    assert.ok(
      edges.filter((e) => e.payload > 0).every((e) => e.payload === 49.5),
      "held at the maximum duty, 49.5 %",
    );
    assert.match(lastStatus(status), /^⚠ 1\.0 kHz as 50% duty \(capped\)/);
  });
  it("two event names on one saturated pin share it by their counts (1 : 3), not first come, first served", async () => {
    const mixed = JSON.stringify(
      container(
        [
          { tick: 1, event: "alpha", payload: {} },
          { tick: 1, event: "beta", payload: {} },
          { tick: 1, event: "beta", payload: {} },
          { tick: 1, event: "beta", payload: {} },
        ],
        { loop: true, tick_interval_ms: 1000 },
      ),
    );
    const { edges, meas } = await chain(1, "digital", mixed, "*");
    await run(10_000);
    const m = await measurements(meas);
    const rises = edges.filter((e) => e.payload === 1);
    const alpha = rises.filter((e) => e.topic === "alpha").length;
    const beta = rises.filter((e) => e.topic === "beta").length;
    assert.ok(alpha + beta >= 970 && alpha + beta <= 981, `${alpha + beta} pulses in 10 s`);
    assert.ok(Math.abs(beta - 3 * alpha) <= 8, `alpha ${alpha}, beta ${beta}: 1 : 3 as the counts`);
    assert.ok(m.train_events >= 39_600 && m.train_events <= 40_200, `${m.train_events} events represented`);
    assert.ok(
      Math.abs(m.train_events - m.train_clamped - m.pulses - m.queued) <= 2,
      `events ${m.train_events} = clamped ${m.train_clamped} + pulses ${m.pulses} + queued ${m.queued}`,
    );
  });

  it("example 04 as shipped (its rpi-gpio out and debug stood in for): saturated at about 98 pulses a second, pin edges alternating", async () => {
    const file = path.join(packageRoot, "examples", "04 - 1,000 clones multiplexed.json");
    const flow = (JSON.parse(fs.readFileSync(file, "utf8")) as Array<Record<string, unknown>>)
      .filter((n) => n.type !== "comment")
      .map((n) => (n.type === "rpi-gpio out" || n.type === "debug" ? { id: n.id, z: n.z, type: "helper" } : n));
    await helper.load([dcContainer, pulseShaper], flow);
    const pin: number[] = [];
    helper.getNode("ex04.pin").on("input", (m: { payload: number }) => pin.push(m.payload));
    const status = record("ex04.shaper");
    const player = record("ex04.player");
    await run(5_000);
    // It starts 2 s after deploy: 3 s of play.
    assert.ok(pin.length >= 2 * 280 && pin.length <= 2 * 300, `${pin.length / 2} pulses in 3 s of play`);
    assert.ok(pin.every((v, i) => v === (i % 2 === 0 ? 1 : 0)));
    assert.match(lastStatus(status), /^⚠ 1\.0 kHz in, (97|98|99) Hz delivered/);
    assert.match(lastStatus(player), /×1,000$/);
  });
});
