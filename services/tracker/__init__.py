"""Tracker: owns each case and its clocks — state, timeline, time limits, callbacks."""
