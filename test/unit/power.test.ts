// Measured power: a Pi's sensor readings integrated into energy (lib/power/meter), the
// simulated sensor's model over a pin log (lib/power/sim-sensor), and the master's sum beside
// the shapers' estimate (lib/power/tally, the roster and the SQI scope).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { knownReport } from "../../lib/bus/frames";
import { Roster, summaryParts } from "../../lib/bus/roster";
import { VirtualClock } from "../../lib/clock";
import { PowerMeter, readMeasure, SENSOR_SILENT_MS } from "../../lib/power/meter";
import { PinOnTime, reading, SimSensor } from "../../lib/power/sim-sensor";
import { powerOf, sumPower } from "../../lib/power/tally";
import { scopeSnapshot } from "../../lib/scope";
import { T0 } from "../helpers/containers";

/** Sends `power(t)` (t in s since the start) to the meter every `everyMs` on a virtual clock, for `seconds`. */
function drive(meter: PowerMeter, power: (t: number) => unknown, everyMs: number, seconds: number): VirtualClock {
  const clock = new VirtualClock(T0);
  const tick = (): void => {
    meter.take(power((clock.now() - T0) / 1000), clock.now());
    if (clock.now() - T0 < seconds * 1000) clock.setTimer(tick, everyMs);
  };
  tick();
  clock.advance(seconds * 1000 + everyMs);
  return clock;
}

