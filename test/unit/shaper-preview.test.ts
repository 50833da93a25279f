// What the pulse-shaper panel says under each row: the pin's pulses in a few words and, for
// each limit that changed the plan, what it did and why, with the numbers the output enforced.
// (test/nodes/shaper-preview.test.ts proves the drawn edges are the deployed node's.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { builtInRows, previewShaper, sampleFrom, samplePayload, type PanelRow } from "../../lib/pulse/preview";
import { builtInRow } from "../../lib/pulse/shapes";
import { SHAPER_DEFAULTS } from "../helpers/flows";

async function row(config: Record<string, unknown>, sample: Record<string, unknown>, event: string): Promise<PanelRow> {
  const p = await previewShaper({ ...SHAPER_DEFAULTS, width: 5, rows: [], ...config }, sample);
  assert.deepEqual(p.errors, []);
  const r = p.rows.find((x) => x.event === event);
  assert.ok(r, `a row for ${JSON.stringify(event)}`);
  return r;
}
const said = (r: PanelRow) => [r.summary, ...r.limited];

describe("the pulse-shaper preview's words", () => {
  it("the issue's example: 10 pulses at 50 kHz and amplitude 0.8 become 8 ms on / 2 ms off at 100 Hz by max edge rate 500/s", async () => {
    assert.deepEqual(said(await row({ pinGuard: 0 }, { frequency_hz: 50000, amplitude: 0.8 }, "waveform_emit")), [
      "10 × 8 ms on / 2 ms off (100 Hz)",
      "50 kHz slowed to 100 Hz by max edge rate 500/s",
    ]);
    // With the default 1 ms pin guard the edges are 3 ms apart.
    assert.deepEqual(said(await row({}, { frequency_hz: 50000, amplitude: 0.8 }, "waveform_emit")), [
      "10 × 12 ms on / 3 ms off (67 Hz)",
      "50 kHz slowed to 67 Hz by max edge rate 500/s + pin guard 1 ms",
    ]);
  });

  it("names each limit that changed the plan", async () => {
    assert.deepEqual(said(await row({ width: 30 }, { factor_fast: 4, factor_slow: 5 }, "time_dilation")), [
      "6 × 7.5-99 ms on / 7.5-30 ms off",
      "1 pulse cut to 99 ms by max on-time 100 ms - pin guard 1 ms",
    ]);
    assert.deepEqual(said(await row({ maxDuty: 5 }, { frequency_hz: 50, amplitude: 0.5 }, "waveform_emit")), [
      "5 × 6-10 ms on / 10 ms off",
      "1 pulse cut by max duty 5% over 1000 ms",
      "5 pulses skipped: max duty 5% over 1000 ms is spent",
    ]);
    assert.deepEqual(said(await row({ minOff: 20 }, { frequency_hz: 100, amplitude: 0.6 }, "waveform_emit")), [
      "4 × 6 ms on / 24 ms off (33 Hz)",
      "6 pulses skipped: under 3 ms of each was left after min off-time 20 ms + pin guard 1 ms",
    ]);
    assert.deepEqual(said(await row({ minOff: 5 }, { frequency_hz: 100, amplitude: 0.6 }, "waveform_emit")), [
      "10 × 4-6 ms on / 6 ms off",
      "9 pulses started up to 2 ms later (keeping their end) for min off-time 5 ms + pin guard 1 ms",
    ]);
    assert.deepEqual(said(await row({ output: "pwm" }, { frequency_hz: 50000, amplitude: 0.3 }, "waveform_emit")), [
      "1 pulse, 3 ms at 30% duty",
      "50 kHz held as 30% duty: faster than max edge rate 500/s + pin guard 1 ms allows edges",
      "1 pulse widened to 3 ms, the narrowest max edge rate 500/s + pin guard 1 ms allows",
    ]);
    assert.deepEqual(said(await row({}, {}, "proton_collision")), ["1 pulse, 5 ms"], "nothing to say when the pin gets the plan");
  });

  it("other events, ignored rows and a sample the shape refuses", async () => {
    assert.deepEqual(said(await row({ unknown: "ignore" }, {}, "")), ["ignored: no pulse"]);
    assert.deepEqual(said(await row({}, {}, "")), ["1 pulse, 5 ms"]);
    const bad = await row({}, { amplitude: 2 }, "waveform_emit");
    assert.equal(bad.error, "waveform_emit: msg.payload.amplitude must be a number from 0 to 1, got 2");
    assert.deepEqual(bad.edges, []);
  });

  it("lists every built-in once, the flow's own rows after them, and other events last", async () => {
    const p = await previewShaper(
      {
        ...SHAPER_DEFAULTS,
        width: 5,
        rows: [
          { event: "laser", shape: "pulse" },
          { event: "fusion_tick", shape: "pulse", width: "7" },
        ],
      },
      {},
    );
    assert.deepEqual(
      p.rows.map((r) => [r.event, r.builtIn, r.own]),
      [
        ["proton_collision", true, false],
        ["atom_spin_flip", true, false],
        ["waveform_emit", true, false],
        ["time_dilation", true, false],
        ["fusion_tick", true, true],
        ["laser", false, true],
        ["", true, false],
      ],
    );
    assert.equal(p.rows[4]!.summary, "1 pulse, 7 ms", "the own row overrides the built-in");
  });

  it("the built-in rows the panel lists are the runtime's, the pulse width left to the node", async () => {
    for (const b of builtInRows()) {
      const runtime = builtInRow(b.event, 42)!;
      assert.deepEqual({ ...b, width: b.width ?? 42 }, { ...runtime, width: runtime.width ?? 42 });
    }
    assert.equal(builtInRows().length, 5);
  });

  it("the sample: the first value of each field in the containers, and the panel's text fields as numbers", async () => {
    assert.deepEqual(sampleFrom([{ energy_mev: 1 }, { frequency_hz: 200, amplitude: 0.5 }, { frequency_hz: 9, factor_slow: 3 }, null, "x"]), {
      frequency_hz: 200,
      amplitude: 0.5,
      factor_slow: 3,
    });
    assert.deepEqual(samplePayload({ frequency_hz: "400", amplitude: "", factor_fast: "abc" }, { amplitude: 0.8, factor_slow: 5 }), {
      frequency_hz: 400,
      amplitude: 0.8,
      factor_fast: "abc",
      factor_slow: 5,
    });
    assert.deepEqual(samplePayload("not an object"), {});
  });
});
