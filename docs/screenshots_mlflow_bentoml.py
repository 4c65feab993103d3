"""Make the README's MLflow and BentoML screenshots from a real small run.

    PATH=$PWD/.venv/bin:$PATH python docs/screenshots_mlflow_bentoml.py [out_dir]

A 5,000-person world in a temporary project: train -> evaluate -> register -> package (the
real stages), then a real `mlflow server` on that store and a real `bentoml serve` of the
packaged tag, each on a free loopback port, photographed by headless Debian Chromium
(/usr/bin/chromium): the run page, the registered model with its description, Swagger with
the documented responses. Also checks that every 200 response in /docs.json has a schema.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, seconds: float = 420) -> None:
    end = time.time() + seconds
    while time.time() < end:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(url)


def make_project(root: Path) -> dict:
    """The real stages on a small world, in ``root``; returns register's gate."""
    from credit_scoring.artefacts import Paths
    from credit_scoring.config import BaseParams, SimulateParams, parse_params
    from credit_scoring.data.simulate import simulate_world
    from credit_scoring.features.compute import compute_features, protected_attributes
    from credit_scoring.io import write_parquet
    from credit_scoring.stages import evaluate, package, register, train

    for name in ("bentofile.yaml", "requirements", "src"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    data, _ = simulate_world(SimulateParams(n_users=5000, chunk_size=5000), BaseParams())
    table = compute_features(data).merge(
        data.outcomes[["person_id", "observation_date", "default_12m"]],
        on=["person_id", "observation_date"],
    )
    params = parse_params(
        {
            "train": {"lightgbm": {"num_boost_round": 60, "learning_rate": 0.1}},
            "serve": {"auth": {"mode": "none"}},
        }
    )
    paths = Paths.from_params(params)
    os.chdir(root)
    write_parquet(table, paths.features)
    write_parquet(protected_attributes(data), paths.protected)
    train.run(params)
    evaluate.run(params)
    register.run(params)
    print(json.dumps(package.run(params), indent=1, default=str))
    return json.loads(paths.gate.read_text())


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="credit-scoring-shots-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("BENTOML_HOME", None)
    gate = make_project(root)
    mport, bport = free_port(), free_port()
    env = {**os.environ, "CREDIT_SCORING_AUTH": "none", "BENTOML_HOME": str(root / "bentoml_store")}
    mlf = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--host",
            "127.0.0.1",
            "--port",
            str(mport),
            "--workers",
            "1",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    svc = subprocess.Popen(
        [
            str(BIN / "bentoml"),
            "serve",
            "credit_scoring.serving.service:CreditScoring",
            "--host",
            "127.0.0.1",
            "--port",
            str(bport),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(f"http://127.0.0.1:{mport}/health")
        wait(f"http://127.0.0.1:{bport}/readyz")
        doc = httpx.get(f"http://127.0.0.1:{bport}/docs.json", timeout=30).json()
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                ok = op.get("responses", {}).get("200", {})
                schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
                if path.startswith(("/score", "/advice", "/model")):
                    assert schema and schema.get("type") != "string", (path, method, ok)
                    print(
                        "documented 200:",
                        method.upper(),
                        path,
                        schema.get("$ref") or schema.get("title"),
                    )
        client = httpx.Client(base_url=f"http://127.0.0.1:{mport}", timeout=30)
        exp = client.get(
            "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "credit-scoring"}
        ).json()["experiment"]
        run_id = gate["run_id"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            base = f"http://127.0.0.1:{mport}"
            page.goto(f"{base}/#/experiments/{exp['experiment_id']}/runs/{run_id}")
            page.wait_for_selector("text=learning_curve_validation_auc", timeout=120_000)
            page.wait_for_timeout(3000)
            page.screenshot(path=str(out / "mlflow_run.png"), full_page=False)
            page.goto(f"{base}/#/models/{gate['model_name']}/versions/{gate['version']}")
            page.wait_for_selector("text=Gate:", timeout=120_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out / "mlflow_model_version.png"), full_page=False)
            page.goto(f"http://127.0.0.1:{bport}/")
            path = page.locator(".opblock-summary-path[data-path='/score']")
            path.wait_for(timeout=120_000)
            path.click()
            page.wait_for_selector(".opblock.is-open .responses-wrapper", timeout=60_000)
            page.wait_for_timeout(1500)
            page.locator(".opblock.is-open .responses-wrapper").screenshot(
                path=str(out / "swagger_responses.png")
            )
            browser.close()
    finally:
        for proc in (mlf, svc):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("screenshots in", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "images")
