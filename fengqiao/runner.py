"""Run one service under uvicorn: `fengqiao run <service>`."""

from __future__ import annotations

import importlib
from typing import Any

import uvicorn

from fengqiao.runtime import tracing
from fengqiao.runtime.logs import configure_logging

SERVICES = ("intake", "router", "tracker", "notifier", "workbench")


def run_service(name: str, *, host: str | None = None, port: int | None = None) -> int:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    # JSON lines on stderr (FENGQIAO_LOG_FORMAT=text for a terminal), private data masked.
    configure_logging(name)
    # Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; before the app is built.
    tracing.setup(name)
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
        log_config=None,  # uvicorn's lines go through the root logger's handler too
        lifespan="on",
    )
    return 0
