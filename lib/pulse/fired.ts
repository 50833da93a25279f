// What this Node-RED's pulse outputs have fired, summed, for the bus listener to report
// upstream: the master then sees every Pi's pulse counts, not only what each received.
// A process-wide registry, because both nodes live in the same runtime but are wired
// independently.

export type FiredCounters = Record<string, number>;

const sources = new Set<() => FiredCounters>();

/** Adds a source of counters; returns the function that removes it (call it on close). */
export function registerFired(source: () => FiredCounters): () => void {
  sources.add(source);
  return () => {
    sources.delete(source);
  };
}

/** Every source's counters summed key by key, each key prefixed "fired_". */
export function firedTotals(): FiredCounters {
  const out: FiredCounters = {};
  for (const s of sources) {
    for (const [k, v] of Object.entries(s())) if (Number.isFinite(v)) out[`fired_${k}`] = (out[`fired_${k}`] ?? 0) + v;
  }
  return out;
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
