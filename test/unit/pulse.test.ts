import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { parseShaperSettings } from "../../lib/pulse/config";
import { Measurements } from "../../lib/pulse/measure";
import { DEFAULT_LIMITS, enforced, PulseOutput, type Limits } from "../../lib/pulse/output";
import { DeadlineQueue } from "../../lib/pulse/scheduler";
import { planEvent, type ShapeConfig } from "../../lib/pulse/shapes";
import { parsePulseOutSettings, readPulseInput } from "../../lib/pulse/timed-pin";
import { T0 } from "../helpers/containers";

function rig(limits: Partial<Limits> = {}, shape: Partial<ShapeConfig> = {}, pwm = false) {
  const clock = new VirtualClock(T0);
  // The limits' own arithmetic, without the pin guard unless a test sets one (its own tests below).
  const lim = { ...DEFAULT_LIMITS, pinGuardMs: 0, ...limits };
  const cfg: ShapeConfig = { widthMs: 5, output: pwm ? "pwm" : "digital", unknown: "pulse", rows: [], edgeSpacingMs: enforced(lim).spacing, ...shape };
  const edges: Array<[number, number]> = [];
  const timing: number[] = [];
  const out = new PulseOutput(clock, lim, pwm, (e) => {
    edges.push([e.level, Math.round((e.sent - T0) * 1000) / 1000]);
    timing.push(e.sent - e.planned);
  });
  const fire = (event: string, payload: unknown, at: number) => {
    const plan = planEvent(event, payload, cfg);
    assert.equal(plan.kind, "segments", JSON.stringify(plan));
    if (plan.kind === "segments") out.add(plan.segments, T0 + at, { event });
    return plan;
  };
  return { clock, out, edges, fire, cfg, timing };
}

/** "1@10 0@15 ..." */
const seq = (edges: Array<[number, number]>) => edges.map(([l, t]) => `${l}@${t}`).join(" ");

