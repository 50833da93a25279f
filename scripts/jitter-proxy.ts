// A TCP proxy that delays everything by a random 0..J ms, keeping order per connection
// and direction as TCP would: the kernel here has no netem, so the cluster and the sync
// benchmark simulate network jitter with this between the master and its listeners.

import * as net from "node:net";

export interface JitterProxy {
  port: number;
  close(): Promise<void>;
}

function delayedPipe(from: net.Socket, to: net.Socket, jitterMs: number, random: () => number): void {
  const queue: Array<{ at: number; chunk: Buffer }> = [];
  let last = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const pump = (): void => {
    timer = undefined;
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
    last = Math.max(Date.now() + random() * jitterMs, last);
    queue.push({ at: last, chunk });
    if (!timer) timer = setTimeout(pump, Math.max(0, queue[0]!.at - Date.now()));
  });
  from.on("end", () => {
    ended = true;
    if (!timer) pump();
  });
  from.on("close", () => {
    if (!queue.length) to.destroy();
  });
  from.on("error", () => to.destroy());
}

export function startJitterProxy(opts: {
  port: number;
  targetPort: number;
  targetHost?: string;
  jitterMs: number;
  random?: () => number;
}): Promise<JitterProxy> {
  const random = opts.random ?? Math.random;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(opts.targetPort, opts.targetHost ?? "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
    }
    delayedPipe(client, upstream, opts.jitterMs, random);
    delayedPipe(upstream, client, opts.jitterMs, random);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
