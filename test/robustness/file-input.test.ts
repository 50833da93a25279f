// Every file a user names is opened the same safe way (lib/files.ts): sqi-dc audit given
// /dev/zero or a FIFO as its pin log or its --flow (it grew to 1.2 GB in 3 s, or hung), a
// 255 MiB pin log (it peaked at 2.3-2.6 GB RSS: now streamed, under 200 MB), a pin log on
// standard input; and sqi-sim-sensor whose pin log is a FIFO with no writer (it froze
// Node-RED: the admin API timed out). Every run is bounded in time; every process is stopped.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { startDemo } from "../helpers/demo";
import { killAll } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-files-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const cli = path.join(packageRoot, "dist", "bin", "sqi-dc.js");

/** Runs the CLI (optionally with stdin), killed after `timeoutMs`; its exit code, output and peak RSS (MB). */
function run(
  args: string[],
  opts: { stdin?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string; err: string; ms: number; maxRssMb: number }> {
  // The peak RSS as the process itself saw it, printed last on stderr.
  const probe = `process.on("exit", () => process.stderr.write("\\nmaxrss " + process.resourceUsage().maxRSS + "\\n")); require(${JSON.stringify(cli)});`;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", probe, "x", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => killAll(child.pid), opts.timeoutMs ?? 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const m = /maxrss (\d+)/.exec(err);
      resolve({ code, out, err: err.replace(/\nmaxrss \d+\n/, ""), ms: performance.now() - t0, maxRssMb: m ? Number(m[1]) / 1024 : NaN });
    });
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    else child.stdin.end();
  });
}

describe("sqi-dc audit opens only regular files, and streams them", () => {
  it("/dev/zero and a FIFO, as the pin log or as --flow: refused at once, exit 2, no growth, no hang", async () => {
    const fifo = path.join(dir, "pins.fifo");
    execFileSync("mkfifo", [fifo]);
    const good = path.join(dir, "ok.jsonl");
    fs.writeFileSync(good, '{"t":1,"pin":18,"value":1}\n{"t":6,"pin":18,"value":0}\n');
    for (const args of [
      ["audit", "/dev/zero"],
      ["audit", fifo],
      ["audit", good, "--flow", "/dev/zero"],
      ["audit", good, "--flow", fifo],
      ["audit", dir],
    ]) {
      const r = await run(args, { timeoutMs: 10_000 });
      assert.equal(r.code, 2, `${args.join(" ")}: exit 2, got ${r.code} after ${r.ms.toFixed(0)} ms: ${r.err}`);
      assert.match(r.err, /is not a regular file \(a FIFO, socket or device\)|is a directory, not a file/, r.err);
      assert.ok(r.ms < 5000 && r.maxRssMb < 200, `${args.join(" ")}: ${r.ms.toFixed(0)} ms, ${r.maxRssMb.toFixed(0)} MB`);
    }
  });

  it("a pin log on standard input (-) gets the same verdict as the file", async () => {
    const log = '{"t":0,"pin":18,"value":1}\n{"t":150,"pin":18,"value":0}\n';
    const file = path.join(dir, "long.jsonl");
    fs.writeFileSync(file, log);
    const a = await run(["audit", file, "--max-on-ms", "100"]);
    const b = await run(["audit", "-", "--max-on-ms", "100"], { stdin: log });
    assert.equal(a.code, 1);
    assert.equal(b.code, 1);
    assert.equal(b.out, a.out.replaceAll(file, "standard input"));
    assert.match(b.out, /on-stretches over the maximum on-time of 100 ms/);
  });

  it("a 255 MiB pin log: its verdict in bounded memory (under 200 MB RSS), read line by line", async (t) => {
    const file = path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : dir, `sqi-big-${process.pid}.jsonl`);
    try {
      // 5 ms pulses every 10 ms on two pins, one 120 ms pulse on pin 23 at the end: a violation to find.
      const fd = fs.openSync(file, "w");
      const target = 255 * 1024 * 1024;
      let bytes = 0;
      let t0 = 1_700_000_000_000;
      while (bytes < target) {
        const lines: string[] = [];
        for (let i = 0; i < 10_000; i++, t0 += 10) {
          const pin = i % 2 ? 18 : 23;
          lines.push(`{"t":${t0.toFixed(3)},"pin":${pin},"value":1}`, `{"t":${(t0 + 5).toFixed(3)},"pin":${pin},"value":0}`);
        }
        const chunk = `${lines.join("\n")}\n`;
        fs.writeSync(fd, chunk);
        bytes += chunk.length;
      }
      fs.writeSync(fd, `{"t":${t0 + 100},"pin":23,"value":1}\n{"t":${t0 + 220},"pin":23,"value":0}\n`);
      fs.closeSync(fd);
      const size = fs.statSync(file).size;
      const r = await run(["audit", file, "--format", "json"], { timeoutMs: 120_000 });
      t.diagnostic(`${(size / 1024 / 1024).toFixed(0)} MiB audited in ${(r.ms / 1000).toFixed(1)} s, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
      assert.equal(r.code, 1, r.err);
      const verdict = JSON.parse(r.out) as { pins: Array<{ pin: number; pulses: number; overOn: number }> };
      const p23 = verdict.pins.find((p) => p.pin === 23)!;
      assert.equal(p23.overOn, 1, "the one long pulse is found");
      assert.ok(verdict.pins.reduce((n, p) => n + p.pulses, 0) > 2_000_000, "every pulse counted");
      assert.ok(r.maxRssMb < 200, `peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

describe("sqi-sim-sensor whose pin log is a FIFO with no writer", () => {
  it("is refused and said in its status; Node-RED keeps answering", async () => {
    const fifo = path.join(dir, "sensor.fifo");
    execFileSync("mkfifo", [fifo]);
    const flowFile = path.join(dir, "sensor-flow.json");
    fs.writeFileSync(
      flowFile,
      JSON.stringify([
        { id: "t", type: "tab", label: "sensor" },
        { id: "s", z: "t", type: "sqi-sim-sensor", name: "coil sensor", pin: "18", volts: 12, ohms: 6, sag: 3, every: 0.2, pinLog: fifo, wires: [[]] },
      ]),
    );
    const demo = await startDemo({ SQI_FLOW: flowFile });
    try {
      // The admin API answers throughout the next 3 s (it timed out at 5 s before).
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now();
        const r = await fetch(`http://127.0.0.1:${demo.port}/settings`, { signal: AbortSignal.timeout(5000) });
        assert.ok(r.ok);
        assert.ok(performance.now() - t0 < 2000, `answered in ${(performance.now() - t0).toFixed(0)} ms`);
        await new Promise((res) => setTimeout(res, 200));
      }
      assert.match(demo.output(), /pin log .*sensor\.fifo: is not a regular file/);
    } finally {
      await demo.cleanUp();
    }
  });
});
