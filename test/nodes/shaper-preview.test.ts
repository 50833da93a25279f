// The pulse-shaper panel's preview is the runtime's own plan: for every built-in shape and a
// table of limit cases, the edges the panel draws (POST /pulse-shaper/preview, as the editor
// asks for them) equal the edges the deployed node hands to the pin's node for the same event
// on a virtual clock. The fire button sends one event of a row through the real node.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { BUILT_IN_EVENTS, samplePayload, type PanelRow, type ShaperPreview } from "../../lib/pulse/preview";
import { T0 } from "../helpers/containers";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { helper, settle } from "../helpers/red";
import type { ShaperNode } from "../../nodes/pulse-shaper";

const pulseShaper = require("../../nodes/pulse-shaper");

/** The bundled containers' values, as the panel's sample defaults to. */
const STAR = { frequency_hz: 50000, amplitude: 0.8, factor_fast: 1000000, factor_slow: 5 };

interface Case {
  name: string;
  config: Record<string, unknown>;
  sample: Record<string, unknown>;
  /** The event names to compare; every built-in and an other event when absent. */
  events?: string[];
}

const CASES: Case[] = [
  { name: "the defaults with the bundled sample", config: {}, sample: {} },
  { name: "the star core's payloads, digital", config: {}, sample: STAR },
  { name: "a 30 ms width: time_dilation's slow pulse (150 ms) over max on-time", config: { width: 30 }, sample: { factor_fast: 4, factor_slow: 5 } },
  { name: "max edge rate 100/s slows every burst", config: { maxRate: 100 }, sample: { frequency_hz: 400, amplitude: 0.5 } },
  { name: "max duty 5 % over 1 s cuts and skips", config: { maxDuty: 5 }, sample: { frequency_hz: 50, amplitude: 0.5 } },
  { name: "min off-time 20 ms moves rising edges", config: { minOff: 20 }, sample: { frequency_hz: 100, amplitude: 0.6 } },
  { name: "no pin guard", config: { pinGuard: 0 }, sample: STAR },
  { name: "a PWM output", config: { output: "pwm" }, sample: { frequency_hz: 50000, amplitude: 0.3 } },
  { name: "timed pulses for pulse-out", config: { output: "pulses" }, sample: STAR },
  {
    name: "own rows: an edited built-in, a burst of 40 at 1 kHz, a PWM level, an ignored name",
    config: {
      rows: [
        { event: "waveform_emit", shape: "burst", width: "", count: "40", frequency: "", duty: "" },
        { event: "laser", shape: "burst", width: "", count: "40", frequency: "1000", duty: "0.5" },
        { event: "glow", shape: "pwm", width: "60", count: "", frequency: "", duty: "" },
        { event: "noise", shape: "ignore", width: "", count: "", frequency: "", duty: "" },
      ],
    },
    sample: { frequency_hz: 2000, amplitude: 0.25 },
    events: ["waveform_emit", "laser", "glow", "noise"],
  },
  { name: "other events ignored", config: { unknown: "ignore" }, sample: {}, events: ["other_event"] },
  { name: "amplitude 0 and 1", config: {}, sample: { amplitude: 1, frequency_hz: 100 }, events: ["waveform_emit", "time_dilation"] },
];

let clock: VirtualClock;

/** The node's edges for one event: [ms after the event, level], as the pin's node gets them. */
async function runtimeEdges(c: Case, event: string): Promise<Array<[number, number]>> {
  await helper.load(pulseShaper, [
    { id: "f", type: "tab" },
    { id: "ps", z: "f", type: "pulse-shaper", width: 5, ...SHAPER_DEFAULTS, rows: [], ...c.config, wires: [["pin"], []] },
    { id: "pin", z: "f", type: "helper" },
  ]);
  const got: Array<[number, number]> = [];
  const t0 = clock.now();
  helper.getNode("pin").on("input", (m: { payload: unknown; sqi: { edge: { sent: number } } }) => {
    const t = m.sqi.edge.sent - t0;
    if (typeof m.payload === "object" && m.payload !== null) {
      // Timed pulses: pulse-out gets the pulse whole ({on_ms}) and times the fall itself.
      const on = (m.payload as { on_ms: number }).on_ms;
      got.push([t, 1], [t + on, 0]);
    } else got.push([t, Number(m.payload)]);
  });
  helper.getNode("ps").receive({ topic: event, payload: samplePayload(c.sample, STAR) });
  await settle();
  for (let i = 0; i < 100 && clock.pending() > 0; i++) {
    clock.advance(100);
    await settle(1);
  }
  // What the node sends when it closes (a "low now" to pulse-out) is not the event's.
  const fired = got.slice();
  await helper.unload();
  return fired;
}

/** To the µs: the node's times are epoch ms (steps of 0.24 µs at 1.7e12), the preview's count from 0. */
const round = (v: number) => Math.round(v * 1000) / 1000;