describe("pulse shapes: exact edge sequences on a virtual clock", () => {
  it("proton_collision: one pulse of the pulse width, at its at", () => {
    const r = rig();
    r.fire("proton_collision", {}, 10);
    r.clock.advance(1000);
    assert.equal(seq(r.edges), "1@10 0@15");
    assert.ok(
      r.timing.every((e) => e === 0),
      "each edge exactly when planned",
    );
  });

  it("atom_spin_flip: one 50 ms pulse", () => {
    const r = rig();
    r.fire("atom_spin_flip", {}, 10);
    r.clock.advance(1000);
    assert.equal(seq(r.edges), "1@10 0@60");
  });

  it("waveform_emit: a burst of 10 at payload.frequency_hz with duty payload.amplitude", () => {
    const r = rig();
    r.fire("waveform_emit", { frequency_hz: 100, amplitude: 0.3 }, 10);
    r.clock.advance(1000);
    const expected = Array.from({ length: 10 }, (_, k) => `1@${10 + 10 * k} 0@${13 + 10 * k}`).join(" ");
    assert.equal(seq(r.edges), expected);
  });

  it("waveform_emit at the seed's 50 kHz: slowed to the fastest rate the limits allow, and said so", () => {
    const r = rig();
    const plan = r.fire("waveform_emit", { frequency_hz: 50000, amplitude: 0.8 }, 10);
    assert.deepEqual(plan.kind === "segments" && plan.rateClamp, { intendedHz: 50000, deliveredHz: 100, asDuty: false });
    r.clock.advance(1000);
    // 2 ms edge spacing: the 20% low part needs a 10 ms period: 8 ms high, 2 ms low.
    const expected = Array.from({ length: 10 }, (_, k) => `1@${10 + 10 * k} 0@${18 + 10 * k}`).join(" ");
    assert.equal(seq(r.edges), expected);
  });

  it("waveform_emit on a PWM output: a burst too fast for edges becomes its duty over the burst", () => {
    const r = rig({}, {}, true);
    const plan = r.fire("waveform_emit", { frequency_hz: 50000, amplitude: 0.8 }, 10);
    assert.deepEqual(plan.kind === "segments" && plan.rateClamp, { intendedHz: 50000, deliveredHz: 50000, asDuty: true });
    r.clock.advance(1000);
    assert.equal(seq(r.edges), "80@10 0@12", "10 periods of 20 us = 0.2 ms, widened to the 2 ms the output can make");
  });

  it("time_dilation: split into a fast burst, a pause of W, then one slow pulse of W x factor_slow", () => {
    const r = rig();
    r.fire("time_dilation", { factor_fast: 1000000, factor_slow: 5 }, 10);
    r.clock.advance(1000);
    // fast pulses W/1e6 wide are far below the 2 ms edge spacing: 5 pulses of 2 ms every 4 ms,
    // then 5 ms pause, then 25 ms.
    assert.equal(seq(r.edges), "1@10 0@12 1@14 0@16 1@18 0@20 1@22 0@24 1@26 0@28 1@33 0@58");
  });

  it("fusion_tick: combined: 5 pulses at 100 Hz, then a 50 ms pulse", () => {
    const r = rig();
    r.fire("fusion_tick", {}, 10);
    r.clock.advance(1000);
    assert.equal(seq(r.edges), "1@10 0@15 1@20 0@25 1@30 0@35 1@40 0@45 1@50 0@55 1@60 0@110");
  });

  it("other events: one pulse of the pulse width, or ignored, as configured; table rows override", () => {
    const r = rig();
    r.fire("something_else", {}, 10);
    r.clock.advance(100);
    assert.equal(seq(r.edges), "1@10 0@15");
    assert.deepEqual(planEvent("something_else", {}, { ...r.cfg, unknown: "ignore" }), { kind: "ignored" });
    const custom = planEvent("proton_collision", {}, { ...r.cfg, rows: [{ event: "proton_collision", shape: "burst", count: 2, frequency: 50, duty: 0.25 }] });
    assert.deepEqual(custom, {
      kind: "segments",
      segments: [
        { start: 0, end: 5, level: 1 },
        { start: 20, end: 25, level: 1 },
      ],
    });
  });

  it("refuses bad payloads with a message naming the field", () => {
    const cfg = rig().cfg;
    const err = (event: string, payload: unknown) => {
      const p = planEvent(event, payload, cfg);
      return p.kind === "rejected" ? p.error : `not rejected: ${JSON.stringify(p)}`;
    };
    assert.equal(err("waveform_emit", { frequency_hz: 0 }), "waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got 0");
    assert.equal(err("waveform_emit", { frequency_hz: -5 }), "waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got -5");
    assert.equal(err("waveform_emit", { frequency_hz: "NaN" }), 'waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got "NaN"');
    assert.equal(err("waveform_emit", { frequency_hz: Number.NaN }), "waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got null");
    assert.equal(err("waveform_emit", { amplitude: 1.5 }), "waveform_emit: msg.payload.amplitude must be a number from 0 to 1, got 1.5");
    assert.equal(err("waveform_emit", { amplitude: -0.1 }), "waveform_emit: msg.payload.amplitude must be a number from 0 to 1, got -0.1");
    assert.equal(err("waveform_emit", 42), "waveform_emit: msg.payload must be an object (the glyph's payload), got 42");
    assert.equal(err("time_dilation", { factor_slow: 0 }), "time_dilation: msg.payload.factor_slow must be a positive number up to 1000, got 0");
    // Bounded: 1e-7 Hz asked for timers months away (the red team's 1 kHz TimeoutOverflowWarning loop).
    assert.equal(err("waveform_emit", { frequency_hz: 1e-7 }), "waveform_emit: msg.payload.frequency_hz must be at least 0.1 Hz, got 1e-7");
    assert.equal(err("time_dilation", { factor_slow: 1e9 }), "time_dilation: msg.payload.factor_slow must be a positive number up to 1000, got 1000000000");
    assert.equal(err(undefined as unknown as string, {}), "msg.topic must be the event name (a non-empty string), got undefined");
    // 1e9 Hz is a number, just far too fast: it is clamped, not refused.
    const fast = planEvent("waveform_emit", { frequency_hz: 1e9 }, cfg);
    assert.equal(fast.kind === "segments" && fast.rateClamp?.deliveredHz, 250);
    // A plain pulse does not read its payload: an inject's timestamp still makes a pulse.
    assert.equal(planEvent("proton_collision", 1700000000000, cfg).kind, "segments");
  });
});

