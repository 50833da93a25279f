// pulse-out: drives one GPIO with whole, timed pulses. The Node-RED shell around
// lib/pulse/timed-pin.ts, which runs this package's own helper (helper/sqi_pulse_out.py, on
// lgpio): Node-RED hands each pulse on whole ({on_ms}), the helper times both of its edges in
// its own thread and enforces the limits again on its side. A busy Node-RED can delay or drop
// a pulse (counted), never stretch it. On close the helper goes low and releases the pin.

import { clip, statusText } from "../lib/status";
import { parsePulseOutSettings, readPulseInput, TimedPin, type TimedPinCounters } from "../lib/pulse/timed-pin";
import type { Node, NodeDef, RED } from "./red";
import { clockOf, refuseInputs, StatusTicker, ThrottledErrors } from "./shell";

/** The counters the status shows when they are not 0, in this order. */
const NEWS: Array<[keyof TimedPinCounters, string]> = [
  ["late", "late"],
  ["unsent", "unsent"],
  ["clamped", "cut at a limit"],
  ["duty", "duty"],
  ["cut", "stopped"],
  ["narrow", "too narrow"],
  ["full", "queue full"],
  ["refused", "refused"],
];

module.exports = function (RED: RED) {
  function PulseOutNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const clock = clockOf(RED);
    const parsed = parsePulseOutSettings(def);
    if (!parsed.ok) return refuseInputs(node, "pulse-out", parsed.errors);
    const o = parsed.options;
    const errors = new ThrottledErrors(clock, node, "pulse-out");
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

    node.on("input", (msg, _send, done) => {
      const r = readPulseInput(msg, clock.now());
      if (r.kind === "error") errors.error(r.error, msg);
      else if (r.kind === "low") pin.low();
      else pin.pulse(r.widthMs, r.agoMs);
      status.soon();
      done();
    });

    node.on("close", (_removed, done) => {
      status.stop();
      // The helper goes low, releases the pin and exits; close waits for it (SIGTERM, then SIGKILL, if it hangs).
      void pin.close().then(() => done());
    });
  }

  RED.nodes.registerType("pulse-out", PulseOutNode);
};
