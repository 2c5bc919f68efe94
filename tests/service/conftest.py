"""Service tests are hermetic: a handler that reaches for the real Kafka or store by mistake
fails at once, whether or not a stack happens to be running on this machine."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_real_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("FENGQIAO_MONGO_URI", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")
