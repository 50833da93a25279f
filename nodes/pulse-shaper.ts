// pulse-shaper: the Node-RED shell around lib/pulse. It plans each event's pulses
// (shapes.ts), queues them on one output under the safety limits (output.ts), which fires
// the edges on time (scheduler.ts), and reports what it fired (measure.ts).
//
// Edges go straight to the nodes wired to the first output (their input handler runs in the
// scheduler's call), not through node.send: Node-RED would deliver a sent edge on a later
// turn of the event loop, after the scheduler's short wait for the next edge, and
// rpi-gpio out would get both edges at once (a 0.1 ms gap where 2 ms were set).
//
// Fail-safe: msg.stop, an error, close and redeploy all send the falling edge at once. On a
// redeploy Node-RED closes every node in the same tick, in flow order: rpi-gpio out may close
// (and kill its helper) before the shaper does. The shaper listens for "flows:stopping"
// (emitted before any node closes), so its final 0 reaches rpi-gpio out's helper before that
// helper's "close". "flows:stopping" is Node-RED's internal event (3.1 to 5.0 have it); should a
// version lack it, the fallback holds: the shaper also wraps close() of every node it has
// handed an edge to, and goes low first whichever node Node-RED closes first. Either way that
// close waits until the last edge is PIN_SETTLE_MS old: rpi-gpio out kills its helper in the
// same call, and an edge still in the pipe would be lost with it.

import { realClock, type Clock, type TimerHandle } from "../lib/clock";
import { parseShaperSettings } from "../lib/pulse/config";
import { FiredWhilePinUp, registerFired } from "../lib/pulse/fired";
import { Measurements } from "../lib/pulse/measure";
import { PulseOutput, type Edge, type Origin } from "../lib/pulse/output";
import { planEvent } from "../lib/pulse/shapes";
import { TrainPlanner, type TrainItem } from "../lib/pulse/train";
import { scope, sharedPublisher } from "../lib/scope";
import type { FlowsEvent, Node, NodeDef, NodeMessage, NodeStatus, RED } from "./red";
import { clip, statusText } from "../lib/status";
import { LATE_TOLERANCE_MS, readCount, sqiOf } from "../lib/sqi";

/** Events due further ahead than this are refused: a wrong clock, not a plan. */
const MAX_AHEAD_MS = 60_000;
const STATUS_EVERY_MS = 500;
/** The same error is reported at most once a second, with how many were held back. */
const ERROR_EVERY_MS = 1000;

