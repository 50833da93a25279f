// What a bus node shows, from its transport and its arrivals: the status line under it, the
// stats message, and a listener's report to the master. Pure: the node shell draws and sends.

import type { PowerStatus } from "../power/meter";
import { clip, statusText, type StatusLine } from "../status-line";
import type { Arrivals } from "./arrivals";
import type { ReportGroups } from "./frames";
import { MAX_LISTED, summaryParts, type ListenerLine, type RosterSummary } from "./roster";
import type { BusConfig, ListenerTransport, MasterTransport } from "./transport";
import { MASTER_SILENT } from "./transport-base";

/** A URL without its scheme and trailing slash, for a status: "mqtt://host:1883/" -> "host:1883". */
export function short(url: string): string {
  return url.replace(/^[a-z]+:\/\//, "").replace(/\/$/, "");
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * A master's status: why it cannot serve (`failed`: its port), that it is still connecting to
 * its broker or binding, or where it listens, how many listeners it has (and, from their
 * reports, how many are synced and what they fired late or lost), what it lost and its event
 * rate. An open WebSocket bus (no token) is yellow, and so is a listener's loss.
 */
export function masterStatus(server: MasterTransport, bus: BusConfig, failed: string, eventsPerS: () => number, roster?: RosterSummary): StatusLine {
  if (failed) return { fill: "red", shape: "ring", text: clip(failed) };
  const st = server.status;
  if (st.state !== "connected") {
    const text =
      bus.transport === "ws" ? "starting" : st.detail && st.detail !== bus.mqtt.url ? `${st.state}: ${st.detail}` : `${st.state}: ${short(server.where)}`;
    return { fill: st.state === "connecting" ? "yellow" : "red", shape: "ring", text: clip(text) };
  }
  const c = server.counters;
  const refused = c.unauthorized + c.bad_requests + c.refused_full + c.slow_closed + c.refused_pending;
  const lost = [
    c.events_dropped ? `dropped ${c.events_dropped}` : "",
    c.rejected ? `rejected ${c.rejected}` : "",
    refused ? `refused ${refused}` : "",
    c.oversize ? `oversize ${c.oversize}` : "",
    c.reports_too_large ? `reports too large ${c.reports_too_large}` : "",
  ];
  const open = bus.transport === "ws" && !bus.token;
  const n = server.clients.length;
  const head = `${short(server.where)} · ${n} listener${n === 1 ? "" : "s"}`;
  return {
    fill: open || lost.some(Boolean) || roster?.lost || roster?.late || roster?.power?.silent ? "yellow" : "green",
    shape: "dot",
    text: statusText(head, [...(roster ? summaryParts({ ...roster, joined: n }) : []), open ? "no token" : "", ...lost, `${eventsPerS().toFixed(0)} ev/s`]),
  };
}

/**
 * A master's stats message: the transport, its listeners (the first MAX_LISTED connections; with
 * their reports, a summary over all and the worst MAX_LISTED), every counter and the last errors.
 */
export function masterStats(server: MasterTransport, bus: BusConfig, roster?: { summary: RosterSummary; worst: ListenerLine[] }): Record<string, unknown> {
  const clients = server.clients;
  return {
    role: "broadcast",
    transport: bus.transport,
    ...server.describe(),
    listeners: clients.slice(0, MAX_LISTED),
    listeners_total: clients.length,
    ...(roster ? { summary: { ...roster.summary, joined: clients.length }, worst: roster.worst } : {}),
    counters: { ...server.counters },
    recent: [...server.lastErrors],
  };
}

/**
 * A listener's status: how its link is, else its clock offset first (what synchronises the
 * pins), then what it lost, its power sensor's latest reading ("12.3 W", or "sensor silent",
 * yellow) and its event rate.
 */
export function listenerStatus(
  client: ListenerTransport,
  arrivals: Arrivals,
  eventsPerS: () => number,
  power: PowerStatus = { text: "", silent: false },
): StatusLine {
  const st = client.status;
  if (st.state !== "connected") {
    const text =
      st.state === "connecting"
        ? st.detail.startsWith(MASTER_SILENT)
          ? st.detail
          : `connecting to ${short(st.detail)}`
        : `${st.state}${st.detail ? `: ${short(st.detail)}` : ""}`;
    return { fill: st.state === "connecting" ? "yellow" : "red", shape: "ring", text: clip(text) };
  }
  const e = client.sync.estimate();
  const lost = [
    ...arrivals.losses(),
    client.counters.rejected ? `rejected ${client.counters.rejected}` : "",
    client.counters.report_keys_dropped ? `report cut ${client.counters.report_keys_dropped}` : "",
  ].filter(Boolean);
  // rtt, the rate and every counter are in the stats output (the status has 40 characters: losses first).
  const head = e ? `offset ${e.offsetMs >= 0 ? "+" : ""}${e.offsetMs.toFixed(2)} ± ${e.uncertaintyMs.toFixed(2)} ms` : "connected · measuring";
  return {
    fill: lost.length || power.silent ? "yellow" : "green",
    shape: "dot",
    text: statusText(head, [...lost, power.text, `${eventsPerS().toFixed(0)} ev/s`]),
  };
}

/** A listener's stats message: its link, clock sync, every counter and its longest stalls of the event loop. */
export function listenerStats(client: ListenerTransport, arrivals: Arrivals, name: string): Record<string, unknown> {
  const e = client.sync.estimate();
  const { state, detail } = client.status;
  return {
    role: "listen",
    name,
    state,
    detail,
    offset_ms: e?.offsetMs ?? null,
    rtt_ms: e?.rttMs ?? null,
    uncertainty_ms: e?.uncertaintyMs ?? null,
    // the master's clock against this one's (ppm), and how long since the last sample (holdover) grows the uncertainty
    rate_ppm: e?.rateSaid ? e.ratePpm : null,
    sync_age_ms: e?.ageMs ?? null,
    counters: { ...arrivals.counters(), ...client.counters, sync_held: client.sync.held, sync_steps: client.sync.steps },
    recent: [...client.lastErrors],
    longest_stall_ms: { receive: round3(client.longestReceiveMs), hand_on: round3(arrivals.longestHandOnMs) },
  };
}

/** What a listener reports to the master, in its groups: what arrived (`counters`), what the pulse-shapers it speaks for fired, and its power sensor's readings. */
export function listenerReport(client: ListenerTransport, arrivals: Arrivals, fired: Record<string, number>, measured?: Record<string, number>): ReportGroups {
  const { first_seq, last_seq } = arrivals.tracker.stream;
  return {
    counters: {
      ...arrivals.counters(),
      reconnects: client.counters.reconnects,
      rejected: client.counters.rejected,
      ...(first_seq !== undefined ? { first_seq } : {}),
      ...(last_seq !== undefined ? { last_seq } : {}),
    },
    fired,
    ...(measured ? { measured } : {}),
  };
}
