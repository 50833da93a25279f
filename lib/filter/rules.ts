// event-filter's rules without Node-RED: event-name patterns (exact, a comma list, or
// wildcards * and ?), first-match or all-matches routing, every-Nth decimation and the
// late-drop test. JSONata conditions are Node-RED's own and are evaluated by the shell.

export interface FilterRule {
  /** "proton_collision", "proton_collision, fusion_tick" or "proton_*". Blank matches every event. */
  event: string;
  /** Optional JSONata condition on the message; evaluated by the node. */
  condition?: string;
}

/** Compiles a name pattern into a test. */
export function namePattern(pattern: string): (name: string) => boolean {
  const alternatives = pattern
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (alternatives.length === 0) return () => true;
  const tests = alternatives.map((p) => {
    if (!/[*?]/.test(p)) return (n: string) => n === p;
    const re = new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".")}$`,
    );
    return (n: string) => re.test(n);
  });
  return (name) => tests.some((t) => t(name));
}

/**
 * Passes one event in every `n` (the 1st, the n+1th, ...); n = 1 passes all. An aggregated
 * message of `count` events passes as many as fall on the every-nth places, so a count is
 * scaled exactly as the same events sent one by one would be.
 */
export class Decimator {
  private seen = 0;
  constructor(readonly every: number) {}
  pass(): boolean {
    return this.take(1) === 1;
  }
  /** How many of the next `count` events pass. */
  take(count: number): number {
    const before = Math.ceil(this.seen / this.every);
    this.seen += count;
    return Math.ceil(this.seen / this.every) - before;
  }
}

/** true when an event is more than `maxLateMs` past its `at` (0 or less: never). */
export function tooLate(at: unknown, now: number, maxLateMs: number): boolean {
  return maxLateMs > 0 && typeof at === "number" && Number.isFinite(at) && now - at > maxLateMs;
}

/**
 * Which outputs get a message named `name`: each rule whose pattern matches and whose
 * condition `holds`; with firstOnly, only the first such (later rules are not asked). `holds`
 * answers at once, or later for a JSONata condition: then so does route, in rule order.
 */
export function route(
  matches: ReadonlyArray<(name: string) => boolean>,
  name: string,
  firstOnly: boolean,
  holds: (rule: number) => boolean | Promise<boolean>,
): boolean[] | Promise<boolean[]> {
  const hits: boolean[] = [];
  const from = (start: number): boolean[] | Promise<boolean[]> => {
    for (let i = start; i < matches.length; i++) {
      const match = matches[i];
      const h = match && match(name) ? holds(i) : false;
      if (typeof h !== "boolean") {
        return h.then((hit) => {
          hits.push(hit);
          return hit && firstOnly ? hits : from(i + 1);
        });
      }
      hits.push(h);
      if (h && firstOnly) break;
    }
    return hits;
  };
  return from(0);
}
