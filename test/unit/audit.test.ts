import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { auditPin, limitsFromFlow, parsePinLog, type PinRecord } from "../../lib/pulse/audit";
import { DEFAULT_LIMITS } from "../../lib/pulse/output";

const L = { ...DEFAULT_LIMITS }; // min off 1 ms, edges >= 2 ms apart, max on 100 ms, 50 % over 1 s
/** The allowance, stated here rather than read from the code under test. */
const ALLOWANCE = { jitterMs: 0.5, share: 0.01, onMs: 0 };

/** "1@0 0@5 ..." -> pin records on pin 18, after an "out" setup at -100. */
function log(edges: string): PinRecord[] {
  return [
    { t: -100, pin: 18, value: 0, event: "out" },
    ...edges.split(" ").map((e) => ({ t: Number(e.split("@")[1]), pin: 18, value: Number(e.split("@")[0]) })),
  ];
}

/** n pulses of `on` ms every `period` ms from t0. */
function train(n: number, on: number, period: number, t0 = 0): string {
  return Array.from({ length: n }, (_, k) => `1@${t0 + k * period} 0@${t0 + k * period + on}`).join(" ");
}

describe("pin-log auditor", () => {
  it("a clean train: distributions, no violation", () => {
    const a = auditPin(18, log(train(200, 5, 20)), L, ALLOWANCE);
    assert.equal(a.pulses, 200);
    assert.deepEqual([a.widthMs!.median, a.offMs!.min, a.longestOn!.ms], [5, 15, 5]);
    assert.equal(a.maxDuty!.duty, 0.25);
    assert.deepEqual(a.violations, []);
  });

  it("the demo's bug: 10 pulses of 10.1 ms on / 0.1 ms off join into one 101 ms on-stretch, and every gap is short", () => {
    const a = auditPin(18, log(train(10, 10.1, 10.2)), L, ALLOWANCE);
    assert.equal(a.longestOn!.pulses, 10);
    assert.ok(Math.abs(a.longestOn!.ms - 101.9) < 1e-6);
    assert.equal(a.off.beyond, 9);
    assert.deepEqual(a.violations, [
      "9 edge gaps under 2 ms by more than the 0.5 ms allowance (shortest 0.1 ms)",
      "9 off-times under 1 ms by more than the 0.5 ms allowance (shortest 0.1 ms)",
      "1 on-stretches over the maximum on-time of 100 ms (longest 101.9 ms of 10 pulses)",
    ]);
  });

  it("tolerates a gap short by at most 0.5 ms on at most 1 % of the gaps, and no more", () => {
    const ok = train(100, 5, 20) + " " + "1@2000 0@2005 1@2006.6 0@2011.6"; // one gap of 1.6 ms against 2: within
    assert.deepEqual(auditPin(18, log(ok), L, ALLOWANCE).violations, []);
    const twice = train(50, 5, 20) + " 1@1000 0@1005 1@1006.6 0@1011.6 1@1100 0@1105 1@1106.6 0@1111.6";
    assert.match(
      auditPin(18, log(twice), L, ALLOWANCE).violations.join(),
      /2 of 107 edge gaps under 2 ms within the jitter allowance, more than the 1 \(1%\) allowed/,
    );
    const deep = train(100, 5, 20) + " 1@2000 0@2005 1@2006.4 0@2011.4"; // 1.4 ms: short by 0.6
    assert.match(auditPin(18, log(deep), L, ALLOWANCE).violations.join(), /1 edge gaps under 2 ms by more than the 0.5 ms allowance/);
  });

  it("no allowance on the on-time: 100.01 ms is over 100", () => {
    assert.deepEqual(auditPin(18, log("1@0 0@100"), L, ALLOWANCE).violations, []);
    assert.match(auditPin(18, log("1@0 0@100.01"), L, ALLOWANCE).violations.join(), /over the maximum on-time of 100 ms/);
    assert.deepEqual(auditPin(18, log("1@0 0@101"), L, { ...ALLOWANCE, onMs: 2 }).violations, [], "a test may state an on allowance");
  });

  it("finds the highest duty over any window", () => {
    // 60 ms on, 40 off: 60 % in every 1 s window.
    const a = auditPin(18, log(train(30, 60, 100)), L, ALLOWANCE);
    assert.equal(a.maxDuty!.duty, 0.6);
    assert.match(a.violations.join(), /duty reached 60% over a 1000 ms window, over the maximum of 50%/);
    // Five pulses of 99-100 ms 3 ms apart, then nothing: 496 ms in the window that starts at the first.
    const block = auditPin(18, log("1@0 0@99 1@102 0@201 1@204 0@303 1@306 0@405 1@408 0@508"), L, ALLOWANCE);
    assert.deepEqual([block.maxDuty!.duty, block.maxDuty!.from], [0.496, 0]);
    assert.deepEqual(block.violations, []);
  });

  it("weights a PWM pin's on-time by its duty", () => {
    const recs: PinRecord[] = [{ t: -1, pin: 12, value: 0, event: "pwm" }];
    for (let k = 0; k < 20; k++) recs.push({ t: k * 100, pin: 12, value: 80 }, { t: k * 100 + 90, pin: 12, value: 0 });
    const a = auditPin(12, recs, L, ALLOWANCE);
    assert.equal(a.pwm, true);
    assert.equal(a.maxDuty!.duty, 0.72, "90 ms at 80 % in every 100 ms");
  });

  it("a pin released high ends its pulse; torn and foreign lines are counted, not parsed", () => {
    const { records, malformed } = parsePinLog(
      '{"t": 1, "pin": 4, "value": 1}\n{"t": 2, "pin": 4, "val\n[1,2]\n{"t": 9, "pin": 4, "value": null, "event": "released"}\n',
    );
    assert.equal(malformed, 2);
    const a = auditPin(4, records, L, ALLOWANCE);
    assert.deepEqual([a.pulses, a.widthMs!.max], [1, 8]);
  });

  it("reads each pin's limits from the pulse-shapers wired to its rpi-gpio out (BCM or header numbering), the strictest when several", () => {
    const flow = [
      { id: "a", type: "pulse-shaper", name: "coil", maxOn: 80, maxDuty: 40, minOff: 2, maxRate: 250, wires: [["p18"], []] },
      { id: "b", type: "pulse-shaper", maxOn: 50, wires: [["p18", "p12"], []] },
      { id: "p18", type: "rpi-gpio out", pin: "18", bcm: true },
      { id: "p12", type: "rpi-gpio out", pin: "32" }, // header pin 32 is BCM 12
      { id: "c", type: "pulse-shaper", maxOn: "soup", wires: [["p18"]] },
    ];
    const { pins, problems } = limitsFromFlow(flow);
    assert.deepEqual(problems, ['pulse-shaper c: Maximum on-time must be a number above 0 and up to 60000 ms, got "soup"']);
    assert.deepEqual(pins.get(18), {
      pin: 18,
      limits: { minOffMs: 2, maxEdgeRate: 250, maxOnMs: 50, maxDuty: 0.4, dutyWindowMs: 1000 },
      shapers: ["coil", "pulse-shaper b"],
    });
    assert.deepEqual(pins.get(12)?.limits.maxOnMs, 50);
  });
});
