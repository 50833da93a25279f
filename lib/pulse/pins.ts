// Which GPIO pin each output node of a flow drives, and pins that more than one node claims.
// One process may hold a pin on the kernel's GPIO device: on a Pi 5, and on any Pi with
// Bookworm and later (rpi-lgpio under rpi-gpio out, lgpio under pulse-out), a second node on a
// pin fails with "GPIO busy"; with the old RPi.GPIO both drive it and fight. Pure: used by the
// lint on the repo's flows and by the nodes on the deployed flow.

/** Header pin -> BCM number, as rpi-gpio out maps a pin when "BCM" is not ticked. */
const BOARD_TO_BCM: Record<string, number> = {
  3: 2,
  5: 3,
  7: 4,
  8: 14,
  10: 15,
  11: 17,
  12: 18,
  13: 27,
  15: 22,
  16: 23,
  18: 24,
  19: 10,
  21: 9,
  22: 25,
  23: 11,
  24: 8,
  26: 7,
  29: 5,
  31: 6,
  32: 12,
  33: 13,
  35: 19,
  36: 16,
  37: 26,
  38: 20,
  40: 21,
};

/** The node types that claim a GPIO pin for a helper process of their own. */
export const PIN_NODE_TYPES = ["rpi-gpio out", "rpi-gpio in", "pulse-out"] as const;

type FlowNode = Record<string, unknown>;

/** The BCM pin a GPIO node drives (pulse-out always numbers it BCM), or undefined. */
export function bcmPinOf(n: FlowNode): number | undefined {
  if (!(PIN_NODE_TYPES as readonly unknown[]).includes(n.type)) return undefined;
  const pin = n.bcm === true || n.type === "pulse-out" ? Number(n.pin) : BOARD_TO_BCM[String(n.pin)];
  return pin !== undefined && Number.isInteger(pin) ? pin : undefined;
}

/** A node as a person finds it in the editor: its type and name, or its id. */
export function nodeLabel(n: FlowNode): string {
  const name = typeof n.name === "string" ? n.name.trim() : "";
  return `${String(n.type)} ${name ? JSON.stringify(name) : String(n.id)}`;
}

export interface SharedPin {
  pin: number;
  /** The ids of the nodes on it, in flow order. */
  ids: string[];
  /** One sentence: which nodes, what happens, what to do. */
  text: string;
}

/**
 * Pins claimed by more than one enabled GPIO node in `flow` (an array of nodes, as a flow
 * file or Node-RED's active config holds them). Disabled nodes and nodes on disabled tabs do
 * not run, so they claim nothing.
 */
export function sharedPins(flow: unknown): SharedPin[] {
  if (!Array.isArray(flow)) return [];
  const nodes = flow.filter((n): n is FlowNode => typeof n === "object" && n !== null && !Array.isArray(n));
  const offTabs = new Set(nodes.filter((n) => n.type === "tab" && n.disabled === true).map((n) => String(n.id)));
  const byPin = new Map<number, FlowNode[]>();
  for (const n of nodes) {
    if (n.d === true || offTabs.has(String(n.z))) continue;
    const pin = bcmPinOf(n);
    if (pin === undefined) continue;
    byPin.set(pin, [...(byPin.get(pin) ?? []), n]);
  }
  return [...byPin]
    .filter(([, on]) => on.length > 1)
    .map(([pin, on]) => ({
      pin,
      ids: on.map((n) => String(n.id)),
      text: `GPIO ${pin} is claimed by ${on.length} nodes (${on.map(nodeLabel).join(", ")}): one process may hold a pin, so on a Pi 5 or with Bookworm and later all but the first fail with "GPIO busy", and with the old RPi.GPIO they drive it against each other. Give each pin one node.`,
    }));
}

/**
 * What is wrong with an rpi-gpio out (digital) that does not initialise its pin low, in words
 * for a warning; undefined when nothing is (another node type, PWM, or low). Unticked, it may
 * drive the pin high on deploy, and its helper (nrgpio.py) writes its third argument, the
 * frequency (100), as the level when a SIGINT reaches it: high. Takes a node as a flow file
 * holds it (a running rpi-gpio out has its pin in BCM already: pass it with bcm: true).
 */
export function uninitialisedPin(n: FlowNode | null | undefined): string | undefined {
  if (n?.type !== "rpi-gpio out" || (n.out ?? "out") !== "out") return undefined;
  if (n.set === true && String(n.level) === "0") return undefined;
  const name = typeof n.name === "string" ? n.name.trim() : "";
  const what = `rpi-gpio out ${name ? `"${name}" ` : ""}(GPIO ${bcmPinOf(n) ?? String(n.pin)})`;
  const state = n.set === true ? "initialises its pin high" : 'does not initialise its pin ("Initialise pin state" unticked)';
  return `${what} ${state}: a deploy may drive it high, and a SIGINT to its helper (systemctl stop nodered without this package's drop-in) drives it high. Tick "Initialise pin state" and set it to low.`;
}
