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


def test_there_are_five_services() -> None:
    assert SERVICES == ["intake", "notifier", "router", "tracker", "workbench"]


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
    allowed = (
        *("fengqiao.runtime", "fengqiao.contracts", "fengqiao.auth"),
        f"fengqiao.services.{service}",
    )
    for path in (ROOT / "services" / service).rglob("*.py"):
        # A composition root may mount the operators' API (`fengqiao.ops.http`: dead letters,
        # hosted by one service with its runtime), and take the rules it is built on.
        hosted = ("fengqiao.ops.http", "fengqiao.ops.dlq") if path.name == "app.py" else ()
        bad = {
            m
            for m in imported_modules(path)
            if m.startswith("fengqiao")
            and not m.startswith(allowed)
            and m not in hosted
            and m != "fengqiao"
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_auth_imports_only_the_runtime_and_the_contracts() -> None:
    # The services import `fengqiao.auth` (who is calling, the policy); it sits beside the
    # runtime, below them. Its command line (`fengqiao users`) is a tool, above them.
    allowed = ("fengqiao.runtime", "fengqiao.contracts", "fengqiao.auth")
    for path in (ROOT / "fengqiao" / "auth").rglob("*.py"):
        if path.name == "cli.py":
            continue
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


# Private attributes of libraries are reached only through fengqiao/runtime/compat.py, whose
# tests fail when an upgrade moves them. Elsewhere `x._name` (or getattr(x, "_name")) is allowed
# on self/cls, for a name the same module defines (its own privates), on a fengqiao module it
# imported, for namedtuple's documented `_replace`/`_asdict`/`_fields`/`_make`, and here:
PRIVATE_ACCESS_ALLOWED = {
    # path: {attribute: why}
    "bench/timers.py": {"_due_entries": "times one of the timers' own steps alone"},
}
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}
COMPAT = "fengqiao/runtime/compat.py"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The private names a module defines, and the names it binds to fengqiao modules."""
    defined: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Import):
            modules.update(
                (a.asname or a.name).split(".")[0]
                for a in node.names
                if a.name.startswith("fengqiao")
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fengqiao"):
            modules.update(a.asname or a.name for a in node.names)
            defined.update(a.asname or a.name for a in node.names)
    return {n for n in defined if _is_private(n)}, modules


def _private_accesses(tree: ast.AST) -> list[tuple[int, ast.expr, str]]:
    found: list[tuple[int, ast.expr, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            found.append((node.lineno, node.value, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
        ):
            found.append((node.lineno, node.args[0], node.args[1].value))
    return found


def _receiver_is_own(value: ast.expr, modules: set[str]) -> bool:
    if isinstance(value, ast.Name):
        return value.id in {"self", "cls"} or value.id in modules
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def test_no_private_attribute_of_a_library_outside_the_compat_module() -> None:
    offenders = []
    for top in ("fengqiao", "services", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == COMPAT or relative.startswith(
                ("fengqiao/services/", "fengqiao/contracts/")
            ):
                continue  # the compat module itself; the links to the top-level folders
            tree = ast.parse(path.read_text(encoding="utf-8"))
            own, modules = _own_names(tree)
            allowed = PRIVATE_ACCESS_ALLOWED.get(relative, {})
            for line, value, attr in _private_accesses(tree):
                if attr in own or attr in NAMEDTUPLE_API or attr in allowed:
                    continue
                if not _receiver_is_own(value, modules):
                    offenders.append(f"{relative}:{line}: .{attr} ({ast.unparse(value)})")
    assert not offenders, (
        "private attributes of libraries belong in fengqiao/runtime/compat.py (a named function "
        "with a test in tests/unit/test_compat.py):\n" + "\n".join(offenders)
    )


def _private_stores(cls: ast.ClassDef) -> set[str]:
    return {
        node.attr
        for node in ast.walk(cls)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and _is_private(node.attr)
    }


def _methods_source(cls: type) -> str:
    """The source of a class's own methods (httpx's classes name `httpx` as their module, so
    the class itself cannot be found by inspect)."""
    import inspect

    sources = []
    for member in vars(cls).values():
        function = getattr(member, "fget", member)  # a property's getter
        if inspect.isfunction(function):
            try:
                sources.append(inspect.getsource(function))
            except (OSError, TypeError):
                continue
    return "\n".join(sources)


def test_no_class_overwrites_a_private_attribute_of_its_library_base() -> None:
    """`self._pool = ...` in a subclass of a library class replaces the library's internals as
    surely as `client._pool = ...` does (what the notifier's transport did to httpx)."""
    import importlib
    import re

    offenders = []
    for top in ("fengqiao/runtime", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            parts = relative.with_suffix("").parts
            name = ".".join(("fengqiao", *parts) if top == "services" else parts)
            classes = [
                n
                for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(n, ast.ClassDef) and n.bases
            ]
            if not classes:
                continue
            module = importlib.import_module(name.removesuffix(".__init__"))
            for node in classes:
                cls, stores = getattr(module, node.name, None), _private_stores(node)
                if not isinstance(cls, type) or not stores:
                    continue
                for base in cls.__mro__[1:]:
                    if base.__module__.startswith(("fengqiao", "builtins")):
                        continue
                    source = _methods_source(base)
                    offenders += [
                        f"{relative}: {node.name}.{attr} is {base.__module__}.{base.__name__}'s"
                        for attr in sorted(stores)
                        if attr in vars(base) or re.search(rf"self\.{attr}\b", source)
                    ]
    assert not offenders, "\n".join(offenders)
