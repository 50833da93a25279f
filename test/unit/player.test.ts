import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../lib/clock";
import type { Container } from "../../lib/container/format";
import { Player, type PlayedGlyph, type PlayerOptions } from "../../lib/container/player";
import { container, starCore, T0 } from "../helpers/containers";

interface Seen extends PlayedGlyph {
  sentAt: number;
}

function setup(c: Container, opts: Partial<PlayerOptions> = {}, lateness?: () => number) {
  const clock = new VirtualClock(T0, lateness);
  const seen: Seen[] = [];
  const states: string[] = [];
  const player = new Player({
    clock,
    onGlyph: (g) => seen.push({ ...g, sentAt: clock.now() }),
    onStateChange: (s) => states.push(s),
    ...opts,
  });
  player.load(c);
  return { clock, player, seen, states };
}

const brief = (s: Seen[]) => s.map((g) => `${g.event}@${g.at - T0}`);

describe("Player: schedule", () => {
  it("plays ticks 1..max at tick_interval_ms / speed, each glyph sent lead ms before its at", () => {
    const { clock, player, seen } = setup(container([{ tick: 1 }, { tick: 2 }, { tick: 3 }]));
    player.start();
    clock.advance(1000);
    assert.deepEqual(brief(seen), ["e0@50", "e1@150", "e2@250"]);
    assert.deepEqual(
      seen.map((g) => g.at - g.sentAt),
      [50, 50, 50],
    );
    assert.deepEqual(
      seen.map((g) => [g.tick, g.loop, g.container]),
      [
        [1, 0, "test"],
        [2, 0, "test"],
        [3, 0, "test"],
      ],
    );
  });

  it("fires glyphs that share a tick in file order, and lets empty ticks take their time", () => {
    const { clock, player, seen } = setup(
      container([
        { tick: 3, event: "a" },
        { tick: 1, event: "b" },
        { tick: 3, event: "c" },
      ]),
    );
    player.start();
    clock.advance(1000);
    assert.deepEqual(brief(seen), ["b@50", "a@250", "c@250"]);
  });

  it("loops: after the last tick it starts again at tick 1 and counts the loop", () => {
    const { clock, player, seen } = setup(
      container(
        [
          { tick: 1, event: "x" },
          { tick: 3, event: "y" },
        ],
        { loop: true },
      ),
    );
    player.start();
    clock.advance(899); // x@950 would be sent at 900
    assert.deepEqual(brief(seen), ["x@50", "y@250", "x@350", "y@550", "x@650", "y@850"]);
    assert.deepEqual(
      seen.map((g) => g.loop),
      [0, 0, 1, 1, 2, 2],
    );
    assert.equal(player.state, "playing");
  });

  it("a container that does not loop finishes when its last tick has had its time", () => {
    const { clock, player, states } = setup(container([{ tick: 1 }, { tick: 4 }]));
    player.start();
    clock.advance(50 + 400 - 1);
    assert.equal(player.state, "playing");
    clock.advance(1);
    assert.equal(player.state, "finished");
    assert.deepEqual(states, ["playing", "finished"]);
    assert.equal(clock.pending(), 0, "no timer left once finished");
  });

  it("takes its speed from runtime_speed: realtime 1, accelerated the accel factor, or a number", () => {
    const periodOf = (spec: Container["metadata"], accelFactor?: number) => {
      const { player } = setup({ ...container([{ tick: 1 }]), metadata: spec }, accelFactor === undefined ? {} : { accelFactor });
      return player.periodMs;
    };
    assert.equal(periodOf({ runtime_speed: "realtime" }), 100);
    assert.equal(periodOf({ runtime_speed: "accelerated" }), 10, "default acceleration is 10");
    assert.equal(periodOf({ runtime_speed: "accelerated" }, 4), 25);
    assert.equal(periodOf({ runtime_speed: 2 }), 50);
    assert.equal(periodOf(undefined), 100, "no runtime_speed is real time");
  });

  it("plays the star core at 10x: one event every 50 ms, looping", () => {
    const { clock, player, seen } = setup(starCore);
    player.start();
    clock.advance(499); // the 11th event would be sent at 500
    assert.deepEqual(
      seen.map((g) => `${g.event}@${g.at - T0}/${g.loop}`),
      [
        "proton_collision@50/0",
        "atom_spin_flip@100/0",
        "waveform_emit@150/0",
        "time_dilation@200/0",
        "fusion_tick@250/0",
        "proton_collision@300/1",
        "atom_spin_flip@350/1",
        "waveform_emit@400/1",
        "time_dilation@450/1",
        "fusion_tick@500/1",
      ],
    );
    assert.deepEqual(seen[0]!.payload, { energy_mev: 14.1, particles: 2, angle: "head-on" });
  });

  it("numbers every glyph with a sequence that never goes back, across stop and start", () => {
    const { clock, player, seen } = setup(container([{ tick: 1 }, { tick: 1 }, { tick: 2 }]));
    player.start();
    clock.advance(500);
    player.stop();
    player.start();
    clock.advance(500);
    assert.deepEqual(
      seen.map((g) => g.seq),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it("sends a copy of the payload: changing it downstream leaves the container untouched", () => {
    const { clock, player, seen } = setup(container([{ tick: 1, payload: { n: 1 } }], { loop: true }));
    player.start();
    clock.advance(1);
    seen[0]!.payload.n = 99;
    clock.advance(100);
    assert.deepEqual(seen[1]!.payload, { n: 1 });
  });
});

describe("Player: no drift", () => {
  it("keeps every at on the grid over 10,000 ticks although every timer fires 0-5 ms late", () => {
    let seed = 42;
    const late = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return (seed / 2147483648) * 5;
    };
    const { clock, player, seen } = setup(container([{ tick: 1 }], { loop: true, tick_interval_ms: 10 }), {}, late);
    player.start();
    clock.advance(10 * 10_000);
    assert.ok(seen.length >= 10_000, `played ${seen.length} ticks`);
    let worstSendLag = 0;
    for (let k = 0; k < 10_000; k++) {
      const g = seen[k]!;
      assert.equal(g.at, T0 + 50 + k * 10, `tick ${k} is on the grid`);
      worstSendLag = Math.max(worstSendLag, g.sentAt - (g.at - 50));
    }
    // Lateness never accumulates: the worst glyph is sent no later than one timer's lateness.
    assert.ok(worstSendLag <= 5, `worst send lag ${worstSendLag} ms`);
    assert.equal(player.stats.skipped, 0);
  });

  it("skips and counts the glyphs that fell due during a stall instead of bursting them late", () => {
    let stallOnce = true;
    const late = () => {
      if (stallOnce && clockRef.now() >= T0 + 300) {
        stallOnce = false;
        return 3000;
      }
      return 0;
    };
    const clockRef = { now: () => 0 };
    const { clock, player, seen } = setup(container([{ tick: 1 }], { loop: true }), {}, late);
    clockRef.now = () => clock.now();
    player.start();
    clock.advance(5000);
    const ats = seen.map((g) => g.at - T0);
    // Sent on time up to the stall, then none of the ~30 ticks due during the 3 s stall.
    assert.deepEqual(ats.slice(0, 4), [50, 150, 250, 350]);
    const afterStall = ats.slice(4);
    assert.ok(afterStall[0]! >= 3300, `first glyph after the stall is due at ${afterStall[0]}`);
    assert.equal(player.stats.skipped, (afterStall[0]! - 450) / 100, "every skipped tick is counted");
    assert.equal(seen.length + player.stats.skipped, (ats[ats.length - 1]! - 50) / 100 + 1, "sent + skipped = all due");
    for (const a of afterStall) assert.equal((a - 50) % 100, 0, "still on the grid");
  });

  it("sends what fell due meanwhile in bounded batches, in order and on the grid", () => {
    // 0.01 ms ticks and timers 5 ms late: about 500 glyphs are due at each timer.
    const { clock, player, seen } = setup(container([{ tick: 1 }], { loop: true, tick_interval_ms: 0.01 }), { leadMs: 0, maxBatch: 100 }, () => 5);
    player.start();
    assert.equal(seen.length, 1);
    clock.advance(5.01);
    assert.equal(seen.length, 101, "one timer callback sends at most maxBatch glyphs");
    clock.advance(5);
    assert.equal(seen.length, 201);
    seen.forEach((g, k) => assert.ok(Math.abs(g.at - (T0 + k * 0.01)) < 1e-6, `glyph ${k} on the grid`));
  });
});

describe("Player: control", () => {
  it("pause holds the playhead and resume goes on from there", () => {
    const { clock, player, seen } = setup(container([{ tick: 1 }, { tick: 2 }, { tick: 3 }]));
    player.start();
    clock.advance(120); // ticks 1 and 2 sent (tick 2 at 150 was sent at 100)
    player.pause();
    assert.equal(player.state, "paused");
    clock.advance(1000);
    assert.equal(seen.length, 2, "nothing is sent while paused");
    assert.equal(clock.pending(), 0, "no timer while paused");
    player.resume();
    clock.advance(1000);
    // 80 ms of tick 2 were left at the pause: tick 3 is due 80 ms after the resumed playhead.
    assert.equal(seen[2]!.at - T0, 1120 + 50 + 80);
  });

  it("step sends the next tick holding glyphs at once and stays paused; resume continues after it", () => {
    const { clock, player, seen } = setup(
      container([
        { tick: 1, event: "a" },
        { tick: 4, event: "b" },
        { tick: 5, event: "c" },
      ]),
    );
    player.step();
    assert.equal(player.state, "paused");
    assert.deepEqual(brief(seen), ["a@50"]);
    clock.advance(500);
    player.step();
    assert.deepEqual(brief(seen), ["a@50", "b@550"], "empty ticks 2 and 3 are stepped over");
    clock.advance(10);
    player.resume();
    clock.advance(1000);
    assert.deepEqual(brief(seen), ["a@50", "b@550", "c@660"]);
  });

  it("stop resets to tick 1 and cancels every timer", () => {
    const { clock, player, seen } = setup(container([{ tick: 1 }, { tick: 2 }], { loop: true }));
    player.start();
    clock.advance(120);
    player.stop();
    assert.equal(clock.pending(), 0);
    clock.advance(1000);
    assert.equal(seen.length, 2);
    player.start();
    clock.advance(0);
    assert.equal(seen[2]!.tick, 1);
  });

  it("a speed change while playing keeps the playhead and changes the pace from now on", () => {
    const { clock, player, seen } = setup(container([{ tick: 1 }, { tick: 2 }, { tick: 3 }, { tick: 4 }]));
    player.start();
    clock.advance(120);
    player.setSpeed(2);
    clock.advance(1000);
    // playhead at 1.2 ticks; 0.8 tick to tick 3 at 50 ms per tick = 40 ms, then 50 ms more to tick 4.
    assert.deepEqual(brief(seen), ["e0@50", "e1@150", "e2@210", "e3@260"]);
    player.setSpeed(null);
    assert.equal(player.speed, 1, "null goes back to the container's own speed");
    assert.throws(() => player.setSpeed(0), /speed must be a positive number/);
    assert.throws(() => player.setSpeed(Number.NaN), /speed must be a positive number/);
  });

  it("load while playing plays the new container from tick 1; load while stopped stays stopped", () => {
    const { clock, player, seen } = setup(container([{ tick: 1, event: "old" }], { loop: true }));
    player.start();
    clock.advance(150);
    player.load({ ...container([{ tick: 1, event: "new" }], { loop: true }), container_id: "second" });
    clock.advance(0);
    assert.equal(seen[seen.length - 1]!.event, "new");
    assert.equal(seen[seen.length - 1]!.container, "second");
    assert.equal(player.state, "playing");
    player.stop();
    player.load(container([{ tick: 1 }]));
    assert.equal(player.state, "stopped");
    assert.equal(clock.pending(), 0);
  });

  it("a stop from inside onGlyph sends nothing more, not even the rest of that tick", () => {
    const clock = new VirtualClock(T0);
    const seen: string[] = [];
    const player: Player = new Player({
      clock,
      onGlyph: (g) => {
        seen.push(g.event);
        if (g.event === "a") player.stop();
      },
    });
    player.load(
      container([
        { tick: 1, event: "a" },
        { tick: 1, event: "b" },
        { tick: 2, event: "c" },
      ]),
    );
    player.start();
    clock.advance(1000);
    assert.deepEqual(seen, ["a"]);
    assert.equal(clock.pending(), 0);
  });

  it("dispose leaves no timer behind", () => {
    const { clock, player } = setup(container([{ tick: 1 }], { loop: true }));
    player.start();
    clock.advance(10);
    player.dispose();
    assert.equal(clock.pending(), 0);
  });
});

describe("Player: a big tick never holds the event loop", () => {
  /** A clock whose time moves on by `costMs` for every message sent, as a busy flow's would. */
  function costly(c: Container, costMs: number, opts: Partial<PlayerOptions> = {}) {
    const clock = new VirtualClock(T0);
    const slices: number[] = [];
    let inSlice = 0;
    const boundary = () => inSlice && (slices.push(inSlice), (inSlice = 0));
    // Each timer callback is one turn of the event loop: what it sends is one slice.
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (fn, ms) =>
      setTimer(() => {
        boundary();
        fn();
      }, ms);
    const seen: PlayedGlyph[] = [];
    const player = new Player({
      clock,
      onGlyph: (g) => {
        seen.push(g);
        inSlice++;
        (clock as unknown as { t: number }).t += costMs;
      },
      ...opts,
    });
    player.load(c);
    return { clock, player, seen, slices, flush: boundary };
  }

  it("a 50,000-glyph tick goes out in slices of at most 3 ms, all of it, in order, with the loop free between them", () => {
    const glyphs = Array.from({ length: 50_000 }, () => ({ tick: 1 }));
    const { clock, player, seen, slices, flush } = costly(container(glyphs, { loop: false }), 0.01);
    player.start();
    const firstSlice = seen.length;
    clock.advance(5_000);
    flush();
    assert.ok(firstSlice <= 1000, `the first callback sent ${firstSlice}, not the whole tick`);
    assert.equal(seen.length, 50_000, "every glyph sent");
    assert.ok(
      seen.every((g, i) => i === 0 || g.seq === seen[i - 1]!.seq + 1),
      "in order",
    );
    const longest = Math.max(...slices) * 0.01;
    assert.ok(longest <= 3 + 0.16, `no slice held the loop more than 3 ms (+ one check's 16 messages): longest ${longest.toFixed(2)} ms`);
    assert.ok(slices.length >= 150, `${slices.length} slices`);
    assert.equal(player.countedBySize, false);
  });

  it("a stop in the middle of a big tick counts what it did not send as skipped, and sends nothing more", () => {
    const glyphs = Array.from({ length: 20_000 }, () => ({ tick: 1 }));
    const { clock, player, seen } = costly(container(glyphs, { loop: true }), 0.01);
    player.start();
    clock.advance(20);
    const sent = seen.length;
    assert.ok(sent > 0 && sent < 20_000, `${sent} sent so far`);
    player.stop();
    clock.advance(1000);
    assert.equal(seen.length, sent, "nothing after stop");
    assert.equal(player.stats.skipped, 20_000 - sent, "the rest of the tick is counted skipped");
  });

  it("10,000 clones of a 100-glyph tick, asked for one message each, travel as counted messages (clones × glyphs over 100,000)", () => {
    const glyphs = Array.from({ length: 100 }, (_, i) => ({ tick: 1, event: `ev${i % 5}` }));
    const { clock, player, seen } = costly(container(glyphs, { loop: true }), 0, {
      clones: { clones: 10_000, spread: "identical", spreadOver: "tick", seed: 1, emission: "each", aggregateAbove: 100, frameMs: 20 },
    });
    assert.equal(player.countedBySize, true);
    assert.equal(player.aggregated, true);
    player.start();
    clock.advance(1000);
    const events = seen.reduce((n, g) => n + (g.count ?? 1), 0);
    const ticks = events / (10_000 * 100);
    assert.ok(Number.isInteger(ticks) && ticks >= 10, `whole ticks of every clone's 100 events, all counted: ${events}`);
    assert.ok(seen.length <= ticks * 5, `one message per event name per tick: ${seen.length} for ${ticks} ticks`);
    // The same container with 1,000 clones (100,000 events a tick) still goes one message each.
    const small = costly(container(glyphs, { loop: true }), 0, {
      clones: { clones: 1000, spread: "even", spreadOver: "tick", seed: 1, emission: "each", aggregateAbove: 100, frameMs: 20 },
    });
    assert.equal(small.player.countedBySize, false);
  });

  it("one copy of a 150,000-glyph tick is counted by size too: a second's events in a handful of messages", () => {
    const glyphs = Array.from({ length: 150_000 }, (_, i) => ({ tick: 1, event: i % 2 ? "a" : "b" }));
    const { clock, player, seen } = costly(container(glyphs, { loop: true, tick_interval_ms: 1000 }), 0);
    assert.equal(player.countedBySize, true);
    player.start();
    clock.advance(2500);
    assert.equal(
      seen.reduce((n, g) => n + (g.count ?? 1), 0),
      3 * 150_000,
    );
    assert.ok(seen.length <= 6, `${seen.length} messages`);
  });
});
