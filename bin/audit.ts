// `sqi-dc audit PINLOG`: checks a pin log from the simulated GPIO against the safety limits,
// given as options or read from a flow file's pulse-shapers (each wired to its pin).
// Exit 0: every pin within its limits; 1: a violation; 2: a usage or file problem.

import { eachLine, readRegularFile } from "../lib/files";
import { DEFAULT_ALLOWANCE, formatAudit, limitsFromFlow, parsePinLine, PinAuditor, type AuditLimits, type PinAudit } from "../lib/pulse/audit";
import { SHAPER_RULES } from "../lib/pulse/config";
import { DEFAULT_LIMITS } from "../lib/pulse/output";
import { checkNumber, type NumberRule } from "../lib/numbers";
import { parseCommand } from "./args";

export const AUDIT_USAGE = `sqi-dc audit PINLOG [--flow FLOW.json] [--pin N]... [limits] [allowance] [--format text|json]
  Checks what each pin did (a pin log of the simulated GPIO: one JSON line {t, pin, value} per change).
  PINLOG is a regular file (up to 1 GiB, read line by line) or - for standard input.
  --flow FILE            take each pin's limits from the pulse-shapers wired to its rpi-gpio out
                         (pins no shaper drives are skipped); options below override them
  --pin N                audit only BCM pin N (repeatable)
  --min-off-ms X         minimum off-time (default ${DEFAULT_LIMITS.minOffMs})
  --max-edge-rate X      maximum edges per second; edges at least 1000/X ms apart (default ${DEFAULT_LIMITS.maxEdgeRate})
  --max-on-ms X          maximum on-time of one pulse or on-stretch (default ${DEFAULT_LIMITS.maxOnMs})
  --max-duty X           maximum duty in % over the duty window (default ${DEFAULT_LIMITS.maxDuty * 100})
  --duty-window-ms X     duty window (default ${DEFAULT_LIMITS.dutyWindowMs})
  --jitter-ms X          a gap may be this much short, for the GPIO helper's pipe jitter (default ${DEFAULT_ALLOWANCE.jitterMs})
  --jitter-share X       ... on at most X % of the gaps (default ${DEFAULT_ALLOWANCE.share * 100})
  --on-allowance-ms X    an on-stretch may run this much over the maximum on-time (default ${DEFAULT_ALLOWANCE.onMs})
  exit 0: within the limits; 1: a violation; 2: a usage or file problem`;

/** A pin log larger than this is refused (it is streamed: memory holds 24 bytes a pulse, not the log). */
const MAX_LOG_BYTES = 1024 * 1024 * 1024;
const MAX_FLOW_BYTES = 16 * 1024 * 1024;

const numbers = {
  // The pulse-shaper's own ranges and defaults (lib/ranges.ts), under the option's name.
  "min-off-ms": { ...SHAPER_RULES.minOff, label: "--min-off-ms" },
  "max-edge-rate": { ...SHAPER_RULES.maxRate, label: "--max-edge-rate" },
  "max-on-ms": { ...SHAPER_RULES.maxOn, label: "--max-on-ms" },
  "max-duty": { ...SHAPER_RULES.maxDuty, label: "--max-duty" },
  "duty-window-ms": { ...SHAPER_RULES.dutyWindow, label: "--duty-window-ms" },
  "jitter-ms": { label: "--jitter-ms", min: 0, max: 100, default: DEFAULT_ALLOWANCE.jitterMs, unit: "ms" },
  "jitter-share": { label: "--jitter-share", min: 0, max: 100, default: DEFAULT_ALLOWANCE.share * 100, unit: "%" },
  "on-allowance-ms": { label: "--on-allowance-ms", min: 0, max: 60_000, default: DEFAULT_ALLOWANCE.onMs, unit: "ms" },
} satisfies Record<string, NumberRule>;
type NumberOption = keyof typeof numbers;

