// The bus over real sockets on 127.0.0.1: lib/bus server and client, raw ws clients as the
// seed's bridge and as abusers, and the sqi-event-bus node in both roles.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, it } from "node:test";
import WebSocket from "ws";
import { DriftClock, realClock } from "../../lib/clock";
import { BusClient } from "../../lib/bus/ws-client";
import { selfSignedCert } from "../helpers/tls";
import type { EventFrame } from "../../lib/bus/frames";
import { BusServer } from "../../lib/bus/ws-server";
import { freePort, waitFor } from "../helpers/processes";
import { helper, record, settle } from "../helpers/red";
import { resolveNodeRed } from "../../scripts/node-red-path";

const sqiBus = require("../../nodes/sqi-bus");
const sqiEventBus = require("../../nodes/sqi-event-bus");
const pulseShaper = require("../../nodes/pulse-shaper");

const open: Array<{ close(): unknown }> = [];
after(async () => {
  for (const x of open) await x.close();
});

async function server(extra: Partial<ConstructorParameters<typeof BusServer>[0]> = {}) {
  const s = new BusServer({ clock: realClock, host: "127.0.0.1", port: await freePort(), path: "/", maxPayload: 1024 * 1024, ...extra });
  await s.listen();
  open.push(s);
  return s;
}

function client(port: number, extra: Partial<ConstructorParameters<typeof BusClient>[0]> = {}) {
  const got: EventFrame[] = [];
  const c = new BusClient({
    clock: realClock,
    url: `ws://127.0.0.1:${port}/`,
    name: "pi-test",
    maxPayload: 1024 * 1024,
    onEvents: (ev) => got.push(...ev),
    maxBackoffMs: 300,
    ...extra,
  });
  open.push({ close: () => c.stop() });
  c.start();
  return { c, got };
}

function raw(url: string, opts: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, opts);
  const frames: string[] = [];
  ws.on("message", (d) => frames.push(d.toString()));
  ws.on("error", () => undefined);
  open.push({ close: () => ws.terminate() });
  return { ws, frames };
}

