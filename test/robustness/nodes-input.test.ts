// Hostile input through the nodes, as a flow sees it: a master whose report output is wired
// to two nodes (Node-RED clones the message for the second) taking a hostile report; a
// dc-container given containers that are too deep, too big, or not files at all; the CLI on
// the same files. Each gets a clear error with its path; the flow keeps running.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, it } from "node:test";
import WebSocket from "ws";
import { packageRoot } from "../../lib/paths";
import { freePort, waitFor } from "../helpers/processes";
import { helper, lastStatus, record, settle } from "../helpers/red";

const sqiBus = require("../../nodes/sqi-bus");
const sqiEventBus = require("../../nodes/sqi-event-bus");
const dcContainer = require("../../nodes/dc-container");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-hostile-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(async () => helper.unload());

const deep = (n: number): string => "[".repeat(n) + "]".repeat(n);
const deepContainer = (n: number): string =>
  `{"container_id":"deep","tick_interval_ms":100,"glyphs":[{"tick":1,"event":"a"},{"tick":2,"event":"b","payload":{"x":${deep(n)}}}]}`;

describe("a master's report output wired to two nodes", () => {
  it("a report with a 20,000-deep extra key is rejected before it reaches the flow; good reports go on with only known keys", async () => {
    const port = await freePort();
    await helper.load(
      [sqiBus, sqiEventBus],
      [
        { id: "f", type: "tab" },
        { id: "cfg", type: "sqi-bus", transport: "ws", host: "127.0.0.1", port: String(port), path: "/", url: "" },
        { id: "bus", z: "f", type: "sqi-event-bus", role: "broadcast", bus: "cfg", statsEvery: 0, wires: [[], ["a", "b"]] },
        { id: "a", z: "f", type: "helper" },
        { id: "b", z: "f", type: "helper" },
      ],
    );
    const got: Array<Record<string, unknown>> = [];
    helper.getNode("a").on("input", (m: Record<string, unknown>) => got.push(m));
    helper.getNode("b").on("input", (m: Record<string, unknown>) => got.push(m));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    ws.on("error", () => undefined);
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "hello", name: "pi-9", protocol: 1 }));
    ws.send(`{"type":"report","name":"pi-9","counters":{"received":1},"x":${deep(20_000)}}`);
    ws.send(JSON.stringify({ type: "report", name: "pi-9", counters: { received: 2, fired_pulses: 4 } }));
    await waitFor("the good report on both nodes", () => got.length >= 2, 5000, 10);
    await settle(10);
    assert.equal(got.length, 2);
    for (const m of got) assert.deepEqual(Object.keys(m.payload as object).sort(), ["counters", "name", "remote", "type"]);
    ws.terminate();
  });
});

describe("containers that are too deep, too big, or not files", () => {
  async function deploy(extra: Record<string, unknown>) {
    await helper.load(dcContainer, [
      { id: "flow", type: "tab" },
      {
        id: "dc",
        z: "flow",
        type: "dc-container",
        name: "test",
        source: "file",
        file: "",
        autostart: false,
        startDelay: 0,
        lead: 0,
        accel: 10,
        wires: [["out"], []],
        ...extra,
      },
      { id: "out", z: "flow", type: "helper" },
    ]);
    return record("dc", "out");
  }

  it("a glyph payload 2,500 or 100,000 levels deep: an error naming the path, and no crash (structuredClone in emit overflowed)", async () => {
    for (const n of [2500, 100_000]) {
      const file = path.join(dir, `deep-${n}.dc`);
      fs.writeFileSync(file, deepContainer(n));
      const r = await deploy({ file });
      await settle(10);
      assert.match(r.errors[0] ?? "", /glyphs\[1\]\.payload\.x(\[0\])+: is nested more than 32 levels deep \(at most 32\)/);
      helper.getNode("dc").receive({ payload: "load", container: JSON.parse(deepContainer(n)) });
      await settle(10);
      assert.match(r.errors[1] ?? "", /^msg\.container: glyphs\[1\]\.payload\.x(\[0\])+: is nested more than 32 levels deep/);
      await helper.unload();
    }
  });

  it("a msg.container object of 1e6 glyphs is refused at once; a FIFO or /dev/zero as the file is refused, not read", async () => {
    const fifo = path.join(dir, "star.dc");
    execFileSync("mkfifo", [fifo]);
    const r = await deploy({ file: fifo });
    await settle(10);
    assert.match(r.errors[0] ?? "", /is not a regular file \(a FIFO, socket or device\)/);
    const t0 = performance.now();
    helper
      .getNode("dc")
      .receive({ payload: "load", container: { container_id: "big", glyphs: Array.from({ length: 1_000_000 }, (_, i) => ({ tick: i + 1, event: "x" })) } });
    await settle(10);
    assert.match(r.errors[1] ?? "", /^msg\.container: .*is over the 5 MiB limit for \.dc containers/);
    assert.ok(performance.now() - t0 < 3000, "refused quickly");
    helper.getNode("dc").receive({ payload: "load", container: "/dev/zero" });
    await settle(10);
    assert.match(r.errors[2] ?? "", /^zero: is not a regular file/);
    // and the node still loads a good container
    helper.getNode("dc").receive({ payload: "load", container: { container_id: "ok", glyphs: [{ tick: 1, event: "fine" }] } });
    await settle(10);
    assert.equal(r.errors.length, 3);
    assert.doesNotMatch(lastStatus(r), /⚠/);
  });

  it("sqi-dc validate and play on a 100,000-deep container: exit 1 with the path, never a stack overflow", async () => {
    const file = path.join(dir, "deep-cli.dc");
    fs.writeFileSync(file, deepContainer(100_000));
    const cli = path.join(packageRoot, "dist", "bin", "sqi-dc.js");
    for (const args of [
      ["validate", file],
      ["play", file, "--speed", "1000"],
    ]) {
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(process.execPath, [cli, ...args], { timeout: 20_000 }, (e, stdout, stderr) =>
          resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, out: stdout + stderr }),
        );
      });
      assert.equal(r.code, 1, `${args[0]}: ${r.out}`);
      // FILE:LINE:COL at the 33rd level, the rule, and the path.
      assert.match(r.out, /deep-cli\.dc:1:\d+: is nested more than 32 levels deep \(at most 32\) \(glyphs\[1\]\.payload\.x(\[0\])+\)/);
      assert.doesNotMatch(r.out, /Maximum call stack/);
    }
  });
});
