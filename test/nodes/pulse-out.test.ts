// pulse-out in Node-RED (the version this leg of the matrix runs), its helper on the simulated
// lgpio writing the pin log: a pulse-shaper with Output "timed pulses" hands it whole pulses,
// and the pin gets them at their width; stop, close and msg.stop end a pulse early and leave the
// pin low and released; bad messages get an error that says what to send; a second pulse-out on
// the same pin is refused with "GPIO busy", and the shaper wired to it stops counting pulses as fired.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { byPin, parsePinLog, type PinRecord } from "../../lib/pulse/audit";
import { gpioEnv } from "../../scripts/gpio-sim";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { waitFor } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-pulse-out-"));
const pinLog = path.join(dir, "pins.jsonl");
const gpio = gpioEnv(pinLog);
Object.assign(process.env, gpio.env);

const { helper, lastStatus, record, settle } = require("../helpers/red") as typeof import("../helpers/red");
const pulseShaper = require("../../nodes/pulse-shaper");
const pulseOut = require("../../nodes/pulse-out");

const recs = (pin: number): PinRecord[] => byPin(parsePinLog(fs.existsSync(pinLog) ? fs.readFileSync(pinLog, "utf8") : "").records).get(pin) ?? [];
function pulses(pin: number): number[] {
  const out: number[] = [];
  let rise: number | undefined;
  for (const r of recs(pin)) {
    if (r.event !== undefined) continue;
    if (r.value === 1) rise = r.t;
    else if (r.value === 0 && rise !== undefined) out.push(r.t - rise);
  }
  return out;
}
function endsLowAndReleased(pin: number): boolean {
  const r = recs(pin);
  const driven = r.filter((x) => x.value !== null);
  return r[r.length - 1]?.event === "released" && driven[driven.length - 1]?.value === 0;
}

function flow(pin: number, width: number, extra: Record<string, unknown>[] = []): Record<string, unknown>[] {
  return [
    { id: "f", type: "tab" },
    { id: "ps", z: "f", type: "pulse-shaper", width, ...SHAPER_DEFAULTS, output: "pulses", rows: [], wires: [["out"], []] },
    { id: "out", z: "f", type: "pulse-out", pin, maxOn: 100, minOff: 1, maxRate: 500, late: 50, realtime: false, wires: [] },
    ...extra,
  ];
}

async function ready(id: string): Promise<void> {
  const r = record(id);
  await waitFor(`${id}'s helper ready`, () => r.statuses.some((s) => s.fill === "green" || s.fill === "yellow") && !/starting/.test(lastStatus(r)), 10_000, 10);
}

