// Script injection into the editor: every string that a flow, a container, a listener or the
// runtime puts in front of the user holds HTML that would run script if it were rendered as
// HTML (node names, a container_id, event names, a file name in an error text, a listener's
// name, a tab's name, a bus's name). The test clicks every dc-container button (the
// notification that once ran it), opens the SQI scope (shapers, listeners), the debug sidebar,
// every node's panel, and hovers every port; no script may run, and no such element may exist.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { openBrowser, skipWithoutChromium, type Browser } from "../helpers/browser";
import { startDemo, type Demo } from "../helpers/demo";
import { SHAPER_DEFAULTS } from "../helpers/flows";
import { freePort, waitFor } from "../helpers/processes";

/** HTML that runs script when rendered: it records where it came from. */
const hostile = (where: string) => `<img src=x onerror="window.__sqiXss.push('${where}')"><b>${where}</b>`;

function flow(busPort: number): unknown[] {
  const container = {
    container_id: hostile("container_id"),
    glyphs: [
      { tick: 1, event: hostile("event"), payload: { note: hostile("payload") } },
      { tick: 2, event: "proton_collision", payload: {} },
    ],
    loop: true,
    tick_interval_ms: 200,
  };
  const shaper = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
    id,
    type: "pulse-shaper",
    z: "t",
    name,
    width: 5,
    ...SHAPER_DEFAULTS,
    rows: [{ event: hostile("row event"), shape: "pulse", width: "3" }],
    measureEvery: 1,
    x: 750,
    y: 100,
    wires: [[], ["dbg"]],
    ...extra,
  });
  const bus = (id: string, name: string) => ({
    id,
    type: "sqi-bus",
    name,
    transport: "ws",
    host: "127.0.0.1",
    port: String(busPort),
    path: "/",
    url: `ws://127.0.0.1:${busPort}/`,
    maxFrame: 1048576,
  });
  return [
    // (A tab's info is markdown, which Node-RED renders and sanitises itself: not this package's text.)
    { id: "t", type: "tab", label: hostile("tab") },
    bus("bus", hostile("bus")),
    // No name: the node's label, and the button's notification, are the container_id.
    {
      id: "inline",
      type: "dc-container",
      z: "t",
      name: "",
      source: "inline",
      json: JSON.stringify(container),
      autostart: true,
      startDelay: 0.5,
      lead: 50,
      accel: 1,
      x: 300,
      y: 100,
      wires: [["filter", "master", "local"]],
    },
    // A file that is not there: its error text names the file.
    {
      id: "missing",
      type: "dc-container",
      z: "t",
      name: hostile("node name"),
      source: "file",
      file: `${hostile("file")}.dc`,
      json: "",
      autostart: false,
      x: 300,
      y: 200,
      wires: [[]],
    },
    {
      id: "filter",
      type: "event-filter",
      z: "t",
      name: hostile("filter"),
      rules: [
        { event: hostile("rule"), condition: "" },
        { event: "*", condition: "" },
      ],
      checkall: "first",
      every: 1,
      maxLate: 0,
      outputs: 2,
      x: 550,
      y: 60,
      wires: [[], []],
    },
    shaper("local", hostile("shaper")),
    {
      id: "master",
      type: "sqi-event-bus",
      z: "t",
      name: hostile("master"),
      role: "broadcast",
      bus: "bus",
      statsEvery: 1,
      x: 550,
      y: 160,
      wires: [[], ["dbg"]],
    },
    {
      id: "listen",
      type: "sqi-event-bus",
      z: "t",
      name: hostile("listen node"),
      role: "listen",
      bus: "bus",
      listenerName: hostile("listener"),
      late: "fire",
      statsEvery: 1,
      x: 300,
      y: 300,
      wires: [["pishaper"], ["dbg"]],
    },
    shaper("pishaper", hostile("pi shaper"), { x: 550, y: 300 }),
    {
      id: "dbg",
      type: "debug",
      z: "t",
      name: hostile("debug"),
      active: true,
      tosidebar: true,
      console: false,
      complete: "true",
      targetType: "full",
      x: 950,
      y: 200,
      wires: [],
    },
  ];
}

