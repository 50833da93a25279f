// A throwaway Mosquitto broker for tests and benchmarks: its own config file in a temp
// directory, listening on 127.0.0.1 only, anonymous or with a password file, started as a
// child process and stopped by its pid. The package itself has no broker code: this only
// runs the real one from Debian's package.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** Where a program is (PATH, and the sbin directories Debian puts mosquitto in), or undefined. */
function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin"];
  for (const d of dirs) {
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Where mosquitto is, or undefined when it is not installed. */
export function mosquittoPath(): string | undefined {
  return which("mosquitto");
}

export interface Broker {
  port: number;
  url: string;
  pid: number | undefined;
  /** Stops the broker (SIGTERM, then SIGKILL after 3 s). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same config. */
  start(): Promise<void>;
}

export interface BrokerOptions {
  dir: string;
  port: number;
  /** user -> password; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** PEM files: the listener speaks TLS (mqtts://) with this certificate. */
  tls?: { cert: string; key: string };
  /** The text of a Mosquitto acl_file: who may read and write which topics. */
  acl?: string;
  /** More lines for mosquitto.conf (a bridge). */
  extra?: string[];
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const bin = mosquittoPath();
  if (!bin) throw new Error("mosquitto is not installed (Debian: apt-get install mosquitto)");
  fs.mkdirSync(o.dir, { recursive: true });
  const conf = path.join(o.dir, "mosquitto.conf");
  // As root, mosquitto would switch to its own user, who cannot read this private temp
  // directory: it stays the user that started it (a plain user cannot switch anyway).
  const lines = [
    `user ${os.userInfo().username}`,
    `listener ${o.port} 127.0.0.1`,
    "persistence false",
    "set_tcp_nodelay true",
    `log_dest file ${path.join(o.dir, "mosquitto.log")}`,
    "log_type error",
    "log_type warning",
    "log_type notice",
  ];
  if (o.tls) lines.push(`certfile ${o.tls.cert}`, `keyfile ${o.tls.key}`);
  if (o.users) {
    const passwd = path.join(o.dir, "passwd");
    fs.writeFileSync(passwd, "");
    const tool = which("mosquitto_passwd");
    if (!tool) throw new Error("mosquitto_passwd is not installed (it comes with Debian's mosquitto package)");
    for (const [user, pass] of Object.entries(o.users)) execFileSync(tool, ["-b", passwd, user, pass], { stdio: "ignore" });
    lines.push("allow_anonymous false", `password_file ${passwd}`);
  } else {
    lines.push("allow_anonymous true");
  }
  if (o.acl !== undefined) {
    const acl = path.join(o.dir, "acl");
    fs.writeFileSync(acl, o.acl);
    lines.push(`acl_file ${acl}`);
  }
  lines.push(...(o.extra ?? []));
  fs.writeFileSync(conf, `${lines.join("\n")}\n`);
  let child: ChildProcess | undefined;
  const broker: Broker = {
    port: o.port,
    url: `${o.tls ? "mqtts" : "mqtt"}://127.0.0.1:${o.port}`,
    pid: undefined,
    async start() {
      child = spawn(bin, ["-c", conf], { stdio: "ignore" });
      broker.pid = child.pid;
      const deadline = Date.now() + 10_000;
      while (!(await portOpen(o.port))) {
        if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}); see ${path.join(o.dir, "mosquitto.log")}`);
        if (Date.now() > deadline) throw new Error("mosquitto did not listen within 10 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      const timer = setTimeout(() => c.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(timer);
    },
  };
  await broker.start();
  return broker;
}

/**
 * The bridge a site adds to a second Mosquitto so that its Pis reach a master on the first
 * (docs/many-pis.md, "How many Pis"): everything under the bus prefix both ways, each message at its
 * own QoS up to 1 (clock-sync pings and pongs stay QoS 0), retained welcomes and hellos kept.
 */
export function bridgeLines(name: string, address: string, prefix = "sqi/#"): string[] {
  return [
    `connection ${name}`,
    `address ${address}`,
    `topic ${prefix} both 1`,
    "cleansession true",
    "try_private true",
    "restart_timeout 1",
    "start_type automatic",
  ];
}

/** Two brokers on `ports`, the second bridged to the first, in `dir`: the bridge is up when this resolves. */
export async function startBridgedBrokers(dir: string, ports: [number, number]): Promise<[Broker, Broker]> {
  const a = await startBroker({ dir: path.join(dir, "a"), port: ports[0] });
  try {
    const b = await startBroker({ dir: path.join(dir, "b"), port: ports[1], extra: bridgeLines("site-b", `127.0.0.1:${ports[0]}`) });
    try {
      await bridged(a.url, b.url);
    } catch (e) {
      await b.stop();
      throw e;
    }
    return [a, b];
  } catch (e) {
    await a.stop();
    throw e;
  }
}

/** Resolves once a message published on `b` arrives on `a` (the bridge is connected), within 10 s. */
async function bridged(a: string, b: string): Promise<void> {
  const mqtt = await import("mqtt");
  const on = [mqtt.connect(a, { reconnectPeriod: 200 }), mqtt.connect(b, { reconnectPeriod: 200 })] as const;
  const poke = setInterval(() => on[1].publish("sqi/bridge-check", "1"), 100);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error("the bridge did not connect within 10 s")), 10_000);
      on[0].on("message", () => resolve());
      on[0].subscribe("sqi/bridge-check");
    });
  } finally {
    clearInterval(poke);
    clearTimeout(timer);
    for (const c of on) c.end(true);
  }
}
