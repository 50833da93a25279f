import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { eachLine, MAX_LINE_BYTES, openRegularFile, readRegularFile } from "../../lib/files";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-files-unit-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("lib/files: every file a user names, opened one way", () => {
  it("reads lines across its 64 KiB reads, the last without a newline; cuts and counts a line over 64 KiB", () => {
    const long = "x".repeat(MAX_LINE_BYTES + 5000);
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${"y".repeat(i % 50)}`);
    const file = path.join(dir, "lines.txt");
    fs.writeFileSync(file, `${lines.slice(0, 2500).join("\n")}\n${long}\n${lines.slice(2500).join("\n")}`);
    const got: string[] = [];
    const r = eachLine(file, 10 * 1024 * 1024, (l) => got.push(l));
    assert.ok(r.ok);
    assert.equal(r.longLines, 1);
    assert.equal(got.length, 5001);
    assert.deepEqual(got.slice(0, 2500), lines.slice(0, 2500));
    assert.equal(got[2500], long.slice(0, MAX_LINE_BYTES), "the long line, cut to 64 KiB");
    assert.deepEqual(got.slice(2501), lines.slice(2500));
  });

  it("refuses a FIFO, a device and a directory at once, a missing file by name, and a file over its bound", () => {
    const fifo = path.join(dir, "f.fifo");
    execFileSync("mkfifo", [fifo]);
    for (const f of [fifo, "/dev/zero"]) {
      const o = openRegularFile(f);
      assert.deepEqual(o, { ok: false, error: "is not a regular file (a FIFO, socket or device)" });
      assert.equal(eachLine(f, 100, () => undefined).ok, false);
    }
    assert.deepEqual(openRegularFile(dir), { ok: false, error: "is a directory, not a file" });
    assert.deepEqual(readRegularFile(path.join(dir, "nope"), 10), { ok: false, error: "file not found", missing: true });
    const big = path.join(dir, "big.txt");
    fs.writeFileSync(big, "0123456789abc");
    assert.deepEqual(readRegularFile(big, 10), { ok: false, error: "is 13 bytes, over the 10-byte limit", tooBig: 13 });
    assert.deepEqual(readRegularFile(big, 13), { ok: true, text: "0123456789abc" });
    const e = eachLine(big, 10, () => undefined);
    assert.ok(!e.ok && e.tooBig === 13);
  });
});
