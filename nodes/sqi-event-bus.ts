// sqi-event-bus: one node, two roles. broadcast (the master): every input event goes to
// every connected listener. listen (a Pi): events arrive on output 1 with msg.sqi.at
// converted once to this Pi's clock, so the pulse-shapers of every Pi fire together.
// Output 2 carries stats (both roles) and the listeners' reports (broadcast role).
// The wire, clock sync and accounting live in lib/bus; this file translates to Node-RED.

import * as os from "node:os";
import { realClock, type Clock, type TimerHandle } from "../lib/clock";
import { BusClient } from "../lib/bus/client";
import { eventFrame, newRunId, type EventFrame, type ReportFrame } from "../lib/bus/frames";
import { AbsenceLedger } from "../lib/bus/ledger";
import { LISTENER_NOTICES, MASTER_NOTICES, MinuteNotices, NOTICE_EVERY_MS } from "../lib/bus/notices";
import { SequenceTracker } from "../lib/bus/sequence";
import { Slices } from "../lib/bus/slices";
import { firedTotals } from "../lib/pulse/fired";
import { scope } from "../lib/scope";
import { BusServer } from "../lib/bus/server";
import { MqttListener, MqttMaster, type MqttSettings } from "../lib/bus/mqtt";
import { checkNumber } from "../lib/settings";
import type { Node, NodeDef, NodeMessage, RED } from "./red";
import type { BusConfigNode } from "./sqi-bus";
import { clip, statusText } from "../lib/status";
import { fromFrame, LATE_TOLERANCE_MS, sqiOf } from "../lib/sqi";

const STATUS_EVERY_MS = 500;

type TlsNode = Node & { addTLSOptions(opts: Record<string, unknown>): void };

