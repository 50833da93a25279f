// The panels as a user meets them, in Debian's chromium driven by playwright-core, on the demo
// (npm start's flow on the simulated GPIO): the coil shaper lists its built-in shapes with what
// the pin gets for each, redrawn as the user types; the fire button sends one event to the
// pin; the dc-container draws its container; the event-filter counts per rule; and every flow
// and example in the repo opens and closes in the new panels without a change. Screenshots go
// to test-artifacts/e2e/ (git-ignored); docs/images/pulse-shaper-panel.png is one of them.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { packageRoot } from "../../lib/paths";
import { parsePinLog } from "../../scripts/gpio-sim";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { startDemo, type Demo } from "../helpers/demo";
import { waitFor } from "../helpers/processes";

const artifacts = path.join(packageRoot, "test-artifacts", "e2e");
const BUILT_INS = ["proton_collision", "atom_spin_flip", "waveform_emit", "time_dilation", "fusion_tick"];

// (runs in the page) the page's document and the editor's globals
type Doc = {
  document: {
    querySelector(s: string): { scrollWidth: number; clientWidth: number };
    documentElement: { style: { setProperty(k: string, v: string): void; removeProperty(k: string): void } };
  };
};
type Editor = {
  RED: {
    nodes: { node(id: string): Record<string, unknown> & { changed?: boolean }; eachNode(f: (n: Record<string, unknown>) => void): void };
    editor: { edit(n: unknown): void };
    view: { importNodes(nodes: unknown[], opts: Record<string, unknown>): void; redraw(full?: boolean): void };
  };
  $: (s: unknown) => {
    length: number;
    val(): string;
    text(): string;
    attr(k: string): string;
    each(f: (this: unknown, i: number) => void): void;
    find(s: string): ReturnType<Editor["$"]>;
    eq(i: number): ReturnType<Editor["$"]>;
    data(k: string): unknown;
    hasClass(c: string): boolean;
  };
};

