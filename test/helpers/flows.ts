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
