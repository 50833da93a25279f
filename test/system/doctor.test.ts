// `sqi-dc doctor` on fixture trees (test/fixtures/doctor): a Pi 4 on Bullseye with every
// problem this package knows of, a Pi 5 on Bookworm set up as the README says, and a laptop.
// Each tree holds the files the doctor reads (under --root) and stand-ins for the commands it
// runs (timedatectl, iw, vcgencmd: on PATH), so CI needs no Pi. Then the master probe against a
// real master on 127.0.0.1, and against a port where nothing listens.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";
import { realClock } from "../../lib/clock";
import type { Check } from "../../lib/doctor";
import { BusServer } from "../../lib/bus/ws-server";
import { packageRoot } from "../../lib/paths";
import { freePort, killAll } from "../helpers/processes";

const cli = path.join(packageRoot, "dist", "bin", "sqi-dc.js");
const fixtures = path.join(packageRoot, "test", "fixtures", "doctor");

/** Runs the doctor on a fixture tree (its commands alone on PATH); async, so a master in this process can answer the probe. */
function doctor(tree: string, ...extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const root = path.join(fixtures, tree);
  const child = spawn(process.execPath, [cli, "doctor", "--root", root, "--user-dir", path.join(root, "home", "pi", ".node-red"), ...extra], {
    env: { PATH: path.join(root, "bin"), HOME: root },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => killAll(child.pid), 30_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const checks = (stdout: string): Check[] => (JSON.parse(stdout) as { checks: Check[] }).checks;
const byWhat = (cs: Check[]) => Object.fromEntries(cs.map((c) => [c.what, c]));

describe("sqi-dc doctor", () => {
  it("a Pi 4 on Bullseye with every known problem: exit 1, each problem said with its fix", async (t) => {
    const r = await doctor("pi4-bullseye");
    t.diagnostic(r.stdout);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^ok {6}board: Raspberry Pi 4 Model B Rev 1\.4, bullseye$/m);
    assert.match(r.stdout, /^ok {6}GPIO library: RPi\.GPIO: it drives this board/m);
    assert.match(r.stdout, /^PROBLEM lgpio for pulse-out: python3-lgpio is not installed.*\n {4}fix: sudo apt install python3-lgpio$/m);
    assert.match(r.stdout, /^PROBLEM nodered\.service stop: KillMode=control-group: .*\n {4}fix: sudo mkdir -p \/etc\/systemd\/system\/nodered\.service\.d$/m);
    assert.match(r.stdout, /systemd\/nodered\.service\.d\/sqi-pulse\.conf \/etc\/systemd\/system\/nodered\.service\.d\/\n {9}sudo systemctl daemon-reload$/m);
    // The flows: the led not initialised low, GPIO 18 claimed by pulse-out and (header pin 12) the copy, the led shaper's maxOn 0.
    assert.match(r.stdout, /^PROBLEM flows: rpi-gpio out "led" \(GPIO 17\) does not initialise its pin/m);
    assert.match(r.stdout, /GPIO 18 is claimed by 2 nodes \(pulse-out "coil", rpi-gpio out "coil copy"\)/);
    assert.match(r.stdout, /pulse-shaper led shaper: .*Maximum on-time/);
    assert.match(r.stdout, /^ok {6}system clock: synchronised/m);
    // Bullseye has no NetworkManager: the fix is iw's.
    assert.match(r.stdout, /^PROBLEM Wi-Fi power saving: on: .*\n {4}fix: sudo iw dev wlan0 set power_save off$/m);
    assert.match(r.stdout, /^PROBLEM power and temperature: since boot: under-voltage, throttled \(vcgencmd get_throttled: throttled=0x50000\)$/m);
    assert.match(r.stdout, /^5 problems$/m);
  });

  it("a Pi 5 on Bookworm set up as the README says (rpi-lgpio, the drop-in, flows that start low): exit 0, all well", async () => {
    const r = await doctor("pi5-bookworm", "--format", "json");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const c = byWhat(checks(r.stdout));
    assert.deepEqual(
      checks(r.stdout).filter((x) => x.verdict !== "ok"),
      [],
    );
    assert.match(c["GPIO library"]!.detail, /^rpi-lgpio/);
    assert.match(c["nodered.service stop"]!.detail, /^KillMode=mixed, TimeoutStopSec=30 \(\/etc\/systemd\/system\/nodered\.service\.d\/sqi-pulse\.conf\)$/);
    assert.match(c.flows!.detail, /^1 rpi-gpio out initialised low, 1 pulse-out, no pin claimed twice/);
  });

  it("a laptop: the Pi checks are skipped, saying why, and the rest is well: exit 0", async () => {
    const r = await doctor("laptop");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^skip {4}board: not a Raspberry Pi \(no \/proc\/device-tree\/model\)/m);
    assert.match(r.stdout, /^skip {4}nodered\.service: no nodered\.service/m);
    assert.match(r.stdout, /^skip {4}Wi-Fi power saving: no wlan0/m);
    assert.match(r.stdout, /^all well$/m);
  });

  it("a Pi 5 on Bookworm with RPi.GPIO: the fix swaps it for rpi-lgpio", async () => {
    // The same tree with the old package: the check reads dpkg's status, so a copy with it swapped.
    const fs = await import("node:fs");
    const os = await import("node:os");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqi-doctor-"));
    try {
      fs.cpSync(path.join(fixtures, "pi5-bookworm"), dir, { recursive: true });
      const status = path.join(dir, "var", "lib", "dpkg", "status");
      fs.writeFileSync(status, fs.readFileSync(status, "utf8").replace("Package: python3-rpi-lgpio", "Package: python3-rpi.gpio"));
      const child = spawn(process.execPath, [cli, "doctor", "--root", dir, "--user-dir", path.join(dir, "home", "pi", ".node-red")], {
        env: { PATH: path.join(dir, "bin") },
      });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      const code = await new Promise((r) => child.on("close", r));
      assert.equal(code, 1);
      assert.match(
        out,
        /^PROBLEM GPIO library: RPi\.GPIO \(python3-rpi\.gpio\): RPi\.GPIO cannot drive a Pi 5.*\n {4}fix: sudo apt remove python3-rpi\.gpio\n {9}sudo apt install python3-rpi-lgpio$/m,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--master probes a real master: reachable, with the clock offset and round trip; a port where nothing listens is a problem with the fix", async () => {
    const server = new BusServer({ clock: realClock, host: "127.0.0.1", port: await freePort(), path: "/", maxPayload: 1 << 20 });
    await server.listen();
    try {
      const ok = await doctor("laptop", "--master", `ws://127.0.0.1:${server.port}/`, "--probe-s", "2", "--format", "json");
      const probe = checks(ok.stdout).find((c) => c.what.startsWith("master "))!;
      assert.equal(probe.verdict, "ok", JSON.stringify(probe));
      assert.match(probe.detail, /^reachable; clock offset [+-]\d+\.\d\d ± \d+\.\d\d ms, quickest round trip \d+\.\d\d ms \(\d+ samples\)$/);
    } finally {
      await server.close();
    }
    const down = await doctor("laptop", "--master", `ws://127.0.0.1:${await freePort()}/`, "--probe-s", "1");
    assert.equal(down.code, 1);
    assert.match(down.stdout, /^PROBLEM master ws:\/\/127\.0\.0\.1:\d+\/: not reachable in 1 s.*\n {4}fix: check the address and port/m);
  });

  it("usage problems exit 2 and say what to do", async () => {
    for (const [args, said] of [
      [["--probe-s", "0"], /--probe-s needs a whole number of seconds, 1-60, got 0/],
      [["--master", "http://x"], /--master needs a ws:\/\/ or wss:\/\/ URL/],
      [["--format", "xml"], /--format must be text or json/],
      [["extra"], /takes no files, got extra/],
    ] as Array<[string[], RegExp]>) {
      const r = await doctor("laptop", ...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, said);
    }
  });
});
