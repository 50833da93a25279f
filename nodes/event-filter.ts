// event-filter: routes SQI events to one output per rule, like the core switch node but
// knowing events: an event-name pattern, an optional JSONata condition (Node-RED's own
// evaluator), first match or all matches, every-Nth decimation and a late-event drop.
// Everything not passed on is counted and shown.

import { Decimator, namePattern, route, tooLate, type FilterRule } from "../lib/filter/rules";
import { checkNumber } from "../lib/numbers";
import { eventsIn, scaleCount, sqiOf } from "../lib/sqi";
import { statusText } from "../lib/status-line";
import { PANEL_RANGES } from "../lib/ranges";
import type { DoneFn, JsonataExpression, Node, NodeDef, NodeMessage, RED } from "./red";
import { clockOf, rangesSetting, refuseInputs, StatusTicker, ThrottledErrors } from "./shell";
/** Messages waiting for their JSONata conditions at most; more are dropped and counted. */
const MAX_WAITING = 10_000;

/** A running event-filter, as its panel's live counts read it. */
type FilterNode = Node & { sqiCounts?: () => { rules: number[]; in: number; unmatched: number } };

interface CompiledRule {
  matches: (name: string) => boolean;
  condition?: JsonataExpression;
}

module.exports = function (RED: RED) {
  const clock = clockOf(RED);
  function EventFilterNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const problems: string[] = [];
    const every = checkNumber(def.every, PANEL_RANGES["event-filter"].every);
    const maxLate = checkNumber(def.maxLate, PANEL_RANGES["event-filter"].maxLate);
    if (!every.ok) problems.push(every.error);
    if (!maxLate.ok) problems.push(maxLate.error);
    const rules: CompiledRule[] = [];
    (Array.isArray(def.rules) ? (def.rules as FilterRule[]) : []).forEach((r, i) => {
      const rule: CompiledRule = { matches: namePattern(String(r.event ?? "")) };
      const cond = typeof r.condition === "string" ? r.condition.trim() : "";
      if (cond) {
        try {
          rule.condition = RED.util.prepareJSONataExpression(cond, node);
        } catch (e) {
          problems.push(`rule ${i + 1}: the JSONata condition does not parse: ${(e as Error).message}`);
        }
      }
      rules.push(rule);
    });
    if (rules.length === 0) problems.push("add at least one rule: each rule is one output");
    if (problems.length) return refuseInputs(node, clock, "event-filter", problems);
    const firstOnly = def.checkall !== "all";
    const decimator = new Decimator(every.ok ? every.value : 1);
    const lateLimit = maxLate.ok ? maxLate.value : 0;
    const hasConditions = rules.some((r) => r.condition);
    const matchers = rules.map((r) => r.matches);
    const counts = { in: 0, out: 0, unmatched: 0, decimated: 0, late_dropped: 0, dropped: 0, condition_errors: 0 };
    /** Messages each rule passed on since the deploy, for the panel (GET event-filter/:id/counts). */
    const perRule = rules.map(() => 0);
    (node as FilterNode).sqiCounts = () => ({ rules: perRule.slice(), in: counts.in, unmatched: counts.unmatched });
    const errors = new ThrottledErrors(clock, node, "event-filter");
    const waiting: Array<{ msg: NodeMessage; send: (m: Array<NodeMessage | null>) => void; done: DoneFn }> = [];
    let busy = false;

    const status = new StatusTicker(clock, node, () => {
      const lost = [
        counts.unmatched ? `unmatched ${counts.unmatched}` : "",
        counts.decimated ? `decimated ${counts.decimated}` : "",
        counts.late_dropped ? `late ${counts.late_dropped}` : "",
        counts.dropped ? `dropped ${counts.dropped}` : "",
        counts.condition_errors ? `errors ${counts.condition_errors}` : "",
      ].filter(Boolean);
      return {
        status: {
          fill: counts.dropped || counts.condition_errors ? "yellow" : "green",
          shape: "dot",
          text: statusText(`in ${counts.in} · out ${counts.out}`, lost),
        },
      };
    });
    const touch = (): void => status.soon();

    /** A rule's JSONata condition on the message (Node-RED's evaluator): async; an error counts, fails the rule and is kept in `failures`. */
    function holds(condition: JsonataExpression, msg: NodeMessage, failures: string[]): Promise<boolean> {
      return new Promise((resolve) => {
        RED.util.evaluateJSONataExpression(condition, msg, (err, value) => {
          if (err) {
            counts.condition_errors++;
            failures.push(err.message);
            resolve(false);
          } else resolve(value === true);
        });
      });
    }

    /** Which outputs get the message: at once without JSONata conditions, else in a promise. */
    function outputsFor(msg: NodeMessage, failures: string[] = []): boolean[] | Promise<boolean[]> {
      const name = typeof msg.topic === "string" ? msg.topic : "";
      return route(matchers, name, firstOnly, (i) => {
        const condition = rules[i]?.condition;
        return condition ? holds(condition, msg, failures) : true;
      });
    }

    function deliver(msg: NodeMessage, hits: boolean[], send: (m: Array<NodeMessage | null>) => void): void {
      const out = rules.map((_, i) => (hits[i] ? msg : null));
      const n = hits.filter(Boolean).length;
      hits.forEach((hit, i) => {
        if (hit) perRule[i]!++;
      });
      if (n === 0) counts.unmatched++;
      else {
        counts.out += n;
        send(out);
      }
      touch();
    }

    /** Before any rule: decimation and the late drop. false: the message goes no further. */
    function admit(msg: NodeMessage): boolean {
      counts.in++;
      touch();
      const sqi = sqiOf(msg);
      // An aggregated message (dc-container clones) stands for `count` events: decimation scales the count (and its rate).
      const events = eventsIn(sqi);
      const kept = decimator.take(events);
      counts.decimated += events - kept;
      if (kept === 0) return false;
      if (sqi && kept !== events) scaleCount(sqi, kept);
      if (tooLate(sqi?.at, clock.now(), lateLimit)) {
        counts.late_dropped++;
        return false;
      }
      return true;
    }

    async function drain(): Promise<void> {
      busy = true;
      while (waiting.length) {
        const item = waiting.shift();
        if (!item) break;
        try {
          // Routed by the rules that held; a condition that failed fails the message too (a catch node hears of it).
          const failures: string[] = [];
          deliver(item.msg, await outputsFor(item.msg, failures), item.send);
          if (failures.length) errors.fail(`JSONata condition failed: ${failures[0]}`, item.done);
          else item.done();
        } catch (e) {
          item.done(e as Error);
        }
      }
      busy = false;
    }

    node.on("input", (msg, send, done) => {
      if (!admit(msg)) {
        done();
        return;
      }
      const hits = hasConditions ? undefined : outputsFor(msg);
      if (Array.isArray(hits)) {
        // No JSONata: routed at once, in order, without promises.
        deliver(msg, hits, send as (m: Array<NodeMessage | null>) => void);
        done();
        return;
      }
      if (waiting.length >= MAX_WAITING) {
        counts.dropped++;
        touch();
        done();
        return;
      }
      // Conditions are async: a queue keeps the messages in order.
      waiting.push({ msg, send: send as (m: Array<NodeMessage | null>) => void, done });
      if (!busy) void drain();
    });

    node.on("close", (_removed, done) => {
      status.stop();
      waiting.length = 0;
      done();
    });

    node.status({
      fill: "grey",
      shape: "ring",
      text: statusText(`${rules.length} rule${rules.length === 1 ? "" : "s"}`, [firstOnly ? "first match" : "all matches"]),
    });
  }

  RED.nodes.registerType("event-filter", EventFilterNode, { settings: rangesSetting("event-filter") });

  // The panel's live count beside each rule: what the deployed node passed on through it.
  RED.httpAdmin.get("/event-filter/:id/counts", RED.auth.needsPermission("event-filter.read"), (req, res) => {
    const target = RED.nodes.getNode(req.params.id!) as FilterNode | null;
    if (!target || target.type !== "event-filter" || typeof target.sqiCounts !== "function") {
      res.status(404).json({ error: "no running event-filter with that id: deploy it first" });
      return;
    }
    res.json(target.sqiCounts());
  });
};
