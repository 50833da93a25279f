// The .dc schema in a JSON editor, as VS Code's own JSON language service sees it: a .dc file
// that names the schema by its $id gets hover text, completion whose inserted values the
// schema accepts, and the schema's plain-words diagnostics at the right place.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { getLanguageService, TextDocument, type CompletionItem, type JSONDocument } from "vscode-json-languageservice";
import { parseContainerText, validateContainer } from "../../lib/container/format";
import { schemasDir } from "../../lib/paths";

const schemaText = fs.readFileSync(path.join(schemasDir, "dc-container.schema.json"), "utf8");
const schema = JSON.parse(schemaText) as { $id: string; examples: unknown[] };
const requested: string[] = [];
// No network: the schema's $id is answered from the file in this package, as the raw URL would be.
const service = getLanguageService({
  schemaRequestService: async (uri) => {
    requested.push(uri);
    if (uri === schema.$id) return schemaText;
    throw new Error(`unexpected schema request ${uri}`);
  },
});

function open(text: string): { doc: TextDocument; json: JSONDocument } {
  const doc = TextDocument.create("file:///work/star.dc", "json", 1, text);
  return { doc, json: service.parseJSONDocument(doc) };
}

/** A completion's insert text with its snippet placeholders filled by their defaults, parsed. */
function inserted(item: CompletionItem): unknown {
  const text = (item.insertText ?? item.label)
    .replace(/\$\{\d+:([^}]*)\}/g, "$1")
    .replace(/(?<!\\)\$\d+/g, "")
    .replace(/\\([$}\\])/g, "$1"); // snippet escapes
  return JSON.parse(`{${text}}`);
}

describe(".dc schema in a JSON editor (vscode-json-languageservice)", () => {
  const header = `{\n  "$schema": "${schema.$id}",\n`;

  it("its $id is the raw file in the repository, and a .dc file that names it with $schema gets it", async () => {
    assert.equal(schema.$id, "https://raw.githubusercontent.com/sqi/node-red-pulse/main/schemas/dc-container.schema.json");
    const { doc, json } = open(`${header}  "container_id": "x",\n  "glyphs": [{ "tick": 1, "event": "a" }]\n}`);
    assert.deepEqual(await service.doValidation(doc, json), []);
    assert.ok(requested.includes(schema.$id), "the editor fetched the schema by its $id");
    assert.equal(validateContainer(schema.examples[0]).ok, true, "the schema's example is a valid container");
  });

  it("hover shows a property's description", async () => {
    const text = `${header}  "container_id": "x",\n  "glyphs": [{ "tick": 1, "event": "a" }]\n}`;
    const { doc, json } = open(text);
    const hover = await service.doHover(doc, doc.positionAt(text.indexOf('"tick"') + 2), json);
    const contents = JSON.stringify(hover?.contents);
    assert.match(contents, /The tick this glyph fires on: 1, 2, 3/);
  });

  it("completion offers every property, and every value it inserts is one the schema accepts", async () => {
    const base = { container_id: "x", glyphs: [{ tick: 1, event: "a" }] } as Record<string, unknown>;
    // At the top level of an empty container.
    const top = `${header}  \n}`;
    const { doc, json } = open(top);
    const items = (await service.doComplete(doc, doc.positionAt(top.lastIndexOf("\n}")), json))!.items;
    const labels = items.map((i) => i.label);
    for (const p of ["container_id", "glyphs", "loop", "metadata", "tick_interval_ms"]) assert.ok(labels.includes(p), `${p} offered (${labels.join(", ")})`);
    for (const item of items.filter((i) => i.label !== "$schema")) {
      const value = inserted(item) as Record<string, unknown>;
      const r = validateContainer({ ...base, ...value });
      assert.ok(r.ok, `completing ${item.label} inserts ${JSON.stringify(value)}, which the schema refuses: ${JSON.stringify(!r.ok && r.problems)}`);
    }
    // Inside a new glyph.
    const inGlyph = `${header}  "container_id": "x",\n  "glyphs": [{  }]\n}`;
    const g = open(inGlyph);
    const glyphItems = (await service.doComplete(g.doc, g.doc.positionAt(inGlyph.indexOf("{  }") + 2), g.json))!.items;
    assert.deepEqual(glyphItems.map((i) => i.label).sort(), ["event", "payload", "tick"]);
    const glyph = Object.assign({}, ...glyphItems.map((i) => inserted(i))) as Record<string, unknown>;
    assert.deepEqual(glyph, { tick: 1, event: "proton_collision", payload: {} });
    assert.ok(validateContainer({ container_id: "x", glyphs: [glyph] }).ok, "a glyph completed from the defaults is valid");
  });

  it("a problem is a diagnostic in the schema's own words, at the line and column sqi-dc validate gives", async () => {
    const text = `${header}  "container_id": "x",\n  "glyphs": [{ "tick": 1, "event": "a" }],\n  "loop": "no"\n}`;
    const { doc, json } = open(text);
    const diagnostics = await service.doValidation(doc, json);
    const cli = parseContainerText(text);
    assert.ok(!cli.ok);
    assert.deepEqual(
      diagnostics.map((d) => [d.message, d.range.start.line + 1, d.range.start.character + 1]),
      cli.problems.map((p) => [p.message, p.line, p.column]),
    );
    assert.deepEqual(
      cli.problems.map((p) => [p.message, p.line, p.column]),
      [["must be true or false", 5, 11]],
    );
  });
});
