// The SQI scope, a Node-RED plugin: the runtime half of the editor's "SQI scope" sidebar tab
// (sqi-scope.html). It keeps nothing of its own: a few times a second, while an editor says it
// is watching (POST sqi-scope/watch, every few seconds while the tab is shown), it draws a
// snapshot (lib/scope.ts) from the running nodes, each pulse-shaper's edge trace and each
// master's roster, and sends it to the open editors.

import { scopeSnapshot, ScopePublisher, type EdgeTrace } from "../lib/scope";
import type { Roster } from "../lib/bus/roster";
import type { ShaperNode } from "./pulse-shaper";
import type { RED } from "./red";
import { clockOf } from "./shell";
import type { MasterNode } from "./sqi-event-bus";

module.exports = function (RED: RED) {
  /** The running pulse-shapers and masters of the deployed flows. */
  const sources = () => {
    const shapers: EdgeTrace[] = [];
    const masters: Array<{ id: string; roster: Roster }> = [];
    RED.nodes.eachNode((def) => {
      if (def.type !== "pulse-shaper" && def.type !== "sqi-event-bus") return;
      const n = RED.nodes.getNode(def.id) as (ShaperNode & MasterNode) | null;
      if (n?.sqiTrace) shapers.push(n.sqiTrace);
      if (n?.sqiRoster) masters.push({ id: n.id, roster: n.sqiRoster });
    });
    return { shapers, masters };
  };
  const publisher = new ScopePublisher(
    clockOf(RED),
    (now) => scopeSnapshot(now, sources()),
    (snapshot) => RED.comms.publish("sqi-scope", snapshot, false),
  );
  RED.httpAdmin.post("/sqi-scope/watch", RED.auth.needsPermission("sqi-scope.read"), (_req, res) => {
    publisher.watch();
    res.json({ watching: true });
  });
  RED.plugins.registerPlugin("sqi-scope", { type: "sqi-scope" });
};
