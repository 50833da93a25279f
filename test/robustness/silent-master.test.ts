// A master that goes silent without a FIN: a 20 s network blackhole (a Wi-Fi drop) between a
// real master and a real listener, a master that sends its welcome and then nothing, and over
// MQTT a master whose retained welcome stays while it says nothing. The listener must find
// the silence itself, say so, count it, reconnect with backoff, and once the network heals be
// back and receiving within a bounded time, with every event received or counted.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import mqtt from "mqtt";
import { WebSocketServer } from "ws";
import { realClock } from "../../lib/clock";
import { newRunId, welcomeText, type EventFrame } from "../../lib/bus/frames";
import { MqttListener } from "../../lib/bus/mqtt-listener";
import { GOODBYE_GRACE_MS, MqttMaster } from "../../lib/bus/mqtt-master";
import { SequenceTracker } from "../../lib/bus/sequence";
import { BusClient } from "../../lib/bus/ws-client";
import { BusServer } from "../../lib/bus/ws-server";
import { MASTER_SILENT, MAX_SILENT_MS } from "../../lib/bus/transport-base";
import { startJitterProxy } from "../../scripts/jitter-proxy";
import { startBroker } from "../../scripts/mosquitto";
import { skipWithoutMosquitto } from "../helpers/mosquitto";
import { freePort, killAll, waitFor } from "../helpers/processes";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a listener saw: its states in words, and its events by seq. */
function watcher() {
  const states: Array<{ at: number; state: string; detail: string }> = [];
  const seqs = new SequenceTracker();
  let last = 0;
  return {
    states,
    seqs,
    last: () => last,
    onState: (state: string, detail: string) => states.push({ at: Date.now(), state, detail }),
    onEvents: (events: EventFrame[]) => {
      for (const e of events) {
        seqs.see(e.seq);
        last = Math.max(last, e.seq ?? 0);
      }
    },
  };
}

