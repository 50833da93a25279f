// The SQI scope, a Node-RED plugin: the runtime half of the editor's "SQI scope" sidebar tab
// (sqi-scope.html). The nodes feed lib/scope (each pulse-shaper its edges, each master bus
// its listeners' reports); this sends a snapshot to the open editors a few times a second
// while one of them says it is watching (POST sqi-scope/watch), and nothing otherwise.

import { sharedPublisher } from "../lib/scope";
import type { RED } from "./red";
import { clockOf } from "./shell";

module.exports = function (RED: RED) {
  const { publisher, needsRoute } = sharedPublisher(clockOf(RED), RED.httpAdmin);
  publisher.sink = (snapshot) => RED.comms.publish("sqi-scope", snapshot, false);
  if (needsRoute) {
    RED.httpAdmin.post("/sqi-scope/watch", RED.auth.needsPermission("sqi-scope.read"), (_req, res) => {
      publisher.watch();
      res.json({ watching: true });
    });
  }
  RED.plugins.registerPlugin("sqi-scope", { type: "sqi-scope" });
};
