// The safety limits hold at the pin: every built-in shape, counted trains at saturation,
// the demo and every bundled example that drives a pin, each run in a real Node-RED with
// rpi-gpio out on the simulated GPIO and its pin log audited against the flow's own
// pulse-shaper limits (lib/pulse/audit.ts). The allowance is 0.5 ms of pipe jitter on at
// most 1 % of gaps; none for on-time or duty. Run once more while every core is busy: a
// slow machine makes pulses late, never longer or closer than the limits.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { limitsFromFlow } from "../../lib/pulse/audit";
import { mosquittoPath, startBroker } from "../../scripts/mosquitto";
import {
  assertTimedPin,
  loadEveryCore,
  runAndAudit,
  SHAPE_PINS,
  shapesFlow,
  TIMED_SLACK_MS,
  violationCount,
  type FlowNode,
  type PinRun,
} from "../helpers/pins";
import { freePort } from "../helpers/processes";

const SECONDS = 8;
/** The examples start playing 2 s after deploy. */
const EXAMPLE_SECONDS = 10;

/**
 * What this package did is audited with no allowance: the edges as the shaper handed them to
 * rpi-gpio out. At the pin the allowance applies (0.5 ms on 1 % of gaps). A machine is
 * shared: now and then a process is not scheduled for a few ms. A violation is accepted only
 * with that evidence beside it in the same run (at most two violations per stalled edge: the gap
 * before and after it). How many edges were late is the machine's business, not an invariant:
 * it is printed here (0-4 % quiet, 6-18 % with every core busy; node.send delivery had 25-70 %),
 * and bench:pulse measures the timing against core trigger.
 */
function assertAtPin(run: PinRun, pinsWanted: readonly number[], minEdges = 100): void {
  const arrivals = new Map(run.arrivals.map((a) => [a.pin, a]));
  const pins = new Map(run.pins.map((a) => [a.pin, a]));
  for (const pin of pinsWanted) {
    const what = `pin ${pin} (${SHAPE_PINS[pin] ?? "example"})`;
    const sent = arrivals.get(pin);
    const seen = pins.get(pin);
    const stalls = run.stalls.get(pin);
    assert.ok(seen, `${what} was audited\n${run.text}`);
    // Enough edges that the 1 % allowance means something, so an idle pin cannot pass.
    assert.ok(seen.edges >= minEdges, `${what}: ${seen.edges} edges at the pin, expected at least ${minEdges}\n${run.text}`);
    if (!stalls) {
      // A pulse-out pin (the coil of the demo and examples 01, 03, 05): no tap, no stall excuses anything.
      assertTimedPin(run, seen, what, TIMED_SLACK_MS);
      continue;
    }
    assert.ok(sent && stalls, `${what}: its hand-on was audited\n${run.text}`);
    assert.ok(
      violationCount(sent) <= 2 * stalls.nodeEvidence,
      `${what}: handed to rpi-gpio out within every limit, but where Node-RED delayed an edge past the pin guard\n${run.text}`,
    );
    assert.ok(
      violationCount(seen) <= 2 * stalls.evidence,
      `${what}: at the pin within the allowance, but where an edge was delayed after its plan\n${run.text}`,
    );
  }
}

function assertShapes(run: PinRun): void {
  const by = new Map(run.pins.map((a) => [a.pin, a]));
  // The shapes are what was asked, not merely safe.
  const burst = by.get(12)!;
  // Each rise of a burst at its limits waits for the off-time counted from when the fall before
  // it was handed on (0.1-0.7 ms later than planned) and keeps its end: pulses come out a little
  // short and gaps a little long (CI: 11.55 ms on, about 3.5 ms off).
  assert.ok(Math.abs(burst.widthMs!.median - 12) < 1 && Math.abs(burst.offMs!.median - 3) < 1, `saturated burst: 12 ms on / 3 ms off at the pin\n${run.text}`);
  const merged = by.get(6)!;
  assert.ok(merged.widthMs!.max > 90, `5 ms pulses every 3 ms merge up to the maximum on-time: widest ${merged.widthMs!.max} ms`);
  const trains = by.get(26)!;
  // Saturated: the trains run near the 50 % cap (about 49 % quiet; late timers on a busy machine
  // only ever lower it), never over it (asserted above with the other limits).
  assert.ok(trains.maxDuty!.duty > 0.35, `counted trains saturate the pin: highest duty ${(trains.maxDuty!.duty * 100).toFixed(1)}%`);
}