describe("pulse output: merging", () => {
  it("overlapping pulses merge into one: the output is high while any wants it high", () => {
    const r = rig();
    r.fire("proton_collision", {}, 10);
    r.fire("proton_collision", {}, 13);
    r.fire("proton_collision", {}, 15); // touches the merged end
    r.clock.advance(100);
    assert.equal(seq(r.edges), "1@10 0@20");
    assert.equal(r.out.counters.pulses, 1);
  });

  it("on a PWM output, merges before the rising edge take the highest duty; a pulse already high keeps its duty (the safe side) and is extended", () => {
    const r = rig({}, {}, true);
    r.out.add([{ start: 0, end: 20, level: 30 }], T0 + 10, { event: "low" });
    r.out.add([{ start: 0, end: 20, level: 90 }], T0 + 15, { event: "high" }); // before the rise at 10: merged, highest duty
    r.clock.advance(100);
    assert.equal(seq(r.edges), "90@10 0@35");
    const a = rig({}, {}, true);
    a.out.add([{ start: 0, end: 20, level: 30 }], T0 + 10, { event: "low" });
    a.clock.advance(15); // high at 30 % since 10
    a.out.add([{ start: 0, end: 20, level: 90 }], T0 + 15, { event: "high" });
    a.clock.advance(100);
    // Its duty budget and on-time were judged at its rising edge, for 30 %: a step up to 90 % mid-pulse
    // would spend the budget three times as fast as judged. The 90 % applies from the next pulse.
    assert.equal(seq(a.edges), "30@10 0@35");
    assert.equal(a.out.counters.pulses, 1);
  });

  it("a pulse arriving while the output is high extends it; edges always alternate", () => {
    const r = rig();
    r.fire("atom_spin_flip", {}, 10);
    r.clock.advance(30);
    r.fire("atom_spin_flip", {}, 40);
    r.clock.advance(200);
    assert.equal(seq(r.edges), "1@10 0@90");
  });
});

describe("pulse output: a late rising edge", () => {
  it("keeps the width that was set: the falling edge moves by the same lateness", () => {
    let late = 0;
    const clock = new VirtualClock(T0, () => late);
    const edges: Array<[number, number, number]> = [];
    const widths: number[] = [];
    const out = new PulseOutput(
      clock,
      { ...DEFAULT_LIMITS, pinGuardMs: 0, minOffMs: 1 },
      false,
      (e) => edges.push([e.level, e.sent - T0, e.planned - T0]),
      (p) => widths.push(p.plannedWidth),
    );
    const cfg: ShapeConfig = { widthMs: 12, output: "digital", unknown: "pulse", rows: [], edgeSpacingMs: 2 };
    const plan = planEvent("proton_collision", {}, cfg);
    assert.equal(plan.kind, "segments");
    if (plan.kind !== "segments") return;
    late = 1.3; // the event loop was busy when the rising edge fell due
    out.add(plan.segments, T0 + 10, { event: "proton_collision" });
    out.add(plan.segments, T0 + 26, { event: "proton_collision" }); // 26-38: 4 ms after the first one's end
    clock.advance(9);
    late = 0;
    clock.advance(100);
    const [rise, fall, rise2, fall2] = edges;
    assert.ok(rise![1] > 10.5, `the rise went out late: ${rise![1]}`);
    assert.equal(rise![2], 10, "reported against its planned time");
    assert.ok(Math.abs(fall![1] - rise![1] - 12) < 1e-3, `width at the pin ${fall![1] - rise![1]} ms`);
    assert.ok(Math.abs(widths[0]! - 12) < 1e-3, `planned width ${widths[0]}`);
    assert.ok(Math.abs(rise2![1] - 26) < 1e-3, `the next pulse keeps its own time: ${rise2![1]}`);
    assert.ok(Math.abs(fall2![1] - 38) < 1e-3);
    assert.equal(out.counters.clamped, 0, "lateness alone is not a limit");
  });

  it("moves the falling edge only as far as the next pulse and the minimum off-time allow", () => {
    let late = 0;
    const clock = new VirtualClock(T0, () => late);
    const edges: Array<[number, number]> = [];
    const out = new PulseOutput(clock, { ...DEFAULT_LIMITS, pinGuardMs: 0, minOffMs: 2 }, false, (e) => edges.push([e.level, e.sent - T0]));
    late = 3;
    out.add([{ start: 0, end: 10, level: 1 }], T0 + 10, { event: "a" }); // 10-20
    out.add([{ start: 0, end: 10, level: 1 }], T0 + 24, { event: "a" }); // 24-34
    clock.advance(5);
    late = 0;
    clock.advance(100);
    assert.ok(edges[0]![1] >= 12.9, `late rise ${edges[0]![1]}`);
    assert.ok(Math.abs(edges[1]![1] - 22) < 1e-3, `fall held back for the next pulse: ${edges[1]![1]}`);
    assert.ok(Math.abs(edges[2]![1] - 24) < 1e-3, `next rise on time: ${edges[2]![1]}`);
  });
});

