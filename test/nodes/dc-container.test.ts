import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { container, starCore, T0 } from "../helpers/containers";
import { helper, lastStatus, record, settle, type Recorder } from "../helpers/red";
import { clip } from "../../lib/status-line";

const dcContainer = require("../../nodes/dc-container");

let clock: VirtualClock;
let userDir: string;

function dcNode(props: Record<string, unknown>) {
  return [
    { id: "flow", type: "tab" },
    {
      id: "dc",
      type: "dc-container",
      z: "flow",
      name: "",
      source: "inline",
      json: JSON.stringify(
        container(
          [
            { tick: 1, event: "a" },
            { tick: 2, event: "b" },
          ],
          { loop: true },
        ),
      ),
      autostart: true,
      startDelay: 0,
      lead: 50,
      accel: 10,
      wires: [["out"]],
      ...props,
    },
    { id: "out", type: "helper", z: "flow" },
  ];
}

async function deploy(props: Record<string, unknown> = {}, extra: Array<Record<string, unknown>> = []): Promise<Recorder> {
  await helper.load(dcContainer, [...dcNode(props), ...extra]);
  const r = record("dc", "out");
  await settle();
  return r;
}

async function advance(ms: number): Promise<void> {
  clock.advance(ms);
  await settle();
}

async function send(msg: Record<string, unknown>): Promise<void> {
  helper.getNode("dc").receive(msg);
  await settle();
}

const events = (r: Recorder) => r.messages.map((m) => m.topic);

