// A thousand Pis, as lightweight listeners (scripts/fleet.ts: the node's lib/bus listener and
// arrival policy, no Node-RED), toward a bare lib/bus master (scripts/bare-master.ts):
//   - the reconnect storm: the master is killed with 1,000 listeners connected and started
//     again; all rejoin and resync, spread by the backoff's jitter, nothing fires twice and
//     the master's restart is counted once per listener;
//   - two Mosquittos bridged (scripts/mosquitto.ts bridgeLines, as docs/many-pis.md shows): the
//     master on one, half the listeners on each; every event delivered or counted, and the
//     clock sync works across the bridge.
// Every process is started here and stopped by its pid, also when a test fails.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { cpuSeconds, rssMb } from "../../bench/proc";
import { mqttBus, startMaster, wsBus, type MasterHandle } from "../../scripts/bare-master";
import { startFleet, type FleetHandle, type MergedStats } from "../../scripts/fleet";
import { startBridgedBrokers, type Broker } from "../../scripts/mosquitto";
import { skipWithoutMosquitto } from "../helpers/mosquitto";
import { freePort, waitFor } from "../helpers/processes";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-fleet-"));
const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Plays `rate` events/s for `seconds` and waits for them to arrive; the events sent. */
async function play(master: MasterHandle, rate: number, seconds: number): Promise<number> {
  const before = (await master.stats()).sent;
  const after = await master.play(rate, seconds);
  await new Promise((r) => setTimeout(r, 500));
  return after.sent - before;
}

const lostOf = (s: MergedStats): number => (s.counters.missing ?? 0) + (s.counters.late_dropped ?? 0) + (s.counters.unsynced ?? 0) + (s.counters.missed ?? 0);

describe("1,000 listeners: the master's reconnect storm", () => {
  it("all rejoin and resync after the master is killed and restarted, spread by jitter; nothing fires twice; the restart is counted once each", async (t) => {
    const N = 1000;
    const bus = wsBus(await freePort());
    let master = await startMaster({ bus, tickMs: 10, leadMs: 50 });
    stops.push(() => master.kill());
    const fleet: FleetHandle = await startFleet({ bus, listeners: N, processes: 4, offsetMs: 200, driftPpm: 50, startSpreadMs: 3000 });
    stops.push(() => fleet.stop());
    await waitFor(`${N} listeners synced`, async () => (await fleet.stats()).synced === N, 60_000, 250);
    const first = await play(master, 100, 2);
    let s = await fleet.stats();
    assert.equal(s.received, first * N, "before the storm every listener had every event");

    await fleet.reset();
    await master.kill();
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    master = await startMaster({ bus, tickMs: 10, leadMs: 50 });
    const restartedAt = Date.now();
    const cpu0 = cpuSeconds(master.pid);
    let peakRss = rssMb(master.pid);
    let peakCpu = 0;
    let last = { t: Date.now(), cpu: cpu0 };
    const sampler = setInterval(() => {
      const now = { t: Date.now(), cpu: cpuSeconds(master.pid) };
      peakCpu = Math.max(peakCpu, ((now.cpu - last.cpu) / ((now.t - last.t) / 1000)) * 100);
      last = now;
      peakRss = Math.max(peakRss, rssMb(master.pid));
    }, 200);
    try {
      s = await waitFor(
        `${N} listeners rejoined and resynced`,
        async () => {
          const x = await fleet.stats();
          return x.connected === N && x.resyncs.length >= N && x.synced === N ? x : undefined;
        },
        60_000,
        200,
      );
    } finally {
      clearInterval(sampler);
    }
    const allBack = Math.max(...s.resyncs) - restartedAt;
    const perSecond = new Map<number, number>();
    for (const at of s.rejoins) perSecond.set(Math.floor((at - restartedAt) / 1000), (perSecond.get(Math.floor((at - restartedAt) / 1000)) ?? 0) + 1);
    const per100 = new Map<number, number>();
    for (const at of s.rejoins) per100.set(Math.floor(at / 100), (per100.get(Math.floor(at / 100)) ?? 0) + 1);
    t.diagnostic(
      `down ${restartedAt - killedAt} ms; all ${N} rejoined and resynced ${allBack.toFixed(0)} ms after the restart; master peak CPU ${peakCpu.toFixed(0)} % ` +
        `(${(((cpuSeconds(master.pid) - cpu0) / ((Date.now() - restartedAt) / 1000)) * 100).toFixed(0)} % on average), peak RSS ${peakRss.toFixed(0)} MB; ` +
        `rejoins per second after the restart: ${[...perSecond.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([k, v]) => `${k} s: ${v}`)
          .join(", ")}; the busiest 100 ms: ${Math.max(...per100.values())}`,
    );
    assert.equal(s.rejoins.length, N, "each listener rejoined once");
    assert.ok(Math.max(...per100.values()) < N / 2, "the backoff's jitter spread the storm: no 100 ms took half of the listeners");
    assert.ok(allBack < 30_000, `all back within 30 s (${allBack} ms)`);

    const second = await play(master, 100, 2);
    s = await fleet.stats();
    assert.equal(s.fired_twice, 0, "nothing fired twice");
    assert.equal(s.counters.restarts, N, "the new run's seqs: one restart counted per listener");
    assert.equal(s.counters.duplicates ?? 0, 0);
    assert.equal(s.received, second * N, "after the storm every listener has every new event");
    assert.equal(lostOf(s), 0, "and nothing counted lost: the master was down, not the events");
  });
});