describe("pulse output: safety limits clamp or skip, and count", () => {
  it("maximum on-time cuts a long pulse and a long merge", () => {
    const r = rig({ maxOnMs: 20 });
    r.fire("atom_spin_flip", {}, 10);
    r.clock.advance(100);
    r.fire("proton_collision", {}, 200);
    r.fire("proton_collision", {}, 204);
    r.fire("proton_collision", {}, 208);
    r.fire("proton_collision", {}, 212);
    r.fire("proton_collision", {}, 216);
    r.clock.advance(200);
    assert.equal(seq(r.edges), "1@10 0@30 1@200 0@220");
    assert.ok(r.out.counters.clamped >= 2, `clamped ${r.out.counters.clamped}`);
  });

  it("maximum duty over the window: a pulse is cut to the budget left, or skipped when none is left", () => {
    const r = rig({ maxDuty: 0.1, dutyWindowMs: 1000 });
    r.fire("atom_spin_flip", {}, 10);
    r.fire("atom_spin_flip", {}, 100);
    r.fire("atom_spin_flip", {}, 200);
    r.fire("proton_collision", {}, 1020); // 1020 - 1000 = 20: the first pulse has partly left the window
    r.clock.advance(2000);
    assert.equal(seq(r.edges), "1@10 0@60 1@100 0@150 1@1020 0@1025");
    assert.equal(r.out.counters.skipped, 1, "the third 50 ms pulse had no budget left");
    assert.ok(r.out.onTimeBetween(T0, T0 + 1000) <= 100);
  });

  it("minimum off-time: a pulse too soon after the last one starts later (shortened: its end stays the plan's, so the Pis of a bus stay in step) or is skipped", () => {
    const r = rig({ minOffMs: 10 });
    r.fire("proton_collision", {}, 10); // 10-15
    r.fire("atom_spin_flip", {}, 18); // 18-68: must wait until 25
    r.fire("proton_collision", {}, 70); // 70-75: the previous fell at 68, must wait until 78 > 75: skipped
    r.clock.advance(500);
    assert.equal(seq(r.edges), "1@10 0@15 1@25 0@68");
    assert.deepEqual([r.out.counters.clamped, r.out.counters.skipped], [2, 1]);
  });

  it("maximum edge rate: no two edges closer than 1/rate, even under 1,000 random overlapping events", () => {
    const r = rig({ maxEdgeRate: 200 }); // 5 ms apart
    let s = 7;
    const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 1000; i++)
      r.fire(
        ["proton_collision", "waveform_emit", "fusion_tick", "atom_spin_flip"][i % 4]!,
        { frequency_hz: 1 + rnd() * 5000, amplitude: rnd() },
        rnd() * 2000,
      );
    r.clock.advance(5000);
    const gaps = r.edges.slice(1).map(([, t], i) => t - r.edges[i]![1]);
    assert.ok(Math.min(...gaps) >= 5 - 1e-6, `closest edges ${Math.min(...gaps)} ms apart`);
    r.edges.forEach(([l], i) => assert.equal(l, i % 2 === 0 ? 1 : 0, "alternating"));
    assert.equal(r.edges[r.edges.length - 1]![0], 0, "ends low");
    assert.ok(r.out.onTimeBetween(T0, T0 + 5000) <= 0.5 * 5000 + 1e-6, "duty within 50%");
  });

  it("100,000 events in one second: the queue stays bounded, the output ends low, and what was refused is counted", () => {
    const r = rig({ maxQueue: 1000 });
    for (let i = 0; i < 100_000; i++) r.fire("proton_collision", {}, 10 + ((i * 7919) % 100_000) / 100);
    assert.ok(r.out.queued <= 1000, `queued ${r.out.queued}`);
    r.clock.advance(10_000);
    assert.equal(r.out.level, 0);
    assert.equal(r.edges[r.edges.length - 1]![0], 0);
    const c = r.out.counters;
    assert.ok(c.dropped + c.clamped + c.skipped > 0, JSON.stringify(c));
    assert.equal(c.edges, r.edges.length);
    assert.equal(c.pulses * 2, c.edges);
  });
});

