"""Tracker's ports and their implementations."""
