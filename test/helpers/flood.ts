// What the pin-load tests send a Pi listener: a flood of the star core's events, and frames of
// about 1 MiB. Each takes the last seq used and returns the events with the next ones.
import type { EventFrame } from "../../lib/bus/frames";

const COIL_EVENTS = ["proton_collision", "waveform_emit", "time_dilation", "fusion_tick"];

/** 20 events due 100 ms from now (the flood sends these every 10 ms: about 2,000 events/s); with `led`, every 50th an LED flash. */
export function floodBurst(lastSeq: number, led: boolean): EventFrame[] {
  return Array.from({ length: 20 }, (_, i) => {
    const seq = lastSeq + i + 1;
    const event = led && (seq - 1) % 50 === 0 ? "atom_spin_flip" : COIL_EVENTS[(seq - 1) % 4]!;
    return { event, payload: event === "waveform_emit" ? { frequency_hz: 50_000, amplitude: 0.8 } : {}, seq, at: Date.now() + 100 };
  });
}

/** 2,000 coil events of about 500 bytes each, due over the next second: one frame of about 1 MB. */
export function megaFrame(lastSeq: number): EventFrame[] {
  const pad = "x".repeat(440);
  return Array.from({ length: 2000 }, (_, i) => ({ event: "proton_collision", payload: { pad }, seq: lastSeq + i + 1, at: Date.now() + 150 + i / 2 }));
}
