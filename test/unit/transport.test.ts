import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { Arrivals, type Arrival } from "../../lib/bus/arrivals";
import {
  batchTexts,
  decodeDownstream,
  decodeUpstream,
  MAX_EVENTS_PER_FRAME,
  pace,
  pongText,
  serialise,
  type EventFrame,
  type Serialised,
  type UpstreamFrame,
} from "../../lib/bus/frames";
import { FrameRates, MAX_PER_SECOND } from "../../lib/bus/rates";
import { listenerReport, listenerStatus, masterStats, masterStatus } from "../../lib/bus/status";
import { Roster, ROSTER_FORGET_MS } from "../../lib/bus/roster";
import type { BusConfig, LinkState, LinkStatus, ListenerOptions, MasterCounters, MasterTransport } from "../../lib/bus/transport";
import { ListenerBase, MasterBase, masterCounters } from "../../lib/bus/transport-base";
import { T0 } from "../helpers/containers";

/** A master with no sockets: what it would broadcast, and what it answers. */
class FakeMaster extends MasterBase {
  readonly sent: Array<{ s: Serialised; at: number }> = [];
  protected readonly maxPayload = 4096;
  listenerCount = 3;
  protected broadcast(s: Serialised, sent: number): void {
    this.sent.push({ s, at: sent });
  }
  take(f: UpstreamFrame, t1: number, limits: FrameRates, reply: (t: string) => void, check?: () => string | undefined): string | undefined {
    return this.answer(f, t1, limits, "pi", reply, check);
  }
  batchesOf(s: Serialised, at: number) {
    return this.batches(s, at);
  }
  say(text: string): void {
    this.note(text);
  }
}

/** A listener with no socket: frames are given to it as a transport would. */
class FakeListener extends ListenerBase {
  readonly up: UpstreamFrame[] = [];
  status: LinkStatus = { state: "connected", detail: "" };
  constructor(o: ListenerOptions) {
    super(o, (f) => this.up.push(f));
  }
  start(): void {
    this.connected();
    this.upkeep.start();
  }
  stop(): void {
    this.upkeep.stop();
  }
  give(text: string | null, on: "socket" | "events" | "pong"): void {
    this.take(text, on);
  }
  readonly silences: number[] = [];
  protected silent(ms: number): boolean {
    this.silences.push(ms);
    this.status = { state: "disconnected", detail: "" };
    return true;
  }
}

const ev = (seq: number, extra: Partial<EventFrame> = {}): EventFrame => ({ event: "e", payload: {}, seq, ...extra });

describe("lib/bus/frames: batching", () => {
  it("cuts batches at the frame limit and at MAX_EVENTS_PER_FRAME, and carries every event once", () => {
    const events = Array.from({ length: 5000 }, (_, i) => ev(i + 1));
    const s = serialise(events, 64 * 1024);
    const frames = batchTexts(s, T0, 64 * 1024, "0123456789abcdef");
    assert.ok(frames.every((f) => Buffer.byteLength(f.text) <= 64 * 1024));
    assert.ok(frames.every((f) => f.events <= MAX_EVENTS_PER_FRAME));
    const seqs = frames.flatMap((f) => (JSON.parse(f.text) as { events: EventFrame[] }).events.map((e) => e.seq));
    assert.deepEqual(
      seqs,
      events.map((e) => e.seq),
    );
  });

  it("an event just under the frame limit goes alone as a plain frame (it used to loop for ever)", () => {
    const max = 1024;
    const big = ev(1, { payload: { p: "x".repeat(max - 64 - 40) } });
    const s = serialise([big, big, ev(2)], max);
    assert.equal(s.dropped, 0);
    const frames = batchTexts(s, T0 + 0.123456, max, "0123456789abcdef");
    assert.deepEqual(
      frames.map((f) => f.events),
      [1, 1, 1],
    );
    for (const f of frames) {
      assert.ok(Buffer.byteLength(f.text) <= max, `${Buffer.byteLength(f.text)} bytes`);
      const plain = JSON.parse(f.text) as EventFrame;
      assert.equal(plain.run, "0123456789abcdef");
      assert.equal(plain.sent, T0 + 0.123456);
    }
  });
});

