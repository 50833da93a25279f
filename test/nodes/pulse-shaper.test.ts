import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { T0 } from "../helpers/containers";
import { helper, lastStatus, record, settle } from "../helpers/red";
import { clip } from "../../lib/status-line";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { resolveNodeRed } from "../../scripts/node-red-path";

const pulseShaper = require("../../nodes/pulse-shaper");

let clock: VirtualClock;

async function deploy(props: Record<string, unknown> = {}) {
  await helper.load(pulseShaper, [
    { id: "f", type: "tab" },
    {
      id: "ps",
      z: "f",
      type: "pulse-shaper",
      width: 5,
      ...SHAPER_DEFAULTS,
      rows: [],
      wires: [["edges"], ["meas"]],
      ...props,
    },
    { id: "edges", z: "f", type: "helper" },
    { id: "meas", z: "f", type: "helper" },
  ]);
  const edges: Array<Record<string, unknown>> = [];
  const meas: Array<Record<string, unknown>> = [];
  helper.getNode("edges").on("input", (m: Record<string, unknown>) => edges.push(m));
  helper.getNode("meas").on("input", (m: Record<string, unknown>) => meas.push(m));
  return { edges, meas, r: record("ps") };
}

async function send(m: Record<string, unknown>) {
  helper.getNode("ps").receive(m);
  await settle();
}
async function advance(ms: number) {
  clock.advance(ms);
  await settle();
}
const levels = (edges: Array<Record<string, unknown>>) => edges.map((e) => `${e.payload}@${(e.sqi as { edge: { sent: number } }).edge.sent - T0}`).join(" ");

