#!/usr/bin/env node
// sqi-dc: check and preview .dc containers from a terminal, with the same loader and
// player the dc-container node uses, audit a pin log against the safety limits, and check a
// Pi for what changes what happens at its pins (doctor).
// Options are parsed by node:util parseArgs (so --opt=value works); "-" reads stdin.
// Exit 0: all valid; 1: a container is invalid (or an audit found a violation); 2: a usage
// problem or a file that cannot be read. Errors go to stderr. A closed pipe (| head) ends quietly.

import * as fs from "node:fs";
import * as path from "node:path";
import { RealClock, VirtualClock, type Clock } from "../lib/clock";
import { loadContainerFile, MAX_CONTAINER_BYTES, parseContainerText, problemLine, type LoadResult } from "../lib/container/format";
import { MAX_SPEED, Player } from "../lib/container/player";
import { packageRoot } from "../lib/paths";
import { parseCommand } from "./args";
import { audit, AUDIT_USAGE } from "./audit";
import { doctor, DOCTOR_USAGE } from "./doctor";

const VALIDATE_USAGE = `sqi-dc validate [--format text|json] FILE...
  Checks .dc containers ("-" reads one from stdin).
  text: "FILE: ok" on stdout for each valid file; each problem on stderr as
        FILE:LINE:COL: message (json.path)
  json: one JSON object on stdout: {"ok", "files": [{"file", "ok", "readable", "problems": [{"line", "column", "path", "message"}]}]}
  exit 0: every file valid; 1: a file is invalid; 2: a usage problem or a file that cannot be read`;

const PLAY_USAGE = `sqi-dc play [--ticks N] [--speed X] [--no-wait] FILE
  Plays a .dc container ("-" reads it from stdin) and prints one JSON line per event:
  {"at", "tick", "loop", "event", "payload"}.
  --ticks N   play N ticks (counting empty ticks, across loops); default: one pass
  --speed X   speed factor instead of the container's runtime_speed ("accelerated" = 10)
  --no-wait   compute the timeline at once on a virtual clock starting now
  exit 0: played; 1: the container is invalid; 2: a usage problem or a file that cannot be read`;

const USAGE = `usage: sqi-dc <command> [options]   (sqi-dc <command> --help for one command)

commands:
  validate   check .dc containers
  play       print a container's timeline as JSON lines
  audit      check a pin log against the safety limits
  doctor     check this Pi for what changes what happens at its pins, with the fixes

options:
  --help, -h      this text
  --version, -v   the version of @sqi/node-red-pulse`;

const commandUsage: Record<string, string> = { validate: VALIDATE_USAGE, play: PLAY_USAGE, audit: AUDIT_USAGE, doctor: DOCTOR_USAGE };

const out = (s: string): void => void process.stdout.write(s);
const err = (s: string): void => void process.stderr.write(s);

/** A usage problem: says what, points at the command's help, exit 2. */
function usage(problem: string, command?: string): number {
  err(`sqi-dc${command ? ` ${command}` : ""}: ${problem}\n`);
  err(`Try 'sqi-dc ${command ? `${command} ` : ""}--help'.\n`);
  return 2;
}

function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string }).version; // the package's own package.json
}

/** Reads stdin, at most one byte past the container limit (the parser says "too big"). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    n += chunk.length;
    if (n > MAX_CONTAINER_BYTES) break;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Loads a container from a file, or from stdin for "-". */
async function load(file: string): Promise<LoadResult> {
  return file === "-" ? parseContainerText(await readStdin()) : loadContainerFile(file);
}

const shown = (file: string): string => (file === "-" ? "<stdin>" : file);
const unreadable = (r: LoadResult): boolean => !r.ok && r.problems.some((p) => p.unreadable);