export function audit(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  const parsed = parseCommand(args, {
    flow: { type: "string" },
    pin: { type: "string", multiple: true },
    format: { type: "string", default: "text" },
    ...(Object.fromEntries(Object.keys(numbers).map((k) => [k, { type: "string" }])) as Record<NumberOption, { type: "string" }>),
  });
  if (typeof parsed === "string") return usageError(`audit: ${parsed}`, err);
  const { values, positionals } = parsed;
  const [logFile] = positionals;
  if (logFile === undefined || positionals.length !== 1)
    return usageError(positionals.length ? `audit takes one PINLOG, got ${positionals.length}` : "audit needs a PINLOG", err);
  if (values.format !== "text" && values.format !== "json") return usageError(`--format must be text or json, got ${values.format}`, err);
  const given: Partial<Record<NumberOption, number>> = {};
  for (const k of Object.keys(numbers) as NumberOption[]) {
    const raw = (values as Record<string, unknown>)[k];
    if (raw === undefined) continue;
    const r = checkNumber(raw, numbers[k]);
    if (!r.ok) return usageError(r.error, err);
    given[k] = r.value;
  }
  const onlyPins = (values.pin ?? []).map(Number);
  const badPin = (values.pin ?? []).find((p) => !/^\d{1,3}$/.test(p));
  if (badPin !== undefined) return usageError(`--pin needs a BCM pin number, got ${JSON.stringify(badPin)}`, err);

  const override = (l: AuditLimits): AuditLimits => ({
    minOffMs: given["min-off-ms"] ?? l.minOffMs,
    maxEdgeRate: given["max-edge-rate"] ?? l.maxEdgeRate,
    maxOnMs: given["max-on-ms"] ?? l.maxOnMs,
    maxDuty: given["max-duty"] !== undefined ? given["max-duty"] / 100 : l.maxDuty,
    dutyWindowMs: given["duty-window-ms"] ?? l.dutyWindowMs,
  });
  let limitsOf: (pin: number) => { limits: AuditLimits; by?: string } | undefined = () => ({ limits: override(DEFAULT_LIMITS) });
  const notes: string[] = [];
  if (values.flow !== undefined) {
    const read = readRegularFile(values.flow, MAX_FLOW_BYTES);
    if (!read.ok) {
      err(`sqi-dc audit: ${values.flow}: ${read.error}\n`);
      return 2;
    }
    let flow: unknown;
    try {
      flow = JSON.parse(read.text);
    } catch (e) {
      err(`sqi-dc audit: ${values.flow}: not JSON (${(e as Error).message})\n`);
      return 2;
    }
    const { pins, problems } = limitsFromFlow(flow);
    if (problems.length) {
      for (const p of problems) err(`sqi-dc audit: ${values.flow}: ${p}\n`);
      return 2;
    }
    limitsOf = (pin) => {
      const p = pins.get(pin);
      return p && { limits: override(p.limits), by: p.shapers.join(", ") };
    };
  }
  const allowance = {
    jitterMs: given["jitter-ms"] ?? DEFAULT_ALLOWANCE.jitterMs,
    share: (given["jitter-share"] ?? DEFAULT_ALLOWANCE.share * 100) / 100,
    onMs: given["on-allowance-ms"] ?? DEFAULT_ALLOWANCE.onMs,
  };

  // The log, line by line: each record goes to its pin's auditor, nothing else is kept.
  const auditors = new Map<number, { auditor: PinAuditor; by?: string } | null>();
  let malformed = 0;
  const read = eachLine(logFile, MAX_LOG_BYTES, (line) => {
    const r = parsePinLine(line);
    if (r === "blank") return;
    if (!r) return void malformed++;
    if (onlyPins.length && !onlyPins.includes(r.pin)) return;
    let a = auditors.get(r.pin);
    if (a === undefined) {
      const l = limitsOf(r.pin);
      a = l ? { auditor: new PinAuditor(r.pin, l.limits, allowance), ...(l.by ? { by: l.by } : {}) } : null;
      auditors.set(r.pin, a);
    }
    a?.auditor.add(r);
  });
  const where = logFile === "-" ? "standard input" : logFile;
  if (!read.ok) {
    err(`sqi-dc audit: ${where}: ${read.error}\n`);
    return 2;
  }

  const audits: Array<Omit<PinAudit, "widthList"> & { shapers?: string }> = [];
  for (const [pin, a] of [...auditors].sort((x, y) => x[0] - y[0])) {
    if (!a) {
      notes.push(`pin ${pin}: no pulse-shaper in ${values.flow} drives it: not audited`);
      continue;
    }
    const { widthList: _widths, ...audit } = a.auditor.finish(false);
    audits.push({ ...audit, ...(a.by ? { shapers: a.by } : {}) });
    if (a.auditor.outOfOrder) notes.push(`pin ${pin}: ${a.auditor.outOfOrder} record(s) older than the one before them: skipped`);
  }
  for (const p of onlyPins) if (!audits.some((a) => a.pin === p)) notes.push(`pin ${p}: no records in ${where}`);
  if (malformed) notes.push(`${malformed} line${malformed === 1 ? "" : "s"} of ${where} not a pin record: skipped`);
  const violations = audits.reduce((n, a) => n + a.violations.length, 0);
  if (values.format === "json") out(`${JSON.stringify({ ok: violations === 0 && audits.length > 0, allowance, pins: audits, notes })}\n`);
  else {
    for (const a of audits) out(`${formatAudit(a).join("\n")}${a.shapers ? `\n  driven by ${a.shapers}` : ""}\n`);
    for (const n of notes) out(`note: ${n}\n`);
    out(
      audits.length === 0
        ? "no pin audited\n"
        : violations === 0
          ? `ok: ${audits.length} pin${audits.length === 1 ? "" : "s"} within the limits\n`
          : `${violations} violation${violations === 1 ? "" : "s"}\n`,
    );
  }
  if (audits.length === 0) return 2;
  return violations === 0 ? 0 : 1;
}

function usageError(problem: string, err: (s: string) => void): number {
  err(`sqi-dc: ${problem}\n${AUDIT_USAGE}\n`);
  return 2;
}
