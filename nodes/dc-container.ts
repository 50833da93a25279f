// dc-container: the Node-RED shell around the .dc loader and player in lib/container.
// It reads the config panel, turns input messages into player commands, turns played
// glyphs into messages, and reports through status and node.error. No timing lives here.

import * as path from "node:path";
import type { TimerHandle } from "../lib/clock";
import { parseCloneSettings } from "../lib/container/clones";
import { parseCommand, type Command } from "../lib/container/commands";
import { formatProblems, loadContainerFile, parseContainerText, validateContainer, type Container, type LoadResult } from "../lib/container/format";
import { MAX_EACH_EVENTS, Player, type PlayedGlyph } from "../lib/container/player";
import { glance } from "../lib/container/glance";
import { bundledContainers, containerCandidates, resolveContainerPath } from "../lib/container/source";
import { checkNumber } from "../lib/numbers";
import { fromGlyph } from "../lib/sqi";
import { clip, statusText, type StatusLine } from "../lib/status-line";
import { DEFAULT_START_DELAY_S, PANEL_RANGES } from "../lib/ranges";
import type { Node, NodeDef, NodeMessage, RED } from "./red";
import { clockOf, rangesSetting, RateMeter, refuseInputs, STATUS_EVERY_MS, StatusTicker, ThrottledErrors } from "./shell";

/** Where a loaded container came from, so that `reload` can read it again. */
type Source = { kind: "file"; file: string } | { kind: "inline"; text: string } | { kind: "object"; value: object };

interface Loaded {
  container: Container;
  label: string;
}

/** Long enough for the GPIO helpers of rpi-gpio out nodes deployed with it to start (edges sent before that come out of their pipe at once). */

