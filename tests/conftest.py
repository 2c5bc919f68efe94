"""Shared fixtures. Integration and end-to-end tests get a real Kafka and MongoDB from the
fengqiao pytest plugin (`fengqiao.testing.plugin`, loaded through its `pytest11` entry point
like anyone else's install): `fengqiao_stack`, `fengqiao_services`, `platform`, `post_appeal`,
`wait_for_case`. This file adds only what our own suites need on top."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import StackEndpoints
from fengqiao.testing.oidc import OidcProvider, free_port, new_signing_jwk, provider_config

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults",
        choices=["short", "long"],
        default=None,
        help="the fault drill's form (tests/faults): short (make test, the default) or long "
        "(make test-faults); also FENGQIAO_FAULTS",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("fengqiao"):
        raise pytest.UsageError(
            "the fengqiao pytest plugin is not loaded: `make install` registers its pytest11 "
            "entry point (fengqiao.testing.plugin)"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in {"integration", "e2e", "faults"}:
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack_endpoints(fengqiao_stack: StackEndpoints) -> StackEndpoints:
    """A real Kafka and MongoDB for the whole test session (the plugin's `fengqiao_stack`)."""
    return fengqiao_stack


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OIDC provider (mock-oauth2-server, fetched by mvn into the stack's cache) on a
    free loopback port, for the whole session; see fengqiao.testing.oidc for its claims."""
    provider = OidcProvider(StackSettings().cache_dir, free_port())
    provider.start(provider_config(new_signing_jwk()))
    try:
        yield provider
    finally:
        provider.stop()