describe("pulse output: stop", () => {
  it("stop in the middle of a pulse sends 0 at once and cancels everything pending", () => {
    const r = rig();
    r.fire("atom_spin_flip", {}, 10);
    r.fire("atom_spin_flip", {}, 200);
    r.clock.advance(30);
    assert.equal(r.out.level, 1);
    assert.equal(r.out.stop(), true);
    assert.equal(seq(r.edges), "1@10 0@30");
    assert.equal(r.clock.pending(), 0);
    r.clock.advance(1000);
    assert.equal(r.edges.length, 2);
    r.fire("proton_collision", {}, 1100);
    r.clock.advance(200);
    assert.equal(seq(r.edges), "1@10 0@30 1@1100 0@1105", "accepts new events after msg.stop");
    r.out.close();
    r.fire("proton_collision", {}, 1300);
    r.clock.advance(200);
    assert.equal(r.edges.length, 4, "nothing after close");
  });
});

describe("measurements", () => {
  it("reports counts, rate, duty, errors and the electrical input energy V^2/R x on-time", () => {
    const m = new Measurements(T0, { volts: 12, ohms: 6 });
    m.pulse({ rise: T0 + 10, fall: T0 + 15.5, fraction: 1, plannedWidth: 5, cut: false });
    m.pulse({ rise: T0 + 100, fall: T0 + 105, fraction: 1, plannedWidth: 5, cut: false });
    m.edge({ level: 1, duty: 1, planned: T0 + 10, sent: T0 + 10.2, origin: { event: "x" } });
    const r = m.report(T0 + 1000, { pulses: 2 });
    assert.equal(r.rate_hz, 2);
    assert.equal(r.duty, 0.0105);
    assert.deepEqual(r.width_error_ms, { median: 0.5, p99: 0.5, max: 0.5, n: 2 });
    assert.deepEqual(r.timing_error_ms, { median: 0.2, p99: 0.2, max: 0.2, n: 1 });
    // 12^2 / 6 = 24 W for 10.5 ms = 0.252 J
    assert.equal((r.electrical_input as { energy_j: number }).energy_j, 0.252);
  });
});

describe("pulse-shaper settings", () => {
  it("reads the panel and names every bad field", () => {
    const ok = parseShaperSettings({
      width: "5",
      output: "digital",
      rows: [{ event: "proton_collision", shape: "burst", count: "3", frequency: "", duty: "" }],
    });
    assert.ok(ok.ok);
    assert.deepEqual(ok.ok && ok.settings.shape.rows, [{ event: "proton_collision", shape: "burst", count: 3 }]);
    const bad = parseShaperSettings({ width: 0, maxOn: 100, rows: [{ event: "", shape: "zigzag", width: 500 }] });
    assert.ok(!bad.ok);
    assert.deepEqual(!bad.ok && bad.errors, [
      "Pulse width must be a number above 0 and up to 60000 ms, got 0",
      "Shape row 1: the event name is empty",
      'Shape row 1 (): shape must be one of pulse, burst, split, combined, pwm, ignore, got "zigzag"',
      "Shape row 1 (): width 500 ms is over the maximum on-time of 100 ms",
    ]);
    const over = parseShaperSettings({ width: 150, maxOn: 100 });
    assert.deepEqual(!over.ok && over.errors, ["Pulse width 150 ms is over the maximum on-time of 100 ms"]);
    const neg = parseShaperSettings({ width: -1 });
    assert.deepEqual(!neg.ok && neg.errors, ["Pulse width must be a number above 0 and up to 60000 ms, got -1"]);
  });
});

