"""Intake's ports and their implementations."""
