// Flow-file fixtures shared by the tests and benchmarks.

/** A pulse-shaper's panel defaults as a flow file carries them (add type, width, rows, wires). */
export const SHAPER_DEFAULTS = {
  output: "digital",
  unknown: "pulse",
  late: "fire",
  maxOn: 100,
  maxDuty: 50,
  dutyWindow: 1000,
  minOff: 1,
  maxRate: 500,
  volts: "",
  ohms: "",
  measureEvery: 0,
};
