// pulse-shaper: the Node-RED shell around lib/pulse/shaper.ts, which plans each event's
// pulses, queues them on one output under the safety limits, fires the edges on time and
// measures what it fired. This file hands the edges on, and keeps the pins low on every stop
// (pin-guard.ts).
//
// Edges go straight to the nodes wired to the first output (their input handler runs in the
// scheduler's call), not through node.send: Node-RED would deliver a sent edge on a later
// turn of the event loop, after the scheduler's short wait for the next edge, and
// rpi-gpio out would get both edges at once (a 0.1 ms gap where 2 ms were set).
//
// Fail-safe: msg.stop, an error, close and redeploy all send the falling edge at once.

import { realClock } from "../lib/clock";
import { parseShaperSettings } from "../lib/pulse/config";
import type { FiredCounters } from "../lib/pulse/fired";
import { sharedPins, uninitialisedPin } from "../lib/pulse/pins";
import { builtInRows, bundledSample, previewShaper, samplePayload, type Sample } from "../lib/pulse/preview";
import { DeadlineQueue } from "../lib/pulse/scheduler";
import { Shaper } from "../lib/pulse/shaper";
import { EdgeTrace } from "../lib/scope";
import { sqiOf, withEdge } from "../lib/sqi";
import { catchDeadPipe, deployEffect, guardClose, PIN_SETTLE_MS, runtimeHooks } from "./pin-guard";
import type { Node, NodeDef, NodeMessage, RED } from "./red";
import { clockOf, every, rangesSetting, refuseInputs, StatusTicker, ThrottledErrors } from "./shell";

/**
 * A running pulse-shaper, as the listening bus on its flow tab (its fired counts), the SQI scope
 * (its edges) and the panel's fire button (one event of a row, through its input) read it.
 */
export type ShaperNode = Node & { sqiFired?: () => FiredCounters; sqiTrace?: EdgeTrace; sqiTry?: (event: string) => void };

/** The longest event name the fire button takes (a row's name, as the panel shows it). */
const MAX_TRY_EVENT = 200;

