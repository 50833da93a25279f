// What a listener's pulse-shapers have fired, summed, for the bus listener to report upstream:
// the master then sees every Pi's pulse counts, not only what each received. Which shapers a
// listener speaks for is the flow's wiring: those on its own flow tab (shapersOf); its node
// shell reads them from the running nodes. Nothing here is process-wide.

export type FiredCounters = Record<string, number>;

/** The shapers' counters summed key by key: a report's `fired` group. */
export function firedTotals(sources: Iterable<FiredCounters>): FiredCounters {
  const out: FiredCounters = {};
  for (const s of sources) {
    for (const [k, v] of Object.entries(s)) if (Number.isFinite(v)) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

/** A deployed node as the runtime's flow config has it: enough to find a tab's buses and shapers. */
export interface DeployedNode {
  id: string;
  type: string;
  z?: string;
  role?: unknown;
  d?: unknown;
}

/**
 * The pulse-shapers a listening bus speaks for: those on its own flow tab (as a catch node's
 * scope is its tab), when it is the first enabled listening bus there. A second listening bus on
 * the same tab speaks for none, so no pulse is counted twice; `second` says it is one.
 */
export function shapersOf(bus: { id: string; z?: string }, deployed: readonly DeployedNode[]): { shapers: string[]; second: boolean } {
  const onTab = deployed.filter((n) => n.z === bus.z && !n.d);
  const first = onTab.find((n) => n.type === "sqi-event-bus" && n.role === "listen");
  if (first && first.id !== bus.id) return { shapers: [], second: true };
  return { shapers: onTab.filter((n) => n.type === "pulse-shaper").map((n) => n.id), second: false };
}

/**
 * What a shaper may report as fired while the pin's helper may be dead. When the wired
 * rpi-gpio out says its helper stopped, the counters are held where they were: what the
 * shaper plans after that never reached a pin, and is counted as `unfired_pulses` instead.
 * When a new helper runs again (a redeploy), counting goes on without the gap.
 */
export class FiredWhilePinUp {
  private readonly gap: Record<string, number> = {};
  private heldAt: Record<string, number> | undefined;

  get pinDown(): boolean {
    return this.heldAt !== undefined;
  }

  down(current: Record<string, number>): void {
    this.heldAt ??= { ...current };
  }

  up(current: Record<string, number>): void {
    if (!this.heldAt) return;
    for (const [k, v] of Object.entries(current)) this.gap[k] = (this.gap[k] ?? 0) + v - (this.heldAt[k] ?? 0);
    this.heldAt = undefined;
  }

  /** The counters that reached a pin, and unfired_pulses: those planned while it was down. */
  fired(current: Record<string, number>): FiredCounters {
    const from = this.heldAt ?? current;
    const out: FiredCounters = {};
    for (const [k, v] of Object.entries(from)) out[k] = v - (this.gap[k] ?? 0);
    out.unfired_pulses = (this.gap.pulses ?? 0) + (this.heldAt ? (current.pulses ?? 0) - (this.heldAt.pulses ?? 0) : 0);
    return out;
  }
}
