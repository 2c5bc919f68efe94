"""deploy/compose.yaml and deploy/Dockerfile stay consistent with the settings and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fengqiao.cli import build_parser
from fengqiao.settings import StackSettings
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.router.settings import RouterSettings
from services.tracker.settings import TrackerSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "FENGQIAO_": StackSettings,
    "FENGQIAO_INTAKE_": IntakeSettings,
    "FENGQIAO_ROUTER_": RouterSettings,
    "FENGQIAO_TRACKER_": TrackerSettings,
    "FENGQIAO_NOTIFIER_": NotifierSettings,
}


def known_variables() -> set[str]:
    names = set()
    for prefix, cls in SETTINGS.items():
        names.update(prefix + field.upper() for field in cls.model_fields)
    return names


def test_every_variable_in_deploy_is_a_setting() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text() + (
        ROOT / "deploy" / "Dockerfile"
    ).read_text()
    used = set(re.findall(r"\b(FENGQIAO_[A-Z_]+)\b", text))
    assert used, "deploy files name no settings?"
    unknown = used - known_variables()
    assert not unknown, f"deploy names settings that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("service", ["intake", "router", "tracker", "notifier", "simulator"])
def test_compose_commands_parse(service: str) -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    command = compose["services"][service]["command"]
    args = build_parser().parse_args(command)
    assert args.command in {"run", "simulator"}
