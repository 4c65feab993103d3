"""The notebooks execute from top to bottom, draw their plots and read the project's params.yaml."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_shows_plots_and_reads_params_yaml(path, tmp_path, monkeypatch):
    """Every cell runs on a small in-memory world, the plots reach the notebook as images
    (no headless-only backend), and the params come from the project's params.yaml: a
    changed ``score.pdo`` there is what the notebook reports and uses."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["score"]["pdo"] = 20.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("CREDIT_SCORING_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("CREDIT_SCORING_ROOT", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = _outputs(nb)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name} produced errors: {errors}"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, f"{path.name} showed {len(images)} plots"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert f"params: {tmp_path / 'params.yaml'}" in text
    if "model_report" in path.name:
        assert "pdo 20" in text, "notebook 02 did not use params.yaml's score scale"
