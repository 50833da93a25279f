// The words around measured power: the README, the docs, every node's help and every example
// and flow comment call what the Pis' sensors measure, and the master's sum of it, electrical
// energy drawn from the coil supplies (energy in), and never energy out, produced or gained.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";

/** Prose only: code blocks, inline code and HTML tags out, then one sentence per item. */
function sentences(text: string): string[] {
  return text
    .replace(/```[\s\S]*?```/g, " ")
    .replace(/`[^`]*`/g, "CODE")
    .replace(/<code>[\s\S]*?<\/code>/g, "CODE")
    .replace(/<[^>]+>/g, " ")
    .split(/\n\s*\n|\n(?=\s*[-|*])/)
    .flatMap((para) => para.replace(/\s+/g, " ").split(/(?<=[.!?:;])\s+(?=[A-Z(*-])|\s+-\s+|\s\|\s/))
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Where the words are: the README, the docs, the changelog, each node's help, each example's and flow's comments. */
function texts(): Array<{ where: string; text: string }> {
  const out: Array<{ where: string; text: string }> = [];
  const docs = fs
    .readdirSync(path.join(packageRoot, "docs"))
    .filter((x) => x.endsWith(".md"))
    .map((x) => `docs/${x}`);
  for (const f of ["README.md", ...docs, "CHANGELOG.md"]) out.push({ where: f, text: fs.readFileSync(path.join(packageRoot, f), "utf8") });
  for (const f of fs.readdirSync(path.join(packageRoot, "nodes")).filter((x) => x.endsWith(".html"))) {
    const html = fs.readFileSync(path.join(packageRoot, "nodes", f), "utf8");
    for (const m of html.matchAll(/data-help-name="([^"]+)">([\s\S]*?)<\/script>/g)) out.push({ where: `${f} help`, text: m[2]! });
  }
  for (const dir of ["examples", "flows"])
    for (const f of fs.readdirSync(path.join(packageRoot, dir)).filter((x) => x.endsWith(".json"))) {
      const flow = JSON.parse(fs.readFileSync(path.join(packageRoot, dir, f), "utf8")) as Array<{ type: string; name?: string; info?: string }>;
      for (const n of flow) if (n.type === "comment" || n.type === "tab") out.push({ where: `${dir}/${f}`, text: `${n.name ?? ""}. ${n.info ?? ""}` });
    }
  return out;
}

/**
 * Energy said to come out, be made or be gained: what a sum of measured draw never is (unless
 * denied). A claim of a gain, anywhere in the repository, is the lint's (scripts/lint.mjs,
 * Honesty); this test adds what the lint cannot see line by line: how a sentence about the
 * measured sum names its energy.
 */
const OUTWARD =
  /energy (out|output|produced|generated|released|gained|harvested|created|returned)\b|\b(produc|generat|releas|harvest|creat|gain)\w* (more )?(electrical )?(energy|power)\b/i;
const DENIED = /\b(no|never|not|nothing|does not|cannot|no coil)\b/i;
/** A sentence about the measured sum's energy must say what kind: drawn, in, electrical. */
const ABOUT_SUM = /\b(sum|summed|sums|adding it up|total|measured)\b/i;
const ENERGY = /\benergy\b/i;
const NAMED = /electrical energy|energy (drawn|in\b)|drew|drawn from|\bdraw\b/i;

function problems(where: string, text: string): string[] {
  const out: string[] = [];
  for (const s of sentences(text)) {
    if (OUTWARD.test(s) && !DENIED.test(s)) out.push(`${where}: "${s}" says energy comes out`);
    if (ABOUT_SUM.test(s) && ENERGY.test(s) && !NAMED.test(s) && !DENIED.test(s))
      out.push(`${where}: "${s}" does not say the energy is electrical energy drawn`);
  }
  return out;
}

describe("what the measured sum is called", () => {
  it("the check itself catches a sum called anything else, and passes one called energy drawn", () => {
    assert.equal(problems("x", "The sum is the energy produced by the Pis.").length, 2);
    assert.equal(problems("x", "Summing the Pis gives the total energy of the rig.").length, 1);
    assert.equal(problems("x", "<p>The master sums the <b>energy output</b> of every coil.</p>").length, 2);
    assert.deepEqual(problems("x", "The sum is the electrical energy all the coils drew from their supplies: energy in."), []);
    assert.deepEqual(problems("x", "Summing it does not create energy."), []);
  });

  it("the README, the docs, every help text and every example call it electrical energy drawn, never energy out", () => {
    const all = texts();
    assert.ok(
      all.some((t) => t.where === "sqi-event-bus.html help" && /Measured power/.test(t.text)),
      "the bus help has its Measured power part",
    );
    assert.ok(
      all.some((t) => t.where.startsWith("examples/06")),
      "example 06 is read",
    );
    assert.deepEqual(
      all.flatMap((t) => problems(t.where, t.text)),
      [],
    );
  });
});
