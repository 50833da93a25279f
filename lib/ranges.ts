// The one table of every number a node's panel takes: its label, range, whether it must be whole,
// its default and its unit, by node type and field. The runtime checks a deployed value with it
// (lib/numbers.ts checkNumber), the sqi-dc CLI and the test fixtures take their limits and
// defaults from it, and the editor gets it as an exportable node setting (`<type>Ranges`, e.g.
// RED.settings.pulseShaperRanges; nodes/shell.ts rangesSetting) to mark a field red before deploy. A test checks, field by
// field, that no panel accepts what the runtime refuses (test/unit/ranges.test.ts).

import { CLONE_RULES } from "./container/clones";
import { DEFAULT_ACCEL_FACTOR, DEFAULT_LEAD_MS, MAX_SPEED } from "./container/player";
import { SIM_RULES } from "./power/sim-sensor";
import { SHAPER_RULES } from "./pulse/config";
import { PULSE_OUT_RULES } from "./pulse/timed-pin";
import type { NumberRule } from "./numbers";

/** The dc-container's start delay, in seconds, when the panel leaves it blank. */
export const DEFAULT_START_DELAY_S = 2;

export const PANEL_RANGES = {
  "pulse-shaper": SHAPER_RULES,
  "pulse-out": PULSE_OUT_RULES,
  "dc-container": {
    startDelay: { label: "Start delay", min: 0, max: 3600, default: DEFAULT_START_DELAY_S, unit: "s" },
    lead: { label: "Lead time", min: 0, max: 60_000, default: DEFAULT_LEAD_MS, unit: "ms" },
    accel: { label: "Acceleration factor", min: 0, max: MAX_SPEED, exclusiveMin: true, default: DEFAULT_ACCEL_FACTOR },
    ...CLONE_RULES,
  },
  "event-filter": {
    every: { label: "Decimation", min: 1, max: 1_000_000, integer: true, default: 1 },
    maxLate: { label: "Late limit", min: 0, max: 3_600_000, default: 0, unit: "ms" },
  },
  "sqi-bus": {
    port: { label: "Bus port", min: 1, max: 65535, integer: true, default: 8765 },
    maxFrame: { label: "Maximum frame size", min: 1024, max: 100 * 1024 * 1024, integer: true, default: 1024 * 1024, unit: "bytes" },
    qos: { label: "QoS", min: 0, max: 1, integer: true, default: 0 },
    keepalive: { label: "Keepalive", min: 1, max: 3600, integer: true, default: 15, unit: "s" },
  },
  "sqi-event-bus": {
    statsEvery: { label: "Stats every", min: 0, max: 3600, default: 5, unit: "s" },
  },
  "sqi-sim-sensor": SIM_RULES,
} as const satisfies Record<string, Record<string, NumberRule>>;

export type RangedType = keyof typeof PANEL_RANGES;
