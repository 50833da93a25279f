// Debian's chromium for the browser tests, driven by playwright-core with the flags this
// project uses and a fresh profile directory; never a downloaded browser. Under .ci/run
// (SQI_CI=1) a missing chromium is a failure; elsewhere the tests skip, saying so loudly.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumInstalled = fs.existsSync(CHROMIUM);
if (!chromiumInstalled && process.env.SQI_CI)
  throw new Error(`chromium is missing under .ci/run (${CHROMIUM}): it must install it (apt-get install -y chromium)`);
if (!chromiumInstalled) process.stderr.write("\n!!! Browser tests SKIPPED: chromium is not installed. Install it with: sudo apt-get install -y chromium\n\n");

/** The `skip` option for a describe of browser tests. */
export const skipWithoutChromium: false | string = chromiumInstalled ? false : "chromium is not installed (sudo apt-get install -y chromium)";

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
