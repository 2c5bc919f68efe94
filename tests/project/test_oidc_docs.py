"""The OIDC settings the docs name are the ones OidcSettings reads, and the README names them
all (issue 19, deliver 1)."""

from __future__ import annotations

import re
from pathlib import Path

from fengqiao.auth.settings import OidcSettings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "FENGQIAO_OIDC_"


def named(path: Path) -> set[str]:
    text = path.read_text()
    # `FENGQIAO_OIDC_CLIENT_ID` / `_CLIENT_SECRET` in the README's table names both.
    names = set(re.findall(rf"\b{PREFIX}([A-Z_]+[A-Z])\b", text))
    names |= set(re.findall(rf"`{PREFIX}[A-Z_]+` / `_([A-Z_]+[A-Z])`", text))
    return names


def fields() -> set[str]:
    return {name.upper() for name in OidcSettings.model_fields}


def test_every_oidc_setting_named_in_the_docs_exists() -> None:
    for doc in (ROOT / "README.md", ROOT / "docs" / "oidc.md"):
        unknown = named(doc) - fields()
        assert not unknown, f"{doc.name} names settings that do not exist: {sorted(unknown)}"


def test_the_readme_names_every_oidc_setting() -> None:
    missing = fields() - named(ROOT / "README.md")
    assert not missing, f"README lacks {sorted(PREFIX + m for m in missing)}"
