// What a deploy does to a pulse-shaper (nodes/pin-guard.ts deployEffect): close it, only take its
// output low (a node it drives is restarted), or nothing, for each kind of deploy Node-RED makes.
// What Node-RED restarts: "full" everything; "nodes" the changed and removed nodes; "flows" those
// and the nodes wired to them (rewired, linked), and every node of a flow whose own settings changed.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deployEffect } from "../../nodes/pin-guard";

const shaper = { id: "ps", z: "tab1" };
const drives = ["pin"];

describe("what a deploy does to a pulse-shaper", () => {
  it("a full deploy, or one that says nothing of what changed, closes it", () => {
    assert.equal(deployEffect({ type: "full", diff: {} }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "nodes" }, shaper, drives), "close");
    assert.equal(deployEffect({}, shaper, drives), "close");
  });

  it('"modified nodes": closes it when it changed, takes it low when the node it drives changed, else nothing; a rewired node is not restarted', () => {
    assert.equal(deployEffect({ type: "nodes", diff: { changed: ["ps"] } }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "nodes", diff: { removed: ["ps"] } }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "nodes", diff: { changed: ["pin"] } }, shaper, drives), "stop");
    assert.equal(deployEffect({ type: "nodes", diff: { changed: ["other"] } }, shaper, drives), "none");
    assert.equal(deployEffect({ type: "nodes", diff: { rewired: ["ps"], linked: ["pin"] } }, shaper, drives), "none");
  });

  it('"modified flows": the nodes wired to a change restart too, and a flow whose settings changed restarts whole', () => {
    assert.equal(deployEffect({ type: "flows", diff: { rewired: ["ps"] } }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "flows", diff: { linked: ["ps"] } }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "flows", diff: { linked: ["pin"] } }, shaper, drives), "stop");
    assert.equal(deployEffect({ type: "flows", diff: { rewired: ["pin"] } }, shaper, drives), "stop");
    assert.equal(deployEffect({ type: "flows", diff: { flowChanged: ["tab1"] } }, shaper, drives), "close");
    assert.equal(deployEffect({ type: "flows", diff: { flowChanged: ["tab2"], changed: ["other"] } }, shaper, drives), "none");
  });
});