describe("bus over WebSocket (lib)", () => {
  it("a listener receives every event in order, batched, with consecutive seq", async () => {
    const s = await server();
    const { c, got } = client(s.port);
    await waitFor("connected", () => s.clients.some((x) => x.hello));
    for (let i = 1; i <= 500; i++) s.send({ event: i % 2 ? "proton_collision" : "atom_spin_flip", payload: { i }, seq: i, at: Date.now() + 50 });
    await waitFor("500 events", () => got.length >= 500);
    assert.deepEqual(
      got.map((e) => e.seq),
      Array.from({ length: 500 }, (_, i) => i + 1),
    );
    assert.ok(c.counters.frames < 50, `sent as a few batches, not 500 frames (${c.counters.frames})`);
  });

  it("a burst bigger than the frame limit goes out as several batches, none over the limit, nothing lost", async () => {
    const s = await server({ maxPayload: 64 * 1024 });
    const sizes: number[] = [];
    const { c, got } = client(s.port, { maxPayload: 64 * 1024 });
    await waitFor("connected", () => s.clients.some((x) => x.hello));
    const pad = "x".repeat(200);
    for (let i = 1; i <= 5000; i++) s.send({ event: "proton_collision", payload: { pad, arrow: "up→down" }, seq: i });
    (c as unknown as { ws: { on(e: string, f: (d: Buffer) => void): void } }).ws.on("message", (d) => sizes.push(d.length));
    await waitFor("5000 events", () => got.length >= 5000);
    assert.deepEqual(
      got.map((e) => e.seq),
      Array.from({ length: 5000 }, (_, i) => i + 1),
    );
    assert.ok(sizes.length > 10 && Math.max(...sizes) <= 64 * 1024, `${sizes.length} frames, largest ${Math.max(...sizes)} bytes`);
    assert.equal(c.status.state, "connected");
    const huge = { event: "waveform_emit", payload: { pad: "y".repeat(70 * 1024) }, seq: 5001 };
    s.send(huge);
    s.send({ event: "fusion_tick", payload: {}, seq: 5002 });
    await waitFor("the next event", () => got.some((e) => e.seq === 5002));
    assert.equal(s.counters.events_dropped, 1, "the oversized event is dropped and counted, not sent to close the listener");
  });

  it("estimates a simulated 150 ms clock offset within 1 ms", async () => {
    const s = await server();
    const { c } = client(s.port, { clock: new DriftClock(realClock, { offsetMs: -150 }) });
    await waitFor("a settled estimate", () => (c.sync.samples >= 15 ? c.sync.estimate() : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const e = c.sync.estimate()!;
    assert.ok(Math.abs(e.offsetMs - 150) < 1, `offset ${e.offsetMs.toFixed(3)} ms, uncertainty ${e.uncertaintyMs.toFixed(3)}`);
  });

  it("a plain ws client that says nothing gets one {event, payload, ...} frame per event, as the seed's bridge expects", async () => {
    const s = await server();
    const { frames } = raw(`ws://127.0.0.1:${s.port}/`);
    await waitFor("connected", () => s.clients.length === 1);
    s.send({ event: "proton_collision", payload: { energy_mev: 14.1 }, seq: 1, at: 5 });
    s.send({ event: "fusion_tick", payload: {}, seq: 2, at: 5 });
    await waitFor("two frames", () => frames.length >= 2);
    const parsed = frames.map((f) => JSON.parse(f));
    assert.deepEqual(
      parsed.map((p) => [p.event, p.payload]),
      [
        ["proton_collision", { energy_mev: 14.1 }],
        ["fusion_tick", {}],
      ],
    );
  });

  it("a token is checked on the upgrade: missing or wrong -> 401 before any frame; Bearer or ?token= -> in", async () => {
    const s = await server({ token: "s3cret" });
    const status = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.on("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          resolve(101);
          ws.terminate();
        });
        ws.on("error", () => undefined);
      });
    const base = `ws://127.0.0.1:${s.port}/`;
    assert.equal(await status(base), 401);
    assert.equal(await status(base, { Authorization: "Bearer nope" }), 401);
    assert.equal(await status(`${base}?token=nope`), 401);
    assert.equal(await status(base, { Authorization: "Bearer s3cret" }), 101);
    assert.equal(await status(`${base}?token=s3cret`), 101);
    assert.equal(s.counters.unauthorized, 3);
    const { c } = client(s.port, { token: "wrong" });
    // (Not merely "includes 401": the URL's port may hold those digits, as port 40191 did on CI.)
    await waitFor("a clear status", () => (c.status.state === "disconnected" && c.status.detail.startsWith("401 ") ? true : undefined));
    assert.equal(c.status.detail, "401 unauthorized: the token is missing or wrong");
  });

  it("an oversized frame closes the connection and is counted", async () => {
    const s = await server({ maxPayload: 1024 });
    const { ws } = raw(`ws://127.0.0.1:${s.port}/`);
    await new Promise((r) => ws.once("open", r));
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send(JSON.stringify({ type: "report", name: "x".repeat(2000), counters: {} }));
    assert.equal(await closed, 1009);
    await waitFor("counted", () => s.counters.oversize === 1);
  });

  it("a listener may not send events: rejected and counted; ten rejections disconnect it", async () => {
    const s = await server();
    const { ws } = raw(`ws://127.0.0.1:${s.port}/`);
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ event: "proton_collision", payload: {} }));
    ws.send("not json at all");
    await waitFor("two rejected", () => s.counters.rejected === 2);
    assert.ok(
      s.lastErrors.some((e) => e.includes("listeners may not send events") || e.includes("type: is missing")),
      s.lastErrors.join("\n"),
    );
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    for (let i = 0; i < 8; i++) ws.send("{}");
    assert.equal(await closed, 1008);
    assert.equal(s.counters.disconnected_for_abuse, 1);
  });

  it("a flood of pings is answered up to 50 a second; the rest are rejected and counted", async () => {
    const s = await server({ maxRejected: 1000 });
    const { ws, frames } = raw(`ws://127.0.0.1:${s.port}/`);
    await new Promise((r) => ws.once("open", r));
    for (let i = 0; i < 200; i++) ws.send(JSON.stringify({ type: "ping", id: i, t0: Date.now() }));
    await waitFor("all handled", () => s.counters.rejected + frames.length >= 200);
    assert.ok(frames.length <= 100, `answered ${frames.length}`);
    assert.ok(s.counters.rejected >= 100);
  });

  it("a client that never reads does not make the master buffer without bound: frames are dropped and counted", async () => {
    const s = await server({ maxBuffered: 64 * 1024 });
    const { ws } = raw(`ws://127.0.0.1:${s.port}/`);
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "hello", name: "sleepy", protocol: 1 }));
    await waitFor("hello", () => s.clients.some((x) => x.hello));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = { event: "waveform_emit", payload: { pad: "x".repeat(2000) } };
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 50; i++) s.send({ ...big, seq: round * 50 + i + 1 });
      s.flush();
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(s.counters.events_dropped > 0, JSON.stringify(s.counters));
    assert.equal(s.counters.events, 15_000);
  });

  it("after the master restarts, the listener reconnects and gets events again", async () => {
    const port = await freePort();
    let s = new BusServer({ clock: realClock, host: "127.0.0.1", port, path: "/", maxPayload: 1 << 20 });
    await s.listen();
    const { c, got } = client(port);
    await waitFor("connected", () => s.clients.some((x) => x.hello));
    await s.close();
    await waitFor("disconnected", () => c.status.state !== "connected");
    s = new BusServer({ clock: realClock, host: "127.0.0.1", port, path: "/", maxPayload: 1 << 20 });
    await s.listen();
    open.push(s);
    await waitFor("reconnected", () => s.clients.some((x) => x.hello), 10_000);
    s.send({ event: "proton_collision", payload: {}, seq: 1 });
    await waitFor("event after restart", () => got.length === 1);
    assert.equal(c.counters.reconnects, 1);
  });

  it("wss: a listener that trusts the master's certificate connects; one that does not gets a clear status", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bus-tls-"));
    try {
      const { key, cert } = selfSignedCert(dir);
      const s = await server({ tls: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) } });
      const { c, got } = client(s.port, { url: `wss://127.0.0.1:${s.port}/`, tls: { ca: fs.readFileSync(cert) } });
      await waitFor("connected over TLS", () => s.clients.some((x) => x.hello));
      s.send({ event: "proton_collision", payload: {}, seq: 1 });
      await waitFor("an event over TLS", () => got.length === 1);
      assert.equal(c.status.state, "connected");
      const { c: untrusting } = client(s.port, { url: `wss://127.0.0.1:${s.port}/` });
      await waitFor("a clear status", () => (untrusting.status.state === "disconnected" ? true : undefined));
      assert.match(untrusting.status.detail, /self-signed certificate/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a master URL that does not resolve gives a clear status and keeps retrying", async () => {
    const { c } = client(1, { url: "ws://no-such-master.invalid:8765/" });
    await waitFor("status", () => (c.status.detail.startsWith("cannot resolve") ? true : undefined), 10_000);
    assert.equal(c.status.detail, "cannot resolve no-such-master.invalid");
    assert.equal(c.status.state, "disconnected");
  });
});

