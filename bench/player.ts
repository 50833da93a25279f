// bench/player: what a user would notice of the player, on this machine, in one run.
//  1. Load time: a 100,000-glyph .dc file from disk to its first message (target < 1 s).
//  2. Drift: the player's emission times against their ideal schedule over a run of
//     10 ms ticks, side by side with the anchor a Node-RED user has today, the core
//     inject node's repeat, which is a plain setInterval.
//  3. The event loop during a big tick: a 40,000-glyph tick every second, and how long a
//     1 ms timer (a pulse's falling edge, the editor's request) waits behind it, against
//     the anchor a Node-RED user has today: a function node sending the same messages in
//     a loop (node.send in a for loop is one turn of the event loop).
// Prints a table and ratios; never fails on timing (the machine is shared and noisy).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RealClock } from "../lib/clock";
import { loadContainerFile } from "../lib/container/format";
import { Player } from "../lib/container/player";

const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 10_000);
const PERIOD_MS = 10;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const head = xs.slice(0, 100);
  const tail = xs.slice(-100);
  const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  return { n: xs.length, median: q(0.5), p99: q(0.99), max: s[s.length - 1]!, drift: avg(tail) - avg(head) };
}

async function loadTime(): Promise<number[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-load-"));
  const file = path.join(dir, "huge.dc");
  const glyphs = Array.from({ length: 100_000 }, (_, i) => ({ tick: (i % 1000) + 1, event: i % 2 ? "proton_collision" : "atom_spin_flip" }));
  fs.writeFileSync(file, JSON.stringify({ container_id: "huge", glyphs, loop: true, tick_interval_ms: 10 }));
  const out: number[] = [];
  try {
    for (let run = 0; run < 5; run++) {
      const t0 = performance.now();
      const r = loadContainerFile(file);
      if (!r.ok) throw new Error("bench container did not load");
      const clock = new RealClock();
      await new Promise<void>((resolve) => {
        const p = new Player({
          clock,
          onGlyph: () => {
            p.dispose();
            resolve();
          },
        });
        p.load(r.container);
        p.start();
      });
      out.push(performance.now() - t0);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function playerLateness(): Promise<number[]> {
  const clock = new RealClock();
  const late: number[] = [];
  return new Promise((resolve) => {
    const p = new Player({ clock, leadMs: 0, onGlyph: (g) => late.push(clock.now() - g.at) });
    p.load({ container_id: "bench", glyphs: [{ tick: 1, event: "tick" }], loop: true, tick_interval_ms: PERIOD_MS, metadata: { runtime_speed: "realtime" } });
    p.start();
    clock.setTimer(() => {
      p.dispose();
      resolve(late);
    }, RUN_MS);
  });
}

function setIntervalLateness(): Promise<number[]> {
  const late: number[] = [];
  const t0 = performance.now();
  let k = 0;
  return new Promise((resolve) => {
    const h = setInterval(() => {
      k++;
      late.push(performance.now() - (t0 + k * PERIOD_MS));
      if (performance.now() - t0 >= RUN_MS) {
        clearInterval(h);
        resolve(late);
      }
    }, PERIOD_MS);
  });
}

const BIG_TICK = 40_000;

/** How late a 1 ms repeating timer fires (ms), each time, while `load` runs for `ms`. */
function timerLag(ms: number, load: (stop: Promise<void>) => void): Promise<number[]> {
  const lags: number[] = [];
  let done!: () => void;
  const stop = new Promise<void>((r) => (done = r));
  // The load is set up first (building 40,000 glyphs is not what is measured), then timed.
  load(stop);
  let last = performance.now();
  const h = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 1));
    last = now;
  }, 1);
  return new Promise((resolve) =>
    setTimeout(() => {
      clearInterval(h);
      done();
      resolve(lags);
    }, ms),
  );
}

/** A message's cost downstream: what Node-RED's send does for it (a clone and a queued delivery), roughly. */
const deliver = (sink: unknown[]) => (m: unknown) => void sink.push(structuredClone(m));