describe("no string from a flow, a container, a listener or the runtime runs as script in the editor", { skip: skipWithoutChromium }, () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];

  before(async () => {
    const busPort = await freePort();
    demo = await startDemo({}, (userDir) => {
      const file = path.join(userDir, "hostile-flow.json");
      fs.writeFileSync(file, JSON.stringify(flow(busPort)));
      return { SQI_FLOW: file };
    });
    browser = await openBrowser();
    page = browser.page;
    await page.addInitScript("window.__sqiXss = [];");
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.locator("#red-ui-header-button-sidemenu").waitFor({ timeout: 60_000 });
    await page.locator("g.red-ui-flow-node-group").first().waitFor({ timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await demo?.cleanUp();
  });

  const ran = () => page.evaluate<string[]>("window.__sqiXss");
  const planted = () => page.evaluate<number>("document.querySelectorAll('img[src=\"x\"]').length");

  it("buttons, notifications, the SQI scope, the debug sidebar, every panel and every port label", async (t) => {
    // The dc-container buttons: the notification carries the container_id, the node's name, and an error text with the file name.
    const notes: string[] = [];
    for (const id of ["inline", "missing"]) {
      // What a click on the node's button runs (the long labels put the buttons off the canvas's view).
      await page.evaluate(`(function (n) { n._def.button.onclick.call(n); })(RED.nodes.node("${id}"))`);
      const note = page.locator(".red-ui-notification").last();
      await note.waitFor({ state: "visible", timeout: 10_000 });
      notes.push(((await note.textContent()) ?? "").trim());
      await page.waitForTimeout(300);
    }
    t.diagnostic(`notifications: ${notes.join(" | ")}`);
    assert.ok(
      notes.every((x) => x.includes("<img src=x")),
      `each notification shows the HTML as text: ${notes.join(" | ")}`,
    );
    // The SQI scope: shapers (labels and tab names) and the master's listeners (their names).
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-sqi-scope");
    const labels = await waitFor(
      "the shapers and the listener in the scope",
      async () => {
        const all = await page.locator(".sqi-scope .sqi-scope-label").allTextContents();
        return all.some((x) => x.includes("listener")) && all.filter((x) => x.includes("shaper")).length >= 2 ? all : undefined;
      },
      30_000,
      250,
    );
    t.diagnostic(`scope rows: ${labels.join(" | ")}`);
    // The debug sidebar: error texts and stats messages with these names in them.
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-debug").catch(() => undefined);
    await page.locator(".red-ui-debug-msg").first().waitFor({ timeout: 20_000 });
    // Every node's panel, opened and cancelled (what a double-click does; the long labels put
    // some nodes off the canvas's view); every port hovered for its label.
    for (const id of ["inline", "missing", "filter", "local", "master", "listen", "pishaper", "dbg"]) {
      await page.evaluate(`RED.editor.edit(RED.nodes.node(${JSON.stringify(id)}))`);
      await page.locator("#node-dialog-cancel").waitFor({ state: "visible", timeout: 10_000 });
      await page.waitForTimeout(300);
      await page.click("#node-dialog-cancel");
      await page
        .locator("#node-dialog-cancel")
        .waitFor({ state: "detached", timeout: 10_000 })
        .catch(() => undefined);
    }
    const ports = page.locator("g.red-ui-flow-port-output, g.red-ui-flow-port-input");
    for (let i = 0; i < (await ports.count()); i++) {
      await ports.nth(i).hover({ force: true });
      await page.waitForTimeout(150);
    }
    // The workspace tab's name is shown in its tab; its info in the info sidebar.
    await page.click("#red-ui-header-button-sidemenu");
    await page.hover("#menu-item-view-menu");
    await page.click("#menu-item-view-menu-info").catch(() => undefined);
    await page.waitForTimeout(1000);
    fs.mkdirSync(path.join(process.cwd(), "test-artifacts", "e2e"), { recursive: true });
    await page.screenshot({ path: path.join(process.cwd(), "test-artifacts", "e2e", "injection.png") });
    assert.deepEqual(await ran(), [], "no planted script ran");
    assert.equal(await planted(), 0, "no planted element is in the page");
    assert.deepEqual(dialogs, []);
  });
});