describe("sqi-event-bus node", () => {
  afterEach(async () => helper.unload());

  it("wss through Node-RED's own tls-config node, on both sides", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bus-tls-node-"));
    try {
      const { key, cert } = selfSignedCert(dir);
      const tlsNode = require(resolveNodeRed("@node-red/nodes/core/network/05-tls.js"));
      const port = await freePort();
      await helper.load(
        [tlsNode, sqiBus, sqiEventBus],
        [
          { id: "f", type: "tab" },
          { id: "tls", type: "tls-config", cert, key, ca: cert, certname: "", keyname: "", caname: "", servername: "", verifyservercert: true },
          { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: `wss://127.0.0.1:${port}/`, tls: "tls", maxFrame: 1048576 },
          { id: "master", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], []] },
          { id: "pi", z: "f", type: "sqi-event-bus", role: "listen", bus: "bus", listenerName: "pi-tls", statsEvery: 0, wires: [["events"], []] },
          { id: "events", z: "f", type: "helper" },
        ],
      );
      const events: Array<Record<string, unknown>> = [];
      helper.getNode("events").on("input", (m: Record<string, unknown>) => events.push(m));
      // no at: fired on arrival, no clock estimate needed
      await waitFor("an event over wss", async () => {
        helper.getNode("master").receive({ topic: "proton_collision", payload: { over: "tls" } });
        await new Promise((r) => setTimeout(r, 100));
        return events.length > 0 ? true : undefined;
      });
      assert.deepEqual(events[0]!.payload, { over: "tls" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a token with a space is refused with a clear status, and nothing listens", async () => {
    const port = await freePort();
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: "", maxFrame: 1048576 },
        { id: "master", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], []] },
      ],
      { bus: { token: "two words" } },
    );
    await settle();
    const spy = helper.log();
    const errors = spy.args.filter(([e]) => e.level === spy.ERROR && e.id === "master").map(([e]) => String(e.msg));
    assert.deepEqual(errors, ["sqi-event-bus: the token contains spaces or line breaks: it must be one word (it travels in an HTTP header)"]);
    const refused = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      ws.on("open", () => resolve(false));
      ws.on("error", () => resolve(true));
    });
    assert.equal(refused, true, "no server was started");
  });

  it("broadcast -> listen in one flow: events out of the listener with seq, and at on the listener's clock", async () => {
    const port = await freePort();
    helper.settings({});
    await helper.load(
      [sqiBus, sqiEventBus, pulseShaper],
      [
        { id: "f", type: "tab" },
        { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: `ws://127.0.0.1:${port}/`, maxFrame: 1048576 },
        { id: "master", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], ["mstats"]] },
        { id: "pi", z: "f", type: "sqi-event-bus", role: "listen", bus: "bus", listenerName: "pi-a", statsEvery: 0, wires: [["events", "shaper"], ["pstats"]] },
        { id: "shaper", z: "f", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] },
        { id: "events", z: "f", type: "helper" },
        { id: "mstats", z: "f", type: "helper" },
        { id: "pstats", z: "f", type: "helper" },
      ],
      { bus: { token: "tok" } },
    );
    const events: Array<Record<string, unknown>> = [];
    const mstats: Array<Record<string, unknown>> = [];
    helper.getNode("events").on("input", (m: Record<string, unknown>) => events.push(m));
    helper.getNode("mstats").on("input", (m: Record<string, unknown>) => mstats.push(m));
    const pstats: Array<Record<string, unknown>> = [];
    helper.getNode("pstats").on("input", (m: Record<string, unknown>) => pstats.push(m));
    // wait until the listener has a clock estimate
    await waitFor("listener synced", async () => {
      helper.getNode("pi").receive({ stats: true });
      await settle();
      return (pstats[pstats.length - 1]?.payload as { offset_ms: number | null } | undefined)?.offset_ms != null ? true : undefined;
    });
    const at = Date.now() + 100;
    for (let i = 0; i < 20; i++)
      helper.getNode("master").receive({ topic: "proton_collision", payload: { i }, sqi: { container: "c", tick: 1, loop: i, seq: 900 + i, at } });
    await waitFor("20 events", () => events.length >= 20);
    assert.deepEqual(
      events.map((m) => (m.sqi as { seq: number }).seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const sqi = events[0]!.sqi as Record<string, number | string>;
    assert.equal(sqi.master_at, at);
    assert.ok(Math.abs((sqi.at as number) - at) < 2, `same clock: at converted to ${sqi.at} (master ${at})`);
    assert.deepEqual(events[3]!.payload, { i: 3 });
    assert.equal(events[0]!.topic, "proton_collision");
    helper.getNode("master").receive({ stats: true });
    await waitFor("master stats", () => mstats.some((m) => m.topic === "stats"));
    const st = mstats.find((m) => m.topic === "stats")!.payload as { listeners: Array<{ name: string }>; counters: { events: number } };
    assert.deepEqual(
      st.listeners.map((l) => l.name),
      ["pi-a"],
    );
    assert.equal(st.counters.events, 20);
    // The listener's report tells the master what arrived and what this Pi's shaper fired.
    const report = (
      await waitFor(
        "a report with the fired pulse",
        () => mstats.find((m) => m.topic === "report" && ((m.payload as { counters: Record<string, number> }).counters.fired_pulses ?? 0) >= 1),
        10_000,
      )
    ).payload as { name: string; counters: Record<string, number>; offset_ms: number };
    assert.equal(report.name, "pi-a");
    assert.equal(report.counters.received, 20);
    assert.equal(report.counters.fired_pulses, 1, "20 events due at the same moment merge into one pulse");
    // a 5 ms pulse, measured on the real clock of a busy machine: a late rising edge shortens it, a late falling edge lengthens it
    assert.ok(report.counters.fired_on_time_ms! > 2.5 && report.counters.fired_on_time_ms! < 10, `on-time ${report.counters.fired_on_time_ms} ms`);
    assert.ok(Math.abs(report.offset_ms) < 1);
  });
  it("two listening buses in one runtime: each reports the pulse-shapers on its own tab, a second one on a tab reports none", async () => {
    const port = await freePort();
    helper.settings({});
    const listener = (id: string, z: string, name: string, shaper: string) => ({
      id,
      z,
      type: "sqi-event-bus",
      role: "listen",
      bus: "bus",
      listenerName: name,
      statsEvery: 0,
      wires: [[shaper], [`${id}-stats`]],
    });
    await helper.load(
      [sqiBus, sqiEventBus, pulseShaper],
      [
        { id: "ta", type: "tab" },
        { id: "tb", type: "tab" },
        { id: "tm", type: "tab" },
        { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: `ws://127.0.0.1:${port}/`, maxFrame: 1048576 },
        { id: "master", z: "tm", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], ["mstats"]] },
        // A shaper on the master's tab, fed directly: no listener speaks for it.
        { id: "lone", z: "tm", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] },
        listener("pa", "ta", "pi-a", "sa"),
        { id: "sa", z: "ta", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] },
        listener("pa2", "ta", "pi-a2", "sa2"),
        { id: "sa2", z: "ta", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] },
        listener("pb", "tb", "pi-b", "sb"),
        { id: "sb", z: "tb", type: "pulse-shaper", width: 5, measureEvery: 0, wires: [[], []] },
        { id: "mstats", z: "tm", type: "helper" },
        { id: "pa-stats", z: "ta", type: "helper" },
        { id: "pa2-stats", z: "ta", type: "helper" },
        { id: "pb-stats", z: "tb", type: "helper" },
      ],
      { bus: { token: "tok" } },
    );
    const second = record("pa2");
    const reports: Array<{ name: string; counters: Record<string, number> }> = [];
    helper.getNode("mstats").on("input", (m: Record<string, unknown>) => {
      if (m.topic === "report") reports.push(m.payload as { name: string; counters: Record<string, number> });
    });
    for (const id of ["pa", "pa2", "pb"]) {
      const stats: Array<Record<string, unknown>> = [];
      helper.getNode(`${id}-stats`).on("input", (m: Record<string, unknown>) => stats.push(m));
      await waitFor(`${id} synced`, async () => {
        helper.getNode(id).receive({ stats: true });
        await settle();
        return (stats[stats.length - 1]?.payload as { offset_ms: number | null } | undefined)?.offset_ms != null ? true : undefined;
      });
    }
    // One event to every Pi; two pulses on the shaper no listener speaks for.
    helper.getNode("master").receive({ topic: "proton_collision", sqi: { at: Date.now() + 100 } });
    helper.getNode("lone").receive({ topic: "proton_collision" });
    await new Promise((r) => setTimeout(r, 50));
    helper.getNode("lone").receive({ topic: "proton_collision" });
    const last = (name: string) => [...reports].reverse().find((r) => r.name === name);
    await waitFor(
      "a report from each listener after its pulse",
      () => ["pi-a", "pi-b"].every((n) => (last(n)?.counters.fired_pulses ?? 0) >= 1) && (last("pi-a2")?.counters.received ?? 0) >= 1,
      10_000,
    );
    // The old process-wide registry summed every shaper of the runtime into every report (4 here).
    assert.equal(last("pi-a")!.counters.fired_pulses, 2, "pi-a speaks for both shapers on its tab (its own and pi-a2's), each fired once");
    assert.equal(last("pi-b")!.counters.fired_pulses, 1, "pi-b: only the shaper on its tab");
    assert.equal(last("pi-a2")!.counters.fired_pulses, undefined, "a second listening bus on a tab speaks for none");
    assert.ok(
      second.warnings.some((w) => w.includes("another listening bus on this flow tab")),
      second.warnings.join("\n"),
    );
  });

  it("counted messages from clones cross as one event each: the listener gets count and window_ms, a plain client one frame per message", async () => {
    const port = await freePort();
    helper.settings({});
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "bus", type: "sqi-bus", host: "127.0.0.1", port: String(port), path: "/", url: `ws://127.0.0.1:${port}/`, maxFrame: 1048576 },
        { id: "master", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "bus", statsEvery: 0, wires: [[], []] },
        { id: "pi", z: "f", type: "sqi-event-bus", role: "listen", bus: "bus", listenerName: "pi-a", statsEvery: 0, late: "fire", wires: [["events"], []] },
        { id: "events", z: "f", type: "helper" },
      ],
    );
    const events: Array<{ topic: string; sqi: Record<string, number> }> = [];
    helper.getNode("events").on("input", (m: (typeof events)[number]) => events.push(m));
    const plain = raw(`ws://127.0.0.1:${port}/`);
    await waitFor("plain client open", () => plain.ws.readyState === WebSocket.OPEN);
    await waitFor("the listener connected (a probe gets through)", async () => {
      helper.getNode("master").receive({ topic: "probe", payload: {} });
      await new Promise((r) => setTimeout(r, 100));
      return events.length > 0;
    });
    events.length = 0;
    plain.frames.length = 0;
    const at = Date.now() + 200;
    const counts = [20, 19, 21];
    counts.forEach((count, i) =>
      helper.getNode("master").receive({
        topic: "proton_collision",
        payload: {},
        sqi: { container: "c", tick: 1, loop: 0, seq: i + 1, at: at + 20 * i, count, window_ms: 20, rate_hz: count * 50, clones: 1000 },
      }),
    );
    await waitFor("3 events at the listener", () => events.length >= 3);
    await waitFor("3 plain frames", () => plain.frames.length >= 3);
    assert.deepEqual(
      events.map((m) => [m.topic, m.sqi.count, m.sqi.window_ms]),
      counts.map((c) => ["proton_collision", c, 20]),
    );
    const frames = plain.frames.map((f) => JSON.parse(f) as Record<string, unknown>);
    assert.deepEqual(
      frames.map((f) => [f.event, f.count, f.window_ms]),
      counts.map((c) => ["proton_collision", c, 20]),
    );
    assert.equal(events.length, 3, "one event per counted message, never one per clone");
  });
});

