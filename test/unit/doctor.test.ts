// lib/doctor.ts's readings, each as the file or command gives it: os-release values, dpkg's
// installed packages, a unit's setting with its drop-ins in order, systemd time spans, and
// vcgencmd's throttled bits; and a Pi 5 whose drop-in is undone by a later one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diagnose, installedPackages, osReleaseValue, serviceSetting, throttledWords, timeSpanS } from "../../lib/doctor";

describe("the doctor's readings", () => {
  it("os-release, dpkg status (only what is installed), and a unit's setting where the last drop-in wins", () => {
    assert.equal(osReleaseValue('NAME="Debian GNU/Linux"\nVERSION_CODENAME=trixie\n', "VERSION_CODENAME"), "trixie");
    assert.equal(osReleaseValue('NAME="Debian GNU/Linux"\n', "NAME"), "Debian GNU/Linux");
    const pkgs = installedPackages(
      "Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\nPackage: c\nVersion: 1\nStatus: install ok installed\n",
    );
    assert.deepEqual([...pkgs], ["a", "c"]);
    const unit = "[Service]\nKillSignal=SIGINT\n# KillMode=mixed\n[Install]\nKillMode=process\n";
    assert.equal(serviceSetting([unit], "KillMode"), undefined, "a comment and another section say nothing");
    assert.equal(serviceSetting([unit, "[Service]\nKillMode=mixed\n", "[Service]\nKillMode = control-group\n"], "KillMode"), "control-group");
  });

  it("systemd time spans and vcgencmd's throttled bits", () => {
    assert.equal(timeSpanS("30"), 30);
    assert.equal(timeSpanS("1min 30s"), 90);
    assert.equal(timeSpanS("500ms"), 0.5);
    assert.equal(timeSpanS("infinity"), Infinity);
    assert.equal(timeSpanS("soon"), undefined);
    assert.deepEqual(throttledWords("throttled=0x0"), { now: [], since: [] });
    assert.deepEqual(throttledWords("throttled=0x50005"), { now: ["under-voltage", "throttled"], since: ["under-voltage", "throttled"] });
    assert.equal(throttledWords("error"), undefined);
  });

  it("a drop-in undone by a later one, or a stop timeout shorter than Node-RED's close wait, is a problem with the drop-in as its fix", () => {
    const unit = { path: "/lib/systemd/system/nodered.service", text: "[Service]\nKillSignal=SIGINT\n" };
    const ours = { path: "/etc/systemd/system/nodered.service.d/sqi-pulse.conf", text: "[Service]\nKillMode=mixed\nTimeoutStopSec=30\n" };
    const stop = (dropIns: Array<{ path: string; text: string }>) => diagnose({ unit, dropIns }).find((c) => c.what === "nodered.service stop")!;
    assert.equal(stop([ours]).verdict, "ok");
    const undone = stop([ours, { path: "/etc/systemd/system/nodered.service.d/zz.conf", text: "[Service]\nKillMode=control-group\n" }]);
    assert.equal(undone.verdict, "problem");
    assert.match(undone.fix!, /sqi-pulse\.conf/);
    assert.match(
      stop([ours, { path: "/etc/systemd/system/nodered.service.d/zz.conf", text: "[Service]\nTimeoutStopSec=5s\n" }]).detail,
      /^TimeoutStopSec=5s: shorter than/,
    );
  });
});
