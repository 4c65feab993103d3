"""The architecture rules hold: import-linter's contracts (layers, no cycles) pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    """`lint-imports` checks the layer order and the absence of import cycles written in
    pyproject.toml; a lower layer importing a higher one fails this test."""
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout, proc.stdout[-2000:]
    assert "KEPT" in proc.stdout and "Layers" in proc.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contracts(tmp_path):
    """The same check on a copy where `schemas` (bottom) imports `decision` (above) fails:
    the contracts are live, not a check that always passes."""
    import shutil

    shutil.copytree(REPO / "src", tmp_path / "src")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    schemas = tmp_path / "src" / "credit_scoring" / "schemas.py"
    schemas.write_text(
        schemas.read_text() + "\nfrom credit_scoring.decision import limits  # noqa\n"
    )
    exe = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "BROKEN" in proc.stdout
    assert "credit_scoring.schemas -> credit_scoring.decision" in proc.stdout.replace("\n", " ")
