import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Decimator } from "../../lib/filter/rules";
import { DEFAULT_LIMITS as SHIPPED } from "../../lib/pulse/output";

/** The limits' own arithmetic, without the pin guard (its own tests are in pulse.test.ts). */
const DEFAULT_LIMITS = { ...SHIPPED, pinGuardMs: 0 };
import { TrainPlanner } from "../../lib/pulse/train";

const pulse5 = [{ start: 0, end: 5, level: 1 }];

describe("pulse trains from aggregated counts", () => {
  it("spreads a count the pin can follow evenly across its window", () => {
    const t = new TrainPlanner(DEFAULT_LIMITS, false).place(pulse5, 4, 100, 1000);
    assert.deepEqual(t.starts, [1000, 1025, 1050, 1075]);
    assert.equal(t.clamped, 0);
    assert.equal(t.intendedHz, 40);
    assert.equal(t.deliveredHz, 40);
  });

  it("clamps a rate above what the pin can do: 5 ms pulses within 50% duty over 1 s repeat every 10.1 ms at most", () => {
    const planner = new TrainPlanner(DEFAULT_LIMITS, false);
    // 1000 / 10.101 + 1 = 100 pulses of 5 ms in any 1 s window: 500 ms, exactly the budget.
    assert.ok(Math.abs(planner.minPeriod(pulse5) - 5000 / 495) < 1e-9);
    const t = planner.place(pulse5, 40, 40, 0); // 1 kHz intended
    assert.equal(t.starts.length, 4);
    assert.equal(t.clamped, 36);
    assert.equal(t.intendedHz, 1000);
    assert.equal(t.deliveredHz, 100);
  });

  it("keeps the delivered rate exact over many windows that each hold less than one pulse's room", () => {
    // 15 ms period (10 ms pulses, 5 ms off), 4 ms windows of 40 events: one pulse every 15 ms, not one per window.
    const planner = new TrainPlanner({ ...DEFAULT_LIMITS, maxDuty: 1, minOffMs: 5 }, false);
    const unit = [{ start: 0, end: 10, level: 1 }];
    let starts: number[] = [];
    let clamped = 0;
    for (let w = 0; w < 750; w++) {
      const t = planner.place(unit, 40, 4, w * 4);
      starts = starts.concat(t.starts);
      clamped += t.clamped;
    }
    assert.equal(starts.length, 200, "3000 ms / 15 ms");
    assert.ok(
      starts.every((s, i) => i === 0 || s - starts[i - 1]! >= 15 - 1e-9),
      "never closer than the output can follow",
    );
    assert.equal(clamped + starts.length, 750 * 40, "every event either a pulse or counted as clamped");
  });

  it("shares the pin between event names: a later count in the same window waits for the room left, and what does not fit is clamped", () => {
    const planner = new TrainPlanner({ ...DEFAULT_LIMITS, maxDuty: 1 }, false);
    const a = planner.place(pulse5, 2, 40, 0);
    const b = planner.place(pulse5, 2, 40, 0);
    const c = planner.place(pulse5, 2, 40, 0);
    assert.deepEqual(a.starts, [0, 20]);
    assert.deepEqual(b.starts, [27, 34], "each 5 ms pulse + 2 ms between edges (500 edges/s)");
    assert.equal(b.clamped, 0);
    assert.deepEqual(c.starts, []);
    assert.equal(c.clamped, 2);
  });

  it("event names counted in the same window: each keeps its slot while the pin can follow them all", () => {
    const planner = new TrainPlanner({ ...DEFAULT_LIMITS, maxDuty: 1 }, false);
    const [a, b] = planner.placeGroup(
      [
        { name: "a", unit: pulse5, count: 2 },
        { name: "b", unit: pulse5, count: 2 },
      ],
      40,
      0,
    );
    assert.deepEqual(a!.starts, [0, 20]);
    assert.deepEqual(b!.starts, [7, 27], "b's slots 0 and 20 wait for a's pulse + 2 ms");
    assert.equal(a!.clamped + b!.clamped, 0);
  });

  it("a saturated pin is shared in proportion to the counts, over many windows, not taken by the first name", () => {
    // 5 ms pulses every 10.1 ms at most (10 ms ones every 20.4 ms): about 2 per 20 ms window, asked for 500.
    const planner = new TrainPlanner(DEFAULT_LIMITS, false);
    const pulse10 = [{ start: 0, end: 10, level: 1 }];
    const got = { a: 0, b: 0, c: 0 };
    let clamped = 0;
    const all: number[] = [];
    for (let w = 0; w < 500; w++) {
      const items = [
        { name: "a", unit: pulse5, count: 100 },
        { name: "b", unit: pulse5, count: 300 },
        { name: "c", unit: pulse10, count: 100 },
      ];
      const trains = planner.placeGroup(items, 20, w * 20);
      trains.forEach((t, i) => {
        got[items[i]!.name as "a" | "b" | "c"] += t.starts.length;
        clamped += t.clamped;
        all.push(...t.starts);
      });
    }
    const delivered = got.a + got.b + got.c;
    assert.ok(delivered >= 750 && delivered <= 1000, `75-100 pulses/s for 10 s: ${delivered}`);
    assert.equal(delivered + clamped, 500 * 500, "every event a pulse or counted as clamped");
    // shares 1 : 3 : 1
    assert.ok(Math.abs(got.a - delivered / 5) <= 2 && Math.abs(got.b - (3 * delivered) / 5) <= 2 && Math.abs(got.c - delivered / 5) <= 2, JSON.stringify(got));
    all.sort((x, y) => x - y);
    assert.ok(
      all.every((t, i) => i === 0 || t - all[i - 1]! >= 5000 / 495 - 1e-9),
      "never closer than the output can follow",
    );
    // the same counts placed one name after the other, as separate messages would be: the first name takes the pin
    const naive = new TrainPlanner(DEFAULT_LIMITS, false);
    let first = 0;
    let rest = 0;
    for (let w = 0; w < 500; w++) {
      first += naive.place(pulse5, 100, 20, w * 20).starts.length;
      rest += naive.place(pulse5, 300, 20, w * 20).starts.length + naive.place(pulse10, 100, 20, w * 20).starts.length;
    }
    assert.ok(first > 900 && rest < 100, `one by one: first ${first}, the others ${rest}`);
  });

  it("on a PWM output a rate becomes a duty held for the window: rate x on-time, capped at the maximum duty", () => {
    const planner = new TrainPlanner(DEFAULT_LIMITS, true);
    const unit = [{ start: 0, end: 5, level: 100 }];
    const low = planner.place(unit, 1, 20, 0); // 50 Hz x 5 ms = 25 %
    assert.deepEqual(low.hold, { start: 0, end: 20, level: 25 });
    assert.equal(low.clamped, 0);
    const high = planner.place(unit, 20, 20, 20); // 1 kHz x 5 ms = 500 %, capped at 50 %
    assert.deepEqual(high.hold, { start: 20, end: 40, level: 50 });
    assert.equal(high.duty, 50);
    assert.equal(high.clamped, 18);
    assert.equal(high.deliveredHz, 100);
  });
});

describe("decimation of counts", () => {
  it("keeps the events of a count that fall on every Nth place, exactly as one by one would", () => {
    const byCount = new Decimator(10);
    const oneByOne = new Decimator(10);
    const counts = [25, 25, 3, 7, 1, 40, 9];
    const kept = counts.map((c) => byCount.take(c));
    const single = counts.map((c) => Array.from({ length: c }, () => oneByOne.pass()).filter(Boolean).length);
    assert.deepEqual(kept, single);
    assert.deepEqual(kept.slice(0, 2), [3, 2]);
    assert.equal(
      kept.reduce((a, b) => a + b),
      11,
      "110 events, every 10th",
    );
  });
});
