"""The locks (requirements/*.txt, written by `make lock`) pin every dependency pyproject.toml
declares, each with its hashes, and the install and the image use nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RELOCK = "pyproject.toml changed without `make lock` (README, 'Dependencies')"


def locked(name: str) -> dict[str, list[tuple[Version, list[str]]]]:
    """Each locked package: its versions (one per marker branch) and their hashes."""
    text = (ROOT / "requirements" / name).read_text().replace("\\\n", " ")
    pins: dict[str, list[tuple[Version, list[str]]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement = Requirement(line.split(" --hash")[0].strip())
        [pin] = requirement.specifier
        assert pin.operator == "==", line
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (Version(pin.version), hashes)
        )
    return pins


def declared(*, extras: bool, groups: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    texts = list(project["dependencies"])
    if extras:
        texts += [t for deps in project["optional-dependencies"].values() for t in deps]
    for group in groups:
        texts += PYPROJECT["dependency-groups"][group]
    return [Requirement(t) for t in texts]


@pytest.mark.parametrize(
    ("lock", "extras", "groups"),
    [("dev.txt", True, ("dev", "build")), ("runtime.txt", False, ("build",))],
)
def test_the_lock_pins_every_declared_dependency_with_hashes(
    lock: str, extras: bool, groups: tuple[str, ...]
) -> None:
    pins = locked(lock)
    assert pins, f"requirements/{lock} is empty"
    for name, versions in pins.items():
        for version, hashes in versions:
            assert hashes, f"{name}=={version} in requirements/{lock} has no hash"
    for requirement in declared(extras=extras, groups=groups):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements/{lock}: {RELOCK}"
        for version, _ in pins[name]:
            assert version in requirement.specifier, f"{name}=={version} breaks {requirement}"


def test_the_build_requirements_are_locked() -> None:
    """The project is installed without build isolation: its build backend comes from the lock."""
    build = [Requirement(t) for t in PYPROJECT["build-system"]["requires"]]
    assert {canonicalize_name(r.name) for r in build} <= {
        canonicalize_name(Requirement(t).name) for t in PYPROJECT["dependency-groups"]["build"]
    }


def test_the_runtime_lock_is_the_dev_lock_s_versions() -> None:
    dev, runtime = locked("dev.txt"), locked("runtime.txt")
    for name, versions in runtime.items():
        assert [v for v, _ in versions] == [v for v, _ in dev[name]], name


def test_install_and_image_take_the_locks_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile
    assert re.search(r"STAMP\s*:=.*cat pyproject.toml \$\(LOCK\)", makefile), (
        "STAMP ignores the lock"
    )
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/runtime.txt" in dockerfile
    for path in (ROOT / "Makefile", ROOT / "deploy" / "Dockerfile", ROOT / ".ci" / "run"):
        assert "constraints.txt" not in path.read_text(), path
