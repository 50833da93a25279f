import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClockSync } from "../../lib/bus/clock-sync";
import * as fs from "node:fs";
import * as path from "node:path";
import { Arrivals } from "../../lib/bus/arrivals";
import {
  decodeDownstream,
  decodeUpstream,
  eventFrame,
  flatCounters,
  knownReport,
  PROTOCOL,
  REPORT_GROUPS,
  reportGroups,
  type ReportGroup,
} from "../../lib/bus/frames";
import { listenerReport } from "../../lib/bus/status";
import type { ListenerTransport } from "../../lib/bus/transport";
import { VirtualClock } from "../../lib/clock";
import { packageRoot } from "../../lib/paths";
import { PowerMeter } from "../../lib/power/meter";
import { parseShaperSettings } from "../../lib/pulse/config";
import { Shaper } from "../../lib/pulse/shaper";
import { T0 } from "../helpers/containers";
import { MAX_GAP, SequenceTracker } from "../../lib/bus/sequence";
import { firedTotals, shapersOf } from "../../lib/pulse/fired";

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe("bus frames", () => {
  it("accepts hello, ping and report from a listener, and nothing else", () => {
    assert.deepEqual(decodeUpstream('{"type":"hello","name":"pi-1","protocol":1}'), { ok: true, frame: { type: "hello", name: "pi-1", protocol: 1 } });
    assert.equal(decodeUpstream('{"type":"ping","id":3,"t0":1700000000000.5}').ok, true);
    assert.equal(decodeUpstream('{"type":"report","name":"pi-1","counters":{"pulses":3},"offset_ms":-1.5,"rtt_ms":0.4}').ok, true);
    assert.deepEqual(decodeUpstream('{"event":"proton_collision","payload":{}}'), { ok: false, error: "type: is missing" });
    assert.deepEqual(decodeUpstream('{"type":"batch","events":[]}'), {
      ok: false,
      error: 'type: must be "hello", "ping" or "report": listeners may not send events',
    });
    assert.deepEqual(decodeUpstream("not json"), { ok: false, error: "not JSON" });
    assert.deepEqual(decodeUpstream("[1]"), { ok: false, error: "(root): must be a JSON object" });
    assert.deepEqual(decodeUpstream('{"type":"ping","id":"x","t0":1}'), { ok: false, error: "id: must be an integer" });
    assert.deepEqual(decodeUpstream('{"type":"hello","name":"","protocol":1}'), { ok: false, error: "name: must be a listener name of 1 to 100 characters" });
    assert.deepEqual(decodeUpstream('{"type":"report","name":"a","counters":{"x":"many"}}'), { ok: false, error: "counters.x: must be number" });
  });

  it("accepts the seed's plain frames, batches, welcome and pong from the master", () => {
    assert.equal(decodeDownstream('{"event":"proton_collision","payload":{"energy_mev":14.1}}').ok, true);
    assert.equal(decodeDownstream('{"type":"batch","events":[{"event":"a","seq":1,"at":5},{"event":"b","seq":2,"at":5}]}').ok, true);
    assert.equal(decodeDownstream('{"type":"welcome","protocol":1,"master":"m"}').ok, true);
    assert.equal(decodeDownstream('{"type":"pong","id":1,"t0":1,"t1":2,"t2":3}').ok, true);
    assert.equal(decodeDownstream('{"event":"","payload":{}}').ok, false);
    assert.equal(decodeDownstream('{"event":"a","payload":[]}').ok, false);
  });

  it("builds the event frame from a dc-container message, keeping the seed's two keys", () => {
    const f = eventFrame("proton_collision", { energy_mev: 14.1 }, { container: "c", tick: 1, loop: 0, seq: 99, at: 1700000000050 }, 7);
    assert.deepEqual(f, { event: "proton_collision", payload: { energy_mev: 14.1 }, seq: 7, at: 1700000000050, container: "c", tick: 1, loop: 0 });
    assert.deepEqual(eventFrame("x", "not an object", undefined, 1), { event: "x", payload: {}, seq: 1 });
  });
});