describe("a Pi's power sensor, integrated on its clock", () => {
  it("a ramp and a square wave integrate to their energy by the trapezoid rule", () => {
    // 0 to 100 W over 10 s: 500 J, exact for a straight line.
    const ramp = new PowerMeter();
    drive(ramp, (t) => ({ power_w: 10 * t }), 100, 10);
    assert.ok(Math.abs(ramp.energy - 500) < 1e-6, `ramp: ${ramp.energy} J`);
    // 24 W for the first half of each second, 0 for the other, read every 10 ms for 20 s: 240 J.
    // The trapezoid cuts each step's corner (half a reading's interval), which evens out over rises and falls.
    const square = new PowerMeter();
    drive(square, (t) => (t % 1 < 0.5 ? 24 : 0), 10, 20);
    assert.ok(Math.abs(square.energy - 240) / 240 < 0.01, `square: ${square.energy} J, within 1 % of 240 J`);
    const c = square.counters(T0 + 20_010, true);
    assert.equal(c.measured_samples, 2001);
    assert.equal(c.measured_min_w, 0);
    assert.equal(c.measured_max_w, 24);
    assert.equal(c.measured_bad, 0);
  });

  it("accepts watts, {power_w} and {voltage_v, current_a}; power_w wins over V x I", () => {
    assert.deepEqual(readMeasure(12.5), { ok: true, watts: 12.5 });
    assert.deepEqual(readMeasure({ power_w: 3 }), { ok: true, watts: 3 });
    assert.deepEqual(readMeasure({ voltage_v: 12, current_a: 0.5 }), { ok: true, watts: 6 });
    assert.deepEqual(readMeasure({ power_w: 5, voltage_v: 12, current_a: 2 }), { ok: true, watts: 5 });
    assert.deepEqual(readMeasure(0), { ok: true, watts: 0 });
  });

  it("bad payloads get an error naming the path, are counted, and are never averaged in", () => {
    const bad: Array<[unknown, string]> = [
      ["12", 'msg.payload must be watts (a number), { power_w }, or { voltage_v, current_a }, got the string "12"'],
      [null, "msg.payload must be watts (a number), { power_w }, or { voltage_v, current_a }, got null"],
      [[1, 2], "msg.payload must be watts (a number), { power_w }, or { voltage_v, current_a }, got an array"],
      [{ watts: 3 }, "msg.payload must be watts (a number), { power_w }, or { voltage_v, current_a }, got an object with neither"],
      [NaN, "msg.payload: must be a finite number of W, got NaN"],
      [Infinity, "msg.payload: must be a finite number of W, got Infinity"],
      [{ power_w: -2 }, "msg.payload.power_w: must be 0 or more W, got -2 (is the shunt wired the other way round?)"],
      [{ power_w: 1e9 }, "msg.payload.power_w: must be at most 100000 W, got 1000000000"],
      [{ power_w: "3" }, 'msg.payload.power_w: must be a finite number of W, got the string "3"'],
      [{ voltage_v: 12 }, "msg.payload.current_a: must be a finite number of A, got nothing"],
      [{ voltage_v: 12, current_a: {} }, "msg.payload.current_a: must be a finite number of A, got an object"],
      [{ voltage_v: 5000, current_a: 1 }, "msg.payload.voltage_v: must be at most 1000 V, got 5000"],
    ];
    const meter = new PowerMeter();
    meter.take(10, T0);
    for (const [payload, error] of bad) assert.equal(meter.take(payload, T0 + 500), error, JSON.stringify(payload));
    meter.take(10, T0 + 1000);
    // 10 W for 1 s: the bad ones in between changed nothing.
    assert.equal(meter.energy, 10);
    const c = meter.counters(T0 + 1000);
    assert.equal(c.measured_bad, bad.length);
    assert.equal(c.measured_samples, 2);
    assert.equal(c.measured_min_w, 10);
    assert.equal(c.measured_max_w, 10);
  });

  it("a sensor silent for 5 s is flagged, and the silence is a counted gap, not integrated", () => {
    const meter = new PowerMeter();
    assert.equal(meter.present, false);
    assert.deepEqual(meter.statusPart(T0), { text: "", silent: false }, "no sensor wired: nothing said");
    meter.take(20, T0);
    meter.take(20, T0 + 1000);
    assert.deepEqual(meter.statusPart(T0 + 1000), { text: "20.0 W", silent: false });
    assert.equal(meter.silent(T0 + 1000 + SENSOR_SILENT_MS - 1), false);
    assert.equal(meter.silent(T0 + 1000 + SENSOR_SILENT_MS), true);
    assert.deepEqual(meter.statusPart(T0 + 7000), { text: "sensor silent", silent: true });
    assert.equal(meter.counters(T0 + 7000).measured_age_ms, 6000);
    // It speaks again after 9 s: those 9 s are unknown, so only the 1 s before and the 1 s after count.
    meter.take(20, T0 + 10_000);
    meter.take(20, T0 + 11_000);
    assert.equal(meter.energy, 40);
    assert.equal(meter.counters(T0 + 11_000).measured_gaps, 1);
    assert.equal(meter.silent(T0 + 11_000), false);
    // Only bad payloads: silent too (nothing usable is coming).
    const broken = new PowerMeter();
    broken.take("x", T0);
    assert.equal(broken.silent(T0), true);
  });

  it("min and max are since the last report; energy is since the start", () => {
    const meter = new PowerMeter();
    meter.take(5, T0);
    meter.take(50, T0 + 100);
    const first = meter.counters(T0 + 100, true);
    assert.deepEqual([first.measured_min_w, first.measured_max_w], [5, 50]);
    meter.take(7, T0 + 200);
    const second = meter.counters(T0 + 200, true);
    assert.deepEqual([second.measured_min_w, second.measured_max_w], [7, 7]);
    const third = meter.counters(T0 + 300, true);
    assert.equal(third.measured_min_w, undefined, "no reading since the last report: no min");
    assert.equal(third.measured_power_w, 7);
    assert.ok(Math.abs(third.measured_energy_j - (2.75 + 2.85)) < 1e-9);
  });
});

