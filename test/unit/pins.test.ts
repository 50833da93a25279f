// One node per GPIO pin: sharedPins (lib/pulse/pins.ts), which the lint runs on the repo's flows
// and the nodes on the deployed flow, finds every pin two enabled GPIO nodes claim, whatever
// numbering they use, and no other; uninitialisedPin names an rpi-gpio out that does not start low.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bcmPinOf, sharedPins, uninitialisedPin } from "../../lib/pulse/pins";

const out = (id: string, pin: string | number, more: Record<string, unknown> = {}) => ({
  id,
  z: "t",
  type: "rpi-gpio out",
  pin: String(pin),
  bcm: true,
  ...more,
});

describe("sharedPins", () => {
  it("finds two rpi-gpio out on one pin, one numbered BCM and one by its header pin, and names both with the fix", () => {
    const flow = [{ id: "t", type: "tab" }, out("a", 18, { name: "coil" }), out("b", 12, { bcm: false, name: "copy" }), out("c", 17)];
    assert.equal(bcmPinOf(flow[2]!), 18, "header pin 12 is GPIO 18");
    const shared = sharedPins(flow);
    assert.deepEqual(
      shared.map((s) => [s.pin, s.ids]),
      [[18, ["a", "b"]]],
    );
    assert.equal(
      shared[0]!.text,
      'GPIO 18 is claimed by 2 nodes (rpi-gpio out "coil", rpi-gpio out "copy"): one process may hold a pin, so on a Pi 5 or with Bookworm and later all but the first fail with "GPIO busy", and with the old RPi.GPIO they drive it against each other. Give each pin one node.',
    );
  });

  it("counts pulse-out (always BCM) and rpi-gpio in; a node without a name goes by its id", () => {
    const flow = [{ id: "po", z: "t", type: "pulse-out", pin: 5 }, { id: "in1", z: "t", type: "rpi-gpio in", pin: "5", bcm: true }, out("x", 6)];
    assert.deepEqual(
      sharedPins(flow).map((s) => s.text.slice(0, s.text.indexOf(":"))),
      ["GPIO 5 is claimed by 2 nodes (pulse-out po, rpi-gpio in in1)"],
    );
  });

  it("a disabled node, or a node on a disabled tab, claims nothing; neither does another type or a bad pin", () => {
    const flow = [
      { id: "t", type: "tab" },
      { id: "off", type: "tab", disabled: true },
      out("a", 18),
      out("b", 18, { d: true }),
      out("c", 18, { z: "off" }),
      { id: "d", z: "t", type: "debug", pin: "18", bcm: true },
      out("e", "x"),
      out("f", "x"),
    ];
    assert.deepEqual(sharedPins(flow), []);
    assert.deepEqual(sharedPins("not a flow"), []);
  });

  it("uninitialisedPin names a digital rpi-gpio out that does not start low by its GPIO number, and nothing else", () => {
    assert.match(uninitialisedPin(out("a", 12, { bcm: false, set: false, name: "led" }))!, /^rpi-gpio out "led" \(GPIO 18\) does not initialise its pin/);
    assert.match(uninitialisedPin(out("b", 17, { set: true, level: "1" }))!, /^rpi-gpio out \(GPIO 17\) initialises its pin high: /);
    assert.equal(uninitialisedPin(out("c", 17, { set: true, level: "0" })), undefined);
    assert.equal(uninitialisedPin(out("d", 17, { out: "pwm" })), undefined, "PWM has no initial level: it starts at duty 0");
    assert.equal(uninitialisedPin({ id: "e", type: "pulse-out", pin: 17 }), undefined);
  });
});
