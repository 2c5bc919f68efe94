"""Services talk only through contracts and topics: no service imports another, and domain
modules do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "app.py").exists())
IO_MODULES = {
    "pymongo",
    "aiokafka",
    "faststream",
    "httpx",
    "fastapi",
    "uvicorn",
    "socket",
    "requests",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_there_are_four_services() -> None:
    assert SERVICES == ["intake", "notifier", "router", "tracker"]


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str) -> None:
    others = {f"fengqiao.services.{s}" for s in SERVICES if s != service}
    for path in (ROOT / "services" / service).rglob("*.py"):
        bad = {
            m
            for m in imported_modules(path)
            if any(m == o or m.startswith(o + ".") for o in others)
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("service", SERVICES)
def test_domain_modules_do_no_io(service: str) -> None:
    # A service's domain: domain*.py, or a domain/ package. Neither I/O libraries nor the
    # service's own adapters and handlers (which do the I/O for it), nor the runtime's I/O.
    folder = ROOT / "services" / service
    paths = [*folder.glob("domain*.py"), *folder.glob("domain/*.py")]
    assert paths, f"services/{service} has no domain module"
    own_io = (
        *(f"fengqiao.services.{service}.{name}" for name in ("adapters", "handlers", "app", "api")),
        f"fengqiao.services.{service}.unit_of_work",
        *("fengqiao.runtime.messaging", "fengqiao.runtime.store", "fengqiao.runtime.service"),
    )
    for path in paths:
        imported = imported_modules(path)
        bad = {m for m in imported if m.split(".")[0] in IO_MODULES}
        bad |= {m for m in imported if any(m == o or m.startswith(o + ".") for o in own_io)}
        assert not bad, f"{path.relative_to(ROOT)} imports I/O modules {sorted(bad)}"


def test_contracts_import_nothing_of_fengqiao_but_themselves() -> None:
    for path in (ROOT / "contracts").rglob("*.py"):
        bad = {
            m
            for m in imported_modules(path)
            if m.startswith("fengqiao") and not m.startswith("fengqiao.contracts")
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_runtime_imports_no_service_and_no_tool() -> None:
    # The runtime sits below the services; the tools (cli, stack, simulator, demo, ops,
    # testing, triage) sit above them. Nothing runs from the runtime up.
    for path in (ROOT / "fengqiao" / "runtime").rglob("*.py"):
        bad = {
            m
            for m in imported_modules(path)
            if m.startswith("fengqiao")
            and not m.startswith(("fengqiao.runtime", "fengqiao.contracts"))
            and m != "fengqiao"
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("service", SERVICES)
def test_services_import_only_the_runtime_and_the_contracts(service: str) -> None:
    allowed = ("fengqiao.runtime", "fengqiao.contracts", f"fengqiao.services.{service}")
    for path in (ROOT / "services" / service).rglob("*.py"):
        bad = {
            m
            for m in imported_modules(path)
            if m.startswith("fengqiao") and not m.startswith(allowed) and m != "fengqiao"
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


LINKED = ("contracts", "services")


def test_nothing_imports_bare_services_or_contracts() -> None:
    # They install as `fengqiao.services` and `fengqiao.contracts` only (pyproject.toml).
    for top in ("contracts", "services", "fengqiao", "tests", "bench", "scripts"):
        for path in (ROOT / top).rglob("*.py"):
            if top == "fengqiao" and path.relative_to(ROOT / top).parts[0] in LINKED:
                continue  # the links to `contracts/` and `services/`, read above
            bad = {
                m for m in imported_modules(path) if m.split(".")[0] in ("services", "contracts")
            }
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_package_links_the_top_level_folders() -> None:
    for name in LINKED:
        link = ROOT / "fengqiao" / name
        assert link.is_symlink() and link.resolve() == ROOT / name


@pytest.mark.parametrize("service", SERVICES)
def test_app_import_does_no_io(service: str) -> None:
    import subprocess
    import sys

    # Importing the composition root must not connect anywhere; point it at closed ports and see
    # that import and app construction still succeed instantly.
    code = f"import fengqiao.services.{service}.app as m; m.create_app()"
    env = {
        "FENGQIAO_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "FENGQIAO_MONGO_URI": "mongodb://127.0.0.1:1/",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
