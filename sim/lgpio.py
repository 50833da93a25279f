"""Simulated lgpio for machines that are not a Raspberry Pi.

A stand-in for the part of the lgpio Python module (joan2937/lg, "python3-lgpio" on Raspberry
Pi OS Bookworm and later) that this package's pulse-out helper uses, following its documented
API and semantics:

- gpiochip_open(chip) returns a handle; gpio_get_chip_info(handle) returns
  [status, lines, name, label].
- gpio_claim_output(handle, gpio, level=0, lFlags=0) claims a line for output at an initial
  level. A line is held by one process at a time, as the kernel's GPIO character device does:
  a claim of a line that another process holds raises lgpio.error("GPIO busy"). The claim is
  an flock on a file per line, so it ends when the holder frees it or dies, as a real claim
  does when its file descriptor closes.
- gpio_write(handle, gpio, level) sets the level (0 low, anything else high); gpio_read reads
  back the last level written to an output.
- gpio_claim_input(handle, gpio, lFlags=0) claims a line as an input (or turns this process's
  output into one); gpio_get_mode(handle, gpio) gives lgpio's mode bits (0x200 output, 0x100
  input, kernel bit 0x2 for an output) for a line this process holds, 0 otherwise.
- gpio_read of a line this process has not claimed reads it as an input (0: the gate's
  pull-down), or raises "GPIO busy" when another process holds it: what rpi-lgpio's setup()
  meets when it reads a pin's level before claiming it.
- tx_pwm(handle, gpio, frequency, duty) starts lgpio's software PWM on a claimed output (the duty,
  0-100, is what the pin log records, with "event": "pwm" on the first call, as the simulated
  RPi.GPIO's PWM does); 0 frequency or duty stops it.
- gpio_free(handle, gpio) and gpiochip_close(handle) release lines.
- The kernel frees a process's lines when it exits, however it exits (SIGKILL too): its file
  descriptors close. So here a small stand-in for the kernel (a process that ignores signals)
  holds a pipe from the first claim on, and when the pipe closes it logs "released" for every
  line still claimed. On the Pi's own pinctrl driver (bcm2835) a freed line becomes an input,
  which the MOSFET gate's pull-down holds low.
- Errors raise lgpio.error with lgpio's own texts ("GPIO busy", "GPIO not allocated", ...).

Every change of a claimed output's level is appended as one JSON line to the file named by
SQI_PIN_LOG, in the same format as the simulated RPi.GPIO (sim/RPi/GPIO.py), so one pin audit
reads both:

    {"t": <wall-clock epoch ms, sub-ms precision>, "pin": <BCM number>, "value": <0 or 1>}

with "event": "out" when a line is claimed and "released" when it is freed. The time is taken
when the write happens: a writer that was not running when it should have been shows at the pin
as a late edge, as it would on a Pi.

tx_pulse and tx_wave are not simulated: nothing here uses them (the pulse-out helper times each
pulse in its own thread, see helper/sqi_pulse_out.py).
"""

import errno
import fcntl
import os
import subprocess
import sys
import tempfile

from sqi_pin_log import log as _log  # the pin log both simulated libraries write

SIMULATED = True
LGPIO_PY_VERSION = 0x00010700

OFF = LOW = CLEAR = 0
ON = HIGH = SET = 1

SET_ACTIVE_LOW = 4
SET_OPEN_DRAIN = 8
SET_OPEN_SOURCE = 16
SET_PULL_UP = 32
SET_PULL_DOWN = 64
SET_PULL_NONE = 128

TX_PWM = 0
TX_WAVE = 1

OKAY = 0
BAD_HANDLE = -5
CANNOT_OPEN_CHIP = -78
GPIO_BUSY = -79
GPIO_NOT_ALLOCATED = -80
BAD_GPIO_NUMBER = -73
GPIO_NOT_AN_OUTPUT = -104
BAD_PWM_DUTY = -103

_TEXTS = {
    OKAY: "No error",
    BAD_HANDLE: "unknown handle",
    CANNOT_OPEN_CHIP: "can not open gpiochip",
    GPIO_BUSY: "GPIO busy",
    GPIO_NOT_ALLOCATED: "GPIO not allocated",
    BAD_GPIO_NUMBER: "GPIO not 0-53",
    GPIO_NOT_AN_OUTPUT: "GPIO not set as an output",
    BAD_PWM_DUTY: "bad PWM dutycycle",
}

# The simulated board: one chip, 54 lines, as gpiochip0 of a Pi 4 (a Pi 5's RP1 has 54 too).
_LINES = 54

exceptions = True


class error(Exception):
    """lgpio module exception (its value is lgpio's error text)."""

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return repr(self.value)


def error_text(errnum):
    return _TEXTS.get(errnum, "unknown error")


def _fail(code):
    if exceptions:
        raise error(error_text(code))
    return code


_chips = {}  # handle -> {"chip": n, "lines": {gpio: {"level": 0|1, "fd": claim fd}}}
_next_handle = 0


def _claims_dir():
    log = os.environ.get("SQI_PIN_LOG")
    base = os.path.dirname(os.path.abspath(log)) if log else tempfile.gettempdir()
    name = ".lgpio-claims-" + (os.path.basename(log) if log else "uid%d" % os.getuid())
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    return d


def _lines(handle):
    c = _chips.get(handle)
    if c is None:
        return None
    return c["lines"]


def gpiochip_open(gpiochip):
    global _next_handle
    if gpiochip != 0:
        return _fail(CANNOT_OPEN_CHIP)
    h = _next_handle
    _next_handle += 1
    _chips[h] = {"chip": gpiochip, "lines": {}}
    return h


