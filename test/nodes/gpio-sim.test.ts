// dc-container driving the real rpi-gpio out node of node-red-node-pi-gpio, whose Python
// helper imports the simulated RPi.GPIO and writes every pin change to the pin log.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { gpioEnv, parsePinLog, type PinRecord } from "../../scripts/gpio-sim";
import { resolveNodeRed } from "../../scripts/node-red-path";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { waitFor } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gpio-sim-"));
const pinLog = path.join(dir, "pins.jsonl");
const gpio = gpioEnv(pinLog);
// rpi-gpio decides at require time whether GPIO works here, so the environment comes first.
Object.assign(process.env, gpio.env);

// Loaded after the environment is set, on purpose.
const { helper, settle } = require("../helpers/red") as typeof import("../helpers/red");
const dcContainer = require("../../nodes/dc-container");
const piGpio = require("node-red-node-pi-gpio/36-rpi-gpio.js");
const pulseShaper = require("../../nodes/pulse-shaper");
const change = require(resolveNodeRed("@node-red/nodes/core/function/15-change.js"));

describe("rpi-gpio out on the simulated GPIO", { skip: !gpio.simulated && "a real RPi.GPIO is present: this test is for machines without one" }, () => {
  before(() => fs.writeFileSync(pinLog, ""));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a container's on/off events reach the pin as edges, each within a few ms of its at", async (t) => {
    const c = {
      container_id: "blink",
      glyphs: [
        { tick: 1, event: "on" },
        { tick: 2, event: "off" },
      ],
      loop: true,
      tick_interval_ms: 100,
      metadata: { runtime_speed: "realtime" },
    };
    const ats: number[] = [];
    await helper.load(
      [dcContainer, piGpio, change],
      [
        { id: "f", type: "tab" },
        {
          id: "dc",
          z: "f",
          type: "dc-container",
          source: "inline",
          json: JSON.stringify(c),
          autostart: true,
          startDelay: 1.5,
          lead: 0,
          accel: 10,
          wires: [["level", "tap"]],
        },
        { id: "level", z: "f", type: "change", rules: [{ t: "set", p: "payload", pt: "msg", to: 'topic = "on" ? 1 : 0', tot: "jsonata" }], wires: [["pin"]] },
        { id: "pin", z: "f", type: "rpi-gpio out", pin: "18", set: true, level: "0", out: "out", bcm: true, wires: [] },
        { id: "tap", z: "f", type: "helper" },
      ],
    );
    helper.getNode("tap").on("input", (m: { sqi: { at: number } }) => ats.push(m.sqi.at));
    await new Promise((r) => setTimeout(r, 2700)); // 1.5 s for the GPIO helper to start, then 12 ticks
    helper.getNode("dc").receive({ payload: "stop" });
    await settle();
    await new Promise((r) => setTimeout(r, 100));
    await helper.unload();

    const recs = parsePinLog(fs.readFileSync(pinLog, "utf8")).filter((r) => r.pin === 18);
    assert.deepEqual(recs[0] && { value: recs[0].value, event: recs[0].event }, { value: 0, event: "out" }, "initialised low");
    const edges = recs.filter((r) => r.event === undefined);
    assert.ok(edges.length >= 10, `at least 10 edges in 1.2 s of 100 ms ticks, got ${edges.length}`);
    edges.forEach((e, i) => assert.equal(e.value, i % 2 === 0 ? 1 : 0, "alternating, starting high"));
    // Every edge matches a message's at (the node fires on receipt here: lead 0).
    const errors = edges.map((e, i) => e.t - ats[i]!).sort((a, b) => a - b);
    const median = errors[Math.floor(errors.length / 2)]!;
    assert.ok(median >= 0 && median < 20, `median edge lateness ${median.toFixed(2)} ms`);
    t.diagnostic(`${edges.length} edges; median edge lateness after at ${median.toFixed(2)} ms, worst ${errors[errors.length - 1]!.toFixed(2)} ms`);
    const gaps = edges.slice(1).map((e, i) => e.t - edges[i]!.t);
    assert.ok(
      gaps.every((g) => g > 60 && g < 140),
      `edges 100 ms apart within 40 ms: ${gaps.map((g) => g.toFixed(1)).join(", ")}`,
    );
  });

  /**
   * Stops the flows 10-20 ms into a 90 ms pulse and returns the driven values and how long the pin
   * was high. rpi-gpio out is first in the flow: Node-RED closes nodes in this order, so it kills
   * its helper before the shaper's own close runs.
   */
  async function stopMidPulse(pin: number): Promise<{ values: Array<number | null>; highMs: number; lowBeforeRelease: boolean }> {
    fs.writeFileSync(pinLog, "");
    await helper.load(
      [pulseShaper, piGpio],
      [
        { id: "f", type: "tab" },
        { id: "pin", z: "f", type: "rpi-gpio out", pin: String(pin), set: true, level: "0", out: "out", bcm: true, wires: [] },
        { id: "src", z: "f", type: "helper", wires: [["ps"]] },
        { id: "ps", z: "f", type: "pulse-shaper", width: 90, maxOn: 100, measureEvery: 0, wires: [["pin"], []] },
      ],
    );
    const log = () => parsePinLog(fs.readFileSync(pinLog, "utf8")).filter((r) => r.pin === pin);
    const waitLog = async (what: string, ok: (r: PinRecord) => boolean): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!log().some(ok) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      assert.ok(log().some(ok), what);
    };
    // Let the GPIO helper start (its pin set up low) before the pulse, as a deployed flow would:
    // otherwise the helper, still starting, takes the whole 90 ms pulse at once after it ended.
    await waitLog("rpi-gpio out's helper set the pin up", (r) => r.event === "out");
    helper.getNode("ps").receive({ topic: "proton_collision" });
    await waitLog("the pulse started", (r) => r.value === 1);
    await helper.unload();
    await new Promise((r) => setTimeout(r, 300));
    const driven = log().filter((r) => r.value !== null);
    const released = log().find((r) => r.event === "released");
    return {
      values: driven.map((r) => r.value),
      highMs: driven.length >= 3 ? driven[2]!.t - driven[1]!.t : NaN,
      lowBeforeRelease: driven.length >= 3 && released !== undefined && driven[2]!.t <= released.t,
    };
  }

  it("a pulse-shaper stopped in the middle of a long pulse leaves the real rpi-gpio out low", async () => {
    const { values, highMs, lowBeforeRelease } = await stopMidPulse(23);
    assert.deepEqual(values, [0, 1, 0], "initialised low, high, then low again although the flow stopped mid-pulse");
    assert.ok(lowBeforeRelease, "the helper took the 0 before it released the pin");
    assert.ok(highMs < 80, `cut short by the stop: high for ${highMs.toFixed(1)} ms of 90`);
  });

  it("without Node-RED's internal flows:stopping event, the fallback (the guarded close) still leaves the pin low", async () => {
    // A Node-RED that does not emit "flows:stopping": the runtime's own event bus drops it.
    const events = require(resolveNodeRed("@node-red/util")).events as { emit: (name: string, ...args: unknown[]) => boolean };
    const emit = events.emit;
    let dropped = 0;
    events.emit = function (this: unknown, name: string, ...args: unknown[]) {
      if (name === "flows:stopping") {
        dropped++;
        return false;
      }
      return emit.call(this, name, ...args);
    };
    try {
      const { values, highMs, lowBeforeRelease } = await stopMidPulse(24);
      assert.ok(dropped >= 1, "flows:stopping was emitted and dropped");
      assert.deepEqual(values, [0, 1, 0], "initialised low, high, then low again with no flows:stopping");
      assert.ok(lowBeforeRelease, "the helper took the 0 before it released the pin");
      assert.ok(highMs < 80, `cut short by the stop: high for ${highMs.toFixed(1)} ms of 90`);
    } finally {
      events.emit = emit;
    }
  });

  it("a shaper wired to an rpi-gpio out that does not initialise its pin low warns once per deploy, naming the pin and the fix; one initialised low gets no warning", async () => {
    const pinNode = (id: string, pin: string, more: Record<string, unknown>) => ({
      id,
      z: "f",
      type: "rpi-gpio out",
      name: `coil ${pin}`,
      pin,
      bcm: true,
      out: "out",
      freq: "",
      ...more,
      wires: [],
    });
    await helper.load(
      [pulseShaper, piGpio],
      [
        { id: "f", type: "tab" },
        { id: "ps", z: "f", type: "pulse-shaper", width: 5, ...SHAPER_DEFAULTS, rows: [], wires: [["unticked", "high", "low", "pwm"], []] },
        pinNode("unticked", "5", { set: false, level: "0" }),
        pinNode("high", "6", { set: true, level: "1" }),
        pinNode("low", "7", { set: true, level: "0" }),
        pinNode("pwm", "8", { out: "pwm", freq: "100" }),
      ],
    );
    // Said when the flows start, which helper.load awaits: read from the log.
    const spy = helper.log();
    const warned = () => spy.args.filter(([e]) => e.level === spy.WARN && e.id === "ps").map(([e]) => String(e.msg));
    await waitFor("the warnings", () => warned().length >= 2, 5000, 10);
    await new Promise((r) => setTimeout(r, 200));
    await helper.unload();
    const w = warned();
    assert.equal(w.length, 2, w.join("\n"));
    assert.match(
      w[0]!,
      /^pulse-shaper: rpi-gpio out "coil 5" \(GPIO 5\) does not initialise its pin \("Initialise pin state" unticked\): .*SIGINT.* Tick "Initialise pin state" and set it to low\.$/,
    );
    assert.match(w[1]!, /^pulse-shaper: rpi-gpio out "coil 6" \(GPIO 6\) initialises its pin high: /);
  });
});
