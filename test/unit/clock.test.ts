import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriftClock, driftOffset, driftRate, RealClock, VirtualClock } from "../../lib/clock";

describe("VirtualClock", () => {
  it("fires timers in due order, ties in the order they were set, and only when time reaches them", () => {
    const c = new VirtualClock(1000);
    const fired: string[] = [];
    c.setTimer(() => fired.push("b@20"), 20);
    c.setTimer(() => fired.push("a@10"), 10);
    c.setTimer(() => fired.push("c@20"), 20);
    c.advance(9);
    assert.deepEqual(fired, []);
    c.advance(1);
    assert.deepEqual(fired, ["a@10"]);
    c.advance(100);
    assert.deepEqual(fired, ["a@10", "b@20", "c@20"]);
    assert.equal(c.now(), 1110);
  });

  it("clears timers and reports what is pending", () => {
    const c = new VirtualClock();
    const h = c.setTimer(() => assert.fail("cleared timer fired"), 5);
    c.setTimer(() => undefined, 6);
    assert.equal(c.pending(), 2);
    c.clearTimer(h);
    assert.equal(c.pending(), 1);
    c.runAll();
    assert.equal(c.pending(), 0);
  });

  it("makes timers late by the lateness function, never early", () => {
    const c = new VirtualClock(0, () => 3);
    let at = -1;
    c.setTimer(() => (at = c.now()), 10);
    c.runAll();
    assert.equal(at, 13);
  });
});

describe("RealClock and DriftClock", () => {
  it("reads epoch milliseconds close to Date.now and fires a timer", async () => {
    const c = new RealClock();
    assert.ok(Math.abs(c.now() - Date.now()) < 50, "real clock within 50 ms of Date.now");
    await new Promise<void>((resolve) => c.setTimer(resolve, 1));
    const h = c.setTimer(() => assert.fail("cleared"), 5);
    assert.equal(c.pending(), 1);
    c.clearTimer(h);
    assert.equal(c.pending(), 0);
  });

  it("shifts time by the offset, as a Pi with a wrong clock would see it", () => {
    const base = new VirtualClock(5000);
    const c = new DriftClock(base, { offsetMs: -150 });
    assert.equal(c.now(), 4850);
  });

  it("runs fast by its ppm, and its timers fire by its own time", () => {
    const base = new VirtualClock(0);
    const c = new DriftClock(base, { ppm: 100 });
    base.advance(60_000);
    assert.ok(Math.abs(c.now() - 60_006) < 1e-9, `a +100 ppm clock gains 6 ms a minute: ${c.now()}`);
    let trueAt = NaN;
    let ownAt = NaN;
    c.setTimer(() => {
      trueAt = base.now();
      ownAt = c.now();
    }, 10_000);
    base.runAll();
    assert.ok(Math.abs(trueAt - 70_000 + 1) < 1e-3, `a 10 s timer on a +100 ppm clock fires after 9,999 true ms: ${trueAt}`);
    assert.ok(Math.abs(ownAt - (60_006 + 10_000)) < 1e-3, `and reads 10 s later on its own clock: ${ownAt}`);
  });

  it("wanders, slews and steps: the offset is the integral of the rate", () => {
    const d = {
      ppm: -20,
      wanderPpm: 5,
      wanderPeriodS: 600,
      wanderPhase: 1,
      slews: [{ atMs: 100_000, forMs: 10_000, ppm: 500 }],
      steps: [{ atMs: 200_000, byMs: 3 }],
    };
    for (const t of [0, 50_000, 105_000, 150_000, 300_000, 1_000_000]) {
      const h = 1;
      const numeric = ((driftOffset(d, t + h) - driftOffset(d, t - h)) / (2 * h)) * 1e6;
      assert.ok(Math.abs(numeric - driftRate(d, t)) < 1e-3, `at ${t}: d(offset)/dt ${numeric} ppm, rate ${driftRate(d, t)} ppm`);
    }
    assert.ok(Math.abs(driftRate(d, 150_000 - 37_500) + 20 - 5 * Math.sin((2 * Math.PI * 112_500) / 600_000 + 1)) < 1e-9);
    assert.ok(driftRate(d, 105_000) > 400, "a slew of 500 ppm for 10 s");
    assert.ok(Math.abs(driftOffset(d, 110_000) - driftOffset(d, 100_000) - (5 + 10_000 * -20e-6)) < 0.1, "the slew moves the clock 5 ms");
    assert.ok(Math.abs(driftOffset(d, 200_000) - driftOffset(d, 199_999.999) - 3) < 0.01, "a step of 3 ms");
    const c = new DriftClock(new VirtualClock(1_000_000), d);
    assert.equal(c.errorAt(1_000_000 + 150_000), driftOffset(d, 150_000), "the error at any true instant is known");
  });
});
