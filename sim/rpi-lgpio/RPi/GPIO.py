"""Simulated rpi-lgpio: the RPi.GPIO that Raspberry Pi OS Bookworm and later give a Pi 5.

Node-RED's Pi installer removes python3-rpi.gpio on Debian 12 and later and installs rpi-lgpio
(waveform80/rpi-lgpio), which offers RPi.GPIO's API on top of lgpio and the kernel's GPIO
character device, because RPi.GPIO cannot drive a Pi 5. It behaves differently where it
matters at a pin, and this stand-in follows it there (its docs, "Differences", and its code):

- a pin is held by one process: setup() of a pin another process holds fails ("GPIO busy"),
  where RPi.GPIO lets two processes drive one pin;
- setup(OUT) without `initial` reads the pin's level first and keeps it;
- PWM is lgpio's software PWM (tx_pwm); stop() stops it and writes the pin low;
- cleanup() makes the pin an input and frees it;
- nothing is cleaned up at exit by the library, but the kernel frees every line of a process
  that exits, however it exits (a SIGKILL too): see sim/lgpio.py, which this module runs on.

Put sim/rpi-lgpio before sim on PYTHONPATH (SQI_GPIO_LIB=rpi-lgpio does, scripts/gpio-sim.ts):
`import RPi.GPIO` then finds this module, and it finds the simulated lgpio. Every pin change
goes to the pin log through lgpio. It never touches hardware.
"""

import os
import sys

import lgpio

SIMULATED = True
SIMULATED_LIBRARY = "rpi-lgpio"
VERSION = "0.7.2"  # the RPi.GPIO version rpi-lgpio emulates

UNKNOWN = -1
BOARD = 10
BCM = 11
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
OUT = 0
IN = 1
LOW = 0
HIGH = 1
RISING = 31
FALLING = 32
BOTH = 33

_BOARD_MAP = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
              21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26,
              38: 20, 40: 21}

RPI_INFO = {"P1_REVISION": 3, "REVISION": "simulated", "TYPE": "simulated Pi 5 (rpi-lgpio)", "MANUFACTURER": "none", "PROCESSOR": "none", "RAM": "simulated"}
RPI_REVISION = 3

_mode = UNKNOWN
_chip = None
_warnings = True

sys.stderr.write("simulated GPIO (rpi-lgpio, as on a Pi 5): no Raspberry Pi here, pin changes go to %s\n" % (os.environ.get("SQI_PIN_LOG") or "nowhere (SQI_PIN_LOG is not set)"))


def _to_gpio(channel):
    if _mode == UNKNOWN:
        raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
    if _mode == BCM:
        if not 0 <= channel < 54:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return channel
    try:
        return _BOARD_MAP[channel]
    except KeyError:
        raise ValueError("The channel sent is invalid on a Raspberry Pi")


def _gpio_list(chanlist):
    try:
        return tuple(_to_gpio(int(c)) for c in chanlist)
    except TypeError:
        return (_to_gpio(int(chanlist)),)


def _is_output(gpio):
    return bool(lgpio.gpio_get_mode(_chip, gpio) & 0x200)


def getmode():
    return None if _mode == UNKNOWN else _mode


def setmode(new_mode):
    global _mode, _chip
    if _mode != UNKNOWN and new_mode != _mode:
        raise ValueError("A different mode has already been set!")
    if new_mode not in (BOARD, BCM):
        raise ValueError("An invalid mode was passed to setmode()")
    if _chip is None:
        _chip = lgpio.gpiochip_open(0)
    _mode = new_mode


def setwarnings(value):
    global _warnings
    _warnings = bool(value)


def setup(chanlist, direction, pull_up_down=None, initial=None):
    if direction not in (IN, OUT):
        raise ValueError("An invalid direction was passed to setup()")
    for gpio in _gpio_list(chanlist):
        if direction == IN:
            lgpio.gpio_claim_input(_chip, gpio, lgpio.SET_PULL_NONE)
        else:
            # As rpi-lgpio: no initial level given, the pin keeps the level it reads (lgpio raises
            # "GPIO busy" here when another process holds the pin).
            level = lgpio.gpio_read(_chip, gpio) if initial is None else bool(initial)
            lgpio.gpio_claim_output(_chip, gpio, level, lgpio.SET_PULL_NONE)


def output(channel, value):
    for gpio in _gpio_list(channel):
        if not _is_output(gpio):
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        lgpio.gpio_write(_chip, gpio, 1 if value else 0)


def input(channel):
    gpio = _to_gpio(channel)
    if not lgpio.gpio_get_mode(_chip, gpio):
        raise RuntimeError("You must setup() the GPIO channel first")
    return lgpio.gpio_read(_chip, gpio)


def add_event_detect(channel, edge, callback=None, bouncetime=None):
    pass


def remove_event_detect(channel):
    pass


def event_detected(channel):
    return False


def cleanup(chanlist=None):
    """Each pin an input, then freed (all the pins this process holds when none are given)."""
    global _chip, _mode
    if _chip is None:
        return
    close = chanlist is None
    gpios = [g for g in range(54) if lgpio.gpio_get_mode(_chip, g)] if close else _gpio_list(chanlist)
    for gpio in gpios:
        try:
            lgpio.gpio_claim_input(_chip, gpio, lgpio.SET_PULL_NONE)
            lgpio.gpio_free(_chip, gpio)
        except lgpio.error:
            pass  # as rpi-lgpio: a pin this process does not hold is no concern of its cleanup
    if close:
        lgpio.gpiochip_close(_chip)
        _chip = None
        _mode = UNKNOWN


_pwms = {}


class PWM(object):
    """lgpio's software PWM (tx_pwm) on a pin set up as an output."""

    def __init__(self, channel, frequency):
        self._gpio = _to_gpio(channel)
        if self._gpio in _pwms:
            raise RuntimeError("A PWM object already exists for this GPIO channel")
        if not _is_output(self._gpio):
            raise RuntimeError("You must setup() the GPIO channel as an output first")
        _pwms[self._gpio] = self
        self._frequency = float(frequency)
        if self._frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self._dc = 0.0
        self._running = False

    def start(self, dc):
        self.ChangeDutyCycle(dc)
        self._running = True
        lgpio.tx_pwm(_chip, self._gpio, self._frequency, self._dc)

    def stop(self):
        lgpio.tx_pwm(_chip, self._gpio, 0, 0)
        lgpio.gpio_write(_chip, self._gpio, 0)
        self._running = False

    def ChangeDutyCycle(self, dc):
        dc = float(dc)
        if not 0 <= dc <= 100:
            raise ValueError("dutycycle must have a value from 0.0 to 100.0")
        self._dc = dc
        if self._running:
            lgpio.tx_pwm(_chip, self._gpio, self._frequency, self._dc)

    def ChangeFrequency(self, frequency):
        self._frequency = float(frequency)
        if self._frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        if self._running:
            lgpio.tx_pwm(_chip, self._gpio, self._frequency, self._dc)
