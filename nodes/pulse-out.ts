// pulse-out: drives one GPIO with whole, timed pulses. The Node-RED shell around
// lib/pulse/timed-pin.ts, which runs this package's own helper (helper/sqi_pulse_out.py, on
// lgpio): Node-RED hands each pulse on whole ({on_ms}), the helper times both of its edges in
// its own thread and enforces the limits again on its side. A busy Node-RED can delay or drop
// a pulse (counted), never stretch it. A pulse the kernel still held on past the maximum on-time
// or duty (the helper's own thread not run in time) is counted and said in the log. On close
// the helper goes low and releases the pin.

import type { Clock } from "../lib/clock";
import { clip, statusText } from "../lib/status-line";
import { sharedPins } from "../lib/pulse/pins";
import { parsePulseOutSettings, readPulseInput, TimedPin, type OverPulse, type TimedPinCounters, type TimedPinOptions } from "../lib/pulse/timed-pin";
import { runtimeHooks } from "./pin-guard";
import type { Node, NodeDef, RED } from "./red";
import { clockOf, rangesSetting, refuseInputs, StatusTicker, ThrottledErrors } from "./shell";

/** The counters the status shows when they are not 0, in this order. */
const NEWS: Array<[keyof TimedPinCounters, string]> = [
  ["over", "stretched"],
  ["late", "late"],
  ["unsent", "unsent"],
  ["clamped", "cut at a limit"],
  ["duty", "duty"],
  ["cut", "stopped"],
  ["narrow", "too narrow"],
  ["full", "queue full"],
  ["refused", "refused"],
];

/** A warning in the log at most this often about limits passed at the pin; the rest are summed into the next. */
const OVER_WARN_EVERY_MS = 10_000;

/**
 * Says in the log when the pin passed a limit (a pulse longer than the maximum on-time, or more
 * on-time in a window than the maximum duty): the first at once, then at most one warning per
 * OVER_WARN_EVERY_MS with what came since, and the rest on close. Each ends with the total, so
 * nothing over a limit goes unsaid.
 */
class OverWarnings {
  private last = -Infinity;
  private on = { held: 0, widest: 0 };
  private duty = { held: 0, most: 0 };
  private late = 0;
  private total = 0;

  constructor(
    private readonly clock: Clock,
    private readonly node: Pick<Node, "warn">,
    private readonly o: TimedPinOptions,
    private readonly realtime: () => boolean,
  ) {}

  add(p: OverPulse, total: number): void {
    if (p.limit === "on") ((this.on.held += 1), (this.on.widest = Math.max(this.on.widest, p.widthMs)));
    else ((this.duty.held += 1), (this.duty.most = Math.max(this.duty.most, p.windowOnMs)));
    this.late = Math.max(this.late, p.fallLateMs);
    this.total = total;
    if (this.clock.now() - this.last >= OVER_WARN_EVERY_MS) this.flush();
  }

  flush(): void {
    if (!this.on.held && !this.duty.held) return;
    const o = this.o;
    const what = [
      this.on.held === 1 ? `a pulse was ${this.on.widest.toFixed(2)} ms at the pin, over the maximum on-time of ${o.maxOnMs} ms` : "",
      this.on.held > 1 ? `${this.on.held} pulses were up to ${this.on.widest.toFixed(2)} ms at the pin, over the maximum on-time of ${o.maxOnMs} ms` : "",
      this.duty.held
        ? `the pin was on up to ${this.duty.most.toFixed(2)} ms in a ${o.dutyWindowMs} ms window, over the maximum duty of ${Math.round(o.maxDuty * 1000) / 10} %`
        : "",
    ].filter(Boolean);
    const why = this.realtime()
      ? "the kernel ran its real-time thread late"
      : "the kernel ran it late: at normal priority a busy machine can; tick Priority and grant real-time priority (see the help)";
    this.node.warn(
      `pulse-out: GPIO ${o.pin}: ${what.join("; and ")}: the helper wrote the fall up to ${this.late.toFixed(2)} ms late (${why}) · ${this.total} over in all`,
    );
    this.last = this.clock.now();
    this.on = { held: 0, widest: 0 };
    this.duty = { held: 0, most: 0 };
    this.late = 0;
  }
}

module.exports = function (RED: RED) {
  const clock = clockOf(RED);
  const hooks = runtimeHooks(RED);
  function PulseOutNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const parsed = parsePulseOutSettings(def);
    if (!parsed.ok) return refuseInputs(node, clock, "pulse-out", parsed.errors);
    const o = parsed.options;
    const errors = new ThrottledErrors(clock, node, "pulse-out");
    const overs = new OverWarnings(clock, node, o, () => pin.state.state === "ready" && pin.state.realtime);
    const pin = new TimedPin(o, {
      state: (st) => {
        if (st.state === "down") node.error(`pulse-out: GPIO ${o.pin}: ${st.reason}`);
        else if (st.state === "ready")
          node.log(
            `pulse-out: GPIO ${o.pin} on gpiochip${st.chip}${st.simulated ? " (SIMULATED lgpio)" : ""}, ${st.realtime ? "real-time priority" : "normal priority"}`,
          );
        status.now();
      },
      fired: () => status.soon(),
      over: (p) => {
        overs.add(p, pin.counters.over);
        status.soon();
      },
      warn: (text) => node.warn(`pulse-out: ${text}`),
    });
    const status = new StatusTicker(clock, node, () => {
      const st = pin.state;
      if (st.state === "starting") return { status: { fill: "yellow", shape: "ring", text: `GPIO ${o.pin}: starting` } };
      if (st.state === "down") return { status: { fill: "red", shape: "ring", text: clip(`stopped: ${st.reason}`) } };
      const c = pin.counters;
      const news = NEWS.filter(([k]) => c[k] > 0).map(([k, label]) => `${label} ${c[k]}`);
      const head = `${st.simulated ? "SIMULATED " : ""}GPIO ${o.pin}: ${c.fired} fired`;
      return { status: { fill: news.length ? "yellow" : "green", shape: "dot", text: statusText(head, news) } };
    });
    pin.start();
    status.now();
    // Another node on this pin: its helper or this one fails with "GPIO busy" (lgpio), which says less than this.
    const stopWatching = hooks.onFlowsStarted((ev) => {
      for (const shared of sharedPins(ev?.config?.flows)) if (shared.ids.includes(node.id)) node.warn(`pulse-out: ${shared.text}`);
    });

    node.on("input", (msg, _send, done) => {
      const r = readPulseInput(msg, clock.now());
      status.soon();
      if (r.kind === "error") return errors.fail(r.error, done);
      if (r.kind === "low") pin.low();
      else pin.pulse(r.widthMs, r.agoMs);
      done();
    });

    node.on("close", (_removed, done) => {
      stopWatching();
      status.stop();
      overs.flush();
      // The helper goes low, releases the pin and exits; close waits for it (SIGTERM, then SIGKILL, if it hangs).
      void pin.close().then(() => done());
    });
  }

  RED.nodes.registerType("pulse-out", PulseOutNode, { settings: rangesSetting("pulse-out") });
};
