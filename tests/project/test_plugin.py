"""The pytest plugin is what other teams install: declared as a `pytest11` entry point, loaded
from it in our own runs too, and the README's example is the test we run."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_plugin_is_an_entry_point_and_loaded_from_it(pytestconfig: pytest.Config) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"fengqiao": "fengqiao.testing.plugin"}
    [installed] = [e for e in entry_points(group="pytest11") if e.name == "fengqiao"]
    assert installed.value == "fengqiao.testing.plugin"
    plugin = pytestconfig.pluginmanager.get_plugin("fengqiao")
    assert plugin is not None and plugin.__name__ == "fengqiao.testing.plugin"


def test_our_conftests_define_none_of_the_plugin_fixtures() -> None:
    names = ("fengqiao_stack", "fengqiao_services", "platform", "post_appeal", "wait_for_case")
    for conftest in (ROOT / "tests").rglob("conftest.py"):
        text = conftest.read_text()
        assert not any(f"def {n}(" in text for n in names), conftest


def test_the_readme_example_is_the_test_we_run() -> None:
    example = (ROOT / "tests" / "e2e" / "test_harness_example.py").read_text()
    test = example[example.index("def test_") :].strip()
    assert f"```python\n{test}\n```" in (ROOT / "README.md").read_text()