module.exports = function (RED: RED) {
  function SqiEventBusNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const clock: Clock = (RED.settings.sqiClock as Clock | undefined) ?? realClock;
    const config = RED.nodes.getNode(String(def.bus ?? "")) as BusConfigNode | null;
    const role = def.role === "listen" ? "listen" : "broadcast";
    const statsEvery = checkNumber(def.statsEvery, { label: "Stats every", min: 0, max: 3600, default: 5, unit: "s" });
    const problems = [...(config ? config.bus.errors : ["choose or add a bus (sqi-bus config node)"]), ...(statsEvery.ok ? [] : [statsEvery.error])];
    if (role === "listen" && config && config.bus.transport === "ws" && !config.bus.url) problems.push("the bus has no listener URL (ws://master:8765/)");
    if (problems.length || !config) {
      node.error(`sqi-event-bus: ${problems.join("; ")}`);
      node.status({ fill: "red", shape: "ring", text: clip(problems[0]!) });
      return;
    }
    const bus = config.bus;
    const tls: Record<string, unknown> = {};
    if (bus.tls) (RED.nodes.getNode(bus.tls) as TlsNode | null)?.addTLSOptions(tls);
    const statsMs = (statsEvery.ok ? statsEvery.value : 5) * 1000;
    const mqtt = bus.transport === "mqtt";
    const mqttSettings: MqttSettings = { ...bus.mqtt, maxPayload: bus.maxFrame, ...(bus.tls ? { tls } : {}) };
    const where = mqtt ? bus.mqtt.url.replace(/\/\/[^@/]*@/, "//") : "";
    const authFailure = (text: string): void => node.error(`sqi-event-bus: ${where}: ${text}`);
    let statusTimer: TimerHandle | undefined;
    let statsTimer: TimerHandle | undefined;
    let noticeTimer: TimerHandle | undefined;
    /** Once a minute at most, the refusals and rejections since the last time, as one warning. */
    const logNotices = (notices: MinuteNotices, counters: () => Record<string, number>, recent: () => string | undefined): void => {
      noticeTimer = clock.setTimer(() => {
        const line = notices.line(counters(), recent());
        if (line) node.warn(`sqi-event-bus: ${line}`);
        logNotices(notices, counters, recent);
      }, NOTICE_EVERY_MS);
    };
    let rateMark = { at: clock.now(), events: 0 };

    const scheduleStats = (send: () => void): void => {
      if (statsMs <= 0) return;
      statsTimer = clock.setTimer(() => {
        send();
        scheduleStats(send);
      }, statsMs);
    };
    const rate = (events: number): number => {
      const now = clock.now();
      const r = ((events - rateMark.events) * 1000) / Math.max(1, now - rateMark.at);
      rateMark = { at: now, events };
      return r;
    };

    if (role === "broadcast") {
      let seq = 0;
      if (!mqtt && !bus.token) node.warn(`sqi-event-bus: the bus on port ${bus.port} is open: any client on the network can connect and listen. Set a token in the bus config.`);
      // A new run each deploy: a listener knows this master's seqs begin again, whenever it reconnects.
      const run = newRunId();
      const ledger = new AbsenceLedger(run);
      const onReport = (report: ReportFrame & { remote: string }): void => {
        const now = clock.now();
        const r = { ...ledger.take(report, now), remote: report.remote };
        scope.report(node.id, now, r);
        node.send([null, { topic: "report", payload: r }]);
      };
      const server = mqtt
        ? new MqttMaster({ clock, settings: mqttSettings, name: os.hostname(), run, onReport, onChange: () => render(), onAuthFailure: authFailure })
        : new BusServer({
            run,
            clock,
            host: bus.host,
            port: bus.port,
            path: bus.path,
            token: bus.token,
            maxPayload: bus.maxFrame,
            name: os.hostname(),
            ...(bus.tls ? { tls } : {}),
            onReport,
            onChange: () => render(),
          });
      const place = (): string => (server instanceof MqttMaster ? where : `:${server.port}`);
      let listening = false;
      let failed = "";
      const render = (): void => {
        clock.clearTimer(statusTimer);
        statusTimer = undefined;
        if (failed) {
          node.status({ fill: "red", shape: "ring", text: clip(failed) });
          return;
        }
        if (server instanceof MqttMaster && server.status.state !== "connected") {
          const st = server.status;
          node.status({ fill: st.state === "connecting" ? "yellow" : "red", shape: "ring", text: clip(st.detail && st.detail !== bus.mqtt.url ? `${st.state}: ${st.detail}` : `${st.state}: ${short(where)}`) });
          return;
        }
        const c = server.counters;
        const refused = c.unauthorized + c.bad_requests + c.refused_full;
        const lost = [c.events_dropped ? `dropped ${c.events_dropped}` : "", c.rejected ? `rejected ${c.rejected}` : "", refused ? `refused ${refused}` : "", c.oversize ? `oversize ${c.oversize}` : ""].filter(Boolean);
        const n = server.clients.length;
        node.status({
          fill: (!mqtt && !bus.token) || lost.length ? "yellow" : "green",
          shape: listening ? "dot" : "ring",
          text: statusText(`${listening ? short(place()) : "starting"} · ${n} listener${n === 1 ? "" : "s"}`, [mqtt || bus.token ? "" : "no token", ...lost, `${rate(c.events).toFixed(0)} ev/s`]),
        });
      };
      const stats = (): void =>
        node.send([null, { topic: "stats", payload: { role, transport: bus.transport, ...(server instanceof MqttMaster ? { broker: where, state: server.status.state } : { port: server.port, buffered_bytes: server.buffered }), listeners: server.clients, counters: { ...server.counters }, recent: [...server.lastErrors] } }]);
      server.listen().then(
        () => {
          listening = true;
          render();
        },
        (e: NodeJS.ErrnoException) => {
          failed = e.code === "EADDRINUSE" ? `port ${bus.port} is in use` : `cannot listen on ${bus.host}:${bus.port}: ${e.message}`;
          node.error(`sqi-event-bus: ${failed}`);
          render();
        },
      );
      scheduleStats(stats);
      logNotices(new MinuteNotices(MASTER_NOTICES), () => ({ ...server.counters }), () => server.lastErrors[server.lastErrors.length - 1]);
      node.on("input", (msg, _send, done) => {
        if (msg.stats === true) {
          stats();
          done();
          return;
        }
        if (typeof msg.topic !== "string" || msg.topic.trim() === "") {
          node.error("sqi-event-bus: msg.topic must be the event name (a non-empty string)", msg);
          done();
          return;
        }
        server.send(eventFrame(msg.topic, msg.payload, sqiOf(msg), ++seq));
        if (!statusTimer) statusTimer = clock.setTimer(render, STATUS_EVERY_MS);
        done();
      });
      node.on("close", (_removed, done) => {
        clock.clearTimer(statusTimer);
        clock.clearTimer(statsTimer);
        clock.clearTimer(noticeTimer);
        scope.removeMaster(node.id);
        server.close().then(() => done(), () => done());
      });
      render();
      return;
    }

    // listen
    const late = def.late === "drop" ? "drop" : "fire";
    const name = String(def.listenerName ?? "").trim() || String(RED.util.evaluateNodeProperty("SQI_NODE_NAME", "env", node, {}) ?? "") || os.hostname();
    const tracker = new SequenceTracker();
    // This listener's life: the master accounts for what it sent while a previous life was away.
    const instance = newRunId();
    // missed: events that fell due while this listener was not connected (a broker redelivering
    // them after a reconnect): counted, never fired late in a burst, whatever the late policy.
    const counts = { late: 0, late_dropped: 0, unsynced: 0, missed: 0 };
    let connectedSince = -Infinity;
    const common = {
      clock,
      name,
      instance,
      run: () => tracker.stream.run,
      onEvents: (events: EventFrame[], receivedAt: number, run: string | undefined) => deliver(events, receivedAt, run),
      onState: (state: string) => {
        if (state === "connected" && connectedSince === -Infinity) connectedSince = clock.now();
        if (state !== "connected") connectedSince = -Infinity;
        render();
      },
      // What arrived, and what this Pi's pulse-shapers fired: the master sees the whole array.
      report: (): Record<string, number> => {
        const { first_seq, last_seq } = tracker.stream;
        return { ...tracker.counters, ...counts, backlog_dropped: slices.dropped, reconnects: client.counters.reconnects, rejected: client.counters.rejected, ...(first_seq !== undefined ? { first_seq } : {}), ...(last_seq !== undefined ? { last_seq } : {}), ...firedTotals() };
      },
    };
    const client: BusClient | MqttListener = mqtt
      ? new MqttListener({ ...common, settings: mqttSettings, onAuthFailure: authFailure })
      : new BusClient({ ...common, url: bus.url, token: bus.token, maxPayload: bus.maxFrame, ...(bus.tls ? { tls } : {}) });

    // One send per message: Node-RED deep-clones every message after the first of an array
    // sent at once (the listener's largest cost in a profile at 85,000 events/s). Each message
    // here is a new object, so nothing is shared without the clone. A big frame goes on in
    // slices, a turn of the event loop each (its events are read then too), so that it cannot
    // hold up a pulse's falling edge.
    const slices = new Slices<{ e: EventFrame; receivedAt: number; run: string | undefined }>(clock, ({ e, receivedAt, run }) => {
      tracker.follow(run);
      const m = toMessage(e, receivedAt);
      if (m) node.send([m, null]);
    });

    function deliver(events: EventFrame[], receivedAt: number, run: string | undefined): void {
      slices.push(events.map((e) => ({ e, receivedAt, run })));
      if (!statusTimer) statusTimer = clock.setTimer(render, STATUS_EVERY_MS);
    }

    /** One event as the flow gets it, or undefined (and counted) when it is not to be fired. */
    function toMessage(e: EventFrame, receivedAt: number): NodeMessage | undefined {
      if (tracker.see(e.seq) === "duplicate") return undefined;
      const sqi = fromFrame(e);
      if (e.at !== undefined) {
        const local = client.sync.toLocal(e.at);
        if (local === undefined) {
          counts.unsynced++;
          return undefined;
        }
        sqi.master_at = e.at;
        sqi.at = local;
        if (local < connectedSince - LATE_TOLERANCE_MS) {
          counts.missed++;
          return undefined;
        }
        // Late against when it arrived, not when its slice went on: waiting in the slices is this node's doing.
        if (local < receivedAt - LATE_TOLERANCE_MS) {
          counts.late++;
          if (late === "drop") {
            counts.late_dropped++;
            return undefined;
          }
          sqi.at = receivedAt;
        }
      }
      return { topic: e.event, payload: e.payload ?? {}, sqi };
    }

    function render(): void {
      // Called by its own timer and on every state change: one timer chain at most.
      clock.clearTimer(statusTimer);
      statusTimer = undefined;
      const { state, detail } = client.status;
      if (state !== "connected") {
        node.status({ fill: state === "connecting" ? "yellow" : "red", shape: "ring", text: clip(state === "connecting" ? `connecting to ${short(detail)}` : `${state}${detail ? `: ${short(detail)}` : ""}`) });
        return;
      }
      const e = client.sync.estimate();
      const c = tracker.counters;
      const lost = [c.missing ? `missing ${c.missing}` : "", c.implausible ? `implausible ${c.implausible}` : "", counts.late ? `late ${counts.late}` : "", counts.unsynced ? `unsynced ${counts.unsynced}` : "", counts.missed ? `missed ${counts.missed}` : "", slices.dropped ? `backlog dropped ${slices.dropped}` : "", client.counters.rejected ? `rejected ${client.counters.rejected}` : ""].filter(Boolean);
      node.status({
        fill: lost.length ? "yellow" : "green",
        shape: "dot",
        // The clock offset first (what synchronises the pins); rtt and every counter are in the stats output.
        text: statusText(e ? `offset ${e.offsetMs >= 0 ? "+" : ""}${e.offsetMs.toFixed(2)} ± ${e.uncertaintyMs.toFixed(2)} ms` : "connected · measuring", [...lost, `${rate(client.counters.events).toFixed(0)} ev/s`]),
      });
      statusTimer = clock.setTimer(render, STATUS_EVERY_MS);
    }

    const stats = (): void => {
      const e = client.sync.estimate();
      node.send([null, { topic: "stats", payload: { role, name, state: client.status.state, detail: client.status.detail, offset_ms: e?.offsetMs ?? null, rtt_ms: e?.rttMs ?? null, uncertainty_ms: e?.uncertaintyMs ?? null, counters: { ...tracker.counters, ...counts, backlog_dropped: slices.dropped, ...client.counters }, longest_stall_ms: { receive: round3(client.longestReceiveMs), hand_on: round3(slices.longestMs) } } }]);
    };
    scheduleStats(stats);
    logNotices(new MinuteNotices(LISTENER_NOTICES), () => ({ ...tracker.counters, backlog_dropped: slices.dropped, rejected: client.counters.rejected }), () => undefined);
    node.on("input", (msg, _send, done) => {
      if (msg.stats === true) stats();
      else node.error("sqi-event-bus: a listening bus node sends nothing upstream but pings and reports; send msg.stats = true for its stats", msg);
      done();
    });
    node.on("close", (_removed, done) => {
      client.stop();
      slices.clear();
      clock.clearTimer(statusTimer);
      clock.clearTimer(statsTimer);
      clock.clearTimer(noticeTimer);
      done();
    });
    client.start();
  }

  RED.nodes.registerType("sqi-event-bus", SqiEventBusNode);
};

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A URL without its scheme and trailing slash, for a status: "mqtt://host:1883/" -> "host:1883". */
function short(url: string): string {
  return url.replace(/^[a-z]+:\/\//, "").replace(/\/$/, "");
}
