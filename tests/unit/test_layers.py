"""What may import what: the import-linter contracts in pyproject.toml hold (the layers
schemas <- domain <- streams plumbing <- tables <- agents, web, tools <- streams.worker <-
streams.cli, with no ignored imports; only streams.faust touches Faust internals; only the
composition root knows the concrete app class)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# In a fresh interpreter: the contracts name faust as a root package, and a faust already
# imported by other tests (its lazy module object has no __spec__) cannot be located.
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_import_contracts_hold() -> None:
    if importlib.util.find_spec("importlinter") is None:  # a missing checker must not pass as kept
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    result = subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_is_exempted_from_the_contracts() -> None:
    """A cycle held apart by an exemption is still a cycle: there are none to hold."""
    assert "ignore_imports" not in (REPO / "pyproject.toml").read_text()
