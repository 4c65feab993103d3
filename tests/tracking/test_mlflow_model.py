"""The registered model opens anywhere: in a fresh virtual environment built only from the
model's own requirements.txt (no project installed, no source tree on the path), loaded by
alias from the registry, it scores people given two features."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mlflow
import pytest

from credit_scoring.tracking import registry as tracking

LOAD = """
import importlib.util, json, sys
import pandas as pd
assert importlib.util.find_spec("credit_scoring") is None, "project installed in the env"
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
a, b = sys.argv[2], sys.argv[3]
out = model.predict(pd.DataFrame({a: [0.0, 3.0], b: [1.0, None]}), params={"with_reasons": False})
import credit_scoring
print(json.dumps({"scores": out["score"].tolist(), "bands": out["band"].tolist(),
                  "code": credit_scoring.__file__}))
"""


def test_model_ships_its_code_and_pins_what_it_imports(registered, tmp_path):
    """The logged model carries the credit_scoring package (code/) and a requirements.txt
    pinning every package of :data:`MODEL_PACKAGES` to the version that trained it."""
    root, params, _ = registered
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    local = mlflow.artifacts.download_artifacts(
        f"models:/{params.mlflow.model_name}@champion", dst_path=str(tmp_path)
    )
    assert os.path.isfile(os.path.join(local, "code", "credit_scoring", "decision", "bundle.py"))
    with open(os.path.join(local, "requirements.txt")) as fh:
        reqs = fh.read().split()
    for pin in tracking.pip_requirements():
        assert pin in reqs


@pytest.mark.slow
def test_registered_model_loads_in_a_fresh_env_from_its_own_requirements(registered, tmp_path):
    """uv venv + `uv pip install -r <model>/requirements.txt` (from the uv cache when warm),
    then `mlflow.pyfunc.load_model("models:/credit-scoring@champion")` in that interpreter,
    outside the project: two features in, a 350-950 score per person out."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the fresh environment (it is how the project installs)"
    root, params, _ = registered
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    model_uri = f"models:/{params.mlflow.model_name}@champion"
    local = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "model"))
    # nothing of this process's MLflow set-up (set_*_uri export MLFLOW_*_URI) or Python path
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        and (not k.startswith("MLFLOW_") or k == "MLFLOW_DISABLE_TELEMETRY")
    }
    venv = tmp_path / "fresh"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([uv, "venv", "-q", "--python", py, str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", python, "-r", f"{local}/requirements.txt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    features = mlflow.pyfunc.load_model(model_uri).metadata.get_input_schema().input_names()
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run(
        [python, "-c", LOAD, model_uri, features[0], features[1]],
        cwd=work,
        env={**env, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["scores"]) == 2 and all(350 <= s <= 950 for s in result["scores"])
    assert "/code/credit_scoring/" in result["code"], result["code"]  # the shipped copy
