#!/usr/bin/env python3
"""pulse-out's helper: drives one GPIO with whole, timed pulses through lgpio.

The pulse-out node starts one of these per pin and writes one line per pulse to its stdin. The
helper times both edges of a pulse itself, in its own thread, on CLOCK_MONOTONIC: the falling
edge does not wait for Node-RED's event loop, a pipe and a line parser, so a busy Node-RED can
delay or drop a pulse but never stretch one.

Usage: sqi_pulse_out.py --pin BCM --max-on-us N --min-off-us N --min-edge-us N --late-us N
                        [--duty-on-us N --duty-window-us N] [--rt 0|1] [--chip N]

Lines in (ASCII, at most 128 bytes each; anything else is refused and reported):
    P <id> <due_us> <width_us>   a pulse: high at due_us (CLOCK_MONOTONIC, microseconds) for width_us
    L                            low now: the pulse on now ends, the pulses waiting are dropped
    Q                            quit: low, release the pin, exit

Lines out:
    ready <pin> <chip> <lgpio|simulated> <rt|nort>
    fired <id> <rise_us> <width_us> <late_us> <clamped 0|1> [cut]   (rise: CLOCK_MONOTONIC, before the write)
    over <id> <width_us> <fall_late_us> <total> <on|duty> <window_on_us>   after its "fired": that
                                 pulse was on longer than --max-on-us (on), or put more than
                                 --duty-on-us in the window ending at its fall (duty; window_on_us
                                 is what the window held), because its fall was written
                                 fall_late_us after it was due (the timing thread was not run in
                                 time); total: how many such reports so far
    dropped <id> <late|full|cut|narrow|duty>
    refused <line number> <reason>
    low <cut 0|1>
    bye <reason>
    fatal <text>

What it guarantees on its own side, whatever it is sent:
- a width is never over --max-on-us minus HELPER_GUARD_US (its own wake-up margin), minus how
  late its recent falls were written (a busy machine that delays this thread gets shorter long
  pulses, not longer ones);
- the pin is on for at most --duty-on-us in any --duty-window-us (judged, as the pulse-shaper
  judges it, on the pulses as they were written, at each rising edge): a pulse is cut to the
  budget left, or dropped when too little is left;
- a rising edge never comes sooner than max(--min-off-us, --min-edge-us) after the last falling
  edge, measured from when that fall was written (so the off-time holds at the pin);
- a pulse that would start more than --late-us after its due time is dropped, never shortened
  or widened to catch up; a pulse narrower than --min-edge-us is dropped, never widened;
- the pin goes low and is released on Q, on EOF of stdin (Node-RED closed the pipe or died),
  on SIGINT, SIGTERM and SIGHUP, and when its parent process is gone (a watchdog on getppid()).
  A SIGKILL of this process itself writes nothing: the kernel frees the line with the process,
  and the GPIO driver decides what the pin does then (bcm2835 makes it an input); the hardware's
  pull-down on the MOSFET gate is the guard for that.
"""

import collections
import os
import signal
import sys
import threading
import time

try:
    import lgpio
except ImportError as e:  # no lgpio: say so in one line the node shows, and go
    sys.stdout.write("fatal lgpio is not installed (%s): on Raspberry Pi OS, sudo apt install python3-lgpio\n" % e)
    sys.stdout.flush()
    sys.exit(3)

MAX_LINE = 128
QUEUE_MAX = 64
# The helper cuts every pulse this much inside the maximum on-time: the time its own thread may
# take to wake for the falling edge (it sleeps until this close, then spins).
HELPER_GUARD_US = 250
SPIN_US = 400
# How fast the memory of a late fall fades, per pulse (a 4 ms late fall weighs 1 ms after ~140 pulses).
FALL_LATE_DECAY = 0.99
WATCHDOG_S = 0.1
# A pulse is sent when it is due; one due further ahead than this is a wrong clock, refused.
MAX_AHEAD_US = 10_000_000


def mono_us():
    return time.monotonic_ns() // 1000


