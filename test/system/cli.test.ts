// sqi-dc as a user runs it: a real process, its stdout and its exit code.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { bundledContainersDir, packageRoot } from "../../lib/paths";

const cli = path.join(packageRoot, "dist", "bin", "sqi-dc.js");
const star = path.join(bundledContainersDir, "synthetic_star_core.dc");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-dc-"));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("sqi-dc validate", () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prints FILE: ok for each valid file and exits 0", () => {
    const files = fs.readdirSync(bundledContainersDir).map((f) => path.join(bundledContainersDir, f));
    const r = run("validate", ...files);
    assert.equal(r.code, 0);
    assert.deepEqual(r.out.trim().split("\n"), files.map((f) => `${f}: ok`));
  });

  it("prints one line per problem with FILE and JSON path, and exits 1 if any file is bad", () => {
    const bad = path.join(dir, "bad.dc");
    fs.writeFileSync(bad, JSON.stringify({ container_id: "b", glyphs: [{ tick: 1, event: "a" }, { tick: 2, event: "b" }, { tick: 0, event: "c" }], loop: "no" }));
    const missing = path.join(dir, "missing.dc");
    const r = run("validate", star, bad, missing);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out.trim().split("\n"), [
      `${star}: ok`,
      `${bad}: glyphs[2].tick: must be a positive integer`,
      `${bad}: loop: must be true or false`,
      `${missing}: file not found`,
    ]);
  });

  it("explains its usage when called wrongly", () => {
    const r = run("validate");
    assert.equal(r.code, 2);
    assert.match(r.err, /validate needs at least one FILE/);
    assert.match(run("frobnicate").err, /unknown command frobnicate/);
  });
});

describe("sqi-dc play", () => {
  const parse = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l) as { at: number; tick: number; loop: number; event: string; payload: unknown });

  it("--no-wait prints the timeline at once as JSON lines {at, tick, loop, event, payload}", () => {
    const t0 = Date.now();
    const r = run("play", star, "--ticks", "7", "--no-wait");
    assert.equal(r.code, 0, r.err);
    const lines = parse(r.out);
    assert.deepEqual(
      lines.map((l) => `${l.tick}/${l.loop} ${l.event}`),
      ["1/0 proton_collision", "2/0 atom_spin_flip", "3/0 waveform_emit", "4/0 time_dilation", "5/0 fusion_tick", "1/1 proton_collision", "2/1 atom_spin_flip"],
    );
    assert.deepEqual(Object.keys(lines[0]!), ["at", "tick", "loop", "event", "payload"]);
    assert.deepEqual(lines[0]!.payload, { energy_mev: 14.1, particles: 2, angle: "head-on" });
    assert.ok(Math.abs(lines[0]!.at - t0) < 5000, "the virtual clock starts now");
    const gaps = lines.slice(1).map((l, i) => l.at - lines[i]!.at);
    assert.deepEqual(gaps, [50, 50, 50, 50, 50, 50], "accelerated = 10x: 50 ms per tick");
  });

  it("--speed overrides runtime_speed; without --ticks a looping container plays one pass", () => {
    const lines = parse(run("play", star, "--speed", "1", "--no-wait").out);
    assert.equal(lines.length, 5);
    assert.equal(lines[1]!.at - lines[0]!.at, 500);
  });

  it("plays in real time without --no-wait", () => {
    const start = Date.now();
    const r = run("play", star, "--ticks", "3");
    const took = Date.now() - start;
    assert.equal(r.code, 0);
    assert.equal(parse(r.out).length, 3);
    assert.ok(took >= 140, `3 ticks of 50 ms take at least 150 ms of real time (took ${took})`);
  });

  it("refuses bad options and bad files with a clear message", () => {
    assert.match(run("play", star, "--ticks", "0").err, /--ticks needs a positive whole number, got 0/);
    assert.match(run("play", star, "--speed", "fast").err, /--speed needs a positive number/);
    const r = run("play", path.join(dir, "nope.dc"));
    assert.equal(r.code, 1);
    assert.match(r.err, /nope\.dc: file not found/);
  });
});

describe("sqi-dc audit", () => {
  const auditDir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-audit-"));
  after(() => fs.rmSync(auditDir, { recursive: true, force: true }));
  const write = (name: string, lines: unknown[]) => {
    const f = path.join(auditDir, name);
    fs.writeFileSync(f, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    return f;
  };
  // Pin 18: 5 ms pulses every 20 ms; pin 17: three 10 ms pulses 0.1 ms apart (one 30 ms stretch).
  const good = Array.from({ length: 100 }, (_, k) => [
    { t: 1000 + k * 20, pin: 18, value: 1 },
    { t: 1005 + k * 20, pin: 18, value: 0 },
  ]).flat();
  const bunched = [0, 10.1, 20.2].flatMap((t) => [
    { t: 5000 + t, pin: 17, value: 1 },
    { t: 5010 + t, pin: 17, value: 0 },
  ]);

  it("exits 0 when every pin keeps its limits, and says what it measured", () => {
    const r = run("audit", write("good.jsonl", [{ t: 0, pin: 18, value: 0, event: "out" }, ...good]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^pin 18: 100 pulses, 200 edges; limits: min off 1 ms, edges >= 2 ms apart, max on 100 ms, max duty 50% over 1000 ms$/m);
    assert.match(r.out, /width {5}min 5 \/ median 5 \/ p99 5 \/ max 5 ms/);
    assert.match(r.out, /^ok: 1 pin within the limits$/m);
  });

  it("exits 1 on a violation and names it; the limits can come from options or from a flow's shapers", () => {
    const f = write("bad.jsonl", [...good, ...bunched]);
    const r = run("audit", f, "--max-on-ms=25");
    assert.equal(r.code, 1);
    assert.match(r.out, /VIOLATION: 2 off-times under 1 ms by more than the 0.5 ms allowance \(shortest 0.1 ms\)/);
    assert.match(r.out, /VIOLATION: 1 on-stretches over the maximum on-time of 25 ms \(longest 30.2 ms of 3 pulses\)/);
    const flow = path.join(auditDir, "flow.json");
    fs.writeFileSync(flow, JSON.stringify([{ id: "s", type: "pulse-shaper", name: "coil", maxOn: 100, minOff: 0.05, maxRate: 10000, wires: [["p"], []] }, { id: "p", type: "rpi-gpio out", pin: "17", bcm: true }]));
    const j = run("audit", f, "--flow", flow, "--format", "json");
    assert.equal(j.code, 0, j.out);
    const report = JSON.parse(j.out) as { ok: boolean; pins: Array<{ pin: number; shapers: string; violations: string[] }>; notes: string[] };
    assert.deepEqual([report.ok, report.pins.map((p) => [p.pin, p.shapers, p.violations.length])], [true, [[17, "coil", 0]]]);
    assert.deepEqual(report.notes, [`pin 18: no pulse-shaper in ${flow} drives it: not audited`]);
  });

  it("a usage or file problem exits 2 with a clear message", () => {
    assert.deepEqual(
      [run("audit").code, run("audit", path.join(auditDir, "missing.jsonl")).err.trim(), run("audit", "x", "--max-duty", "0").err.split("\n")[0]],
      [2, `sqi-dc audit: ${path.join(auditDir, "missing.jsonl")}: file not found`, 'sqi-dc: --max-duty must be a number above 0 and up to 100 %, got "0"'],
    );
    assert.equal(run("audit", write("junk.jsonl", ["not a record"])).code, 2, "nothing to audit");
  });
});