describe("pulse-shaper node", () => {
  beforeEach(() => {
    clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock });
  });
  afterEach(async () => helper.unload());

  it("fires at msg.sqi.at, with msg.sqi.edge {level, planned, sent} and the event's sqi carried along", async () => {
    const { edges } = await deploy();
    await send({ topic: "proton_collision", payload: {}, sqi: { container: "c", tick: 1, seq: 7, at: T0 + 50 } });
    await advance(49);
    assert.equal(edges.length, 0, "nothing before at");
    await advance(1);
    await advance(10);
    assert.equal(levels(edges), "1@50 0@55");
    assert.deepEqual(edges[0]!.sqi, { container: "c", tick: 1, seq: 7, at: T0 + 50, edge: { level: 1, planned: T0 + 50, sent: T0 + 50 } });
    assert.equal(edges[0]!.topic, "proton_collision");
  });

  it("fires at once without msg.sqi.at, and the width comes from the panel", async () => {
    const { edges } = await deploy({ width: 12 });
    await send({ topic: "proton_collision", payload: 1700000000000 });
    await advance(20);
    assert.equal(levels(edges), "1@0 0@12");
  });

  it("late events: fired at once and counted, or dropped and counted, by policy", async () => {
    let { edges, meas } = await deploy({ late: "fire" });
    await send({ topic: "proton_collision", sqi: { at: T0 - 30 } });
    await advance(10);
    assert.equal(levels(edges), "1@0 0@5");
    await send({ measure: true });
    assert.equal((meas[0]!.payload as { late: number }).late, 1);
    await helper.unload();
    ({ edges, meas } = await deploy({ late: "drop" }));
    await send({ topic: "proton_collision", sqi: { at: T0 - 30 } });
    await advance(10);
    assert.equal(edges.length, 0);
    await send({ measure: true });
    assert.deepEqual([(meas[0]!.payload as { late: number }).late, (meas[0]!.payload as { late_dropped: number }).late_dropped], [1, 1]);
  });

  it("msg.stop sends 0 at once in the middle of a pulse and drops what is pending", async () => {
    const { edges } = await deploy();
    await send({ topic: "atom_spin_flip" });
    await send({ topic: "atom_spin_flip", sqi: { at: T0 + 200 } });
    await advance(20);
    await send({ stop: true });
    await advance(500);
    assert.equal(levels(edges), "1@0 0@20");
    assert.equal(clock.pending(), 0, "nothing left scheduled");
  });

  it("reports measurements on request and periodically, with the energy into the coil when V and R are set", async () => {
    const { meas } = await deploy({ measureEvery: 1, volts: 12, ohms: 6 });
    await send({ topic: "proton_collision" });
    await advance(1000);
    assert.equal(meas.length, 1, "one periodic report after 1 s");
    const p = meas[0]!.payload as Record<string, unknown>;
    assert.equal(meas[0]!.topic, "measurements");
    assert.equal(p.pulses, 1);
    assert.equal(p.on_time_ms, 5);
    assert.equal((p.electrical_input as { energy_j: number }).energy_j, 0.12, "24 W x 5 ms");
    assert.deepEqual(p.width_error_ms, { median: 0, p99: 0, max: 0, n: 1 });
  });

  it("refuses bad events with a clear error, throttled, and keeps working", async () => {
    const { edges, r, meas } = await deploy();
    await send({ payload: {} });
    await send({ topic: "waveform_emit", payload: { frequency_hz: 0 } });
    await send({ topic: "waveform_emit", payload: { frequency_hz: 0 } });
    await send({ topic: "proton_collision" });
    await advance(10);
    assert.equal(levels(edges), "1@0 0@5");
    assert.deepEqual(r.errors, [
      "pulse-shaper: msg.topic must be the event name (a non-empty string), got undefined",
      "pulse-shaper: waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got 0",
    ]);
    await send({ measure: true });
    assert.equal((meas[0]!.payload as { rejected: number }).rejected, 3, "the held-back repeat is still counted");
  });

  it("a message that failed goes to a catch node and not to a complete node (done(err)); the same error twice in a second is said once, then counted", async () => {
    const catchNode = require(resolveNodeRed("@node-red/nodes/core/common/25-catch.js"));
    const completeNode = require(resolveNodeRed("@node-red/nodes/core/common/24-complete.js"));
    await helper.load(
      [pulseShaper, catchNode, completeNode],
      [
        { id: "f", type: "tab" },
        { id: "ps", z: "f", type: "pulse-shaper", width: 5, ...SHAPER_DEFAULTS, rows: [], wires: [[], []] },
        { id: "caught", z: "f", type: "catch", scope: ["ps"], uncaught: false, wires: [["c"]] },
        { id: "completed", z: "f", type: "complete", scope: ["ps"], uncaught: false, wires: [["d"]] },
        { id: "c", z: "f", type: "helper" },
        { id: "d", z: "f", type: "helper" },
      ],
    );
    const caught: Array<Record<string, unknown>> = [];
    const done: Array<Record<string, unknown>> = [];
    helper.getNode("c").on("input", (m: Record<string, unknown>) => caught.push(m));
    helper.getNode("d").on("input", (m: Record<string, unknown>) => done.push(m));
    await send({ payload: {}, _n: 1 });
    await send({ topic: "proton_collision", _n: 2 });
    await send({ payload: {}, _n: 3 }); // the same error within the second: counted, not said again
    await advance(1000);
    await send({ payload: {}, _n: 4 });
    await settle(10);
    assert.deepEqual(
      caught.map((m) => [m._n, (m.error as { message: string }).message]),
      [
        [1, "Error: pulse-shaper: msg.topic must be the event name (a non-empty string), got undefined"],
        [4, "Error: pulse-shaper: msg.topic must be the event name (a non-empty string), got undefined (and 1 more like this in the last second)"],
      ],
    );
    assert.deepEqual(
      done.map((m) => m._n),
      [2],
      "only the message that was handled is complete",
    );
  });

  it("says in its status when a burst is too fast for the pin", async () => {
    const { r } = await deploy();
    await send({ topic: "waveform_emit", payload: { frequency_hz: 50000, amplitude: 0.5 } });
    await advance(600);
    assert.match(lastStatus(r), /^⚠ 50 kHz in, 167 Hz delivered/);
  });

  it("a bad width in the panel is refused at deploy with the rule", async () => {
    const { r } = await deploy({ width: 0 });
    await settle();
    assert.deepEqual(r.errors, ["pulse-shaper: Pulse width must be a number above 0 and up to 60000 ms, got 0"]);
    assert.equal(lastStatus(r), clip("Pulse width must be a number above 0 and up to 60000 ms, got 0"));
    await helper.unload();
    const over = await deploy({ width: 150, maxOn: 100 });
    await settle();
    assert.deepEqual(over.r.errors, ["pulse-shaper: Pulse width 150 ms is over the maximum on-time of 100 ms"]);
  });

  it("100,000 events in one second: the flow keeps running, drops are counted and the output ends low", async () => {
    const { edges, meas } = await deploy({ measureEvery: 0 });
    const node = helper.getNode("ps");
    for (let i = 0; i < 100_000; i++)
      node.receive({ topic: i % 3 ? "proton_collision" : "fusion_tick", payload: {}, sqi: { at: T0 + 50 + ((i * 7919) % 1000) } });
    await settle(20);
    await advance(3000);
    await settle(20);
    assert.ok(edges.length > 10, `fired ${edges.length} edges`);
    edges.forEach((e, i) => assert.equal(e.payload, i % 2 === 0 ? 1 : 0, "alternating"));
    assert.equal(edges[edges.length - 1]!.payload, 0, "ends low");
    await send({ measure: true });
    const p = meas[0]!.payload as Record<"queued" | "clamped" | "skipped" | "dropped" | "edges", number>;
    assert.equal(p.queued, 0);
    assert.ok(p.clamped + p.skipped + p.dropped > 0, JSON.stringify(p));
    assert.equal(p.edges, edges.length);
  });

  it("many shapers in one flow share one deploy listener (no leak warning from Node.js)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const shapers = Array.from({ length: 15 }, (_, i) => ({ id: `s${i}`, z: "f", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] }));
      await helper.load(pulseShaper, [{ id: "f", type: "tab" }, ...shapers]);
      await settle(5);
      await helper.unload();
      await settle(5);
      assert.deepEqual(
        warnings.filter((w) => w === "MaxListenersExceededWarning"),
        [],
      );
    } finally {
      process.off("warning", onWarning);
    }
    await deploy();
  });

  it("a 1 % and a 0.5 % PWM duty reach the pin as 1 and 0.5, and the SQI scope draws them as that share of on, not as 100 %", async () => {
    for (const duty of [0.01, 0.005]) {
      clock = new VirtualClock(T0);
      helper.settings({ sqiClock: clock });
      const { edges } = await deploy({ output: "pwm", maxOn: 1000, rows: [{ event: "glow", shape: "pwm", width: 900, duty }] });
      await send({ topic: "glow", payload: {} });
      await advance(1100);
      assert.equal(levels(edges), `${duty * 100}@0 0@900`, "the pin's node gets the duty in percent");
      // What the scope plugin reads of the running shaper (nodes/sqi-scope.ts).
      const trace = (helper.getNode("ps") as unknown as { sqiTrace: import("../../lib/scope").EdgeTrace }).sqiTrace.read(clock.now());
      assert.deepEqual(
        trace.edges.map(([, d]) => d),
        [duty, 0],
        "each edge carries the duty as a fraction",
      );
      // 900 ms at 1 % of the 2 s window is 0.45 % (0.225 % at 0.5 %), shown to 0.1; as 100 % on it would be 45 %.
      assert.equal(trace.duty_pct, duty === 0.01 ? 0.5 : 0.2);
      await helper.unload();
    }
  });

  it("close in the middle of a pulse hands the final 0 to the wired node at once and leaves no timer", async () => {
    const { edges } = await deploy();
    await send({ topic: "atom_spin_flip" });
    await advance(10);
    await helper.unload();
    await settle();
    assert.equal(levels(edges), "1@0 0@10");
    assert.equal(clock.pending(), 0);
    await deploy(); // afterEach unloads
  });
});