def gpio_get_chip_info(handle):
    if handle not in _chips:
        return [_fail(BAD_HANDLE), 0, "", ""]
    return [OKAY, _LINES, "gpiochip0", "pinctrl-simulated"]


# The stand-in for the kernel: it logs "released" for the lines still claimed when this process's
# end of its pipe closes (the process exited, by any means). It ignores the signals a stop sends.
_KERNEL = r"""
import signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
sys.path.insert(0, sys.argv[1])
from sqi_pin_log import log
held = set()
for line in sys.stdin:
    op, _, gpio = line.partition(" ")
    (held.add if op == "claim" else held.discard)(int(gpio))
for gpio in sorted(held):
    log(gpio, None, "released")
"""
_kernel = None


def _tell_kernel(op, gpio):
    global _kernel
    if _kernel is None:
        # "sqi-sim-kernel" in its arguments: tests that kill a process tree leave it be, as no signal reaches a kernel.
        _kernel = subprocess.Popen(
            [sys.executable, "-c", _KERNEL, os.path.dirname(os.path.abspath(__file__)), "sqi-sim-kernel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _kernel.stdin.write(("%s %d\n" % (op, gpio)).encode())
        _kernel.stdin.flush()
    except OSError:
        pass


def _check_gpio(gpio):
    return isinstance(gpio, int) and 0 <= gpio < _LINES


def _claim(handle, gpio):
    """This process's claim of a line: the line, or an error code ("GPIO busy" when another holds it)."""
    lines = _lines(handle)
    if lines is None:
        return BAD_HANDLE
    if not _check_gpio(gpio):
        return BAD_GPIO_NUMBER
    line = lines.get(gpio)
    if line is None:
        fd = os.open(os.path.join(_claims_dir(), "chip0-line%d" % gpio), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return GPIO_BUSY
            raise
        line = lines[gpio] = {"level": None, "fd": fd, "mode": None, "pwm": 0.0}
        _tell_kernel("claim", gpio)
    return line


def gpio_claim_output(handle, gpio, level=0, lFlags=0):
    line = _claim(handle, gpio)
    if isinstance(line, int):
        return _fail(line)
    value = 1 if level else 0
    line["level"] = value
    line["mode"] = "out"
    _log(gpio, value, "out")
    return OKAY


def gpio_claim_input(handle, gpio, lFlags=0):
    line = _claim(handle, gpio)
    if isinstance(line, int):
        return _fail(line)
    line["mode"] = "in"
    line["level"] = None
    line["pwm"] = 0.0
    return OKAY


def gpio_get_mode(handle, gpio):
    lines = _lines(handle)
    if lines is None:
        return _fail(BAD_HANDLE)
    if not _check_gpio(gpio):
        return _fail(BAD_GPIO_NUMBER)
    line = lines.get(gpio)
    if line is None:
        return 0
    return 0x202 if line["mode"] == "out" else 0x100


def tx_pwm(handle, gpio, pwmFrequency, pwmDutyCycle, pulseOffset=0, pulseCycles=0):
    line = _claimed(handle, gpio)
    if isinstance(line, int):
        return _fail(line)
    if line["mode"] != "out":
        return _fail(GPIO_NOT_AN_OUTPUT)
    duty = float(pwmDutyCycle) if pwmFrequency else 0.0
    if not 0 <= duty <= 100:
        return _fail(BAD_PWM_DUTY)
    # The first call sets the pin up for PWM (logged as such, as the simulated RPi.GPIO's PWM does).
    first = not line.get("pwm_set")
    if first or duty != line["pwm"]:
        line["pwm_set"] = True
        line["pwm"] = duty
        _log(gpio, duty, "pwm" if first else None)
    return OKAY


def _claimed(handle, gpio):
    """The claimed line, or the error code for its handle or the line."""
    lines = _lines(handle)
    if lines is None:
        return BAD_HANDLE
    line = lines.get(gpio)
    return GPIO_NOT_ALLOCATED if line is None else line


def gpio_write(handle, gpio, level):
    line = _claimed(handle, gpio)
    if isinstance(line, int):
        return _fail(line)
    if line["mode"] != "out":
        return _fail(GPIO_NOT_AN_OUTPUT)
    value = 1 if level else 0
    if line["level"] != value or line["pwm"]:
        line["level"] = value
        line["pwm"] = 0.0
        _log(gpio, value)
    return OKAY


def gpio_read(handle, gpio):
    line = _claimed(handle, gpio)
    if line == GPIO_NOT_ALLOCATED:
        # Not this process's: read as an input (low, by the gate's pull-down), unless another holds it.
        fd = os.open(os.path.join(_claims_dir(), "chip0-line%d" % gpio), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _fail(GPIO_BUSY)
        finally:
            os.close(fd)
        return 0
    if isinstance(line, int):
        return _fail(line)
    return line["level"] or 0


def gpio_free(handle, gpio):
    lines = _lines(handle)
    if lines is None:
        return _fail(BAD_HANDLE)
    line = lines.pop(gpio, None)
    if line is None:
        return _fail(GPIO_NOT_ALLOCATED)
    os.close(line["fd"])
    _tell_kernel("free", gpio)
    # On a Pi the line becomes an input: the MOSFET gate's pull-down holds it low.
    _log(gpio, None, "released")
    return OKAY


def gpiochip_close(handle):
    lines = _lines(handle)
    if lines is None:
        return _fail(BAD_HANDLE)
    for gpio in list(lines):
        gpio_free(handle, gpio)
    del _chips[handle]
    return OKAY