describe("a master that goes silent is noticed by its listener", () => {
  it("a 20 s blackhole (no FIN, no RST): master silent within 10 s, counted; back and receiving within 20 s of the heal; every event received or counted", async () => {
    const port = await freePort();
    const server = new BusServer({ clock: realClock, host: "127.0.0.1", port, path: "/", maxPayload: 1 << 20, run: newRunId() });
    await server.listen();
    const proxy = await startJitterProxy({ port: 0, targetPort: port, jitterMs: 0 });
    const w = watcher();
    const client = new BusClient({
      clock: realClock,
      name: "pi-blackhole",
      url: `ws://127.0.0.1:${proxy.port}/`,
      maxPayload: 1 << 20,
      maxBackoffMs: 2000,
      onEvents: w.onEvents,
      onState: w.onState,
    });
    let seq = 0;
    const beat = setInterval(() => server.send({ event: "proton_collision", payload: {}, seq: ++seq }), 50);
    try {
      client.start();
      await waitFor("connected and receiving", () => w.seqs.counters.received > 10, 10_000, 20);
      const cut = Date.now();
      proxy.blackhole(true);
      await waitFor("master silent", () => client.counters.silent_closes >= 1, MAX_SILENT_MS + 3000, 50);
      const found = Date.now() - cut;
      assert.ok(found <= MAX_SILENT_MS + 1500, `found silent ${found} ms after the blackhole began`);
      const said = w.states.find((s) => s.detail.startsWith(MASTER_SILENT));
      assert.ok(said, `the status says so: ${JSON.stringify(w.states.slice(-3))}`);
      await sleep(Math.max(0, 20_000 - (Date.now() - cut)));
      const healed = Date.now();
      const before = w.seqs.counters.received;
      proxy.blackhole(false);
      await waitFor("back and receiving", () => w.seqs.counters.received > before + 20 && client.status.state === "connected", 20_000, 50);
      const back = Date.now() - healed;
      clearInterval(beat);
      const sent = seq;
      await waitFor("the last event", () => w.last() >= sent, 5000, 20);
      const c = w.seqs.counters;
      assert.equal(c.received - c.duplicates + c.missing, sent, `every event received or counted missing: ${JSON.stringify(c)}, ${sent} sent`);
      assert.ok(c.missing > 0, "the events sent during the blackhole were counted");
      assert.ok(client.counters.reconnects >= 1);
      console.log(
        `silent found after ${found} ms; back ${back} ms after the heal; ${c.missing} of ${sent} events counted missing; ${client.counters.silent_closes} silent closes, ${client.counters.reconnects} reconnects`,
      );
    } finally {
      clearInterval(beat);
      client.stop();
      await proxy.close();
      await server.close();
    }
  });

  it("a master that sends its welcome and then nothing: closed as silent within 10 s, counted, reconnected with backoff", async () => {
    const port = await freePort();
    const wss = new WebSocketServer({ host: "127.0.0.1", port });
    let connections = 0;
    wss.on("connection", (ws) => {
      connections++;
      ws.send(welcomeText("mute", newRunId()));
      ws.on("message", () => undefined); // pings unanswered
    });
    const w = watcher();
    const client = new BusClient({
      clock: realClock,
      name: "pi-mute",
      url: `ws://127.0.0.1:${port}/`,
      maxPayload: 1 << 20,
      maxBackoffMs: 500,
      onEvents: w.onEvents,
      onState: w.onState,
    });
    try {
      client.start();
      await waitFor("two silent closes", () => client.counters.silent_closes >= 2, 2 * MAX_SILENT_MS + 5000, 50);
      assert.ok(connections >= 2, `it reconnected: ${connections} connections`);
      assert.ok(client.counters.unmatched_pongs === 0 && client.counters.pings > 6);
      assert.ok(w.states.some((s) => s.state === "connecting" && s.detail.startsWith(MASTER_SILENT)));
    } finally {
      client.stop();
      await new Promise((r) => wss.close(() => r(undefined)));
    }
  });
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-mqtt-silent-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("over MQTT, a silent master and forged clock frames", { skip: skipWithoutMosquitto }, () => {
  it("a retained welcome and nothing else: the listener re-makes its link as master silent; forged pongs never reach its clock", async () => {
    const broker = await startBroker({ dir: path.join(dir, "b"), port: await freePort() });
    const rogue = mqtt.connect(broker.url, { reconnectPeriod: 0 });
    const w = watcher();
    const l = new MqttListener({
      clock: realClock,
      name: "pi-m",
      settings: { url: broker.url, qos: 0, prefix: "sqi/s", keepaliveS: 30, maxPayload: 1 << 20 },
      maxBackoffMs: 500,
      onEvents: w.onEvents,
      onState: w.onState,
    });
    try {
      await waitFor("the rogue connected", () => rogue.connected, 10_000, 20);
      // A welcome as a master would leave it, then nothing: the master is present and silent.
      await new Promise((res) => rogue.publish("sqi/s/master", welcomeText("ghost", newRunId()), { qos: 1, retain: true }, res));
      // Forged pongs for every ping the rogue can read (an open broker shows them): right id, a t0 that is not the ping's.
      rogue.subscribe("sqi/s/sync/+/ping");
      rogue.on("message", (topic, body) => {
        const p = JSON.parse(body.toString()) as { id: number; t0: number };
        const pong = { type: "pong", id: p.id, t0: p.t0 + 1, t1: Date.now() + 1e12, t2: Date.now() + 1e12, ping_ms: 2000 };
        rogue.publish(topic.replace(/ping$/, "pong"), JSON.stringify(pong));
      });
      l.start();
      await waitFor("master silent, the link re-made", () => l.counters.silent_closes >= 1 && l.counters.connects >= 2, MAX_SILENT_MS + 10_000, 50);
      assert.ok(l.counters.unmatched_pongs >= 3, `forged pongs counted: ${l.counters.unmatched_pongs}`);
      assert.equal(l.sync.estimate(), undefined, "no forged pong reached the clock sync");
      assert.ok(
        w.states.some((s) => s.detail.startsWith(MASTER_SILENT)),
        JSON.stringify(w.states),
      );
    } finally {
      l.stop();
      rogue.end(true);
      await broker.stop();
      killAll(broker.pid);
    }
  });

  it("a stranger's empty retained hello does not take a Pi that keeps speaking off the master's list; a Pi that stops does leave", async () => {
    const broker = await startBroker({ dir: path.join(dir, "g"), port: await freePort() });
    const settings = { url: broker.url, qos: 0 as const, prefix: "sqi/g", keepaliveS: 30, maxPayload: 1 << 20 };
    const m = new MqttMaster({ clock: realClock, settings, name: "master", run: newRunId(), maxBackoffMs: 300 });
    const l = new MqttListener({ clock: realClock, name: "pi-g", settings, maxBackoffMs: 300, maxPingMs: 500, onEvents: () => undefined });
    const rogue = mqtt.connect(broker.url, { reconnectPeriod: 0 });
    const goodbye = () => new Promise((res) => rogue.publish("sqi/g/hello/pi-g", "", { qos: 1, retain: true }, res));
    try {
      void m.listen();
      await waitFor("the master and the rogue connected", () => m.status.state === "connected" && rogue.connected, 10_000, 20);
      l.start();
      await waitFor("pi-g listed", () => m.clients.some((c) => c.name === "pi-g"), 10_000, 20);
      for (let i = 0; i < 3; i++) {
        await goodbye();
        await sleep(GOODBYE_GRACE_MS + 500);
        assert.ok(
          m.clients.some((c) => c.name === "pi-g"),
          `still listed after forged goodbye ${i + 1}`,
        );
      }
      assert.ok(m.counters.goodbyes_overruled >= 3, `overruled: ${m.counters.goodbyes_overruled}`);
      // A Pi that really goes (its goodbye, then silence) leaves the list after the grace.
      l.stop();
      await waitFor("pi-g gone", () => !m.clients.some((c) => c.name === "pi-g"), GOODBYE_GRACE_MS + 5000, 50);
    } finally {
      l.stop();
      rogue.end(true);
      await m.close();
      await broker.stop();
      killAll(broker.pid);
    }
  });
});
