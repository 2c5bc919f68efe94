"""A small Weibo-shaped platform: the endpoints the notifier posts to, with the platform's limits,
recording everything it received so tests and the demo can show it."""

from fengqiao.simulator.server import create_app

__all__ = ["create_app"]
