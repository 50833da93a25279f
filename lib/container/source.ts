// Finds a .dc file the way a Node-RED user expects: absolute paths as they are,
// relative paths against the Node-RED user dir, and bundled containers by name.

import * as fs from "node:fs";
import * as path from "node:path";
import { bundledContainersDir } from "../paths";

/** The paths tried for a configured file name, in order. */
export function containerCandidates(file: string, baseDir: string): string[] {
  if (path.isAbsolute(file)) return [file];
  const out = [path.resolve(baseDir, file)];
  // A bare name ("synthetic_star_core" or "synthetic_star_core.dc") also finds a bundled container.
  if (!file.includes("/") && !file.includes("\\")) {
    out.push(path.join(bundledContainersDir, file));
    if (!file.endsWith(".dc")) out.push(path.join(bundledContainersDir, `${file}.dc`));
  }
  return out;
}

/** The first candidate that exists, or the first candidate (so that "file not found" names it). */
export function resolveContainerPath(file: string, baseDir: string): string {
  const candidates = containerCandidates(file, baseDir);
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
}

/** Names of the bundled containers, for the editor's file field. */
export function bundledContainers(): string[] {
  try {
    return fs
      .readdirSync(bundledContainersDir)
      .filter((f) => f.endsWith(".dc"))
      .sort();
  } catch {
    return [];
  }
}