describe("lib/bus/upkeep: what every master transport shares", () => {
  it("one turn's events go out as one broadcast, serialised once; one over the limit is dropped and counted", () => {
    const clock = new VirtualClock(T0);
    const m = new FakeMaster({ clock, run: "r1" });
    m.send(ev(1));
    m.send(ev(2, { payload: { p: "x".repeat(5000) } }));
    m.send(ev(3));
    assert.equal(m.sent.length, 0, "not before the turn ends");
    clock.advance(0);
    assert.equal(m.sent.length, 1);
    assert.deepEqual([m.counters.events, m.counters.events_dropped], [3, 1]);
    assert.match(m.lastErrors[0] ?? "", /dropped 1 event frame\(s\) over the 4096-byte frame limit/);
    const [b] = m.batchesOf(m.sent[0]!.s, m.sent[0]!.at);
    assert.deepEqual(
      (JSON.parse(b!.text) as { events: EventFrame[]; run: string }).events.map((e) => e.seq),
      [1, 3],
    );
  });

  it("answers a ping with t1 and t2, passes on only a report's known keys, refuses a flood and what the transport refuses", () => {
    const clock = new VirtualClock(T0);
    const reports: unknown[] = [];
    const m = new FakeMaster({ clock, onReport: (r) => reports.push(r) });
    const limits = new FrameRates();
    const replies: string[] = [];
    assert.equal(
      m.take({ type: "ping", id: 7, t0: 5 }, T0, limits, (t) => replies.push(t)),
      undefined,
    );
    assert.deepEqual(JSON.parse(replies[0]!), { type: "pong", id: 7, t0: 5, t1: T0, t2: T0, report_ms: 2000 });
    const report = { type: "report", name: "pi", counters: { a: 1 }, extra: "x" } as unknown as UpstreamFrame;
    m.take(report, T0, limits, () => undefined);
    assert.deepEqual(reports, [{ type: "report", name: "pi", counters: { a: 1 }, fired: {}, measured: {}, remote: "pi" }]);
    assert.equal(
      m.take(
        { type: "hello", name: "pi", protocol: 1 },
        T0,
        limits,
        () => undefined,
        () => "not you",
      ),
      "not you",
    );
    let refused: string | undefined;
    for (let i = 0; i < MAX_PER_SECOND.ping + 1; i++) refused = m.take({ type: "ping", id: i, t0: 1 }, T0, limits, () => undefined);
    assert.equal(refused, `more than ${MAX_PER_SECOND.ping} ping frames a second`);
    for (let i = 0; i < 30; i++) m.say(`e${i}`);
    assert.deepEqual([m.lastErrors.length, m.lastErrors[0], m.lastErrors[19]], [20, "e10", "e29"], "the last 20 errors");
  });
});

