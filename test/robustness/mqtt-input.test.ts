// The MQTT master against a hostile client of the broker (with no ACL, any client may
// publish anything under the prefix): thousands of hello names, deep and foreign-keyed
// reports, reports under another listener's topic, and a report flood. Through a real
// Mosquitto on 127.0.0.1, stopped by pid. Under .ci/run (SQI_CI=1) a missing mosquitto fails.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import mqtt from "mqtt";
import { realClock } from "../../lib/clock";
import { newRunId, type ListenerReport } from "../../lib/bus/frames";
import { MqttMaster } from "../../lib/bus/mqtt-master";
import { startBroker } from "../../scripts/mosquitto";
import { skipWithoutMosquitto } from "../helpers/mosquitto";
import { freePort, killAll, waitFor } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-mqtt-hostile-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the MQTT master against a hostile client of the broker", { skip: skipWithoutMosquitto }, () => {
  it("hello names are capped, foreign keys, deep values, other names and floods are rejected and counted", async () => {
    const broker = await startBroker({ dir: path.join(dir, "b"), port: await freePort() });
    const reports: ListenerReport[] = [];
    const m = new MqttMaster({
      clock: realClock,
      settings: { url: broker.url, qos: 0, prefix: "sqi/h", keepaliveS: 5, maxPayload: 1024 * 1024 },
      name: "master",
      run: newRunId(),
      maxClients: 100,
      maxBackoffMs: 300,
      onReport: (r) => reports.push(r),
    });
    void m.listen();
    const rogue = mqtt.connect(broker.url, { reconnectPeriod: 0 });
    try {
      await waitFor("the master connected", () => m.status.state === "connected", 10_000, 20);
      await waitFor("the hostile client connected", () => rogue.connected, 10_000, 20);
      const publish = (topic: string, body: string): Promise<void> =>
        new Promise((res, rej) => rogue.publish(topic, body, { qos: 1 }, (e) => (e ? rej(e) : res())));
      // 3,000 hello names: at most 100 are kept.
      for (let i = 0; i < 3000; i++) void publish(`sqi/h/hello/spoof-${i}`, JSON.stringify({ type: "hello", name: `spoof-${i}`, protocol: 1 }));
      await waitFor("every hello seen", () => m.clients.length + m.counters.refused_full >= 3000, 20_000, 50);
      assert.equal(m.clients.length, 100);
      assert.equal(m.counters.refused_full, 2900);
      // Reports: a deep extra key, a foreign key, a name that is not its topic's, then a flood, then a good one.
      const rejected = m.counters.rejected;
      await publish("sqi/h/report/spoof-1", `{"type":"report","name":"spoof-1","counters":{"received":1},"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
      await publish("sqi/h/report/spoof-1", JSON.stringify({ type: "report", name: "spoof-1", counters: { received: 1 }, admin: true }));
      await publish("sqi/h/report/spoof-1", JSON.stringify({ type: "report", name: "spoof-2", counters: { fired_pulses: 1e12 } }));
      for (let i = 0; i < 50; i++) void publish("sqi/h/report/spoof-3", JSON.stringify({ type: "report", name: "spoof-3", counters: { received: i } }));
      await waitFor("the flood counted", () => m.counters.rejected - rejected >= 3 + 40, 10_000, 20);
      await new Promise((r) => setTimeout(r, 1100)); // a new second for spoof-1's rate
      await publish("sqi/h/report/spoof-1", JSON.stringify({ type: "report", name: "spoof-1", counters: { received: 7 } }));
      await waitFor("the good report", () => reports.some((r) => r.name === "spoof-1"), 10_000, 20);
      assert.ok(
        reports.filter((r) => r.name === "spoof-3").length <= 5,
        `at most 5 reports a second taken: ${reports.filter((r) => r.name === "spoof-3").length}`,
      );
      assert.ok(!reports.some((r) => r.name === "spoof-2"), "no report under another listener's name");
      assert.deepEqual(Object.keys(reports.find((r) => r.name === "spoof-1")!).sort(), ["counters", "fired", "measured", "name", "remote", "type"]);
    } finally {
      rogue.end(true);
      await m.close();
      await broker.stop();
      killAll(broker.pid);
    }
  });
});
