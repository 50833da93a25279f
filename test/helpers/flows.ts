// Flow-file fixtures shared by the tests and benchmarks.

import { SHAPER_RULES } from "../../lib/pulse/config";

/**
 * A pulse-shaper's panel defaults as a flow file carries them (add type, width, rows, wires):
 * the limits from the one table of ranges (lib/ranges.ts), so they cannot drift from the
 * runtime's. measureEvery is 0 (reports only on request), the tests' own choice.
 */
export const SHAPER_DEFAULTS = {
  output: "digital",
  unknown: "pulse",
  late: "fire",
  maxOn: SHAPER_RULES.maxOn.default,
  maxDuty: SHAPER_RULES.maxDuty.default,
  dutyWindow: SHAPER_RULES.dutyWindow.default,
  minOff: SHAPER_RULES.minOff.default,
  maxRate: SHAPER_RULES.maxRate.default,
  pinGuard: SHAPER_RULES.pinGuard.default,
  volts: "",
  ohms: "",
  measureEvery: 0,
};

/** A core file node that appends each msg.payload as a JSON line to `filename`: how a test reads a Node-RED process's output. */
export function fileNode(id: string, z: string, filename: string): Record<string, unknown> {
  return {
    id,
    z,
    type: "file",
    name: "",
    filename,
    filenameType: "str",
    appendNewline: true,
    createDir: false,
    overwriteFile: "false",
    encoding: "none",
    wires: [],
  };
}
