"""Intake refuses to start with a short secret, and says which setting holds it (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fengqiao.services.intake.settings import (
    MIN_SECRET_LENGTH,
    IntakeSettings,
    UnsafeSettings,
    WeiboAccount,
)
from fengqiao.services.notifier.settings import NotifierSettings, Webhook

LONG = "x" * MIN_SECRET_LENGTH
SHORT = "s3cret"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"generic_secrets": {"webform": SHORT}}, "FENGQIAO_INTAKE_GENERIC_SECRETS['webform']"),
        ({"open311_api_keys": {"city-app": SHORT}}, "FENGQIAO_INTAKE_OPEN311_API_KEYS['city-app']"),
        (
            {"weibo_accounts": {"xinjiang": WeiboAccount(handle="@新疆检察", app_secret=SHORT)}},
            "FENGQIAO_INTAKE_WEIBO_ACCOUNTS['xinjiang'].app_secret",
        ),
    ],
)
def test_a_short_secret_is_refused_at_start_naming_its_setting(
    settings: dict[str, object], named: str
) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        IntakeSettings(**settings)  # type: ignore[arg-type]
    message = str(refused.value)
    assert named in message
    assert f"at least {MIN_SECRET_LENGTH}" in message
    assert SHORT not in message  # the secret itself is never printed


def test_a_short_secret_in_the_secrets_file_is_refused(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"open311: {{city-app: {SHORT}}}\n", encoding="utf-8")
    with pytest.raises(UnsafeSettings, match="OPEN311_API_KEYS\\['city-app'\\]"):
        IntakeSettings(secrets_file=secrets)


def test_secrets_of_the_minimum_length_are_taken() -> None:
    settings = IntakeSettings(
        open311_api_keys={"city-app": LONG},
        weibo_accounts={"xinjiang": WeiboAccount(handle="@新疆检察", app_secret=LONG)},
    )
    assert settings.open311_api_keys["city-app"].get_secret_value() == LONG


def test_a_short_notifier_webhook_secret_is_refused_at_start() -> None:
    with pytest.raises(UnsafeSettings, match=r"FENGQIAO_NOTIFIER_WEBHOOKS\['wechat'\]\.secret"):
        NotifierSettings(webhooks={"wechat": Webhook(url="http://wechat.example", secret=SHORT)})
    hook = Webhook(url="http://wechat.example", secret=LONG)
    assert NotifierSettings(webhooks={"wechat": hook}).webhooks["wechat"] == hook
