#!/usr/bin/env node
// sqi-dc: check and preview .dc containers from a terminal, with the same loader and
// player the dc-container node uses.
//   sqi-dc validate FILE...                               FILE: ok, or one line per problem
//   sqi-dc play FILE [--ticks N] [--speed X] [--no-wait]  the timeline as JSON lines
//   sqi-dc audit PINLOG [--flow FLOW] [limits]            a pin log against the safety limits

import { RealClock, VirtualClock, type Clock } from "../lib/clock";
import { formatProblems, loadContainerFile } from "../lib/container/format";
import { MAX_SPEED, Player } from "../lib/container/player";
import { audit, AUDIT_USAGE } from "./audit";

const USAGE = `usage:
  sqi-dc validate FILE...
  sqi-dc play FILE [--ticks N] [--speed X] [--no-wait]
  sqi-dc audit PINLOG [--flow FLOW.json] [options]

validate  prints "FILE: ok" or one line per problem; exit 0 when every file is valid, 1 otherwise.
play      prints one JSON line per event: {"at", "tick", "loop", "event", "payload"}.
          --ticks N   play N ticks (counting empty ticks, across loops); default: one pass
          --speed X   speed factor instead of the container's runtime_speed ("accelerated" = 10)
          --no-wait   compute the timeline at once on a virtual clock starting now

${AUDIT_USAGE}`;

function validate(files: string[]): number {
  if (files.length === 0) return usage("validate needs at least one FILE");
  let bad = 0;
  for (const f of files) {
    const r = loadContainerFile(f);
    if (r.ok) process.stdout.write(`${f}: ok\n`);
    else {
      bad++;
      for (const line of formatProblems(f, r.problems)) process.stdout.write(`${line}\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}

interface PlayArgs {
  file: string;
  ticks?: number;
  speed?: number;
  wait: boolean;
}

function parsePlay(args: string[]): PlayArgs | string {
  let file: string | undefined;
  const out: Partial<PlayArgs> = { wait: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--no-wait") out.wait = false;
    else if (a === "--ticks" || a === "--speed") {
      const v = args[++i];
      const n = Number(v);
      if (a === "--ticks") {
        if (v === undefined || !Number.isInteger(n) || n < 1) return `--ticks needs a positive whole number, got ${v ?? "nothing"}`;
        out.ticks = n;
      } else {
        if (v === undefined || !Number.isFinite(n) || n <= 0 || n > MAX_SPEED) return `--speed needs a positive number up to ${MAX_SPEED}, got ${v ?? "nothing"}`;
        out.speed = n;
      }
    } else if (a.startsWith("--")) return `unknown option ${a}`;
    else if (file === undefined) file = a;
    else return `play takes one FILE, got a second: ${a}`;
  }
  if (file === undefined) return "play needs a FILE";
  return { ...out, file } as PlayArgs;
}

function play(args: string[]): Promise<number> | number {
  const parsed = parsePlay(args);
  if (typeof parsed === "string") return usage(parsed);
  const r = loadContainerFile(parsed.file);
  if (!r.ok) {
    for (const line of formatProblems(parsed.file, r.problems)) process.stderr.write(`${line}\n`);
    return 1;
  }
  const c = r.container;
  const maxTick = c.glyphs.reduce((m, g) => Math.max(m, g.tick), 0);
  const ticks = parsed.ticks ?? maxTick;
  const clock: Clock = parsed.wait ? new RealClock() : new VirtualClock(Date.now());
  const player = new Player({
    clock,
    leadMs: 0,
    onGlyph: (g) => {
      // Tick positions count every tick, empty ones too, across loops.
      if (g.loop * maxTick + g.tick > ticks) {
        player.stop();
        return;
      }
      process.stdout.write(`${JSON.stringify({ at: g.at, tick: g.tick, loop: g.loop, event: g.event, payload: g.payload })}\n`);
    },
  });
  player.load(c);
  if (parsed.speed !== undefined) player.setSpeed(parsed.speed);
  // Finished: the last requested tick has had its time.
  const endAfterMs = ticks * player.periodMs;
  if (clock instanceof VirtualClock) {
    const t0 = clock.now();
    player.start();
    clock.runUntil(t0 + endAfterMs);
    player.stop();
    return 0;
  }
  return new Promise<number>((resolve) => {
    player.start();
    const stop = (): void => {
      player.stop();
      resolve(0);
    };
    clock.setTimer(stop, endAfterMs);
    process.once("SIGINT", stop);
  });
}

function usage(problem?: string): number {
  if (problem) process.stderr.write(`sqi-dc: ${problem}\n`);
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "validate") return validate(rest);
  if (cmd === "play") return play(rest);
  if (cmd === "audit") return audit(rest, (s) => process.stdout.write(s), (s) => process.stderr.write(s));
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  return usage(cmd === undefined ? undefined : `unknown command ${cmd}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`sqi-dc: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
