import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { MAX_CONTAINER_BYTES, formatProblems, loadContainerFile, parseContainerText, validateContainer, type LoadResult } from "../../lib/container/format";
import { JsonLocator, lineAndColumn, locateJsonSyntaxError } from "../../lib/container/json-position";
import { jsonPath } from "../../lib/schema";
import { Player } from "../../lib/container/player";
import { bundledContainersDir } from "../../lib/paths";
import { starCore } from "../helpers/containers";

function lines(r: LoadResult, source = "t.dc"): string[] {
  assert.equal(r.ok, false, "expected the container to be refused");
  return r.ok ? [] : formatProblems(source, r.problems);
}

const good = () =>
  structuredClone(starCore) as unknown as Record<string, unknown> & { glyphs: Array<Record<string, unknown>>; metadata: Record<string, unknown> };

describe(".dc format: valid containers", () => {
  it("accepts the seed's star core exactly as SPEC gives it, and the bundled file is that container", () => {
    const r = validateContainer(good());
    assert.equal(r.ok, true);
    const file = loadContainerFile(path.join(bundledContainersDir, "synthetic_star_core.dc"));
    assert.ok(file.ok);
    assert.deepEqual(file.container, starCore);
  });

  it("accepts every bundled container", () => {
    const names = fs.readdirSync(bundledContainersDir).filter((f) => f.endsWith(".dc"));
    assert.ok(names.length >= 3, "the star core plus at least two more");
    for (const n of names) assert.ok(loadContainerFile(path.join(bundledContainersDir, n)).ok, `${n} is valid`);
  });

  it("keeps unknown keys at every level", () => {
    const c = good();
    c.extra = { a: 1 };
    c.metadata.lab = "bench 3";
    c.glyphs[0]!.note = "first";
    const r = validateContainer(c);
    assert.ok(r.ok);
    assert.deepEqual((r.container as Record<string, unknown>).extra, { a: 1 });
    assert.equal(r.container.metadata?.lab, "bench 3");
    assert.equal(r.container.glyphs[0]!.note, "first");
  });

  it("allows glyphs to share a tick, a glyph without payload, and a numeric runtime_speed", () => {
    const r = validateContainer({
      container_id: "x",
      glyphs: [
        { tick: 2, event: "a" },
        { tick: 2, event: "b", payload: {} },
      ],
      metadata: { runtime_speed: 2.5 },
    });
    assert.equal(r.ok, true);
  });

  it("strips a UTF-8 byte order mark", () => {
    assert.equal(parseContainerText(`\ufeff${JSON.stringify(starCore)}`).ok, true);
  });
});

