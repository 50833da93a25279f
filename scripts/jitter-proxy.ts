// A TCP proxy that delays everything by a random 0..J ms, keeping order per connection
// and direction as TCP would, optionally plus a fixed delay one way and jitter one way only
// (a path slower one way than the other: what biases every two-way clock sync). The kernel
// here has no netem, so the cluster and the sync benchmark simulate network jitter with this
// between the master and its listeners.
// `blackhole(true)` is a Wi-Fi drop: nothing crosses either way, no FIN, no RST, until
// `blackhole(false)`; what was sent meanwhile then arrives, as TCP's retransmissions would
// deliver it, and a side that closed meanwhile is seen closed only then.
// `stalls` is a Wi-Fi link as it is: each connection (each Pi's radio) now and then stops for
// tens to hundreds of ms (power saving, a scan, interference), sometimes a few times in a row;
// what was sent meanwhile arrives after, in order.

import * as net from "node:net";

/** Wi-Fi stalls on one link: episodes at random (exponential gaps), each of a few stalls. */
export interface StallModel {
  /** Mean time between episodes, s. */
  everyS: number;
  /** Each stall lasts a uniform minMs..maxMs. */
  minMs: number;
  maxMs: number;
  /** After a stall, another follows 100-500 ms later with this probability (a burst). */
  burstP: number;
}

/** A Pi's Wi-Fi with power saving on, as the lead advice in docs/many-pis.md assumes: 50-300 ms stalls about once a minute, a third of them in bursts. */
export const WIFI_STALLS: StallModel = { everyS: 60, minMs: 50, maxMs: 300, burstP: 0.3 };

/** The stalls of one link, in order: each call gives the next [start, end) in ms after `fromMs` (where the last one ended). */
export function stallSchedule(model: StallModel, random: () => number): (fromMs: number) => [number, number] {
  let burst = false;
  return (fromMs) => {
    const gap = burst ? 100 + random() * 400 : -Math.log(1 - random()) * model.everyS * 1000;
    const start = fromMs + gap;
    const end = start + model.minMs + random() * (model.maxMs - model.minMs);
    burst = random() < model.burstP;
    return [start, end];
  };
}

export interface JitterProxy {
  port: number;
  /** On: nothing crosses, either way, and no close is seen; off: everything held goes on. */
  blackhole(on: boolean): void;
  /** How many stalls the links have had so far. */
  stalls(): number;
  close(): Promise<void>;
}

/** Whether the network is down, and who waits for it to come back. */
class Gate {
  down = false;
  private waiting: Array<() => void> = [];
  when(fn: () => void): void {
    if (this.down) this.waiting.push(fn);
    else fn();
  }
  set(down: boolean): void {
    this.down = down;
    if (down) return;
    const w = this.waiting;
    this.waiting = [];
    for (const fn of w) fn();
  }
}

/** Down while any of its gates is (the whole proxy blackholed, or this link stalled). */
class Gates {
  constructor(private readonly all: Gate[]) {}
  get down(): boolean {
    return this.all.some((g) => g.down);
  }
  when(fn: () => void): void {
    const closed = this.all.find((g) => g.down);
    if (closed) closed.when(() => this.when(fn));
    else fn();
  }
}

function delayedPipe(from: net.Socket, to: net.Socket, fixedMs: number, jitterMs: number, random: () => number, gate: Gates): void {
  const queue: Array<{ at: number; chunk: Buffer }> = [];
  let last = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  /** waiting for the network to come back */
  let parked = false;
  const pump = (): void => {
    timer = undefined;
    if (gate.down) {
      if (!parked) {
        parked = true;
        gate.when(() => {
          parked = false;
          pump();
        });
      }
      return;
    }
    const now = Date.now();
    while (queue.length && queue[0]!.at <= now) {
      if (!to.destroyed) to.write(queue.shift()!.chunk);
      else queue.shift();
    }
    if (queue.length) timer = setTimeout(pump, queue[0]!.at - now);
    else if (ended) to.end();
  };
  from.on("data", (chunk: Buffer) => {
    // Never before the previous chunk: order is kept, delays only ever grow the gap.
    last = Math.max(Date.now() + fixedMs + random() * jitterMs, last);
    queue.push({ at: last, chunk });
    if (!timer && !parked) timer = setTimeout(pump, Math.max(0, queue[0]!.at - Date.now()));
  });
  from.on("end", () => {
    ended = true;
    if (!timer && !parked) pump();
  });
  from.on("close", () => gate.when(() => queue.length || to.destroy()));
  from.on("error", () => gate.when(() => to.destroy()));
}

export function startJitterProxy(opts: {
  port: number;
  targetPort: number;
  targetHost?: string;
  jitterMs: number;
  random?: () => number;
  /** "up" is client to target (a Pi to its master), "down" the way back: a fixed delay each, and which ways jitter (both by default) */
  upFixedMs?: number;
  downFixedMs?: number;
  jitterWays?: "both" | "up" | "down";
  /** Wi-Fi stalls on each connection (each its own schedule); none by default. */
  stalls?: StallModel;
}): Promise<JitterProxy> {
  const random = opts.random ?? Math.random;
  const gate = new Gate();
  const sockets = new Set<net.Socket>();
  let stalls = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(opts.targetPort, opts.targetHost ?? "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
    }
    const link = new Gate();
    if (opts.stalls) {
      // This link's own radio: stalls on its own schedule until either side closes.
      const next = stallSchedule(opts.stalls, random);
      let timer: NodeJS.Timeout | undefined;
      const plan = (fromMs: number): void => {
        const [start, end] = next(fromMs);
        timer = setTimeout(
          () => {
            link.set(true);
            stalls++;
            timer = setTimeout(() => {
              link.set(false);
              plan(end);
            }, end - start);
          },
          Math.max(0, start - Date.now()),
        );
      };
      plan(Date.now());
      const stop = (): void => {
        clearTimeout(timer);
        link.set(false);
      };
      client.once("close", stop);
      upstream.once("close", stop);
    }
    const gates = new Gates([gate, link]);
    const ways = opts.jitterWays ?? "both";
    delayedPipe(client, upstream, opts.upFixedMs ?? 0, ways === "down" ? 0 : opts.jitterMs, random, gates);
    delayedPipe(upstream, client, opts.downFixedMs ?? 0, ways === "up" ? 0 : opts.jitterMs, random, gates);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        blackhole: (on) => gate.set(on),
        stalls: () => stalls,
        close: () =>
          new Promise((done) => {
            gate.set(false);
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