describe("sqi-bus secrets from Node-RED's environment", () => {
  afterEach(async () => {
    await helper.unload();
    delete process.env.SQI_TEST_BROKER_USER;
  });

  it("tokenEnv, userEnv and passwordEnv are read through the flow's env, then the process's; ${NAME} works in credentials", async () => {
    process.env.SQI_TEST_BROKER_USER = "user-from-process";
    helper.settings({});
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        {
          id: "f",
          type: "tab",
          env: [
            { name: "SQI_TEST_TOKEN", value: "token-from-flow", type: "str" },
            { name: "SQI_TEST_PASS", value: "pass-from-flow", type: "str" },
          ],
        },
        {
          id: "bus",
          z: "f",
          type: "sqi-bus",
          transport: "mqtt",
          broker: "mqtt://127.0.0.1:1",
          tokenEnv: "SQI_TEST_TOKEN",
          userEnv: "SQI_TEST_BROKER_USER",
          passwordEnv: "SQI_TEST_UNSET",
        },
        { id: "bus2", z: "f", type: "sqi-bus", transport: "mqtt", broker: "mqtt://127.0.0.1:1", userEnv: "SQI_TEST_BROKER_USER" },
        { id: "l1", z: "f", x: 100, y: 100, type: "sqi-event-bus", role: "listen", bus: "bus", listenerName: "pi-env", statsEvery: 0, wires: [[], []] },
        { id: "l2", z: "f", x: 100, y: 200, type: "sqi-event-bus", role: "listen", bus: "bus2", listenerName: "pi-env2", statsEvery: 0, wires: [[], []] },
      ],
      { bus2: { user: "own-user", password: "${SQI_TEST_PASS}" } },
    );
    const bus = (helper.getNode("bus") as unknown as { bus: { token: string; mqtt: { username: string; password: string } } }).bus;
    assert.deepEqual([bus.token, bus.mqtt.username, bus.mqtt.password], ["token-from-flow", "user-from-process", ""]);
    const bus2 = (helper.getNode("bus2") as unknown as { bus: { mqtt: { username: string; password: string } } }).bus;
    assert.deepEqual(
      [bus2.mqtt.username, bus2.mqtt.password],
      ["own-user", "pass-from-flow"],
      "a credential wins over its variable; ${NAME} in it is substituted from the flow's env",
    );
  });
});
