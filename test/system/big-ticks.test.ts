// One big tick must starve neither the pin nor the editor. In a real Node-RED, at once: a
// 150,000-glyph tick looping every second, 10,000 clones of a 100-glyph tick asked for one
// message each (both over clones x glyphs = 100,000, so they travel as counted messages),
// and a 40,000-glyph tick sent one message per glyph (under the bound: in slices of 3 ms).
// Meanwhile the admin API is asked every 100 ms and the process's memory is read. The red
// team measured, before: admin API answers of 2.5-3.8 s, a 1.8-2.1 s pulse at 100 % duty
// against limits of 100 ms and 50 %, RSS 1.4 GB. Asserted: every limit holds at the pin (or
// each violation has its stall beside it), the editor is never starved for a second, memory
// stays bounded; the admin API's p99 against its 200 ms target is recorded in the output.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { assertNeverLonger, chain, runAndAudit, type FlowNode } from "../helpers/pins";
import type { Demo } from "../helpers/demo";

const MAX_ON_MS = 100;

function containerFile(dir: string, name: string, glyphs: number, events: string[]): string {
  const file = path.join(dir, `${name}.dc`);
  const c = {
    container_id: name,
    glyphs: Array.from({ length: glyphs }, (_, i) => ({ tick: 1, event: events[i % events.length] })),
    loop: true,
    tick_interval_ms: 1000,
    metadata: { runtime_speed: "realtime" },
  };
  fs.writeFileSync(file, JSON.stringify(c));
  return file;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

describe("big ticks starve neither the pin nor the editor", () => {
  it("150,000 glyphs a tick, 10,000 clones x 100 glyphs, and a 40,000-glyph tick, at once", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-big-"));
    const fromFile = (file: string) => ({ source: "file", file, json: "", startDelay: 2 });
    const flow: FlowNode[] = [
      { id: "big", type: "tab", label: "big ticks" },
      ...chain("big", "huge-tick", { pin: 18, tickMs: 1000, glyphs: [], player: fromFile(containerFile(dir, "huge", 150_000, ["a", "b"])) }),
      ...chain("big", "clones", {
        pin: 23,
        tickMs: 1000,
        glyphs: [],
        player: { ...fromFile(containerFile(dir, "hundred", 100, ["proton_collision", "c"])), clones: 10_000, spread: "identical", emission: "each" },
      }),
      ...chain("big", "sliced", { pin: 24, tickMs: 1000, glyphs: [], player: fromFile(containerFile(dir, "forty", 40_000, ["proton_collision"])) }),
    ];
    const latencies: number[] = [];
    const rss: number[] = [];
    let port = 0;
    try {
      const run = await runAndAudit(flow, 1, undefined, {}, async (demo: Demo) => {
        port = demo.port;
        const end = Date.now() + 20_000;
        // Bounded: at most 200 requests, each waited for before the next.
        for (let i = 0; i < 200 && Date.now() < end; i++) {
          const t0 = performance.now();
          const r = await fetch(`http://127.0.0.1:${demo.port}/settings`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
          if (r) await r.arrayBuffer();
          latencies.push(r?.ok ? performance.now() - t0 : 10_000);
          rss.push(rssMb(demo.redPid));
          await new Promise((res) => setTimeout(res, Math.max(0, 100 - (performance.now() - t0))));
        }
      });
      const p50 = quantile(latencies, 0.5);
      const p99 = quantile(latencies, 0.99);
      const max = Math.max(...latencies);
      t.diagnostic(
        `admin API (GET /settings, ${latencies.length} requests while they played): p50 ${p50.toFixed(1)} / p99 ${p99.toFixed(1)} / max ${max.toFixed(1)} ms (target p99 < 200 ms); RSS up to ${Math.max(...rss).toFixed(0)} MB\n${run.text}`,
      );
      for (const pin of [18, 23, 24]) assert.ok((run.pins.find((a) => a.pin === pin)?.pulses ?? 0) > 5, `pin ${pin} pulsed\n${run.text}`);
      assertNeverLonger(run, "big ticks", MAX_ON_MS);
      assert.ok(latencies.length >= 100, `the admin API answered often: ${latencies.length} on port ${port}`);
      assert.ok(max < 1000, `the editor was never starved for a second: the slowest answer took ${max.toFixed(0)} ms`);
      assert.ok(Math.max(...rss) < 700, `memory bounded: RSS up to ${Math.max(...rss).toFixed(0)} MB`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
