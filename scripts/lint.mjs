// The project's lint: the rules that keep this package honest and safe, which a generic
// linter does not know (tsc --noEmit with strict and noUnused* does the TypeScript side).
//   - one Clock: no Date.now/setTimeout/setInterval/setImmediate/performance.now in lib/ or nodes/
//     outside lib/clock.ts, so everything runs on virtual time in tests;
//   - a pure core: lib/ never touches Node-RED or the console;
//   - no TODO/FIXME left in shipped code; no value exported beside a node's module.exports;
//   - every rpi-gpio out in flows/ and examples/ has "Initialise pin state" set, low, and no
//     pin has two GPIO nodes (rpi-gpio out/in, pulse-out);
//   - no claim of energy gain anywhere;
//   - every node in package.json has its .ts, .html (whose editor script parses), help and icon;
//     every JSON and .dc file parses;
//   - every plugin in package.json has its .ts and an .html that registers it (and parses);
//   - no text reaches the editor's DOM as HTML unescaped: RED.notify, .html(), innerHTML/outerHTML,
//     insertAdjacentHTML, document.write and $("<tag ..." + x) take only string literals and
//     RED.utils.sanitize(...) (a self-check proves the rule catches the hole it was made for);
//   - no trailing whitespace or tabs, and a final newline, in source files;
//   - every relative link and #anchor in README.md, CHANGELOG.md and docs/ resolves, and so does
//     every link the nodes' help gives into this repo on GitHub.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative, extname } from "node:path";
import vm from "node:vm";

const root = new URL("..", import.meta.url).pathname;
const problems = [];
const report = (file, line, message) => problems.push(`${relative(root, file)}${line ? `:${line}` : ""}: ${message}`);

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const eachLine = (file, fn) =>
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((l, i) => fn(l, i + 1));

