import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCommand } from "../../lib/container/commands";
import { checkNumber } from "../../lib/numbers";

describe("dc-container commands", () => {
  it("reads the command words from msg.payload, in any case and with spaces", () => {
    for (const w of ["start", "stop", "toggle", "pause", "resume", "step", "reload"]) {
      assert.deepEqual(parseCommand({ payload: w }), { kind: w });
    }
    assert.deepEqual(parseCommand({ payload: " Start " }), { kind: "start" });
    assert.deepEqual(parseCommand({ payload: true }), { kind: "start" });
    assert.deepEqual(parseCommand({ payload: false }), { kind: "stop" });
  });

  it("load takes msg.container (object or path), or a container object as the payload", () => {
    const c = { container_id: "x", glyphs: [] };
    assert.deepEqual(parseCommand({ payload: "load", container: c }), { kind: "load", container: c });
    assert.deepEqual(parseCommand({ payload: "load", container: " other.dc " }), { kind: "load", container: "other.dc" });
    assert.deepEqual(parseCommand({ payload: c }), { kind: "load", container: c });
    assert.deepEqual(parseCommand({ payload: "load" }), { error: "load needs msg.container: a container object or a .dc file path, got nothing" });
  });

  it("speed takes msg.speed: a positive number, or null for the container's own", () => {
    assert.deepEqual(parseCommand({ payload: "speed", speed: 2 }), { kind: "speed", speed: 2 });
    assert.deepEqual(parseCommand({ payload: "speed", speed: "0.5" }), { kind: "speed", speed: 0.5 });
    assert.deepEqual(parseCommand({ payload: "speed", speed: null }), { kind: "speed", speed: null });
    for (const bad of [0, -1, "fast", Infinity, 2_000_000]) {
      const r = parseCommand({ payload: "speed", speed: bad });
      assert.ok("error" in r && r.error.startsWith("speed needs msg.speed: a positive number up to 1000000"), String(bad));
    }
  });

  it("names the unknown command and lists the known ones", () => {
    const r = parseCommand({ payload: 1700000000000 });
    assert.ok("error" in r);
    assert.match(r.error, /^unknown command 1700000000000: use msg.payload "start", "stop"/);
    const r2 = parseCommand({ payload: "jump" });
    assert.ok("error" in r2 && r2.error.startsWith('unknown command "jump"'));
  });
});

describe("config numbers", () => {
  const lead = { label: "Lead time", min: 0, max: 60000, default: 50, unit: "ms" };
  it("blank takes the default; numbers and numeric strings within range pass", () => {
    assert.deepEqual(checkNumber("", lead), { ok: true, value: 50 });
    assert.deepEqual(checkNumber(undefined, lead), { ok: true, value: 50 });
    assert.deepEqual(checkNumber("20", lead), { ok: true, value: 20 });
    assert.deepEqual(checkNumber(0, lead), { ok: true, value: 0 });
  });
  it("says what is wrong in the panel's words", () => {
    assert.deepEqual(checkNumber("abc", lead), { ok: false, error: 'Lead time must be a number from 0 to 60000 ms, got "abc"' });
    assert.deepEqual(checkNumber(-1, lead), { ok: false, error: "Lead time must be a number from 0 to 60000 ms, got -1" });
    assert.deepEqual(checkNumber(0, { label: "Speed", min: 0, max: 10, exclusiveMin: true, default: 1 }), {
      ok: false,
      error: "Speed must be a number above 0 and up to 10, got 0",
    });
    assert.deepEqual(checkNumber(1.5, { label: "Clones", min: 1, max: 10, integer: true, default: 1 }), {
      ok: false,
      error: "Clones must be a whole number from 1 to 10, got 1.5",
    });
  });
});
