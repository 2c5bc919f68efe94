"""The README's harness example in a project of someone else's that has its own `services` and
`contracts` packages: fengqiao installs as `fengqiao.*` only, so neither shadows the other (it
used to: that project's `services` hid ours, and intake failed with `No module named
'services.intake'`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fengqiao.testing import StackEndpoints

ROOT = Path(__file__).resolve().parents[2]

THEIR_OWN_TEST = """
import contracts
import services.intake


def test_their_own_packages_are_theirs():
    assert services.intake.OWNER == contracts.OWNER == "them"
"""


def test_a_project_with_its_own_services_package_runs_the_readme_example(
    stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    project = tmp_path / "their-project"
    for package in ("services", "contracts"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text('OWNER = "them"\n')
    (project / "services" / "intake.py").write_text("from services import OWNER\n")
    (project / "tests").mkdir()
    example = (ROOT / "tests" / "e2e" / "test_harness_example.py").read_text()
    (project / "tests" / "test_readme_example.py").write_text(example)
    (project / "tests" / "test_theirs.py").write_text(THEIR_OWN_TEST)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FENGQIAO_"))
    } | stack_endpoints.env()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-2000:]
