// Measured power in the editor: a master and three Pis over WebSocket (the role flows, as
// `npm run cluster -- --pis 3` runs them, with the SIMULATED sensor). The master's SQI scope
// shows each Pi's measured power next to the shapers' estimate and their ratio, and the sum
// over all three; the sum of energy drawn is then checked against the pin logs within 2 %.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { checkSumAgainstPins, startPowerCluster, type PowerCluster } from "../helpers/power";
import { waitFor } from "../helpers/processes";

const MEASURED = /^measured \d+(\.\d)? W · estimated \d+(\.\d)? W · measured\/estimated \d\.\d\d · \d+(\.\d)? J drawn$/;

describe("measured power in the master's SQI scope", { skip: skipWithoutChromium }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-power-scope-"));
  let p: PowerCluster | undefined;
  let browser: Browser | undefined;

  before(async () => {
    p = await startPowerCluster(dir, false);
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await p?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("each Pi's measured power beside the estimate and the ratio, and the sum of all three", async (t) => {
    const page = browser!.page;
    await page.goto(`http://127.0.0.1:${p!.cluster.master.port}/`);
    await page.locator("#red-ui-header-button-sidemenu").waitFor({ timeout: 60_000 });
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-sqi-scope");
    // Reports come every 2 s: the estimate and the measured power need two of them.
    const texts = await waitFor(
      "three Pis' measured power next to the estimate",
      async () => {
        const rows = page.locator(".sqi-scope-listeners .sqi-scope-trace[data-key^='l:'] .sqi-scope-power");
        const all = (await rows.allTextContents()).map((x) => x.trim());
        return all.length === 3 && all.every((x) => MEASURED.test(x) && !x.startsWith("measured 0.0 W")) ? all : undefined;
      },
      60_000,
      250,
    );
    const sum = (await page.locator(".sqi-scope-trace[data-key='power'] .sqi-scope-power").textContent())?.trim() ?? "";
    const title = (await page.locator(".sqi-scope-trace[data-key='power'] .sqi-scope-label").textContent()) ?? "";
    const summary = (await page.locator(".sqi-scope-summary").textContent()) ?? "";
    fs.mkdirSync(path.join(packageRoot, "test-artifacts", "e2e"), { recursive: true });
    await page.screenshot({ path: path.join(packageRoot, "test-artifacts", "e2e", "scope-measured-power.png") });
    t.diagnostic(`rows: ${texts.join(" | ")}; sum: "${sum}" (${title}); summary: "${summary}"`);
    assert.match(sum, /^measured \d+(\.\d)? W · (estimated \d+(\.\d)? W · )?measured\/estimated \d\.\d\d · \d+(\.\d)? J drawn$/);
    assert.equal(title, "power drawn, all 3 Pis");
    assert.match(summary, /^3 listeners · 3 synced.* · \d+(\.\d)? W measured/);
    // Each Pi's trace is drawn: the measured line leaves pixels on its canvas. A line needs two
    // reports; the text above needs one, so the traces may follow it by a report interval (2 s).
    const ink = () =>
      page.locator(".sqi-scope-power-trace").evaluateAll((els) =>
        els.map((el) => {
          // (runs in the page) how many pixels inside the canvas's border hold anything drawn
          const c = el as unknown as {
            width: number;
            height: number;
            getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
          };
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let y = 2; y < c.height - 2; y++) for (let x = 2; x < c.width - 2; x++) if (d[(y * c.width + x) * 4 + 3]! > 0) n++;
          return n;
        }),
      );
    let inked: number[] = [];
    await waitFor(
      "every power trace drawn",
      async () => {
        inked = await ink();
        return inked.length === 4 && inked.every((n) => n > 50);
      },
      10_000,
      250,
    ).catch(() => undefined);
    assert.equal(inked.length, 4, "three Pis and the sum");
    assert.ok(
      inked.every((n) => n > 50),
      `every power trace is drawn within two report intervals: ${inked.join(", ")} pixels`,
    );

    // Over WebSocket, the master's sum against the pin logs (over MQTT: test/system/power.test.ts).
    const r = await checkSumAgainstPins(p!, 6000);
    t.diagnostic(
      `WebSocket: measured ${r.measured_j} J, pin logs ${r.expected_j.toFixed(4)} J (${(((r.measured_j - r.expected_j) / r.expected_j) * 100).toFixed(2)} %), estimated ${r.estimated_j} J, ratio ${r.ratio} (over the run, once the helpers ran: ${r.windowRatio.toFixed(3)}); on-time at the pins ${r.onMs.map((x) => x.toFixed(1)).join(" + ")} ms, as the shapers handed it on ${r.shaperOnMs.toFixed(1)} ms`,
    );
  });
});
