// The editor as a person uses it, in Debian's chromium driven by playwright-core: Node-RED
// with this package on the simulated GPIO, an empty workspace; import an example through the
// menu and deploy; change a pulse width in the panel and see it at the pin; type a bad
// width and see it flagged; open the SQI scope and see traces. Screenshots go to
// test-artifacts/e2e/ (git-ignored). Under .ci/run (SQI_CI=1) a missing chromium fails;
// elsewhere these tests are skipped with a loud message saying how to install it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { packageRoot } from "../../lib/paths";
import { parsePinLog } from "../../scripts/gpio-sim";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { startDemo, widths, type Demo } from "../helpers/demo";
import { waitFor } from "../helpers/processes";

const artifacts = path.join(packageRoot, "test-artifacts", "e2e");

describe("the editor in a real browser", { skip: skipWithoutChromium }, () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: path.join(artifacts, `${name}.png`) });

  async function deploy(): Promise<number> {
    await page.click("#red-ui-header-button-deploy");
    await page.locator(".red-ui-notification-success", { hasText: "Successfully deployed" }).first().waitFor({ timeout: 20_000 });
    return Date.now();
  }

  async function openNode(label: string): Promise<void> {
    await page.locator("g.red-ui-flow-node-group", { hasText: label }).first().locator("rect.red-ui-flow-node").first().dblclick();
    await page.locator("#node-input-width").waitFor({ state: "visible", timeout: 10_000 });
  }

  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    // An empty workspace: the test imports what it needs, as a new user would.
    demo = await startDemo({}, (userDir) => {
      const empty = path.join(userDir, "empty-flow.json");
      fs.writeFileSync(empty, "[]");
      return { SQI_FLOW: empty };
    });
    browser = await openBrowser();
    page = browser.page;
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.locator("#red-ui-header-button-sidemenu").waitFor({ timeout: 60_000 });
    await page.locator(".red-ui-palette-node[data-palette-type='pulse-shaper']").waitFor({ timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await demo?.cleanUp();
  });

  it("(a) imports example 01 through Import > Examples > @sqi/node-red-pulse and deploys it without an error", async () => {
    await page.click("#red-ui-header-button-sidemenu");
    await page.click("#menu-item-import");
    await page.click("a[href='#red-ui-clipboard-dialog-import-tab-examples']");
    const dialog = page.locator(".red-ui-clipboard-dialog-tab-library");
    await dialog.locator(".red-ui-treeList-label", { hasText: "@sqi/node-red-pulse" }).first().click();
    await dialog.locator(".red-ui-treeList-label", { hasText: "01 - star core on one Pi" }).first().click();
    await shot("a1-import-dialog");
    await page.click("#red-ui-clipboard-dialog-ok");
    // The example is a flow of its own: it opens in a new tab.
    await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "star core on one Pi" }).first().click();
    await page.locator("g.red-ui-flow-node-group", { hasText: "coil pulses" }).first().waitFor({ timeout: 10_000 });
    await deploy();
    await page.waitForTimeout(1500);
    await shot("a2-deployed");
    assert.equal(await page.locator(".red-ui-notification-error").count(), 0, "no error notification");
    assert.deepEqual(errors, [], "no script error in the page");
    await waitFor(
      "pulses at the simulated coil pin",
      () => widths(parsePinLog(fs.existsSync(demo.pinLog) ? fs.readFileSync(demo.pinLog, "utf8") : ""), 18).length >= 5,
      20_000,
    );
  });

  it("(a2) the dc-container panel of a flow saved without the multiplexing fields shows their defaults, not empty dropdowns", async () => {
    // Example 01's container node has no spread, spreadOver or emission (flows made before them).
    await page.evaluate('RED.editor.edit(RED.nodes.filterNodes({ type: "dc-container" })[0])');
    await page.locator("#node-dialog-cancel").waitFor({ state: "visible", timeout: 10_000 });
    await page.waitForTimeout(300);
    const shown = await page.evaluate(() => {
      const $ = (globalThis as unknown as { $: (s: string) => { val(): unknown } }).$;
      return ["spread", "spreadOver", "emission"].map((k) => $(`#node-input-${k}`).val());
    });
    await page.click("#node-dialog-cancel");
    await page.locator("#node-dialog-cancel").waitFor({ state: "detached", timeout: 10_000 });
    assert.deepEqual(shown, ["even", "tick", "auto"]);
  });

  it("(b) a pulse width of 20 ms set in the panel is 20 ms at the pin (+-1 ms)", async (t) => {
    // The star core at 2x plays proton_collision (one pulse of the width) once per 1.25 s loop:
    // after the change, those pulses are 20 ms wide and recur every 1.25 s. (Not 12 ms: with the
    // 1 ms pin guard, the saturated waveform_emit burst is 12 ms on / 3 ms off.)
    const pulses = (since: number) => {
      const out: Array<{ rise: number; width: number }> = [];
      let rise: number | undefined;
      for (const r of parsePinLog(fs.readFileSync(demo.pinLog, "utf8"))) {
        if (r.pin !== 18 || r.event !== undefined || r.t < since) continue;
        if (r.value === 1) rise = r.t;
        else if (r.value === 0 && rise !== undefined) {
          out.push({ rise, width: r.t - rise });
          rise = undefined;
        }
      }
      return out;
    };
    const periodic20 = (ps: Array<{ rise: number; width: number }>) => {
      const twenty = ps.filter((p) => Math.abs(p.width - 20) <= 1.5);
      return twenty.filter((p, i) => i > 0 && Math.abs(((p.rise - twenty[i - 1]!.rise + 625) % 1250) - 625) < 5);
    };
    const start = Date.now() - 60_000;
    assert.equal(periodic20(pulses(start)).length, 0, "no recurring 20 ms pulses before the change");
    await openNode("coil pulses");
    await page.fill("#node-input-width", "20");
    await shot("b1-width-20");
    await page.click("#node-dialog-ok");
    const deployedAt = await deploy();
    const recurring = await waitFor(
      "five recurring 20 ms pulses at the pin",
      () => {
        const r = periodic20(pulses(deployedAt));
        return r.length >= 5 ? r : undefined;
      },
      30_000,
      250,
    );
    await shot("b2-deployed-20");
    const widths = recurring.map((p) => p.width).sort((a, b) => a - b);
    const median = widths[widths.length >> 1]!;
    t.diagnostic(`20 ms pulses at the pin: ${recurring.map((p) => p.width.toFixed(2)).join(", ")} ms, median ${median.toFixed(2)}`);
    // The median: one edge that rpi-gpio out's Python helper takes late (up to ~1 ms on these
    // shared cores; the shaper itself sends the width to within 0.2 ms) is its latency, not the width set.
    assert.ok(Math.abs(median - 20) <= 1, `20 ms pulses at the pin: ${recurring.map((p) => p.width.toFixed(2)).join(", ")}`);
    assert.ok(recurring.filter((p) => Math.abs(p.width - 20) > 1).length <= 1, "at most one of them more than 1 ms off");
  });

  it("(c) an invalid width is marked invalid in the panel, and the node is flagged", async () => {
    // The panel checks against the runtime's own table of ranges (lib/ranges.ts), as Node-RED exports it.
    const ranges = await page.evaluate(
      () => (globalThis as unknown as { RED: { settings: Record<string, Record<string, { max: number }> | undefined> } }).RED.settings.pulseShaperRanges,
    );
    assert.equal(ranges?.maxOn?.max, 60_000, "RED.settings.pulseShaperRanges reached the editor");
    assert.equal(
      await page.evaluate(() => typeof (globalThis as unknown as { SQI_PULSE?: { ranged?: unknown } }).SQI_PULSE?.ranged),
      "function",
      "the panels' shared validator (resources/sqi-ranges.js) loaded",
    );
    await openNode("coil pulses");
    await page.fill("#node-input-width", "-3");
    await page.locator("#node-input-width").blur();
    await page.waitForTimeout(300);
    assert.ok(await page.locator("#node-input-width.input-error").count(), "the width field is marked invalid");
    await shot("c1-invalid-width");
    await page.click("#node-dialog-ok");
    const node = page.locator("g.red-ui-flow-node-group", { hasText: "coil pulses" }).first();
    await page.waitForTimeout(300);
    // (runs in the page: the editor hides the triangle with a class, or with display: none)
    const flagged = await node
      .locator(".red-ui-flow-node-error")
      .evaluate(
        (el) =>
          !el.classList.contains("hide") &&
          (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(el).display !== "none",
      );
    await shot("c2-node-flagged");
    assert.ok(flagged, "the node shows the red invalid triangle");
    // put it right again, as a user would before the next deploy
    await openNode("coil pulses");
    await page.fill("#node-input-width", "12");
    await page.click("#node-dialog-ok");
    await page.waitForTimeout(300);
    assert.equal(
      await node
        .locator(".red-ui-flow-node-error")
        .evaluate(
          (el) =>
            el.classList.contains("hide") ||
            (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(el).display === "none",
        ),
      true,
      "valid again",
    );
  });

  it("(d) the SQI scope tab draws live pulse traces", async () => {
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-sqi-scope");
    const trace = page.locator(".sqi-scope-trace", { hasText: "coil pulses" });
    await trace.first().waitFor({ timeout: 15_000 });
    await waitFor(
      "a trace with pulses",
      async () => /[1-9][\d.]* p\/s/.test((await trace.first().locator(".sqi-scope-stats").textContent()) ?? ""),
      15_000,
      250,
    );
    const drawn = await trace
      .first()
      .locator("canvas")
      .evaluate((el) => {
        // (runs in the page) which pixel rows of the canvas hold anything drawn
        const c = el as unknown as {
          width: number;
          height: number;
          getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
        };
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        const rows = new Set<number>();
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) rows.add(Math.floor((i - 3) / 4 / c.width));
        return rows.size;
      });
    await shot("d1-sqi-scope");
    assert.ok(drawn > 10, `the trace spans ${drawn} pixel rows: high and low levels drawn`);
    assert.ok(await page.locator(".sqi-scope-trace", { hasText: "LED flashes" }).count(), "each shaper has its trace");
    // Watched only while shown: with another sidebar tab open, the editor stops asking (it asks every 3 s while shown).
    const watches: number[] = [];
    const onRequest = (r: { url(): string }) => {
      if (r.url().endsWith("/sqi-scope/watch")) watches.push(Date.now());
    };
    page.on("request", onRequest);
    try {
      await waitFor("a watch while the scope is shown", () => watches.length > 0, 5000, 100);
      await page.evaluate(() => (globalThis as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show("info"));
      const hiddenAt = Date.now();
      await new Promise((r) => setTimeout(r, 4000));
      assert.deepEqual(
        watches.filter((t) => t > hiddenAt + 200),
        [],
        "no watch while the info tab is shown",
      );
    } finally {
      page.off("request", onRequest);
    }
  });
  it("(e) every other bundled example imports through the menu and deploys without an error", async () => {
    const examples = fs
      .readdirSync(path.join(packageRoot, "examples"))
      .filter((f) => f.endsWith(".json") && !f.startsWith("01 "))
      .map((f) => f.replace(/\.json$/, ""));
    assert.ok(examples.length >= 6);
    for (const name of examples) {
      await page.click("#red-ui-header-button-sidemenu");
      await page.click("#menu-item-import");
      await page.click("a[href='#red-ui-clipboard-dialog-import-tab-examples']");
      const dialog = page.locator(".red-ui-clipboard-dialog-tab-library");
      const folder = dialog.locator(".red-ui-treeList-label", { hasText: "@sqi/node-red-pulse" }).first();
      const entry = dialog.locator(".red-ui-treeList-label", { hasText: name }).first();
      if (!(await entry.isVisible())) await folder.click();
      // The editor enables Import once the chosen example has loaded. A click while the folder
      // is still opening can miss (seen once in CI): choose it again until Import is enabled.
      const importButton = page.locator("#red-ui-clipboard-dialog-ok:enabled");
      for (let attempt = 0; attempt < 3 && !(await importButton.isVisible()); attempt++) {
        await entry.click();
        await importButton.waitFor({ timeout: 5000 }).catch(() => undefined);
      }
      await importButton.click();
      await deploy();
      await page.waitForTimeout(1000);
      assert.equal(await page.locator(".red-ui-notification-error").count(), 0, `${name}: no error notification`);
    }
    await shot("e1-all-examples");
    assert.deepEqual(errors, [], "no script error in the page");
  });
});