module.exports = function (RED: RED) {
  // The SQI scope sidebar: snapshots go to the open editors while one of them is watching.
  const { publisher, needsRoute } = sharedPublisher((RED.settings.sqiClock as Clock | undefined) ?? realClock, RED.httpAdmin);
  publisher.sink = (snapshot) => RED.comms.publish("sqi-scope", snapshot, false);
  if (needsRoute) {
    RED.httpAdmin.post("/sqi-scope/watch", RED.auth.needsPermission("sqi-scope.read"), (_req, res) => {
      publisher.watch();
      res.json({ watching: true });
    });
  }
  // One "flows:stopping" listener for all shapers (not one each: a flow with more than ten
  // shapers would trip Node.js's leak warning), present only while a shaper is deployed.
  const stopping = new Set<(ev: FlowsEvent) => void>();
  const dispatch = (ev: FlowsEvent): void => {
    for (const f of [...stopping]) f(ev);
  };
  function onFlowsStopping(f: (ev: FlowsEvent) => void): () => void {
    if (stopping.size === 0) RED.events.on("flows:stopping", dispatch);
    stopping.add(f);
    return () => {
      stopping.delete(f);
      if (stopping.size === 0) RED.events.removeListener("flows:stopping", dispatch);
    };
  }

  // One "node-status" listener for all shapers too: each watches the rpi-gpio out nodes it drives.
  const watchers = new Map<string, Set<(status: NodeStatus, id: string) => void>>();
  const onStatus = (ev: { id?: string; status?: NodeStatus }): void => {
    const set = ev?.id !== undefined ? watchers.get(ev.id) : undefined;
    if (set && ev.status) for (const f of [...set]) f(ev.status, ev.id!);
  };
  function watchStatus(ids: string[], f: (status: NodeStatus, id: string) => void): () => void {
    if (ids.length === 0) return () => undefined;
    if (watchers.size === 0) RED.events.on("node-status", onStatus);
    for (const id of ids) {
      let set = watchers.get(id);
      if (!set) watchers.set(id, (set = new Set()));
      set.add(f);
    }
    return () => {
      for (const id of ids) {
        const set = watchers.get(id);
        set?.delete(f);
        if (set?.size === 0) watchers.delete(id);
      }
      if (watchers.size === 0) RED.events.removeListener("node-status", onStatus);
    };
  }

  function PulseShaperNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const clock: Clock = (RED.settings.sqiClock as Clock | undefined) ?? realClock;
    const parsed = parseShaperSettings(def);
    if (!parsed.ok) {
      const text = parsed.errors.join("; ");
      node.error(`pulse-shaper: ${text}`);
      node.status({ fill: "red", shape: "ring", text: clip(parsed.errors[0]!) });
      node.on("input", (msg, _send, done) => {
        node.error(`pulse-shaper: ${text}`, msg);
        done();
      });
      return;
    }
    const s = parsed.settings;
    const downstream = Array.isArray(def.wires) && Array.isArray(def.wires[0]) ? (def.wires[0] as string[]) : [];
    const counts = { late: 0, late_dropped: 0, rejected: 0, ignored: 0, rate_clamped: 0, train_events: 0, train_clamped: 0 };
    let rateClamp: { text: string; at: number } | undefined;
    // Aggregated counts since the last status: what the clones asked for and what the pin got.
    let trainTally = { at: clock.now(), events: 0, delivered: 0, clamped: 0, duty: undefined as number | undefined };
    let statusTimer: TimerHandle | undefined;
    let reportTimer: TimerHandle | undefined;
    let statusMark = { at: clock.now(), pulses: 0 };
    const errorsShown = new Map<string, { at: number; held: number }>();

    const measure = new Measurements(clock.now(), s.coil);
    const pins = new FiredWhilePinUp();
    /** The wired rpi-gpio out nodes whose helper is down, and what the status says about it. */
    const downPins = new Set<string>();
    let pinDownText = "";
    const output = new PulseOutput(clock, s.limits, s.shape.output === "pwm", emitEdge, (p) => measure.pulse(p));
    const trains = new TrainPlanner(s.limits, s.shape.output === "pwm");
    const trace = scope.addShaper(node.id, String(def.name ?? "").trim() || `pulse-shaper ${node.id.slice(0, 6)}`, () => ({ ...output.counters, ...counts }));

    // Counted messages of one frame (the same at and window, one per event name) arrive one
    // by one in the same turn of the event loop: they are gathered and placed together, so
    // that the names share a saturated pin by their counts.
    let pendingTrains = new Map<string, { t0: number; windowMs: number; items: Array<TrainItem & { origin: Origin }> }>();
    let trainsQueued = false;
    let closed = false;

    function queueTrain(item: TrainItem & { origin: Origin }, windowMs: number, t0: number): void {
      const key = `${t0}|${windowMs}`;
      let group = pendingTrains.get(key);
      if (!group) pendingTrains.set(key, (group = { t0, windowMs, items: [] }));
      group.items.push(item);
      if (trainsQueued) return;
      trainsQueued = true;
      clock.defer(() => {
        try {
          placeTrains();
        } catch (e) {
          failSafe();
          output.resume();
          node.error(`pulse-shaper: ${(e as Error).message}`);
        }
      });
    }

    function placeTrains(): void {
      trainsQueued = false;
      const groups = pendingTrains;
      pendingTrains = new Map();
      if (closed) return;
      for (const g of groups.values()) {
        trains.placeGroup(g.items, g.windowMs, g.t0).forEach((train, i) => {
          const it = g.items[i]!;
          counts.train_events += it.count;
          counts.train_clamped += train.clamped;
          trainTally.events += it.count;
          trainTally.delivered += train.starts.length;
          reportTrains.events += it.count;
          reportTrains.delivered += train.starts.length;
          trainTally.clamped += train.clamped;
          if (train.duty !== undefined && train.clamped > 0) trainTally.duty = train.duty;
          for (const start of train.starts) output.add(it.unit, start, it.origin);
          if (train.hold) output.add([{ start: 0, end: train.hold.end - train.hold.start, level: train.hold.level }], train.hold.start, it.origin);
        });
      }
      if (!statusTimer) statusTimer = clock.setTimer(renderStatus, STATUS_EVERY_MS);
    }

    function emitEdge(edge: Edge): void {
      measure.edge(edge);
      trace.edge(edge.sent, edge.level);
      const msg: NodeMessage = {
        topic: edge.origin.event,
        payload: edge.level,
        sqi: { ...(edge.origin.sqi ?? {}), edge: { level: edge.level, planned: edge.planned, sent: edge.sent } },
      };
      deliver(msg);
      if (!statusTimer) statusTimer = clock.setTimer(renderStatus, STATUS_EVERY_MS);
    }

    /**
     * Hands an edge straight to the nodes wired to the first output, in this call. node.send
     * would deliver it on a later turn of the event loop: after the scheduler's next short
     * wait, together with the next edge, so that rpi-gpio out would see both at once.
     * Falls back to node.send when a wired node is not a plain node here (e.g. a subflow port).
     */
    function deliver(msg: NodeMessage): void {
      // A node Node-RED is closing is no longer found by id: the one whose close is guarded is kept.
      const targets = (downPins.size ? downstream.filter((id) => !downPins.has(id)) : downstream).map(
        (id) => RED.nodes.getNode(id) ?? (closing?.id === id ? closing : undefined),
      );
      if (!targets.every((n) => n)) {
        node.send([msg, null]);
        return;
      }
      lastHandedAt = realClock.now();
      targets.forEach((n, i) => {
        if (closeGuarded.get(n!.id)?.node !== n) guardTarget(n!);
        n!.receive(i === 0 ? msg : RED.util.cloneMessage(msg));
      });
    }

    /**
     * The nodes this shaper has handed an edge to, each with its close() guarded: the shaper goes
     * low first (the fallback for a Node-RED without "flows:stopping"), and the close waits until
     * the last edge is PIN_SETTLE_MS old, so that the helper takes it before it is killed.
     */
    const closeGuarded = new Map<string, { node: Node; undo: () => void }>();
    let lastHandedAt = -Infinity;
    let closing: Node | undefined;
    const beforeTargetCloses = (n: Node): number => {
      closing = n;
      try {
        // Low now; this shaper stays usable if only the wired node is redeployed (its own close closes it).
        output.stop();
      } finally {
        closing = undefined;
      }
      return lastHandedAt + PIN_SETTLE_MS - realClock.now();
    };
    function guardTarget(n: Node): void {
      closeGuarded.get(n.id)?.undo();
      closeGuarded.set(n.id, { node: n, undo: guardClose(n, () => beforeTargetCloses(n)) });
    }

    function allCounters(): Record<string, number> {
      return { ...output.counters, ...counts, queued: output.queued };
    }

    // Counted messages since the last report: the rate the clones asked for and the rate the pin got.
    let reportTrains = { at: clock.now(), events: 0, delivered: 0 };

    function report(): void {
      const now = clock.now();
      const payload = measure.report(now, allCounters());
      if (reportTrains.events > 0) {
        const seconds = Math.max(1e-3, (now - reportTrains.at) / 1000);
        payload.train_intended_hz = Math.round((reportTrains.events / seconds) * 10) / 10;
        payload.train_delivered_hz = Math.round((reportTrains.delivered / seconds) * 10) / 10;
      }
      reportTrains = { at: now, events: 0, delivered: 0 };
      node.send([null, { topic: "measurements", payload }]);
    }

    function scheduleReports(): void {
      if (s.measureEveryMs <= 0) return;
      reportTimer = clock.setTimer(() => {
        report();
        scheduleReports();
      }, s.measureEveryMs);
    }

    function renderStatus(): void {
      // Called by its own timer and directly (msg.stop): one timer chain at most.
      clock.clearTimer(statusTimer);
      statusTimer = undefined;
      const now = clock.now();
      const c = output.counters;
      const rate = ((c.pulses - statusMark.pulses) * 1000) / Math.max(1, now - statusMark.at);
      if (trainTally.clamped > 0) {
        const dt = Math.max(1, now - trainTally.at);
        const intended = (trainTally.events * 1000) / dt;
        rateClamp = {
          at: now,
          text:
            trainTally.duty !== undefined
              ? `⚠ ${fmtHz(intended)} as ${trainTally.duty.toFixed(0)}% duty (capped)`
              : `⚠ ${fmtHz(intended)} in, ${fmtHz((trainTally.delivered * 1000) / dt)} delivered`,
        };
      }
      trainTally = { at: now, events: 0, delivered: 0, clamped: 0, duty: undefined };
      statusMark = { at: now, pulses: c.pulses };
      const duty = output.onTimeBetween(now - 1000, now) / 10;
      const problems = [
        c.clamped ? `clamped ${c.clamped}` : "",
        c.skipped ? `skipped ${c.skipped}` : "",
        c.dropped ? `dropped ${c.dropped}` : "",
        counts.late ? `late ${counts.late}` : "",
        counts.rejected ? `rejected ${counts.rejected}` : "",
      ].filter(Boolean);
      if (pinDownText) {
        node.status({ fill: "red", shape: "ring", text: clip(pinDownText) });
        return;
      }
      // Saturated (the clones ask for more than the pin can follow): that is the news, first.
      const saturated = rateClamp && now - rateClamp.at < 5000 ? rateClamp.text : "";
      const busy = output.level !== 0 || output.queued > 0;
      const pulses = `${rate.toFixed(rate >= 10 ? 0 : 1)} p/s · duty ${duty.toFixed(1)}%`;
      node.status({
        fill: saturated || problems.length ? "yellow" : busy || rate > 0 ? "green" : "grey",
        shape: busy ? "dot" : "ring",
        text: saturated ? statusText(saturated, problems) : statusText(pulses, [...problems, `${c.pulses} pulses`]),
      });
      if (busy || rate > 0) statusTimer = clock.setTimer(renderStatus, STATUS_EVERY_MS);
    }

    function showError(text: string, msg: NodeMessage): void {
      const now = clock.now();
      const seen = errorsShown.get(text);
      if (seen && now - seen.at < ERROR_EVERY_MS) {
        seen.held++;
        return;
      }
      if (errorsShown.size > 100) errorsShown.clear();
      const held = seen?.held ? ` (and ${seen.held} more like this in the last second)` : "";
      errorsShown.set(text, { at: now, held: 0 });
      node.error(`pulse-shaper: ${text}${held}`, msg);
    }

    /** The output goes low now and everything pending is dropped. */
    function failSafe(): void {
      output.close();
    }

    const onStopping = (ev: FlowsEvent): void => {
      const d = ev?.diff;
      // What Node-RED stops: a "nodes" deploy only the changed and removed nodes; a "flows" deploy the nodes wired to them too.
      const stopped = [...(d?.changed ?? []), ...(d?.removed ?? []), ...(ev?.type === "nodes" ? [] : [...(d?.rewired ?? []), ...(d?.linked ?? [])])];
      const self = !ev?.type || ev.type === "full" || !d || stopped.includes(node.id) || (node.z !== undefined && (d.flowChanged ?? []).includes(node.z));
      if (self) failSafe();
      // Only a node this one drives is redeployed: low now, and this shaper goes on afterwards.
      else if (stopped.some((id) => downstream.includes(id))) output.stop();
    };
    const stopListening = onFlowsStopping(onStopping);
    const firedCounters = (): Record<string, number> => ({ ...output.counters, on_time_ms: Math.round(measure.totalOnMs * 1000) / 1000 });
    const stopReporting = registerFired(() => pins.fired(firedCounters()));
    // rpi-gpio out shows a red status when its helper process has died (or never ran): edges
    // sent to it then go nowhere, and the pin stays where the helper left it (maybe high: the
    // hardware's pull-down and a fuse or a monostable are the guard for that). This shaper stops
    // handing it edges, stops counting what it plans as fired, says so in its status and, once,
    // in the log. A new helper (a redeploy of the pin) shows another status, and counting goes on.
    const stopWatching = watchStatus(downstream, (status, id) => {
      // Looked up now: the wired nodes may be created after this one.
      if (RED.nodes.getNode(id)?.type !== "rpi-gpio out") return;
      const down = status.fill === "red";
      if (down) downPins.add(id);
      else downPins.delete(id);
      if (down && !pins.pinDown) {
        pins.down(firedCounters());
        // Its status text is a message key ("rpi-gpio.status.stopped"): the last word says it.
        const said = String(status.text ?? "").replace(/^rpi-gpio\.status\./, "") || "failed";
        pinDownText = `pin ${said}: nothing fired`;
        node.error(
          `pulse-shaper: rpi-gpio out ${said}: its helper is not running; pulses are not counted as fired. The pin may be left where the helper left it: check the hardware guard (pull-down on the gate).`,
        );
        renderStatus();
      } else if (downPins.size === 0 && pins.pinDown) {
        pins.up(firedCounters());
        pinDownText = "";
        node.log("pulse-shaper: rpi-gpio out runs again; pulses are counted as fired again");
        renderStatus();
      }
    });

    node.on("input", (msg, _send, done) => {
      try {
        if (msg.stop === true) {
          placeTrains(); // what came before the stop is placed, counted, then cancelled with the rest
          output.stop();
          trains.reset();
          renderStatus();
          done();
          return;
        }
        if (msg.measure === true) {
          report();
          done();
          return;
        }
        const plan = planEvent(msg.topic, msg.payload, s.shape);
        if (plan.kind === "rejected") {
          counts.rejected++;
          showError(plan.error, msg);
        } else if (plan.kind === "ignored") {
          counts.ignored++;
        } else {
          const now = clock.now();
          const sqi = sqiOf(msg);
          const aggregated = readCount(sqi);
          if (typeof aggregated === "string") {
            counts.rejected++;
            showError(`${msg.topic}: ${aggregated}`, msg);
            done();
            return;
          }
          const at = sqi?.at;
          let t0 = typeof at === "number" && Number.isFinite(at) ? at : now;
          if (t0 > now + MAX_AHEAD_MS) {
            counts.rejected++;
            showError(`${msg.topic}: msg.sqi.at is ${((t0 - now) / 1000).toFixed(1)} s ahead (more than ${MAX_AHEAD_MS / 1000} s): check the clocks`, msg);
            done();
            return;
          }
          if (t0 < now - LATE_TOLERANCE_MS) {
            counts.late++;
            if (s.late === "drop") {
              counts.late_dropped++;
              done();
              return;
            }
            t0 = now;
          }
          if (plan.rateClamp) {
            counts.rate_clamped++;
            const r = plan.rateClamp;
            rateClamp = {
              at: now,
              text: r.asDuty ? `⚠ ${fmtHz(r.intendedHz)} as ${((plan.segments[0]?.level ?? 0) as number).toFixed(0)}% duty` : `⚠ ${fmtHz(r.intendedHz)} in, ${fmtHz(r.deliveredHz)} delivered`,
            };
          }
          const origin = { event: msg.topic as string, ...(sqi ? { sqi: { ...sqi } } : {}) };
          if (aggregated) {
            queueTrain({ name: origin.event, unit: plan.segments, count: aggregated.count, origin }, aggregated.windowMs, t0);
          } else {
            output.add(plan.segments, t0, origin);
          }
          if (!statusTimer) statusTimer = clock.setTimer(renderStatus, STATUS_EVERY_MS);
        }
        done();
      } catch (e) {
        failSafe();
        output.resume();
        done(e as Error);
      }
    });

    node.on("close", (_removed, done) => {
      closed = true;
      stopListening();
      stopReporting();
      stopWatching();
      for (const g of closeGuarded.values()) g.undo();
      closeGuarded.clear();
      trace.remove();
      failSafe();
      clock.clearTimer(statusTimer);
      clock.clearTimer(reportTimer);
      statusTimer = reportTimer = undefined;
      done();
    });

    scheduleReports();
    node.status({ fill: "grey", shape: "ring", text: statusText("ready", [`${s.shape.widthMs} ms pulses`, s.shape.output]) });
  }

  RED.nodes.registerType("pulse-shaper", PulseShaperNode);
};