def parse_args(argv):
    want = {"--pin": None, "--max-on-us": None, "--min-off-us": None, "--min-edge-us": None, "--late-us": None, "--chip": "auto", "--rt": "1", "--duty-on-us": "0", "--duty-window-us": "0"}
    i = 0
    while i < len(argv):
        k = argv[i]
        if k not in want or i + 1 >= len(argv):
            raise ValueError("unknown or incomplete argument %r" % k)
        want[k] = argv[i + 1]
        i += 2
    out = {}
    for k, v in want.items():
        if v is None:
            raise ValueError("missing %s" % k)
        if k == "--chip" and v == "auto":
            out["chip"] = None
            continue
        if not v.isdigit() or len(v) > 9:
            raise ValueError("%s must be a whole number, got %r" % (k, v))
        out[k[2:].replace("-", "_")] = int(v)
    if not 0 <= out["pin"] <= 27:
        raise ValueError("--pin must be a BCM GPIO 0-27, got %d" % out["pin"])
    if out["max_on_us"] <= HELPER_GUARD_US:
        raise ValueError("--max-on-us must be over %d" % HELPER_GUARD_US)
    return out


class Out:
    """stdout, never blocking: a report line that does not fit the pipe is counted, not waited for."""

    def __init__(self):
        self.fd = sys.stdout.fileno()
        self.lost = 0
        try:
            os.set_blocking(self.fd, False)
        except OSError:
            pass

    def say(self, line):
        data = (line + "\n").encode("ascii", "replace")
        try:
            os.write(self.fd, data)  # under PIPE_BUF: whole or not at all
        except BlockingIOError:
            self.lost += 1
        except OSError:
            pass  # the reader is gone; the watchdog or EOF ends this process


