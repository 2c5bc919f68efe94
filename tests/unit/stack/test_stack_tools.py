"""Finding java, mvn and go, and saying in one line what to install when they are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fengqiao.stack import StackError, tools


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "25-ea" 2025-09-16', 25),
        ('java version "1.8.0_381"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "11.0.20.1" 2023-08-24', 11),
        ('Picked up JAVA_TOOL_OPTIONS: -Xss4m\nopenjdk version "17.0.2" 2022-01-18', 17),
        ("no version here", None),
    ],
)
def test_parse_java_version(output: str, major: int | None) -> None:
    assert tools.parse_java_version(output) == major


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("go version go1.26.8 linux/amd64", (1, 26, 8)),
        ("go version go1.24rc1 linux/arm64", (1, 24)),
        ("module x\n\ngo 1.24\n\nrequire y v1\n", (1, 24)),
        ("module x\n\ngo 1.22.3\ntoolchain go1.25.0\n", (1, 22, 3)),
        ("nothing", None),
    ],
)
def test_parse_go_version(text: str, version: tuple[int, ...] | None) -> None:
    assert tools.parse_go_version(text) == version


def _fake_tool(bin_dir: Path, name: str, stderr: str = "", stdout: str = "") -> None:
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s' '{stderr}' >&2\n")
    script.chmod(0o755)


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only an empty directory the test can put fake tools in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return bin_dir


def test_missing_java_names_what_to_install(empty_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        tools.require_java()
    assert str(caught.value) == (
        "java 17 or newer is required to run Kafka: install a JDK 17 "
        "(apt-get install openjdk-17-jre-headless)"
    )


def test_old_java_is_refused(empty_path: Path) -> None:
    _fake_tool(empty_path, "java", stderr='java version "1.8.0_381"')
    with pytest.raises(StackError, match=r"is java 8: install a JDK 17"):
        tools.require_java()


def test_java_17_is_accepted(empty_path: Path) -> None:
    _fake_tool(empty_path, "java", stderr='openjdk version "17.0.15" 2025-04-15')
    assert tools.require_java() == str(empty_path / "java")


def test_java_home_wins_over_path(
    empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tool(empty_path, "java", stderr='openjdk version "11.0.2"')
    home_bin = tmp_path / "jdk21" / "bin"
    home_bin.mkdir(parents=True)
    _fake_tool(home_bin, "java", stderr='openjdk version "21.0.1"')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk21"))
    assert tools.require_java() == str(home_bin / "java")


def test_missing_mvn_names_what_to_install(empty_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        tools.require_mvn()
    assert str(caught.value) == (
        "mvn is required once to fetch the Kafka jars: install Maven 3 (apt-get install maven)"
    )


def test_missing_go_names_what_to_install(empty_path: Path) -> None:
    with pytest.raises(StackError, match=r"^go 1\.24 or newer is required once to build FerretDB"):
        tools.require_go((1, 24))


def test_old_go_is_refused(empty_path: Path) -> None:
    _fake_tool(empty_path, "go", stdout="go version go1.19.8 linux/amd64")
    with pytest.raises(StackError, match=r"is go 1\.19\.8: install Go"):
        tools.require_go((1, 24))


def test_go_mod_version_reads_the_ferretdb_module() -> None:
    from fengqiao.stack.ferretdb import FERRETDB_DEPLOY

    assert tools.go_mod_version(FERRETDB_DEPLOY / "go.mod") >= (1, 21)