describe("clock sync", () => {
  it("estimates a 150 ms offset within 1 ms under 0-20 ms jitter each way, from 40 pings", () => {
    const r = rng(11);
    const offset = 150; // master = listener + 150
    const sync = new ClockSync();
    let t = 0;
    const naive: number[] = [];
    for (let i = 0; i < 40; i++) {
      t += 50;
      const up = 0.2 + r() * 20;
      const down = 0.2 + r() * 20;
      const t0 = t;
      const t1 = t0 + up + offset;
      const t2 = t1 + 0.1;
      const t3 = t2 - offset + down;
      assert.equal(sync.add(t0, t1, t2, t3), "taken");
      naive.push((t1 - t0 + (t2 - t3)) / 2);
    }
    const e = sync.estimate()!;
    assert.ok(Math.abs(e.offsetMs - offset) < 1, `estimate ${e.offsetMs}`);
    assert.ok(Math.abs(e.offsetMs - offset) <= e.uncertaintyMs, `the truth lies within the stated uncertainty ${e.uncertaintyMs}`);
    assert.ok(naive.filter((o) => Math.abs(o - offset) > 3).length > 10, "single exchanges are much worse: the filter matters");
    // Against the truth, not the estimate's own formula: 10,150 on the master's clock is 10,000 on this one.
    const local = sync.toLocal(10_150)!;
    assert.ok(Math.abs(local - 10_000) < 1 && Math.abs(local - 10_000) <= e.uncertaintyMs, `converted to ${local}`);
  });

  it("is exact on a quiet link, and event frames with the master's send time sharpen the down side", () => {
    const sync = new ClockSync();
    sync.add(1000, 1150.3, 1150.4, 1000.7); // 0.3 ms each way
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 150) < 1e-9);
    const jittery = new ClockSync();
    jittery.add(0, 150 + 0.2, 150.3, 0.3 + 15); // a slow pong: 15 ms down
    assert.ok(Math.abs(jittery.estimate()!.offsetMs - 150) > 5);
    jittery.addDownstream(200, 200 - 150 + 0.2); // an event frame that came down quickly
    assert.ok(Math.abs(jittery.estimate()!.offsetMs - 150) < 0.2, `${jittery.estimate()!.offsetMs}`);
  });

  it("refuses impossible samples, forgets old ones, pings quickly at first and then steadily", () => {
    const sync = new ClockSync(1000);
    assert.equal(sync.add(10, 5, 4, 20), "refused", "master answered before it received");
    assert.equal(sync.add(10, 5, 6, 9), "refused", "pong before ping");
    assert.equal(sync.add(0, 5, 5, 10_001), "refused", "a round trip over 10 s says nothing");
    assert.equal(sync.estimate(), undefined);
    assert.equal(sync.nextPingDelay(2000, 50, 500, 3), 50);
    for (let i = 0; i < 3; i++) sync.add(i, i + 1, i + 1, i + 2);
    assert.equal(sync.nextPingDelay(2000, 50, 500, 3), 500);
    assert.equal(new ClockSync().nextPingDelay(), 50, "the defaults: every 50 ms at first");
    sync.add(5000, 5001, 5001, 5002);
    assert.equal(sync.samples, 1, "samples older than the window are dropped");
    sync.reset();
    assert.equal(sync.estimate(), undefined);
  });
});

