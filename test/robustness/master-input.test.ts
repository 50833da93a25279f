// The WebSocket master against hostile clients, in this process on 127.0.0.1: malformed and
// hostile upgrade requests (fuzzed from a seed), hostile frames and reports, a listener
// reporting under other names, floods of hellos and reports, more clients than allowed, and
// clients that never read. After each, the master still serves a well-behaved listener, every
// refusal is counted, and what it holds for clients stays under its bounds.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { realClock } from "../../lib/clock";
import { newRunId, type ListenerReport } from "../../lib/bus/frames";
import { BusServer } from "../../lib/bus/ws-server";
import { freePort, waitFor } from "../helpers/processes";
import { mulberry32, mutate } from "../helpers/fuzz";

const TOKEN = "s3cret";
const SEED = Number(process.env.SQI_FUZZ_SEED ?? 20261130);

interface Rig {
  server: BusServer;
  port: number;
  reports: Array<ListenerReport & { remote: string }>;
}

async function rig(extra: Partial<ConstructorParameters<typeof BusServer>[0]> = {}): Promise<Rig> {
  const port = await freePort();
  const reports: Rig["reports"] = [];
  const server = new BusServer({
    clock: realClock,
    host: "127.0.0.1",
    port,
    path: "/",
    token: TOKEN,
    maxPayload: 1024 * 1024,
    run: newRunId(),
    onReport: (r) => reports.push(r),
    ...extra,
  });
  await server.listen();
  return { server, port, reports };
}

/** Sends raw bytes, returns the first line of the answer ("" if the socket just closed). */
function raw(port: number, bytes: string | Buffer, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got.split("\r\n")[0] ?? "");
    };
    const timer = setTimeout(done, timeoutMs);
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) done();
    });
    s.on("error", done);
    s.on("close", done);
    s.write(bytes);
  });
}

const upgrade = (target: string, headers: Record<string, string> = {}): string =>
  [
    `GET ${target} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");

/** A well-behaved listener: connects with the token, says hello, gets its welcome. */
async function listener(port: number, name: string): Promise<{ ws: WebSocket; frames: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const frames: Array<Record<string, unknown>> = [];
  ws.on("message", (d) => frames.push(JSON.parse(d.toString())));
  ws.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "hello", name, protocol: 1 }));
  await waitFor(`${name}'s welcome`, () => frames.some((f) => f.type === "welcome"), 5000, 10);
  return { ws, frames };
}

async function stillServes(r: Rig, what: string): Promise<void> {
  const l = await listener(r.port, `check-${Math.random().toString(36).slice(2, 8)}`);
  r.server.send({ event: "proton_collision", payload: {}, seq: 1 });
  await waitFor(`${what}: the master still sends events`, () => l.frames.some((f) => f.event === "proton_collision"), 5000, 10);
  l.ws.terminate();
}

describe("the master's upgrade handler, before authentication", () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.server.close());

  it("`//` and other unparsable paths get 400 and are counted (`//` took the master down)", async () => {
    for (const target of ["//", "//x", "http://[", "/%", "/?token=%E0%A4%A", "/" + "a".repeat(9000), "*", "http://evil/", ""]) {
      const line = await raw(r.port, upgrade(target));
      assert.ok(/^HTTP\/1\.1 (400|401|404)/.test(line) || line === "", `${JSON.stringify(target.slice(0, 20))}: ${line}`);
    }
    assert.ok(r.server.counters.bad_requests >= 3, `bad requests counted: ${r.server.counters.bad_requests}`);
    await stillServes(r, "after malformed paths");
  });

  it(`fuzzed upgrade requests (seed ${SEED}, 400 cases): no crash, every answer an HTTP status or a close`, async () => {
    const rand = mulberry32(SEED);
    const valid = Buffer.from(upgrade("/?token=s3cret"));
    const answers = new Map<string, number>();
    // 50 at a time: a cut request waits for the rest of its headers until the 1 s timeout here.
    for (let i = 0; i < 400; i += 50) {
      const lines = await Promise.all(Array.from({ length: 50 }, () => raw(r.port, mutate(valid, rand), 1000)));
      for (const line of lines) {
        const key = line.slice(0, 12) || "(closed)";
        answers.set(key, (answers.get(key) ?? 0) + 1);
      }
    }
    assert.ok(
      [...answers.keys()].every((k) => k === "(closed)" || k.startsWith("HTTP/1.1 ")),
      JSON.stringify([...answers]),
    );
    await stillServes(r, "after fuzzed upgrades");
  });

  it("a socket reset while the master refuses it does not crash it", async () => {
    for (let i = 0; i < 50; i++) {
      const s = net.connect(r.port, "127.0.0.1");
      s.on("error", () => undefined);
      s.write(upgrade(i % 2 ? "//" : "/"));
      s.resetAndDestroy();
    }
    await stillServes(r, "after resets");
  });
});