class Pin:
    def __init__(self, cfg, out):
        self.cfg = cfg
        self.out = out
        self.pin = cfg["pin"]
        self.max_w = cfg["max_on_us"] - HELPER_GUARD_US
        self.gap = max(cfg["min_off_us"], cfg["min_edge_us"])
        self.min_w = cfg["min_edge_us"]
        self.late = cfg["late_us"]
        self.duty_on = cfg["duty_on_us"]  # 0: no duty limit
        self.duty_window = cfg["duty_window_us"]
        self.max_on = cfg["max_on_us"]
        self.overs = 0  # limits passed at the pin (on-time or duty), as written (rise read before, fall after the write)
        self.fall_late = 0.0  # us: how late falls were written after their deadline, a decaying maximum (see cap)
        self.history = collections.deque()  # (rise, fall) of the pulses written, within the duty window
        self.history_on = 0  # us: the sum of their widths, kept as they come and go (an hour's window holds up to 900,000)
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.queue = collections.deque()
        self.high = False
        # Bumped by every L: a pulse taken before it is not started (or is ended) after it.
        self.epoch = 0
        self.stopping = False
        self.last_fall = -(10**15)
        self.handle = None
        self.chip = None

    def open(self):
        chips = [self.cfg["chip"]] if self.cfg["chip"] is not None else [0, 4]
        last = None
        for chip in chips:
            try:
                h = lgpio.gpiochip_open(chip)
            except lgpio.error as e:
                last = e
                continue
            try:
                label = str(lgpio.gpio_get_chip_info(h)[3])
            except lgpio.error:
                label = ""
            # A Pi 5 on an older kernel has its header on gpiochip4 (pinctrl-rp1); later kernels and
            # other Pis have it on gpiochip0.
            if self.cfg["chip"] is None and chip == 0 and "rp1" not in label and os.path.exists("/dev/gpiochip4") and self._is_rp1(4):
                lgpio.gpiochip_close(h)
                continue
            self.handle, self.chip = h, chip
            break
        if self.handle is None:
            raise lgpio.error("can not open a gpiochip (%s)" % last)
        # Claimed low: the pin starts low whatever it was.
        lgpio.gpio_claim_output(self.handle, self.pin, 0)

    @staticmethod
    def _is_rp1(chip):
        try:
            h = lgpio.gpiochip_open(chip)
        except lgpio.error:
            return False
        try:
            return "rp1" in str(lgpio.gpio_get_chip_info(h)[3])
        except lgpio.error:
            return False
        finally:
            lgpio.gpiochip_close(h)

    def write(self, level):
        lgpio.gpio_write(self.handle, self.pin, level)

    # --- called from the reader (main thread) ---

    def add(self, pid, due, width):
        with self.lock:
            if self.stopping:
                return
            if len(self.queue) >= QUEUE_MAX:
                self.out.say("dropped %d full" % pid)
                return
            self.queue.append((pid, due, width))
            self.cond.notify()

    def low(self):
        with self.lock:
            dropped = [p[0] for p in self.queue]
            self.queue.clear()
            was_high = self.high
            if self.high:
                self.write(0)
                self.high = False
                self.last_fall = mono_us()
            self.epoch += 1
            self.cond.notify()
        for pid in dropped:
            self.out.say("dropped %d cut" % pid)
        self.out.say("low %d" % (1 if was_high else 0))

    def shutdown(self, reason):
        """Low, released, gone. From any thread or a signal handler; only the first call acts."""
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            self.queue.clear()
            try:
                if self.handle is not None:
                    self.write(0)
                    self.high = False
                    lgpio.gpio_free(self.handle, self.pin)
                    lgpio.gpiochip_close(self.handle)
            except Exception:
                pass
            self.out.say("bye %s" % reason)
        os._exit(0)

    # --- the timing thread ---

    def duty_budget(self, now):
        """On-time left for a pulse rising now: the budget less what the window ending now holds,
        less the helper's own margin for a late fall."""
        start = now - self.duty_window
        while self.history and self.history[0][1] <= start:
            r, f = self.history.popleft()
            self.history_on -= f - r
        # Every pulse kept ended after `start` and before now; only the first may have begun before it.
        used = self.history_on - (max(0, start - self.history[0][0]) if self.history else 0)
        return self.duty_on - used - HELPER_GUARD_US

    def wait_until(self, t, epoch):
        """Sleeps until monotonic t (us), the last SPIN_US spinning. False if cut (L) or stopping
        meanwhile. (A longer spin does not help on a busy machine: a thread that spins uses up its
        share and is preempted; measured, 3 ms of spin made late falls 7 times as common.)"""
        while True:
            with self.lock:
                if self.stopping or self.epoch != epoch:
                    return False
                left = t - mono_us()
                if left <= SPIN_US:
                    break
                self.cond.wait((left - SPIN_US) / 1e6)
        while mono_us() < t:
            if self.stopping or self.epoch != epoch:
                return False
        return True

    def cap(self):
        """The widest pulse now: the maximum on-time less the helper's guard, less how late its
        falls have come recently (a decaying maximum): on a machine that delays this thread, long
        pulses are cut shorter so that they still end inside the maximum at the pin."""
        return self.max_w - int(self.fall_late)

    def run(self):
        try:
            self._run()
        except Exception as e:  # never leave the pin high on a bug
            self.out.say("fatal timing thread: %s" % e)
            self.shutdown("error")

    def _run(self):
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                pid, due, width = self.queue.popleft()
                epoch = self.epoch
                start = max(due, self.last_fall + self.gap)
            if width < self.min_w:
                # Its two edges would be closer than the maximum edge rate allows: not widened, dropped.
                self.out.say("dropped %d narrow" % pid)
                continue
            if start - due > self.late:
                self.out.say("dropped %d late" % pid)
                continue
            if not self.wait_until(start, epoch):
                self.out.say("dropped %d cut" % pid)
                continue
            cap = self.cap()
            clamped = 1 if width > cap else 0
            w = min(width, cap)
            if w < self.min_w:
                # Falls have come so late lately that no pulse fits inside the maximum: none, until that fades.
                self.out.say("dropped %d narrow" % pid)
                continue
            with self.lock:
                if self.stopping or self.epoch != epoch:
                    self.out.say("dropped %d cut" % pid)
                    continue
                rise = mono_us()
                late = rise - due
                if late > self.late:
                    self.out.say("dropped %d late" % pid)
                    continue
                if self.duty_on:
                    budget = self.duty_budget(rise) - int(self.fall_late)
                    if budget < self.min_w:
                        self.out.say("dropped %d duty" % pid)
                        continue
                    if w > budget:
                        w, clamped = budget, 1
                self.write(1)
                self.high = True
                risen = mono_us()
            # The fall is due w after the clock was read before the rise (so the pulse is never
            # longer than w from its real rise), but never sooner than 1 / edge rate after the
            # write returned (a write the scheduler held up must not leave a pulse too narrow).
            deadline = max(rise + w, risen + self.min_w)
            ended = self.wait_until(deadline, epoch)
            with self.lock:
                if self.high:  # else low() or shutdown() wrote the fall already
                    self.write(0)
                    self.high = False
                    self.last_fall = mono_us()
                fall = self.last_fall
                if ended:
                    self.fall_late = max(fall - deadline, self.fall_late * FALL_LATE_DECAY)
                used = 0
                if self.duty_on:
                    self.history.append((rise, fall))
                    self.history_on += fall - rise
                    # On-time in the window that ends at this fall, where the window's on-time peaks.
                    used = self.duty_on - HELPER_GUARD_US - self.duty_budget(fall)
            if ended:
                self.out.say("fired %d %d %d %d %d" % (pid, rise, fall - rise, late, clamped))
            else:
                self.out.say("fired %d %d %d %d %d cut" % (pid, rise, fall - rise, late, clamped))
            # Only a fall written late can pass a limit (every width is cut inside both): said, with
            # how late, so that nothing over a limit at the pin goes unreported.
            for kind, over in (("on", fall - rise > self.max_on), ("duty", self.duty_on and used > self.duty_on)):
                if over:
                    self.overs += 1
                    self.out.say("over %d %d %d %d %s %d" % (pid, fall - rise, max(0, fall - deadline), self.overs, kind, used))


