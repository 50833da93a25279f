// The limits on input from outside, each on its own: depth and size of any JSON value,
// upstream frames with only their own keys, the rates per listener, long timers, the
// master's account of a listener's absences, the log's once-a-minute summary, a dead pin
// helper's pulses not counted as fired, and the scope's bounded list of listeners.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { decodeDownstream, decodeUpstream, type ReportFrame } from "../../lib/bus/frames";
import { AbsenceLedger } from "../../lib/bus/ledger";
import { MASTER_NOTICES, MinuteNotices } from "../../lib/bus/notices";
import { FrameRates, MAX_PER_SECOND } from "../../lib/bus/rates";
import { RealClock, MAX_TIMEOUT_MS } from "../../lib/clock";
import { loadContainerFile, MAX_CONTAINER_BYTES, parseContainerText, validateContainer } from "../../lib/container/format";
import { checkShape, MAX_JSON_DEPTH, withinDepth } from "../../lib/limits";
import { FiredWhilePinUp } from "../../lib/pulse/fired";
import { MAX_ROSTER, Roster, ROSTER_FORGET_MS } from "../../lib/bus/roster";
import { scopeSnapshot } from "../../lib/scope";

const deepArray = (n: number): string => "[".repeat(n) + "]".repeat(n);
const deepObject = (n: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
};

describe("the depth and size of a value from outside", () => {
  it("names where a value is too deep, without recursing (100,000 levels)", () => {
    const v = JSON.parse(`{"glyphs":[{"payload":${deepArray(100_000)}}]}`);
    const p = checkShape(v, { maxDepth: MAX_JSON_DEPTH });
    assert.ok(p);
    assert.equal(p.message, "is nested more than 32 levels deep");
    assert.match(p.path, /^glyphs\[0\]\.payload(\[0\]){29}$/);
    assert.equal(withinDepth(v, MAX_JSON_DEPTH), false);
    assert.equal(withinDepth(deepObject(31), MAX_JSON_DEPTH), true);
    assert.equal(withinDepth(deepObject(33), MAX_JSON_DEPTH), false);
  });

  it("stops at the size or value count, and a cycle is too deep, not a hang", () => {
    const many = { glyphs: Array.from({ length: 1_000_000 }, () => ({ tick: 1, event: "x" })) };
    const t0 = performance.now();
    const p = checkShape(many, { maxDepth: 32, maxBytes: 5 * 1024 * 1024 });
    assert.equal(p?.message, `is over ${5 * 1024 * 1024} bytes as JSON`);
    assert.ok(performance.now() - t0 < 2000, "stops early, not after the millionth glyph");
    assert.equal(checkShape([1, 2, 3, 4], { maxDepth: 5, maxValues: 3 })?.message, "has more than 3 values");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(checkShape(cyclic, { maxDepth: 32 })?.message, "is nested more than 32 levels deep");
    assert.equal(checkShape({ a: [1, { b: "c" }] }, { maxDepth: 32 }), undefined);
  });
});

