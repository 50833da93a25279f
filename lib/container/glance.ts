// A container at a glance, for the dc-container panel: what the node would load from its
// source (the same loaders), one lane per event name with the ticks that hold it, how long one
// pass lasts at the speed the node would play it, and the events per second its clones ask
// for, from the Player itself. Problems are listed as `sqi-dc validate` prints them.

import { VirtualClock } from "../clock";
import { checkNumber } from "../numbers";
import { PANEL_RANGES } from "../ranges";
import { parseCloneSettings } from "./clones";
import { loadContainerFile, MAX_LISTED_PROBLEMS, parseContainerText, problemLine, type LoadResult } from "./format";
import { Player } from "./player";
import { containerCandidates, resolveContainerPath } from "./source";

/** Event names drawn at most; the rest are counted in `moreNames`. */
export const MAX_LANES = 40;
/** Tick marks per lane at most (the lane's count stays whole). */
export const MAX_LANE_TICKS = 2000;

export interface Lane {
  event: string;
  count: number;
  /** The ticks that hold this event, ascending, at most MAX_LANE_TICKS. */
  ticks: number[];
}

export type Glance =
  | {
      ok: true;
      label: string;
      containerId: string;
      glyphs: number;
      maxTick: number;
      loop: boolean;
      /** The speed factor the node plays it at (runtime_speed and the node's acceleration factor). */
      speed: number;
      /** ms between ticks at that speed. */
      tickMs: number;
      /** One pass, ms at that speed. */
      lengthMs: number;
      clones: number;
      /** Events per second over all clones at that speed: what the node's status and the shapers will see. */
      ratePerSecond: number;
      lanes: Lane[];
      moreNames: number;
    }
  | { ok: false; label: string; problems: string[] };

/** The panel's source fields: a file (against `baseDir`, as the node resolves it) or inline JSON. */
export function glance(def: Record<string, unknown>, baseDir: string): Glance {
  const inline = def.source === "inline";
  const file = String(def.file ?? "").trim();
  const label = inline ? "inline JSON" : file || "dc-container";
  let result: LoadResult;
  if (inline) result = parseContainerText(String(def.json ?? ""));
  else if (file === "") return { ok: false, label, problems: ["no file is set: choose a .dc file or paste JSON"] };
  else {
    result = loadContainerFile(resolveContainerPath(file, baseDir));
    if (!result.ok && result.problems[0]?.message === "file not found")
      result.problems[0] = { path: "", message: `file not found (looked for ${containerCandidates(file, baseDir).join(", ")})` };
  }
  if (!result.ok) {
    const lines = result.problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => problemLine(label, p));
    if (result.problems.length > MAX_LISTED_PROBLEMS) lines.push(`${label}: ... and ${result.problems.length - MAX_LISTED_PROBLEMS} more problems`);
    return { ok: false, label, problems: lines };
  }
  const c = result.container;
  const clones = parseCloneSettings(def);
  if (!clones.ok) return { ok: false, label, problems: clones.errors.map((e) => `dc-container: ${e}`) };
  const accel = checkNumber(def.accel, PANEL_RANGES["dc-container"].accel);
  if (!accel.ok) return { ok: false, label, problems: [`dc-container: ${accel.error}`] };
  // The Player of one copy (phases for a million clones cost it 0.2 s, and change no rate): the clones' rate is n times its.
  const player = new Player({
    clock: new VirtualClock(0),
    onGlyph: () => undefined,
    clones: { ...clones.settings, clones: 1 },
    accelFactor: accel.value,
  });
  player.load(c);

  const byName = new Map<string, { count: number; ticks: Set<number> }>();
  for (const g of c.glyphs) {
    let lane = byName.get(g.event);
    if (!lane) byName.set(g.event, (lane = { count: 0, ticks: new Set() }));
    lane.count++;
    if (lane.ticks.size < MAX_LANE_TICKS) lane.ticks.add(g.tick);
  }
  const lanes = [...byName.entries()].map(([event, l]) => ({ event, count: l.count, ticks: [...l.ticks].sort((a, b) => a - b) }));
  const maxTick = c.glyphs.reduce((m, g) => Math.max(m, g.tick), 0);
  return {
    ok: true,
    label,
    containerId: c.container_id,
    glyphs: c.glyphs.length,
    maxTick,
    loop: c.loop === true,
    speed: player.speed,
    tickMs: player.periodMs,
    lengthMs: maxTick * player.periodMs,
    clones: clones.settings.clones,
    ratePerSecond: player.intendedRate * clones.settings.clones,
    lanes: lanes.slice(0, MAX_LANES),
    moreNames: Math.max(0, lanes.length - MAX_LANES),
  };
}