module.exports = function (RED: RED) {
  const hooks = runtimeHooks(RED);
  // This runtime's clock, and the one deadline queue its shapers share (lib/pulse/scheduler.ts):
  // state of this Node-RED, kept here, not in a process-wide map.
  const clock = clockOf(RED);
  const deadlines = new DeadlineQueue(clock);
  // The panel's sample payload defaults to the bundled containers' values: read when first asked for.
  let sample: Sample | undefined;
  const samples = (): Sample => (sample ??= bundledSample());

  function PulseShaperNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const parsed = parseShaperSettings(def);
    if (!parsed.ok) return refuseInputs(node, clock, "pulse-shaper", parsed.errors);
    const s = parsed.settings;
    const downstream = Array.isArray(def.wires) && Array.isArray(def.wires[0]) ? (def.wires[0] as string[]) : [];
    const errors = new ThrottledErrors(clock, node, "pulse-shaper");
    /** The wired rpi-gpio out nodes whose helper is down: they get no edges. */
    const downPins = new Set<string>();
    const shaper = new Shaper(
      clock,
      s,
      {
        edge: (edge) => {
          // The scope draws what reached a pin: nothing while its helper is down.
          if (!shaper.pinIsDown) trace.edge(edge.sent, edge.duty);
          // Whole pulses: pulse-out times the fall itself; a fall sent is a "low now" (a stop).
          if (edge.driven) return;
          const payload = s.wholePulses ? (edge.level > 0 ? { on_ms: edge.width } : 0) : edge.level;
          deliver({ topic: edge.origin.event, payload, sqi: withEdge(edge.origin.sqi, edge) });
        },
        changed: () => status.soon(),
        failed: (e) => node.error(`pulse-shaper: ${e.message}`),
      },
      deadlines,
    );
    const status = new StatusTicker(clock, node, () => shaper.status());
    // What reached a pin, for the listening bus on this tab to report (sqi-event-bus.ts).
    (node as ShaperNode).sqiFired = () => shaper.fired();
    const trace = new EdgeTrace(node.id, String(def.name ?? "").trim() || `pulse-shaper ${node.id.slice(0, 6)}`, () => shaper.reached());
    (node as ShaperNode).sqiTrace = trace;
    // The panel's fire button: one event through this node's own input, with the panel's sample payload.
    (node as ShaperNode).sqiTry = (event) => node.receive({ topic: event, payload: samplePayload(def.sample, samples()) });

    /**
     * Whole pulses: a stop reaches the driver whether or not a pulse is on here (the driver may
     * still hold one back for its own off-time), so it drops what it holds. `sent`: whether the
     * stop already sent a falling edge.
     */
    function lowNow(sent: boolean): void {
      if (s.wholePulses && !sent) deliver({ topic: "stop", payload: 0, sqi: withEdge(undefined, { level: 0, planned: clock.now(), sent: clock.now() }) });
    }

    /**
     * Hands an edge straight to the nodes wired to the first output, in this call (see the
     * header). Falls back to node.send when a wired node is not a plain node here (e.g. a
     * subflow port). A node Node-RED is closing is no longer found by id: the one whose close
     * is guarded is kept.
     */
    function deliver(msg: NodeMessage): void {
      const ids = downPins.size ? downstream.filter((id) => !downPins.has(id)) : downstream;
      const targets: Node[] = [];
      for (const id of ids) {
        const n = RED.nodes.getNode(id) ?? (closing?.id === id ? closing : undefined);
        if (!n) return node.send([msg, null]);
        targets.push(n);
      }
      lastHandedAt = realClock.now();
      targets.forEach((n, i) => {
        if (closeGuarded.get(n.id)?.node !== n) guardTarget(n);
        n.receive(i === 0 ? msg : RED.util.cloneMessage(msg));
      });
    }

    // The nodes this shaper has handed an edge to, each with its close() guarded (pin-guard.ts).
    const closeGuarded = new Map<string, { node: Node; undo: () => void }>();
    let lastHandedAt = -Infinity;
    let closing: Node | undefined;
    function guardTarget(n: Node): void {
      closeGuarded.get(n.id)?.undo();
      const beforeClose = (): number => {
        closing = n;
        try {
          // Low now; this shaper stays usable if only the wired node is redeployed (its own close closes it).
          lowNow(shaper.output.stop());
        } finally {
          closing = undefined;
        }
        return lastHandedAt + PIN_SETTLE_MS - realClock.now();
      };
      closeGuarded.set(n.id, { node: n, undo: guardClose(n, beforeClose) });
      if (n.type === "rpi-gpio out")
        catchDeadPipe(n, (e) =>
          node.warn(
            `pulse-shaper: rpi-gpio out "${String((n as unknown as { name?: unknown }).name || n.id)}": its helper's pipe is closed (${(e as NodeJS.ErrnoException).code ?? e.message}): edges sent to it reach no pin until it is redeployed`,
          ),
        );
    }

    const report = (): void => node.send([null, { topic: "measurements", payload: shaper.report() }]);
    const stops = [
      every(clock, s.measureEveryMs, report),
      hooks.onFlowsStopping((ev) => {
        const effect = deployEffect(ev, node, downstream);
        if (effect === "close") lowNow(shaper.close());
        // Only a node this one drives is redeployed: low now, and this shaper goes on afterwards.
        else if (effect === "stop") lowNow(shaper.output.stop());
      }),
      hooks.onFlowsStarted((ev) => {
        for (const id of downstream) {
          const n = RED.nodes.getNode(id) as unknown as Record<string, unknown> | null;
          // A running rpi-gpio out keeps its pin already in BCM numbering (it maps a header pin when it starts).
          const warning = n ? uninitialisedPin({ type: n.type, name: n.name, pin: n.pin, set: n.set, level: n.level, out: n.out, bcm: true }) : undefined;
          if (warning) node.warn(`pulse-shaper: ${warning}`);
        }
        for (const shared of sharedPins(ev?.config?.flows)) if (shared.ids.some((id) => downstream.includes(id))) node.warn(`pulse-shaper: ${shared.text}`);
      }),
      // rpi-gpio out (and pulse-out) shows a red status when its helper process has died (or never ran): edges
      // sent to it then go nowhere, and the pin stays where the helper left it (maybe high: the
      // hardware's pull-down and a fuse or a monostable are the guard for that). This shaper stops
      // handing it edges, stops counting what it plans as fired, says so in its status and, once,
      // in the log. A new helper (a redeploy of the pin) shows another status, and counting goes on.
      hooks.watchStatus(downstream, (st, id) => {
        // Looked up now: the wired nodes may be created after this one.
        const type = RED.nodes.getNode(id)?.type;
        if (type !== "rpi-gpio out" && type !== "pulse-out") return;
        if (st.fill === "red") downPins.add(id);
        else downPins.delete(id);
        // Its status text is a message key ("rpi-gpio.status.stopped"): the last word says it.
        const said = String(st.text ?? "").replace(/^rpi-gpio\.status\./, "") || "failed";
        if (st.fill === "red" && shaper.pinDown(said)) {
          node.error(
            `pulse-shaper: ${type} ${said}: its helper is not running; pulses are not counted as fired. The pin may be left where the helper left it: check the hardware guard (pull-down on the gate).`,
          );
          status.now();
        } else if (downPins.size === 0 && shaper.pinUp()) {
          node.log(`pulse-shaper: ${type} runs again; pulses are counted as fired again`);
          status.now();
        }
      }),
    ];

    node.on("input", (msg, _send, done) => {
      try {
        if (msg.stop === true) {
          lowNow(shaper.stop());
          status.now();
        } else if (msg.measure === true) report();
        else {
          const error = shaper.take(msg.topic, msg.payload, sqiOf(msg));
          if (error) return errors.fail(error, done);
        }
        done();
      } catch (e) {
        shaper.failSafe();
        done(e as Error);
      }
    });

    node.on("close", (_removed, done) => {
      for (const stop of stops) stop();
      for (const g of closeGuarded.values()) g.undo();
      closeGuarded.clear();
      lowNow(shaper.close());
      status.stop();
      done();
    });

    node.status(shaper.ready());
  }

  RED.nodes.registerType("pulse-shaper", PulseShaperNode, {
    // The panel lists the built-in shapes as rows from here (lib/pulse/shapes.ts), not from a copy.
    settings: { ...rangesSetting("pulse-shaper"), pulseShaperBuiltIns: { value: builtInRows(), exportable: true } },
  });

  // The panel's preview: its fields as they are now, through the runtime's own shaper on a virtual clock (lib/pulse/preview.ts).
  RED.httpAdmin.post("/pulse-shaper/preview", RED.auth.needsPermission("pulse-shaper.read"), (req, res) => {
    const body = req.body as { config?: unknown; sample?: unknown } | undefined;
    const config = body?.config;
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      res.status(400).json({ error: "the body must be {config: the panel's fields, sample: {frequency_hz, amplitude, factor_fast, factor_slow}}" });
      return;
    }
    try {
      // One row per turn of the event loop (the process's real one, whatever clock the runtime reads): the runtime's pulses go on between them.
      previewShaper(config as Record<string, unknown>, body?.sample, samples(), () => new Promise((r) => realClock.defer(r))).then(
        (preview) => res.json({ ...preview, sample: samples() }),
        (e: Error) => res.status(400).json({ error: `no preview: ${e.message}` }),
      );
    } catch (e) {
      res.status(400).json({ error: `no preview: ${(e as Error).message}` });
    }
  });

  // The fire button: like inject's, one event of a row through the deployed node.
  RED.httpAdmin.post("/pulse-shaper/:id/fire", RED.auth.needsPermission("pulse-shaper.write"), (req, res) => {
    const target = RED.nodes.getNode(req.params.id!) as ShaperNode | null;
    if (!target || target.type !== "pulse-shaper" || typeof target.sqiTry !== "function") {
      res.status(404).json({ error: "no running pulse-shaper with that id: deploy it first (one with invalid settings takes no events)" });
      return;
    }
    const event = (req.body as { event?: unknown } | undefined)?.event;
    if (typeof event !== "string" || event.trim() === "" || event.length > MAX_TRY_EVENT) {
      res.status(400).json({ error: `event must be a row's event name (1 to ${MAX_TRY_EVENT} characters)` });
      return;
    }
    target.sqiTry(event.trim());
    res.json({ fired: event.trim() });
  });
};