/**
 * How long a wired node's close() waits after the last edge handed to it. rpi-gpio out's close
 * writes "close" to its helper and SIGKILLs it in the same call: an edge written a moment before
 * is lost if the helper has not read it yet, and a killed helper leaves the pin where it was.
 */
const PIN_SETTLE_MS = 100;

/** The guards to run before each wired node's own close(), by node object (see the header). */
const closeGuards = new WeakMap<Node, Set<() => number>>();

/**
 * Runs `f` before `target`'s close() whenever Node-RED stops it; `f` returns how many ms the
 * close should wait (for an edge just handed on to be taken). Returns the undo.
 */
function guardClose(target: Node, f: () => number): () => void {
  let set = closeGuards.get(target);
  if (!set) {
    const guards = new Set<() => number>();
    set = guards;
    closeGuards.set(target, guards);
    const close = target.close;
    if (typeof close === "function") {
      target.close = function (this: Node, removed?: boolean) {
        let wait = 0;
        for (const g of [...guards]) wait = Math.max(wait, g());
        if (wait <= 0) return close.call(this, removed);
        // Real time, whatever clock the flow runs on: a helper process reads the pipe.
        return new Promise<void>((resolve) => realClock.setTimer(() => resolve(), wait)).then(() => close.call(this, removed));
      };
    }
  }
  set.add(f);
  return () => void set.delete(f);
}

function fmtHz(hz: number): string {
  if (hz >= 1e6) return `${(hz / 1e6).toFixed(hz >= 1e7 ? 0 : 1)} MHz`;
  return hz >= 1000 ? `${(hz / 1000).toFixed(hz >= 10_000 ? 0 : 1)} kHz` : `${hz.toFixed(hz >= 10 ? 0 : 1)} Hz`;
}
