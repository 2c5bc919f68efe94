"""The FerretDB build patches a copy of the module source, never the read-only module cache, and
stops with a clear error when a patch no longer applies (e.g. after a FerretDB upgrade)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fengqiao.stack.errors import StackError
from fengqiao.stack.ferretdb import FERRETDB_DEPLOY, MODULE, patched_module

METADATA = "internal/backends/sqlite/metadata/metadata.go"


def module_cache(tmp_path: Path, files: dict[str, str]) -> Path:
    """A read-only module directory holding `files` (path → text), as `go mod download` leaves
    it."""
    source = tmp_path / "cache" / "FerretDB@v1.24.2"
    for name, text in files.items():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for path in [*sorted(source.rglob("*"), reverse=True), source, source.parent]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return source


def project_patches() -> list[dict[str, str]]:
    return list(json.loads((FERRETDB_DEPLOY / "patches.json").read_text(encoding="utf-8")))


def test_the_projects_patches_apply_to_a_copy(tmp_path: Path) -> None:
    # Each file as it holds the text each of its patches replaces (the real source holds them
    # among the rest; a FerretDB upgrade is checked by the build itself).
    originals: dict[str, str] = {}
    for patch in project_patches():
        originals[patch["file"]] = originals.get(patch["file"], "") + patch["old"] + "\n\n"
    source = module_cache(tmp_path, originals)
    try:
        modfile = patched_module(source, tmp_path / "src")
        for patch in project_patches():
            assert patch["new"] in (tmp_path / "src" / "FerretDB" / patch["file"]).read_text()
        assert (
            "IDColumn = DefaultColumn + \"->'_id'\""
            in (tmp_path / "src" / "FerretDB" / METADATA).read_text()
        )
        for name, original in originals.items():
            assert (source / name).read_text() == original  # the cache is untouched
        go_mod = modfile.read_text()
        assert go_mod.startswith((FERRETDB_DEPLOY / "go.mod").read_text().rstrip())
        assert go_mod.endswith(f"replace {MODULE} => {tmp_path / 'src' / 'FerretDB'}\n")
        assert (tmp_path / "src" / "go.sum").read_bytes() == (
            FERRETDB_DEPLOY / "go.sum"
        ).read_bytes()
        # A second build starts from a fresh copy (the first one's files are replaced).
        patched_module(source, tmp_path / "src")
    finally:
        for path in (tmp_path / "cache").rglob("*"):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_patch_that_does_not_apply_names_the_file(tmp_path: Path) -> None:
    source = module_cache(tmp_path, {METADATA: "package metadata\n"})
    patches = tmp_path / "patches.json"
    patches.write_text(json.dumps([{"file": METADATA, "old": "x = 1", "new": "x = 2", "why": "t"}]))
    try:
        with pytest.raises(
            StackError,
            match=r"the patch of .*metadata\.go does not apply: .* must hold 'x = 1' once",
        ):
            patched_module(source, tmp_path / "src", patches)
    finally:
        for path in (tmp_path / "cache").rglob("*"):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