describe("hostile frames and reports", () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.server.close());

  it("a report with an extra key holding a 20,000-deep array is rejected; a passed-on report has only known keys", async () => {
    const l = await listener(r.port, "pi-1");
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    l.ws.send(`{"type":"report","name":"pi-1","counters":{"received":1},"x":${deep}}`);
    l.ws.send(`{"type":"report","name":"pi-1","counters":{"received":2},"extra":"x"}`);
    l.ws.send(`{"type":"report","name":"pi-1","counters":{"received":3},"instance":"i1","run":"r1"}`);
    await waitFor("the good report", () => r.reports.length >= 1, 5000, 10);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(r.reports.length, 1);
    assert.deepEqual(Object.keys(r.reports[0]!).sort(), ["counters", "fired", "instance", "measured", "name", "remote", "run", "type"]);
    assert.ok(r.server.counters.rejected >= 2);
    l.ws.terminate();
  });

  it("honest reports too large for a group (12, at a listener's pace) are counted and said, and never close their listener; a grouped report keeps its groups; a flood of them is abuse", async () => {
    const l = await listener(r.port, "pi-big");
    const before = r.reports.length;
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    for (let i = 0; i < 12; i++) {
      l.ws.send(JSON.stringify({ type: "report", name: "pi-big", counters: {}, fired: many(41) }));
      await new Promise((res) => setTimeout(res, 250));
    }
    await waitFor("12 too-large reports counted", () => r.server.counters.reports_too_large >= 12, 5000, 10);
    await new Promise((res) => setTimeout(res, 1100)); // a new second for its rate
    l.ws.send(JSON.stringify({ type: "report", name: "pi-big", counters: { received: 1 }, fired: { pulses: 4 }, measured: { power_w: 2 } }));
    await waitFor("the good report", () => r.reports.length > before, 5000, 10);
    assert.equal(l.ws.readyState, WebSocket.OPEN, "still connected");
    assert.equal(r.server.counters.disconnected_for_abuse, 0);
    const last = r.reports[r.reports.length - 1]!;
    assert.deepEqual([last.counters, last.fired, last.measured], [{ received: 1 }, { pulses: 4 }, { power_w: 2 }]);
    assert.ok(
      r.server.lastErrors.some((e) => e.includes("a report from pi-big was too large: fired: 41 counters, over the 40")),
      r.server.lastErrors.join("\n"),
    );
    l.ws.terminate();
  });

  it("a listener reports only under the name it said hello with (one said fired_pulses 1e12 as another Pi)", async () => {
    const before = r.reports.length;
    const l = await listener(r.port, "pi-2");
    l.ws.send(JSON.stringify({ type: "report", name: "pi-1", counters: { fired_pulses: 1e12 } }));
    l.ws.send(JSON.stringify({ type: "hello", name: "pi-1", protocol: 1 }));
    l.ws.send(JSON.stringify({ type: "report", name: "pi-2", counters: { fired_pulses: 3 } }));
    await waitFor("pi-2's own report", () => r.reports.length > before, 5000, 10);
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(
      r.reports.slice(before).map((x) => [x.name, x.fired.pulses]),
      [["pi-2", 3]],
    );
    assert.ok(
      r.server.lastErrors.some((e) => e.includes('a report as "pi-1" from the listener "pi-2"')),
      r.server.lastErrors.join("\n"),
    );
    l.ws.terminate();
  });

  it("50,000 names from one connection: one is kept, the rest rejected, and the connection closed for abuse", async () => {
    const before = r.reports.length;
    const abuse = r.server.counters.disconnected_for_abuse;
    const ws = new WebSocket(`ws://127.0.0.1:${r.port}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    ws.on("error", () => undefined);
    await new Promise((res) => ws.once("open", res));
    const closed = new Promise((res) => ws.once("close", res));
    for (let i = 0; i < 50_000 && ws.readyState === ws.OPEN; i++) ws.send(JSON.stringify({ type: "report", name: `spoof-${i}`, counters: { received: i } }));
    await closed;
    assert.ok(r.reports.length - before <= 5, `reports passed on: ${r.reports.length - before}`);
    assert.equal(r.server.counters.disconnected_for_abuse, abuse + 1);
  });

  it(`fuzzed frames (seed ${SEED}, 2,000 cases) from one listener: each rejected and counted, or taken, never a crash`, async () => {
    const f = await rig({ maxRejected: Number.MAX_SAFE_INTEGER });
    try {
      const rand = mulberry32(SEED + 1);
      const samples = [
        JSON.stringify({ type: "hello", name: "fz", protocol: 1 }),
        JSON.stringify({ type: "ping", id: 1, t0: 5 }),
        JSON.stringify({ type: "report", name: "fz", counters: { received: 1, missing: 2 }, offset_ms: 0.5, rtt_ms: 1 }),
      ];
      const ws = new WebSocket(`ws://127.0.0.1:${f.port}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      ws.on("error", () => undefined);
      await new Promise((res) => ws.once("open", res));
      let pongs = 0;
      ws.on("message", (d) => (pongs += String(d).includes('"pong"') ? 1 : 0));
      for (let i = 0; i < 2000; i++) {
        ws.send(mutate(Buffer.from(samples[i % samples.length]!), rand).toString("latin1"));
        if (i % 100 === 99) await new Promise((res) => setTimeout(res, 60)); // within the rates of what is valid
      }
      await waitFor(
        "every fuzzed frame answered or counted",
        () => f.server.counters.rejected + f.reports.length + pongs + (f.server.clients[0]?.hello ? 1 : 0) >= 2000 - 50,
        10_000,
        20,
      );
      assert.ok(f.server.counters.rejected > 1000, `rejected ${f.server.counters.rejected} of 2,000`);
      ws.terminate();
      await stillServes(f, "after fuzzed frames");
    } finally {
      await f.server.close();
    }
  });
});

