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
