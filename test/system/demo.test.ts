// npm start as a new user runs it: Node-RED with this package, the demo flow playing into
// real rpi-gpio out nodes on the simulated GPIO, and a graceful stop that leaves every pin low.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { parsePinLog } from "../../scripts/gpio-sim";
import { startDemo, widths } from "../helpers/demo";
import { exited, isAlive, waitFor } from "../helpers/processes";
import { SHAPER_DEFAULTS } from "../helpers/flows";

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  describe(`npm start, stopped with ${signal}`, () => {
    it("serves the editor with dc-container, plays the demo onto the pins, and stops with every pin low", async (t) => {
      const demo = await startDemo();
      const { port, pinLog, child } = demo;
      try {
        assert.match(demo.output(), /simulated GPIO \(no RPi\.GPIO here\)(, as rpi-lgpio on a Pi 5)?: pin changes are logged to /);

        const nodes = (await (await fetch(`http://127.0.0.1:${port}/nodes`, { headers: { Accept: "application/json" } })).json()) as Array<{
          module: string;
          types: string[];
        }>;
        const ours = nodes.filter((n) => n.module === "@sqi/node-red-pulse") as Array<{ types: string[]; err?: string }>;
        assert.deepEqual(
          ours.flatMap((n) => n.types).sort(),
          ["dc-container", "event-filter", "pulse-out", "pulse-shaper", "sqi-bus", "sqi-event-bus", "sqi-sim-sensor"],
          "every node of the package is in the palette",
        );
        for (const n of ours) assert.equal(n.err, undefined, `${n.types}: loaded without error`);
        assert.ok(
          nodes.some((n) => n.types.includes("rpi-gpio out")),
          "rpi-gpio out is in the palette",
        );
        const flows = (await (await fetch(`http://127.0.0.1:${port}/flows`, { headers: { "Node-RED-API-Version": "v1" } })).json()) as Array<
          Record<string, unknown>
        >;
        const outs = flows.filter((n) => n.type === "rpi-gpio out");
        assert.ok(outs.length >= 1);
        for (const o of outs) assert.deepEqual([o.set, o.level], [true, "0"], `${o.name}: Initialise pin state, low`);
        // The coil's pin is a pulse-out: its helper times each fall (it claims the pin low by itself).
        assert.equal(flows.find((n) => n.type === "pulse-out")?.pin, 18, "the coil (pin 18) is driven by pulse-out");

        // Every bundled example imports into this editor: each node type it uses is installed.
        const types = new Set(nodes.flatMap((n) => n.types));
        for (const file of fs.readdirSync(path.join(packageRoot, "examples")).filter((f) => f.endsWith(".json"))) {
          const example = JSON.parse(fs.readFileSync(path.join(packageRoot, "examples", file), "utf8")) as Array<{ type: string }>;
          for (const n of example) if (n.type !== "tab") assert.ok(types.has(n.type), `${file}: node type ${n.type} is installed`);
        }

        const recs = await waitFor("edges on both pins", () => {
          const r = parsePinLog(fs.existsSync(pinLog) ? fs.readFileSync(pinLog, "utf8") : "");
          return widths(r, 18).length >= 20 && widths(r, 17).length >= 3 ? r : undefined;
        });
        const coil = widths(recs, 18);
        const led = widths(recs, 17).sort((a, b) => a - b);
        const ledMedian = led[Math.floor(led.length / 2)]!;
        t.diagnostic(
          `coil pin: ${coil.length} pulses, widest ${Math.max(...coil).toFixed(2)} ms; LED pin: ${led.length} flashes, median ${ledMedian.toFixed(3)} ms (50 ms set)`,
        );
        // Never wider than set (+2 ms). Narrower only when rpi-gpio out's helper takes a rise late and
        // the fall keeps its planned time (the safe direction): on a machine with a busy loop per
        // core the median of the first flashes was 47.75 ms, so the floor is 40 ms, not 48.
        assert.ok(ledMedian < 52 && ledMedian > 40, `LED flashes are 50 ms wide at the pin (never wider), median ${ledMedian}`);
        assert.ok(
          coil.some((w) => Math.abs(w - 5) < 1),
          "the proton_collision pulses are 5 ms wide at the pin",
        );
        assert.ok(Math.max(...coil) <= 100 + 1, "no coil pulse is longer than the 100 ms maximum on-time (pulse-out times the fall)");
        for (const pin of [17, 18]) {
          const driven = recs.filter((x) => x.pin === pin && x.event === undefined).map((x) => x.value);
          driven.forEach((v, i) => assert.equal(v, i % 2 === 0 ? 1 : 0, `pin ${pin}: edges alternate`));
        }

        child.kill(signal);
        const end = await exited(child, 20_000);
        assert.equal(end.code, 0, demo.output());
        assert.match(demo.output(), new RegExp(`${signal}: stopping the containers`));
        assert.match(demo.output(), /Node-RED stopped/);
        assert.equal(isAlive(demo.redPid), false, "Node-RED is gone");

        const final = parsePinLog(fs.readFileSync(pinLog, "utf8"));
        for (const pin of [17, 18]) {
          const driven = final.filter((r) => r.pin === pin && r.value !== null);
          assert.equal(driven[driven.length - 1]!.value, 0, `pin ${pin} ends low`);
        }
      } finally {
        await demo.cleanUp();
      }
    });
  });
}

