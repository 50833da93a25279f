// sqi-event-bus: one node, two roles. broadcast (the master): every input event goes to
// every connected listener. listen (a Pi): events arrive on output 1 with msg.sqi.at
// converted once to this Pi's clock, so the pulse-shapers of every Pi fire together.
// Output 2 carries stats (both roles) and the listeners' reports (broadcast role).
// The transports (lib/bus/transport.ts), the arrival policy (lib/bus/arrivals.ts) and the
// accounting live in lib/bus; this file wires them to Node-RED.

import * as os from "node:os";
import { Arrivals } from "../lib/bus/arrivals";
import { openListener, openMaster, type TlsOptions } from "../lib/bus/connect";
import { brokerPlace } from "../lib/bus/mqtt-link";
import { eventFrame, flatCounters, newRunId } from "../lib/bus/frames";
import { AbsenceLedger } from "../lib/bus/ledger";
import { Roster } from "../lib/bus/roster";
import { LISTENER_NOTICES, MASTER_NOTICES, MinuteNotices, NOTICE_EVERY_MS } from "../lib/bus/notices";
import { listenerReport, listenerStats, listenerStatus, masterStats, masterStatus } from "../lib/bus/status";
import { PowerMeter } from "../lib/power/meter";
import { firedTotals, shapersOf, type DeployedNode, type FiredCounters } from "../lib/pulse/fired";
import { checkNumber } from "../lib/numbers";
import { sqiOf } from "../lib/sqi";
import { PANEL_RANGES } from "../lib/ranges";
import type { ShaperNode } from "./pulse-shaper";
import type { Node, NodeDef, RED } from "./red";
import { clockOf, every, rangesSetting, RateMeter, refuseInputs, StatusTicker, ThrottledErrors } from "./shell";
import type { BusConfigNode } from "./sqi-bus";

type TlsNode = Node & { addTLSOptions(opts: TlsOptions): void };
/** A running master, as the SQI scope reads its listeners: from its roster, the one record of them. */
export type MasterNode = Node & { sqiRoster?: Roster };

