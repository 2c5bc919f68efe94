"""No module over 400 lines and no function over 60 (issue 17): a newcomer reads a file whole and
a function at a glance. Generated data may be exempt, by name, below.

A function's length runs from its `def` line to its last line, so a nested function (an
endpoint inside a router factory) counts toward the function around it.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The top-level folders, read once each: `fengqiao/contracts` and `fengqiao/services` are links
# to the first two and are not followed (`os.walk` does not follow linked folders).
FOLDERS = ("contracts", "services", "fengqiao", "bench", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Modules that hold generated data (a table written by a script, not code a person maintains),
# exempt from both limits. Each entry says what generates it. None today.
GENERATED: dict[str, str] = {}


def python_files() -> Iterator[str]:
    """Every .py under FOLDERS, as a path relative to the checkout."""
    for folder in FOLDERS:
        for here, dirs, files in os.walk(ROOT / folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    yield (Path(here) / name).relative_to(ROOT).as_posix()


def oversized(path: str) -> list[str]:
    """What in the module at `path` is over the limits, one line each."""
    text = (ROOT / path).read_text(encoding="utf-8")
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{path}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{path}:{node.lineno}: {node.name} has {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )
    return found


def test_the_folders_are_read_and_the_links_are_not() -> None:
    files = list(python_files())
    assert "services/intake/http.py" in files
    assert "contracts/envelope.py" in files
    assert "fengqiao/runtime/__init__.py" in files
    assert not any(f.startswith(("fengqiao/contracts/", "fengqiao/services/")) for f in files)
    assert len(files) == len(set(files))


def test_no_module_or_function_is_over_the_limits() -> None:
    exempt = GENERATED.keys()
    over = [line for path in python_files() if path not in exempt for line in oversized(path)]
    assert not over, "split these by concern:\n" + "\n".join(over)


def test_every_exemption_is_still_needed() -> None:
    for path in GENERATED:
        assert (ROOT / path).is_file(), f"{path} is gone: take it out of the exemptions"
        assert oversized(path), f"{path} is within the limits now: take it out of the exemptions"


def test_the_check_finds_a_long_function_and_a_long_module(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    module = tmp_path / "long.py"
    module.write_text(f"def long():\n{body}\n" + "\n" * 400, encoding="utf-8")
    found = oversized(str(module))
    assert any("long has 61 lines" in line for line in found), found
    assert any("lines (at most 400)" in line for line in found), found
