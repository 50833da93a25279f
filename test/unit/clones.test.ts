import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import { DEFAULT_CLONES, makePhases, parseCloneSettings, SPREADS, type CloneSettings } from "../../lib/container/clones";
import type { Container } from "../../lib/container/format";
import { Player, type PlayedGlyph } from "../../lib/container/player";
import { container, starCore, T0 } from "../helpers/containers";

function play(c: Container, clones: Partial<CloneSettings>, lateness?: () => number) {
  const clock = new VirtualClock(T0, lateness);
  const seen: PlayedGlyph[] = [];
  const player = new Player({ clock, onGlyph: (g) => seen.push(g), clones: { ...DEFAULT_CLONES, ...clones } });
  player.load(c);
  return { clock, player, seen };
}

const total = (seen: PlayedGlyph[]) => seen.reduce((n, g) => n + (g.count ?? 1), 0);

/** Every timer 0-5 ms late (seeded, the same on every run), and once, after `stallAt`, 3 s late: a stalled process. */
function late(now: () => number, stallAt: number): () => number {
  let x = 7;
  let stalled = false;
  return () => {
    if (!stalled && now() >= stallAt) {
      stalled = true;
      return 3000;
    }
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x / 2147483648) * 5;
  };
}

describe("clones: exact counts", () => {
  const finite = container([
    { tick: 1, event: "a" },
    { tick: 2, event: "b" },
    { tick: 2, event: "c" },
    { tick: 5, event: "a" },
  ]);
  for (const spread of SPREADS) {
    for (const spreadOver of ["tick", "loop"] as const) {
      for (const clones of [7, 1000, 1_000_000]) {
        it(`${clones} clones, ${spread} over a ${spreadOver}, aggregated: the counts add up to clones x glyphs, then finished`, () => {
          const { clock, player, seen } = play(finite, { clones, spread, spreadOver, emission: "aggregate", seed: 42 });
          player.start();
          clock.advance(5000);
          assert.equal(player.state, "finished");
          assert.equal(total(seen), clones * 4);
          assert.equal(player.stats.events, clones * 4);
          assert.equal(player.stats.skipped, 0);
          // one message per event name per frame, never an empty one
          assert.ok(seen.every((g) => g.count! >= 1 && g.window_ms! > 0 && g.window_ms! <= 20));
          const frames = new Set(seen.map((g) => `${g.at}:${g.event}`));
          assert.equal(frames.size, seen.length);
        });
      }
      it(`50 clones, ${spread} over a ${spreadOver}, one message each: every clone plays every glyph exactly once, in time order`, () => {
        const { clock, player, seen } = play(finite, { clones: 50, spread, spreadOver, emission: "each", seed: 42 });
        player.start();
        clock.advance(5000);
        assert.equal(seen.length, 200);
        const pairs = new Set(seen.map((g) => `${g.clone}:${g.tick}:${g.event}`));
        assert.equal(pairs.size, 200);
        const ats = seen.map((g) => g.at);
        assert.deepEqual(
          ats,
          [...ats].sort((x, y) => x - y),
        );
      });
    }
  }

  for (const spread of SPREADS) {
    it(`1,000 clones of the looping star core, ${spread}: over 120 virtual s with late timers and a stall, sent + skipped = every clone event before the counted position`, () => {
      const ref = { now: () => 0 };
      const { clock, player, seen } = play(
        starCore,
        { clones: 1000, spread, seed: 9, spreadOver: spread === "even" ? "loop" : "tick" },
        late(() => ref.now(), T0 + 60_000),
      );
      ref.now = () => clock.now();
      player.start();
      clock.advance(120_000);
      const P = player.countedPosition;
      player.stop();
      // An independent count: each clone's own events, position by position.
      const phases = makePhases(1000, spread, 9);
      const span = spread === "even" ? 5 : 1;
      let expected = 0;
      for (let pos = 0; pos < P; pos++) {
        for (let i = 0; i < 1000; i++) if (phases.phase(i) < (P - pos) / span) expected++;
      }
      assert.ok(P > 2300, `played ${P} ticks`);
      assert.ok(player.stats.skipped >= 1000 * 50, `the 3 s stall skipped ${player.stats.skipped} clone events (60 ticks' worth)`);
      assert.equal(total(seen) + player.stats.skipped, expected);
    });
  }
});

