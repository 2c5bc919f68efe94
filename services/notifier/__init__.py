"""Notifier: posts the public replies and private messages, once, within the platform's rules."""
