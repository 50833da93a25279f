import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { parseShaperSettings } from "../../lib/pulse/config";
import { MAX_AHEAD_MS, Shaper } from "../../lib/pulse/shaper";
import { STATUS_MAX_CHARS } from "../../lib/status-line";
import { T0 } from "../helpers/containers";

/** A shaper on virtual time, with its edges as "level@ms" (ms after T0) and its failures. */
function rig(def: Record<string, unknown> = {}) {
  const clock = new VirtualClock(T0);
  const parsed = parseShaperSettings({ width: 5, pinGuard: 0, measureEvery: 0, ...def });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  const edges: string[] = [];
  let changed = 0;
  const failures: string[] = [];
  const shaper = new Shaper(clock, parsed.settings, {
    edge: (e) => edges.push(`${e.level}@${Math.round((e.sent - T0) * 1000) / 1000}`),
    changed: () => changed++,
    failed: (e) => failures.push(e.message),
  });
  return { clock, shaper, edges, failures, changes: () => changed };
}

describe("lib/pulse/shaper: what a pulse-shaper decides, on virtual time", () => {
  it("fires an event at its msg.sqi.at, and the status says the rate and duty of the last second", () => {
    const r = rig();
    assert.equal(r.shaper.ready().text, "ready · 5 ms pulses · digital");
    assert.equal(r.shaper.take("proton_collision", {}, { at: T0 + 10 }), undefined);
    assert.ok(r.changes() > 0, "the status is asked to redraw");
    r.clock.advance(100);
    assert.deepEqual(r.edges, ["1@10", "0@15"]);
    const s = r.shaper.status();
    assert.equal(s.status.fill, "green");
    assert.match(s.status.text, /^10 p\/s · duty 0\.5% · 1 pulses$/);
    assert.ok(s.again, "drawn again while pulses go on");
    r.clock.advance(2000);
    r.shaper.status();
    assert.equal(r.shaper.status().again, false, "idle: no more redraws");
  });

  it("refuses an event due more than a minute ahead, with the reason, and counts it", () => {
    const r = rig();
    const error = r.shaper.take("proton_collision", {}, { at: T0 + MAX_AHEAD_MS + 5000 });
    assert.equal(error, "proton_collision: msg.sqi.at is 65.0 s ahead (more than 60 s): check the clocks");
    r.clock.advance(70_000);
    assert.deepEqual(r.edges, []);
    assert.equal(r.shaper.eventCounts.rejected, 1);
    assert.match(r.shaper.status().status.text, /rejected 1/);
  });

  it("late events: fired now under 'fire', dropped and counted under 'drop'; a 2 ms slip is not late", () => {
    const fire = rig();
    fire.clock.advance(50);
    fire.shaper.take("a", {}, { at: T0 + 10 });
    fire.shaper.take("b", {}, { at: T0 + 48 });
    fire.clock.advance(100);
    assert.deepEqual(fire.edges.slice(0, 2), ["1@50", "0@55"], "the late one at once");
    assert.equal(fire.shaper.eventCounts.late, 1, "48 is within the tolerance at 50");
    const drop = rig({ late: "drop" });
    drop.clock.advance(50);
    drop.shaper.take("a", {}, { at: T0 + 10 });
    drop.clock.advance(100);
    assert.deepEqual(drop.edges, []);
    assert.deepEqual([drop.shaper.eventCounts.late, drop.shaper.eventCounts.late_dropped], [1, 1]);
  });

  it("refuses a counted message whose count or window is wrong, naming the field", () => {
    const r = rig();
    assert.match(r.shaper.take("a", {}, { count: 2.5, window_ms: 20 }) ?? "", /^a: msg\.sqi\.count must be a positive whole number of events, got 2\.5$/);
    assert.match(r.shaper.take("a", {}, { count: 2, window_ms: -1 }) ?? "", /^a: msg\.sqi\.window_ms must be/);
    assert.equal(r.shaper.eventCounts.rejected, 2);
  });

  it("places the counted messages of one frame together: two names share the pin by their counts", () => {
    const r = rig({ maxRate: 1000 });
    r.shaper.take("a", {}, { at: T0 + 10, count: 3, window_ms: 100 });
    r.shaper.take("b", {}, { at: T0 + 10, count: 1, window_ms: 100 });
    assert.equal(r.edges.length, 0, "nothing placed before the turn ends");
    r.clock.advance(200);
    assert.equal(r.edges.filter((e) => e.startsWith("1@")).length, 4, "4 pulses for 4 events");
    assert.equal(r.shaper.eventCounts.train_events, 4);
    const m = r.shaper.report();
    assert.equal(m.train_intended_hz, 20, "4 events in the 200 ms since the start");
    assert.equal(m.train_delivered_hz, 20);
  });

  it("a saturated frame (more than the pin can follow) is the news in the status", () => {
    const r = rig({ maxRate: 100 });
    r.shaper.take("a", {}, { at: T0 + 10, count: 1000, window_ms: 1000 });
    r.clock.advance(500);
    const s = r.shaper.status().status;
    assert.equal(s.fill, "yellow");
    assert.match(s.text, /^⚠ 2\.0 kHz in, \d+ Hz delivered/);
    assert.ok([...s.text].length <= STATUS_MAX_CHARS);
  });

  it("stop: what is queued is dropped and the output is low, and the shaper goes on", () => {
    const r = rig();
    r.shaper.take("a", {}, { at: T0 + 10 });
    r.shaper.take("b", {}, { at: T0 + 30 });
    r.clock.advance(12);
    r.shaper.stop();
    assert.deepEqual(r.edges, ["1@10", "0@12"], "low at once");
    r.clock.advance(100);
    assert.equal(r.edges.length, 2, "b never fires");
    r.shaper.take("c", {}, { at: T0 + 200 });
    r.clock.advance(200);
    assert.deepEqual(r.edges.slice(2), ["1@200", "0@205"]);
  });

  it("close: low now, and a counted frame still waiting for its turn is not placed", () => {
    const r = rig();
    r.shaper.take("a", {}, { at: T0 + 10, count: 2, window_ms: 100 });
    r.shaper.close();
    r.clock.advance(500);
    assert.deepEqual(r.edges, []);
    assert.equal(r.shaper.eventCounts.train_events, 0);
  });

  it("a pin whose helper is down: red status, and what is planned meanwhile is unfired, not fired", () => {
    const r = rig();
    r.shaper.take("a", {}, { at: T0 + 10 });
    r.clock.advance(100);
    assert.equal(r.shaper.pinDown("stopped"), true);
    assert.equal(r.shaper.pinDown("stopped"), false, "said once");
    assert.deepEqual(r.shaper.status().status, { fill: "red", shape: "ring", text: "pin stopped: nothing fired" });
    r.shaper.take("b", {}, { at: T0 + 200 });
    r.shaper.take("c", {}, { at: T0 + 300 });
    r.clock.advance(400);
    assert.deepEqual([r.shaper.fired().pulses, r.shaper.fired().unfired_pulses], [1, 2]);
    assert.equal(r.shaper.pinUp(), true);
    r.shaper.take("d", {}, { at: T0 + 900 });
    r.clock.advance(500);
    assert.deepEqual([r.shaper.fired().pulses, r.shaper.fired().unfired_pulses], [2, 2], "counting goes on without the gap");
  });
});