describe("the master's run on every frame", () => {
  it("frames a listener gets before its hello is read carry the run too (a restarted master's first frames were taken for the old run's duplicates)", async () => {
    const r = await rig();
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${r.port}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const frames: Array<Record<string, unknown>> = [];
      ws.on("message", (d) => frames.push(JSON.parse(d.toString())));
      await new Promise((res) => ws.once("open", res));
      await waitFor("the client", () => r.server.clients.length === 1, 5000, 10);
      r.server.send({ event: "a", payload: {}, seq: 1 });
      r.server.flush();
      await waitFor("the plain frame", () => frames.length === 1, 5000, 10);
      ws.send(JSON.stringify({ type: "hello", name: "pi-1", protocol: 1 }));
      await waitFor("the welcome", () => frames.length === 2, 5000, 10);
      r.server.send({ event: "b", payload: {}, seq: 2 });
      r.server.send({ event: "c", payload: {}, seq: 3 });
      r.server.flush();
      await waitFor("the batch", () => frames.length === 3, 5000, 10);
      const run = frames[1]!.run;
      assert.equal(typeof run, "string");
      assert.deepEqual(
        frames.map((f) => [f.type ?? f.event, f.run]),
        [
          ["a", run],
          ["welcome", run],
          ["batch", run],
        ],
      );
      ws.terminate();
    } finally {
      await r.server.close();
    }
  });
});

describe("connections whose other end is gone", () => {
  it("a client silent for a heartbeat (no frame, no pong: a Pi that lost power) is closed, counted", async () => {
    const r = await rig({ heartbeatMs: 200 });
    const s = net.connect(r.port, "127.0.0.1");
    try {
      s.on("error", () => undefined);
      s.write(upgrade("/?token=s3cret"));
      s.write(maskedFrame(JSON.stringify({ type: "hello", name: "gone", protocol: 1 })));
      s.pause(); // never reads again: never answers a ping
      await waitFor("the silent client closed", () => r.server.counters.silent_closed === 1 && r.server.clients.length === 0, 5000, 20);
      // A listener that pings keeps its connection.
      const l = await listener(r.port, "alive");
      const pinger = setInterval(() => l.ws.send(JSON.stringify({ type: "ping", id: 1, t0: Date.now() })), 50);
      await new Promise((res) => setTimeout(res, 700));
      clearInterval(pinger);
      assert.deepEqual(
        r.server.clients.map((c) => c.name),
        ["alive"],
      );
      assert.equal(r.server.counters.silent_closed, 1);
      l.ws.terminate();
    } finally {
      s.destroy();
      await r.server.close();
    }
  });

  it("a listener that says hello on a new connection replaces its older one (which may be half-open)", async () => {
    const r = await rig();
    try {
      const old = await listener(r.port, "pi-1");
      const closed = new Promise<number>((res) => old.ws.once("close", (code) => res(code)));
      const fresh = await listener(r.port, "pi-1");
      assert.equal(await closed, 4000);
      assert.equal(r.server.counters.replaced, 1);
      await waitFor("one connection of pi-1", () => r.server.clients.length === 1, 5000, 10);
      fresh.ws.terminate();
    } finally {
      await r.server.close();
    }
  });
});