describe("clock sync: a sample is evidence, not truth", () => {
  /** A settled estimate: 10 quiet exchanges 100 ms apart with the master 150 ms ahead, 0.3 ms each way. */
  function settled() {
    const sync = new ClockSync();
    let t = 1000;
    const exchange = (offset: number, up = 0.3, down = 0.3) => {
      const r = sync.add(t, t + up + offset, t + up + offset, t + up + down);
      t += 100;
      return r;
    };
    for (let i = 0; i < 10; i++) exchange(150);
    return { sync, exchange, at: () => t };
  }

  it("holds back one forged pong (t1 = t2 = now + 1e12): the offset stays, nothing is counted missed", () => {
    const { sync, at } = settled();
    const t = at();
    assert.equal(sync.add(t, t + 1e12, t + 1e12, t + 1), "held");
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 150) < 0.01, `offset ${sync.estimate()!.offsetMs}`);
    assert.equal(sync.held, 1);
    // A downstream sample from the future (a forged event frame's send time) is held back too.
    sync.addDownstream(t + 5e11, t + 2);
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 150) < 0.01);
    assert.equal(sync.held, 2);
    // Two forgeries that do not agree with each other never make a step.
    assert.equal(sync.add(t + 10, t + 10 + 1e9, t + 10 + 1e9, t + 11), "held");
    assert.equal(sync.add(t + 20, t + 20 + 2e9, t + 20 + 2e9, t + 21), "held");
    assert.equal(sync.add(t + 30, t + 30 + 3e9, t + 30 + 3e9, t + 31), "held");
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 150) < 0.01);
    assert.equal(sync.steps, 0);
  });

  it("follows a real step of the master's clock once 3 samples in a row agree, asking again at once (50 ms) meanwhile", () => {
    const { sync, exchange } = settled();
    assert.equal(exchange(150 + 3600_000), "held", "the master's clock was set an hour ahead");
    assert.equal(sync.nextPingDelay(), 50, "a held sample asks for confirmation soon");
    assert.equal(exchange(150 + 3600_000), "held");
    assert.equal(exchange(150 + 3600_000), "taken");
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 3600_150) < 0.01, `followed: ${sync.estimate()!.offsetMs}`);
    assert.equal(sync.steps, 1);
    // A jittery sample that still overlaps the estimate is evidence, taken at once.
    assert.equal(exchange(3600_150, 20, 0.3), "taken");
  });
});

