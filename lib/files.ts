// Every file a user names (a .dc container, a pin log, a flow file) is opened here, the same
// safe way: regular files only, opened without blocking (opening a FIFO with no writer would
// wait for ever, and freeze Node-RED with it), checked on the open descriptor (fstat: nothing
// can be swapped in between), and read within a size bound (a device such as /dev/zero has
// no honest size, and a file may grow while it is read). Errors are values, never throws.

import * as fs from "node:fs";

export type Opened = { ok: true; fd: number; size: number } | { ok: false; error: string; missing?: boolean };

/** Opens a regular file for reading without blocking. The caller closes `fd`. */
export function openRegularFile(file: string): Opened {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (st.isFile()) return { ok: true, fd, size: st.size };
    fs.closeSync(fd);
    return { ok: false, error: st.isDirectory() ? "is a directory, not a file" : "is not a regular file (a FIFO, socket or device)" };
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? { ok: false, error: "file not found", missing: true } : { ok: false, error: `cannot be read (${code ?? (e as Error).message})` };
  }
}

export type Read = { ok: true; text: string } | { ok: false; error: string; missing?: boolean; tooBig?: number };

/** Reads a whole regular file of at most `maxBytes`, stopping one byte past the bound if it grows meanwhile. */
export function readRegularFile(file: string, maxBytes: number): Read {
  const o = openRegularFile(file);
  if (!o.ok) return o;
  try {
    if (o.size > maxBytes) return { ok: false, error: `is ${o.size} bytes, over the ${maxBytes}-byte limit`, tooBig: o.size };
    const buf = Buffer.alloc(Math.min(o.size, maxBytes) + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSome(o.fd, buf, n, buf.length - n);
    if (n > maxBytes) return { ok: false, error: `grew over the ${maxBytes}-byte limit while it was read`, tooBig: n };
    return { ok: true, text: buf.toString("utf8", 0, n) };
  } catch (e) {
    return { ok: false, error: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  } finally {
    fs.closeSync(o.fd);
  }
}

/** The longest line `eachLine` hands on; a longer one is cut to this and counted in `longLines`. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * Reads a regular file, or standard input for "-", line by line in bounded memory (a 64 KiB
 * buffer and one line), at most `maxBytes` in all. Lines over MAX_LINE_BYTES are counted and
 * handed on cut (they are not records of anything this package writes).
 */
export function eachLine(
  file: string,
  maxBytes: number,
  onLine: (line: string) => void,
): { ok: true; bytes: number; longLines: number } | { ok: false; error: string; missing?: boolean; tooBig?: number } {
  let fd: number;
  let close = true;
  if (file === "-") {
    fd = 0;
    close = false;
  } else {
    const o = openRegularFile(file);
    if (!o.ok) return o;
    if (o.size > maxBytes) {
      fs.closeSync(o.fd);
      return { ok: false, error: `is ${o.size} bytes, over the ${maxBytes}-byte limit`, tooBig: o.size };
    }
    fd = o.fd;
  }
  const buf = Buffer.alloc(64 * 1024);
  let bytes = 0;
  let longLines = 0;
  let partial: Buffer[] = [];
  let partialBytes = 0;
  try {
    for (;;) {
      const got = readSome(fd, buf, 0, buf.length);
      if (got === 0) break;
      bytes += got;
      if (bytes > maxBytes) return { ok: false, error: `is over the ${maxBytes}-byte limit`, tooBig: bytes };
      let from = 0;
      for (let nl = buf.indexOf(10, from); nl !== -1 && nl < got; nl = buf.indexOf(10, from)) {
        const piece = buf.subarray(from, nl);
        if (partialBytes + piece.length > MAX_LINE_BYTES) longLines++;
        const line = partialBytes ? Buffer.concat([...partial, piece]).subarray(0, MAX_LINE_BYTES) : piece;
        onLine(line.toString("utf8"));
        partial = [];
        partialBytes = 0;
        from = nl + 1;
      }
      if (from < got && partialBytes < MAX_LINE_BYTES) {
        const rest = Buffer.from(buf.subarray(from, Math.min(got, from + MAX_LINE_BYTES - partialBytes)));
        partial.push(rest);
        partialBytes += rest.length;
        if (got - from > rest.length) partialBytes = MAX_LINE_BYTES + 1; // cut: counted when the line ends
      }
    }
    if (partialBytes) {
      if (partialBytes > MAX_LINE_BYTES) longLines++;
      onLine(Buffer.concat(partial).subarray(0, MAX_LINE_BYTES).toString("utf8"));
    }
    return { ok: true, bytes, longLines };
  } catch (e) {
    return { ok: false, error: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  } finally {
    if (close) fs.closeSync(fd);
  }
}

/** One read; a non-blocking descriptor with nothing yet (EAGAIN, standard input from a slow pipe) waits 5 ms and tries again. */
function readSome(fd: number, buf: Buffer, offset: number, length: number): number {
  for (;;) {
    try {
      return fs.readSync(fd, buf, offset, length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
