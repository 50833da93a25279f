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
- gpio_free(handle, gpio) and gpiochip_close(handle) release lines.
- Errors raise lgpio.error with lgpio's own texts ("GPIO busy", "GPIO not allocated", ...).

Every change of a claimed output's level is appended as one JSON line to the file named by
SQI_PIN_LOG, in the same format as the simulated RPi.GPIO (sim/RPi/GPIO.py), so one pin audit
reads both:

    {"t": <wall-clock epoch ms, sub-ms precision>, "pin": <BCM number>, "value": <0 or 1>}

with "event": "out" when a line is claimed and "released" when it is freed. The time is taken
when the write happens: a writer that was not running when it should have been shows at the pin
as a late edge, as it would on a Pi.

The timed-pulse functions (tx_pulse, tx_pwm, tx_wave) are not simulated: the helper does not
use them (it times each pulse in its own thread, see helper/sqi_pulse_out.py).
"""

import errno
import fcntl
import os
import tempfile

from sqi_pin_log import log as _log  # the pin log both simulated libraries write

SIMULATED = True
LGPIO_PY_VERSION = 0x00010700

OFF = LOW = CLEAR = 0
ON = HIGH = SET = 1

SET_ACTIVE_LOW = 4
SET_OPEN_DRAIN = 8
SET_OPEN_SOURCE = 16

TX_PWM = 0
TX_WAVE = 1

OKAY = 0
BAD_HANDLE = -5
CANNOT_OPEN_CHIP = -78
GPIO_BUSY = -79
GPIO_NOT_ALLOCATED = -80
BAD_GPIO_NUMBER = -73
GPIO_NOT_AN_OUTPUT = -104

_TEXTS = {
    OKAY: "No error",
    BAD_HANDLE: "unknown handle",
    CANNOT_OPEN_CHIP: "can not open gpiochip",
    GPIO_BUSY: "GPIO busy",
    GPIO_NOT_ALLOCATED: "GPIO not allocated",
    BAD_GPIO_NUMBER: "GPIO not 0-53",
    GPIO_NOT_AN_OUTPUT: "GPIO not an output",
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


def gpio_claim_output(handle, gpio, level=0, lFlags=0):
    lines = _lines(handle)
    if lines is None:
        return _fail(BAD_HANDLE)
    if not isinstance(gpio, int) or gpio < 0 or gpio >= _LINES:
        return _fail(BAD_GPIO_NUMBER)
    line = lines.get(gpio)
    if line is None:
        fd = os.open(os.path.join(_claims_dir(), "chip0-line%d" % gpio), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return _fail(GPIO_BUSY)
            raise
        line = lines[gpio] = {"level": None, "fd": fd}
    value = 1 if level else 0
    line["level"] = value
    _log(gpio, value, "out")
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
    value = 1 if level else 0
    if line["level"] != value:
        line["level"] = value
        _log(gpio, value)
    return OKAY


def gpio_read(handle, gpio):
    line = _claimed(handle, gpio)
    if isinstance(line, int):
        return _fail(line)
    return line["level"]


def gpio_free(handle, gpio):
    lines = _lines(handle)
    if lines is None:
        return _fail(BAD_HANDLE)
    line = lines.pop(gpio, None)
    if line is None:
        return _fail(GPIO_NOT_ALLOCATED)
    os.close(line["fd"])
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
