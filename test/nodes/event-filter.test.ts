import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { Decimator, namePattern, tooLate } from "../../lib/filter/rules";
import { T0 } from "../helpers/containers";
import { helper, lastStatus, record, settle } from "../helpers/red";

const eventFilter = require("../../nodes/event-filter");

let clock: VirtualClock;

async function deploy(props: Record<string, unknown>, outputs = 2) {
  const outs = Array.from({ length: outputs }, (_, i) => `o${i}`);
  await helper.load(eventFilter, [
    { id: "f", type: "tab" },
    { id: "ef", z: "f", type: "event-filter", rules: [], checkall: "first", every: 1, maxLate: 0, wires: outs.map((o) => [o]), ...props },
    ...outs.map((o) => ({ id: o, z: "f", type: "helper" })),
  ]);
  const got = outs.map((o) => {
    const list: Array<Record<string, unknown>> = [];
    helper.getNode(o).on("input", (m: Record<string, unknown>) => list.push(m));
    return list;
  });
  return { got, r: record("ef") };
}

async function send(...msgs: Array<Record<string, unknown>>) {
  for (const m of msgs) helper.getNode("ef").receive(m);
  await settle(10);
}

const topics = (l: Array<Record<string, unknown>>) => l.map((m) => m.topic);

describe("event-filter rules (core)", () => {
  it("matches exact names, comma lists and wildcards; blank matches all", () => {
    assert.equal(namePattern("proton_collision")("proton_collision"), true);
    assert.equal(namePattern("proton_collision")("proton_collisionX"), false);
    assert.equal(namePattern("proton_collision, fusion_tick")("fusion_tick"), true);
    assert.equal(namePattern("proton_*")("proton_collision"), true);
    assert.equal(namePattern("proton_*")("atom_spin_flip"), false);
    assert.equal(namePattern("a?c")("abc"), true);
    assert.equal(namePattern("a.c")("abc"), false, "a dot is a dot, not a regex");
    assert.equal(namePattern("")("anything"), true);
  });
  it("decimates every Nth and detects late events", () => {
    const d = new Decimator(3);
    assert.deepEqual(
      Array.from({ length: 7 }, () => d.pass()),
      [true, false, false, true, false, false, true],
    );
    assert.equal(tooLate(100, 200, 50), true);
    assert.equal(tooLate(100, 140, 50), false);
    assert.equal(tooLate(100, 10_000, 0), false, "0 keeps everything");
    assert.equal(tooLate(undefined, 10_000, 50), false, "no at: never late");
  });
});

describe("event-filter node", () => {
  beforeEach(() => {
    clock = new VirtualClock(T0);
    helper.settings({ sqiClock: clock });
  });
  afterEach(async () => helper.unload());

  it("routes coil events and LED events to their outputs, first match only", async () => {
    const { got, r } = await deploy({ rules: [{ event: "proton_collision, waveform_emit, time_dilation, fusion_tick" }, { event: "atom_*" }] });
    await send({ topic: "proton_collision" }, { topic: "atom_spin_flip" }, { topic: "fusion_tick" }, { topic: "unknown" });
    assert.deepEqual(topics(got[0]!), ["proton_collision", "fusion_tick"]);
    assert.deepEqual(topics(got[1]!), ["atom_spin_flip"]);
    clock.advance(600);
    await settle();
    assert.equal(lastStatus(r), "in 4 · out 3 · unmatched 1");
  });

  it("the panel's live counts: what each rule passed on since the deploy, from the running node", async () => {
    await deploy({ checkall: "all", rules: [{ event: "proton_*" }, { event: "" }, { event: "fusion_tick" }] }, 3);
    await send({ topic: "proton_collision" }, { topic: "atom_spin_flip" }, { topic: "proton_collision" });
    let res = await helper.request().get("/event-filter/ef/counts");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { rules: [2, 3, 0], in: 3, unmatched: 0 });
    res = await helper.request().get("/event-filter/nope/counts");
    assert.equal(res.status, 404);
  });

  it("with every matching rule, one event can go to several outputs", async () => {
    const { got } = await deploy({ checkall: "all", rules: [{ event: "proton_*" }, { event: "" }] });
    await send({ topic: "proton_collision" }, { topic: "atom_spin_flip" });
    assert.deepEqual(topics(got[0]!), ["proton_collision"]);
    assert.deepEqual(topics(got[1]!), ["proton_collision", "atom_spin_flip"]);
  });

  it("applies a JSONata condition on the payload, keeping the order of messages", async () => {
    const { got } = await deploy({ rules: [{ event: "proton_collision", condition: "payload.energy_mev > 10" }, { event: "proton_collision" }] });
    await send(...[14.1, 2.2, 20, 5].map((e, i) => ({ topic: "proton_collision", payload: { energy_mev: e }, n: i })));
    await settle(20);
    assert.deepEqual(
      got[0]!.map((m) => m.n),
      [0, 2],
    );
    assert.deepEqual(
      got[1]!.map((m) => m.n),
      [1, 3],
    );
  });

  it("decimates and drops late events, counting both", async () => {
    const { got, r } = await deploy({ every: 2, maxLate: 20, rules: [{ event: "" }] }, 1);
    const at = (late: number) => ({ topic: "e", sqi: { at: T0 - late } });
    await send(at(0), at(0), at(50), at(0), at(5), at(0));
    // kept by decimation: 1st, 3rd (late: dropped), 5th (5 ms late: kept)
    assert.equal(got[0]!.length, 2);
    clock.advance(600);
    await settle();
    assert.equal(lastStatus(r), "in 6 · out 2 · decimated 3 · late 1");
  });

  it("a condition that does not parse is a clear error at deploy", async () => {
    const { r } = await deploy({ rules: [{ event: "x", condition: "payload.(" }] }, 1);
    await settle();
    assert.match(r.errors[0] ?? "", /^event-filter: rule 1: the JSONata condition does not parse/);
    assert.equal(r.statuses[r.statuses.length - 1]!.fill, "red");
  });
});