describe("the simulated sensor's model over a pin log", () => {
  const coil = { volts: 12, ohms: 6, sagPct: 0 };

  it("reads the mean power over each interval; the readings add up to V^2/R x the log's on-time", () => {
    const sensor = new SimSensor(18, coil);
    assert.equal(sensor.read(T0), undefined, "the first call only starts");
    let onMs = 0;
    let energy = 0;
    // 5 ms pulses every 20 ms on pin 18, some on pin 17 (another pin: not this coil)
    for (let t = 0; t < 10_000; t += 20) {
      sensor.onTime.take({ t: T0 + t + 1, pin: 18, value: 1 });
      sensor.onTime.take({ t: T0 + t + 6, pin: 18, value: 0 });
      sensor.onTime.take({ t: T0 + t + 2, pin: 17, value: 1 });
      onMs += 5;
      if ((t + 20) % 500 === 0) energy += sensor.read(T0 + t + 20)!.power_w * 0.5;
    }
    assert.ok(Math.abs(energy - 24 * (onMs / 1000)) < 1e-6, `${energy} J against ${24 * (onMs / 1000)} J`);
    const r = reading(coil, 0.25);
    assert.deepEqual(r, { power_w: 6, voltage_v: 12, current_a: 0.5, duty: 0.25 });
  });

  it("sag lowers the voltage under load; a PWM level counts as that share of on-time", () => {
    const sagged = reading({ volts: 12, ohms: 6, sagPct: 10 }, 1);
    assert.deepEqual(sagged, { power_w: (10.8 * 10.8) / 6, voltage_v: 10.8, current_a: 1.8, duty: 1 });
    const pwm = new PinOnTime(12);
    pwm.take({ t: T0, pin: 12, value: null, event: "pwm" });
    pwm.take({ t: T0, pin: 12, value: 40 });
    pwm.take({ t: T0 + 1000, pin: 12, value: 0 });
    assert.equal(pwm.onMsUntil(T0 + 2000), 400);
    // 1 % and 0.5 % duty are 1 % and 0.5 % on, not a digital 1 (on): 10 ms and 5 ms of each second.
    for (const duty of [1, 0.5]) {
      const low = new PinOnTime(13);
      low.take({ t: T0, pin: 13, value: duty, event: "pwm" });
      low.take({ t: T0 + 1000, pin: 13, value: 0 });
      assert.equal(low.onMsUntil(T0 + 1000), duty * 10, `${duty} % PWM`);
    }
    // A digital pin's 1 is on.
    const digital = new PinOnTime(14);
    digital.take({ t: T0, pin: 14, value: 0, event: "out" });
    digital.take({ t: T0 + 100, pin: 14, value: 1 });
    assert.equal(digital.onMsUntil(T0 + 1100), 1000);
  });

  it("a pin left high keeps drawing; a released pin draws nothing; a record written late is carried, never negative", () => {
    const sensor = new SimSensor(18, coil);
    sensor.read(T0);
    sensor.onTime.take({ t: T0 + 100, pin: 18, value: 1 });
    assert.equal(sensor.read(T0 + 1000)!.power_w, 24 * 0.9, "high since 100 ms: 90 % of the interval");
    // The fall at 1,500 ms reaches the log only after the reading at 2,000 ms was taken.
    assert.equal(sensor.read(T0 + 2000)!.power_w, 24);
    sensor.onTime.take({ t: T0 + 1500, pin: 18, value: 0 });
    const after = sensor.read(T0 + 3000)!;
    assert.equal(after.power_w, 0, "the 500 ms over-read is taken back, not read as negative");
    sensor.onTime.take({ t: T0 + 3200, pin: 18, value: 1 });
    const next = sensor.read(T0 + 4000)!;
    // 800 ms on, less the 500 ms still owed: 300 ms of 1,000
    assert.ok(Math.abs(next.power_w - 24 * 0.3) < 1e-9, String(next.power_w));
    sensor.onTime.take({ t: T0 + 4500, pin: 18, value: null, event: "released" });
    assert.equal(sensor.read(T0 + 5000)!.power_w, 12);
    assert.equal(sensor.read(T0 + 6000)!.power_w, 0);
  });
});