function bigTickPlayer(stop: Promise<void>): void {
  const clock = new RealClock();
  const sink: unknown[] = [];
  const send = deliver(sink);
  const glyphs = Array.from({ length: BIG_TICK }, () => ({ tick: 1, event: "proton_collision", payload: { n: 1 } }));
  const p = new Player({
    clock,
    leadMs: 100,
    onGlyph: (g) => {
      send(g);
      if (sink.length > 1000) sink.length = 0;
    },
  });
  p.load({ container_id: "big", glyphs, loop: true, tick_interval_ms: 1000, metadata: { runtime_speed: "realtime" } });
  // The first tick 100 ms after the timing begins, as for the anchor.
  const t = setTimeout(() => p.start(), 100);
  void stop.then(() => (clearTimeout(t), p.dispose()));
}

function bigTickFunctionNode(stop: Promise<void>): void {
  const sink: unknown[] = [];
  const send = deliver(sink);
  const once = (): void => {
    for (let i = 0; i < BIG_TICK; i++) {
      send({ topic: "proton_collision", payload: { n: 1 } });
      if (sink.length > 1000) sink.length = 0;
    }
  };
  let h: NodeJS.Timeout | undefined;
  const t = setTimeout(() => {
    once();
    h = setInterval(once, 1000);
  }, 100);
  void stop.then(() => (clearTimeout(t), clearInterval(h)));
}

async function main(): Promise<void> {
  const loads = (await loadTime()).sort((a, b) => a - b);
  process.stdout.write(
    `load: 100,000-glyph container, file to first message: median ${loads[2]!.toFixed(0)} ms (runs: ${loads.map((x) => x.toFixed(0)).join(", ")}; target < 1000 ms)\n\n`,
  );

  const ours = stats(await playerLateness());
  const anchor = stats(await setIntervalLateness());
  const row = (name: string, s: ReturnType<typeof stats>) =>
    `${name.padEnd(34)} ${String(s.n).padStart(6)} ${s.median.toFixed(2).padStart(8)} ${s.p99.toFixed(2).padStart(8)} ${s.max.toFixed(2).padStart(8)} ${s.drift.toFixed(2).padStart(10)}`;
  process.stdout.write(`drift: ${PERIOD_MS} ms ticks for ${RUN_MS / 1000} s; lateness = sent - ideal (ms)\n`);
  process.stdout.write(
    `${"".padEnd(34)} ${"events".padStart(6)} ${"median".padStart(8)} ${"p99".padStart(8)} ${"max".padStart(8)} ${"end drift".padStart(10)}\n`,
  );
  process.stdout.write(`${row("dc-container player", ours)}\n${row("anchor: setInterval (inject repeat)", anchor)}\n`);
  // 0.1 ms is below what a timer can resolve here: drift smaller than that counts as 0.1.
  const ratio = Math.abs(anchor.drift) / Math.max(0.1, Math.abs(ours.drift));
  const pct = (d: number) => `${((100 * d) / RUN_MS).toFixed(3)}%`;
  process.stdout.write(
    `\nend drift as a share of the run: player ${pct(ours.drift)}, anchor ${pct(anchor.drift)} (anchor/player >= ${ratio.toFixed(0)}x)\n` +
      `events delivered: player ${ours.n}, anchor ${anchor.n} of ${Math.floor(RUN_MS / PERIOD_MS)} due\n`,
  );

  const lagMs = Math.min(RUN_MS, 5000);
  const sliced = stats(await timerLag(lagMs, bigTickPlayer));
  const loop = stats(await timerLag(lagMs, bigTickFunctionNode));
  process.stdout.write(
    `\nthe event loop during a ${BIG_TICK.toLocaleString("en")}-glyph tick every second, for ${lagMs / 1000} s: how late a 1 ms timer fires (ms)\n`,
  );
  process.stdout.write(`${"".padEnd(34)} ${"timers".padStart(6)} ${"median".padStart(8)} ${"p99".padStart(8)} ${"max".padStart(8)}\n`);
  const lagRow = (name: string, x: ReturnType<typeof stats>) =>
    `${name.padEnd(34)} ${String(x.n).padStart(6)} ${x.median.toFixed(2).padStart(8)} ${x.p99.toFixed(2).padStart(8)} ${x.max.toFixed(2).padStart(8)}`;
  process.stdout.write(`${lagRow("dc-container player (slices)", sliced)}\n${lagRow("anchor: function node, send loop", loop)}\n`);
  process.stdout.write(`longest wait: anchor/player ${(loop.max / Math.max(0.1, sliced.max)).toFixed(1)}x\n`);
}

void main();