describe("lib/bus/upkeep: what every listener transport shares", () => {
  function listener() {
    const clock = new VirtualClock(T0);
    const got: Array<{ seqs: Array<number | undefined>; run: string | undefined }> = [];
    const l = new FakeListener({
      clock,
      name: "pi-1",
      instance: "i1",
      onEvents: (events, _at, run) => got.push({ seqs: events.map((e) => e.seq), run }),
      report: () => ({ counters: { x: 1 } }),
      reportEveryMs: 2000,
    });
    return { clock, l, got };
  }

  it("on its socket: events and batches go on, a pong feeds the clock sync, a welcome is taken quietly; junk is rejected", () => {
    const { clock, l, got } = listener();
    l.start();
    const ping = l.up[0]!;
    assert.equal(ping.type, "ping");
    clock.advance(2);
    l.give(JSON.stringify(ev(1, { run: "r" })), "socket");
    l.give(JSON.stringify({ type: "batch", sent: T0 - 5, run: "r", events: [ev(2), ev(3)] }), "socket");
    l.give(JSON.stringify({ type: "welcome", protocol: 1 }), "socket");
    if (ping.type === "ping") l.give(JSON.stringify({ type: "pong", id: ping.id, t0: ping.t0, t1: T0 + 1, t2: T0 + 1 }), "socket");
    l.give("{", "socket");
    l.give(null, "socket");
    assert.equal(l.lastErrors.length, 2);
    assert.match(l.lastErrors[0]!, /^a frame: /);
    assert.equal(l.lastErrors[1], "a frame: a binary frame");
    assert.deepEqual(got, [
      { seqs: [1], run: "r" },
      { seqs: [2, 3], run: "r" },
    ]);
    assert.deepEqual(l.counters, {
      connects: 1,
      reconnects: 0,
      rejected: 2,
      frames: 6,
      events: 3,
      pings: 1,
      reports: 0,
      unmatched_pongs: 0,
      silent_closes: 0,
      report_keys_dropped: 0,
    });
    assert.ok(l.sync.estimate(), "a pong and a batch's send time make an estimate");
    l.stop();
  });

  it("takes only a pong that answers its own ping, by id and t0 echoed, once; a forged one moves neither the clock nor the pace", () => {
    const { clock, l } = listener();
    l.start();
    const ping = l.up[0]!;
    assert.ok(ping.type === "ping");
    clock.advance(1);
    const forged = (id: number, t0: number) => JSON.stringify({ type: "pong", id, t0, t1: T0 + 1e12, t2: T0 + 1e12, report_ms: 60_000, ping_ms: 2000 });
    l.give(forged(ping.id + 5, ping.t0), "socket"); // an id never sent
    l.give(forged(ping.id, ping.t0 - 1), "socket"); // the right id, another t0
    assert.equal(l.sync.estimate(), undefined, "no forged pong reaches the clock sync");
    assert.equal(l.counters.unmatched_pongs, 2);
    l.give(pongText(ping, T0 + 0.5, T0 + 0.5), "socket");
    assert.equal(l.sync.estimate()?.offsetMs, 0);
    l.give(pongText(ping, T0 + 1e12, T0 + 1e12), "socket"); // a replay of the answered ping
    assert.equal(l.counters.unmatched_pongs, 3);
    assert.equal(l.sync.estimate()?.offsetMs, 0);
    // The pace a matched pong carries is bounded: 60 s between pings would silence the clock sync.
    const next = l.up.length;
    clock.advance(60);
    const p2 = l.up[next]!;
    assert.ok(p2.type === "ping");
    const rejected = l.counters.rejected;
    l.give(JSON.stringify({ type: "pong", id: p2.id, t0: p2.t0, t1: p2.t0, t2: p2.t0, report_ms: 500, ping_ms: 60_000 }), "socket");
    assert.equal(l.counters.rejected, rejected + 1, "ping_ms over 2 s is outside the protocol: rejected");
    const before = l.counters.pings;
    clock.advance(10_000);
    assert.ok(l.counters.pings - before >= 4, `pings at most 2 s apart: ${l.counters.pings - before} in 10 s`);
    l.stop();
  });

  it("a master that says nothing after its welcome is found silent, the link closed and counted; one that answers is not", () => {
    const { clock, l } = listener();
    l.start();
    l.give(JSON.stringify({ type: "welcome", protocol: 1 }), "socket");
    clock.advance(2000);
    assert.deepEqual(l.silences, [], "2 s is not yet silence");
    clock.advance(10_000);
    assert.equal(l.silences.length, 1, "no pong for 3 pings and 3 s: silent");
    assert.ok(l.silences[0]! >= 3000 && l.silences[0]! <= 10_000, `found within 3 to 10 s: ${l.silences[0]}`);
    assert.equal(l.counters.silent_closes, 1);
    const sent = l.up.length;
    clock.advance(10_000);
    assert.equal(l.up.length, sent, "nothing more is sent on a link found dead");

    // An answering master: every ping gets its pong, for a minute; never silent.
    const b = listener();
    b.l.start();
    let answered = 0;
    for (let i = 0; i < 600; i++) {
      b.clock.advance(100);
      for (const f of b.l.up.splice(0)) if (f.type === "ping") (b.l.give(pongText(f, f.t0 + 1, f.t0 + 1), "socket"), answered++);
    }
    assert.deepEqual(b.l.silences, []);
    assert.ok(answered > 30);
    b.l.stop();
    // Events alone are a sign of life: 10 s of events, no pongs, not silent (at most 10 s without anything is).
    const c = listener();
    c.l.start();
    for (let i = 0; i < 90; i++) {
      c.clock.advance(100);
      c.l.give(JSON.stringify(ev(i + 1)), "socket");
    }
    assert.deepEqual(c.l.silences, []);
    c.clock.advance(11_000);
    assert.equal(c.l.silences.length, 1);
  });

  it("on MQTT topics: a pong on the events topic, an event or welcome on the pong topic are rejected", () => {
    const { l, got } = listener();
    l.give(JSON.stringify({ type: "pong", id: 1, t0: 1, t1: 2, t2: 2 }), "events");
    l.give(JSON.stringify({ type: "welcome", protocol: 1 }), "events");
    l.give(JSON.stringify(ev(1)), "pong");
    l.give(JSON.stringify({ type: "batch", events: [ev(2)] }), "pong");
    assert.equal(got.length, 0);
    assert.equal(l.counters.rejected, 4);
    // Each with its reason kept, as the master keeps its refusals (the stats' `recent`, the minute's notice).
    assert.deepEqual(l.lastErrors, ["a pong frame on events", "a welcome frame on events", "an event on the pong topic", "a batch frame on pong"]);
  });

  it("once connected: hello is the transport's, then pings at once and a report every 2 s, with its life and run", () => {
    const { clock, l } = listener();
    l.start();
    assert.deepEqual(l.up[0], { type: "ping", id: 1, t0: T0 });
    clock.advance(2000);
    const report = l.up.find((f) => f.type === "report");
    assert.deepEqual(report, { type: "report", name: "pi-1", counters: { x: 1 }, instance: "i1" });
    l.stop();
    const n = l.up.length;
    clock.advance(10_000);
    assert.equal(l.up.length, n, "nothing after stop");
    l.start();
    assert.deepEqual([l.counters.connects, l.counters.reconnects], [2, 1]);
  });

  it("keeps to the master's pace from its pongs: reports every report_ms, pings no more often than ping_ms; counts what it sent", () => {
    const { clock, l } = listener();
    l.start();
    let answered = 0;
    const pong = (): void => {
      const last = [...l.up].reverse().find((f) => f.type === "ping");
      if (last?.type === "ping" && last.id > answered) l.give(pongText(last, last.t0 + 1, last.t0 + 1, pace(1000)), "socket");
      if (last?.type === "ping") answered = last.id;
    };
    pong();
    const from = l.up.length;
    for (let i = 0; i < 300; i++) {
      clock.advance(100);
      pong();
    }
    const sent = l.up.slice(from);
    const pings = sent.flatMap((f) => (f.type === "ping" ? [f.t0] : []));
    const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
    assert.ok(
      gaps.every((g) => g >= 1000 && g <= 2000),
      `1,000 listeners: a ping every 1 to 2 s each (it backs off to 2 s), not every 100 ms: ${gaps.join(", ")}`,
    );
    assert.equal(sent.filter((f) => f.type === "report").length, 3, "and a report every 10 s, not every 2 s");
    assert.deepEqual([l.counters.pings, l.counters.reports], [pings.length + 1, 3]);
  });
});

