// The two transports the bus benchmarks compare, as flow nodes: this package's bus and core
// Node-RED websocket nodes, side by side in one master and one Pi flow. Each benchmark wires
// its own source into "m.broadcast" and "m.wsout" and its own sinks after "p.listen"/"p.wsin".

/** Master side: sqi-bus on $SQI_BUS_PORT with a broadcast node, and a core websocket listener at corePath with websocket out. */
export function masterTransports(corePath: string): Array<Record<string, unknown>> {
  return [
    { id: "m.bus", type: "sqi-bus", host: "127.0.0.1", port: "${SQI_BUS_PORT}", path: "/", url: "", tokenEnv: "", maxFrame: 1048576 },
    { id: "m.core", type: "websocket-listener", path: corePath, wholemsg: "false" },
    { id: "m.broadcast", z: "m", type: "sqi-event-bus", role: "broadcast", bus: "m.bus", statsEvery: 0, wires: [[], []] },
    { id: "m.wsout", z: "m", type: "websocket out", server: "m.core", client: "", wires: [] },
  ];
}

/** Pi side: the bus config toward $SQI_MASTER_URL and a core websocket client toward $SQI_CORE_WS_URL. */
export function piTransports(maxFrame: number): Array<Record<string, unknown>> {
  return [
    { id: "p.bus", type: "sqi-bus", host: "127.0.0.1", port: "8765", path: "/", url: "${SQI_MASTER_URL}", tokenEnv: "", maxFrame },
    { id: "p.core", type: "websocket-client", path: "${SQI_CORE_WS_URL}", tls: "", wholemsg: "false", hb: "0", subprotocol: "", headers: [] },
  ];
}

/**
 * MQTT through the Mosquitto the benchmark starts: a bus config and a broadcast node per QoS
 * ("m.mqtt0", "m.mqtt1"), toward $SQI_BENCH_BROKER_MASTER.
 */
export function masterMqtt(qos: Array<0 | 1>): Array<Record<string, unknown>> {
  return qos.flatMap((q) => [
    {
      id: `m.mqttbus${q}`,
      type: "sqi-bus",
      name: `bench${q}`,
      transport: "mqtt",
      broker: "${SQI_BENCH_BROKER_MASTER}",
      qos: q,
      keepalive: 15,
      topicPrefix: `sqi/bench${q}`,
      maxFrame: 16777216,
    },
    { id: `m.mqtt${q}`, z: "m", type: "sqi-event-bus", role: "broadcast", bus: `m.mqttbus${q}`, statsEvery: 0, wires: [[], []] },
  ]);
}

/** Pi side of masterMqtt: bus configs toward $SQI_BENCH_BROKER_PI and listeners "p.mqtt0"/"p.mqtt1" wired to `sinks[q]`. */
export function piMqtt(qos: Array<0 | 1>, sinks: Record<number, string>): Array<Record<string, unknown>> {
  return qos.flatMap((q) => [
    {
      id: `p.mqttbus${q}`,
      type: "sqi-bus",
      name: `bench${q}`,
      transport: "mqtt",
      broker: "${SQI_BENCH_BROKER_PI}",
      qos: q,
      keepalive: 15,
      topicPrefix: `sqi/bench${q}`,
      maxFrame: 16777216,
    },
    {
      id: `p.mqtt${q}`,
      z: "p",
      type: "sqi-event-bus",
      role: "listen",
      bus: `p.mqttbus${q}`,
      listenerName: "${SQI_NODE_NAME}",
      late: "fire",
      statsEvery: 0,
      wires: [[sinks[q]], []],
    },
  ]);
}
