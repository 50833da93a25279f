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
