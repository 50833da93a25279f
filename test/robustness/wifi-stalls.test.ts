// The jitter proxy's Wi-Fi stalls (scripts/jitter-proxy.ts), which the cluster's --wifi-stalls
// and bench:sync's lead-time table stand on: a link stops now and then, what was sent meanwhile
// waits, and then arrives, every byte, in order, at the stall's end; each connection stalls on its
// own schedule.
import assert from "node:assert/strict";
import * as net from "node:net";
import { describe, it } from "node:test";
import { mulberry32 } from "../../lib/container/clones";
import { stallSchedule, startJitterProxy, WIFI_STALLS } from "../../scripts/jitter-proxy";

describe("the jitter proxy's Wi-Fi stalls", () => {
  it("the schedule: stalls within their bounds, in order, about as often as asked, a third followed by another within 0.5 s", () => {
    const next = stallSchedule(WIFI_STALLS, mulberry32(3));
    const stalls: Array<[number, number]> = [];
    let from = 0;
    while (from < 24 * 3_600_000) {
      const [s, e] = next(from);
      stalls.push([s, e]);
      from = e;
    }
    assert.ok(
      stalls.every(([s, e], i) => e - s >= 50 && e - s <= 300 && s >= (stalls[i - 1]?.[1] ?? 0)),
      "each 50-300 ms, after the one before",
    );
    const bursts = stalls.filter(([s], i) => i > 0 && s - stalls[i - 1]![1] <= 500).length;
    const episodes = stalls.length - bursts;
    // 24 h at one episode a minute: about 1,440 (a Poisson count: 1,300-1,600 is many sigma wide).
    assert.ok(episodes > 1300 && episodes < 1600, `episodes in 24 h: ${episodes}`);
    assert.ok(Math.abs(bursts / stalls.length - 0.3) < 0.05, `share of stalls in a burst: ${(bursts / stalls.length).toFixed(3)}`);
  });

  it("through the proxy: bytes sent during a stall arrive when it ends, all of them, in order", async () => {
    const got: Array<{ n: number; at: number }> = [];
    const sink = net.createServer((s) => {
      let rest = "";
      s.on("data", (d) => {
        rest += d;
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const l of lines) got.push({ n: Number(l), at: Date.now() });
      });
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const proxy = await startJitterProxy({
      port: 0,
      targetPort: (sink.address() as net.AddressInfo).port,
      jitterMs: 0,
      random: mulberry32(5),
      stalls: { everyS: 0.3, minMs: 150, maxMs: 150, burstP: 0 },
    });
    const client = net.connect(proxy.port, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    try {
      const sent: number[] = [];
      for (let n = 0; n < 200; n++) {
        client.write(`${n}\n`);
        sent.push(Date.now());
        await new Promise((r) => setTimeout(r, 10));
      }
      const deadline = Date.now() + 5000;
      while (got.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        got.map((g) => g.n),
        [...Array(200).keys()],
        "every line, in order",
      );
      const held = got.filter((g) => g.at - sent[g.n]! >= 50);
      assert.ok(proxy.stalls() >= 2, `the link stalled: ${proxy.stalls()} times in about 2 s`);
      assert.ok(held.length >= 5, `lines held by a stall: ${held.length}`);
      // Held lines go on together when the stall ends: never longer than the stall (plus a loaded machine's timers).
      assert.ok(
        held.every((g) => g.at - sent[g.n]! <= 150 + 100),
        `held no longer than a stall: ${held.map((g) => g.at - sent[g.n]!).join(", ")} ms`,
      );
    } finally {
      client.destroy();
      await proxy.close();
      await new Promise((r) => sink.close(r));
    }
  });
});
