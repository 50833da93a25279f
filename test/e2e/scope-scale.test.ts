// The master's view at 1,000 listeners, in the editor: a real Node-RED master (a broadcast
// sqi-event-bus) with 1,000 lightweight listeners (scripts/fleet.ts) reporting to it. The SQI
// scope shows one summary line and the worst 20 listeners, not 1,000 rows; the node's status
// stays one short line.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { packageRoot } from "../../lib/paths";
import { MAX_LISTED } from "../../lib/bus/roster";
import { STATUS_MAX_CHARS } from "../../lib/status-line";
import { wsBus } from "../../scripts/bare-master";
import { startCluster, type Cluster } from "../../scripts/cluster";
import { startFleet, type FleetHandle } from "../../scripts/fleet";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { waitFor } from "../helpers/processes";

const N = 1000;

describe("the SQI scope and the master's status at 1,000 listeners", { skip: skipWithoutChromium }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-scope-scale-"));
  let cluster: Cluster | undefined;
  let fleet: FleetHandle | undefined;
  let browser: Browser | undefined;

  before(async () => {
    const flow = [
      { id: "m", type: "tab", label: "master at scale" },
      { id: "m.bus", type: "sqi-bus", host: "127.0.0.1", port: "${SQI_BUS_PORT}", path: "/", url: "", tokenEnv: "SQI_TOKEN", maxFrame: 1048576 },
      { id: "m.broadcast", z: "m", type: "sqi-event-bus", name: "master", role: "broadcast", bus: "m.bus", statsEvery: 0, x: 200, y: 100, wires: [[], []] },
    ];
    fs.writeFileSync(path.join(dir, "flow.json"), JSON.stringify(flow));
    const basePort = 26000 + Math.floor(Math.random() * 1000);
    cluster = await startCluster({
      pis: 0,
      jitterMs: 0,
      clockOffsetMs: 0,
      dir,
      basePort,
      busPort: basePort + 50,
      token: "scale",
      masterFlow: path.join(dir, "flow.json"),
    });
    fleet = await startFleet({ bus: { ...wsBus(basePort + 50), token: "scale" }, listeners: N, processes: 4, offsetMs: 200, startSpreadMs: 3000 });
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await fleet?.stop();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("one summary line and the worst 20 listeners, not 1,000 rows; the status one short line", async (t) => {
    const page = browser!.page;
    await waitFor(`${N} listeners synced`, async () => (await fleet!.stats()).synced === N, 60_000, 250);
    await page.goto(`http://127.0.0.1:${cluster!.master.port}/`);
    await page.locator("#red-ui-header-button-sidemenu").waitFor({ timeout: 60_000 });
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-sqi-scope");
    const summary = page.locator(".sqi-scope-summary");
    // every listener reports within its first 2 s, then as the master paces it
    const text = await waitFor(
      "the summary of all 1,000",
      async () => {
        const x = (await summary.textContent()) ?? "";
        return x.startsWith(`${N} listeners · ${N} synced`) ? x : undefined;
      },
      60_000,
      250,
    );
    const rows = await page.locator(".sqi-scope-listeners .sqi-scope-trace").count();
    const status = (await page.locator(".red-ui-flow-node-status-label").allTextContents()).map((x) => x.trim()).filter(Boolean);
    fs.mkdirSync(path.join(packageRoot, "test-artifacts", "e2e"), { recursive: true });
    await page.screenshot({ path: path.join(packageRoot, "test-artifacts", "e2e", "scope-1000-listeners.png") });
    t.diagnostic(`summary: "${text}"; ${rows} rows; status: ${status.join(" | ")}`);
    assert.match(text, new RegExp(`the worst ${MAX_LISTED} below$`));
    assert.equal(rows, MAX_LISTED + 1, "the worst 20 and the sum of all, not 1,000 rows");
    assert.equal(status.length, 1);
    assert.match(status[0]!, new RegExp(`^:\\d+ · ${N} listeners`));
    assert.ok([...status[0]!].length <= STATUS_MAX_CHARS);
  });
});
