"""Run one service under uvicorn: `fengqiao run <service>`."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import uvicorn

SERVICES = ("intake", "router", "tracker", "notifier", "workbench")


def run_service(name: str, *, host: str | None = None, port: int | None = None) -> int:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: a line per reply posted, per poll; its errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app_module = importlib.import_module(f"fengqiao.services.{name}.app")
    settings_module = importlib.import_module(f"fengqiao.services.{name}.settings")
    settings_cls: Any = getattr(settings_module, f"{name.capitalize()}Settings")
    settings = settings_cls()
    app = app_module.create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port if port is not None else settings.http_port,
        log_level="warning",
        lifespan="on",
    )
    return 0