describe("the panels show what the pin will get", { skip: skipWithoutChromium }, () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: path.join(artifacts, `${name}.png`) });

  /** Opens a node's edit tray by id and waits for it. */
  async function edit(id: string): Promise<void> {
    await page.evaluate((nodeId) => {
      const { RED } = globalThis as unknown as Editor;
      RED.editor.edit(RED.nodes.node(nodeId));
    }, id);
    await page.locator("#node-dialog-cancel").waitFor({ state: "visible", timeout: 10_000 });
  }
  async function close(button: "ok" | "cancel"): Promise<void> {
    await page.click(`#node-dialog-${button}`);
    await page.locator("#node-dialog-cancel").waitFor({ state: "detached", timeout: 10_000 });
  }
  /** Each row of the shaper's table: its event, badge, words and drawn pulses (x, width of each .sqi-pulse). */
  const rows = () =>
    page.evaluate(() => {
      const { $ } = globalThis as unknown as Editor;
      const out: Array<{ event: string; badge: string; text: string; pulses: number[][]; paths: number }> = [];
      $("#node-input-rows-container > li").each(function () {
        const li = $(this);
        const pulses: number[][] = [];
        li.find(".sqi-row-wave .sqi-pulse").each(function () {
          const r = $(this);
          pulses.push([Number(r.attr("x")), Number(r.attr("width"))]);
        });
        out.push({
          event: li.find(".row-event").val(),
          badge: li.find(".sqi-row-badge").text(),
          text: li.find(".sqi-row-text").text(),
          pulses,
          paths: li.find(".sqi-row-wave path.sqi-pin").length,
        });
      });
      return out;
    });
  const row = async (event: string) => (await rows()).find((r) => r.event === event)!;

  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    demo = await startDemo();
    browser = await openBrowser();
    page = browser.page;
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.locator(".red-ui-palette-node[data-palette-type='pulse-shaper']").waitFor({ timeout: 60_000 });
    await page.locator("g.red-ui-flow-node-group", { hasText: "coil pulses" }).first().waitFor({ timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await demo?.cleanUp();
  });

  it("the demo's coil shaper lists every built-in shape and other events, each drawn as the pin gets it", async () => {
    await edit("demo.coilShaper");
    await waitFor("every row drawn", async () => (await rows()).filter((r) => r.paths === 1).length === 6, 10_000, 100);
    const all = await rows();
    assert.deepEqual(
      all.map((r) => [r.event, r.badge]),
      [...BUILT_INS.map((e) => [e, "built-in"]), ["other events", "other events"]],
    );
    // The star core's payloads stand in for the event's: its 50 kHz burst is slowed at the pin.
    assert.equal((await row("waveform_emit")).text, "10 × 12 ms on / 3 ms off (67 Hz): 50 kHz slowed to 67 Hz by max edge rate 500/s + pin guard 1 ms");
    assert.equal((await row("waveform_emit")).pulses.length, 10, "ten pulses drawn");
    assert.equal((await row("proton_collision")).text, "1 pulse, 5 ms");
    const overflow = await page.evaluate(() => {
      const body = (globalThis as unknown as Doc).document.querySelector(".red-ui-tray-body");
      const tray = (globalThis as unknown as Doc).document.querySelector(".red-ui-tray");
      return { scroll: body.scrollWidth, client: body.clientWidth, tray: tray.clientWidth };
    });
    // Node-RED opens a tray at its content's natural width, at least 500 px. The rows ask for no
    // more than the form rows around them (the panel opened at 999 px while its inputs kept their width).
    assert.ok(overflow.tray <= 600, `the tray opens near the default width: ${overflow.tray} px`);
    assert.ok(overflow.scroll <= overflow.client, `no horizontal scrolling in the tray (${overflow.scroll} > ${overflow.client})`);
    await shot("p1-shaper-rows");
    fs.mkdirSync(path.join(artifacts, "readme"), { recursive: true });
    // The picture in the README: a tall window, so that every row shows.
    await page.setViewportSize({ width: 1400, height: 1800 });
    await page.waitForTimeout(500);
    await page.locator(".red-ui-tray").screenshot({ path: path.join(artifacts, "readme", "pulse-shaper-panel.png") });
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  it("a width over the max on-time is drawn cut, with the reason, and the node says it refuses it", async () => {
    const spin = page.locator("#node-input-rows-container > li").nth(1);
    await spin.locator(".row-width").fill("150");
    await waitFor("the cut drawn", async () => /cut to 99 ms/.test((await row("atom_spin_flip")).text), 10_000, 100);
    const r = await row("atom_spin_flip");
    assert.equal(r.text, "1 pulse, 99 ms: 1 pulse cut to 99 ms by max on-time 100 ms - pin guard 1 ms");
    assert.equal(r.badge, "built-in, edited");
    assert.ok(await spin.locator(".row-width.input-error").count(), "the field is marked");
    assert.match(
      (await page.locator(".sqi-shaper-problems").textContent()) ?? "",
      /atom_spin_flip\): width 150 ms is over the maximum on-time of 100 ms: the node refuses this/,
    );
    await spin.locator(".row-expand").click();
    await page.locator(".sqi-shaper-expanded svg").waitFor({ timeout: 5000 });
    const axis = await page.locator(".sqi-shaper-expanded svg text").allTextContents();
    assert.ok(axis.includes("0 ms") && axis.includes("100"), `a time axis in ms: ${axis.join(" ")}`);
    assert.ok(await page.locator(".sqi-shaper-expanded .sqi-cut").count(), "what the limit cut is drawn in its own colour");
    await page.locator(".sqi-shaper-expanded").scrollIntoViewIfNeeded();
    await shot("p2-width-over-max-on");
    // reset brings the built-in back
    await spin.locator(".row-reset").click();
    await waitFor("the built-in back", async () => (await row("atom_spin_flip")).text === "1 pulse, 50 ms", 10_000, 100);
    assert.equal((await row("atom_spin_flip")).badge, "built-in");
  });

  it("a lower max edge rate spaces the burst wider as the user types", async () => {
    const before = (await row("waveform_emit")).pulses;
    await page.fill("#node-input-maxRate", "100");
    await waitFor("redrawn", async () => /18 Hz/.test((await row("waveform_emit")).text), 10_000, 100);
    const r = await row("waveform_emit");
    assert.equal(r.text, "10 × 44 ms on / 11 ms off (18 Hz): 50 kHz slowed to 18 Hz by max edge rate 100/s + pin guard 1 ms");
    assert.equal(r.pulses.length, 10);
    // Drawn to the row's own length: the same ten pulses, each taking the same share of it.
    assert.ok(before.length === 10 && r.pulses[1]![0]! > r.pulses[0]![0]!, "ten pulses, in order");
    await page.locator("#node-input-rows-container > li").nth(2).locator(".row-expand").click();
    await page.locator(".sqi-shaper-expanded").scrollIntoViewIfNeeded();
    const axis = await page.locator(".sqi-shaper-expanded svg text").allTextContents();
    assert.ok(axis.includes("500"), `the axis reaches the burst's 550 ms: ${axis.join(" ")}`);
    await shot("p3-max-edge-rate-100");
    await close("cancel");
  });

  it("the theme's colours: the pin's trace follows the editor's link colour", async () => {
    await page.evaluate(() => (globalThis as unknown as Doc).document.documentElement.style.setProperty("--red-ui-text-color-link", "rgb(1, 2, 3)"));
    await edit("demo.coilShaper");
    await waitFor("drawn", async () => (await rows()).filter((r) => r.paths === 1).length === 6, 10_000, 100);
    const stroke = await page.locator("#node-input-rows-container path.sqi-pin").first().getAttribute("stroke");
    await close("cancel");
    await page.evaluate(() => (globalThis as unknown as Doc).document.documentElement.style.removeProperty("--red-ui-text-color-link"));
    assert.equal(stroke, "rgb(1, 2, 3)");
  });

  it("the fire button sends one event through the deployed node to the pin, and refuses while the node has undeployed changes", async () => {
    // Stop the container, so that only the button's event reaches the coil's pin.
    await page.evaluate(() => fetch("dc-container/demo.player/stop", { method: "POST" }).then((r) => r.status));
    await page.waitForTimeout(800);
    const pin18 = () => parsePinLog(fs.readFileSync(demo.pinLog, "utf8")).filter((r) => r.pin === 18 && r.event === undefined);
    const seen = pin18().length;
    const button = page.locator('[id="demo.coilShaper"] .red-ui-flow-node-button-button');
    await button.click();
    await page.locator(".red-ui-notification-success", { hasText: "fired one proton_collision" }).first().waitFor({ timeout: 10_000 });
    const after = await waitFor(
      "the pulse at GPIO 18",
      () => {
        const r = pin18().slice(seen);
        return r.length >= 2 ? r : undefined;
      },
      10_000,
      50,
    );
    await page.waitForTimeout(500);
    const edges = pin18().slice(seen);
    assert.deepEqual(
      edges.map((e) => e.value),
      [1, 0],
      "one pulse, nothing else",
    );
    const width = after[1]!.t - after[0]!.t;
    assert.ok(Math.abs(width - 5) <= 1, `its width at the pin is the row's 5 ms (+-1 ms, as the width test in editor.test): ${width.toFixed(3)} ms`);
    await shot("p4-fired");
    // With undeployed changes, Node-RED's own warning and nothing fired.
    await page.evaluate(() => {
      const { RED } = globalThis as unknown as Editor;
      RED.nodes.node("demo.coilShaper").changed = true;
      RED.view.redraw(true);
    });
    await button.click({ force: true });
    await page.locator(".red-ui-notification-warning").first().waitFor({ timeout: 5000 });
    await page.waitForTimeout(500);
    assert.equal(pin18().length - seen, 2, "nothing fired");
    await page.evaluate(() => {
      const { RED } = globalThis as unknown as Editor;
      RED.nodes.node("demo.coilShaper").changed = false;
      RED.view.redraw(true);
    });
  });

  it("the dc-container draws its container: one lane per event name, its length and rate; a broken one shows line:col", async () => {
    await edit("demo.player");
    await page.locator(".dc-glance svg.sqi-timeline").waitFor({ timeout: 10_000 });
    const summary = (await page.locator(".dc-glance-summary").textContent()) ?? "";
    assert.match(
      summary,
      /^synthetic_star_core: 5 events of 5 names over 5 ticks · \d[\d.]* (ms|s) per pass at \d+× \([\d.]+ ms a tick\), looping · \d+ clones?: [\d.]+k? events\/s in all$/,
    );
    const lanes = await page.locator(".dc-glance .sqi-lane-name").allTextContents();
    assert.deepEqual(
      lanes,
      BUILT_INS.map((e) => `${e} × 1`),
    );
    assert.equal(await page.locator(".dc-glance .sqi-tick-mark").count(), 5);
    await page.locator(".dc-glance").scrollIntoViewIfNeeded();
    await shot("p5-container-timeline");
    await page.selectOption("#node-input-source", "inline");
    await page.evaluate(() => {
      // The panel's own code editor (Node-RED's, Monaco or ace), as a user would type into it.
      const { RED } = globalThis as unknown as Editor;
      const code = (RED.nodes.node("demo.player") as unknown as { editor: { setValue(v: string, cursor: number): void } }).editor;
      code.setValue('{\n  "container_id": "x",\n  "glyphs": [{ "tick": 0, "event": "a" }]\n}', -1);
    });
    await waitFor("the problem shown", async () => /inline JSON:3:/.test((await page.locator(".dc-glance-problems").textContent()) ?? ""), 10_000, 100);
    assert.equal(await page.locator(".dc-glance-problems").textContent(), "inline JSON:3:24: must be a positive integer (glyphs[0].tick)");
    await shot("p6-container-problem");
    await close("cancel");
  });

  it("the event-filter shows what each rule passed on since the deploy", async () => {
    await page.evaluate(() => fetch("dc-container/demo.player/start", { method: "POST" }));
    await edit("demo.filter");
    await waitFor(
      "live counts",
      async () => (await page.locator("#node-input-rules-container .rule-count").allTextContents()).some((t) => /^[1-9]\d* passed$/.test(t)),
      15_000,
      200,
    );
    const counts = await page.locator("#node-input-rules-container .rule-count").allTextContents();
    assert.ok(
      counts.every((t) => /^\d+ passed$/.test(t)),
      counts.join(", "),
    );
    await page.locator("#node-input-rules-container .rule-event").first().fill("something_else");
    await waitFor("counts withdrawn after an edit", async () => (await page.locator(".rule-count").first().textContent()) === "deploy to count", 5000, 100);
    await shot("p7-filter-counts");
    await close("cancel");
  });

  it("every flow and example in the repo opens and closes in the new panels with its rows and settings unchanged", async () => {
    const files = [
      ...fs.readdirSync(path.join(packageRoot, "flows")).map((f) => path.join(packageRoot, "flows", f)),
      ...fs.readdirSync(path.join(packageRoot, "examples")).map((f) => path.join(packageRoot, "examples", f)),
    ].filter((f) => f.endsWith(".json"));
    let opened = 0;
    for (const file of files) {
      const flow = JSON.parse(fs.readFileSync(file, "utf8")) as Array<Record<string, unknown>>;
      const ids = await page.evaluate((nodes) => {
        const { RED } = globalThis as unknown as Editor;
        const before = new Set<string>();
        RED.nodes.eachNode((n) => before.add(String(n.id)));
        RED.view.importNodes(nodes, { generateIds: true, addFlow: true, touchImport: true });
        const added: string[] = [];
        RED.nodes.eachNode((n) => {
          if (
            !before.has(String(n.id)) &&
            ["pulse-shaper", "dc-container", "event-filter", "pulse-out", "sqi-event-bus", "sqi-sim-sensor"].includes(String(n.type))
          )
            added.push(String(n.id));
        });
        return added;
      }, flow);
      for (const id of ids) {
        // Each setting as [key, value, its default]; a flow from before a field existed has none.
        const snapshot = () =>
          page.evaluate((nodeId) => {
            const { RED } = globalThis as unknown as Editor;
            const n = RED.nodes.node(nodeId);
            const defaults = (n._def as { defaults: Record<string, { value: unknown }> }).defaults;
            return Object.keys(defaults).map((k) => [k, n[k] === undefined ? "(absent)" : n[k], defaults[k]!.value] as [string, unknown, unknown]);
          }, id);
        const was = await snapshot();
        await page.evaluate((nodeId) => {
          const { RED } = globalThis as unknown as Editor;
          RED.nodes.node(nodeId).changed = false;
        }, id);
        await edit(id);
        await page.waitForTimeout(400);
        // Every select shows the value that applies, defaults included (none is an empty dropdown).
        const empty = await page.evaluate(() => {
          const { $ } = globalThis as unknown as Editor;
          const out: string[] = [];
          $("#dialog-form select").each(function () {
            const el = $(this);
            if (!el.val()) out.push(el.attr("id") || el.attr("class"));
          });
          return out;
        });
        assert.deepEqual(empty, [], `${path.basename(file)}: ${id} has no empty select`);
        await close("ok");
        const now = await snapshot();
        const changed = await page.evaluate((nodeId) => (globalThis as unknown as Editor).RED.nodes.node(nodeId).changed === true, id);
        // A field the flow did not have is saved blank or as its default: what the runtime took for it before.
        const expected = was.map(([k, v, d], i) => [
          k,
          v === "(absent)" && (now[i]![1] === "" || JSON.stringify(now[i]![1]) === JSON.stringify(d)) ? now[i]![1] : v,
          d,
        ]);
        assert.deepEqual(now, expected, `${path.basename(file)}: ${id} saved as it was`);
        if (!was.some(([, v]) => v === "(absent)")) assert.equal(changed, false, `${path.basename(file)}: ${id} not marked changed`);
        opened++;
      }
    }
    assert.ok(opened >= 15, `opened ${opened} panels`);

    // The repo's flows have no rows of their own. A flow with some, saved by the old panel (an
    // other name first, a built-in edited, a second row for it, a number where the panel saves text):
    // the built-in's row moves up beside its built-in, and every event gets the same pulses.
    const rowsBefore = [
      { event: "laser", shape: "pulse", width: 7, count: "", frequency: "", duty: "" },
      { event: "waveform_emit", shape: "burst", width: "", count: "20", frequency: "", duty: "" },
      { event: "waveform_emit", shape: "pulse", width: "9", count: "", frequency: "", duty: "" },
    ];
    const [id] = await page.evaluate((rowsOld) => {
      const { RED } = globalThis as unknown as Editor;
      RED.view.importNodes(
        [
          { id: "old.tab", type: "tab", label: "old rows" },
          { id: "old.shaper", z: "old.tab", type: "pulse-shaper", width: 5, rows: rowsOld, x: 200, y: 100, wires: [[], []] },
        ],
        {
          generateIds: true,
          addFlow: false,
        },
      );
      const found: string[] = [];
      RED.nodes.eachNode((n) => {
        if (n.type === "pulse-shaper" && JSON.stringify(n.rows) === JSON.stringify(rowsOld)) found.push(String(n.id));
      });
      return found;
    }, rowsBefore);
    assert.ok(id, "the old flow imported");
    await edit(id);
    await waitFor("the rows drawn", async () => (await rows()).filter((r) => r.paths === 1).length >= 7, 10_000, 100).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await rows())} ${await page.locator(".sqi-shaper-problems").textContent()}`);
    });
    assert.equal((await row("waveform_emit")).badge, "built-in, edited", JSON.stringify(await rows()));
    assert.equal((await row("laser")).badge, "own row");
    await close("ok");
    const rowsAfter = await page.evaluate((nodeId) => (globalThis as unknown as Editor).RED.nodes.node(nodeId).rows, id);
    assert.deepEqual(rowsAfter, [
      { event: "waveform_emit", shape: "burst", width: "", count: "20", frequency: "", duty: "" },
      { event: "laser", shape: "pulse", width: "7", count: "", frequency: "", duty: "" },
      { event: "waveform_emit", shape: "pulse", width: "9", count: "", frequency: "", duty: "" },
    ]);
    // The same pulses for every event, before and after, from the runtime's own plan.
    const plan = (rowsNow: unknown) =>
      page.evaluate(
        (r) =>
          fetch("pulse-shaper/preview", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ config: { width: 5, rows: r }, sample: {} }),
          }).then((res) => res.json()),
        rowsNow,
      );
    assert.deepEqual(await plan(rowsAfter), await plan(rowsBefore));
    assert.deepEqual(errors, [], "no script error in the page");
  });
});
