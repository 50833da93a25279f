// Real faults: the master restarted five times under two Pi listeners, a Pi's Node-RED
// killed with kill -9 and started again, and rpi-gpio out's helper killed mid-pulse. The Pis
// run example 03 in a real Node-RED (two listeners in one, each with its own pins); the master
// is a sqi-event-bus node in this process (node-red-node-test-helper), so that its restarts,
// its reports and the moment each Pi says hello are seen exactly.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { risesIn } from "../../scripts/gpio-sim";
import { startDemo, type Demo } from "../helpers/demo";
import { freePort, killAll, waitFor } from "../helpers/processes";
import { helper } from "../helpers/red";

const sqiBus = require("../../nodes/sqi-bus");
const sqiEventBus = require("../../nodes/sqi-event-bus");

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** Example 03 twice in one Node-RED: pi-1 on pins 18/17 and pi-2 on pins 23/24, both listening to `port`. */
function twoPis(port: number): FlowNode[] {
  const one = JSON.parse(fs.readFileSync(path.join(packageRoot, "examples", "03 - Pi listener.json"), "utf8")) as FlowNode[];
  const copy = (suffix: string, name: string, coil: string, led: string): FlowNode[] =>
    one.map((n) => {
      const m = JSON.parse(JSON.stringify(n).replaceAll("ex03.", `ex03${suffix}.`)) as FlowNode;
      if (m.type === "sqi-bus") m.url = `ws://127.0.0.1:${port}/`;
      if (m.type === "sqi-event-bus") m.listenerName = name;
      if (m.type === "rpi-gpio out") m.pin = m.pin === "18" ? coil : led;
      if (m.type === "pulse-out") m.pin = Number(m.pin === 18 ? coil : led);
      return m;
    });
  return [...copy("a", "pi-1", "18", "17"), ...copy("b", "pi-2", "23", "24")];
}

interface Master {
  /** When each listener's hello arrived at this master run (ms, wall clock). */
  hellos: Map<string, number>;
  reports: Array<{ name: string; counters: Record<string, number> }>;
  stop: () => Promise<void>;
}

let beat: NodeJS.Timeout | undefined;

/**
 * A master node on `port` sending a proton_collision every 50 ms (at = now + 100 ms), seq from 1:
 * at once (as a restarted master does), or once `listeners` have said hello.
 */
async function startMaster(port: number, listeners = 0): Promise<Master> {
  const hellos = new Map<string, number>();
  const reports: Master["reports"] = [];
  await helper.load(
    [sqiBus, sqiEventBus],
    [
      { id: "f", type: "tab" },
      { id: "cfg", type: "sqi-bus", transport: "ws", host: "127.0.0.1", port: String(port), path: "/", url: "" },
      { id: "bus", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "cfg", statsEvery: 0.05, wires: [[], ["out"]] },
      { id: "out", z: "f", type: "helper" },
    ],
  );
  helper
    .getNode("out")
    .on(
      "input",
      (m: { topic: string; payload: { name?: string; counters?: Record<string, number>; listeners?: Array<{ name?: string; hello: boolean }> } }) => {
        if (m.topic === "report") reports.push({ name: m.payload.name!, counters: m.payload.counters! });
        if (m.topic === "stats") for (const l of m.payload.listeners ?? []) if (l.hello && l.name && !hellos.has(l.name)) hellos.set(l.name, Date.now());
      },
    );
  const bus = helper.getNode("bus");
  if (listeners) await waitFor(`${listeners} listeners' hellos`, () => hellos.size >= listeners, 60_000, 20);
  beat = setInterval(() => bus.receive({ topic: "proton_collision", payload: {}, sqi: { at: Date.now() + 100 } }), 50);
  return {
    hellos,
    reports,
    stop: async () => {
      clearInterval(beat);
      await helper.unload();
    },
  };
}

const rises = risesIn;

