"""What the workbench's browser tests share: Debian's Chromium (never `playwright install`),
people to log in as, logging in, and screenshots kept as test artifacts.

The screenshots land in `test-artifacts/workbench/`; the ones in docs/ (README, docs/workbench.md)
are copied from there by hand when a page changes, so a test run never edits the repository."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from fengqiao.auth.seed import person_token

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "workbench"
PASSWORD = "browser-" + uuid.uuid4().hex[:12]  # every person the browser tests make


def chromium() -> str:
    found = os.environ.get("FENGQIAO_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("no chromium: apt-get install -y chromium (or set FENGQIAO_CHROMIUM)")
    return found


def person(services: Any, unit_id: str, *roles: str, name: str | None = None) -> tuple[str, str]:
    """A new local account of `unit_id` with `roles` (password PASSWORD): username, API token."""
    username = f"browser-{roles[0]}-{unit_id}-{uuid.uuid4().hex[:8]}"
    token = person_token(services.stack.mongo_uri, username, name=name or f"{roles[0]} {unit_id}",
                         unit_id=unit_id, roles=roles, password=PASSWORD)  # fmt: skip
    return username, token


def log_in(page: Any, base: str, username: str, path: str = "/") -> None:
    """Open `path`, be sent to the login page, log in: back on `path`."""
    page.goto(base + path)
    assert "/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
