"""Simulated GPIO for machines that are not a Raspberry Pi.

A stand-in for the RPi.GPIO module, just enough for node-red-node-pi-gpio's nrgpio.py,
so that the real `rpi-gpio out` node runs its real code path off a Pi. Every change of an
output's level (or PWM duty) is appended as one JSON line to the file named by the
environment variable SQI_PIN_LOG:

    {"t": <wall-clock epoch ms, sub-ms precision>, "pin": <BCM number>, "value": <level or duty>}

Lines with "event" mark setup ("out"/"pwm") and cleanup ("released": on a real Pi the pin
becomes an input and the MOSFET gate's pull-down holds it low). Each line is one write()
on a file opened with O_APPEND, so several helper processes can share one log.

The launcher and the tests put this folder on PYTHONPATH only when no real RPi.GPIO
can be imported. It never touches hardware.
"""

import os
import sys

from sqi_pin_log import log as _log  # the pin log both simulated libraries write

SIMULATED = True
VERSION = "0.7.1-sqi-simulated"
RPI_REVISION = 3
RPI_INFO = {"P1_REVISION": 3, "RAM": "simulated", "REVISION": "simulated", "TYPE": "simulated GPIO (no Raspberry Pi)", "PROCESSOR": "none", "MANUFACTURER": "none"}

BCM = 11
BOARD = 10
OUT = 0
IN = 1
LOW = 0
HIGH = 1
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
RISING = 31
FALLING = 32
BOTH = 33

# BOARD pin -> BCM number, for logging in one numbering whatever mode is set.
_BOARD_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
                 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26,
                 38: 20, 40: 21}

_mode = None
_levels = {}   # BCM pin -> last level or duty written
_setup = {}    # BCM pin -> "out" | "in" | "pwm"
_pulls = {}

sys.stderr.write("simulated GPIO: no Raspberry Pi here, pin changes go to %s\n" % (os.environ.get("SQI_PIN_LOG") or "nowhere (SQI_PIN_LOG is not set)"))


def _bcm(channel):
    channel = int(channel)
    if _mode == BOARD:
        if channel not in _BOARD_TO_BCM:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return _BOARD_TO_BCM[channel]
    return channel


def _channels(channel):
    if isinstance(channel, (list, tuple)):
        return [_bcm(c) for c in channel]
    return [_bcm(channel)]


def setwarnings(flag):
    pass


def setmode(mode):
    global _mode
    if mode not in (BCM, BOARD):
        raise ValueError("An invalid mode was passed to setmode()")
    _mode = mode


def getmode():
    return _mode


def setup(channel, direction, pull_up_down=PUD_OFF, initial=None):
    if _mode is None:
        raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
    for pin in _channels(channel):
        if direction == OUT:
            _setup[pin] = "out"
            level = _levels.get(pin, 0) if initial is None else (1 if initial else 0)
            _levels[pin] = level
            _log(pin, level, "out")
        else:
            _setup[pin] = "in"
            _pulls[pin] = pull_up_down


def output(channel, value):
    pins = _channels(channel)
    values = value if isinstance(value, (list, tuple)) else [value] * len(pins)
    for pin, v in zip(pins, values):
        if _setup.get(pin) != "out":
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        level = 1 if v else 0
        if _levels.get(pin) != level:
            _levels[pin] = level
            _log(pin, level)


def input(channel):
    pin = _bcm(channel)
    if _setup.get(pin) == "out":
        return _levels.get(pin, 0)
    return 1 if _pulls.get(pin) == PUD_UP else 0


def add_event_detect(channel, edge, callback=None, bouncetime=None):
    pass


def remove_event_detect(channel):
    pass


def event_detected(channel):
    return False


def cleanup(channel=None):
    pins = list(_setup.keys()) if channel is None else _channels(channel)
    for pin in pins:
        if pin in _setup:
            del _setup[pin]
            _levels.pop(pin, None)
            _log(pin, None, "released")


class PWM(object):
    def __init__(self, channel, frequency):
        self.pin = _bcm(channel)
        self.frequency = float(frequency)
        self.duty = None
        _setup[self.pin] = "pwm"

    def start(self, duty):
        self.ChangeDutyCycle(duty)

    def ChangeDutyCycle(self, duty):
        duty = float(duty)
        if duty < 0 or duty > 100:
            raise ValueError("dutycycle must have a value from 0.0 to 100.0")
        if self.duty != duty:
            first = self.duty is None
            self.duty = duty
            _log(self.pin, duty, "pwm" if first else None)

    def ChangeFrequency(self, frequency):
        self.frequency = float(frequency)

    def stop(self):
        if self.duty not in (None, 0.0):
            self.duty = 0.0
            _log(self.pin, 0.0)
