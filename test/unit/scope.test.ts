import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { Scope, ScopePublisher, type ScopeSnapshot } from "../../lib/scope";
import { T0 } from "../helpers/containers";

describe("SQI scope data", () => {
  it("a shaper's trace: its edges over the last 2 s as [ms ago, level], with pulses/s and duty", () => {
    const scope = new Scope();
    const s = scope.addShaper("a", "coil", () => ({ clamped: 3 }));
    // 5 ms pulses every 20 ms for 3 s: 50 p/s, 25 % duty
    for (let t = 0; t < 3000; t += 20) {
      s.edge(T0 + t, 1);
      s.edge(T0 + t + 5, 0);
    }
    const snap = scope.snapshot(T0 + 3000);
    const tr = snap.shapers[0]!;
    assert.equal(tr.label, "coil");
    assert.equal(tr.rate_hz, 50);
    assert.equal(tr.duty_pct, 25);
    assert.equal(tr.edges.length, 200, "only the last 2 s");
    assert.deepEqual(tr.edges[tr.edges.length - 1], [15, 0]);
    assert.deepEqual(tr.counters, { clamped: 3 });
    s.remove();
    assert.equal(scope.snapshot(T0 + 3000).shapers.length, 0);
  });

  it("a PWM level counts as its share of full on", () => {
    const scope = new Scope();
    const s = scope.addShaper("p", "pwm", () => ({}));
    s.edge(T0, 40);
    assert.equal(scope.snapshot(T0 + 2000).shapers[0]!.duty_pct, 40);
  });

  it("listeners at a master: pulse rate and duty per report interval, and their sum", () => {
    const scope = new Scope();
    for (let k = 0; k <= 5; k++) {
      scope.report("m", T0 + k * 2000, { name: "pi-1", counters: { fired_pulses: 100 * k, fired_on_time_ms: 500 * k }, rtt_ms: 0.4 });
      scope.report("m", T0 + k * 2000, { name: "pi-2", counters: { fired_pulses: 50 * k, fired_on_time_ms: 250 * k, missing: 2 } });
    }
    const snap = scope.snapshot(T0 + 10_000);
    const [b, a] = snap.listeners;
    assert.equal(b!.name, "pi-2", "the worst first: pi-2 lost events");
    assert.deepEqual(a!.samples[a!.samples.length - 1], [0, 50, 25]);
    assert.deepEqual(b!.samples[b!.samples.length - 1], [0, 25, 12.5]);
    assert.equal(b!.lost, 2);
    assert.deepEqual(snap.summary, { listeners: 2, synced: 0, late: 0, lost: 2, troubled: 1 });
    assert.deepEqual(snap.sum[snap.sum.length - 1], [0, 75]);
    scope.removeMaster("m");
    assert.equal(scope.snapshot(T0 + 10_000).listeners.length, 0);
  });

  it("the sum holds each listener's rate over its report interval: listeners reporting at different moments add up, no zigzag", () => {
    const scope = new Scope();
    // 10 pulses/s each, reports every 2 s, pi-2 one second after pi-1
    for (let k = 0; k <= 10; k++) {
      scope.report("m", T0 + k * 2000, { name: "pi-1", counters: { fired_pulses: 20 * k } });
      scope.report("m", T0 + 1000 + k * 2000, { name: "pi-2", counters: { fired_pulses: 20 * k } });
    }
    const snap = scope.snapshot(T0 + 21_500);
    const inner = snap.sum.filter(([ago]) => ago <= 18_000);
    assert.ok(inner.length >= 18, `${inner.length} grid points`);
    assert.deepEqual(
      inner.map(([, hz]) => hz),
      inner.map(() => 20),
      "20 pulses/s at every point, both listeners together",
    );
  });

  it("at 1,000 listeners: one summary line over all of them, the worst 20 drawn (most lost, then most late), the sum over all", () => {
    const scope = new Scope();
    for (let k = 0; k <= 1; k++)
      for (let i = 1; i <= 1000; i++)
        scope.report("m", T0 + k * 2000, {
          name: `pi-${i}`,
          counters: { fired_pulses: 10 * k, missing: i % 97 === 0 ? i : 0, late: i % 50 === 0 ? 1 : 0 },
          ...(i <= 990 ? { offset_ms: 0.1, rtt_ms: 0.4 } : {}),
        });
    const snap = scope.snapshot(T0 + 2000);
    assert.deepEqual(snap.summary, {
      listeners: 1000,
      synced: 990,
      late: 20,
      lost: [97, 194, 291, 388, 485, 582, 679, 776, 873, 970].reduce((x, y) => x + y),
      troubled: 30,
    });
    assert.equal(snap.listeners.length, 20);
    assert.deepEqual(
      snap.listeners.slice(0, 11).map((l) => l.name),
      ["pi-970", "pi-873", "pi-776", "pi-679", "pi-582", "pi-485", "pi-388", "pi-291", "pi-194", "pi-97", "pi-100"],
      "the most lost first, then the late ones",
    );
    assert.deepEqual(snap.sum[snap.sum.length - 1], [0, 5000], "the sum is over all 1,000 (5 pulses/s each)");
  });

  it("publishes four snapshots a second while an editor watches, and stops (no timer left) when none does", () => {
    const clock = new VirtualClock(T0);
    const scope = new Scope();
    scope.addShaper("a", "coil", () => ({}));
    const sent: ScopeSnapshot[] = [];
    const p = new ScopePublisher(clock, scope);
    p.sink = (s) => sent.push(s);
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