describe(".dc containers: depth, size and special files", () => {
  const base = { container_id: "deep", tick_interval_ms: 100 };
  it("a glyph payload 2,500 or 100,000 levels deep is refused with its path (structuredClone overflowed on it)", () => {
    for (const n of [2500, 100_000]) {
      const r = parseContainerText(`{"container_id":"deep","glyphs":[{"tick":1,"event":"x","payload":{"a":${deepArray(n)}}}]}`);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.problems.length, 1);
      assert.match(r.problems[0]!.path, /^glyphs\[0\]\.payload\.a(\[0\])+$/);
      assert.equal(r.problems[0]!.message, "is nested more than 32 levels deep (at most 32)");
    }
    // 20 levels of payload are fine.
    assert.equal(validateContainer({ ...base, glyphs: [{ tick: 1, event: "x", payload: deepObject(20) }] }).ok, true);
  });

  it("a msg.container object is capped as a file is: 1e6 glyphs are refused at once", () => {
    const t0 = performance.now();
    const r = validateContainer({ ...base, glyphs: Array.from({ length: 1_000_000 }, () => ({ tick: 0, event: "" })) });
    const ms = performance.now() - t0;
    assert.equal(r.ok, false);
    if (!r.ok)
      assert.deepEqual(
        r.problems.map((p) => p.message),
        ["is over the 5 MiB limit for .dc containers as JSON"],
      );
    assert.ok(ms < 3000, `refused in ${ms.toFixed(0)} ms (it took 9.6 s and 1.46 GB)`);
  });

  it("the 5 MiB limit is the text's bytes: a file just under it loads, one just over is refused at 1:1", () => {
    const glyph = '{"tick":1,"event":"a"}';
    const head = '{"container_id":"big","tick_interval_ms":100,"glyphs":[';
    const n = Math.floor((MAX_CONTAINER_BYTES - 200 - head.length) / (glyph.length + 1));
    let text = head + Array(n).fill(glyph).join(",") + "]}";
    text += " ".repeat(MAX_CONTAINER_BYTES - 88 - Buffer.byteLength(text)); // 5,242,792 bytes, as the red team's file
    assert.equal(Buffer.byteLength(text), 5_242_792);
    const ok = parseContainerText(text);
    assert.equal(ok.ok, true, ok.ok ? "" : JSON.stringify(ok.problems[0]));
    const over = parseContainerText(text + " ".repeat(89));
    assert.equal(over.ok, false);
    if (!over.ok) assert.deepEqual(over.problems, [{ path: "", message: "is 5.0 MiB, over the 5 MiB limit for .dc containers", line: 1, column: 1 }]);
  });

  it("600,000 small numbers in a 1.1 MiB file load; an object is measured as its exact JSON", () => {
    const numbers = Array.from({ length: 600_000 }, (_, i) => i % 10);
    const text = JSON.stringify({ container_id: "nums", glyphs: [{ tick: 1, event: "a", payload: { n: numbers } }] });
    assert.ok(Buffer.byteLength(text) < 1.2 * 1024 * 1024);
    assert.equal(parseContainerText(text).ok, true);
    assert.equal(validateContainer(JSON.parse(text)).ok, true, "the same value from msg.container");
    // The count is JSON.stringify's, byte for byte: one byte more than the text is refused, the text's own size is not.
    const values: unknown[] = [
      { a: [1, -2.5, 1e21, true, false, null, 'é\n"x\u2028', { b: undefined, c: () => 1 }, [undefined]], 'k"ey': NaN },
      "plain",
      [],
      {},
    ];
    for (const v of values) {
      const size = Buffer.byteLength(JSON.stringify(v));
      assert.equal(checkShape(v, { maxDepth: 32, maxBytes: size }), undefined, JSON.stringify(v));
      assert.equal(checkShape(v, { maxDepth: 32, maxBytes: size - 1 })?.message, `is over ${size - 1} bytes as JSON`, JSON.stringify(v));
    }
  });

  it("a problem deep in a file is placed where its path points, not at 1:1", () => {
    const r = parseContainerText(`{"container_id":"deep",\n "glyphs":[\n  {"tick":1,"event":"x","payload":{"a":${deepArray(40)}}}]}`);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]!.path, /^glyphs\[0\]\.payload\.a(\[0\])+$/);
    assert.equal(r.problems[0]!.line, 3);
    assert.ok((r.problems[0]!.column ?? 0) > 30, `column ${r.problems[0]!.column}`);
  });

  it("only regular files: a FIFO or /dev/zero is refused at once, not read", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-fifo-"));
    try {
      const fifo = path.join(dir, "star.dc");
      execFileSync("mkfifo", [fifo]);
      const r = loadContainerFile(fifo);
      assert.deepEqual(r.ok ? [] : r.problems.map((p) => p.message), ["is not a regular file (a FIFO, socket or device): a .dc container must be a file"]);
      const z = loadContainerFile("/dev/zero");
      assert.deepEqual(z.ok ? [] : z.problems.map((p) => p.message), ["is not a regular file (a FIFO, socket or device): a .dc container must be a file"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("upstream frames: only their own keys, nothing deep", () => {
  it("a report with an extra key holding a 20,000-deep array is refused (it crashed the master through cloneMessage)", () => {
    const r = decodeUpstream(`{"type":"report","name":"pi-1","counters":{"received":1},"x":${deepArray(20_000)}}`);
    assert.deepEqual(r, { ok: false, error: "(root): is nested more than 32 levels deep" });
    const shallow = decodeUpstream(`{"type":"report","name":"pi-1","counters":{"received":1},"x":[1]}`);
    assert.deepEqual(shallow, { ok: false, error: "(root): must be a report frame with only its own keys" });
    assert.equal(decodeUpstream(`{"type":"hello","name":"pi-1","protocol":1,"admin":true}`).ok, false);
    assert.equal(decodeUpstream(`{"type":"ping","id":1,"t0":5,"extra":1}`).ok, false);
    assert.equal(decodeUpstream(`{"type":"report","name":"pi-1","counters":{"a b":1}}`).ok, false, "counter names are plain words");
    assert.equal(decodeUpstream(`{"type":"report","name":"pi-1","counters":{"received":1},"instance":"abc","run":"def","offset_ms":1,"rtt_ms":2}`).ok, true);
    assert.equal(decodeUpstream(`{"type":"hello","name":"pi-1","protocol":1,"instance":"abc"}`).ok, true);
  });

  it("an event payload from a master 20,000 levels deep is refused too (a Pi's flow clones it)", () => {
    assert.deepEqual(decodeDownstream(`{"event":"x","payload":{"a":${deepArray(20_000)}}}`), {
      ok: false,
      error: "(root): is nested more than 32 levels deep",
    });
    assert.equal(decodeDownstream(`{"type":"batch","run":"r1","events":[{"event":"x","payload":{"a":[[1]]}}]}`).ok, true);
  });
});

describe("rates per listener", () => {
  it("counts each kind per second and says which is over", () => {
    const r = new FrameRates();
    for (let i = 0; i < MAX_PER_SECOND.report; i++) assert.equal(r.over("report", 1000.5), undefined);
    assert.equal(r.over("report", 1000.9), "more than 5 report frames a second");
    assert.equal(r.over("ping", 1000.9), undefined, "each kind has its own count");
    assert.equal(r.over("report", 2000), undefined, "a new second");
  });
});

describe("a timer longer than Node's 24.8 days", () => {
  it("is a chain of shorter ones: no TimeoutOverflowWarning, no early fire (a 1 kHz loop before)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on("warning", onWarning);
    const clock = new RealClock();
    let fired = 0;
    try {
      const h = clock.setTimer(() => fired++, MAX_TIMEOUT_MS * 1.5);
      const inf = clock.setTimer(() => fired++, Infinity);
      await new Promise((r) => setTimeout(r, 100));
      clock.clearTimer(h);
      clock.clearTimer(inf);
    } finally {
      process.off("warning", onWarning);
    }
    assert.equal(fired, 0);
    assert.deepEqual(warnings, []);
    // and a short one still fires
    await new Promise<void>((resolve) => clock.setTimer(resolve, 5));
  });
});

describe("the master's account of a listener's absences", () => {
  const report = (instance: string, first: number, last: number, run = "run-1"): ReportFrame => ({
    type: "report",
    name: "pi-1",
    instance,
    run,
    counters: { received: last - first + 1, first_seq: first, last_seq: last },
  });

  it("what went by between one life's last report and the next life's first event is lost_while_away", () => {
    const l = new AbsenceLedger("run-1");
    assert.equal(l.take(report("a", 1, 100), 0).counters.lost_while_away, 0);
    assert.equal(l.take(report("a", 1, 400), 2000).counters.lost_while_away, 0);
    // Node-RED on the Pi killed and started again: a new life, its first event 713.
    assert.equal(l.take(report("b", 713, 800), 9000).counters.lost_while_away, 312);
    assert.equal(l.take(report("b", 713, 900), 11_000).counters.lost_while_away, 312, "counted once");
    // A report of another run (an old master's) is passed on, unaccounted; a listener's own claim is dropped.
    const other = l.take({ ...report("c", 1, 5, "run-0"), counters: { received: 5, lost_while_away: 1e12 } }, 12_000);
    assert.deepEqual(other.counters, { received: 5 });
  });

  it("waits for the new life's first event before it counts", () => {
    const l = new AbsenceLedger("run-1");
    l.take(report("a", 1, 50), 0);
    const early: ReportFrame = { type: "report", name: "pi-1", instance: "b", run: "run-1", counters: { received: 0 } };
    assert.equal(l.take(early, 1000).counters.lost_while_away, 0);
    assert.equal(l.take(report("b", 61, 70), 2000).counters.lost_while_away, 10);
  });
});

describe("refusals in the log", () => {
  it("one line a minute with the count of each kind since the last, nothing when nothing happened", () => {
    const n = new MinuteNotices(MASTER_NOTICES);
    assert.equal(n.line({ unauthorized: 0, rejected: 0 }), undefined);
    assert.equal(
      n.line({ unauthorized: 3, rejected: 120, bad_requests: 1 }, "rejected a frame from x: not JSON"),
      "in the last minute: 3 connections refused without the right token, 1 malformed requests refused, 120 frames rejected (latest: rejected a frame from x: not JSON)",
    );
    assert.equal(n.line({ unauthorized: 3, rejected: 121, bad_requests: 1 }), "in the last minute: 1 frames rejected");
    assert.equal(n.line({ unauthorized: 3, rejected: 121, bad_requests: 1 }), undefined);
  });
});

describe("a pin whose helper died", () => {
  it("holds the fired counters while it is down and counts what was planned meanwhile as unfired", () => {
    const f = new FiredWhilePinUp();
    assert.deepEqual(f.fired({ pulses: 10, edges: 20 }), { pulses: 10, edges: 20, unfired_pulses: 0 });
    f.down({ pulses: 10, edges: 20 });
    assert.deepEqual(f.fired({ pulses: 25, edges: 50 }), { pulses: 10, edges: 20, unfired_pulses: 15 });
    f.up({ pulses: 30, edges: 60 });
    assert.deepEqual(f.fired({ pulses: 31, edges: 62 }), { pulses: 11, edges: 22, unfired_pulses: 20 });
  });
});

describe("the scope's listeners", () => {
  it("forgets names gone silent and never keeps more than the roster's cap", () => {
    const roster = new Roster();
    for (let i = 0; i < MAX_ROSTER + 500; i++) roster.take({ name: `spoof-${i}`, counters: {} }, 1000);
    roster.take({ name: "pi-1", counters: {} }, 1000);
    const snap = (t: number) => scopeSnapshot(t, { shapers: [], masters: [{ id: "m", roster }] });
    assert.equal(snap(1000).summary.listeners, MAX_ROSTER, "the cap holds");
    assert.equal(snap(1000).listeners.length, 20, "the worst 20 are drawn, not 5,000 rows");
    roster.take({ name: "pi-1", counters: {} }, 1000 + ROSTER_FORGET_MS + 1);
    assert.deepEqual(
      snap(1000 + ROSTER_FORGET_MS + 1).listeners.map((l) => l.name),
      ["pi-1"],
    );
  });
});
