// rpi-gpio out's Python helper killed with kill -9 in the middle of a pulse (the real node of
// node-red-node-pi-gpio, its helper on the simulated RPi.GPIO). The package cannot restart
// another node's helper, and the pin stays where the helper left it. It notices the wired
// node's red status: stops handing it edges (each would be an error), stops counting what it
// plans as fired (unfired_pulses instead), shows it in its status and says so once in the log.
// The four places that say what fired agree: the reports (fired_*), the measurements output,
// the SQI scope (its counters and the edges it draws) and the status.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { gpioEnv, parsePinLog } from "../../scripts/gpio-sim";
import { SHAPER_DEFAULTS } from "../helpers/flows";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-helper-kill-"));
const pinLog = path.join(dir, "pins.jsonl");
const gpio = gpioEnv(pinLog);
// rpi-gpio decides at require time whether GPIO works here, so the environment comes first.
Object.assign(process.env, gpio.env);

const { helper, lastStatus, record, settle } = require("../helpers/red") as typeof import("../helpers/red");
const { firedTotals } = require("../../lib/pulse/fired") as typeof import("../../lib/pulse/fired");
const { scopeSnapshot } = require("../../lib/scope") as typeof import("../../lib/scope");
const piGpio = require("node-red-node-pi-gpio/36-rpi-gpio.js");
const pulseShaper = require("../../nodes/pulse-shaper");

describe("rpi-gpio out's helper killed mid-pulse", { skip: !gpio.simulated && "a real RPi.GPIO is present: this test is for machines without one" }, () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("the shaper stops sending to it and counting pulses as fired, shows it, and logs it once", async (t) => {
    fs.writeFileSync(pinLog, "");
    await helper.load(
      [pulseShaper, piGpio],
      [
        { id: "f", type: "tab" },
        {
          id: "ps",
          z: "f",
          type: "pulse-shaper",
          width: 40,
          ...SHAPER_DEFAULTS,
          rows: [],
          measureEvery: 0.5,
          wires: [["pin"], ["m"]],
        },
        { id: "pin", z: "f", type: "rpi-gpio out", pin: "25", set: true, level: "0", out: "out", bcm: true, wires: [] },
        { id: "m", z: "f", type: "helper" },
      ],
    );
    const shaper = record("ps", "m");
    /** The shaper in the SQI scope now: its counters, and the rising edges it draws in its 2 s window. */
    const inScope = () => {
      // As the scope plugin draws it: from the running shaper's own trace.
      const trace = (helper.getNode("ps") as unknown as { sqiTrace: import("../../lib/scope").EdgeTrace }).sqiTrace;
      const t = scopeSnapshot(Date.now(), { shapers: [trace], masters: [] }).shapers.find((x) => x.id === "ps")!;
      return { counters: t.counters, rises: t.edges.filter(([, v]) => v > 0).length };
    };
    // What the listening bus on this tab would report of it.
    const firedOf = () => (helper.getNode("ps") as unknown as { sqiFired: () => Record<string, number> }).sqiFired();
    const lastMeasured = () => shaper.messages[shaper.messages.length - 1]?.payload as Record<string, number> | undefined;
    const pinErrors: string[] = [];
    const pinNode = helper.getNode("pin");
    pinNode.on("call:error", (c: { args: unknown[] }) => pinErrors.push(String(c.args[0])));
    try {
      await new Promise((r) => setTimeout(r, 800)); // the helper starts
      const beat = setInterval(() => helper.getNode("ps").receive({ topic: "proton_collision" }), 100);
      try {
        await new Promise((r) => setTimeout(r, 1000));
        // Mid-pulse: 40 ms pulses every 100 ms; kill 20 ms after a rise.
        const rise = await new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            const recs = parsePinLog(fs.readFileSync(pinLog, "utf8")).filter((r) => r.pin === 25 && r.event === undefined);
            if (recs[recs.length - 1]?.value === 1) {
              clearInterval(poll);
              resolve();
            }
          }, 2);
        });
        void rise;
        await new Promise((r) => setTimeout(r, 15));
        const firedBefore = firedTotals([firedOf()]).pulses ?? 0;
        process.kill((pinNode as unknown as { child: { pid: number } }).child.pid, "SIGKILL");
        await new Promise((r) => setTimeout(r, 2500));
        // Events stop, the queue empties, and a measurement is sent after that: all four are read at rest.
        clearInterval(beat);
        await new Promise((r) => setTimeout(r, 1200));
        const after = firedTotals([firedOf()]);
        const measured = lastMeasured()!;
        const seen = inScope();
        const recs = parsePinLog(fs.readFileSync(pinLog, "utf8")).filter((r) => r.pin === 25 && r.event === undefined);
        t.diagnostic(
          `fired before the kill ${firedBefore}, after ${after.pulses} (unfired ${after.unfired_pulses}); the pin's last level ${recs[recs.length - 1]?.value}; shaper status "${lastStatus(shaper)}"`,
        );
        assert.ok((after.pulses ?? 0) <= firedBefore + 1, `no pulse counted as fired once the helper died: ${firedBefore} -> ${after.pulses}`);
        assert.ok((after.unfired_pulses ?? 0) >= 10, `what was planned meanwhile is unfired: ${after.unfired_pulses}`);
        assert.match(lastStatus(shaper), /^pin stopped: nothing fired$/);
        assert.equal(shaper.errors.filter((e) => e.includes("its helper is not running")).length, 1, "said once in the log");
        assert.deepEqual(pinErrors, [], "no edges handed to a dead helper (each would be an error)");
        // The measurements output says the same as the reports: pulses held, unfired counted, nothing measured since.
        t.diagnostic(
          `measurements: pulses ${measured.pulses}, unfired ${measured.unfired_pulses}, rate ${measured.rate_hz} Hz; scope: pulses ${seen.counters.pulses}, unfired ${seen.counters.unfired_pulses}, ${seen.rises} rises drawn`,
        );
        assert.equal(measured.pulses, after.pulses, "the measurements output's pulses are the reports' fired pulses");
        assert.equal(measured.unfired_pulses, after.unfired_pulses, "and its unfired_pulses theirs");
        assert.equal(measured.rate_hz, 0, "no pulse measured in the last period: none reached a pin");
        // The scope too: the same counters, and no edges drawn for the last 2 s.
        assert.equal(seen.counters.pulses, after.pulses);
        assert.equal(seen.counters.unfired_pulses, after.unfired_pulses);
        assert.equal(seen.rises, 0, "the scope draws no pulse that reached no pin");
      } finally {
        clearInterval(beat);
      }
    } finally {
      await settle();
      await helper.unload();
    }
  });
});
