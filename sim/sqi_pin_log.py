"""The pin log both simulated GPIO libraries write (sim/RPi/GPIO.py and sim/lgpio.py): one JSON
line per change, appended with one write() on a file opened with O_APPEND, so that several
helper processes can share one log:

    {"t": <wall-clock epoch ms, sub-ms precision>, "pin": <BCM number>, "value": <level or duty>}

with "event" on setup ("out"/"pwm") and cleanup ("released"). Nowhere, when SQI_PIN_LOG is unset.
"""

import json
import os
import time

_fd = None


def log(pin, value, event=None):
    global _fd
    path = os.environ.get("SQI_PIN_LOG")
    if not path:
        return
    if _fd is None:
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rec = {"t": round(time.time_ns() / 1e6, 3), "pin": pin, "value": value}
    if event:
        rec["event"] = event
    os.write(_fd, (json.dumps(rec) + "\n").encode())