def parse_line(raw):
    """One stdin line -> ("P", id, due, width) | ("L",) | ("Q",); raises ValueError with the reason."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not ASCII")
    parts = text.split()
    if not parts:
        raise ValueError("empty")
    if parts[0] in ("L", "Q") and len(parts) == 1:
        return (parts[0],)
    if parts[0] == "P" and len(parts) == 4:
        nums = []
        for p in parts[1:]:
            if not p.isdigit() or len(p) > 18:
                raise ValueError("not a whole number: %r" % p[:20])
            nums.append(int(p))
        pid, due, width = nums
        if width == 0:
            raise ValueError("width 0")
        if due > mono_us() + MAX_AHEAD_US:
            raise ValueError("due more than %d s ahead" % (MAX_AHEAD_US // 1000000))
        return ("P", pid, due, width)
    if parts[0] in ("P", "L", "Q"):
        raise ValueError("%s takes %s" % (parts[0], "3 numbers: id, due_us, width_us" if parts[0] == "P" else "nothing"))
    raise ValueError("unknown command %r" % parts[0][:20])


def main():
    out = Out()
    try:
        cfg = parse_args(sys.argv[1:])
    except ValueError as e:
        out.say("fatal %s" % e)
        return 2
    sys.setswitchinterval(0.0002)  # the timing thread gets the interpreter back fast
    pin = Pin(cfg, out)

    def on_signal(signum, _frame):
        pin.shutdown(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    try:
        pin.open()
    except lgpio.error as e:
        out.say("fatal GPIO %d: %s" % (cfg["pin"], e.value if hasattr(e, "value") else e))
        return 4

    # Real-time priority where allowed (root, or CAP_SYS_NICE, or an rtprio limit): the falling
    # edge then wins the CPU over every ordinary process. Asked for this thread before any other
    # starts, so that every thread of the helper inherits it: the timing thread needs the
    # interpreter lock and the pin's lock, which the reader and the watchdog hold now and then,
    # and a holder at normal priority that the kernel does not run would hold the fall up with it.
    rt = "nort"
    if cfg["rt"]:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
            rt = "rt"
        except (OSError, AttributeError):
            pass
    timing = threading.Thread(target=pin.run, name="sqi-pulse-timing", daemon=True)
    timing.start()

    parent = os.getppid()

    def watchdog():
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != parent:
                pin.shutdown("parent-gone")

    threading.Thread(target=watchdog, name="sqi-pulse-watchdog", daemon=True).start()

    simulated = "simulated" if getattr(lgpio, "SIMULATED", False) else "lgpio"
    out.say("ready %d %d %s %s" % (cfg["pin"], pin.chip, simulated, rt))

    stdin = sys.stdin.buffer
    n = 0
    while True:
        raw = stdin.readline(MAX_LINE + 1)
        if not raw:
            break
        n += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            # Too long: the rest of it is skipped, in bounded reads.
            while raw and not raw.endswith(b"\n"):
                raw = stdin.readline(MAX_LINE + 1)
            out.say("refused %d longer than %d bytes" % (n, MAX_LINE))
            continue
        try:
            cmd = parse_line(raw)
        except ValueError as e:
            out.say("refused %d %s" % (n, e))
            continue
        if cmd[0] == "P":
            pin.add(cmd[1], cmd[2], cmd[3])
        elif cmd[0] == "L":
            pin.low()
        else:
            pin.shutdown("quit")
    pin.shutdown("eof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