describe("slow upgrades (headers a byte at a time)", () => {
  it("40 sockets sending an upgrade's headers slowly: 16 from one address wait, the rest are refused at once, and the 16 are cut at the timeout; each counted", async () => {
    const r = await rig({ upgradeTimeoutMs: 1500 });
    const sockets: net.Socket[] = [];
    const closed: number[] = [];
    const t0 = Date.now();
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write("a"); // one header that never ends
    }, 100);
    try {
      for (let i = 0; i < 40; i++) {
        const s = net.connect(r.port, "127.0.0.1");
        s.on("error", () => undefined);
        s.on("close", () => closed.push(Date.now() - t0));
        s.write("GET /?token=s3cret HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        sockets.push(s);
      }
      await waitFor("24 refused at once", () => r.server.counters.refused_pending === 24, 5000, 10);
      assert.equal(r.server.counters.slow_closed, 0);
      await waitFor("the 16 slow ones cut", () => closed.length === 40, 10_000, 20);
      assert.equal(r.server.counters.slow_closed, 16);
      assert.equal(r.server.counters.refused_pending, 24);
      const cutAt = closed
        .slice()
        .sort((a, b) => a - b)
        .slice(24);
      assert.ok(cutAt[0]! >= 1400, `cut after ${cutAt[0]} ms, not before the timeout`);
      // Once they are gone, a listener gets in at once and events flow.
      await stillServes(r, "after a slow-headers attack");
      assert.match(r.server.lastErrors.join("\n"), /no upgrade within 1.5 s/);
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
      await r.server.close();
    }
  });
});

describe("bounds on connections and on what waits for slow clients", () => {
  it("more clients than maxClients get 503, counted", async () => {
    const r = await rig({ maxClients: 3 });
    try {
      const ls = await Promise.all([1, 2, 3].map((i) => listener(r.port, `pi-${i}`)));
      assert.match(await raw(r.port, upgrade("/?token=s3cret")), /^HTTP\/1\.1 503/);
      assert.equal(r.server.counters.refused_full, 1);
      ls[0]!.ws.terminate();
      await waitFor("a place again", () => r.server.clients.length < 3, 5000, 10);
      await stillServes(r, "after one left");
      for (const l of ls) l.ws.terminate();
    } finally {
      await r.server.close();
    }
  });

  it("clients that never read, flooding hellos and pings, while events flow: what waits stays under the bounds", async () => {
    const maxBuffered = 256 * 1024;
    const maxTotalBuffered = 1024 * 1024;
    const r = await rig({ maxBuffered, maxTotalBuffered });
    const sockets: net.Socket[] = [];
    try {
      // 20 raw clients: upgrade and hello, then never read a byte; each pings 40 times a second (within its rate).
      const ping = maskedFrame(JSON.stringify({ type: "ping", id: 1, t0: 1 }));
      for (let i = 0; i < 20; i++) {
        const s = net.connect(r.port, "127.0.0.1");
        s.on("error", () => undefined);
        s.write(upgrade("/?token=s3cret"));
        s.write(maskedFrame(JSON.stringify({ type: "hello", name: `slow-${i}`, protocol: 1 })));
        s.pause();
        sockets.push(s);
      }
      await waitFor("20 clients", () => r.server.clients.filter((c) => c.hello).length >= 20, 10_000, 20);
      const pinger = setInterval(() => {
        for (const s of sockets) s.write(ping);
      }, 25);
      const payload = { blob: "x".repeat(4000) };
      let most = 0;
      const end = Date.now() + 4000;
      try {
        for (let seq = 1; Date.now() < end; seq++) {
          r.server.send({ event: "glow", payload, seq });
          r.server.flush();
          most = Math.max(most, r.server.buffered);
          await new Promise((res) => setImmediate(res));
        }
      } finally {
        clearInterval(pinger);
      }
      // One client may overshoot its bound by one frame, and the total by one frame per client.
      const slack = 20 * 8 * 1024;
      assert.ok(most <= maxTotalBuffered + slack, `at most ${most} bytes waited for the clients (bound ${maxTotalBuffered})`);
      assert.ok(r.server.counters.events_dropped > 0 && r.server.counters.frames_dropped > 0, JSON.stringify(r.server.counters));
      assert.equal(r.server.counters.disconnected_for_abuse, 0, "pinging within the rate is not abuse");
      await stillServes(r, "with 20 clients that do not read");
    } finally {
      for (const s of sockets) s.destroy();
      await r.server.close();
    }
  });
});

/** A client's text frame (clients must mask). */
function maskedFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const head = body.length < 126 ? Buffer.from([0x81, 0x80 | body.length]) : Buffer.from([0x81, 0x80 | 126, body.length >> 8, body.length & 255]);
  const masked = Buffer.from(body.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, masked]);
}
