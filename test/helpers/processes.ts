// Helpers for tests that start real processes: free ports, waiting for output, and
// stopping by pid (also when the test fails).

import type { ChildProcess } from "node:child_process";
import * as net from "node:net";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * The first of `n` consecutive free ports (a cluster's editors take base, base + 1, ...):
 * one free port does not make the next one free, and a Pi whose editor port is taken exits.
 */
export async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let free = true;
    for (let p = base; p < base + n && free; p++) free = await canListen(p);
    if (free) return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves when `test` passes, polling every `everyMs`; rejects with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  test: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await test();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function exited(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const t = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

/** Last resort in a finally block: SIGKILL every pid still alive. */
export function killAll(...pids: Array<number | undefined>): void {
  for (const pid of pids) {
    if (isAlive(pid)) {
      try {
        process.kill(pid!, "SIGKILL");
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
