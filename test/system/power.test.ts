// Measured power over MQTT: a master and three Pis through Mosquitto, each Pi's SIMULATED
// sensor reading its coil pin. The master's sum of the electrical energy drawn is within 2 %
// of what the pin logs say (on-time x the simulated V/R), with the shapers' estimate and the
// ratio beside it. (Over WebSocket the same check runs in test/e2e/power-scope.test.ts.)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { skipWithoutMosquitto } from "../helpers/mosquitto";
import { checkSumAgainstPins, startPowerCluster, type PowerCluster } from "../helpers/power";

describe("measured power from three Pis over MQTT", { skip: skipWithoutMosquitto }, () => {
  it("the master's sum is the pin logs' on-time x V/R, within 2 %", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-power-mqtt-"));
    let p: PowerCluster | undefined;
    try {
      p = await startPowerCluster(dir, true);
      const r = await checkSumAgainstPins(p, 6000);
      t.diagnostic(
        `MQTT: measured ${r.measured_j} J, pin logs ${r.expected_j.toFixed(4)} J (${(((r.measured_j - r.expected_j) / r.expected_j) * 100).toFixed(2)} %), estimated ${r.estimated_j} J, ratio ${r.ratio} (over the run, once the helpers ran: ${r.windowRatio.toFixed(3)}); on-time at the pins ${r.onMs.map((x) => x.toFixed(1)).join(" + ")} ms, as the shapers handed it on ${r.shaperOnMs.toFixed(1)} ms`,
      );
    } finally {
      await p?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