const GROUPS = [
  [6, 12, 26],
  [5, 13, 16],
  [19, 20, 21],
];

function groupFlow(pins: number[]) {
  const keys = new Set(
    shapesFlow()
      .filter((n) => n.type === "rpi-gpio out" && pins.includes(Number(n.pin)))
      .map((n) => String(n.id).split(".")[0]),
  );
  return shapesFlow().filter((n) => n.type === "tab" || keys.has(String(n.id).split(".")[0]));
}

describe("every limit holds at the pin (real Node-RED, rpi-gpio out on the simulated GPIO)", () => {
  const shapes: PinRun[] = [];
  for (const group of GROUPS) {
    it(`shapes on pins ${group.join(", ")}: ${group.map((p) => SHAPE_PINS[p]!.split(":")[0]).join("; ")}`, async (t) => {
      const run = await runAndAudit(groupFlow(group), SECONDS);
      t.diagnostic(run.text);
      assertAtPin(run, group);
      shapes.push(run);
      if (group.includes(12)) assertShapes(run);
    });
  }

  it("the same while a busy loop loads every core: pulses come late, never longer or closer", async (t) => {
    for (const group of GROUPS) {
      const load = loadEveryCore();
      try {
        const run = await runAndAudit(groupFlow(group), SECONDS);
        t.diagnostic(run.text);
        assertAtPin(run, group, 100);
      } finally {
        load.stop();
      }
    }
  });
});

function example(file: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(packageRoot, "examples", file), "utf8")) as FlowNode[];
}

/** Every pin a shaper drives in the flow, audited as above; pins with few pulses (an LED) need fewer edges. */
function assertFlowAtPin(run: PinRun, flow: FlowNode[]): void {
  const driven = [...limitsFromFlow(flow).pins.keys()];
  assert.ok(driven.length > 0, "the flow drives a pin");
  assertAtPin(run, driven, 10);
}

describe("the demo and every bundled example that drives a pin, audited at the pin", () => {
  it("npm start's demo flow", async (t) => {
    const flow = JSON.parse(fs.readFileSync(path.join(packageRoot, "flows", "demo.json"), "utf8")) as FlowNode[];
    const run = await runAndAudit(flow, EXAMPLE_SECONDS);
    t.diagnostic(run.text);
    assertFlowAtPin(run, flow);
  });

  for (const file of ["01 - star core on one Pi.json", "04 - 1,000 clones multiplexed.json"]) {
    it(`example ${file}`, async (t) => {
      const flow = example(file);
      const run = await runAndAudit(flow, EXAMPLE_SECONDS);
      t.diagnostic(run.text);
      assertFlowAtPin(run, flow);
    });
  }

  it("examples 02 (master) and 03 (Pi listener) in one Node-RED, over WebSocket", async (t) => {
    const port = await freePort();
    const flow = [...example("02 - master broadcast.json"), ...example("03 - Pi listener.json")].map((n) =>
      n.type === "sqi-bus" ? { ...n, host: "127.0.0.1", port: String(port), url: `ws://127.0.0.1:${port}/` } : n,
    );
    const run = await runAndAudit(flow, EXAMPLE_SECONDS);
    t.diagnostic(run.text);
    assertFlowAtPin(run, flow);
  });

  it(
    "examples 05 (MQTT master and Pi listener) in one Node-RED, through a Mosquitto started here",
    { skip: mosquittoPath() ? false : "mosquitto is not installed" },
    async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-pins-mqtt-"));
      const broker = await startBroker({ dir, port: await freePort() });
      try {
        const flow = [...example("05 - MQTT master.json"), ...example("05 - MQTT Pi listener.json")].map((n) =>
          n.type === "sqi-bus" ? { ...n, broker: broker.url } : n,
        );
        const run = await runAndAudit(flow, EXAMPLE_SECONDS);
        t.diagnostic(run.text);
        assertFlowAtPin(run, flow);
      } finally {
        await broker.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
