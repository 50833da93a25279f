// The package's own work never stretches a pulse: a Pi listener (example 03) in a real
// Node-RED, fed by a master in this process, audited at the pin. A 1 MiB frame arriving in
// the middle of a 50 ms LED pulse used to stretch it to 176-294 ms (the listener handed 2,000
// events on in one loop); now a frame goes on in slices and the pulse stays near 50 ms. Then a
// 2-minute flood of about 2,000 events/s. No pulse may exceed the maximum on-time by more than
// 2 ms (but where a process stalled, with the evidence printed); the listener's own longest
// stall of the event loop is measured and printed (a latency: the machine's load decides it, so
// it is no invariant); the rest of the audit is as in pin-audit.test.ts.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { realClock } from "../../lib/clock";
import { BusServer } from "../../lib/bus/ws-server";
import { packageRoot } from "../../lib/paths";
import { floodBurst, megaFrame } from "../helpers/flood";
import { assertNeverLonger, runAndAudit, type FlowNode, type PinRun } from "../helpers/pins";
import { freePort, waitFor } from "../helpers/processes";

const COIL = 18;
const LED = 17;
const MAX_ON_MS = 100;

/** Example 03, listening to the master here, with its stats (every 5 s) also written to `statsFile`. */
function piFlow(port: number, statsFile: string): FlowNode[] {
  const flow = JSON.parse(fs.readFileSync(path.join(packageRoot, "examples", "03 - Pi listener.json"), "utf8")) as FlowNode[];
  const out = flow.map((n) =>
    n.type === "sqi-bus"
      ? { ...n, url: `ws://127.0.0.1:${port}/` }
      : n.id === "ex03.listen"
        ? { ...n, wires: [(n.wires as string[][])[0], ["ex03.stats", "stats.tap"]] }
        : n,
  );
  out.push({
    id: "stats.tap",
    z: "ex03.tab",
    type: "function",
    name: "stats to a file",
    libs: [{ var: "fs", module: "fs" }],
    func: `fs.appendFileSync(${JSON.stringify(statsFile)}, JSON.stringify(msg.payload) + "\\n"); return null;`,
    outputs: 1,
    wires: [[]],
  });
  return out;
}

/** The listener's own longest stalls of the event loop, from its last stats. */
function ownStalls(statsFile: string): { receive: number; hand_on: number } {
  const lines = fs.existsSync(statsFile) ? fs.readFileSync(statsFile, "utf8").trim().split("\n") : [];
  assert.ok(lines.length > 0, "the listener sent its stats");
  return (JSON.parse(lines[lines.length - 1]!) as { longest_stall_ms: { receive: number; hand_on: number } }).longest_stall_ms;
}

async function master(): Promise<BusServer> {
  const server = new BusServer({ clock: realClock, host: "127.0.0.1", port: await freePort(), path: "/", maxPayload: 1024 * 1024 });
  await server.listen();
  return server;
}

/** Waits for the Pi to say hello and settle its clock estimate. */
async function piJoined(server: BusServer): Promise<void> {
  await waitFor("the Pi listener to join", () => server.clients.some((c) => c.hello), 60_000, 50);
  await new Promise((r) => setTimeout(r, 3000));
}

function widths(run: PinRun, pin: number): number[] {
  const a = run.pins.find((x) => x.pin === pin);
  assert.ok(a, `pin ${pin} audited`);
  return a.widthList;
}

