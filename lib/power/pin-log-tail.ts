// Reads what a pin log gained since the last look, in bounded pieces: the simulated sensor's
// view of the simulated GPIO. A log that shrank was started afresh (a new run): read from its
// start. A line not yet finished stays for the next look; a "line" that never ends is dropped.

import * as fs from "node:fs";
import { openRegularFile } from "../files";
import { parsePinLog, type PinRecord } from "../pulse/audit";

/** Bytes read per look at most: a busy pin writes about 40 bytes an edge. */
export const MAX_READ_BYTES = 1024 * 1024;
/** An unfinished line longer than this is not a record (they are under 100 bytes). */
const MAX_PARTIAL = 4096;

export class PinLogTail {
  private offset = 0;
  private partial = "";
  /** lines that were not records */
  malformed = 0;

  constructor(readonly file: string) {}

  /**
   * Starts from the log's end, as a meter switched on now would: what the pin did before is
   * not this meter's (a redeploy must not read a whole run's past as one interval's draw).
   */
  skipToEnd(): void {
    try {
      this.offset = fs.statSync(this.file).size;
    } catch {
      this.offset = 0;
    }
    this.partial = "";
  }

  /** Why the last look read nothing, when the log is there but is not a regular file (a FIFO, a device). */
  refused = "";

  /** The records appended since the last call; none when the file is not there (yet), or is not a regular file. */
  read(): PinRecord[] {
    // Opened as every user-named file is: a FIFO with no writer would block Node-RED for good.
    const o = openRegularFile(this.file);
    this.refused = o.ok || o.missing ? "" : o.error;
    if (!o.ok) return [];
    const fd = o.fd;
    try {
      const size = o.size;
      if (size < this.offset) {
        this.offset = 0;
        this.partial = "";
      }
      const n = Math.min(MAX_READ_BYTES, size - this.offset);
      if (n <= 0) return [];
      const buf = Buffer.allocUnsafe(n);
      const got = fs.readSync(fd, buf, 0, n, this.offset);
      this.offset += got;
      const text = this.partial + buf.toString("utf8", 0, got);
      const end = text.lastIndexOf("\n");
      this.partial = text.slice(end + 1);
      if (this.partial.length > MAX_PARTIAL) {
        this.partial = "";
        this.malformed++;
      }
      const parsed = parsePinLog(end >= 0 ? text.slice(0, end) : "");
      this.malformed += parsed.malformed;
      return parsed.records;
    } finally {
      fs.closeSync(fd);
    }
  }
}
