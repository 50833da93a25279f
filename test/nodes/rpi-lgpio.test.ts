// The real rpi-gpio out and pulse-out on a simulated Pi 5: RPi.GPIO is rpi-lgpio on lgpio
// (SQI_GPIO_LIB=rpi-lgpio, sim/rpi-lgpio), as Node-RED's installer sets a Pi up on Bookworm and
// later. What differs at the pin from the old RPi.GPIO, checked in the pin log: one process per
// pin (a second node on a pin fails with "GPIO busy", and the shaper and pulse-out say so when
// the flows start), PWM through lgpio's tx_pwm, and a helper that dies (even by SIGKILL) frees
// its pin, which becomes an input that the gate's pull-down holds low.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { byPin, parsePinLog, type PinRecord } from "../../lib/pulse/audit";
import { gpioEnv } from "../../scripts/gpio-sim";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { waitFor } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-rpi-lgpio-"));
const pinLog = path.join(dir, "pins.jsonl");
const gpio = gpioEnv(pinLog, { ...process.env, SQI_GPIO_LIB: "rpi-lgpio" });
// rpi-gpio decides at require time whether GPIO works here, so the environment comes first.
Object.assign(process.env, gpio.env, { SQI_GPIO_LIB: "rpi-lgpio" });

const { helper, lastStatus, record } = require("../helpers/red") as typeof import("../helpers/red");
const piGpio = require("node-red-node-pi-gpio/36-rpi-gpio.js");
const pulseShaper = require("../../nodes/pulse-shaper");
const pulseOut = require("../../nodes/pulse-out");

const recs = (pin: number): PinRecord[] => byPin(parsePinLog(fs.existsSync(pinLog) ? fs.readFileSync(pinLog, "utf8") : "").records).get(pin) ?? [];
const driven = (pin: number) => recs(pin).filter((r) => r.event === undefined);
const pinOut = (id: string, pin: number, more: Record<string, unknown> = {}) => ({
  id,
  z: "f",
  type: "rpi-gpio out",
  name: `pin ${id}`,
  pin: String(pin),
  set: true,
  level: "0",
  freq: "",
  out: "out",
  bcm: true,
  ...more,
  wires: [],
});
const shaper = (id: string, wires: string[], more: Record<string, unknown> = {}) => ({
  id,
  z: "f",
  type: "pulse-shaper",
  width: 30,
  ...SHAPER_DEFAULTS,
  rows: [],
  ...more,
  wires: [wires, []],
});
/** The Python process under rpi-gpio out's helper script. */
const pythonOf = (node: unknown) =>
  Number(
    execFileSync("pgrep", ["-P", String((node as { child: { pid: number } }).child.pid), "python3"], { encoding: "utf8" })
      .trim()
      .split("\n")[0],
  );