describe("the master's sum of measured power", () => {
  /** A report as a protocol-1 listener writes it (flat), in its groups as the master takes it (knownReport). */
  const report = (name: string, measured: number, estimated?: number, extra: Record<string, number> = {}) =>
    knownReport({
      type: "report",
      name,
      counters: {
        measured_energy_j: measured,
        measured_power_w: 10,
        measured_samples: 100,
        measured_bad: 0,
        measured_gaps: 0,
        measured_age_ms: 200,
        ...(estimated !== undefined ? { fired_energy_j: estimated } : {}),
        ...extra,
      },
      offset_ms: 0.1,
    });

  it("per Pi: measured, estimated and their ratio; a Pi without a sensor has none", () => {
    assert.deepEqual(powerOf(report("a", 90, 100)), { power_w: 10, energy_j: 90, estimated_j: 100, ratio: 0.9, silent: false, bad: 0 });
    assert.equal(powerOf({ fired: { energy_j: 3 }, measured: {} }), undefined);
    assert.equal(powerOf(report("b", 5))!.ratio, null, "no V and R on that Pi: no estimate, no ratio");
    assert.equal(powerOf(report("c", 5, 5, { measured_age_ms: 6000 }))!.silent, true);
  });

  it("sums over every Pi with a sensor: the ratio only over those with an estimate; silent ones not in the power now", () => {
    const s = sumPower([powerOf(report("a", 90, 100))!, powerOf(report("b", 30))!, powerOf(report("c", 60, 50, { measured_age_ms: 9000 }))!]);
    assert.equal(s.pis, 3);
    assert.equal(s.silent, 1);
    assert.equal(s.power_w, 20);
    assert.equal(s.energy_j, 180);
    assert.equal(s.estimated_j, 150);
    assert.equal(s.ratio, 1, "(90 + 60) / (100 + 50)");
    assert.match(s.what, /^electrical energy drawn from the coil supplies/);
  });

  it("the roster's summary and worst list carry it; a silent sensor is trouble, said in the status", () => {
    const roster = new Roster();
    roster.take(report("pi-1", 90, 100), T0);
    roster.take(report("pi-2", 45, 50, { measured_age_ms: 8000 }), T0);
    roster.take({ name: "pi-3", counters: { late: 0 }, offset_ms: 0.2 }, T0);
    const summary = roster.summary(3, T0);
    assert.equal(summary.power?.pis, 2);
    assert.equal(summary.power?.energy_j, 135);
    assert.equal(summary.power?.ratio, 0.9);
    assert.equal(summary.troubled, 1);
    assert.deepEqual(summaryParts(summary), ["1 sensor silent"]);
    const worst = roster.worst(T0);
    assert.deepEqual(
      worst.map((l) => [l.name, l.power?.energy_j ?? null]),
      [
        ["pi-2", 45],
        ["pi-1", 90],
        ["pi-3", null],
      ],
    );
  });

  it("at 1,000 Pis: the sum over all of them, the worst 20 listed, silent sensors first after losses", () => {
    const roster = new Roster();
    for (let i = 0; i < 1000; i++) roster.take(report(`pi-${i}`, 2, 2.5, i % 100 === 7 ? { measured_age_ms: 7000 } : {}), T0);
    const summary = roster.summary(1000, T0);
    assert.equal(summary.power?.pis, 1000);
    assert.equal(summary.power?.silent, 10);
    assert.equal(summary.power?.energy_j, 2000);
    assert.equal(summary.power?.ratio, 0.8);
    assert.equal(summary.power?.power_w, 990 * 10, "the silent ones' last readings are not in the power now");
    const worst = roster.worst(T0);
    assert.equal(worst.length, 20);
    assert.deepEqual(
      worst.slice(0, 10).map((l) => l.power?.silent),
      Array(10).fill(true),
    );
    const snap = scopeSnapshot(T0, { shapers: [], masters: [{ id: "m", roster }] });
    assert.equal(snap.listeners.length, 20);
    assert.equal(snap.power?.pis, 1000);
    assert.equal(snap.power?.energy_j, 2000);
    assert.equal(snap.summary.troubled, 10);
  });

  it("the SQI scope: each Pi's measured and estimated power over time, and their sum", () => {
    const roster = new Roster();
    // Three Pis report every 2 s; each draws 10, 20, 30 W measured against 12, 20, 25 W estimated.
    for (let k = 0; k <= 5; k++) {
      const t = T0 + k * 2000;
      [10, 20, 30].forEach((w, i) => roster.take(report(`pi-${i + 1}`, w * 2 * k, [12, 20, 25][i]! * 2 * k), t));
    }
    const snap = scopeSnapshot(T0 + 10_000, { shapers: [], masters: [{ id: "m", roster }] });
    const pi1 = snap.listeners.find((l) => l.name === "pi-1")!;
    assert.deepEqual(pi1.power?.samples[pi1.power.samples.length - 1], [0, 10, 12]);
    assert.equal(pi1.power?.ratio, 0.833);
    assert.deepEqual([pi1.power?.measured_w, pi1.power?.estimated_w], [10, 12], "both over the last report interval");
    assert.deepEqual([snap.power?.measured_w, snap.power?.estimated_w], [60, 57]);
    assert.equal(snap.power?.pis, 3);
    assert.equal(snap.power?.energy_j, 600);
    assert.equal(snap.power?.estimated_j, 570);
    assert.deepEqual(snap.power?.samples[snap.power.samples.length - 1], [0, 60, 57]);
    assert.equal(snap.power?.ratio, Math.round((600 / 570) * 1000) / 1000);
  });
});
