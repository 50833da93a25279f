// Which Node-RED the launcher, the benches and the tests run. By default the package's own dev
// dependency; SQI_NODE_RED_DIR names a folder whose node_modules holds another version (CI runs
// the suites on Node-RED 3.1 and 5.0 that way, from scratch prefixes).

import * as path from "node:path";
import { packageRoot } from "../lib/paths";

export const nodeRedRoot = process.env.SQI_NODE_RED_DIR ? path.resolve(process.env.SQI_NODE_RED_DIR) : packageRoot;

/** Resolves a module of that Node-RED: "node-red" (its main), "node-red/red.js", "@node-red/nodes/core/...". */
export function resolveNodeRed(request = "node-red"): string {
  return require.resolve(request, { paths: [nodeRedRoot] });
}

/** The version of that Node-RED, from its package.json. */
export function nodeRedVersion(): string {
  return (require(resolveNodeRed("node-red/package.json")) as { version: string }).version;
}