describe("dc-container node", () => {
  before(() => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), "dc-node-"));
  });
  after(() => fs.rmSync(userDir, { recursive: true, force: true }));
  beforeEach(() => {
    clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock, userDir });
  });
  afterEach(async () => {
    await helper.unload();
  });

  describe("playing", () => {
    it("sends one message per glyph: topic = event, payload = a copy, sqi = {container, tick, loop, seq, at}", async () => {
      const r = await deploy({ json: JSON.stringify(starCore) });
      await advance(0);
      await advance(100);
      assert.deepEqual(events(r), ["proton_collision", "atom_spin_flip", "waveform_emit"]);
      const m = r.messages[0]!;
      assert.deepEqual(m.payload, { energy_mev: 14.1, particles: 2, angle: "head-on" });
      assert.deepEqual(m.sqi, { container: "synthetic_star_core", tick: 1, loop: 0, seq: 1, at: T0 + 50 });
      assert.deepEqual(
        r.messages.map((x) => (x.sqi as { at: number }).at - T0),
        [50, 100, 150],
        "at = due time, 50 ms per tick at 10x",
      );
    });

    it("shows container, tick, loop and rate in its status while playing", async () => {
      const r = await deploy({ json: JSON.stringify(starCore) });
      await advance(1000);
      assert.match(lastStatus(r), /^▶ tick \d · loop \d+ · 20 ev\/s · x10$/);
      assert.equal(r.statuses[r.statuses.length - 1]!.fill, "green");
    });

    it("waits the start delay before playing on deploy, and does not play without autostart", async () => {
      let r = await deploy({ startDelay: 0.5 });
      await advance(499);
      assert.equal(r.messages.length, 0);
      await advance(1);
      assert.deepEqual(events(r), ["a"]);
      await helper.unload();
      r = await deploy({ autostart: false });
      await advance(1000);
      assert.equal(r.messages.length, 0);
      assert.match(lastStatus(r), /^stopped · test/);
    });

    it("reads a file relative to the user dir, and finds a bundled container by name", async () => {
      fs.writeFileSync(path.join(userDir, "mine.dc"), JSON.stringify({ ...container([{ tick: 1, event: "from_file" }]), container_id: "mine" }));
      let r = await deploy({ source: "file", file: "mine.dc" });
      await advance(0);
      assert.deepEqual(events(r), ["from_file"]);
      await helper.unload();
      r = await deploy({ source: "file", file: "synthetic_star_core" });
      await advance(0);
      assert.deepEqual(events(r), ["proton_collision"]);
      assert.equal((r.messages[0]!.sqi as { container: string }).container, "synthetic_star_core");
    });
  });

  describe("control messages", () => {
    it("stop, start, pause, resume, step and toggle do what the help says", async () => {
      const r = await deploy();
      await advance(0);
      assert.deepEqual(events(r), ["a"]);
      await send({ payload: "stop" });
      await advance(1000);
      assert.deepEqual(events(r), ["a"], "nothing while stopped");
      assert.equal(clock.pending(), 0, "stop leaves no timer");
      await send({ payload: "start" });
      assert.deepEqual(events(r), ["a", "a"], "start begins at tick 1");
      await send({ payload: "pause" });
      await advance(1000);
      assert.equal(r.messages.length, 2);
      assert.match(lastStatus(r), /^❚❚ tick 1 · loop 0/);
      await send({ payload: "step" });
      assert.deepEqual(events(r), ["a", "a", "b"], "step sends the next tick at once");
      await send({ payload: "resume" });
      await advance(100);
      assert.deepEqual(events(r), ["a", "a", "b", "a"]);
      await send({ payload: "toggle" });
      await advance(500);
      assert.equal(r.messages.length, 4, "toggle stopped it");
      await send({ payload: true });
      assert.equal(r.messages.length, 5, "true starts");
      await send({ payload: false });
      await advance(500);
      assert.equal(r.messages.length, 5, "false stops");
    });

    it("speed changes the pace; null returns to the container's runtime_speed", async () => {
      const r = await deploy();
      await advance(0);
      await send({ payload: "speed", speed: 4 });
      await advance(100);
      const gaps = r.messages.slice(1).map((m, i) => (m.sqi as { at: number }).at - (r.messages[i]!.sqi as { at: number }).at);
      assert.ok(
        gaps.every((g) => g === 25),
        `25 ms per tick at 4x, got ${gaps}`,
      );
      assert.match(lastStatus(r), / x4$/);
      await send({ payload: "speed", speed: null });
      assert.doesNotMatch(lastStatus(r), / x4$/);
    });

    it("load takes a container object or a path and plays it in place of the old one", async () => {
      const r = await deploy();
      await advance(0);
      await send({ payload: "load", container: { ...container([{ tick: 1, event: "loaded" }], { loop: true }), container_id: "obj" } });
      assert.deepEqual(events(r), ["a", "loaded"]);
      fs.writeFileSync(path.join(userDir, "next.dc"), JSON.stringify({ ...container([{ tick: 1, event: "by_path" }]), container_id: "next" }));
      await send({ payload: "load", container: "next.dc" });
      assert.deepEqual(events(r), ["a", "loaded", "by_path"]);
      await send({ payload: { ...container([{ tick: 1, event: "as_payload" }]), container_id: "p" } });
      assert.deepEqual(events(r), ["a", "loaded", "by_path", "as_payload"]);
      assert.deepEqual(r.errors, []);
    });

    it("reload reads the file again", async () => {
      const file = path.join(userDir, "reload.dc");
      fs.writeFileSync(file, JSON.stringify(container([{ tick: 1, event: "v1" }], { loop: true })));
      const r = await deploy({ source: "file", file: "reload.dc" });
      await advance(0);
      fs.writeFileSync(file, JSON.stringify(container([{ tick: 1, event: "v2" }], { loop: true })));
      await send({ payload: "reload" });
      assert.deepEqual(events(r), ["v1", "v2"]);
    });

    it("the editor button's endpoint toggles a deployed node and refuses unknown ids and actions", async () => {
      const r = await deploy({ autostart: false });
      let res = await helper.request().post("/dc-container/dc/toggle");
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { state: "playing" });
      await advance(0);
      assert.deepEqual(events(r), ["a"]);
      res = await helper.request().post("/dc-container/dc/stop");
      assert.deepEqual(res.body, { state: "stopped" });
      res = await helper.request().post("/dc-container/nope/toggle");
      assert.equal(res.status, 404);
      res = await helper.request().post("/dc-container/dc/explode");
      assert.equal(res.status, 400);
      res = await helper.request().get("/dc-container/containers");
      assert.ok((res.body as string[]).includes("synthetic_star_core.dc"));
    });

    it("the panel's timeline: the container its fields name, as the node loads and plays it, or its problems with line:col", async () => {
      await deploy({ autostart: false });
      fs.writeFileSync(
        path.join(userDir, "glance.dc"),
        JSON.stringify(
          container(
            [
              { tick: 1, event: "a" },
              { tick: 3, event: "b" },
              { tick: 3, event: "a" },
            ],
            { loop: true },
          ),
        ),
      );
      let res = await helper
        .request()
        .post("/dc-container/preview")
        .send({ config: { source: "file", file: "glance.dc", accel: "", clones: "4" } });
      assert.equal(res.status, 200);
      const g = res.body as { ok: true; lanes: unknown; maxTick: number; lengthMs: number; clones: number; ratePerSecond: number; tickMs: number };
      assert.deepEqual(g.lanes, [
        { event: "a", count: 2, ticks: [1, 3] },
        { event: "b", count: 1, ticks: [3] },
      ]);
      // Read from the user dir, as the node reads it; 4 clones of 3 events per 3 ticks of the container's interval.
      assert.equal(g.maxTick, 3);
      assert.equal(g.lengthMs, 3 * g.tickMs);
      assert.equal(g.clones, 4);
      assert.equal(g.ratePerSecond, (4 * 3 * 1000) / g.lengthMs);
      res = await helper
        .request()
        .post("/dc-container/preview")
        .send({ config: { source: "inline", json: '{\n  "container_id": "x",\n  "glyphs": [{ "tick": 0, "event": "a" }]\n}' } });
      assert.deepEqual(res.body, { ok: false, label: "inline JSON", problems: ["inline JSON:3:24: must be a positive integer (glyphs[0].tick)"] });
      res = await helper.request().post("/dc-container/preview").send({ config: "x" });
      assert.equal(res.status, 400);
    });
  });

  describe("bad input", () => {
    it("a bad container in the config: a red status and an error naming the path and rule; nothing plays", async () => {
      const bad = JSON.stringify({
        container_id: "x",
        glyphs: [
          { tick: 1, event: "a" },
          { tick: 1, event: "b" },
          { tick: 0, event: "c" },
        ],
      });
      const r = await deploy({ json: bad });
      await advance(1000);
      assert.equal(r.messages.length, 0);
      assert.deepEqual(r.errors, ["inline JSON: glyphs[2].tick: must be a positive integer"]);
      assert.equal(lastStatus(r), clip("inline JSON: glyphs[2].tick: must be a positive integer"), "the error, cut to fit under the node");
      assert.equal(r.statuses[r.statuses.length - 1]!.fill, "red");
    });

    it("a missing file says where it looked", async () => {
      const r = await deploy({ source: "file", file: "absent.dc" });
      assert.equal(r.errors.length, 1);
      assert.ok(r.errors[0]!.startsWith(`absent.dc: file not found (looked for ${path.join(userDir, "absent.dc")}`), r.errors[0]);
    });

    it("a bad reload or load leaves the good container playing, and tells catch nodes", async () => {
      const file = path.join(userDir, "good.dc");
      fs.writeFileSync(file, JSON.stringify(container([{ tick: 1, event: "good" }], { loop: true })));
      const caught: Array<Record<string, unknown>> = [];
      const r = await deploy({ source: "file", file: "good.dc" }, [
        { id: "catcher", type: "catch", z: "flow", scope: ["dc"], uncaught: false, wires: [["caught"]] },
        { id: "caught", type: "helper", z: "flow" },
      ]);
      helper.getNode("caught").on("input", (m: Record<string, unknown>) => caught.push(m));
      await advance(0);
      fs.writeFileSync(file, '{"container_id": "good", "glyphs": [{"tick": 1, "event": "good"}');
      await send({ payload: "reload", _marker: 1 });
      await send({ payload: "load", container: { container_id: "", glyphs: [] } });
      await send({ payload: "load", container: "absent.dc" });
      await advance(300);
      assert.deepEqual(events(r), ["good", "good", "good", "good"], "still playing the good one");
      assert.equal(r.errors[0], "good.dc: line 1, column 65: not valid JSON: expected ',' or ']' after an array element");
      assert.deepEqual(r.errors[1]!.split("\n"), [
        "msg.container: container_id: must be a non-empty string",
        "msg.container: glyphs: must be a non-empty array of glyphs",
      ]);
      assert.match(r.errors[2]!, /^absent\.dc: file not found/);
      assert.match(lastStatus(r), /^▶ tick .* · ⚠ see debug/);
      await settle(10);
      assert.equal(caught.length, 3, "catch nodes see every error");
      // The message failed with done(err): Node-RED gives the catch node the Error as its text says it.
      assert.equal((caught[0]!.error as { message: string }).message, `Error: ${r.errors[0]}`);
      assert.equal(caught[0]!._marker, 1, "with the message that caused it");
    });

    it("an unknown command is an error that says which commands exist", async () => {
      const r = await deploy();
      await send({ payload: 1700000000000 });
      await send({ payload: "speed", speed: "fast" });
      assert.match(r.errors[0]!, /^dc-container: unknown command 1700000000000: use msg.payload "start", "stop"/);
      assert.equal(r.errors[1], 'dc-container: speed needs msg.speed: a positive number up to 1000000 (or null for the container\'s own speed), got "fast"');
    });

    it("a bad number in the config is shown and nothing plays", async () => {
      const r = await deploy({ lead: "abc" });
      await advance(1000);
      assert.equal(r.messages.length, 0);
      assert.deepEqual(r.errors, ['Lead time must be a number from 0 to 60000 ms, got "abc"']);
      assert.equal(lastStatus(r), clip('Lead time must be a number from 0 to 60000 ms, got "abc"'));
      assert.equal(clock.pending(), 0);
    });
  });

  describe("clones", () => {
    const oneHz = JSON.stringify(container([{ tick: 1, event: "proton_collision", payload: { n: 1 } }], { loop: true, tick_interval_ms: 1000 }));

    it("1,000 clones of a 1 Hz container evenly spread: counted messages summing to 1,000 events a second, and a status that says so", async () => {
      const r = await deploy({ json: oneHz, clones: 1000, spread: "even", spreadOver: "tick", emission: "auto", aggregateAbove: 100, frameMs: 20 });
      await advance(10_000);
      const sum = r.messages.reduce((n, m) => n + ((m.sqi as { count: number }).count ?? 0), 0);
      assert.ok(sum >= 9900 && sum <= 10_050, `${sum} events in 10 s`);
      const first = r.messages[0]!;
      assert.equal(first.topic, "proton_collision");
      assert.deepEqual(first.payload, { n: 1 });
      const sqi = first.sqi as Record<string, number>;
      assert.equal(sqi.count, 20, "20 ms of a 1 kHz stream");
      assert.equal(sqi.window_ms, 20);
      assert.equal(sqi.rate_hz, 1000);
      assert.equal(sqi.clones, 1000);
      assert.ok(r.messages.length <= 10_000 / 20 + 1, `one message per frame: ${r.messages.length}`);
      assert.match(lastStatus(r), /^▶ tick 1 · loop \d+ · 1\.0k ev\/s · ×1,000$/);
    });

    it("up to the threshold every clone event is a message of its own, tagged with its clone", async () => {
      const r = await deploy({ json: oneHz, clones: 4, spread: "even", aggregateAbove: 100 });
      await advance(999); // (the next loop's first frame goes out at 1000)
      assert.deepEqual(
        r.messages.map((m) => [(m.sqi as { clone: number }).clone, (m.sqi as { at: number }).at - T0]),
        [
          [0, 50],
          [1, 300],
          [2, 550],
          [3, 800],
        ],
      );
      assert.match(lastStatus(r), / · 4\.0 ev\/s · ×4$/);
    });

    for (const [field, value, text] of [
      ["clones", 0, "Clones must be a whole number from 1 to 1000000, got 0"],
      ["clones", -3, "Clones must be a whole number from 1 to 1000000, got -3"],
      ["clones", "1.5", 'Clones must be a whole number from 1 to 1000000, got "1.5"'],
      ["clones", 10_000_000, "Clones must be a whole number from 1 to 1000000, got 10000000"],
      ["seed", "soup", 'Seed must be a whole number from 0 to 4294967295, got "soup"'],
      ["frameMs", 0, "Frame window must be a number from 1 to 10000 ms, got 0"],
    ] as const) {
      it(`${field} ${JSON.stringify(value)}: refused with a clear message, nothing plays`, async () => {
        const r = await deploy({ json: oneHz, spread: "random", [field]: value });
        await advance(2000);
        assert.equal(r.messages.length, 0);
        assert.deepEqual(r.errors, [text]);
        assert.equal(lastStatus(r), clip(text));
        assert.equal(r.statuses[r.statuses.length - 1]!.fill, "red");
        assert.equal(clock.pending(), 0, "no timer left behind");
      });
    }
  });

  it("close mid-play stops every timer", async () => {
    const r = await deploy({ json: JSON.stringify(starCore) });
    await advance(120);
    assert.ok(r.messages.length > 0);
    assert.ok(clock.pending() > 0);
    await helper.unload();
    assert.equal(clock.pending(), 0, "no timer survives close");
    const before = r.messages.length;
    await advance(5000);
    assert.equal(r.messages.length, before);
    await deploy(); // afterEach unloads again
  });
});
