import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { Slices } from "../../lib/bus/slices";

describe("listener slices: a big frame goes on a turn at a time", () => {
  it("hands on the first slice at once and the rest one slice per turn, in order", () => {
    const clock = new VirtualClock(0);
    const got: number[] = [];
    const turns: number[] = [];
    const s = new Slices<number>(clock, (n) => got.push(n), 100, 20_000);
    s.push(Array.from({ length: 250 }, (_, i) => i));
    turns.push(got.length);
    for (let k = 0; k < 3; k++) {
      clock.runAll(1); // one turn: the deferred slice runs
      turns.push(got.length);
    }
    assert.deepEqual(turns, [100, 200, 250, 250]);
    assert.deepEqual(
      got,
      Array.from({ length: 250 }, (_, i) => i),
    );
  });

  it("a small frame goes at once, as before", () => {
    const clock = new VirtualClock(0);
    const got: string[] = [];
    new Slices<string>(clock, (x) => got.push(x)).push(["a", "b"]);
    assert.deepEqual(got, ["a", "b"]);
    assert.equal(clock.pending(), 0, "nothing deferred");
  });

  it("bounds what waits and counts what it drops", () => {
    const clock = new VirtualClock(0);
    let n = 0;
    const s = new Slices<number>(clock, () => n++, 100, 1000);
    for (let k = 0; k < 5; k++) s.push(Array.from({ length: 400 }, () => 0)); // 2,000 in one turn
    assert.equal(s.waiting, 1000);
    assert.equal(s.dropped, 900, "100 went at once, 1,000 wait, 900 dropped");
    clock.runAll();
    assert.equal(n, 1100);
    assert.equal(s.waiting, 0);
  });
});
