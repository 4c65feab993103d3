"""`package` as BentoML users expect: an unchanged champion is not imported or built again,
the store is the project's own, and a project under a dot-folder still builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from credit_scoring.tracking import bento

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _package(root: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [str(BIN / "credit-scoring"), "package"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((root / "reports" / "package.json").read_text())


@pytest.mark.slow
def test_package_twice_reuses_the_model_and_the_bento_in_the_project_store(registered):
    """Second `credit-scoring package` of the same champion: same BentoML tag and Bento,
    both marked reused, one model and one Bento in the store; the store is the project's
    `bentoml_store/` (serve.bentoml_home default), not ~/bentoml."""
    root, _, _ = registered
    for name in ("bentofile.yaml", "requirements", "src", "params.yaml"):
        src, dst = REPO / name, root / name
        if not dst.exists():
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MLFLOW_TRACKING_URI")}
    first = _package(root, env)
    second = _package(root, env)
    assert first["bentoml model reused"] is False and first["bento reused"] is False
    assert second["bentoml model reused"] is True and second["bento reused"] is True
    assert second["bentoml model"] == first["bentoml model"]
    assert second["bento"] == first["bento"]
    store = root / "bentoml_store"
    assert second["bentoml home"] == str(store)
    assert len([p for p in (store / "models" / "credit-scoring").iterdir() if p.is_dir()]) == 1
    versions = [p for p in (store / "bentos" / "credit_scoring").iterdir() if p.is_dir()]
    assert len(versions) == 1


def test_hidden_parts_names_the_dot_folders(tmp_path):
    assert bento.hidden_parts(tmp_path / ".cache" / "proj" / ".git") == [".cache", ".git"]
    assert bento.hidden_parts(tmp_path / "plain") == []


def test_a_project_under_a_dot_folder_is_built_from_a_temp_copy(tmp_path):
    """build_context copies the build sources outside the dot-folder; if the temp folder
    is hidden too, one line says what to do."""
    project = tmp_path / ".hidden" / "proj"
    for name in bento.BUILD_SOURCES:
        src = REPO / name
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, project / name)
    ctx = bento.build_context(project, tmp_path / "tmp")
    assert bento.hidden_parts(ctx) == []
    assert (ctx / "src" / "credit_scoring" / "serving" / "service.py").is_file()
    assert bento.source_sha256(ctx) == bento.source_sha256(project)
    with pytest.raises(bento.HiddenPathError, match="set TMPDIR") as err:
        bento.build_context(project, tmp_path / ".tmp")
    assert "\n" not in str(err.value)


BUILD = """
import sys
from credit_scoring.tracking.bento import build_bento, import_bundle
tag = import_bundle(sys.argv[2], None, 10)
print(build_bento(sys.argv[1], {}, tag))
"""


@pytest.mark.slow
def test_bentoml_really_builds_a_project_under_a_dot_folder(tmp_path, small_model):
    """A real Bento build from a project under `.hidden/` (BentoML alone refuses it)."""
    project = tmp_path / ".hidden" / "proj"
    for name in bento.BUILD_SOURCES:
        src = REPO / name
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, project / name)
    small_model.save(tmp_path / "bundle")
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, str(project), str(tmp_path / "bundle")],
        env={**os.environ, "BENTOML_HOME": str(tmp_path / "home")},
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("credit_scoring:")
