// msg.sqi, the envelope (lib/sqi.ts): built from a glyph, read and checked, scaled, and carried
// through a bus frame, with count and rate_hz always in step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventFrame } from "../../lib/bus/frames";
import { eventsIn, fromFrame, fromGlyph, readCount, scaleCount, sqiOf, toFrameFields, type Sqi } from "../../lib/sqi";

const glyph = { container: "star", tick: 3, loop: 1, seq: 42, at: 1000, event: "proton_collision", payload: {} };

describe("msg.sqi (lib/sqi.ts)", () => {
  it("is built from a glyph: one event, one clone's event, or a counted message with its rate", () => {
    assert.deepEqual(fromGlyph(glyph, 1), { container: "star", tick: 3, loop: 1, seq: 42, at: 1000 });
    assert.deepEqual(fromGlyph({ ...glyph, clone: 7 }, 10), { container: "star", tick: 3, loop: 1, seq: 42, at: 1000, clone: 7 });
    assert.deepEqual(fromGlyph({ ...glyph, count: 20, window_ms: 20 }, 1000), {
      container: "star",
      tick: 3,
      loop: 1,
      seq: 42,
      at: 1000,
      count: 20,
      window_ms: 20,
      rate_hz: 1000,
      clones: 1000,
    });
  });

  it("is read only from an object: anything else another node put in msg.sqi is no envelope", () => {
    for (const sqi of [undefined, null, 3, "x", [1, 2]]) assert.equal(sqiOf({ sqi }), undefined, JSON.stringify(sqi));
    assert.deepEqual(sqiOf({ sqi: { at: 5 } }), { at: 5 });
  });

  it("checks a counted message's count and window, with the reason when they are wrong", () => {
    assert.equal(readCount(undefined), undefined);
    assert.equal(readCount({ at: 1 }), undefined, "one event");
    assert.deepEqual(readCount({ count: 4, window_ms: 20 }), { count: 4, windowMs: 20 });
    assert.equal(readCount({ count: 0, window_ms: 20 }), "msg.sqi.count must be a positive whole number of events, got 0");
    assert.equal(readCount({ count: 2.5, window_ms: 20 }), "msg.sqi.count must be a positive whole number of events, got 2.5");
    assert.equal(
      readCount({ count: 3 }),
      "msg.sqi.window_ms must be the frame's length in ms (above 0, at most one hour) when msg.sqi.count is set, got undefined",
    );
    assert.equal(
      readCount({ count: 3, window_ms: 3_600_001 }),
      "msg.sqi.window_ms must be the frame's length in ms (above 0, at most one hour) when msg.sqi.count is set, got 3600001",
    );
    assert.deepEqual([eventsIn(undefined), eventsIn({ count: 20 }), eventsIn({ count: -1 }), eventsIn({ count: "20" } as unknown as Sqi)], [1, 20, 1, 1]);
  });

  it("scales a count with its rate (decimation), so rate_hz never goes stale", () => {
    const sqi = fromGlyph({ ...glyph, count: 20, window_ms: 20 }, 1000);
    scaleCount(sqi, 1);
    assert.deepEqual([sqi.count, sqi.rate_hz], [1, 50]);
    const noWindow = { count: 20, rate_hz: 7 };
    scaleCount(noWindow, 5);
    assert.deepEqual(noWindow, { count: 5 }, "no window: no rate to keep, so none is left stale");
  });

  it("crosses the bus: the frame carries at, container, tick, loop, count and window_ms; the listener's envelope gets its seq and rate back", () => {
    const sqi = { ...fromGlyph({ ...glyph, count: 20, window_ms: 20 }, 1000), flow_own: "kept local" };
    assert.deepEqual(toFrameFields(sqi), { at: 1000, container: "star", tick: 3, loop: 1, count: 20, window_ms: 20 });
    const frame = eventFrame("proton_collision", { mev: 14 }, sqi, 9);
    assert.deepEqual(frame, {
      event: "proton_collision",
      payload: { mev: 14 },
      seq: 9,
      at: 1000,
      container: "star",
      tick: 3,
      loop: 1,
      count: 20,
      window_ms: 20,
    });
    assert.deepEqual(fromFrame(frame), { container: "star", tick: 3, loop: 1, seq: 9, count: 20, window_ms: 20, rate_hz: 1000 });
    assert.deepEqual(fromFrame({ seq: 1 }), { seq: 1 }, "a plain event: only its seq");
  });
});
