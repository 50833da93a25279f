// sqi-sim-sensor: a SIMULATED power sensor, for a laptop without a Pi or a meter. It reads the
// simulated GPIO's pin log and, every interval, says what a coil of V and R on that pin would
// have drawn from a supply that sags under load (lib/power/sim-sensor.ts): the one place a model
// stands in for a meter, so that the measured-power path can be seen end to end. On a real Pi
// there is no pin log: it says so and sends nothing. Wire its output to a listening
// sqi-event-bus, as a real INA219/INA226 node would be.

import { realClock } from "../lib/clock";
import { formatWatts } from "../lib/power/meter";
import { PinLogTail } from "../lib/power/pin-log-tail";
import { SIM_RULES, SimSensor } from "../lib/power/sim-sensor";
import { checkNumber } from "../lib/numbers";
import { clip, statusText } from "../lib/status-line";
import type { Node, NodeDef, RED } from "./red";
import { clockOf, every, rangesSetting, refuseInputs, ThrottledErrors } from "./shell";

module.exports = function (RED: RED) {
  const clock = clockOf(RED);
  function SqiSimSensorNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const checked = {
      pin: checkNumber(def.pin, SIM_RULES.pin),
      volts: checkNumber(def.volts, SIM_RULES.volts),
      ohms: checkNumber(def.ohms, SIM_RULES.ohms),
      sag: checkNumber(def.sag, SIM_RULES.sag),
      every: checkNumber(def.every, SIM_RULES.every),
    };
    const problems = Object.values(checked).flatMap((c) => (c.ok ? [] : [c.error]));
    if (problems.length) return refuseInputs(node, clock, "sqi-sim-sensor", problems);
    const value = (k: keyof typeof checked): number => {
      const c = checked[k];
      return c.ok ? c.value : NaN;
    };
    const pin = value("pin");
    const file = String(def.pinLog ?? "").trim() || String(RED.util.evaluateNodeProperty("SQI_PIN_LOG", "env", node, {}) ?? "");
    const errors = new ThrottledErrors(clock, node, "sqi-sim-sensor");
    node.on("input", (_msg, _send, done) => errors.fail("takes no input; it reads the simulated GPIO's pin log by itself", done));
    if (!file) {
      // A real Pi (or Node-RED started without the simulated GPIO): nothing to simulate, and no number is made up.
      node.status({ fill: "grey", shape: "ring", text: "SIMULATED: no pin log here, silent" });
      return;
    }
    const tail = new PinLogTail(file);
    tail.skipToEnd();
    const sensor = new SimSensor(pin, { volts: value("volts"), ohms: value("ohms"), sagPct: value("sag") });
    let said = "";
    const read = (): void => {
      for (const r of tail.read()) sensor.onTime.take(r);
      if (tail.refused) {
        // A FIFO or a device named as the pin log: refused, never opened (it would block Node-RED), and said once.
        if (said !== tail.refused) node.error(`pin log ${file}: ${tail.refused}`);
        said = tail.refused;
        node.status({ fill: "red", shape: "ring", text: clip(`SIMULATED: pin log ${tail.refused}`) });
        return;
      }
      said = "";
      // The pin log is in this machine's true wall clock (the simulated GPIO's), whatever clock offset a simulated Pi has.
      const reading = sensor.read(realClock.now());
      if (!reading) return;
      node.send({ topic: "measure", payload: { power_w: reading.power_w, voltage_v: reading.voltage_v, current_a: reading.current_a }, simulated: true });
      node.status({
        fill: "blue",
        shape: sensor.onTime.high ? "dot" : "ring",
        text: statusText(sensor.onTime.records ? `SIMULATED pin ${pin} · ${formatWatts(reading.power_w)}` : `SIMULATED pin ${pin} · no edges yet`, [
          // Lines of the log that were not records, and records out of time order: skipped, and said.
          tail.malformed ? `${tail.malformed} bad line${tail.malformed === 1 ? "" : "s"}` : "",
          sensor.onTime.disordered ? `${sensor.onTime.disordered} out of order` : "",
        ]),
      });
    };
    node.status({ fill: "blue", shape: "ring", text: clip(`SIMULATED pin ${pin} · starting`) });
    read();
    const stop = every(clock, value("every") * 1000, read);
    node.on("close", (_removed, done) => {
      stop();
      done();
    });
  }

  RED.nodes.registerType("sqi-sim-sensor", SqiSimSensorNode, { settings: rangesSetting("sqi-sim-sensor") });
};
