// Every number a panel takes is checked in the editor and in the runtime against the one table
// (lib/ranges.ts). Each node's editor script runs here with a stand-in RED that carries the
// table as Node-RED exports it (RED.settings.<type>Ranges), and each field's validator is
// probed at and around its limits: a panel must never accept what the runtime refuses.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as vm from "node:vm";
import { PANEL_RANGES, type RangedType } from "../../lib/ranges";
import { rangesSetting } from "../../nodes/shell";
import { checkNumber, type NumberRule } from "../../lib/numbers";
import { packageRoot } from "../../lib/paths";

type Validate = (this: Record<string, unknown>, v: unknown) => boolean;
interface EditorDef {
  defaults: Record<string, { value: unknown; validate?: Validate }>;
}

/** The node's editor definition, as its html registers it, with `settings` exported as Node-RED would. */
function editorDef(type: RangedType, settings: Record<string, unknown>): EditorDef {
  const html = fs.readFileSync(path.join(packageRoot, "nodes", `${type}.html`), "utf8");
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1]!;
  const registered: Record<string, EditorDef> = {};
  const jq = () => ({ length: 0, val: () => undefined });
  const RED = { settings, nodes: { registerType: (t: string, d: EditorDef) => (registered[t] = d) }, _: (k: string) => k };
  const page = vm.createContext({ RED, $: jq, Number, isFinite, String, Array, JSON, Math, console });
  vm.runInContext("var window = this;", page);
  // The shared validator the panel loads first (its <script src>), as the editor does.
  assert.match(html, /^<script src="resources\/@sqi\/node-red-pulse\/sqi-ranges\.js"><\/script>/, `${type}.html loads the shared validator`);
  vm.runInContext(fs.readFileSync(path.join(packageRoot, "resources", "sqi-ranges.js"), "utf8"), page);
  vm.runInContext(script, page);
  assert.ok(registered[type], `${type}.html registers ${type}`);
  return registered[type]!;
}

/** Values at and around a rule's limits, and a few that are no number at all. */
function probes(r: NumberRule): unknown[] {
  const step = r.integer ? 1 : Math.min(0.5, (r.max - r.min) / 4);
  return [
    r.min - step,
    r.min,
    r.min + step,
    r.min + 0.5,
    (r.min + r.max) / 2,
    r.max - step,
    r.max,
    r.max + step,
    r.max * 10 + 1,
    -1,
    0,
    1,
    "abc",
    "1e3",
    " 5 ",
    "Infinity",
    "NaN",
  ].flatMap((v) => (typeof v === "number" ? [v, String(v)] : [v]));
}

/** The editor's verdict on `v` for `key`: a row field is judged in a row, the rest on their own. */
function editorAccepts(def: EditorDef, key: string, v: unknown): boolean {
  const node = { maxOn: 60_000, emission: "auto" };
  const row = /^row([A-Z]\w*)$/.exec(key);
  if (row) return def.defaults.rows!.validate!.call(node, [{ event: "x", shape: "burst", [row[1]!.toLowerCase()]: v }]);
  const field = def.defaults[key];
  assert.ok(field?.validate, `the panel checks ${key}`);
  return field.validate.call(node, v);
}

describe("one table of ranges: every panel and the runtime agree", () => {
  for (const type of Object.keys(PANEL_RANGES) as RangedType[]) {
    it(`${type}: each field's panel accepts a value exactly when the runtime does (blank: the default)`, () => {
      const settings = Object.fromEntries(Object.entries(rangesSetting(type)).map(([k, s]) => [k, s.value]));
      const def = editorDef(type, JSON.parse(JSON.stringify(settings)) as Record<string, unknown>);
      const rules = PANEL_RANGES[type] as Record<string, NumberRule>;
      const wrong: string[] = [];
      for (const [key, rule] of Object.entries(rules)) {
        for (const v of probes(rule)) {
          const panel = editorAccepts(def, key, v);
          const runtime = checkNumber(v, rule).ok;
          if (panel !== runtime)
            wrong.push(`${key} = ${JSON.stringify(v)}: panel ${panel ? "accepts" : "refuses"}, runtime ${runtime ? "accepts" : "refuses"}`);
        }
        // A blank field takes the default in the runtime; a panel may ask for a value instead.
        if (editorAccepts(def, key, "")) assert.ok(checkNumber("", rule).ok);
      }
      assert.deepEqual(wrong, []);
    });
  }

  it("the editor gets each table as Node-RED names a node's settings: <type in camel case>Ranges", () => {
    assert.deepEqual(Object.keys(rangesSetting("pulse-shaper")), ["pulseShaperRanges"]);
    assert.deepEqual(Object.keys(rangesSetting("sqi-event-bus")), ["sqiEventBusRanges"]);
    assert.equal(rangesSetting("event-filter").eventFilterRanges!.value.maxLate!.max, 3_600_000);
  });
});