describe(".dc format: every rule, with its JSON path", () => {
  const cases: Array<[string, (c: ReturnType<typeof good>) => unknown, string[]]> = [
    ["a JSON array", () => [1, 2], ["t.dc: (root): must be a JSON object with container_id and glyphs"]],
    ["missing container_id", (c) => (delete c.container_id, c), ["t.dc: container_id: is missing (it must be a non-empty string)"]],
    ["empty container_id", (c) => ((c.container_id = "  "), c), ["t.dc: container_id: must be a non-empty string"]],
    ["glyphs not an array", (c) => ((c.glyphs = {} as never), c), ["t.dc: glyphs: must be a non-empty array of glyphs"]],
    ["glyphs empty", (c) => ((c.glyphs = []), c), ["t.dc: glyphs: must be a non-empty array of glyphs"]],
    ["tick 0", (c) => ((c.glyphs[2]!.tick = 0), c), ["t.dc: glyphs[2].tick: must be a positive integer"]],
    ["tick negative", (c) => ((c.glyphs[2]!.tick = -3), c), ["t.dc: glyphs[2].tick: must be a positive integer"]],
    ["tick fractional", (c) => ((c.glyphs[2]!.tick = 1.5), c), ["t.dc: glyphs[2].tick: must be a positive integer"]],
    ["tick a string", (c) => ((c.glyphs[2]!.tick = "3"), c), ["t.dc: glyphs[2].tick: must be a positive integer"]],
    ["tick missing", (c) => (delete c.glyphs[1]!.tick, c), ["t.dc: glyphs[1].tick: is missing (it must be a positive integer)"]],
    ["empty event", (c) => ((c.glyphs[0]!.event = ""), c), ["t.dc: glyphs[0].event: must be a non-empty string"]],
    ["blank event", (c) => ((c.glyphs[0]!.event = "   "), c), ["t.dc: glyphs[0].event: must be a non-empty string"]],
    ["payload not an object", (c) => ((c.glyphs[4]!.payload = [1]), c), ["t.dc: glyphs[4].payload: must be a JSON object"]],
    ["a glyph not an object", (c) => ((c.glyphs[3] = "tick" as never), c), ["t.dc: glyphs[3]: must be an object with tick and event"]],
    ["loop not a boolean", (c) => ((c.loop = "yes"), c), ["t.dc: loop: must be true or false"]],
    [
      "tick_interval_ms 0",
      (c) => ((c.tick_interval_ms = 0), c),
      ["t.dc: tick_interval_ms: must be a positive number of milliseconds, at most 86400000 (one day)"],
    ],
    [
      "tick_interval_ms negative",
      (c) => ((c.tick_interval_ms = -5), c),
      ["t.dc: tick_interval_ms: must be a positive number of milliseconds, at most 86400000 (one day)"],
    ],
    [
      "tick_interval_ms over a day",
      (c) => ((c.tick_interval_ms = 86_400_001), c),
      ["t.dc: tick_interval_ms: must be a positive number of milliseconds, at most 86400000 (one day)"],
    ],
    ["metadata not an object", (c) => ((c.metadata = "x" as never), c), ["t.dc: metadata: must be a JSON object"]],
    [
      "runtime_speed unknown",
      (c) => ((c.metadata.runtime_speed = "warp"), c),
      ['t.dc: metadata.runtime_speed: must be "realtime", "accelerated" or a positive number up to 1000000'],
    ],
    [
      "runtime_speed 0",
      (c) => ((c.metadata.runtime_speed = 0), c),
      ['t.dc: metadata.runtime_speed: must be "realtime", "accelerated" or a positive number up to 1000000'],
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    it(`refuses ${name}`, () => assert.deepEqual(lines(validateContainer(mutate(good()))), expected));
  }

  it("lists every problem at once, not only the first", () => {
    const c = good();
    c.glyphs[0]!.tick = 0;
    c.glyphs[3]!.event = "";
    c.loop = 1;
    delete c.container_id;
    assert.deepEqual(lines(validateContainer(c)), [
      "t.dc: container_id: is missing (it must be a non-empty string)",
      "t.dc: glyphs[0].tick: must be a positive integer",
      "t.dc: glyphs[3].event: must be a non-empty string",
      "t.dc: loop: must be true or false",
    ]);
  });

  it("summarises beyond 50 problems instead of flooding the log", () => {
    const c = good();
    c.glyphs = Array.from({ length: 500 }, () => ({ tick: 0, event: "x" }));
    const out = lines(validateContainer(c));
    assert.equal(out.length, 51);
    assert.equal(out[50], "t.dc: and 450 more problems");
  });

  it("writes JSON paths the way a reader types them", () => {
    assert.equal(jsonPath(""), "(root)");
    assert.equal(jsonPath("/glyphs/12/payload"), "glyphs[12].payload");
    assert.equal(jsonPath("/metadata/odd key"), 'metadata["odd key"]');
    assert.equal(jsonPath("/a~1b"), '["a/b"]');
  });
});

describe(".dc format: text and files", () => {
  it("gives line and column for JSON syntax errors", () => {
    assert.deepEqual(lines(parseContainerText('{\n  "container_id": "x",\n  "glyphs": [1,]\n}')), [
      "t.dc: line 3, column 16: not valid JSON: a comma before ] is not allowed",
    ]);
    assert.deepEqual(lines(parseContainerText('{\n "a": tru\n}')), ["t.dc: line 2, column 10: not valid JSON: expected true, unexpected line break"]);
    assert.deepEqual(lines(parseContainerText('{"a": 1')), ["t.dc: line 1, column 8: not valid JSON: expected ',' or '}' after a property value"]);
    assert.deepEqual(lines(parseContainerText("{'a': 1}")), [`t.dc: line 1, column 2: not valid JSON: expected a "quoted" property name, found "'"`]);
  });

  it("finds the same error position V8 reports, where V8 reports one", () => {
    for (const text of ['{"a":1,}', '{"a" 1}', "[1,2", '"x" y', '{"a":"\\q"}']) {
      const v8 = (() => {
        try {
          JSON.parse(text);
        } catch (e) {
          return /at position (\d+)/.exec((e as Error).message)?.[1];
        }
        return undefined;
      })();
      const ours = locateJsonSyntaxError(text);
      assert.ok(ours, `found an error in ${text}`);
      if (v8 !== undefined) assert.equal(ours.offset, Number(v8), text);
    }
    assert.equal(locateJsonSyntaxError(JSON.stringify(starCore)), null, "valid JSON has no error");
    assert.deepEqual(lineAndColumn("ab\ncd", 4), { line: 2, column: 2 });
  });

  it("a broken text nested a million levels deep is refused at the depth limit, not with a stack overflow", () => {
    for (const text of ["[".repeat(1_000_000), '{"a":'.repeat(200_000)]) {
      const r = parseContainerText(text);
      assert.equal(r.ok, false);
      assert.match(lines(r)[0]!, /^t\.dc: line 1, column \d+: not valid JSON: nested deeper than 32 levels$/);
    }
  });

  it("gives every schema problem the line and column where its value starts", () => {
    const text =
      '{\n  "container_id": "x",\n  "glyphs": [\n    { "tick": 1, "event": "a", "payload": { "s": "}]\\"{[", "n": [1, {"x": 2}] } },\n    { "tick": -3, "event": "b" }\n  ]\n}';
    const r = parseContainerText(text);
    assert.ok(!r.ok);
    assert.deepEqual(
      r.problems.map((p) => [p.path, p.line, p.column]),
      [["glyphs[1].tick", 5, 15]],
    );
    assert.equal(new JsonLocator(text).offsetOf(["glyphs", "0", "payload", "n", "1", "x"]), text.indexOf("2}]"));
    assert.equal(new JsonLocator(text).offsetOf(["glyphs", "7", "tick"]), text.indexOf("["), "a step that is not there: its nearest ancestor");
    // One locator, many paths, in any order: what it remembers of a walked array is right.
    const big = JSON.stringify({ glyphs: Array.from({ length: 100 }, (_, i) => ({ tick: i, event: `e${i}`, payload: { s: ']}\\"{' } })) }, null, 1);
    const locator = new JsonLocator(big);
    for (const i of [57, 3, 99, 58, 0, 57]) {
      assert.equal(locator.offsetOf(["glyphs", String(i), "event"]), big.indexOf(`"e${i}"`), `glyphs[${i}].event`);
    }
    assert.equal(locator.offsetOf(["glyphs", "100"]), big.indexOf("["), "past the end: the array itself");
    const missing = parseContainerText("[1]\n");
    assert.ok(!missing.ok);
    assert.deepEqual([missing.problems[0]!.line, missing.problems[0]!.column], [1, 1]);
  });

  it("refuses an empty text or file", () => {
    assert.deepEqual(lines(parseContainerText(" \n ")), ["t.dc: is empty: a container is a JSON object with container_id and glyphs"]);
  });

  it("refuses text over the 5 MiB limit before parsing it", () => {
    const big = `{"container_id":"x","glyphs":[],"pad":"${"x".repeat(MAX_CONTAINER_BYTES)}"}`;
    assert.deepEqual(lines(parseContainerText(big)), ["t.dc: is 5.0 MiB, over the 5 MiB limit for .dc containers"]);
  });

  it("names a missing file, a directory and an oversized file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dc-"));
    try {
      assert.deepEqual(lines(loadContainerFile(path.join(dir, "nope.dc"))), ["t.dc: file not found"]);
      assert.deepEqual(lines(loadContainerFile(dir)), ["t.dc: is a directory, not a .dc file"]);
      const big = path.join(dir, "big.dc");
      fs.writeFileSync(big, Buffer.alloc(MAX_CONTAINER_BYTES + 1024 * 1024, 0x20));
      assert.deepEqual(lines(loadContainerFile(big)), ["t.dc: is 6.0 MiB, over the 5 MiB limit for .dc containers"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loads a 100,000-glyph container and starts playing it", () => {
    const glyphs = Array.from({ length: 100_000 }, (_, i) => ({ tick: (i % 1000) + 1, event: `g${i}` }));
    const text = JSON.stringify({ container_id: "huge", glyphs, loop: true, tick_interval_ms: 10 });
    assert.ok(text.length < MAX_CONTAINER_BYTES);
    const r = parseContainerText(text);
    assert.ok(r.ok, "a large valid container is accepted");
    const clock = new VirtualClock(0);
    const seen: string[] = [];
    const player = new Player({ clock, leadMs: 0, onGlyph: (g) => seen.push(g.event) });
    player.load(r.container);
    player.start();
    assert.equal(seen.length, 100, "tick 1's 100 glyphs are sent at once");
    assert.deepEqual(seen.slice(0, 3), ["g0", "g1000", "g2000"], "in file order");
    clock.advance(10 * 1000 - 1);
    assert.equal(seen.length, 100_000, "one pass sends every glyph");
    player.dispose();
  });
});
