// bench/load-time: how long Node-RED takes to load this package's five node modules, in a
// fresh process each time, against the same five plus the mqtt package (which they loaded at
// start until the bus began to load it only when a bus uses MQTT). Both are measured in this
// run, alternating, so the machine's noise falls on both. Prints medians and the ratio; also
// says whether loading the nodes pulled mqtt in (it must not).

import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const nodes = ["dc-container", "event-filter", "pulse-shaper", "sqi-bus", "sqi-event-bus"].map((n) => path.join(packageRoot, "dist", "nodes", `${n}.js`));

function once(withMqtt: boolean): { ms: number; mqttLoaded: boolean } {
  const script = `const t = process.hrtime.bigint();
for (const f of ${JSON.stringify(nodes)}) require(f);
${withMqtt ? 'require("mqtt");' : ""}
const ms = Number(process.hrtime.bigint() - t) / 1e6;
const mqttLoaded = Object.keys(require.cache).some((k) => k.includes("/node_modules/mqtt/"));
process.stdout.write(JSON.stringify({ ms, mqttLoaded }));`;
  const r = spawnSync(process.execPath, ["-e", script], { cwd: packageRoot, encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`load failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { ms: number; mqttLoaded: boolean };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const lazy: number[] = [];
const eager: number[] = [];
let pulledIn = false;
for (let i = 0; i < RUNS; i++) {
  const a = once(false);
  pulledIn ||= a.mqttLoaded;
  lazy.push(a.ms);
  eager.push(once(true).ms);
}
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
process.stdout.write(
  [
    `load time of the five node modules, ${RUNS} fresh processes each (median, min-max):`,
    `  now (mqtt loaded when a bus uses it):   ${fmt(median(lazy))}  (${fmt(Math.min(...lazy))}-${fmt(Math.max(...lazy))})`,
    `  with mqtt loaded at start (as before):  ${fmt(median(eager))}  (${fmt(Math.min(...eager))}-${fmt(Math.max(...eager))})`,
    `  ratio now / before: ${(median(lazy) / median(eager)).toFixed(2)}`,
    `  loading the nodes pulled mqtt in: ${pulledIn ? "YES (a regression)" : "no"}`,
  ].join("\n") + "\n",
);
process.exitCode = pulledIn ? 1 : 0;