describe("lib/bus/frames: the master's pace and its cheap pings", () => {
  it("paces reports to 100/s and pings to 1,000/s over all listeners; a pong says so only past 50 listeners", () => {
    assert.deepEqual(
      [pace(3), pace(50), pace(200), pace(1000), pace(5000)],
      [{ reportMs: 2000 }, { reportMs: 2000 }, { reportMs: 2000, pingMs: 200 }, { reportMs: 10_000, pingMs: 1000 }, { reportMs: 50_000, pingMs: 2000 }],
    );
    assert.deepEqual(JSON.parse(pongText({ id: 3, t0: 1.5 }, 2.25, 3, pace(1000))), {
      type: "pong",
      id: 3,
      t0: 1.5,
      t1: 2.25,
      t2: 3,
      report_ms: 10_000,
      ping_ms: 1000,
    });
    const check = decodeDownstream(pongText({ id: 3, t0: 1.5 }, 2.25, 3, pace(1000)));
    assert.ok(check.ok, "the schema takes the pace");
  });

  it("reads a ping as a listener writes it without the schema, to the same frame; anything else goes the full way and is checked", () => {
    for (const t0 of [0, 1764547900123.4567, 1e15 + 0.5, 12.000001]) {
      const text = JSON.stringify({ type: "ping", id: 42, t0 });
      assert.deepEqual(decodeUpstream(text), { ok: true, frame: { type: "ping", id: 42, t0 } });
    }
    // the same ping written otherwise still goes through the schema, and passes
    assert.deepEqual(decodeUpstream('{ "t0": 5, "type": "ping", "id": 1 }'), { ok: true, frame: { type: "ping", id: 1, t0: 5 } });
    // what the fast path does not take is checked as before
    assert.equal(decodeUpstream('{"type":"ping","id":1.5,"t0":5}').ok, false);
    assert.equal(decodeUpstream('{"type":"ping","id":1,"t0":"5"}').ok, false);
    assert.equal(decodeUpstream('{"type":"ping","id":1,"t0":5,"x":1}').ok, false);
    assert.equal(decodeUpstream('{"type":"ping","id":1,"t0":5}junk').ok, false);
    assert.equal(decodeUpstream(`{"type":"ping","id":1,"t0":5${" ".repeat(100)}}`).ok, true, "long, with spaces: parsed and checked");
  });
});