async function validate(args: string[]): Promise<number> {
  const parsed = parseCommand(args, { format: { type: "string", default: "text" }, help: { type: "boolean", short: "h" } });
  if (typeof parsed === "string") return usage(parsed, "validate");
  const { values, positionals: files } = parsed;
  if (values.help) return help("validate");
  if (values.format !== "text" && values.format !== "json") return usage(`--format must be text or json, got ${JSON.stringify(values.format)}`, "validate");
  if (files.length === 0) return usage("needs at least one FILE (or - for stdin)", "validate");
  if (files.filter((f) => f === "-").length > 1) return usage('stdin ("-") can be read only once', "validate");
  const results: Array<{ file: string; r: LoadResult }> = [];
  for (const file of files) results.push({ file, r: await load(file) });
  if (values.format === "json") {
    const report = results.map(({ file, r }) => ({
      file: shown(file),
      ok: r.ok,
      readable: !unreadable(r),
      problems: r.ok ? [] : r.problems.map((p) => ({ line: p.line ?? null, column: p.column ?? null, path: p.path, message: p.message })),
    }));
    out(`${JSON.stringify({ ok: report.every((f) => f.ok), files: report })}\n`);
  } else {
    for (const { file, r } of results) {
      if (r.ok) out(`${shown(file)}: ok\n`);
      else for (const p of r.problems) err(`${problemLine(shown(file), p)}\n`);
    }
  }
  if (results.some(({ r }) => unreadable(r))) return 2;
  return results.every(({ r }) => r.ok) ? 0 : 1;
}

async function play(args: string[]): Promise<number> {
  const parsed = parseCommand(args, {
    ticks: { type: "string" },
    speed: { type: "string" },
    "no-wait": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (typeof parsed === "string") return usage(parsed, "play");
  const { values, positionals } = parsed;
  if (values.help) return help("play");
  const [file] = positionals;
  if (file === undefined) return usage("needs a FILE (or - for stdin)", "play");
  if (positionals.length > 1) return usage(`takes one FILE, got a second: ${positionals[1]}`, "play");
  let ticks: number | undefined;
  let speed: number | undefined;
  if (values.ticks !== undefined) {
    ticks = Number(values.ticks);
    if (!/^\d+$/.test(values.ticks) || !Number.isSafeInteger(ticks) || ticks < 1)
      return usage(`--ticks needs a positive whole number, got ${values.ticks}`, "play");
  }
  if (values.speed !== undefined) {
    speed = Number(values.speed);
    if (values.speed.trim() === "" || !Number.isFinite(speed) || speed <= 0 || speed > MAX_SPEED)
      return usage(`--speed needs a positive number up to ${MAX_SPEED}, got ${values.speed}`, "play");
  }
  const r = await load(file);
  if (!r.ok) {
    for (const p of r.problems) err(`${problemLine(shown(file), p)}\n`);
    return unreadable(r) ? 2 : 1;
  }
  const c = r.container;
  const maxTick = c.glyphs.reduce((m, g) => Math.max(m, g.tick), 0);
  const total = ticks ?? maxTick;
  const clock: Clock = values["no-wait"] ? new VirtualClock(Date.now()) : new RealClock();
  const player = new Player({
    clock,
    leadMs: 0,
    onGlyph: (g) => {
      // Tick positions count every tick, empty ones too, across loops.
      if (g.loop * maxTick + g.tick > total) {
        player.stop();
        return;
      }
      out(`${JSON.stringify({ at: g.at, tick: g.tick, loop: g.loop, event: g.event, payload: g.payload })}\n`);
    },
  });
  player.load(c);
  if (speed !== undefined) player.setSpeed(speed);
  // Finished: the last requested tick has had its time.
  const endAfterMs = total * player.periodMs;
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

function help(command?: string): number {
  out(`${command ? commandUsage[command] : USAGE}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    err(`${USAGE}\n`);
    return 2;
  }
  if (cmd === "--version" || cmd === "-v") {
    out(`${version()}\n`);
    return 0;
  }
  if (cmd === "--help" || cmd === "-h") return help();
  if (cmd === "help") return rest[0] === undefined ? help() : commandUsage[rest[0]] ? help(rest[0]) : usage(`no command ${rest[0]}`);
  if (cmd === "validate") return validate(rest);
  if (cmd === "play") return play(rest);
  if (cmd === "audit") {
    if (rest.includes("--help") || rest.includes("-h")) return help("audit");
    return audit(rest, out, err);
  }
  if (cmd === "doctor") {
    if (rest.includes("--help") || rest.includes("-h")) return help("doctor");
    return doctor(rest, out, err);
  }
  return usage(cmd.startsWith("-") ? `unknown option ${cmd}` : `unknown command ${cmd}`);
}

// A reader that stops early (| head) closes the pipe: end quietly, as Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    err(`sqi-dc: ${(e as Error).message}\n`);
    process.exitCode = 2;
  },
);
