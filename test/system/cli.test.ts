// sqi-dc as a user runs it: a real process, its stdout and its exit code.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { bundledContainersDir, packageRoot } from "../../lib/paths";

const cli = path.join(packageRoot, "dist", "bin", "sqi-dc.js");
const star = path.join(bundledContainersDir, "synthetic_star_core.dc");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-dc-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  return runWith(undefined, ...args);
}

/** Runs sqi-dc with `input` on its stdin. */
function runWith(input: string | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 20_000, input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("sqi-dc validate", () => {
  // Line 3 holds glyph 2 (its tick, 0, at column 82), line 4 the loop value (column 11).
  const badText =
    '{\n  "container_id": "b",\n  "glyphs": [{ "tick": 1, "event": "a" }, { "tick": 2, "event": "b" }, { "tick": 0, "event": "c" }],\n  "loop": "no"\n}\n';
  const bad = path.join(dir, "bad.dc");
  fs.writeFileSync(bad, badText);

  it("prints FILE: ok on stdout for each valid file and exits 0", () => {
    const files = fs.readdirSync(bundledContainersDir).map((f) => path.join(bundledContainersDir, f));
    const r = run("validate", ...files);
    assert.equal(r.code, 0);
    assert.deepEqual(
      r.out.trim().split("\n"),
      files.map((f) => `${f}: ok`),
    );
    assert.equal(r.err, "");
  });

  it("prints every problem, schema problems too, as FILE:LINE:COL: message (json.path) on stderr, and exits 1", () => {
    const r = run("validate", star, bad);
    assert.equal(r.code, 1);
    assert.equal(r.out, `${star}: ok\n`);
    assert.deepEqual(r.err.trim().split("\n"), [`${bad}:3:82: must be a positive integer (glyphs[2].tick)`, `${bad}:4:11: must be true or false (loop)`]);
    const missing = run("validate", path.join(dir, "missing-key.dc"));
    assert.equal(missing.code, 2, "an unreadable file is not an invalid one");
    fs.writeFileSync(path.join(dir, "no-id.dc"), '{\n  "glyphs": [{ "tick": 1, "event": "a" }]\n}');
    assert.equal(
      run("validate", path.join(dir, "no-id.dc")).err,
      `${path.join(dir, "no-id.dc")}:1:1: is missing (it must be a non-empty string) (container_id)\n`,
    );
    fs.writeFileSync(path.join(dir, "syntax.dc"), '{\n  "container_id": "s",\n  "glyphs": [,]\n}');
    assert.match(
      run("validate", path.join(dir, "syntax.dc")).err,
      new RegExp(`^${path.join(dir, "syntax.dc").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:14: not valid JSON: .+\n$`),
    );
  });

  it("exits 2 with the reason on stderr for a file that cannot be read, even beside an invalid one", () => {
    const missing = path.join(dir, "missing.dc");
    const r = run("validate", bad, missing, dir);
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.ok(r.err.includes(`${missing}: file not found\n`), r.err);
    assert.ok(r.err.includes(`${dir}: is a directory, not a .dc file\n`), r.err);
  });

  it('reads a container from stdin for "-", and --format json reports each file with lines and paths', () => {
    const fromStdin = runWith(fs.readFileSync(star, "utf8"), "validate", "-");
    assert.deepEqual([fromStdin.code, fromStdin.out], [0, "<stdin>: ok\n"]);
    const j = runWith(badText, "validate", "--format=json", star, "-");
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.out), {
      ok: false,
      files: [
        { file: star, ok: true, readable: true, problems: [] },
        {
          file: "<stdin>",
          ok: false,
          readable: true,
          problems: [
            { line: 3, column: 82, path: "glyphs[2].tick", message: "must be a positive integer" },
            { line: 4, column: 11, path: "loop", message: "must be true or false" },
          ],
        },
      ],
    });
    assert.equal(run("validate", "--format", "json", path.join(dir, "gone.dc")).code, 2);
  });

  it("usage problems exit 2 on stderr and point at --help; --help and --version answer on stdout", () => {
    const cases = [run("validate"), run("validate", "--frob", star), run("validate", "--format", "xml", star), run("frobnicate"), run()];
    assert.deepEqual(
      cases.map((r) => r.code),
      [2, 2, 2, 2, 2],
    );
    assert.ok(
      cases.every((r) => r.out === ""),
      "nothing on stdout",
    );
    assert.match(cases[0]!.err, /^sqi-dc validate: needs at least one FILE \(or - for stdin\)\nTry 'sqi-dc validate --help'\.\n$/);
    assert.match(cases[1]!.err, /^sqi-dc validate: unknown option --frob\n/);
    assert.match(cases[2]!.err, /^sqi-dc validate: --format must be text or json, got "xml"\n/);
    assert.match(cases[3]!.err, /^sqi-dc: unknown command frobnicate\n/);
    const version = (JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string }).version;
    assert.deepEqual([run("--version").out, run("-v").code], [`${version}\n`, 0]);
    for (const cmd of ["validate", "play", "audit"]) {
      const h = run(cmd, "--help");
      assert.deepEqual([h.code, h.err], [0, ""], `${cmd} --help`);
      assert.match(h.out, new RegExp(`^sqi-dc ${cmd} `), `${cmd} --help shows that command's usage`);
      assert.equal(run("help", cmd).out, h.out);
    }
    assert.match(run("--help").out, /^usage: sqi-dc <command>/);
  });
});

