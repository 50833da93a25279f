// Shared set-up for node tests: node-red-node-test-helper on Node-RED (4.1, or the one
// SQI_NODE_RED_DIR names) with the
// package's Clock injected through RED.settings.sqiClock, and recorders for what a
// user would see: messages, status texts and errors.

import assert from "node:assert/strict";
import helper from "node-red-node-test-helper";
import { STATUS_MAX_CHARS } from "../../lib/status-line";
import { resolveNodeRed } from "../../scripts/node-red-path";

helper.init(resolveNodeRed());

export { helper };

export interface Recorder {
  messages: Array<Record<string, unknown>>;
  statuses: Array<{ fill?: string; shape?: string; text?: string }>;
  errors: string[];
  warnings: string[];
}

/** Records a node's output (through a wired "helper" node), status calls and errors. */
export function record(nodeId: string, outId?: string): Recorder {
  const r: Recorder = { messages: [], statuses: [], errors: [], warnings: [] };
  const n = helper.getNode(nodeId);
  n.on("call:status", (call: { args: [Recorder["statuses"][number]] }) => r.statuses.push(call.args[0]));
  // An error is said with node.error(text) or, for a message that failed, done(err): its text either way (as a catch node's msg.error.message).
  n.on("call:error", (call: { args: [unknown] }) => r.errors.push(call.args[0] instanceof Error ? call.args[0].message : String(call.args[0])));
  n.on("call:warn", (call: { args: [string] }) => r.warnings.push(String(call.args[0])));
  if (outId) helper.getNode(outId).on("input", (msg: Record<string, unknown>) => r.messages.push(msg));
  return r;
}

/** Lets Node-RED deliver what was sent (it hands messages on with setImmediate) and spy events fire. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** The last status text; every status a test reads this way must fit under a node. */
export function lastStatus(r: Recorder): string {
  const text = r.statuses[r.statuses.length - 1]?.text ?? "";
  assert.ok([...text].length <= STATUS_MAX_CHARS, `a status fits under the node (${STATUS_MAX_CHARS} characters): ${JSON.stringify(text)}`);
  return text;
}