describe("lib/bus/arrivals: the listener's arrival policy", () => {
  function rig(late: "fire" | "drop" = "fire", offset: number | null = 0) {
    const clock = new VirtualClock(T0);
    const out: Arrival[] = [];
    const a = new Arrivals(clock, { late, toLocal: (at) => (offset === null ? undefined : at - offset), emit: (m) => out.push(m) });
    a.linked("connected");
    return { clock, a, out };
  }

  it("hands each event on once, in order, with msg.sqi.at on this clock and the master's time kept", () => {
    const r = rig("fire", 1000);
    r.a.push([ev(5, { at: T0 + 1100, container: "c", tick: 3 }), ev(6, { at: T0 + 1200 }), ev(5, { at: T0 + 1100 })], T0, "run1");
    assert.deepEqual(
      r.out.map((m) => [m.topic, m.sqi.seq, m.sqi.at, m.sqi.master_at]),
      [
        ["e", 5, T0 + 100, T0 + 1100],
        ["e", 6, T0 + 200, T0 + 1200],
      ],
    );
    assert.equal(r.out[0]!.sqi.container, "c");
    assert.equal(r.a.counters().duplicates, 1);
    assert.equal(r.a.run, "run1");
  });

  it("without a clock offset an event with a time is not fired: unsynced", () => {
    const r = rig("fire", null);
    r.a.push([ev(1, { at: T0 + 50 }), ev(2)], T0, undefined);
    assert.deepEqual(
      r.out.map((m) => m.sqi.seq),
      [2],
      "an event without a time goes on",
    );
    assert.equal(r.a.counts.unsynced, 1);
  });

  it("late: fired at its arrival under 'fire', dropped under 'drop'; due before the link came up: missed, never fired", () => {
    const fire = rig("fire");
    fire.clock.advance(100);
    fire.a.push([ev(1, { at: T0 + 150 }), ev(2, { at: T0 + 60 })], T0 + 100, undefined);
    assert.deepEqual(
      fire.out.map((m) => m.sqi.at),
      [T0 + 150, T0 + 100],
    );
    assert.equal(fire.a.counts.late, 1);
    const drop = rig("drop");
    drop.clock.advance(100);
    drop.a.push([ev(1, { at: T0 + 60 })], T0 + 100, undefined);
    assert.equal(drop.out.length, 0);
    assert.deepEqual([drop.a.counts.late, drop.a.counts.late_dropped], [1, 1]);
    const back = rig("fire");
    back.a.linked("disconnected");
    back.clock.advance(1000);
    back.a.linked("connected");
    back.a.push([ev(1, { at: T0 + 500 })], T0 + 1000, undefined);
    assert.equal(back.out.length, 0);
    assert.equal(back.a.counts.missed, 1);
    assert.deepEqual(back.a.losses(), ["missed 1"]);
  });

  it("a big frame goes on in slices, a turn each, and clear() drops what still waits", () => {
    const r = rig();
    r.a.push(
      Array.from({ length: 100 }, (_, i) => ev(i + 1)),
      T0,
      undefined,
    );
    assert.equal(r.out.length, 25, "one slice now, the rest on later turns");
    r.clock.advance(0);
    assert.equal(r.out.length, 100);
    r.a.push(
      Array.from({ length: 100 }, (_, i) => ev(i + 101)),
      T0,
      undefined,
    );
    r.a.clear();
    r.clock.advance(10);
    assert.equal(r.out.length, 125, "the first slice went at once; the rest was dropped by clear()");
  });
});