describe("pulse output: the pin guard (limits held at the pin, not only in what is sent)", () => {
  it("keeps 1 ms inside the edge spacing, the minimum off-time and the on-time: a saturated burst is 12 ms on / 3 ms off", () => {
    const r = rig({ pinGuardMs: 1 });
    const plan = r.fire("waveform_emit", { frequency_hz: 50_000, amplitude: 0.8 }, 10);
    r.clock.advance(1000);
    assert.equal(plan.kind === "segments" && plan.rateClamp?.deliveredHz, 66.67, "the burst's rate is what 3 ms edges allow");
    const gaps = r.edges.slice(1).map(([, t], i) => t - r.edges[i]![1]);
    assert.equal(seq(r.edges.slice(0, 4)), "1@10 0@22 1@25 0@37");
    assert.ok(Math.min(...gaps) >= 3 - 1e-9, `edges at least 2 + 1 ms apart: ${gaps.join(", ")}`);
    assert.equal(r.out.counters.clamped, 0, "a plan made for the guarded limits is not clamped again");
  });

  it("cuts a merged pulse at the maximum on-time less the guard, and holds back 1 % of the duty budget", () => {
    const r = rig({ pinGuardMs: 1 });
    for (let k = 0; k < 50; k++) r.fire("proton_collision", {}, 10 + 3 * k); // 5 ms pulses every 3 ms: they merge
    r.clock.advance(2000);
    assert.equal(seq(r.edges.slice(0, 2)), "1@10 0@109", "cut at 100 - 1 ms");
    const d = rig({ pinGuardMs: 1, maxOnMs: 1000 });
    d.out.add([{ start: 0, end: 900, level: 1 }], T0 + 10, { event: "long" });
    d.clock.advance(3000);
    assert.equal(seq(d.edges.slice(0, 2)), "1@10 0@505", "the duty budget of 500 ms in 1 s, less 5 ms held back");
  });
});

describe("edge scheduler: one queue shared by every output of a runtime", () => {
  it("serves another output's edge on time while one output's burst keeps the loop in short waits", () => {
    const clock = new VirtualClock(T0, () => 0, { blocking: true });
    const lim = { ...DEFAULT_LIMITS, pinGuardMs: 0, maxDuty: 1 };
    const a: number[] = [];
    const b: Array<[number, number]> = [];
    const deadlines = new DeadlineQueue(clock);
    const burst = new PulseOutput(clock, lim, false, (e) => a.push(e.sent - e.planned), undefined, false, deadlines);
    const single = new PulseOutput(clock, lim, false, (e) => b.push([e.level, e.sent - e.planned]), undefined, false, deadlines);
    // Output A: 2 ms on / 2 ms off for 80 ms (every edge within the 2 ms wait margin of the last).
    burst.add(
      Array.from({ length: 20 }, (_, k) => ({ start: 4 * k, end: 4 * k + 2, level: 1 })),
      T0 + 10,
      { event: "a" },
    );
    // Output B: one pulse whose edges fall between A's.
    single.add(
      [{ start: 0, end: 7 }].map((s) => ({ ...s, level: 1 })),
      T0 + 41,
      { event: "b" },
    );
    clock.advance(500);
    assert.equal(a.length, 40);
    assert.ok(
      a.every((late) => Math.abs(late) < 1e-9),
      `A on time: ${a.join(", ")}`,
    );
    assert.deepEqual(
      b,
      [
        [1, 0],
        [0, 0],
      ],
      "B's rise and fall exactly when planned, in the middle of A's burst",
    );
  });

  it("wakes early for the falling edge of a pulse at its on-time limit, so that work queued just before does not stretch it", () => {
    const clock = new VirtualClock(T0, () => 0, { blocking: true });
    const out: Array<[number, number]> = [];
    const o = new PulseOutput(clock, { ...DEFAULT_LIMITS, pinGuardMs: 0 }, false, (e) => out.push([e.level, e.sent - T0]));
    o.add([{ start: 0, end: 150, level: 1 }], T0 + 10, { event: "long" }); // cut at 100 ms: the fall has no room
    // 4 ms of another node's work starting 3 ms before the fall: a 2 ms margin would wake inside it, 1 ms late.
    clock.setTimer(() => {
      const until = clock.now() + 4;
      while (clock.now() < until) clock.blockUntil!(until);
    }, 107);
    clock.advance(1000);
    assert.deepEqual(
      out,
      [
        [1, 10],
        [0, 110],
      ],
      "the cut pulse ends at exactly 100 ms",
    );
  });
});

