import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Roster, ROSTER_FORGET_MS } from "../../lib/bus/roster";
import { VirtualClock } from "../../lib/clock";
import { EdgeTrace, scopeSnapshot, ScopePublisher, type ScopeSnapshot } from "../../lib/scope";
import { T0 } from "../helpers/containers";

const ofRoster = (roster: Roster, id = "m") => ({ shapers: [], masters: [{ id, roster }] });

describe("SQI scope data", () => {
  it("a shaper's trace: its edges over the last 2 s as [ms ago, duty], with pulses/s and duty", () => {
    const s = new EdgeTrace("a", "coil", () => ({ clamped: 3 }));
    // 5 ms pulses every 20 ms for 3 s: 50 p/s, 25 % duty
    for (let t = 0; t < 3000; t += 20) {
      s.edge(T0 + t, 1);
      s.edge(T0 + t + 5, 0);
    }
    const snap = scopeSnapshot(T0 + 3000, { shapers: [s], masters: [] });
    const tr = snap.shapers[0]!;
    assert.equal(tr.label, "coil");
    assert.equal(tr.rate_hz, 50);
    assert.equal(tr.duty_pct, 25);
    assert.equal(tr.edges.length, 200, "only the last 2 s");
    assert.deepEqual(tr.edges[tr.edges.length - 1], [15, 0]);
    assert.deepEqual(tr.counters, { clamped: 3 });
  });

  it("a snapshot is a pure read: the same at the same instant, however often it is taken", () => {
    const s = new EdgeTrace("a", "coil", () => ({}));
    for (let t = 0; t < 3000; t += 20) (s.edge(T0 + t, 1), s.edge(T0 + t + 5, 0));
    const roster = new Roster();
    roster.take({ name: "pi-1", counters: {}, fired: { pulses: 5 } }, T0);
    roster.take({ name: "pi-1", counters: {}, fired: { pulses: 25 } }, T0 + 2000);
    const src = { shapers: [s], masters: [{ id: "m", roster }] };
    const early = scopeSnapshot(T0 + 3000, src);
    assert.equal(early.shapers[0]!.edges[0]![0], 2000, "the window's first edge, 2 s before");
    const later = scopeSnapshot(T0 + 4500, src);
    // Drawn again after a later instant: unchanged (the old scope cut a shaper's edges as it drew).
    assert.deepEqual(scopeSnapshot(T0 + 3000, src), early);
    assert.deepEqual(scopeSnapshot(T0 + 4500, src), later);
  });

  it("a PWM duty counts as its share of full on: 40 %, 1 % and 0.5 % are drawn as such, not as 100 %", () => {
    for (const [duty, pct] of [
      [0.4, 40],
      [0.01, 1],
      [0.005, 0.5],
    ] as const) {
      const s = new EdgeTrace("p", "pwm", () => ({}));
      s.edge(T0, duty);
      assert.equal(scopeSnapshot(T0 + 2000, { shapers: [s], masters: [] }).shapers[0]!.duty_pct, pct);
    }
  });

  it("listeners at a master: pulse rate and duty per report interval, and their sum", () => {
    const roster = new Roster();
    for (let k = 0; k <= 5; k++) {
      roster.take({ name: "pi-1", counters: {}, fired: { pulses: 100 * k, on_time_ms: 500 * k }, rtt_ms: 0.4 }, T0 + k * 2000);
      roster.take({ name: "pi-2", counters: { missing: 2 }, fired: { pulses: 50 * k, on_time_ms: 250 * k } }, T0 + k * 2000);
    }
    const snap = scopeSnapshot(T0 + 10_000, ofRoster(roster));
    const [b, a] = snap.listeners;
    assert.equal(b!.name, "pi-2", "the worst first: pi-2 lost events");
    assert.deepEqual(a!.samples[a!.samples.length - 1], [0, 50, 25]);
    assert.deepEqual(b!.samples[b!.samples.length - 1], [0, 25, 12.5]);
    assert.equal(b!.lost, 2);
    assert.deepEqual(snap.summary, { listeners: 2, synced: 0, late: 0, lost: 2, troubled: 1 });
    assert.deepEqual(snap.sum[snap.sum.length - 1], [0, 75]);
    assert.equal(scopeSnapshot(T0 + 10_000, { shapers: [], masters: [] }).listeners.length, 0, "a master gone: its listeners with it");
  });

  it("listeners that all fall silent leave the scope, its summary and the master's roster alike", () => {
    const roster = new Roster();
    for (let i = 0; i < 5; i++) roster.take({ name: `pi-${i}`, counters: { missing: 1 }, offset_ms: 0.1 }, T0);
    const silent = T0 + ROSTER_FORGET_MS + 1;
    const snap = scopeSnapshot(silent, ofRoster(roster));
    assert.deepEqual(snap.summary, { listeners: 0, synced: 0, late: 0, lost: 0, troubled: 0 });
    assert.equal(snap.listeners.length, 0);
    assert.deepEqual(roster.summary(0, silent), { joined: 0, synced: 0, late: 0, lost: 0, troubled: 0 });
    assert.deepEqual(roster.worst(silent), []);
    // Heard at the last moment: still there.
    assert.equal(scopeSnapshot(silent - 1, ofRoster(roster)).summary.listeners, 5);
  });

  it("the sum holds each listener's rate over its report interval: listeners reporting at different moments add up, no zigzag", () => {
    const roster = new Roster();
    // 10 pulses/s each, reports every 2 s, pi-2 one second after pi-1
    for (let k = 0; k <= 10; k++) {
      roster.take({ name: "pi-1", counters: {}, fired: { pulses: 20 * k } }, T0 + k * 2000);
      roster.take({ name: "pi-2", counters: {}, fired: { pulses: 20 * k } }, T0 + 1000 + k * 2000);
    }
    const snap = scopeSnapshot(T0 + 21_500, ofRoster(roster));
    const inner = snap.sum.filter(([ago]) => ago <= 18_000);
    assert.ok(inner.length >= 18, `${inner.length} grid points`);
    assert.deepEqual(
      inner.map(([, hz]) => hz),
      inner.map(() => 20),
      "20 pulses/s at every point, both listeners together",
    );
  });

  it("at 1,000 listeners: one summary line over all of them, the worst 20 drawn in the roster's order, the sum over all", () => {
    const roster = new Roster();
    for (let k = 0; k <= 1; k++)
      for (let i = 1; i <= 1000; i++)
        roster.take(
          {
            name: `pi-${i}`,
            counters: { missing: i % 97 === 0 ? i : 0, late: i % 50 === 0 ? 1 : 0 },
            fired: { pulses: 10 * k },
            ...(i <= 990 ? { offset_ms: 0.1, rtt_ms: 0.4 } : {}),
          },
          T0 + k * 2000,
        );
    const snap = scopeSnapshot(T0 + 2000, ofRoster(roster));
    assert.deepEqual(snap.summary, {
      listeners: 1000,
      synced: 990,
      late: 20,
      lost: [97, 194, 291, 388, 485, 582, 679, 776, 873, 970].reduce((x, y) => x + y),
      troubled: 30,
    });
    assert.equal(snap.listeners.length, 20);
    assert.deepEqual(
      snap.listeners.slice(0, 12).map((l) => l.name),
      // The most lost; then the late ones, pi-1000 first (no round trip measured counts as the largest), then by name.
      ["pi-970", "pi-873", "pi-776", "pi-679", "pi-582", "pi-485", "pi-388", "pi-291", "pi-194", "pi-97", "pi-1000", "pi-100"],
    );
    assert.deepEqual(
      snap.listeners.map((l) => l.name),
      roster.worst(T0 + 2000).map((l) => l.name),
      "the scope lists the listeners the master's stats call worst, in the same order",
    );
    assert.deepEqual(snap.sum[snap.sum.length - 1], [0, 5000], "the sum is over all 1,000 (5 pulses/s each)");
  });

  it("publishes four snapshots a second while an editor watches, and stops (no timer left) when none does", () => {
    const clock = new VirtualClock(T0);
    const s = new EdgeTrace("a", "coil", () => ({}));
    const sent: ScopeSnapshot[] = [];
    const p = new ScopePublisher(
      clock,
      (now) => scopeSnapshot(now, { shapers: [s], masters: [] }),
      (snap) => sent.push(snap),
    );
    clock.advance(5000);
    assert.equal(sent.length, 0, "nothing before an editor watches");
    assert.equal(clock.pending(), 0);
    p.watch();
    clock.advance(5000);
    assert.equal(sent.length, 21);
    clock.advance(10_000);
    assert.equal(p.running, false, "10 s without a watch: stopped");
    assert.equal(clock.pending(), 0, "and no timer left");
    const n = sent.length;
    clock.advance(5000);
    assert.equal(sent.length, n);
  });
});
