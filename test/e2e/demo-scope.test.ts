// What a newcomer sees: `npm start` (the demo flow as shipped), the editor, and the demo's
// pulse trains in the SQI scope within a minute.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { packageRoot } from "../../lib/paths";
import { STATUS_MAX_CHARS } from "../../lib/status-line";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { startDemo, type Demo } from "../helpers/demo";
import { waitFor } from "../helpers/processes";

describe("npm start, as a newcomer sees it", { skip: skipWithoutChromium }, () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  let started: number;

  before(async () => {
    started = Date.now();
    demo = await startDemo();
    browser = await openBrowser();
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
    await demo?.cleanUp();
  });

  it("the demo's pulse trains are in the SQI scope within a minute of npm start", async (t) => {
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.locator("#red-ui-header-button-sidemenu").waitFor({ timeout: 60_000 });
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-sqi-scope");
    const rows = page.locator(".sqi-scope-trace .sqi-scope-stats");
    await waitFor("a trace with pulses", async () => (await rows.allTextContents()).some((x) => /^[1-9][\d.]* p\/s/.test(x)), 60_000, 250);
    const seconds = (Date.now() - started) / 1000;
    fs.mkdirSync(path.join(packageRoot, "test-artifacts", "e2e"), { recursive: true });
    await page.screenshot({ path: path.join(packageRoot, "test-artifacts", "e2e", "demo-sqi-scope.png") });
    t.diagnostic(`pulse trains in the scope ${seconds.toFixed(1)} s after npm start: ${(await rows.allTextContents()).join(" | ")}`);
    assert.ok(seconds < 60, `within a minute: ${seconds.toFixed(1)} s`);
    assert.ok((await page.locator(".sqi-scope-trace").count()) >= 2, "the demo's coil and LED shapers both have a trace");
  });

  it("every status under the demo's nodes fits under its node (about 40 characters), so none overlaps its neighbours", async (t) => {
    const labels = page.locator(".red-ui-flow-node-status-label");
    await waitFor("the nodes' statuses", async () => (await labels.allTextContents()).filter((x) => x.trim()).length >= 4, 30_000, 250);
    // A few rounds: the statuses change as the demo plays.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      for (const x of await labels.allTextContents()) if (x.trim()) seen.add(x.trim());
      await new Promise((r) => setTimeout(r, 500));
    }
    t.diagnostic(`statuses seen: ${[...seen].join(" | ")}`);
    const tooLong = [...seen].filter((x) => [...x].length > STATUS_MAX_CHARS);
    assert.deepEqual(tooLong, [], `at most ${STATUS_MAX_CHARS} characters`);
  });
});
