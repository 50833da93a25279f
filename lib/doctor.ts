// `sqi-dc doctor`'s judgement, pure: what each reading of a Pi (files and command outputs,
// gathered by bin/doctor.ts) means, and for each problem the fix as a user types it. Every
// reading may be missing (a laptop, a minimal image): a check then says it was skipped and why.

import { limitsFromFlow } from "./pulse/audit";
import { sharedPins, uninitialisedPin } from "./pulse/pins";

export type Verdict = "ok" | "problem" | "skip";

export interface Check {
  /** What was checked, in a few words. */
  what: string;
  verdict: Verdict;
  /** What was found. */
  detail: string;
  /** For a problem: what to do, commands as a user types them. */
  fix?: string;
}

/** What bin/doctor.ts read off the system; undefined where there was nothing to read. */
export interface Readings {
  /** /proc/device-tree/model */
  model?: string;
  /** /etc/os-release */
  osRelease?: string;
  /** /var/lib/dpkg/status */
  dpkgStatus?: string;
  /** nodered.service as systemd sees it: the unit file, then its drop-ins in order (name and text). */
  unit?: { path: string; text: string };
  dropIns?: Array<{ path: string; text: string }>;
  /** The deployed flows (flows.json in the Node-RED user dir), as text. */
  flows?: { path: string; text: string };
  /** `timedatectl show -p NTPSynchronized --value`, or `chronyc tracking` when there is no timedatectl. */
  timedatectl?: string;
  chrony?: string;
  /** `iw dev wlan0 get power_save` (undefined: no wlan0 or no iw). */
  powerSave?: string;
  /** `vcgencmd get_throttled` */
  throttled?: string;
}

/** A key of an os-release file ("VERSION_CODENAME"), unquoted. */
export function osReleaseValue(text: string, key: string): string | undefined {
  const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
  return m ? m[1]!.trim().replace(/^"(.*)"$/, "$1") : undefined;
}

/** The packages dpkg has installed ("install ok installed"), by name. */
export function installedPackages(status: string): Set<string> {
  const out = new Set<string>();
  for (const stanza of status.split(/\n\s*\n/)) {
    const name = /^Package: *(.+)$/m.exec(stanza)?.[1]?.trim();
    if (name && /^Status: *install ok installed$/m.test(stanza)) out.add(name);
  }
  return out;
}

/** The last value of `key` in the [Service] sections of a unit and its drop-ins, in order (systemd's own rule). */
export function serviceSetting(texts: string[], key: string): string | undefined {
  let value: string | undefined;
  for (const text of texts) {
    let section = "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("#") || line.startsWith(";") || !line) continue;
      const sec = /^\[(.+)\]$/.exec(line);
      if (sec) section = sec[1]!;
      else if (section === "Service") {
        const m = new RegExp(`^${key}\\s*=\\s*(.*)$`).exec(line);
        if (m) value = m[1]!.trim();
      }
    }
  }
  return value;
}

/** systemd's time span ("30", "30s", "1min 30s", "infinity") in seconds; undefined when unreadable. */
export function timeSpanS(v: string): number | undefined {
  if (v === "infinity") return Infinity;
  const units: Record<string, number> = {
    "": 1,
    s: 1,
    sec: 1,
    second: 1,
    seconds: 1,
    m: 60,
    min: 60,
    minute: 60,
    minutes: 60,
    ms: 0.001,
    h: 3600,
    hr: 3600,
    hour: 3600,
    hours: 3600,
  };
  let total = 0;
  const parts = v.trim().split(/\s+/);
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(p);
    if (!m || units[m[2]!] === undefined) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
  }
  return total;
}

/** `vcgencmd get_throttled` in words: what is happening now and what has happened since boot. */
export function throttledWords(out: string): { now: string[]; since: string[] } | undefined {
  const m = /throttled=0x([0-9a-f]+)/i.exec(out);
  if (!m) return undefined;
  const bits = parseInt(m[1]!, 16);
  const names = ["under-voltage", "arm frequency capped", "throttled", "soft temperature limit"];
  return {
    now: names.filter((_, i) => bits & (1 << i)),
    since: names.filter((_, i) => bits & (1 << (16 + i))),
  };
}

const DROP_IN = `sudo mkdir -p /etc/systemd/system/nodered.service.d
sudo cp ~/.node-red/node_modules/@sqi/node-red-pulse/systemd/nodered.service.d/sqi-pulse.conf /etc/systemd/system/nodered.service.d/
sudo systemctl daemon-reload`;

/** The longest stop this package needs: Node-RED's own wait for its nodes to close (15 s) and a margin. */
export const MIN_STOP_TIMEOUT_S = 20;

