# Simulated RPi package of @sqi/node-red-pulse: see sim/RPi/GPIO.py.
