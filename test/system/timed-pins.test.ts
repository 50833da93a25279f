// The falling edge belongs to the pin's driver. Every digital shape runs twice in one Node-RED:
// through rpi-gpio out (each edge on its own: timer, pipe, Python loop) and through pulse-out
// (whole pulses; its helper times the fall). A busy loop on every core starves Node-RED, first at
// the lowest priority (nice 19), then at Node-RED's own. Audited at the pin, in the same run:
// - pulse-out under the nice-19 load: no on-stretch over the maximum on-time, no off-time or edge
//   gap under its limit, at all;
// - pulse-out under the equal-priority load: within TIMED_SLACK_MS (1 ms), the worst printed;
// - rpi-gpio out: its violations and stalls printed beside them, as the anchor (its own
//   invariants are pin-audit.test.ts's).
// The helpers run at normal priority here (pulse-out's "real-time" unticked), as on a Pi where
// Node-RED runs as a user without CAP_SYS_NICE. Widths and their errors are bench:pulse's.
import { describe, it } from "node:test";
import { assertTimedPin, loadEveryCore, runAndAudit, shapesFlow, TIMED_PINS, TIMED_SLACK_MS, violationCount, type PinRun } from "../helpers/pins";

const SECONDS = Number(process.env.SQI_TIMED_SECONDS ?? 15);

function comparison(run: PinRun): string {
  const by = new Map(run.pins.map((a) => [a.pin, a]));
  return Object.entries(TIMED_PINS)
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
        assertTimedPin(a, `nice ${niceness}, pin ${pin}`, niceness ? 0 : TIMED_SLACK_MS);
      }
    });
  }
});