describe("pulse output: whole pulses for a timed driver (pulse-out)", () => {
  function wholeRig(limits: Partial<Limits> = {}) {
    const clock = new VirtualClock(T0);
    const lim = { ...DEFAULT_LIMITS, pinGuardMs: 0, ...limits };
    const sent: string[] = [];
    const out = new PulseOutput(
      clock,
      lim,
      false,
      (e) =>
        sent.push(
          e.level > 0 ? `P${e.width}@${Math.round((e.sent - T0) * 1000) / 1000}` : `${e.driven ? "fall" : "LOW"}@${Math.round((e.sent - T0) * 1000) / 1000}`,
        ),
      undefined,
      true,
    );
    return { clock, out, sent };
  }

  it("each pulse is handed on once, whole, with its width; its planned fall is the driver's (nothing to send)", () => {
    const r = wholeRig();
    r.out.add([{ start: 0, end: 5, level: 1 }], T0 + 10, { event: "a" });
    r.out.add([{ start: 0, end: 8, level: 1 }], T0 + 30, { event: "b" });
    r.clock.advance(100);
    assert.deepEqual(r.sent, ["P5@10", "fall@15", "P8@30", "fall@38"]);
  });

  it("a pulse already handed on takes no merge: what overlaps it waits for the minimum off-time, shortened, never widening the first", () => {
    const r = wholeRig({ minOffMs: 2 });
    r.out.add([{ start: 0, end: 10, level: 1 }], T0 + 10, { event: "a" });
    r.clock.advance(5); // t = 5: not yet on
    r.clock.advance(7); // t = 12: on since 10
    r.out.add([{ start: 0, end: 10, level: 1 }], T0 + 14, { event: "b" }); // 14-24 overlaps 10-20
    r.clock.advance(100);
    // The first keeps its 10 ms; the second starts 2 ms after the first's fall and keeps its planned end.
    assert.deepEqual(r.sent, ["P10@10", "fall@20", "P2@22", "fall@24"]);
  });

  it("pulses merge as usual before they are handed on, and are cut at the maximum on-time", () => {
    const r = wholeRig({ maxOnMs: 20 });
    r.out.add([{ start: 0, end: 10, level: 1 }], T0 + 10, { event: "a" });
    r.out.add([{ start: 0, end: 30, level: 1 }], T0 + 15, { event: "b" });
    r.clock.advance(100);
    assert.deepEqual(r.sent, ["P20@10", "fall@30"]);
  });

  it("stop in the middle of a pulse sends a low now", () => {
    const r = wholeRig();
    r.out.add([{ start: 0, end: 50, level: 1 }], T0 + 10, { event: "a" });
    r.clock.advance(20);
    assert.equal(r.out.stop(), true);
    assert.deepEqual(r.sent, ["P50@10", "LOW@20"]);
  });
});

describe("pulse-out: its panel and its messages", () => {
  it("reads the panel and names every bad field", () => {
    const ok = parsePulseOutSettings({ pin: "18", maxOn: 100, minOff: 1, maxRate: 500, late: 50 });
    assert.ok(ok.ok && ok.options.pin === 18 && ok.options.realtime, JSON.stringify(ok));
    const bad = parsePulseOutSettings({ pin: 40, maxOn: 0, maxRate: -1 });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors, [
      "GPIO (BCM) must be a whole number from 2 to 27, got 40",
      "Maximum on-time must be a number from 1 to 60000 ms, got 0",
      "Maximum edge rate must be a number above 0 and up to 10000 edges/s, got -1",
    ]);
  });

  it("takes {on_ms} (due at sqi.edge.planned) or 0 / msg.stop, and says what to send otherwise", () => {
    assert.deepEqual(readPulseInput({ payload: { on_ms: 8 }, sqi: { edge: { planned: 990 } } }, 1000), { kind: "pulse", widthMs: 8, agoMs: 10 });
    assert.deepEqual(readPulseInput({ payload: { on_ms: 8 }, sqi: { edge: { planned: 2000 } } }, 1000), { kind: "pulse", widthMs: 8, agoMs: 0 });
    assert.deepEqual(readPulseInput({ payload: 0 }, 0), { kind: "low" });
    assert.deepEqual(readPulseInput({ stop: true, payload: { on_ms: 5 } }, 0), { kind: "low" });
    for (const [payload, said] of [
      [1, /got 1: to drive it from a pulse-shaper/],
      [{ on_ms: "5" }, /on_ms must be a number .* got "5"/],
      [{ on_ms: 1e9 }, /up to 60000, got 1000000000/],
      [[1], /got an array/],
      [{ width: 5 }, /got an object without on_ms/],
      [null, /got null/],
    ] as const) {
      const r = readPulseInput({ payload }, 0);
      assert.equal(r.kind, "error");
      if (r.kind === "error") assert.match(r.error, said);
    }
  });
});
