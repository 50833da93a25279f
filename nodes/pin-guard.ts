// The Node-RED runtime hooks a pulse-shaper needs to leave no pin high and to count only what
// reached one. On a redeploy Node-RED closes every node in the same tick, in flow order:
// rpi-gpio out may close (and kill its helper) before the shaper does. So the shaper listens
// for "flows:stopping" (emitted before any node closes) and goes low then. That event is
// Node-RED's internal one (3.1 to 5.0 have it); should a version lack it, the fallback holds:
// the shaper also wraps close() of every node it has handed an edge to (guardClose), and goes
// low first whichever node Node-RED closes first. Either way that close waits until the last
// edge is PIN_SETTLE_MS old: rpi-gpio out kills its helper in the same call, and an edge still
// in the pipe would be lost with it. And it watches the statuses of the rpi-gpio out nodes it
// drives: a red one means the helper is not running, and nothing sent to it fires. When the
// flows start, it warns of a wired rpi-gpio out that does not initialise its pin low. And it
// catches the error of an edge written into the pipe of a helper that has just died
// (catchDeadPipe), which would otherwise stop Node-RED.

import { realClock } from "../lib/clock";
import type { FlowsEvent, Node, NodeStatus, RED } from "./red";

/**
 * How long a wired node's close() waits after the last edge handed to it. rpi-gpio out's close
 * writes "close" to its helper and SIGKILLs it in the same call: an edge written a moment before
 * is lost if the helper has not read it yet, and a killed helper leaves the pin where it was.
 */
export const PIN_SETTLE_MS = 100;

/** What a deploy does to a shaper: close it, only stop its output (a node it drives is redeployed), or nothing. */
export function deployEffect(ev: FlowsEvent, self: { id: string; z?: string }, downstream: readonly string[]): "close" | "stop" | "none" {
  const d = ev?.diff;
  // What Node-RED stops: a "nodes" deploy only the changed and removed nodes; a "flows" deploy the nodes wired to them too.
  const stopped = [...(d?.changed ?? []), ...(d?.removed ?? []), ...(ev?.type === "nodes" ? [] : [...(d?.rewired ?? []), ...(d?.linked ?? [])])];
  if (!ev?.type || ev.type === "full" || !d || stopped.includes(self.id) || (self.z !== undefined && (d.flowChanged ?? []).includes(self.z))) return "close";
  return stopped.some((id) => downstream.includes(id)) ? "stop" : "none";
}

/** One listener per runtime event for all shapers (not one each: more than ten would trip Node.js's leak warning), present only while one is deployed. */
export function runtimeHooks(RED: RED) {
  /** One listener on `event` while any `f` is subscribed; each subscription returns its undo. */
  const fan = (event: string) => {
    const subscribers = new Set<(ev: FlowsEvent) => void>();
    const dispatch = (ev: FlowsEvent): void => {
      for (const f of [...subscribers]) f(ev);
    };
    return (f: (ev: FlowsEvent) => void): (() => void) => {
      if (subscribers.size === 0) RED.events.on(event, dispatch);
      subscribers.add(f);
      return () => {
        subscribers.delete(f);
        if (subscribers.size === 0) RED.events.removeListener(event, dispatch);
      };
    };
  };
  const watchers = new Map<string, Set<(status: NodeStatus, id: string) => void>>();
  const onStatus = (ev: { id?: string; status?: NodeStatus }): void => {
    const id = ev?.id;
    const set = id !== undefined ? watchers.get(id) : undefined;
    if (set && id !== undefined && ev.status) for (const f of [...set]) f(ev.status, id);
  };
  return {
    /** Calls `f` with every "flows:stopping"; returns the undo. */
    onFlowsStopping: fan("flows:stopping"),
    /** Calls `f` with every "flows:started" (every node of the deploy exists by then); returns the undo. */
    onFlowsStarted: fan("flows:started"),
    /** Calls `f` with each new status of the nodes `ids`; returns the undo. */
    watchStatus(ids: readonly string[], f: (status: NodeStatus, id: string) => void): () => void {
      if (ids.length === 0) return () => undefined;
      if (watchers.size === 0) RED.events.on("node-status", onStatus);
      for (const id of ids) {
        let set = watchers.get(id);
        if (!set) watchers.set(id, (set = new Set()));
        set.add(f);
      }
      return () => {
        for (const id of ids) {
          const set = watchers.get(id);
          set?.delete(f);
          if (set?.size === 0) watchers.delete(id);
        }
        if (watchers.size === 0) RED.events.removeListener("node-status", onStatus);
      };
    },
  };
}

/** The guards to run before each wired node's own close(), by node object (see the header). */
const closeGuards = new WeakMap<Node, Set<() => number>>();

/**
 * Runs `f` before `target`'s close() whenever Node-RED stops it; `f` returns how many ms the
 * close should wait (for an edge just handed on to be taken). Returns the undo.
 */
export function guardClose(target: Node, f: () => number): () => void {
  let set = closeGuards.get(target);
  if (!set) {
    const guards = new Set<() => number>();
    set = guards;
    closeGuards.set(target, guards);
    const close = target.close;
    if (typeof close === "function") {
      target.close = function (this: Node, removed?: boolean) {
        let wait = 0;
        for (const g of [...guards]) wait = Math.max(wait, g());
        if (wait <= 0) return close.call(this, removed);
        // Real time, whatever clock the flow runs on: a helper process reads the pipe.
        return new Promise<void>((resolve) => realClock.setTimer(() => resolve(), wait)).then(() => close.call(this, removed));
      };
    }
  }
  set.add(f);
  return () => void set.delete(f);
}

/** The helpers' pipes already caught, so that one pipe gets one handler whatever number of shapers drive it. */
const caughtPipes = new WeakSet<object>();

/**
 * rpi-gpio out writes each level into its helper's stdin and has no handler for that pipe's
 * errors. When the helper has just died (killed, crashed), before rpi-gpio out has seen it
 * close, the next edge written is an EPIPE on a stream with no handler: an uncaught exception,
 * and Node-RED exits. Catches it on `target`'s pipe, once per pipe; `said` hears of it. The edge
 * reached no pin either way, and the node's red status follows when the helper's close is seen.
 */
export function catchDeadPipe(target: Node, said: (error: Error) => void): void {
  const stdin = (target as unknown as { child?: { stdin?: { on(event: "error", f: (e: Error) => void): void } } | null }).child?.stdin;
  if (!stdin || caughtPipes.has(stdin)) return;
  caughtPipes.add(stdin);
  let told = false;
  // Said once: every later write into the closed pipe fails the same way.
  stdin.on("error", (e) => {
    if (!told) said(e);
    told = true;
  });
}
