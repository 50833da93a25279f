// What a newcomer sees: `npm start` (the demo flow as shipped), the editor, and the demo's
// pulse trains in the SQI scope within a minute. Chromium as in editor.test.ts.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { packageRoot } from "../../lib/paths";
import { startDemo, type Demo } from "../helpers/demo";
import { waitFor } from "../helpers/processes";

const CHROMIUM = "/usr/bin/chromium";
const installed = fs.existsSync(CHROMIUM);
if (!installed && process.env.SQI_CI) throw new Error(`chromium is missing under .ci/run (${CHROMIUM}): it must install it (apt-get install -y chromium)`);

describe("npm start, as a newcomer sees it", { skip: installed ? false : "chromium is not installed (sudo apt-get install -y chromium)" }, () => {
  let demo: Demo;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let started: number;

  before(async () => {
    started = Date.now();
    demo = await startDemo();
    profile = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close();
    await demo?.cleanUp();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
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
});
