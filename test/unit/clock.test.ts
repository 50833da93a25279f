import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OffsetClock, RealClock, VirtualClock } from "../../lib/clock";

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

describe("RealClock and OffsetClock", () => {
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
    const c = new OffsetClock(base, -150);
    assert.equal(c.now(), 4850);
  });
});