describe("a restarted master is heard at once", () => {
  let port: number;
  let pis: Demo | undefined;
  let master: Master | undefined;
  let dir: string | undefined;
  before(async () => {
    port = await freePort();
    dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : "/tmp", "sqi-restarts-"));
    const flow = path.join(dir, "flow.json");
    fs.writeFileSync(flow, JSON.stringify(twoPis(port)));
    const first = startMaster(port, 2);
    pis = await startDemo({ SQI_FLOW: flow });
    master = await first;
  });
  after(async () => {
    clearInterval(beat);
    await master?.stop().catch(() => undefined);
    await pis?.cleanUp();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("five restarts under two Pis: each time each Pi fires the new master's events within 1 s of its hello, and counts one restart", async (t) => {
    await waitFor("both Pis heard the first master", () => master!.hellos.size === 2, 60_000, 50);
    // Long enough that the old seqs cover the new run's first 15 s: before run identities, the
    // Pis dropped the new master's events as duplicates for that long.
    await new Promise((r) => setTimeout(r, 15_000));
    const lines: string[] = [];
    for (let k = 1; k <= 5; k++) {
      await master!.stop();
      const down = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      master = await startMaster(port);
      await waitFor(`both Pis back after restart ${k}`, () => master!.hellos.size === 2, 30_000, 20);
      await new Promise((r) => setTimeout(r, 2500));
      for (const [name, coil] of [
        ["pi-1", 18],
        ["pi-2", 23],
      ] as const) {
        const hello = master.hellos.get(name)!;
        // The old master's last events fire up to 105 ms after it went down (at = sent + 100 ms, 5 ms pulses).
        const first = rises(pis!.pinLog, coil).find((x) => x > down + 200);
        assert.ok(first !== undefined, `restart ${k}: ${name} fired after the restart`);
        // And keeps firing: 40 events went out in the 2 s after its hello (before run identities,
        // the new seqs the Pi had seen from the old master were dropped as duplicates).
        const next2s = rises(pis!.pinLog, coil).filter((x) => x > hello + 200 && x <= hello + 2200).length;
        lines.push(
          `restart ${k}: ${name} said hello ${hello - down} ms after the master went down, fired ${(first - hello).toFixed(0)} ms after its hello, then ${next2s} pulses in 2 s`,
        );
        assert.ok(first - hello < 1000, `restart ${k}: ${name} fired within 1 s of its hello (${(first - hello).toFixed(0)} ms)`);
        assert.ok(next2s >= 30, `restart ${k}: ${name} fired ${next2s} of the 40 events of the 2 s after its hello`);
      }
      // Reports come every 2 s: wait for the first that has taken this run's events.
      const latest = (): Map<string, Record<string, number>> => new Map(master!.reports.map((x) => [x.name, x.counters]));
      const r = await waitFor(
        `reports of restart ${k}`,
        () => (latest().size === 2 && [...latest().values()].every((c) => (c.restarts ?? 0) >= k) ? latest() : undefined),
        10_000,
        50,
      ).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify([...latest()])}\n${lines.join("\n")}`);
      });
      for (const [name, c] of r) {
        assert.equal(c.restarts, k, `${name}: ${k} restarts counted, once each`);
        assert.equal(c.duplicates, 0, `restart ${k}: ${name}: nothing taken for a duplicate: ${JSON.stringify(c)}`);
      }
    }
    t.diagnostic(lines.join("\n"));
  });
});

describe("a Pi killed with kill -9 and started again", () => {
  it("the master reports what went by while it was away as that Pi's loss", async (t) => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : "/tmp", "sqi-pi-restart-"));
    const flow = path.join(dir, "flow.json");
    fs.writeFileSync(flow, JSON.stringify(twoPis(port).filter((n) => String(n.id).startsWith("ex03a."))));
    const master = await startMaster(port);
    let pi: Demo | undefined;
    try {
      pi = await startDemo({ SQI_FLOW: flow });
      await waitFor("pi-1's reports", () => master.reports.some((r) => (r.counters.last_seq ?? 0) > 40), 30_000, 50);
      killAll(pi.redPid, pi.child.pid); // SIGKILL: no goodbye, no last report
      const lastBefore = Math.max(...master.reports.map((r) => r.counters.last_seq ?? 0));
      await new Promise((r) => setTimeout(r, 3000));
      await pi.cleanUp();
      master.reports.length = 0;
      pi = await startDemo({ SQI_FLOW: flow });
      const back = await waitFor("pi-1 reporting again with its loss", () => master.reports.find((r) => r.counters.first_seq !== undefined), 60_000, 50);
      t.diagnostic(
        `last seq reported before the kill: ${lastBefore}; the new life's first seq ${back.counters.first_seq}; lost_while_away ${back.counters.lost_while_away}`,
      );
      // Gone for about 3 s plus Node-RED's start: at 20 events/s, over 60 events.
      assert.equal(back.counters.lost_while_away, back.counters.first_seq! - 1 - lastBefore);
      assert.ok(back.counters.lost_while_away > 60, `lost_while_away ${back.counters.lost_while_away}`);
    } finally {
      await master.stop();
      await pi?.cleanUp();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