describe("the pulse-shaper panel's preview", () => {
  beforeEach(() => {
    clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock });
  });
  afterEach(async () => helper.unload());

  for (const c of CASES) {
    it(`draws the edges the node hands on: ${c.name}`, async () => {
      await helper.load(pulseShaper, [{ id: "f", type: "tab" }]);
      const res = await helper
        .request()
        .post("/pulse-shaper/preview")
        .send({ config: { width: 5, ...SHAPER_DEFAULTS, rows: [], ...c.config }, sample: c.sample });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const preview = res.body as ShaperPreview & { sample: Record<string, number> };
      assert.deepEqual(preview.errors, []);
      assert.deepEqual(preview.sample, STAR, "the sample defaults are the bundled containers' values, the star core's first");
      await helper.unload();
      const events = c.events ?? [...BUILT_IN_EVENTS, "other_event"];
      let compared = 0;
      for (const event of events) {
        const row = preview.rows.find((r: PanelRow) => r.event === (event === "other_event" ? "" : event));
        assert.ok(row, `a row for ${event}`);
        const drawn = row.edges.map((e) => [round(e.t), e.level]);
        const fired = (await runtimeEdges(c, event)).map(([t, l]) => [round(t), l]);
        assert.deepEqual(drawn, fired, `${event}: the preview's edges are the node's (${row.summary}; ${row.limited.join("; ")})`);
        compared += drawn.length;
      }
      assert.ok(c.events?.every((e) => e === "noise" || e === "other_event") || compared > 0, "some edges were compared");
    });
  }

  it("a width over the maximum on-time: drawn as the limit cuts it, and said to be refused by the node", async () => {
    await helper.load(pulseShaper, [{ id: "f", type: "tab" }]);
    const res = await helper
      .request()
      .post("/pulse-shaper/preview")
      .send({ config: { width: 5, ...SHAPER_DEFAULTS, rows: [{ event: "atom_spin_flip", shape: "pulse", width: "150" }] }, sample: {} });
    const row = (res.body as ShaperPreview).rows.find((r) => r.event === "atom_spin_flip")!;
    assert.deepEqual((res.body as ShaperPreview).refused, ["Shape row 1 (atom_spin_flip): width 150 ms is over the maximum on-time of 100 ms"]);
    assert.deepEqual(
      row.edges.map((e) => [e.t, e.level]),
      [
        [0, 1],
        [99, 0],
      ],
    );
    assert.deepEqual(row.planned, [{ start: 0, end: 150, level: 1 }]);
    assert.deepEqual(row.limited, ["1 pulse cut to 99 ms by max on-time 100 ms - pin guard 1 ms"]);
  });

  it("a bad body or a bad setting is an answer with the reason, never a crash", async () => {
    await helper.load(pulseShaper, [{ id: "f", type: "tab" }]);
    let res = await helper
      .request()
      .post("/pulse-shaper/preview")
      .send({ config: [1, 2] });
    assert.equal(res.status, 400);
    assert.match((res.body as { error: string }).error, /the body must be \{config/);
    res = await helper
      .request()
      .post("/pulse-shaper/preview")
      .send({ config: { ...SHAPER_DEFAULTS, width: "abc", maxRate: -1, rows: "no" } });
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as ShaperPreview).errors, [
      'Pulse width must be a number above 0 and up to 60000 ms, got "abc"',
      "Maximum edge rate must be a number above 0 and up to 10000 edges/s, got -1",
    ]);
    res = await helper
      .request()
      .post("/pulse-shaper/preview")
      .send({ config: { ...SHAPER_DEFAULTS, width: 5, rows: [{ event: "waveform_emit", shape: "burst", count: "10000" }] }, sample: { frequency_hz: 0.1 } });
    const big = (res.body as ShaperPreview).rows.find((r) => r.event === "waveform_emit")!;
    // A 10,000-pulse burst is simulated as far as it is drawn, ending low, and says so.
    assert.equal(big.truncated, true);
    assert.equal(big.edges.length, 1000, "drawn up to 1,000 edges");
    assert.equal(big.edges.at(-1)!.level, 0);
    assert.match(big.summary, /^the first 500 pulses: 500 × .* \(the rest not drawn\)$/);
  });

  it("the fire button sends one event of the chosen row, with the panel's sample, through the deployed node", async () => {
    await helper.load(pulseShaper, [
      { id: "f", type: "tab" },
      { id: "ps", z: "f", type: "pulse-shaper", width: 5, ...SHAPER_DEFAULTS, rows: [], sample: { amplitude: "1" }, wires: [["pin"], []] },
      { id: "pin", z: "f", type: "helper" },
    ]);
    const got: Array<[number, unknown]> = [];
    helper.getNode("pin").on("input", (m: { payload: unknown; topic: string }) => got.push([clock.now() - T0, m.payload]));
    let res = await helper.request().post("/pulse-shaper/ps/fire").send({ event: "waveform_emit" });
    assert.equal(res.status, 200);
    await settle();
    clock.advance(1000);
    await settle();
    // amplitude 1: one long pulse; the sample's 50 kHz from the bundled containers is slowed to the edge rate.
    assert.deepEqual(
      got.map(([, p]) => p),
      [1, 0],
    );
    // The SQI scope draws it: the node's own trace holds both edges.
    const trace = (helper.getNode("ps") as unknown as ShaperNode).sqiTrace!.read(clock.now());
    assert.deepEqual(
      trace.edges.map(([, duty]) => duty),
      [1, 0],
    );
    res = await helper.request().post("/pulse-shaper/nope/fire").send({ event: "x" });
    assert.equal(res.status, 404);
    res = await helper
      .request()
      .post("/pulse-shaper/ps/fire")
      .send({ event: "x".repeat(201) });
    assert.equal(res.status, 400);
    res = await helper
      .request()
      .post("/pulse-shaper/ps/fire")
      .send({ event: { $gt: 1 } });
    assert.equal(res.status, 400);
  });
});
