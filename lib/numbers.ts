// Checks a number from outside (a node's config panel, where it arrives as a string or a
// number, or a CLI option) with one wording for every node: a blank field takes the default,
// anything else must be a finite number within the stated range (lib/ranges.ts has them all).

export interface NumberRule {
  label: string;
  min: number;
  max: number;
  /** true: min itself is not allowed (e.g. a speed factor must be > 0). */
  exclusiveMin?: boolean;
  integer?: boolean;
  default: number;
  unit?: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

export function checkNumber(raw: unknown, rule: NumberRule): Checked<number> {
  if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) return { ok: true, value: rule.default };
  const n = typeof raw === "number" ? raw : typeof raw === "string" ? Number(raw.trim()) : NaN;
  const lowOk = rule.exclusiveMin ? n > rule.min : n >= rule.min;
  if (!Number.isFinite(n) || !lowOk || n > rule.max || (rule.integer && !Number.isInteger(n))) {
    const unit = rule.unit ? ` ${rule.unit}` : "";
    const kind = rule.integer ? "a whole number" : "a number";
    const range = rule.exclusiveMin ? `above ${rule.min} and up to ${rule.max}` : `from ${rule.min} to ${rule.max}`;
    return { ok: false, error: `${rule.label} must be ${kind} ${range}${unit}, got ${JSON.stringify(raw)}` };
  }
  return { ok: true, value: n };
}