module.exports = function (RED: RED) {
  const RANGES = PANEL_RANGES["dc-container"];
  const clock = clockOf(RED);
  function DcContainerNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const baseDir = RED.settings.userDir ?? process.cwd();

    const lead = checkNumber(def.lead, RANGES.lead);
    const accel = checkNumber(def.accel, RANGES.accel);
    // Like inject's "once after 0.1 s": GPIO helpers spawned on deploy need a moment before
    // they read their first level, or the first pulse is squashed in their input pipe.
    const startDelay = checkNumber(def.startDelay, RANGES.startDelay);
    const configured: Source =
      def.source === "inline" ? { kind: "inline", text: String(def.json ?? "") } : { kind: "file", file: String(def.file ?? "").trim() };

    let loaded: Loaded | undefined;
    let source: Source = configured;
    let lastError: string | undefined;
    let autostartTimer: TimerHandle | undefined;
    const rateMeter = new RateMeter(clock);
    let rate = 0;

    const clones = parseCloneSettings(def);
    const configErrors = [...[lead, accel, startDelay].flatMap((c) => (c.ok ? [] : [c.error])), ...(clones.ok ? [] : clones.errors)];
    if (configErrors.length) return refuseInputs(node, clock, "", configErrors);

    const player = new Player({
      clock,
      leadMs: lead.ok ? lead.value : RANGES.lead.default,
      accelFactor: accel.ok ? accel.value : RANGES.accel.default,
      onGlyph: (g) => node.send(toMessage(g)),
      onStateChange: () => status.now(),
      ...(clones.ok ? { clones: clones.settings } : {}),
    });

    function toMessage(g: PlayedGlyph): NodeMessage {
      return { topic: g.event, payload: g.payload, sqi: fromGlyph(g, player.clones) };
    }

    function read(src: Source): { result: LoadResult; label: string } {
      switch (src.kind) {
        case "inline":
          return { result: parseContainerText(src.text), label: "inline JSON" };
        case "object": {
          // Checked before it is copied: structuredClone of a 100,000-deep payload overflowed the stack.
          const result = validateContainer(src.value);
          return { result: result.ok ? { ok: true, container: structuredClone(result.container) } : result, label: "msg.container" };
        }
        case "file": {
          if (src.file === "")
            return {
              result: { ok: false, problems: [{ path: "", message: "no file is set: choose a .dc file or paste JSON in the node's panel" }] },
              label: "dc-container",
            };
          const resolved = resolveContainerPath(src.file, baseDir);
          const result = loadContainerFile(resolved);
          if (!result.ok && result.problems[0]?.message === "file not found") {
            const looked = containerCandidates(src.file, baseDir).join(", ");
            result.problems[0] = { path: "", message: `file not found (looked for ${looked})` };
          }
          return { result, label: path.basename(src.file) };
        }
      }
    }

    /** Loads a source; on failure the container that was loaded (and playing) stays, and the problems are returned. */
    function load(src: Source): string | undefined {
      const { result, label } = read(src);
      if (!result.ok) {
        const lines = formatProblems(label, result.problems);
        lastError = lines.length > 1 ? `${lines[0]} (+${lines.length - 1} more)` : lines[0];
        status.now();
        return lines.join("\n");
      }
      lastError = undefined;
      loaded = { container: result.container, label };
      source = src;
      player.load(result.container);
      if (player.countedBySize)
        node.warn(
          `${label}: ${player.clones.toLocaleString("en")} clone(s) × ${result.container.glyphs.length.toLocaleString("en")} glyphs is over ${MAX_EACH_EVENTS.toLocaleString("en")}: played as counted messages (msg.sqi.count), one per event name per frame`,
        );
      status.now();
      return undefined;
    }

    const status = new StatusTicker(clock, node, () => ({ status: draw(), again: player.state === "playing" }));
    function draw(): StatusLine {
      const st = player.state;
      if (st !== "playing") {
        rateMeter.reset(player.stats.events);
        rate = 0;
      } else if (rateMeter.age >= STATUS_EVERY_MS * 0.8) rate = rateMeter.read(player.stats.events);
      if (!loaded) return { fill: "red", shape: "ring", text: clip(lastError ?? "no container loaded") };
      // Short enough to sit under the node; the full error is in the debug sidebar, and the
      // intended rate of clones and frames/s in the shapers' measurements and the SQI scope.
      const id = loaded.container.container_id;
      const where = `tick ${player.stats.tick} · loop ${player.stats.loop}`;
      const extras = [
        lastError ? "⚠ see debug" : "",
        st === "playing" ? formatRate(rate) : "",
        player.stats.skipped > 0 ? `${player.stats.skipped} skipped` : "",
        player.countedBySize ? "counted (size)" : player.clones > 1 || player.aggregated ? `×${player.clones.toLocaleString("en")}` : "",
        player.speed === 1 ? "" : `x${player.speed}`,
      ];
      const text =
        st === "playing"
          ? statusText(`▶ ${where}`, extras)
          : st === "paused"
            ? statusText(`❚❚ ${where}`, extras)
            : st === "finished"
              ? statusText(`finished · ${player.stats.events} events`, extras)
              : statusText(`stopped · ${id}`, extras.slice(0, 1));
      const fill = lastError ? "yellow" : st === "playing" ? "green" : st === "paused" ? "yellow" : "grey";
      return { fill, shape: st === "playing" ? "dot" : "ring", text };
    }

    /** Runs a command; returns what went wrong loading a container, if anything (the player goes on with what it had). */
    function run(cmd: Command): string | undefined {
      let failed: string | undefined;
      switch (cmd.kind) {
        case "start":
          lastError = undefined;
          if (!loaded) failed = load(source);
          player.start();
          break;
        case "stop":
          player.stop();
          break;
        case "toggle":
          if (player.state === "playing") player.stop();
          else failed = run({ kind: "start" });
          break;
        case "pause":
          player.pause();
          break;
        case "resume":
          player.resume();
          break;
        case "step":
          player.step();
          break;
        case "reload":
          failed = load(source.kind === "object" ? configured : source);
          break;
        case "load":
          failed = load(typeof cmd.container === "string" ? { kind: "file", file: cmd.container } : { kind: "object", value: cmd.container });
          break;
        case "speed":
          player.setSpeed(cmd.speed);
          break;
      }
      status.now();
      return failed;
    }

    // Used by the editor's button and by the launcher's graceful stop.
    (node as Node & { control?: (kind: "start" | "stop" | "toggle") => string }).control = (kind) => {
      const failed = run({ kind });
      if (failed) node.error(failed);
      return player.state;
    };

    const errors = new ThrottledErrors(clock, node, "");
    node.on("input", (msg, _send, done) => {
      const cmd = parseCommand(msg);
      if ("error" in cmd) return errors.fail(`dc-container: ${cmd.error}`, done);
      const failed = run(cmd);
      if (failed) return errors.fail(failed, done);
      done();
    });

    node.on("close", (_removed, done) => {
      clock.clearTimer(autostartTimer);
      player.dispose();
      status.stop();
      node.status({});
      done();
    });

    const failedAtDeploy = load(configured);
    if (failedAtDeploy) node.error(failedAtDeploy);
    else if (def.autostart !== false) {
      autostartTimer = clock.setTimer(
        () => {
          autostartTimer = undefined;
          if (player.state === "stopped") player.start();
        },
        (startDelay.ok ? startDelay.value : DEFAULT_START_DELAY_S) * 1000,
      );
    }
    status.now();
  }

  RED.nodes.registerType("dc-container", DcContainerNode, { settings: rangesSetting("dc-container") });

  RED.httpAdmin.post("/dc-container/:id/:action", RED.auth.needsPermission("dc-container.write"), (req, res) => {
    const target = RED.nodes.getNode(req.params.id!) as (Node & { control?: (kind: "start" | "stop" | "toggle") => string }) | null;
    const action = req.params.action;
    if (!target || typeof target.control !== "function") {
      res.status(404).json({ error: "no deployed dc-container with that id: deploy first" });
      return;
    }
    if (action !== "start" && action !== "stop" && action !== "toggle") {
      res.status(400).json({ error: `unknown action ${JSON.stringify(action)}: use start, stop or toggle` });
      return;
    }
    res.json({ state: target.control(action) });
  });

  RED.httpAdmin.get("/dc-container/containers", RED.auth.needsPermission("dc-container.read"), (_req, res) => {
    res.json(bundledContainers());
  });

  // The panel's timeline: its source and speed fields as they are now, through the node's own loaders and Player (lib/container/glance.ts).
  // It reads the file the panel names, as a deploy would: write permission, as deploying it needs (a read-only
  // user must not probe files through its error messages).
  RED.httpAdmin.post("/dc-container/preview", RED.auth.needsPermission("dc-container.write"), (req, res) => {
    const config = (req.body as { config?: unknown } | undefined)?.config;
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      res.status(400).json({ error: "the body must be {config: the panel's fields}" });
      return;
    }
    try {
      res.json(glance(config as Record<string, unknown>, RED.settings.userDir ?? process.cwd()));
    } catch (e) {
      res.status(400).json({ error: `no preview: ${(e as Error).message}` });
    }
  });
};

function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M ev/s`;
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k ev/s`;
  return `${perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1)} ev/s`;
}
