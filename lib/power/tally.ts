// A master's view of what its Pis' sensors measured, from their reports: electrical energy
// drawn from the coil supplies (measured_*) beside the pulse-shapers' estimate
// (fired_energy_j, V^2/R x on-time where V and R are set), and their ratio. Shared by the
// roster (status and stats) and the SQI scope, so that both say the same.

import type { ReportGroups } from "../bus/frames";
import { MAX_POWER_W, SENSOR_SILENT_MS } from "./meter";

export interface PiPower {
  /** the latest reading, W (absent until one came) */
  power_w: number | null;
  /** measured electrical energy drawn since that Pi's deploy, J */
  energy_j: number;
  /** the shapers' estimate over the same time, J (null: no shaper there has V and R) */
  estimated_j: number | null;
  /** energy_j / estimated_j (null without an estimate) */
  ratio: number | null;
  /** no reading for SENSOR_SILENT_MS */
  silent: boolean;
  /** payloads the Pi refused */
  bad: number;
}

/** What one report says of the Pi's power (its `measured` group, and the estimate in `fired`); undefined when that Pi has no sensor wired. */
export function powerOf(r: Pick<ReportGroups, "fired" | "measured">): PiPower | undefined {
  const m = r.measured ?? {};
  if (m.samples === undefined && m.bad === undefined) return undefined;
  // A report is a listener's word: a value no sensor could give (negative, beyond the limits) is not summed.
  const energy = within(m.energy_j, MAX_ENERGY_J) ?? 0;
  const estimated = within(r.fired?.energy_j, MAX_ENERGY_J);
  return {
    power_w: within(m.power_w, MAX_POWER_W),
    energy_j: energy,
    estimated_j: estimated,
    ratio: ratioOf(energy, estimated),
    silent: m.age_ms === undefined || !(m.age_ms < SENSOR_SILENT_MS),
    bad: within(m.bad, Number.MAX_SAFE_INTEGER) ?? 0,
  };
}

/** Energy a report may claim at most, J: 100 kW for ten years is far below it. */
export const MAX_ENERGY_J = 1e14;

function within(x: number | undefined, max: number): number | null {
  return x !== undefined && Number.isFinite(x) && x >= 0 && x <= max ? x : null;
}

/** measured / estimated, to 3 decimals; null when there is no estimate to divide by. */
export function ratioOf(measured: number, estimated: number | null): number | null {
  return estimated !== null && estimated > 0 ? Math.round((measured / estimated) * 1000) / 1000 : null;
}

/** Every Pi with a sensor, summed: what all the coils drew together, measured, and the estimate beside it. */
export interface PowerSum {
  what: string;
  /** Pis whose reports carry a sensor's readings, and how many of those are silent */
  pis: number;
  silent: number;
  /** the latest readings summed, W */
  power_w: number;
  /** measured energy drawn since deploy, summed, J */
  energy_j: number;
  /** the estimate summed over the Pis that measure and have one, J */
  estimated_j: number | null;
  /** measured / estimated over those Pis */
  ratio: number | null;
}

export const POWER_WHAT =
  "electrical energy drawn from the coil supplies, as each Pi's sensor measured it; estimated_j is V^2/R x on-time from the pulse-shapers' settings";

export function sumPower(pis: Iterable<PiPower>): PowerSum {
  const s = { pis: 0, silent: 0, power_w: 0, energy_j: 0, estimated: 0, measuredWithEstimate: 0, withEstimate: 0 };
  for (const p of pis) {
    s.pis++;
    if (p.silent) s.silent++;
    else s.power_w += p.power_w ?? 0;
    s.energy_j += p.energy_j;
    if (p.estimated_j !== null) {
      s.withEstimate++;
      s.estimated += p.estimated_j;
      s.measuredWithEstimate += p.energy_j;
    }
  }
  const estimated = s.withEstimate ? round6(s.estimated) : null;
  return {
    what: POWER_WHAT,
    pis: s.pis,
    silent: s.silent,
    power_w: round6(s.power_w),
    energy_j: round6(s.energy_j),
    estimated_j: estimated,
    ratio: ratioOf(s.measuredWithEstimate, estimated),
  };
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