describe("lib/bus/status: what a bus node shows", () => {
  const bus = (over: Partial<BusConfig> = {}): BusConfig => ({
    transport: "ws",
    host: "0.0.0.0",
    port: 8765,
    path: "/",
    url: "",
    token: "t",
    maxFrame: 1 << 20,
    mqtt: { url: "mqtt://u:p@broker:1883", clientId: "", username: "", password: "", qos: 0, prefix: "sqi/bus", keepaliveS: 15 },
    errors: [],
    ...over,
  });
  const master = (state: LinkState, detail = "", counters: Partial<MasterCounters> = {}): MasterTransport => ({
    counters: { ...masterCounters(), ...counters },
    lastErrors: ["e1"],
    status: { state, detail },
    where: ":8765",
    clients: [{ name: "pi-1", remote: "127.0.0.1:5000", hello: true }],
    describe: () => ({ port: 8765, buffered_bytes: 0 }),
    listen: () => Promise.resolve(),
    send: () => undefined,
    close: () => Promise.resolve(),
  });

  it("a master: where it listens, its listeners, what it lost and its rate; yellow without a token; red when it cannot listen", () => {
    assert.deepEqual(
      masterStatus(master("connected"), bus(), "", () => 12.4),
      { fill: "green", shape: "dot", text: ":8765 · 1 listener · 12 ev/s" },
    );
    // 40 characters at most: what does not fit is counted (+3).
    const lossy = masterStatus(master("connected", "", { events_dropped: 3, unauthorized: 1, bad_requests: 1 }), bus({ token: "" }), "", () => 0);
    assert.deepEqual(lossy, { fill: "yellow", shape: "dot", text: ":8765 · 1 listener · no token · +3" });
    assert.deepEqual(
      masterStatus(master("connected"), bus(), "port 8765 is in use", () => 0),
      { fill: "red", shape: "ring", text: "port 8765 is in use" },
    );
    const broker = masterStatus(master("disconnected", "connection refused: is the broker running?"), bus({ transport: "mqtt" }), "", () => 0);
    assert.deepEqual(broker, { fill: "red", shape: "ring", text: "disconnected: connection refused: is th…" });
    assert.deepEqual(masterStats(master("connected"), bus()), {
      role: "broadcast",
      transport: "ws",
      port: 8765,
      buffered_bytes: 0,
      listeners: [{ name: "pi-1", remote: "127.0.0.1:5000", hello: true }],
      listeners_total: 1,
      counters: masterCounters(),
      recent: ["e1"],
    });
  });

  it("a master at scale: its listeners' reports summed in the status (synced, late, lost) and the stats (a summary and the worst 20)", () => {
    const roster = new Roster();
    for (let i = 1; i <= 1000; i++)
      roster.take(
        {
          name: `pi-${i}`,
          counters: { missing: i === 7 ? 5 : 0, late: i === 9 ? 2 : 0, lost_while_away: i === 8 ? 1 : 0 },
          ...(i > 2 ? { offset_ms: 0.2 } : {}),
        },
        T0,
      );
    const many = { ...master("connected"), clients: Array.from({ length: 1000 }, (_, i) => ({ name: `pi-${i + 1}`, remote: "10.0.0.1:1", hello: true })) };
    assert.deepEqual(
      masterStatus(many, bus(), "", () => 1000, roster.summary(1000, T0)),
      {
        fill: "yellow",
        shape: "dot",
        text: ":8765 · 1000 listeners · lost 6 · +3",
      },
    );
    const few = { ...master("connected"), clients: many.clients.slice(0, 3), where: "m" };
    const r3 = new Roster();
    r3.take({ name: "pi-1", counters: { late_dropped: 1 }, offset_ms: 0.1 }, T0);
    r3.take({ name: "pi-2", counters: {} }, T0);
    assert.deepEqual(masterStatus(few, bus(), "", () => 5, r3.summary(3, T0)).text, "m · 3 listeners · lost 1 · 1 synced · +1");
    const st = masterStats(many, bus(), { summary: roster.summary(0, T0), worst: roster.worst(T0) });
    assert.equal((st.listeners as unknown[]).length, 20);
    assert.equal(st.listeners_total, 1000);
    assert.deepEqual(st.summary, { joined: 1000, synced: 998, late: 2, lost: 6, troubled: 3 });
    assert.deepEqual(
      (st.worst as Array<{ name: string }>).slice(0, 3).map((l) => l.name),
      ["pi-7", "pi-8", "pi-9"],
    );
    assert.equal((st.worst as unknown[]).length, 20);
    assert.equal(roster.summary(1000, T0 + ROSTER_FORGET_MS + 1).synced, 0, "a listener silent for a minute is no longer counted");
  });

  it("a listener: its link while not connected, else its clock offset first, its losses and its rate", () => {
    const clock = new VirtualClock(T0);
    const l = new FakeListener({ clock, name: "pi-1", onEvents: () => undefined });
    const arrivals = new Arrivals(clock, { late: "fire", toLocal: () => undefined, emit: () => undefined });
    l.status = { state: "connecting", detail: "ws://master:8765/" };
    assert.deepEqual(
      listenerStatus(l, arrivals, () => 0),
      { fill: "yellow", shape: "ring", text: "connecting to master:8765" },
    );
    l.status = { state: "connecting", detail: "master silent 10 s · reconnecting" };
    assert.equal(listenerStatus(l, arrivals, () => 0).text, "master silent 10 s · reconnecting", "why it reconnects, not where");
    l.status = { state: "connected", detail: "" };
    assert.equal(listenerStatus(l, arrivals, () => 0).text, "connected · measuring · 0 ev/s");
    l.start();
    clock.advance(4);
    l.give(JSON.stringify({ type: "pong", id: 1, t0: T0, t1: T0 + 3, t2: T0 + 3 }), "socket");
    l.stop();
    arrivals.push([ev(1)], T0, undefined);
    const s = listenerStatus(l, arrivals, () => 250);
    assert.equal(s.fill, "green");
    assert.match(s.text, /^offset [+-]\d+\.\d\d ± \d+\.\d\d ms · 250 ev\/s$/);
    const report = listenerReport(l, arrivals, { pulses: 2 });
    assert.deepEqual(
      [report.counters.received, report.counters.first_seq, report.counters.last_seq, report.fired?.pulses, report.counters.rejected],
      [1, 1, 1, 2, 0],
    );
  });
});