describe("pulse-shaper when only the node it drives is redeployed", () => {
  afterEach(async () => helper.unload());

  it("goes low for the redeploy and goes on pulsing into the new node", async () => {
    // On a virtual clock: the redeploy takes what real time it takes, and the 30 ms pulse cannot end by itself meanwhile.
    const clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock });
    const flow = (name: string) => [
      { id: "f", type: "tab" },
      { id: "ps", z: "f", type: "pulse-shaper", width: 30, maxOn: 100, measureEvery: 0, wires: [["out"], []] },
      { id: "out", z: "f", type: "helper", name },
    ];
    await helper.load(pulseShaper, flow("first"));
    const levels: string[] = [];
    const listen = () =>
      helper
        .getNode("out")
        .on("input", (m: Record<string, unknown>) =>
          levels.push(`${String(helper.getNode("out").name)}:${String(m.payload)}@${(m.sqi as { edge: { sent: number } }).edge.sent - T0}`),
        );
    listen();
    helper.getNode("ps").receive({ topic: "proton_collision" });
    clock.advance(10);
    await settle();
    // Mid-pulse, a deploy of modified nodes changes only the driven node.
    await helper.setFlows(flow("second"), "nodes");
    listen();
    helper.getNode("ps").receive({ topic: "proton_collision" });
    clock.advance(100);
    await settle();
    assert.deepEqual(
      levels,
      // The new pulse waits the 3 ms between edges (1000 / 500 edges/s, plus the 1 ms pin guard) and keeps its planned end.
      ["first:1@0", "first:0@10", "second:1@13", "second:0@40"],
      "cut low at 10 ms, before the old node closed (not at its planned 30 ms), then a pulse into the new one",
    );
  });
});