describe(
  "rpi-gpio out and pulse-out on a simulated Pi 5 (rpi-lgpio)",
  { skip: !gpio.simulated && "a real GPIO is present: this test is for machines without one" },
  () => {
    before(() => fs.writeFileSync(pinLog, ""));
    after(async () => {
      await helper.unload();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("two rpi-gpio out on one pin: one fails with GPIO busy, the other drives the pin, and the shaper warns when the flows start", async () => {
      await helper.load([pulseShaper, piGpio], [{ id: "f", type: "tab" }, shaper("ps", ["a", "b"]), pinOut("a", 5), pinOut("b", 5, { name: "b (same pin)" })]);
      const spy = helper.log();
      const warned = () => spy.args.filter(([e]) => e.level === spy.WARN && e.id === "ps").map(([e]) => String(e.msg));
      // Whichever helper claims the pin first keeps it; the other's setup() meets "GPIO busy" and it exits.
      const running = () => ["a", "b"].filter((id) => (helper.getNode(id) as unknown as { running: boolean }).running);
      await waitFor("one helper left running", () => running().length === 1, 10_000, 20);
      for (let i = 0; i < 3; i++) {
        helper.getNode("ps").receive({ topic: "proton_collision" });
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor("three pulses at the pin", () => driven(5).filter((r) => r.value === 1).length >= 3, 5000, 10);
      const left = running();
      await helper.unload();
      assert.equal(left.length, 1, "one rpi-gpio out still runs");
      assert.equal(recs(5).filter((r) => r.event === "out").length, 1, `one process claimed GPIO 5: ${JSON.stringify(recs(5))}`);
      assert.match(
        warned().join("\n"),
        /GPIO 5 is claimed by 2 nodes \(rpi-gpio out "pin a", rpi-gpio out "b \(same pin\)"\): .*"GPIO busy".* Give each pin one node\./,
      );
      assert.equal(recs(5).at(-1)?.event, "released", "the first released it on close");
    });

    it("PWM is lgpio's tx_pwm: the duties reach the pin log, and a close stops it low and frees the pin", async () => {
      await helper.load(
        [pulseShaper, piGpio],
        [
          { id: "f", type: "tab" },
          shaper("ps", ["p"], { output: "pwm", rows: [{ event: "glow", shape: "pwm", width: 40 }] }),
          pinOut("p", 12, { out: "pwm", freq: "100", set: false }),
        ],
      );
      await new Promise((r) => setTimeout(r, 800)); // the helper starts
      for (const amplitude of [0.3, 0.9]) {
        helper.getNode("ps").receive({ topic: "glow", payload: { amplitude } });
        await new Promise((r) => setTimeout(r, 120));
      }
      await waitFor("two PWM pulses", () => driven(12).filter((r) => Number(r.value) > 0).length >= 2, 5000, 10);
      await helper.unload();
      const r = recs(12);
      assert.equal(r.find((x) => x.event === "pwm")?.value, 0, "set up for PWM at duty 0");
      assert.deepEqual(
        driven(12)
          .map((x) => Number(x.value))
          .filter((v) => v > 0),
        [30, 90],
        "the duties as the shaper sent them",
      );
      const last = driven(12).at(-1);
      assert.equal(Number(last?.value), 0, "stopped low");
      assert.equal(r.at(-1)?.event, "released", "and freed");
    });

    it("rpi-gpio out's helper killed with SIGKILL mid-pulse: the kernel frees its pin (an input, low by the pull-down), where RPi.GPIO left it high", async () => {
      // A 400 ms pulse, so that the kill lands inside it on a busy machine too (a 90 ms one ended
      // first in CI). The next test covers a fall written into the dead helper's pipe.
      await helper.load([pulseShaper, piGpio], [{ id: "f", type: "tab" }, shaper("ps", ["k"], { width: 400, maxOn: 1000 }), pinOut("k", 13)]);
      await waitFor("the helper's python", () => recs(13).some((r) => r.event === "out"), 10_000, 20);
      const python = pythonOf(helper.getNode("k"));
      helper.getNode("ps").receive({ topic: "proton_collision" });
      await waitFor("the pulse on", () => driven(13).at(-1)?.value === 1, 5000, 2);
      process.kill(python, "SIGKILL");
      await waitFor("the pin freed", () => recs(13).at(-1)?.event === "released", 5000, 10);
      await waitFor("rpi-gpio out sees its helper gone", () => !(helper.getNode("k") as unknown as { running: boolean }).running, 5000, 10);
      await helper.unload();
      const r = recs(13);
      assert.equal(driven(13).at(-1)?.value, 1, "no fall was written: the helper died mid-pulse");
      assert.equal(r.at(-1)?.event, "released", "freed by the kernel when the helper died");
    });

    it("an edge written into the pipe of a helper that has just died is caught and said, not an exception that would stop Node-RED", async () => {
      await helper.load([pulseShaper, piGpio], [{ id: "f", type: "tab" }, shaper("ps", ["d"], { width: 400, maxOn: 1000 }), pinOut("d", 19)]);
      await waitFor("the helper's python", () => recs(19).some((r) => r.event === "out"), 10_000, 20);
      const gpioOut = helper.getNode("d") as unknown as { child: { pid: number }; running: boolean };
      const [shell, python] = [gpioOut.child.pid, pythonOf(gpioOut)];
      const spy = helper.log();
      helper.getNode("ps").receive({ topic: "proton_collision" });
      await waitFor("the pulse on", () => driven(19).at(-1)?.value === 1, 5000, 2);
      process.kill(python, "SIGKILL");
      // Held here (no turn of the event loop) until the helper and its shell are gone: rpi-gpio
      // out cannot have seen them close, and the stop's falling edge goes into the dead pipe.
      const gone = (pid: number) => {
        // Gone, or a zombie not yet reaped; it may vanish between two reads (seen in CI: ENOENT).
        try {
          return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
        } catch {
          return true;
        }
      };
      const until = Date.now() + 5000;
      while (!(gone(python) && gone(shell)) && Date.now() < until);
      assert.ok(gone(python) && gone(shell), "the helper died");
      assert.equal(gpioOut.running, true, "rpi-gpio out has not seen it yet");
      helper.getNode("ps").receive({ stop: true });
      const warned = () => spy.args.filter(([e]) => e.level === spy.WARN && e.id === "ps").map(([e]) => String(e.msg));
      await waitFor("the shaper says so", () => warned().some((w) => /its helper's pipe is closed \(EPIPE\)/.test(w)), 5000, 10);
      await helper.unload();
      assert.equal(warned().filter((w) => /pipe is closed/.test(w)).length, 1, "said once");
    });

    it("pulse-out and rpi-gpio out on one pin: one of them gets GPIO busy, and pulse-out warns of the other", async () => {
      await helper.load(
        [pulseShaper, pulseOut, piGpio],
        [
          { id: "f", type: "tab" },
          { id: "po", z: "f", type: "pulse-out", name: "coil", pin: 16, maxOn: 100, minOff: 1, maxRate: 500, late: 50, realtime: false, wires: [] },
          pinOut("g", 16, { name: "led" }),
        ],
      );
      const spy = helper.log();
      const warned = () => spy.args.filter(([e]) => e.level === spy.WARN && e.id === "po").map(([e]) => String(e.msg));
      const po = record("po");
      const gpioOut = helper.getNode("g") as unknown as { running: boolean };
      const poBusy = () => /GPIO busy/.test(lastStatus(po));
      await waitFor("one of them to fail", () => poBusy() || !gpioOut.running, 10_000, 20);
      await new Promise((r) => setTimeout(r, 300)); // the other one keeps running
      const [busy, outDown] = [poBusy(), !gpioOut.running];
      await helper.unload();
      assert.ok(busy !== outDown, `exactly one of them failed: pulse-out "${lastStatus(po)}", rpi-gpio out's helper ${outDown ? "exited" : "runs"}`);
      assert.match(warned().join("\n"), /GPIO 16 is claimed by 2 nodes \(pulse-out "coil", rpi-gpio out "led"\)/);
      assert.equal(recs(16).filter((r) => r.event === "out").length, 1, "one process claimed GPIO 16");
    });
  },
);