describe("sqi-dc play", () => {
  const parse = (out: string) =>
    out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { at: number; tick: number; loop: number; event: string; payload: unknown });

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
    assert.match(run("play", star, "--ticks").err, /^sqi-dc play: --ticks needs a value\n/);
    const r = run("play", path.join(dir, "nope.dc"));
    assert.equal(r.code, 2);
    assert.match(r.err, /nope\.dc: file not found/);
    fs.writeFileSync(path.join(dir, "bad-play.dc"), '{"container_id": "p", "glyphs": []}');
    const invalid = run("play", path.join(dir, "bad-play.dc"));
    assert.deepEqual([invalid.code, invalid.err], [1, `${path.join(dir, "bad-play.dc")}:1:33: must be a non-empty array of glyphs (glyphs)\n`]);
  });

  it("takes --opt=value and reads the container from stdin for -", () => {
    const r = runWith(fs.readFileSync(star, "utf8"), "play", "--ticks=2", "--speed=1", "--no-wait", "-");
    assert.equal(r.code, 0, r.err);
    const lines = parse(r.out);
    assert.deepEqual(
      lines.map((l) => l.event),
      ["proton_collision", "atom_spin_flip"],
    );
    assert.equal(lines[1]!.at - lines[0]!.at, 500);
  });

  it("ends quietly when its reader closes the pipe early (| head -1)", async () => {
    for (const wait of [
      ["--no-wait", "--ticks=200000"],
      ["--ticks=100000", "--speed=1000"],
    ]) {
      const child = spawn(process.execPath, [cli, "play", star, ...wait], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      try {
        // Like head -1: read the first line, then close the pipe.
        await new Promise<void>((resolve) => {
          let got = "";
          child.stdout.on("data", (d: Buffer) => {
            got += d.toString();
            if (got.includes("\n")) {
              child.stdout.destroy();
              resolve();
            }
          });
        });
        const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 10 s"), 10_000))]);
        assert.deepEqual([code, stderr], [0, ""], `${wait.join(" ")}: exit 0 and nothing on stderr (no EPIPE stack)`);
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    }
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
    fs.writeFileSync(
      flow,
      JSON.stringify([
        { id: "s", type: "pulse-shaper", name: "coil", maxOn: 100, minOff: 0.05, maxRate: 10000, wires: [["p"], []] },
        { id: "p", type: "rpi-gpio out", pin: "17", bcm: true },
      ]),
    );
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
