"""The import contracts of pyproject.toml (``lint-imports``) hold, and catch an upward import.

Each test copies the project's packages and pyproject.toml into a temporary directory and runs
``lint-imports`` there, so an import can be added to the copy without touching the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("csms", "qr_extension", "ocpp_rpc", "config", "charge_point", "demo")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy at ``tree`` (its packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_import(module: Path, line: str) -> None:
    """Appends ``line`` to ``module`` (after its imports: a module-level import all the same)."""
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("csms/store/chargers.py", "import csms.api.deps", "csms is layered"),
        ("csms/store/chargers.py", "import csms.payments.postings", "store imports no"),
        ("csms/protocol/naming.py", "import csms.payments.orders", "protocol imports no"),
        ("csms/payments/lifecycle.py", "import csms.protocol.naming", "payments, billing and"),
        ("qr_extension/jws.py", "import config.settings", "qr_extension imports nothing"),
        ("ocpp_rpc/session.py", "import csms.errors", "ocpp_rpc imports nothing"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    add_import(tree / module, line)
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, result.stdout
    assert module.removesuffix(".py").replace("/", ".") in broken
