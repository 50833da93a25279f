// Refusals and rejections go to the log, not only to the status and the stats: once a minute
// at most, one line with the count of each kind since the last line (as Node-RED's core
// nodes do for a repeated error), and nothing when nothing happened.

/** How often the summary may be written. */
export const NOTICE_EVERY_MS = 60_000;

export class MinuteNotices {
  private last: Record<string, number> = {};

  /** @param kinds counter name -> how the log line names it ("refused without the token") */
  constructor(private readonly kinds: Readonly<Record<string, string>>) {}

  /** The line for what changed since the last call, or undefined when nothing did. `recent` is the latest detail, if any. */
  line(counters: Readonly<Record<string, number>>, recent?: string): string | undefined {
    const parts: string[] = [];
    for (const [k, label] of Object.entries(this.kinds)) {
      const d = (counters[k] ?? 0) - (this.last[k] ?? 0);
      if (d > 0) parts.push(`${d} ${label}`);
    }
    this.last = { ...counters };
    if (!parts.length) return undefined;
    return `in the last minute: ${parts.join(", ")}${recent ? ` (latest: ${recent})` : ""}`;
  }
}

export const MASTER_NOTICES: Readonly<Record<string, string>> = {
  unauthorized: "connections refused without the right token",
  bad_requests: "malformed requests refused",
  refused_full: "connections refused: the master was full",
  slow_closed: "connections cut for not finishing their upgrade within 10 s",
  refused_pending: "connections refused: too many had not finished their upgrade",
  rejected: "frames rejected",
  oversize: "connections closed for an oversized frame",
  disconnected_for_abuse: "connections closed for abuse",
  events_dropped: "events dropped for slow or full clients",
  replies_dropped: "replies dropped for clients that do not read",
  silent_closed: "connections closed as silent (gone without closing)",
  replaced: "older connections replaced by their listener's new one",
};

export const LISTENER_NOTICES: Readonly<Record<string, string>> = {
  rejected: "frames from the master rejected",
  implausible: "implausible seq jumps",
  backlog_dropped: "events dropped from a backlog",
};
