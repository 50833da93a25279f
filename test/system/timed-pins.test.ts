// The falling edge belongs to the pin's driver. Every digital shape runs twice in one Node-RED:
// through rpi-gpio out (each edge on its own: timer, pipe, Python loop) and through pulse-out
// (whole pulses; its helper times the fall). A busy loop on every core starves Node-RED, first at
// the lowest priority (nice 19), then at Node-RED's own. Audited at the pin, in the same run:
// - pulse-out under the nice-19 load: no on-stretch over the maximum on-time, no off-time or edge
//   gap under its limit, at all;
// - pulse-out under the equal-priority load: within TIMED_SLACK_MS (1 ms), the worst printed;
// - rpi-gpio out: its violations and stalls printed beside them, as the anchor (its own
//   invariants are pin-audit.test.ts's).
// Then example 03 (a Pi listener) fed a flood with 1 MiB frames by a master here, under the
// same equal-priority load, its coil shaper copied onto rpi-gpio out beside its pulse-out.
// The helpers run at normal priority here (pulse-out's "real-time" unticked), as on a Pi where
// Node-RED runs as a user without CAP_SYS_NICE. Widths and their errors are bench:pulse's.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { BusServer } from "../../lib/bus/ws-server";
import { realClock } from "../../lib/clock";
import { packageRoot } from "../../lib/paths";
import {
  assertTimedPin,
  loadEveryCore,
  runAndAudit,
  shapesFlow,
  TIMED_PINS,
  TIMED_SLACK_MS,
  violationCount,
  type FlowNode,
  type PinRun,
} from "../helpers/pins";
import { floodBurst, megaFrame } from "../helpers/flood";
import { freePort, waitFor } from "../helpers/processes";

const SECONDS = Number(process.env.SQI_TIMED_SECONDS ?? 15);

function comparison(run: PinRun, pairs: Record<number, number> = TIMED_PINS): string {
  const by = new Map(run.pins.map((a) => [a.pin, a]));
  return Object.entries(pairs)
    .map(([timed, edges]) => {
      const t = by.get(Number(timed))!;
      const e = by.get(edges)!;
      const st = run.stalls.get(edges);
      const row = (a: typeof t) =>
        `longest on ${a.longestOn?.ms ?? "-"} ms, shortest off ${a.off.shortest?.ms ?? "-"} ms, shortest gap ${a.spacing.shortest?.ms ?? "-"} ms, ${a.overOn} over max on, ${violationCount(a)} violations`;
      return `  pin ${edges} (rpi-gpio out): ${row(e)}; ${st?.evidence ?? 0} edges with a stall\n  pin ${timed} (pulse-out):    ${row(t)}`;
    })
    .join("\n");
}

describe("pulse-out against rpi-gpio out, every digital shape, one Node-RED starved by a busy loop per core", () => {
  for (const niceness of [19, 0]) {
    it(`load at nice ${niceness}: pulse-out ${niceness ? "never over or under a limit" : `within ${TIMED_SLACK_MS} ms of every limit`} at the pin`, async (t) => {
      const load = loadEveryCore(niceness);
      let run: PinRun;
      try {
        run = await runAndAudit(shapesFlow({ timed: true }), SECONDS);
      } finally {
        load.stop();
      }
      t.diagnostic(`side by side, load at nice ${niceness}:\n${comparison(run)}\n${run.text}`);
      for (const pin of Object.keys(TIMED_PINS)) {
        const a = run.pins.find((x) => x.pin === Number(pin))!;
        assertTimedPin(run, a, `nice ${niceness}, pin ${pin}`, niceness ? 0 : TIMED_SLACK_MS);
      }
    });
  }

  it("example 03 under a flood with 1 MiB frames and the equal-priority load: its coil through pulse-out within 1 ms, beside a copy on rpi-gpio out", async (t) => {
    const COIL = 18;
    const COPY = 23;
    const server = new BusServer({ clock: realClock, host: "127.0.0.1", port: await freePort(), path: "/", maxPayload: 1024 * 1024 });
    await server.listen();
    const flow = (JSON.parse(fs.readFileSync(path.join(packageRoot, "examples", "03 - Pi listener.json"), "utf8")) as FlowNode[]).map((n) =>
      n.type === "sqi-bus"
        ? { ...n, url: `ws://127.0.0.1:${server.port}/` }
        : n.id === "ex03.filter"
          ? { ...n, wires: [["ex03.coilShaper", "copy.shaper"], ["ex03.ledShaper"]] }
          : n,
    );
    const coilShaper = flow.find((n) => n.id === "ex03.coilShaper")!;
    flow.push(
      { ...coilShaper, id: "copy.shaper", name: "coil copy (edges)", output: "digital", wires: [["copy.pin"], []] },
      {
        id: "copy.pin",
        z: coilShaper.z,
        type: "rpi-gpio out",
        name: "coil copy",
        pin: String(COPY),
        set: true,
        level: "0",
        freq: "",
        out: "out",
        bcm: true,
        wires: [],
      },
    );
    const seconds = Number(process.env.SQI_TIMED_SECONDS ?? 15);
    let seq = 0;
    let run: PinRun;
    const load = loadEveryCore(0);
    try {
      run = await runAndAudit(flow, 1, undefined, {}, async () => {
        await waitFor("the Pi listener to join", () => server.clients.some((c) => c.hello), 60_000, 50);
        await new Promise((r) => setTimeout(r, 3000));
        const end = Date.now() + seconds * 1000;
        let nextFrame = Date.now() + 1000;
        while (Date.now() < end) {
          const events = [...floodBurst(seq, false), ...(Date.now() >= nextFrame ? megaFrame(seq + 20) : [])];
          for (const e of events) server.send(e);
          seq += events.length;
          if (events.length > 20) nextFrame = Date.now() + 3000; // about 1 MiB in one frame every 3 s
          await new Promise((r) => setTimeout(r, 10));
        }
        await new Promise((r) => setTimeout(r, 1000));
      });
    } finally {
      load.stop();
      await server.close();
    }
    t.diagnostic(`side by side, ${seq} events, flood and 1 MiB frames, load at nice 0:\n${comparison(run, { [COIL]: COPY })}\n${run.text}`);
    assertTimedPin(
      run,
      run.pins.find((a) => a.pin === COIL)!,
      "example 03, flood and 1 MiB frames, nice 0",
      TIMED_SLACK_MS,
    );
  });
});