describe("clones: spreads, emission and control", () => {
  it("frames longer than the stall limit: a late frame is still sent, never a loop that cannot move on", () => {
    let stall = true;
    const ref = { now: () => 0 };
    // a timer 1.5 s late: past the 1 s stall limit, yet still inside the same 2 s frame
    const lateness = () => (stall && ref.now() >= T0 + 2000 ? ((stall = false), 1500) : 0);
    const { clock, player, seen } = play(
      container([{ tick: 1, event: "x" }], { loop: true, tick_interval_ms: 1000 }),
      { clones: 200, frameMs: 2000 },
      lateness,
    );
    ref.now = () => clock.now();
    player.start();
    clock.advance(20_000);
    assert.ok(player.stats.frames >= 9, `${player.stats.frames} frames`);
    // the frame the late timer found (it began at T0 + 2050) went out late, as one frame, not skipped
    assert.ok(
      seen.some((g) => g.at === T0 + 2050 && g.count! > 0),
      "the late frame was sent",
    );
    assert.equal(player.stats.skipped, 0, "a frame still in progress is sent, not skipped");
    assert.equal(total(seen) + player.stats.skipped, Math.round(player.countedPosition) * 200);
  });

  it("even spread: 4 clones of a 100 ms tick fire 25 ms apart, each tagged with its clone", () => {
    const { clock, player, seen } = play(container([{ tick: 1, event: "x" }]), { clones: 4, spread: "even" });
    player.start();
    clock.advance(1000);
    assert.deepEqual(
      seen.map((g) => [g.clone, g.at - T0]),
      [
        [0, 50],
        [1, 75],
        [2, 100],
        [3, 125],
      ],
    );
  });

  it("identical spread: every clone fires at the tick itself", () => {
    const { clock, player, seen } = play(container([{ tick: 2, event: "x" }]), { clones: 3, spread: "identical" });
    player.start();
    clock.advance(1000);
    assert.deepEqual(
      seen.map((g) => g.at - T0),
      [150, 150, 150],
    );
  });

  it("random spread is reproducible by seed, and another seed gives other phases", () => {
    const ats = (seed: number) => {
      const { clock, player, seen } = play(container([{ tick: 1, event: "x" }]), { clones: 20, spread: "random", seed });
      player.start();
      clock.advance(1000);
      return seen.map((g) => g.at);
    };
    assert.deepEqual(ats(5), ats(5));
    assert.notDeepEqual(ats(5), ats(6));
    assert.ok(
      ats(5).every((a) => a >= T0 + 50 && a < T0 + 150),
      "phases within one tick",
    );
  });

  it("switches to aggregated messages above the threshold (auto)", () => {
    const kinds = (clones: number) => {
      const { clock, player, seen } = play(container([{ tick: 1, event: "x" }]), { clones, aggregateAbove: 100 });
      player.start();
      clock.advance(1000);
      return {
        each: seen.filter((g) => g.clone !== undefined).length,
        aggregated: seen.filter((g) => g.count !== undefined).length,
        total: total(seen),
        aggregatedMode: player.aggregated,
      };
    };
    assert.deepEqual(kinds(100), { each: 100, aggregated: 0, total: 100, aggregatedMode: false });
    const above = kinds(101);
    assert.equal(above.each, 0);
    assert.equal(above.total, 101);
    assert.equal(above.aggregated, 5, "a 100 ms tick spread evenly is 5 frames of 20 ms");
    assert.ok(above.aggregatedMode);
  });

  it("aggregated: one message per event name per frame, at the frame's start, with the frame's length", () => {
    const { clock, player, seen } = play(starCore, { clones: 1000, spread: "even", spreadOver: "loop", frameMs: 10 });
    player.start();
    clock.advance(1000);
    const frameStarts = [...new Set(seen.map((g) => g.at))];
    assert.ok(
      frameStarts.every((a, k) => Math.abs(a - (T0 + 50 + 10 * k)) < 1e-6),
      "frames on a 10 ms grid from the lead",
    );
    assert.ok(seen.every((g) => g.window_ms === 10));
    // 5 events per 250 ms loop x 1000 clones = 20,000 events/s: 200 per 10 ms frame, spread over the 5 names.
    // (the first loop is a ramp: clones spread over a loop join one after another)
    const perFrame = frameStarts.slice(25, 75).map((a) => seen.filter((g) => g.at === a).reduce((n, g) => n + g.count!, 0));
    assert.ok(
      perFrame.every((n) => n === 200),
      `every frame holds 200 events: ${perFrame.join(",")}`,
    );
    assert.equal(player.intendedRate, 20_000);
  });

  it("pause, step, resume and a speed change keep the counts exact", () => {
    const finite = container([
      { tick: 1, event: "a" },
      { tick: 3, event: "b" },
      { tick: 6, event: "c" },
    ]);
    const { clock, player, seen } = play(finite, { clones: 777, spread: "random", seed: 3, emission: "aggregate" });
    player.start();
    clock.advance(137);
    player.pause();
    clock.advance(500);
    player.step();
    player.step();
    player.resume();
    clock.advance(91);
    player.setSpeed(3.7);
    clock.advance(5000);
    assert.equal(player.state, "finished");
    assert.equal(total(seen), 777 * 3);
  });

  it("a stop from inside onGlyph sends nothing more of that frame, and restarting counts from tick 1", () => {
    const clock = new VirtualClock(T0);
    const seen: PlayedGlyph[] = [];
    const player: Player = new Player({
      clock,
      onGlyph: (g) => {
        seen.push(g);
        if (seen.length === 3) player.stop();
      },
      clones: { ...DEFAULT_CLONES, clones: 10, spread: "identical", emission: "each" },
    });
    player.load(container([{ tick: 1, event: "x" }]));
    player.start();
    clock.advance(1000);
    assert.equal(seen.length, 3);
    assert.equal(clock.pending(), 0);
    player.start();
    clock.advance(1000);
    assert.equal(seen.length, 13);
  });
});

