// Runs the compiled test suites in order (unit, nodes, robustness, system, e2e) with node's own test
// runner; exits non-zero when any test fails. Pass suite names to run only those.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const wanted = process.argv.slice(2);
const suites = ["unit", "nodes", "robustness", "system", "e2e"].filter((s) => wanted.length === 0 || wanted.includes(s));
let failed = false;
for (const suite of suites) {
  const dir = join(root, "dist", "test", suite);
  if (!existsSync(dir)) continue;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".test.js"))
    .sort()
    .map((f) => join(dir, f));
  if (files.length === 0) continue;
  process.stdout.write(`\n== ${suite} (${files.length} files) ==\n`);
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", "--test-concurrency=1", ...files], { stdio: "inherit", cwd: root });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
