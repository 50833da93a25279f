// Lays the compiled package out the way Node-RED loads it: each node's .html beside its
// compiled .js in dist/nodes, and the icons in dist/nodes/icons.
import { cpSync, mkdirSync, readdirSync, chmodSync, existsSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = join(root, "dist", "nodes");
mkdirSync(join(out, "icons"), { recursive: true });
for (const f of readdirSync(join(root, "nodes"))) {
  if (f.endsWith(".html")) cpSync(join(root, "nodes", f), join(out, f));
}
for (const f of readdirSync(join(root, "icons"))) cpSync(join(root, "icons", f), join(out, "icons", f));
const cli = join(root, "dist", "bin", "sqi-dc.js");
if (existsSync(cli)) chmodSync(cli, 0o755);