describe("npm start, launcher killed", () => {
  it("Node-RED does not run on as an orphan when its launcher is killed with SIGKILL", async () => {
    const demo = await startDemo();
    try {
      assert.ok(isAlive(demo.redPid));
      demo.child.kill("SIGKILL");
      await waitFor("Node-RED to stop by itself", () => !isAlive(demo.redPid), 15_000);
    } finally {
      await demo.cleanUp();
    }
  });
});

describe("redeploy in the middle of a pulse, in a real Node-RED", () => {
  it("a full redeploy 10-20 ms into a 90 ms pulse leaves the pin low before the GPIO helper restarts", async () => {
    const flow = [
      { id: "t", type: "tab", label: "redeploy" },
      // rpi-gpio out first: Node-RED closes it before the shaper, the hard case for the fail-safe.
      { id: "pin", z: "t", type: "rpi-gpio out", name: "", pin: "24", set: true, level: "0", freq: "", out: "out", bcm: true, x: 500, y: 100, wires: [] },
      {
        id: "go",
        z: "t",
        type: "inject",
        name: "",
        props: [{ p: "topic", vt: "str" }],
        repeat: "1",
        crontab: "",
        once: true,
        onceDelay: "0.5",
        topic: "proton_collision",
        x: 100,
        y: 100,
        wires: [["ps"]],
      },
      {
        id: "ps",
        z: "t",
        type: "pulse-shaper",
        name: "",
        width: 90,
        ...SHAPER_DEFAULTS,
        rows: [],
        x: 300,
        y: 100,
        wires: [["pin"], []],
      },
    ];
    const demo = await startDemo({}, (userDir) => {
      const flowFile = path.join(userDir, "source-flow.json");
      fs.writeFileSync(flowFile, JSON.stringify(flow));
      return { SQI_FLOW: flowFile };
    });
    const { port, pinLog } = demo;
    const pin24 = () => parsePinLog(fs.existsSync(pinLog) ? fs.readFileSync(pinLog, "utf8") : "").filter((r) => r.pin === 24);
    try {
      await waitFor("a rising edge on pin 24", () => pin24().some((r) => r.value === 1 && r.event === undefined), 20_000, 2);
      const deployed = await fetch(`http://127.0.0.1:${port}/flows`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
        body: JSON.stringify(flow),
      });
      assert.equal(deployed.status, 204);
      await new Promise((r) => setTimeout(r, 400));
      const recs = pin24();
      const firstRise = recs.findIndex((r) => r.value === 1 && r.event === undefined);
      const restart = recs.findIndex((r, i) => i > firstRise && r.event !== undefined);
      assert.ok(restart > firstRise, `the GPIO helper was restarted by the deploy: ${JSON.stringify(recs)}`);
      const before = recs.slice(0, restart).filter((r) => r.value !== null);
      assert.equal(before[before.length - 1]!.value, 0, `the pin was low before the helper stopped: ${JSON.stringify(recs)}`);
      const high = before[before.length - 1]!.t - recs[firstRise]!.t;
      assert.ok(high < 80, `the 90 ms pulse was cut by the redeploy after ${high.toFixed(1)} ms`);
    } finally {
      await demo.cleanUp();
    }
  });
});
