"""Notifier's ports and their implementations."""
