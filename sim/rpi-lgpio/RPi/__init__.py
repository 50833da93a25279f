# Simulated rpi-lgpio of @sqi/node-red-pulse: see sim/rpi-lgpio/RPi/GPIO.py.