describe("two Mosquittos bridged: the master on one, half the listeners on each", { skip: skipWithoutMosquitto }, () => {
  it("every event is delivered or counted, and clock sync works across the bridge", async (t) => {
    const N = 100;
    let brokers: [Broker, Broker] | undefined;
    stops.push(async () => {
      for (const b of brokers ?? []) await b.stop();
    });
    brokers = await startBridgedBrokers(path.join(dir, "bridge"), [await freePort(), await freePort()]);
    const [a, b] = brokers;
    const master = await startMaster({ bus: mqttBus(a.url), tickMs: 10, leadMs: 50 });
    stops.push(() => master.kill());
    const fleet = await startFleet({
      bus: mqttBus(a.url),
      busOf: (p) => mqttBus((p === 0 ? a : b).url),
      listeners: N,
      processes: 2,
      offsetMs: 200,
      driftPpm: 50,
      startSpreadMs: 1000,
    });
    stops.push(() => fleet.stop());
    await waitFor(`${N} listeners synced across the bridge`, async () => (await fleet.stats()).synced === N, 60_000, 250);
    await new Promise((r) => setTimeout(r, 2000)); // the estimates settle
    await fleet.reset();
    const sent = await play(master, 200, 3);
    const s = await fleet.stats();
    const unique = s.received - (s.counters.duplicates ?? 0);
    const errors = s.clock_error.map(Math.abs).sort((x, y) => x - y);
    const p99 = errors[Math.ceil(0.99 * errors.length) - 1]!;
    t.diagnostic(
      `${sent} events × ${N} listeners: ${unique} received, ${lostOf(s)} counted lost; latency p50/p99 ${s.latencyHist.quantile(0.5).toFixed(2)} / ${s.latencyHist.quantile(0.99).toFixed(2)} ms; ` +
        `clock error p50/p99/max ${errors[Math.floor(errors.length / 2)]!.toFixed(3)} / ${p99.toFixed(3)} / ${errors[errors.length - 1]!.toFixed(3)} ms`,
    );
    assert.equal(unique + lostOf(s), sent * N, "every event delivered or counted, on both brokers");
    assert.equal(s.synced, N, "every listener, on either broker, has a clock estimate");
    assert.ok(p99 < 5, `the clock error across the bridge is small (p99 ${p99.toFixed(3)} ms; the bench prints it under load)`);
    assert.equal(s.fired_twice, 0);
  });
});