describe("clock sync: pings back off while the estimate holds", () => {
  it("20 pings 50 ms apart, then 100 ms until a rate is said well, doubling to 2 s while the line holds; a move brings back 100 ms; maxPingMs 100 keeps the old cadence", () => {
    const sync = new ClockSync();
    const delays: number[] = [];
    let t = 0;
    /** one exchange with a symmetric 1 ms trip each way and the master `offset` ahead */
    const exchange = (offset: number): void => {
      sync.add(t, t + 1 + offset, t + 1 + offset, t + 2);
      delays.push(sync.nextPingDelay());
      t += delays[delays.length - 1]!;
    };
    for (let i = 0; i < 120 && delays[delays.length - 1] !== 2000; i++) exchange(5);
    const first = delays.findIndex((d) => d > 100);
    assert.ok(
      delays.slice(0, 19).every((d) => d === 50),
      `${delays}`,
    );
    assert.ok(
      delays.slice(19, first).every((d) => d === 100),
      `${delays}`,
    );
    const said = delays.slice(0, first).reduce((x, y) => x + y, 0);
    assert.ok(said >= 6000 && said < 10_000, `100 ms apart until the rate rests on 6 s of samples: backed off after ${said} ms`);
    for (let i = 0; i < 3; i++) exchange(5);
    assert.deepEqual(delays.slice(first), [200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
    // the estimate moves (the min filter takes a quicker up trip): steady again at 100 ms
    assert.equal(sync.add(t, t + 5.5, t + 5.5, t + 1.5), "taken");
    assert.ok(Math.abs(sync.estimate()!.offsetMs - 4.75) < 0.05, `moved to ${sync.estimate()!.offsetMs}`);
    assert.equal(sync.nextPingDelay(), 100);
    const old = new ClockSync();
    for (let i = 0; i < 30; i++) old.add(i, i + 1, i + 1, i + 2);
    assert.deepEqual([old.nextPingDelay(100), old.nextPingDelay(100), old.nextPingDelay(100)], [100, 100, 100]);
  });
});

describe("sequence accounting", () => {
  it("counts gaps and missing events, duplicates, late arrivals and a master restart", () => {
    const s = new SequenceTracker();
    assert.deepEqual(
      [1, 2, 3, 6, 7].map((n) => s.see(n)),
      ["new", "new", "new", "new", "new"],
    );
    assert.deepEqual({ gaps: s.counters.gaps, missing: s.counters.missing }, { gaps: 1, missing: 2 });
    assert.equal(s.see(7), "duplicate");
    assert.equal(s.see(4), "new", "4 came late, it is not a duplicate");
    assert.deepEqual({ missing: s.counters.missing, reordered: s.counters.reordered }, { missing: 1, reordered: 1 });
    assert.equal(s.see(1), "restart", "the master started again");
    assert.equal(s.see(2), "new");
    assert.deepEqual(s.counters, { received: 9, gaps: 1, missing: 1, duplicates: 1, reordered: 1, restarts: 1, implausible: 0 });
  });

  it("a restarted master's run starts a new stream, whatever seq the listener reconnects at (counted once)", () => {
    const s = new SequenceTracker();
    s.follow("run-a");
    for (let i = 1; i <= 600; i++) s.see(i);
    // The red team's case: the Pi came back after seq 1 of the new master, inside its old window.
    // Before runs, these 590 new events were dropped as duplicates and restarts stayed 0.
    s.follow("run-b");
    const answers = [];
    for (let i = 11; i <= 600; i++) {
      s.follow("run-b");
      answers.push(s.see(i));
    }
    assert.ok(
      answers.every((a) => a === "new"),
      `every event of the new run is new: ${answers.filter((a) => a !== "new").length} were not`,
    );
    assert.equal(s.counters.restarts, 1);
    assert.equal(s.counters.duplicates, 0);
    // Seqs 1-10 of the new run went out while this listener reconnected: missing, not unaccounted.
    // (Joining the first run at seq 11 would not be a loss: nothing was sent to it yet.)
    assert.equal(s.counters.missing, 10);
    assert.deepEqual(s.stream, { first_seq: 11, last_seq: 600, run: "run-b" });
  });

  it("one forged seq cannot claim more than MAX_GAP missing events: counted as implausible", () => {
    const s = new SequenceTracker();
    s.see(1);
    s.see(2);
    assert.equal(s.see(9e15), "new");
    assert.equal(s.counters.missing, 0, "missing not poisoned");
    assert.equal(s.counters.implausible, 1);
    // The real stream goes on far below the forged seq: a new stream, not duplicates.
    assert.equal(s.see(3), "restart");
    assert.equal(s.see(4), "new");
    assert.equal(s.counters.missing, 0);
    // A real gap within the bound still counts.
    s.see(4 + MAX_GAP);
    assert.equal(s.counters.missing, MAX_GAP - 1);
  });

  it("remembers the last 4096 seqs: a repeat within them is a duplicate, older ones are forgotten", () => {
    const s = new SequenceTracker();
    for (let i = 1; i <= 10_000; i++) s.see(i);
    assert.equal(s.see(10_000 - 4095), "duplicate");
    assert.equal(s.see(10_000 - 4096), "restart", "too old to tell: treated as a new stream");
    assert.equal(s.counters.duplicates, 1);
  });
});

describe("fired counters for the reports", () => {
  it("sums the shapers' counters key by key: a report's fired group", () => {
    assert.deepEqual(
      firedTotals([
        { pulses: 3, on_time_ms: 15 },
        { pulses: 2, clamped: 1, bad: Number.NaN },
      ]),
      {
        pulses: 5,
        on_time_ms: 15,
        clamped: 1,
      },
    );
    assert.deepEqual(firedTotals([]), {});
  });

  it("a listening bus speaks for the pulse-shapers on its own tab; a second listening bus there for none", () => {
    const deployed = [
      { id: "tabA", type: "tab" },
      { id: "m", type: "sqi-event-bus", z: "tabA", role: "broadcast" },
      { id: "s1", type: "pulse-shaper", z: "tabA" },
      { id: "l1", type: "sqi-event-bus", z: "tabA", role: "listen" },
      { id: "s2", type: "pulse-shaper", z: "tabA" },
      { id: "l2", type: "sqi-event-bus", z: "tabA", role: "listen" },
      { id: "off", type: "pulse-shaper", z: "tabA", d: true },
      { id: "lb", type: "sqi-event-bus", z: "tabB", role: "listen" },
      { id: "s3", type: "pulse-shaper", z: "tabB" },
      { id: "s4", type: "pulse-shaper", z: "tabC" },
    ];
    assert.deepEqual(shapersOf({ id: "l1", z: "tabA" }, deployed), { shapers: ["s1", "s2"], second: false });
    assert.deepEqual(shapersOf({ id: "l2", z: "tabA" }, deployed), { shapers: [], second: true });
    assert.deepEqual(shapersOf({ id: "lb", z: "tabB" }, deployed), { shapers: ["s3"], second: false });
  });
});

describe("reports: counters in named groups, each with room of its own", () => {
  /** Every key a listener of this package can put in a report, per group: from the real parts that make them. */
  function keysAListenerCanEmit(): Record<ReportGroup, string[]> {
    const clock = new VirtualClock(T0);
    const arrivals = new Arrivals(clock, { late: "fire", toLocal: () => undefined, emit: () => undefined });
    arrivals.push([{ event: "e", payload: {}, seq: 1 }], T0, "r");
    const client = { counters: { connects: 1, reconnects: 0, rejected: 0, frames: 0, events: 0, pings: 0, reports: 0 } } as unknown as ListenerTransport;
    // A shaper with V and R set, after a pin went down and up: every fired_* key it has.
    const parsed = parseShaperSettings({ width: 5, pinGuard: 0, measureEvery: 0, volts: 12, ohms: 6 });
    assert.ok(parsed.ok);
    const shaper = new Shaper(clock, parsed.settings, { edge: () => undefined, changed: () => undefined, failed: () => undefined });
    shaper.take("proton_collision", {}, { at: T0 + 1 });
    shaper.pinDown("stopped");
    shaper.pinUp();
    const fired = firedTotals([shaper.fired()]);
    // A power meter that has had readings, a gap and a bad one: every measured key.
    const meter = new PowerMeter();
    meter.take(5, T0);
    meter.take(-1, T0 + 1);
    meter.take(5, T0 + 10_000);
    const report = listenerReport(client, arrivals, fired, { ...meter.group(T0 + 10_001, true) });
    const { groups } = reportGroups({ ...report, counters: { ...report.counters, lost_while_away: 0 } }, PROTOCOL);
    return { counters: Object.keys(groups.counters), fired: Object.keys(groups.fired ?? {}), measured: Object.keys(groups.measured ?? {}) };
  }

  it("the keys a listener can emit stay under 80 % of each group's bound, and the bounds are the schema's", () => {
    const keys = keysAListenerCanEmit();
    const schema = JSON.parse(fs.readFileSync(path.join(packageRoot, "schemas", "bus-frame.schema.json"), "utf8")) as {
      definitions: {
        upstream: { allOf: Array<{ if: { properties: { type: { const: string } } }; then: { properties: Record<string, { maxProperties?: number }> } }> };
      };
    };
    const report = schema.definitions.upstream.allOf.find((a) => a.if.properties.type.const === "report")!.then.properties;
    for (const group of Object.keys(REPORT_GROUPS) as ReportGroup[]) {
      assert.equal(report[group]?.maxProperties, REPORT_GROUPS[group], `the schema bounds ${group} as lib/bus/frames.ts does`);
      assert.ok(
        keys[group].length <= 0.8 * REPORT_GROUPS[group],
        `${group}: ${keys[group].length} keys a listener can emit, within 20 % of the bound ${REPORT_GROUPS[group]}: give it room (a group of its own) before adding more: ${keys[group].join(", ")}`,
      );
      assert.ok(keys[group].length > 0, `${group}: the test found its keys`);
    }
  });

  it("groups and cuts on the listener, keeps the groups on the master (flat only in its report messages); a group over its bound is 'too large', not abuse", () => {
    const report = { counters: { received: 3 }, fired: { pulses: 2 } as Record<string, number>, measured: { power_w: 1.5 } };
    for (let i = 0; i < 50; i++) report.fired[`k${i}`] = i;
    const v2 = reportGroups(report, 2);
    assert.equal(Object.keys(v2.groups.fired!).length, 40);
    assert.equal(v2.dropped, 11, "51 fired keys into a group of 40");
    assert.deepEqual(v2.groups.counters, { received: 3 });
    assert.deepEqual(v2.groups.measured, { power_w: 1.5 });
    const f = knownReport({ type: "report", name: "pi", ...v2.groups });
    assert.equal(f.fired.pulses, 2);
    assert.equal(f.measured.power_w, 1.5);
    assert.deepEqual(f.counters, { received: 3 });
    // The node's report message: flat, as it has always been.
    assert.deepEqual(Object.keys(flatCounters(f)).slice(0, 3), ["received", "fired_pulses", "fired_k0"]);
    assert.equal(flatCounters(f).measured_power_w, 1.5);
    // A listener of protocol 1 sends them flat: the master puts them in their groups.
    const v1Report = knownReport({ type: "report", name: "pi", counters: { received: 3, fired_pulses: 2, measured_power_w: 1.5 } });
    assert.deepEqual([v1Report.counters, v1Report.fired, v1Report.measured], [{ received: 3 }, { pulses: 2 }, { power_w: 1.5 }]);
    // To a master of protocol 1: flat, at most 50.
    const v1 = reportGroups(report, 1);
    assert.equal(Object.keys(v1.groups.counters).length, 50);
    assert.equal(v1.groups.fired, undefined);
    assert.equal(v1.dropped, 3, "53 counters, 50 of them taken");
    // The master's decoder: a report with 41 fired counters is too large (counted), one with a bad key is rejected.
    const big = decodeUpstream(
      JSON.stringify({ type: "report", name: "pi", counters: {}, fired: Object.fromEntries(Array.from({ length: 41 }, (_, i) => [`k${i}`, i])) }),
    );
    assert.ok(!big.ok && big.tooLarge, JSON.stringify(big));
    assert.match(big.ok ? "" : big.error, /^fired: 41 counters, over the 40/);
    const bad = decodeUpstream(JSON.stringify({ type: "report", name: "pi", counters: { "a-b": 1 } }));
    assert.ok(!bad.ok && !bad.tooLarge);
    // Too large and otherwise wrong (a bad key, an unknown key): rejected as any bad frame, not "too large".
    const fired41 = Object.fromEntries(Array.from({ length: 41 }, (_, i) => [`k${i}`, i]));
    for (const f of [
      { type: "report", name: "pi", counters: { "a-b": 1 }, fired: fired41 },
      { type: "report", name: "pi", counters: {}, fired: fired41, admin: true },
    ]) {
      const d = decodeUpstream(JSON.stringify(f));
      assert.ok(!d.ok && !d.tooLarge, JSON.stringify(d));
    }
    // An old listener's flat report of 51 counters is too large too, not abuse.
    const old = decodeUpstream(
      JSON.stringify({ type: "report", name: "pi", counters: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) }),
    );
    assert.ok(!old.ok && old.tooLarge);
  });
});