describe("clones: bad settings", () => {
  const error = (def: Record<string, unknown>) => {
    const r = parseCloneSettings(def);
    return r.ok ? "ok" : r.errors.join("; ");
  };
  it("refuses 0, negative, fractional and too many clones, naming the limit", () => {
    assert.equal(error({ clones: 0 }), "Clones must be a whole number from 1 to 1000000, got 0");
    assert.equal(error({ clones: -5 }), "Clones must be a whole number from 1 to 1000000, got -5");
    assert.equal(error({ clones: "2.5" }), 'Clones must be a whole number from 1 to 1000000, got "2.5"');
    assert.equal(error({ clones: 10_000_000 }), "Clones must be a whole number from 1 to 1000000, got 10000000");
    assert.equal(error({ clones: "1000000" }), "ok");
  });
  it("refuses a seed that is not a number, a frame window of 0 and an unknown spread", () => {
    assert.equal(error({ seed: "abc" }), 'Seed must be a whole number from 0 to 4294967295, got "abc"');
    assert.equal(error({ frameMs: 0 }), "Frame window must be a number from 1 to 10000 ms, got 0");
    assert.equal(error({ spread: "wide" }), 'spread must be one of identical, even, random, got "wide"');
    assert.equal(error({ clones: 20_000, emission: "each" }), "One message per clone event is limited to 10,000 clones (got 20,000): send counts instead");
    assert.equal(error({ aggregateAbove: 50_000 }), "Counts above must be a whole number from 0 to 10000 clones, got 50000");
  });
  it("blank fields take the defaults", () => {
    assert.deepEqual(parseCloneSettings({ clones: "", seed: "", frameMs: "" }), { ok: true, settings: DEFAULT_CLONES });
  });
});