describe("the package's own work never stretches a pulse (example 03 in a real Node-RED, a master here)", () => {
  it("a 1 MiB frame arriving 20 ms into a 50 ms LED pulse: the pulse stays near 50 ms", async (t) => {
    const server = await master();
    let seq = 0;
    const frameBytes: number[] = [];
    const statsFile = path.join(os.tmpdir(), `sqi-stats-${process.pid}-frame.jsonl`);
    try {
      const run = await runAndAudit(piFlow(server.port, statsFile), 1, undefined, {}, async () => {
        await piJoined(server);
        for (let k = 0; k < 6; k++) {
          const at = Date.now() + 200;
          server.send({ event: "atom_spin_flip", payload: {}, seq: ++seq, at });
          await new Promise((r) => setTimeout(r, at + 20 - Date.now()));
          const events = megaFrame(seq);
          seq += events.length;
          frameBytes.push(JSON.stringify({ type: "batch", sent: 0, events }).length);
          for (const e of events) server.send(e);
          await new Promise((r) => setTimeout(r, 1500));
        }
        await new Promise((r) => setTimeout(r, 5000)); // the listener's next stats
      });
      const own = ownStalls(statsFile);
      t.diagnostic(`the listener's own longest stall: decoding a frame ${own.receive} ms, handing on a slice ${own.hand_on} ms`);
      t.diagnostic(
        `frames of ${frameBytes.map((b) => (b / 1024).toFixed(0)).join(", ")} KiB; LED pulses at the pin: ${widths(run, LED)
          .map((w) => w.toFixed(2))
          .join(", ")} ms\n${run.text}`,
      );
      assert.ok(
        frameBytes.every((b) => b > 1_000_000 && b <= 1024 * 1024),
        "each frame is about 1 MiB, within the bus's frame limit",
      );
      const led = widths(run, LED);
      assert.equal(led.length, 6, `six LED pulses\n${run.text}`);
      assertNeverLonger(run, "1 MiB frames", MAX_ON_MS); // a dozen LED edges, a third of them next to a 1 MiB frame on purpose
      // What a user sees: the 50 ms flash stays near 50 ms (the red team measured 176-294 ms, the
      // listener handing a whole frame on at once). Its falling edge can still wait for the
      // frame's own decoding (JSON and schema, 3-20 ms for 1 MiB, printed above) and a garbage
      // collection, and on a busy machine for a core: a flash 25 ms over needs its stall beside it.
      const ledStalls = run.stalls.get(LED)!;
      assert.ok(
        led.filter((w) => w >= 50 + 25).length <= ledStalls.evidence,
        `LED pulses within 25 ms of 50 but where a process stalled: ${led.map((w) => w.toFixed(2)).join(", ")}`,
      );
    } finally {
      await server.close();
      fs.rmSync(statsFile, { force: true });
    }
  });

  // The compatibility legs of CI run a shorter flood (SQI_FLOOD_SECONDS): the same load, less of it.
  const floodS = Number(process.env.SQI_FLOOD_SECONDS ?? 120);
  it(`a ${floodS} s flood of about 2,000 events/s`, async (t) => {
    const server = await master();
    let seq = 0;
    let sent = 0;
    const statsFile = path.join(os.tmpdir(), `sqi-stats-${process.pid}-flood.jsonl`);
    try {
      const run = await runAndAudit(piFlow(server.port, statsFile), 1, undefined, {}, async () => {
        await piJoined(server);
        const end = Date.now() + floodS * 1000;
        while (Date.now() < end) {
          for (const e of floodBurst(seq, true)) server.send(e);
          seq += 20;
          sent += 20;
          await new Promise((r) => setTimeout(r, 10));
        }
        await new Promise((r) => setTimeout(r, 5000)); // the listener's next stats
      });
      const own = ownStalls(statsFile);
      t.diagnostic(
        `${sent} events sent in ${floodS} s; the listener's own longest stall: decoding a frame ${own.receive} ms, handing on a slice ${own.hand_on} ms\n${run.text}`,
      );
      assert.ok(sent > floodS * 1250, `about 2,000 events/s: ${sent} in ${floodS} s`);
      for (const pin of [COIL, LED]) assert.ok((run.pins.find((a) => a.pin === pin)?.pulses ?? 0) > 50, `pin ${pin} pulsed through the flood\n${run.text}`);
      assertNeverLonger(run, "flood", MAX_ON_MS);
    } finally {
      await server.close();
      fs.rmSync(statsFile, { force: true });
    }
  });
});
