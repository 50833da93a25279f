// Minimal nodes for the benchmarks, loaded only by them (SQI_EXTRA_NODES_DIR):
//   bench-generator: POST /bench-gen/:id {rate, seconds} sends `rate` events a second for
//     `seconds`, each {topic: "proton_collision", payload: {t: send time}, sqi: {at}}, then
//     one "__end" event; "__reset" first.
//   bench-counter: counts what arrives and the latency from payload.t (a string payload is
//     parsed: core websocket in delivers text); on the end marker writes {count, p50, p99, max} as
//     one JSON line to its file. As cheap per message as a node can be.
//   bench-edge-log (bench/sync): beside rpi-gpio out after a pulse-shaper, notes how late
//     each rising edge was sent after its planned time (msg.sqi.edge, both read on this
//     process's clock, so exact) and the wall-clock ms, a JSON line each, written once a second.
//   bench-frame-log (bench/multiplex): after a dc-container with clones, counts the messages
//     and the events they represent (msg.sqi.count) and how late each arrived after it was
//     due to be sent (msg.sqi.at - lead); POST /bench-frame-log/:id/reset starts afresh,
//     GET /bench-frame-log/:id answers {messages, events, p99, max} (ms).
module.exports = function (RED) {
  const fs = require("fs");

  function BenchGenerator(n) {
    RED.nodes.createNode(this, n);
    const node = this;
    node.run = function (rate, seconds) {
      node.send({ topic: "__reset", payload: { t: Date.now(), reset: true } });
      const total = Math.round(rate * seconds);
      const start = Date.now() + 200;
      let sent = 0;
      const tick = setInterval(function () {
        const now = Date.now();
        const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
        // One send per message: an array would be deep-cloned after its first message.
        for (; sent < due; sent++) node.send({ topic: "proton_collision", payload: { t: Date.now(), i: sent }, sqi: { at: Date.now() + 50 } });
        if (sent >= total) {
          clearInterval(tick);
          setTimeout(function () {
            node.send({ topic: "__end", payload: { t: Date.now(), end: true } });
          }, 1500);
        }
      }, 5);
      node.on("close", function () {
        clearInterval(tick);
      });
    };
  }
  RED.nodes.registerType("bench-generator", BenchGenerator);
  RED.httpAdmin.post("/bench-gen/:id", function (req, res) {
    const n = RED.nodes.getNode(req.params.id);
    if (!n || !n.run) return res.sendStatus(404);
    n.run(Number(req.body.rate), Number(req.body.seconds));
    res.sendStatus(200);
  });

  function BenchCounter(n) {
    RED.nodes.createNode(this, n);
    const path = require("path");
    const file = path.resolve(process.env.SQI_USER_DIR || ".", n.file || "bench-counter.jsonl");
    let count = 0;
    let lat = new Float64Array(1 << 21);
    this.on("input", function (msg) {
      // Core websocket in delivers only the payload, as text: the markers travel in it.
      let p = msg.payload;
      if (typeof p === "string") {
        try {
          p = JSON.parse(p);
        } catch (e) {
          p = {};
        }
      }
      if (p && p.reset) {
        count = 0;
        return;
      }
      if (p && p.end) {
        const xs = Array.from(lat.subarray(0, Math.min(count, lat.length))).sort(function (a, b) {
          return a - b;
        });
        const q = function (p) {
          return xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : null;
        };
        fs.appendFileSync(file, JSON.stringify({ count: count, p50: q(0.5), p99: q(0.99), max: q(1) }) + "\n");
        return;
      }
      const t = p && p.t;
      if (count < lat.length) lat[count] = typeof t === "number" ? Date.now() - t : NaN;
      count++;
    });
  }
  RED.nodes.registerType("bench-counter", BenchCounter);

  function BenchEdgeLog(n) {
    RED.nodes.createNode(this, n);
    const path = require("path");
    const file = path.resolve(process.env.SQI_USER_DIR || ".", n.file || "edges.jsonl");
    let lines = [];
    const flush = function () {
      if (lines.length) fs.appendFileSync(file, lines.join(""));
      lines = [];
    };
    const timer = setInterval(flush, 1000);
    this.on("input", function (msg) {
      const e = msg.sqi && msg.sqi.edge;
      if (e && e.level > 0) lines.push(JSON.stringify({ t: Date.now(), late: e.sent - e.planned }) + "\n");
    });
    this.on("close", function () {
      clearInterval(timer);
      flush();
    });
  }
  RED.nodes.registerType("bench-edge-log", BenchEdgeLog);

  function BenchFrameLog(n) {
    RED.nodes.createNode(this, n);
    const node = this;
    const lead = Number(n.lead) || 0;
    node.reset = function () {
      node.messages = 0;
      node.events = 0;
      node.late = [];
    };
    node.reset();
    this.on("input", function (msg) {
      const sqi = msg.sqi || {};
      node.messages++;
      node.events += typeof sqi.count === "number" ? sqi.count : 1;
      if (typeof sqi.at === "number" && node.late.length < 1e6) node.late.push(Date.now() - (sqi.at - lead));
    });
  }
  RED.nodes.registerType("bench-frame-log", BenchFrameLog);
  RED.httpAdmin.post("/bench-frame-log/:id/reset", function (req, res) {
    const n = RED.nodes.getNode(req.params.id);
    if (!n || !n.reset) return res.sendStatus(404);
    n.reset();
    res.sendStatus(200);
  });
  RED.httpAdmin.get("/bench-frame-log/:id", function (req, res) {
    const n = RED.nodes.getNode(req.params.id);
    if (!n || !n.reset) return res.sendStatus(404);
    const xs = n.late.slice().sort(function (a, b) {
      return a - b;
    });
    const q = function (p) {
      return xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : null;
    };
    res.json({ messages: n.messages, events: n.events, p99: q(0.99), max: q(1) });
  });
};
