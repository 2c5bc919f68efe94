"""The AsyncAPI documents under docs/asyncapi/ are what the apps generate (`make docs`)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


@pytest.mark.parametrize("service", ["intake", "router", "tracker", "notifier"])
def test_checked_in_asyncapi_is_current(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FENGQIAO_KAFKA_BOOTSTRAP", "FENGQIAO_MONGO_URI"):
        monkeypatch.delenv(name, raising=False)  # the documents name the default servers
    app = importlib.import_module(f"fengqiao.services.{service}.app").create_asyncapi()
    generated = app.schema.to_specification().to_jsonable()
    checked_in = json.loads((DOCS / f"{service}.json").read_text(encoding="utf-8"))
    assert generated == checked_in, f"docs/asyncapi/{service}.json is out of date: run `make docs`"


def test_every_topic_is_documented() -> None:
    from fengqiao.contracts import TOPICS

    addresses = set()
    for path in DOCS.glob("*.json"):
        for channel in json.loads(path.read_text(encoding="utf-8"))["channels"].values():
            addresses.add(channel["address"])
    missing = {name for t in TOPICS for name in (t.name, t.dlq)} - addresses
    assert not missing, f"topics no app documents: {sorted(missing)}"