module.exports = function (RED: RED) {
  const clock = clockOf(RED);
  function SqiEventBusNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = RED.nodes.getNode(String(def.bus ?? "")) as BusConfigNode | null;
    const role = def.role === "listen" ? "listen" : "broadcast";
    const statsEvery = checkNumber(def.statsEvery, PANEL_RANGES["sqi-event-bus"].statsEvery);
    const problems = [...(config ? config.bus.errors : ["choose or add a bus (sqi-bus config node)"]), ...(statsEvery.ok ? [] : [statsEvery.error])];
    if (role === "listen" && config && config.bus.transport === "ws" && !config.bus.url) problems.push("the bus has no listener URL (ws://master:8765/)");
    if (problems.length || !config) return refuseInputs(node, clock, "sqi-event-bus", problems);
    const bus = config.bus;
    let tls: TlsOptions | undefined;
    if (bus.tls) (RED.nodes.getNode(bus.tls) as TlsNode | null)?.addTLSOptions((tls = {}));
    const statsMs = (statsEvery.ok ? statsEvery.value : 5) * 1000;
    const rate = new RateMeter(clock);
    const errors = new ThrottledErrors(clock, node, "sqi-event-bus");
    const authFailure = (text: string): void => node.error(`sqi-event-bus: ${brokerPlace(bus.mqtt.url)}: ${text}`);
    const stops: Array<() => void> = [];
    /** Once a minute at most, the refusals and rejections since the last time, as one warning. */
    const notices = (kinds: Readonly<Record<string, string>>, counters: () => Record<string, number>, recent: () => string | undefined): void => {
      const minute = new MinuteNotices(kinds);
      stops.push(
        every(clock, NOTICE_EVERY_MS, () => {
          const line = minute.line(counters(), recent());
          if (line) node.warn(`sqi-event-bus: ${line}`);
        }),
      );
    };

    if (role === "broadcast") {
      let seq = 0;
      if (bus.transport === "ws" && !bus.token)
        node.warn(`sqi-event-bus: the bus on port ${bus.port} is open: any client on the network can connect and listen. Set a token in the bus config.`);
      // A new run each deploy: a listener knows this master's seqs begin again, whenever it reconnects.
      const run = newRunId();
      const ledger = new AbsenceLedger(run);
      const roster = new Roster();
      (node as MasterNode).sqiRoster = roster;
      let failed = "";
      const status = new StatusTicker(clock, node, () => ({
        status: masterStatus(server, bus, failed, () => rate.read(server.counters.events), roster.summary(server.clients.length, clock.now())),
      }));
      const server = openMaster(bus, tls, {
        clock,
        name: os.hostname(),
        run,
        onReport: (report) => {
          const now = clock.now();
          const r = ledger.take(report, now);
          roster.take(r, now);
          // The report message as it has always been: its groups flat in counters (fired_*, measured_*).
          const { fired: _fired, measured: _measured, ...rest } = r;
          node.send([null, { topic: "report", payload: { ...rest, counters: flatCounters(r) } }]);
        },
        onChange: () => status.now(),
        onAuthFailure: authFailure,
      });
      const stats = (): void => {
        const now = clock.now();
        node.send([null, { topic: "stats", payload: masterStats(server, bus, { summary: roster.summary(0, now), worst: roster.worst(now) }) }]);
      };
      server.listen().then(
        () => status.now(),
        (e: NodeJS.ErrnoException) => {
          failed = e.code === "EADDRINUSE" ? `port ${bus.port} is in use` : `cannot listen on ${bus.host}:${bus.port}: ${e.message}`;
          node.error(`sqi-event-bus: ${failed}`);
          status.now();
        },
      );
      stops.push(every(clock, statsMs, stats));
      notices(
        MASTER_NOTICES,
        () => ({ ...server.counters }),
        () => server.lastErrors[server.lastErrors.length - 1],
      );
      node.on("input", (msg, _send, done) => {
        if (msg.stats === true) stats();
        else if (typeof msg.topic !== "string" || msg.topic.trim() === "") return errors.fail("msg.topic must be the event name (a non-empty string)", done);
        else {
          server.send(eventFrame(msg.topic, msg.payload, sqiOf(msg), ++seq));
          status.soon();
        }
        done();
      });
      node.on("close", (_removed, done) => {
        status.stop();
        for (const stop of stops) stop();
        server.close().then(
          () => done(),
          () => done(),
        );
      });
      status.now();
      return;
    }

    // listen
    const name = String(def.listenerName ?? "").trim() || String(RED.util.evaluateNodeProperty("SQI_NODE_NAME", "env", node, {}) ?? "") || os.hostname();
    // One send per message: Node-RED deep-clones every message after the first of an array sent
    // at once (the listener's largest cost in a profile at 85,000 events/s). Each message is a
    // new object, so nothing is shared without the clone.
    const arrivals = new Arrivals(clock, {
      late: def.late === "drop" ? "drop" : "fire",
      toLocal: (at) => client.sync.toLocal(at),
      emit: (m) => node.send([m, null]),
    });
    // What the pulse-shapers on this flow tab fired (lib/pulse/fired.ts: shapersOf), read at each
    // report from the running nodes: the flow is the wiring, so two buses never count one pulse.
    let saidSecond = false;
    const firedHere = (): FiredCounters => {
      const deployed: DeployedNode[] = [];
      RED.nodes.eachNode((n) => deployed.push(n as unknown as DeployedNode));
      const { shapers, second } = shapersOf(node, deployed);
      if (second && !saidSecond) {
        saidSecond = true;
        node.warn(
          "sqi-event-bus: another listening bus on this flow tab reports its pulse-shapers' fired counts; this one reports none (one listening bus per tab)",
        );
      }
      const counters: FiredCounters[] = [];
      for (const id of shapers) {
        const fired = (RED.nodes.getNode(id) as ShaperNode | null)?.sqiFired?.();
        if (fired) counters.push(fired);
      }
      return firedTotals(counters);
    };
    // This Pi's power sensor, when one is wired to the input (msg.topic "measure"): what its coils drew, measured.
    const meter = new PowerMeter();
    const status = new StatusTicker(clock, node, () => ({
      status: listenerStatus(client, arrivals, () => rate.read(client.counters.events), meter.statusPart(clock.now())),
      again: true,
    }));
    const client = openListener(bus, tls, {
      clock,
      name,
      // This listener's life: the master accounts for what it sent while a previous life was away.
      instance: newRunId(),
      run: () => arrivals.run,
      onEvents: (events, receivedAt, run) => {
        arrivals.push(events, receivedAt, run);
        status.soon();
      },
      onState: (state) => {
        arrivals.linked(state);
        status.now();
      },
      onAuthFailure: authFailure,
      // What arrived, and what the pulse-shapers on this tab fired: the master sees the whole array.
      report: () => listenerReport(client, arrivals, firedHere(), meter.present ? { ...meter.group(clock.now(), true) } : undefined),
    });
    const stats = (): void =>
      node.send([
        null,
        { topic: "stats", payload: { ...listenerStats(client, arrivals, name), ...(meter.present ? { measured: meter.counters(clock.now()) } : {}) } },
      ]);
    stops.push(every(clock, statsMs, stats));
    notices(
      LISTENER_NOTICES,
      () => ({ ...arrivals.counters(), rejected: client.counters.rejected }),
      () => client.lastErrors[client.lastErrors.length - 1],
    );
    node.on("input", (msg, _send, done) => {
      if (msg.topic === "measure") {
        const error = meter.take(msg.payload, clock.now());
        status.soon();
        if (error) return errors.fail(`measurement refused (counted as measured_bad, not averaged in): ${error}`, done);
      } else if (msg.stats === true) stats();
      else
        return errors.fail(
          'a listening bus node takes only a power sensor\'s readings (msg.topic "measure") and msg.stats = true; it sends nothing upstream but pings and reports',
          done,
        );
      done();
    });
    node.on("close", (_removed, done) => {
      client.stop();
      arrivals.clear();
      status.stop();
      for (const stop of stops) stop();
      done();
    });
    client.start();
  }

  RED.nodes.registerType("sqi-event-bus", SqiEventBusNode, { settings: rangesSetting("sqi-event-bus") });
};