/** Every check, in the order a user reads them. */
export function diagnose(r: Readings): Check[] {
  const checks: Check[] = [];
  const add = (c: Check): void => void checks.push(c);
  const model = r.model?.replace(/\0/g, "").trim();
  const pi5 = model !== undefined && /Raspberry Pi 5/.test(model);
  const onPi = model !== undefined && /Raspberry Pi/.test(model);
  const codename = r.osRelease ? osReleaseValue(r.osRelease, "VERSION_CODENAME") : undefined;

  add(
    onPi
      ? { what: "board", verdict: "ok", detail: `${model}${codename ? `, ${codename}` : ""}` }
      : { what: "board", verdict: "skip", detail: `not a Raspberry Pi (${model ? model : "no /proc/device-tree/model"}): the GPIO checks are skipped` },
  );

  // The GPIO library rpi-gpio out's helper imports, and lgpio for pulse-out.
  if (!onPi) add({ what: "GPIO library", verdict: "skip", detail: "not a Raspberry Pi" });
  else if (r.dpkgStatus === undefined) add({ what: "GPIO library", verdict: "skip", detail: "no dpkg status to read the Python packages from" });
  else {
    const pkgs = installedPackages(r.dpkgStatus);
    const rpiGpio = pkgs.has("python3-rpi.gpio");
    const rpiLgpio = pkgs.has("python3-rpi-lgpio");
    if (pi5 && !rpiLgpio)
      add({
        what: "GPIO library",
        verdict: "problem",
        detail: `${rpiGpio ? "RPi.GPIO (python3-rpi.gpio)" : "no RPi.GPIO at all"}: RPi.GPIO cannot drive a Pi 5, so rpi-gpio out does nothing here`,
        fix: `${rpiGpio ? "sudo apt remove python3-rpi.gpio\n" : ""}sudo apt install python3-rpi-lgpio`,
      });
    else if (!rpiGpio && !rpiLgpio)
      add({
        what: "GPIO library",
        verdict: "problem",
        detail: "neither RPi.GPIO nor rpi-lgpio is installed: rpi-gpio out cannot run",
        fix: "sudo apt install python3-rpi-lgpio",
      });
    else
      add({
        what: "GPIO library",
        verdict: "ok",
        detail: rpiLgpio
          ? "rpi-lgpio (RPi.GPIO on lgpio): one process per pin, pins freed when a helper dies"
          : "RPi.GPIO: it drives this board; two nodes on one pin are not refused, so the flows check below matters",
      });
    if (!pkgs.has("python3-lgpio"))
      add({
        what: "lgpio for pulse-out",
        verdict: "problem",
        detail: "python3-lgpio is not installed: pulse-out's helper cannot start",
        fix: "sudo apt install python3-lgpio",
      });
    else add({ what: "lgpio for pulse-out", verdict: "ok", detail: "python3-lgpio is installed" });
  }

  // How systemd stops Node-RED.
  if (!r.unit)
    add({ what: "nodered.service", verdict: "skip", detail: "no nodered.service: Node-RED is not run by systemd here (stop it gracefully: Ctrl-C once)" });
  else {
    const texts = [r.unit.text, ...(r.dropIns ?? []).map((d) => d.text)];
    const killMode = serviceSetting(texts, "KillMode") ?? "control-group";
    const timeout = serviceSetting(texts, "TimeoutStopSec");
    const timeoutS = timeout === undefined ? 90 : timeSpanS(timeout);
    if (killMode !== "mixed")
      add({
        what: "nodered.service stop",
        verdict: "problem",
        detail: `KillMode=${killMode}: a stop sends SIGINT to every GPIO helper at once, before Node-RED can take a pin low (rpi-gpio out in PWM mode is left at its duty)`,
        fix: DROP_IN,
      });
    else if (timeoutS === undefined || timeoutS < MIN_STOP_TIMEOUT_S)
      add({
        what: "nodered.service stop",
        verdict: "problem",
        detail: `TimeoutStopSec=${timeout}: shorter than Node-RED's own wait for its nodes to close (15 s); what is left is killed`,
        fix: DROP_IN,
      });
    else
      add({
        what: "nodered.service stop",
        verdict: "ok",
        detail: `KillMode=mixed, TimeoutStopSec=${timeout ?? "90s (the default)"}${(r.dropIns ?? []).length ? ` (${(r.dropIns ?? []).map((d) => d.path).join(", ")})` : ""}`,
      });
  }

  // The deployed flows.
  if (!r.flows) add({ what: "flows", verdict: "skip", detail: "no flows.json in the Node-RED user dir (give it with --user-dir)" });
  else {
    let flow: unknown;
    try {
      flow = JSON.parse(r.flows.text);
    } catch (e) {
      add({ what: "flows", verdict: "problem", detail: `${r.flows.path} is not JSON: ${(e as Error).message}`, fix: "re-deploy from the editor" });
    }
    if (flow !== undefined) {
      const nodes = Array.isArray(flow) ? (flow as unknown[]).filter((n): n is Record<string, unknown> => typeof n === "object" && n !== null) : [];
      const low = nodes.map((n) => uninitialisedPin(n)).filter((x): x is string => x !== undefined);
      const shared = sharedPins(flow);
      const limits = limitsFromFlow(flow).problems;
      const found = [...low, ...shared.map((s) => s.text), ...limits.map((p) => `pulse-shaper ${p}`)];
      add(
        found.length
          ? { what: "flows", verdict: "problem", detail: found.join("\n"), fix: "open each node named above in the editor, fix it as said, and deploy" }
          : {
              what: "flows",
              verdict: "ok",
              detail: `${nodes.filter((n) => n.type === "rpi-gpio out").length} rpi-gpio out initialised low, ${nodes.filter((n) => n.type === "pulse-out").length} pulse-out, no pin claimed twice, every pulse-shaper's limits valid`,
            },
      );
    }
  }

  // The system clock: the master's own clock should keep true time (the Pis follow the master's).
  if (r.timedatectl !== undefined) {
    const synced = r.timedatectl.trim() === "yes";
    add(
      synced
        ? { what: "system clock", verdict: "ok", detail: "synchronised (timedatectl: NTPSynchronized=yes)" }
        : {
            what: "system clock",
            verdict: "problem",
            detail: "not synchronised (timedatectl: NTPSynchronized=no): the pin logs' and the reports' times are off",
            fix: "sudo timedatectl set-ntp true\ntimedatectl timesync-status",
          },
    );
  } else if (r.chrony !== undefined) {
    const leap = /Leap status\s*:\s*(.+)/.exec(r.chrony)?.[1]?.trim();
    add(
      leap === "Normal"
        ? { what: "system clock", verdict: "ok", detail: "synchronised (chrony: Leap status Normal)" }
        : { what: "system clock", verdict: "problem", detail: `chrony is not synchronised (Leap status: ${leap ?? "unknown"})`, fix: "chronyc sources -v" },
    );
  } else add({ what: "system clock", verdict: "skip", detail: "neither timedatectl nor chronyc answered" });

  // Wi-Fi power saving.
  if (r.powerSave === undefined) add({ what: "Wi-Fi power saving", verdict: "skip", detail: "no wlan0 (or no iw): a wired Pi" });
  else if (/Power save:\s*on/i.test(r.powerSave))
    add({
      what: "Wi-Fi power saving",
      verdict: "problem",
      detail: "on: the link stalls for up to a few hundred ms now and then, and events come late (give dc-container a 300-400 ms lead on Wi-Fi)",
      // Bookworm and later run NetworkManager; Bullseye dhcpcd, where iw's setting lasts until a reboot.
      fix:
        codename === undefined || ["buster", "bullseye"].includes(codename)
          ? "sudo iw dev wlan0 set power_save off\n(to keep it: the same line after @reboot in root's crontab, sudo crontab -e)"
          : 'sudo nmcli connection modify "<your Wi-Fi>" 802-11-wireless.powersave 2\nsudo nmcli connection up "<your Wi-Fi>"',
    });
  else add({ what: "Wi-Fi power saving", verdict: "ok", detail: r.powerSave.trim() });

  // Power supply and temperature.
  if (r.throttled === undefined) add({ what: "power and temperature", verdict: "skip", detail: "no vcgencmd here" });
  else {
    const t = throttledWords(r.throttled);
    if (!t) add({ what: "power and temperature", verdict: "skip", detail: `vcgencmd said ${JSON.stringify(r.throttled.trim().slice(0, 60))}` });
    else if (t.now.length || t.since.length)
      add({
        what: "power and temperature",
        verdict: "problem",
        detail: `${t.now.length ? `now: ${t.now.join(", ")}` : ""}${t.now.length && t.since.length ? "; " : ""}${t.since.length ? `since boot: ${t.since.join(", ")}` : ""} (vcgencmd get_throttled: ${r.throttled.trim()})`,
        fix: "use the board's own supply (5 V 3 A for a Pi 4, 5 V 5 A for a Pi 5) and keep the coil on its own supply; cool the Pi",
      });
    else add({ what: "power and temperature", verdict: "ok", detail: "no under-voltage or throttling since boot" });
  }
  return checks;
}

/** The report as a person reads it: one line per check, a problem's fix indented below it. */
export function formatChecks(checks: Check[]): string {
  const mark: Record<Verdict, string> = { ok: "ok     ", problem: "PROBLEM", skip: "skip   " };
  const lines: string[] = [];
  for (const c of checks) {
    const [first, ...rest] = c.detail.split("\n");
    lines.push(`${mark[c.verdict]} ${c.what}: ${first}`);
    for (const r of rest) lines.push(`          ${r}`);
    if (c.fix) for (const [i, f] of c.fix.split("\n").entries()) lines.push(`${i === 0 ? "    fix: " : "         "}${f}`);
  }
  const problems = checks.filter((c) => c.verdict === "problem").length;
  lines.push(problems ? `${problems} problem${problems === 1 ? "" : "s"}` : "all well");
  return `${lines.join("\n")}\n`;
}