// One Clock, a pure core, nothing left for later.
for (const file of [...walk(join(root, "lib")), ...walk(join(root, "nodes"))].filter((f) => f.endsWith(".ts"))) {
  const inLib = file.startsWith(join(root, "lib"));
  eachLine(file, (line, n) => {
    const code = line.replace(/\/\/.*$/, "");
    if (!file.endsWith(join("lib", "clock.ts")) && /\b(Date\.now|setTimeout|setInterval|setImmediate|performance\.now)\s*\(/.test(code)) {
      report(file, n, "reads time or sets a timer directly: use the Clock (lib/clock.ts)");
    }
    if (/\bconsole\./.test(code)) report(file, n, "console output in shipped code: return the text, or use node.log/warn/error");
    if (inLib && (/\bRED\./.test(code) || /from ["'](\.\.\/)+nodes\//.test(code) || /require\(["']node-red/.test(code))) {
      report(file, n, "lib/ is the pure core: no Node-RED in it");
    }
    if (/\b(TODO|FIXME|XXX)\b/.test(line)) report(file, n, "unfinished work marker in shipped code");
  });
}

// Every file a user names is opened one way (lib/files.ts: regular files only, without blocking,
// within a size bound). Elsewhere in shipped code only the package's own files are read directly,
// and the line says so.
for (const file of [...walk(join(root, "lib")), ...walk(join(root, "nodes")), ...walk(join(root, "bin"))].filter((f) => f.endsWith(".ts"))) {
  if (file.endsWith(join("lib", "files.ts"))) continue;
  eachLine(file, (line, n) => {
    if (/\bfs\.(readFileSync|openSync|createReadStream|readFile|open)\s*\(|fs\.promises\b/.test(line) && !/the package's own/.test(line))
      report(file, n, "opens a file directly: a file a user names goes through lib/files.ts (a FIFO or /dev/zero must not block or flood)");
  });
}

// A node file's `module.exports = function (RED)` replaces every other export of the compiled
// module: a value exported beside it is undefined at run time (types are fine).
for (const file of walk(join(root, "nodes")).filter((f) => f.endsWith(".ts"))) {
  const text = readFileSync(file, "utf8");
  if (!/module\.exports\s*=/.test(text)) continue;
  eachLine(file, (line, n) => {
    if (/^export\s+(function|const|let|var|class|enum)\b/.test(line))
      report(file, n, "a value exported beside module.exports is lost at run time: move it to lib/");
  });
}

// Pins start low, and each pin has one node. sharedPins is lib/'s own, built (npm test builds first).
const pinsModule = join(root, "dist", "lib", "pulse", "pins.js");
const { sharedPins } = existsSync(pinsModule) ? (await import(pinsModule)).default : { sharedPins: undefined };
if (!sharedPins) report(pinsModule, 0, "not built: run npm run build first (the one-node-per-pin rule reads it)");
for (const file of [...walk(join(root, "flows")), ...walk(join(root, "examples"))].filter((f) => f.endsWith(".json"))) {
  let flow;
  try {
    flow = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    report(file, 0, `not valid JSON: ${e.message}`);
    continue;
  }
  if (!Array.isArray(flow)) {
    report(file, 0, "a flow file must be a JSON array of nodes");
    continue;
  }
  for (const node of flow) {
    if (node.type === "rpi-gpio out" && node.out !== "pwm" && !(node.set === true && String(node.level) === "0")) {
      report(file, 0, `rpi-gpio out "${node.name || node.id}" must have "Initialise pin state" set to low (set: true, level: "0")`);
    }
  }
  // One node per pin (the rule the nodes warn of at run time, from the same code in lib/).
  if (sharedPins) for (const shared of sharedPins(flow)) report(file, 0, shared.text);
}

// Every relative link and anchor resolves: in README.md, CHANGELOG.md and docs/*.md, and the
// links the nodes' help gives to this repo on GitHub (which must name a file and heading here).
/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, "")
    .replace(/ /g, "-");
/** The anchors of a markdown file's headings (a repeated heading gets -1, -2, ...), outside code fences. */
function anchorsOf(file) {
  const out = new Set();
  const seen = new Map();
  let fence = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("```")) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const s = slug(m[1]);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n ? `${s}-${n}` : s);
  }
  return out;
}
const anchorCache = new Map();
/** Problem with a link to `target` (path#anchor, relative to `from`'s folder), or undefined when it resolves. */
function badLink(from, target) {
  const [p, anchor] = target.split("#");
  const file = p ? join(from === root ? root : join(from, ".."), decodeURIComponent(p)) : from;
  if (!existsSync(file)) return `links to ${target}: no such file`;
  if (anchor === undefined || anchor === "") return undefined;
  if (!file.endsWith(".md")) return `links to ${target}: an anchor in a file that is not markdown`;
  if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(file));
  return anchorCache.get(file).has(anchor) ? undefined : `links to ${target}: no heading makes #${anchor} in ${relative(root, file)}`;
}
for (const file of [join(root, "README.md"), join(root, "CHANGELOG.md"), ...walk(join(root, "docs")).filter((f) => f.endsWith(".md"))]) {
  let fence = false;
  eachLine(file, (line, n) => {
    if (line.startsWith("```")) fence = !fence;
    if (fence) return;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/i.test(target)) continue;
      const bad = badLink(file, target);
      if (bad) report(file, n, bad);
    }
  });
}
for (const file of walk(join(root, "nodes")).filter((f) => f.endsWith(".html"))) {
  eachLine(file, (line, n) => {
    for (const m of line.matchAll(/href="https:\/\/github\.com\/sqi\/node-red-pulse(?:\/(?:blob|tree)\/main\/([^"#]*))?(?:#([^"]*))?"/g)) {
      const [, p, anchor] = m;
      const bad = badLink(join(root, "x"), `${p || "README.md"}${anchor ? `#${anchor}` : ""}`);
      if (bad) report(file, n, `the help ${bad}`);
    }
  });
}

// Honesty.
const claim = /free energy|energy gain|over-?unity|amplif(y|ied|ication) (the )?(energy|field|power)|warp[- ](energy|field|scale)/i;
for (const file of walk(root).filter((f) => [".ts", ".mjs", ".js", ".html", ".md", ".json", ".dc", ".py"].includes(extname(f)))) {
  if (file === new URL(import.meta.url).pathname) continue;
  eachLine(file, (line, n) => {
    if (claim.test(line) && !/never claims|no claim|must never|does not create|not create energy|no energy gain/i.test(line)) {
      report(file, n, "reads like a claim of energy gain: the product reports only what it fired");
    }
  });
}

// Every node is complete.
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
for (const [type, js] of Object.entries(pkg["node-red"].nodes)) {
  const base = js.replace(/^dist\/nodes\//, "").replace(/\.js$/, "");
  for (const f of [`nodes/${base}.ts`, `nodes/${base}.html`]) if (!existsSync(join(root, f))) report(join(root, f), 0, `node ${type} is missing this file`);
  const html = existsSync(join(root, "nodes", `${base}.html`)) ? readFileSync(join(root, "nodes", `${base}.html`), "utf8") : "";
  const icon = /icon:\s*"([^"]+)"/.exec(html)?.[1];
  const isConfig = /category:\s*"config"/.test(html);
  if (!icon && !isConfig) report(join(root, "nodes", `${base}.html`), 0, `node ${type} has no icon`);
  else if (icon && !existsSync(join(root, "icons", icon))) report(join(root, "icons", icon), 0, `icon of ${type} is missing`);
  if (!html.includes(`data-help-name="${type}"`)) report(join(root, "nodes", `${base}.html`), 0, `node ${type} has no help text`);
  // Help in the core style guide: no bold or italic for emphasis, h3 only for the four standard
  // sections, and References as links.
  const help = new RegExp(`data-help-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1] ?? "";
  if (/<(b|i|strong|em)>/.test(help)) report(join(root, "nodes", `${base}.html`), 0, `help of ${type} uses <b>/<i>/<strong>/<em> for emphasis`);
  for (const h of help.matchAll(/<h3>([^<]*)<\/h3>/g))
    if (!["Inputs", "Outputs", "Details", "References"].includes(h[1]))
      report(join(root, "nodes", `${base}.html`), 0, `help of ${type}: <h3>${h[1]}</h3> is not one of Inputs, Outputs, Details, References (use h4)`);
  const references = /<h3>References<\/h3>([\s\S]*)/.exec(help)?.[1] ?? "";
  for (const li of references.matchAll(/<li>([\s\S]*?)<\/li>/g))
    if (!/<a href="https?:\/\//.test(li[1]))
      report(join(root, "nodes", `${base}.html`), 0, `help of ${type}: a reference without a link: ${li[1].slice(0, 60)}`);
  // The editor runs these scripts; a syntax error there only shows up as a missing node in the palette.
  for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
    try {
      new vm.Script(m[1], { filename: `nodes/${base}.html` });
    } catch (e) {
      report(join(root, "nodes", `${base}.html`), 0, `editor script does not parse: ${e.message}`);
    }
  }
}

// Every plugin has its runtime and its editor file, and the editor's script parses.
for (const [id, js] of Object.entries(pkg["node-red"].plugins ?? {})) {
  const base = js.replace(/^dist\/nodes\//, "").replace(/\.js$/, "");
  for (const f of [`nodes/${base}.ts`, `nodes/${base}.html`]) if (!existsSync(join(root, f))) report(join(root, f), 0, `plugin ${id} is missing this file`);
  const html = existsSync(join(root, "nodes", `${base}.html`)) ? readFileSync(join(root, "nodes", `${base}.html`), "utf8") : "";
  if (!html.includes(`registerPlugin("${id}"`)) report(join(root, "nodes", `${base}.html`), 0, `plugin ${id} is not registered in the editor`);
  for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
    try {
      new vm.Script(m[1], { filename: `nodes/${base}.html` });
    } catch (e) {
      report(join(root, "nodes", `${base}.html`), 0, `editor script does not parse: ${e.message}`);
    }
  }
}

// Text into the editor's DOM as HTML. A flow, a container, a listener or the runtime can put any
// string there (a container_id like <img src=x onerror=...>): every argument of an HTML sink must
// be string literals and RED.utils.sanitize(...), joined with +.
const SINKS = /RED\.notify\(|\.html\(|\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML\(|document\.write\(|(?<![\w.])(\$|jQuery)\(/g;
function firstArgument(text, from) {
  // from: just after "(" or "="; up to the first top-level "," or ")" (or ";" after "=")
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\") i++;
      continue;
    }
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      if (depth === 0) return text.slice(from, i);
      depth--;
    } else if ((c === "," || c === ";") && depth === 0) return text.slice(from, i);
  }
  return text.slice(from);
}
function terms(arg) {
  const out = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < arg.length && arg[i] !== c; i++) if (arg[i] === "\\") i++;
      continue;
    }
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (c === "+" && depth === 0) {
      out.push(arg.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(arg.slice(start).trim());
  return out.filter((t) => t.length > 0);
}
const literal = (t) => /^(["'])(?:\\.|(?!\1)[^\\])*\1$/.test(t) || /^-?\d+(\.\d+)?$/.test(t);
const escaped = (t) => /^RED\.utils\.sanitize\(/.test(t) && t.endsWith(")");
function htmlSinkProblems(script) {
  const found = [];
  for (const m of script.matchAll(SINKS)) {
    const at = m.index + m[0].length;
    const arg = firstArgument(script, at).trim();
    const line = script.slice(0, m.index).split("\n").length;
    const parts = terms(arg);
    if (m[0].endsWith("$(") || m[0].endsWith("jQuery(")) {
      // a selector or an element: only HTML built from a string with a non-literal part is a sink
      if (!(parts.length > 1 && literal(parts[0]) && /^["']\s*</.test(parts[0]))) continue;
    } else if (arg === "") continue; // .html() reads
    const bad = parts.filter((t) => !literal(t) && !escaped(t));
    if (bad.length)
      found.push({
        line,
        text: `${m[0].replace(/\($/, "")} takes ${bad.join(", ")} unescaped: text from a flow or the runtime becomes HTML (wrap it in RED.utils.sanitize)`,
      });
  }
  return found;
}
// The rule must catch the hole it was made for (dc-container's button, before the fix).
const HOLE = 'var label = node.name; RED.notify(label + ": " + resp.state, { type: "success" }); $("<b>" + name + "</b>"); x.innerHTML = y;';
if (htmlSinkProblems(HOLE).length !== 3)
  report(join(root, "scripts", "lint.mjs"), 0, 'the HTML-sink rule no longer catches RED.notify(label + ...), $("<b>" + x) and innerHTML = y');
if (htmlSinkProblems('RED.notify("a: " + RED.utils.sanitize(label), "error"); $("#x").text(y); $("<div/>", { a: 1 });').length !== 0)
  report(join(root, "scripts", "lint.mjs"), 0, "the HTML-sink rule refuses escaped or literal text");
for (const file of walk(join(root, "nodes")).filter((f) => f.endsWith(".html"))) {
  const html = readFileSync(file, "utf8");
  for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
    const before = html.slice(0, m.index).split("\n").length - 1;
    for (const p of htmlSinkProblems(m[1])) report(file, before + p.line, p.text);
  }
}

// JSON that ships must parse.
for (const file of [...walk(join(root, "schemas")), ...walk(join(root, "examples")), ...walk(join(root, "containers"))].filter(
  (f) => f.endsWith(".json") || f.endsWith(".dc"),
)) {
  try {
    JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    report(file, 0, `not valid JSON: ${e.message}`);
  }
}

// Whitespace.
for (const file of walk(root).filter((f) => [".ts", ".mjs", ".html", ".py", ".md", ".json", ".dc", ".svg"].includes(extname(f)) || f.endsWith(".ci/run"))) {
  const text = readFileSync(file, "utf8");
  if (text.length > 0 && !text.endsWith("\n")) report(file, 0, "no newline at the end of the file");
  eachLine(file, (line, n) => {
    if (/[ \t]+$/.test(line)) report(file, n, "trailing whitespace");
    if (file.endsWith(".ts") && line.includes("\t")) report(file, n, "tab in TypeScript: indent with spaces");
  });
}

if (problems.length) {
  process.stderr.write(`${problems.join("\n")}\nlint: ${problems.length} problem(s)\n`);
  process.exit(1);
}
process.stdout.write("lint: ok\n");
