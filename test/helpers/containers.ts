// Containers used across tests, built in code so each test says what it plays.

import type { Container, Glyph } from "../../lib/container/format";

export const T0 = 1_700_000_000_000;

export function container(glyphs: Array<Partial<Glyph> & { tick: number }>, extra: Partial<Container> = {}): Container {
  return {
    container_id: "test",
    glyphs: glyphs.map((g, i) => ({ event: `e${i}`, ...g }) as Glyph),
    tick_interval_ms: 100,
    metadata: { runtime_speed: "realtime" },
    ...extra,
  };
}

/** The star core exactly as SPEC section 2 gives it. */
export const starCore: Container = {
  container_id: "synthetic_star_core",
  metadata: {
    author: "SQI Runtime",
    type: "synthetic_fusion",
    description: "Synthetic star core: proton collisions, atom spin flips, and waveforms",
    time_dilation: true,
    waveform_emit: true,
    runtime_speed: "accelerated",
  },
  glyphs: [
    { tick: 1, event: "proton_collision", payload: { energy_mev: 14.1, particles: 2, angle: "head-on" } },
    { tick: 2, event: "atom_spin_flip", payload: { atom: "hydrogen", spin_state: "up→down" } },
    { tick: 3, event: "waveform_emit", payload: { frequency_hz: 50000, amplitude: 0.8 } },
    { tick: 4, event: "time_dilation", payload: { factor_fast: 1000000, factor_slow: 5 } },
    { tick: 5, event: "fusion_tick", payload: { reaction: "p+p→He", energy_out: "pulse" } },
  ],
  loop: true,
  tick_interval_ms: 500,
};