describe("pulse-out in Node-RED, on the simulated lgpio", { skip: !gpio.simulated && "a real GPIO is present: this test is for machines without one" }, () => {
  after(async () => {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a shaper's whole pulses reach the pin at their width, and the pin ends low and released on close", async (t) => {
    await helper.load([pulseShaper, pulseOut], flow(24, 20));
    const out = record("out");
    await waitFor("the helper ready", () => /GPIO 24: \d+ fired/.test(lastStatus(out)), 10_000, 10);
    for (let i = 0; i < 5; i++) {
      helper.getNode("ps").receive({ topic: "proton_collision" });
      await new Promise((r) => setTimeout(r, 60));
    }
    await waitFor("five pulses at the pin", () => pulses(24).length >= 5, 5000, 10);
    await waitFor("the status to say 5 fired", () => /5 fired/.test(lastStatus(out)), 5000, 10);
    await helper.unload();
    assert.deepEqual(out.errors, [], "a close (the helper quits when asked) is no error");
    const w = pulses(24);
    t.diagnostic(`widths at the pin: ${w.map((x) => x.toFixed(3)).join(", ")} ms (20 asked)`);
    assert.equal(w.length, 5);
    // The fall is the helper's, not the event loop's: 20 ms at the pin (a busy machine may move
    // one edge, so the median is what is held to 0.5 ms); none anywhere near the 100 ms maximum.
    const median = [...w].sort((a, b) => a - b)[2]!;
    assert.ok(Math.abs(median - 20) < 0.5, `20 ms pulses are 20 ms at the pin: median ${median.toFixed(3)} ms`);
    assert.ok(w.every((x) => x > 10 && x < 100));
    assert.equal(recs(24)[0]?.event, "out", "claimed low first");
    assert.ok(endsLowAndReleased(24), "low and released after close");
  });

  it("msg.stop and a redeploy in the middle of a 90 ms pulse end it at once", async () => {
    await helper.load([pulseShaper, pulseOut], flow(25, 90));
    await ready("out");
    helper.getNode("ps").receive({ topic: "proton_collision" });
    await waitFor("the pulse on", () => recs(25).some((r) => r.value === 1), 5000, 2);
    helper.getNode("ps").receive({ stop: true });
    await waitFor("the pulse ended", () => pulses(25).length === 1, 5000, 2);
    assert.ok(pulses(25)[0]! < 60, `msg.stop cut it: ${pulses(25)[0]!.toFixed(2)} ms of 90`);
    helper.getNode("ps").receive({ topic: "proton_collision" });
    await waitFor("the next pulse on", () => recs(25).filter((r) => r.value === 1).length === 2, 5000, 2);
    await helper.unload();
    const w = pulses(25);
    assert.ok(w.length === 2 && w[1]! < 60, `the close cut the second: ${w.map((x) => x.toFixed(2)).join(", ")} ms`);
    assert.ok(endsLowAndReleased(25), "low and released");
  });

  it("a pulse its helper wrote over the maximum on-time (the helper stopped by the kernel) shows in the status and in a warning that says how late the fall came", async () => {
    await helper.load([pulseShaper, pulseOut], flow(27, 90));
    const out = record("out");
    await ready("out");
    const helperPid = Number(execFileSync("pgrep", ["-P", String(process.pid), "-f", "sqi_pulse_out.py --pin 27"], { encoding: "utf8" }).trim());
    helper.getNode("ps").receive({ topic: "proton_collision" });
    await waitFor("the pulse on", () => recs(27).some((r) => r.value === 1), 5000, 1);
    process.kill(helperPid, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 120));
    process.kill(helperPid, "SIGCONT");
    await waitFor("the warning", () => out.warnings.length > 0, 5000, 10);
    await waitFor("the status to say it", () => /stretched 1/.test(lastStatus(out)), 5000, 10);
    await helper.unload();
    const w = pulses(27);
    assert.ok(w.length === 1 && w[0]! > 100, `over the 100 ms maximum at the pin: ${w.map((x) => x.toFixed(2)).join(", ")} ms`);
    assert.equal(out.warnings.length, 1, out.warnings.join("\n"));
    assert.match(
      out.warnings[0]!,
      /^pulse-out: GPIO 27: a pulse was 1\d\d\.\d\d ms at the pin, over the maximum on-time of 100 ms: the helper wrote the fall up to \d+\.\d\d ms late \(the kernel ran it late: at normal priority .*\) · 1 over in all$/,
    );
    assert.ok(endsLowAndReleased(27), "low and released");
  });

  it("a message that is not a whole pulse gets an error that says what to send; the next good one fires", async (t) => {
    await helper.load([pulseOut], [{ id: "f", type: "tab" }, flow(26, 5)[2]!]);
    const out = record("out");
    await ready("out");
    const o = helper.getNode("out");
    o.receive({ payload: 1 });
    o.receive({ payload: { on_ms: -3 } });
    o.receive({ payload: "high" });
    o.receive({ payload: { on_ms: 12 } });
    await waitFor("the good pulse at the pin", () => pulses(26).length === 1, 5000, 5);
    await settle();
    assert.match(
      out.errors[0]!,
      /pulse-out takes msg.payload \{on_ms: N\} .* got 1: to drive it from a pulse-shaper, set the shaper's Output to "timed pulses \(pulse-out\)"/,
    );
    assert.match(out.errors[1]!, /msg.payload.on_ms must be a number of ms above 0 .* got -3/);
    assert.match(out.errors[2]!, /got "high"/);
    assert.equal(out.errors.length, 3);
    // The helper times the fall from the rise: never shorter than asked. How much later a fall comes
    // on a loaded machine (CI ran this beside eight other test files on 2 cores) is a figure for
    // bench:pulse; at the pin the limit holds: at most the 100 ms maximum on-time.
    t.diagnostic(`the 12 ms pulse at the pin: ${pulses(26)[0]!.toFixed(3)} ms`);
    assert.ok(pulses(26)[0]! >= 11.9 && pulses(26)[0]! <= 100, `${pulses(26)[0]} ms`);
    await helper.unload();
  });

  it("a second pulse-out on the same pin is refused (GPIO busy) and the shaper wired to it counts nothing as fired", async () => {
    await helper.load(
      [pulseShaper, pulseOut],
      flow(27, 5, [
        { id: "ps2", z: "f", type: "pulse-shaper", width: 5, ...SHAPER_DEFAULTS, output: "pulses", rows: [], measureEvery: 0, wires: [["out2"], ["m2"]] },
        { id: "out2", z: "f", type: "pulse-out", pin: 27, realtime: false, wires: [] },
        { id: "m2", z: "f", type: "helper" },
      ]),
    );
    const first = record("out");
    const second = record("out2");
    const shaper = record("ps2", "m2");
    const firstShaper = record("ps");
    await waitFor("one helper ready and one refused", () => /fired/.test(lastStatus(first)) || /fired/.test(lastStatus(second)), 10_000, 10);
    await waitFor("the other refused", () => second.errors.length + first.errors.length > 0, 10_000, 10);
    // Which of the two claims the pin first is a race; the one refused says so.
    const [refused, refusedShaper] = second.errors.length ? [second, "ps2"] : [first, "ps"];
    assert.match(refused.errors[0]!, /pulse-out: GPIO 27: GPIO 27: GPIO busy/);
    // Its red status reached the shaper wired to it (the test helper's status spy shows the
    // shaper's call, nested inside pulse-out's own, so the shaper's status is what is read).
    assert.match(lastStatus(refusedShaper === "ps2" ? shaper : firstShaper), /^pin stopped: GPIO 27: GPIO busy/);
    if (refusedShaper === "ps2") {
      helper.getNode("ps2").receive({ topic: "proton_collision" });
      await new Promise((r) => setTimeout(r, 100));
      helper.getNode("ps2").receive({ measure: true });
      await settle();
      const m = shaper.messages[shaper.messages.length - 1]!.payload as Record<string, number>;
      assert.equal(m.pulses, 0, "nothing counted as fired through a pin whose helper is down");
      assert.ok((m.unfired_pulses ?? 0) >= 1, "what was planned meanwhile is counted as unfired");
    }
    await helper.unload();
  });
});
