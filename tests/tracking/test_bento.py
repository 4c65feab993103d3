"""The served model is pinned: `package` writes the exact BentoML tag it imported, and a real
`bentoml serve` loads exactly that tag, never `:latest`, across restarts.

The incident of issue 14: two checkouts share one BentoML store; the second packages another
run; the first one's service restarts and silently serves the second's model. Here the store
receives run A (pinned for this checkout), then run B (the store's latest); the service and
its restart still serve run A, and `model_version` names the registry version and run id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from credit_scoring.config import ServeParams
from credit_scoring.serving.serve_config import (
    MODEL_TAG_ENV,
    ServeConfig,
    ServeConfigError,
    check_tag,
    serve_config_document,
)

BIN = Path(sys.executable).parent
SERVE = [str(BIN / "bentoml"), "serve", "credit_scoring.serving.service:CreditScoring"]

#: Imports a bundle into the store (BENTOML_HOME) as `package` does, for a given registry
#: version and run, and optionally pins it in a serve config file; prints the tag.
PACKAGE = """
import sys
from credit_scoring.config import ServeParams
from credit_scoring.tracking.bento import RegistryModel, import_bundle, write_serve_config
bundle, version, run_id, config = sys.argv[1:5]
tag = import_bundle(bundle, RegistryModel("credit-scoring", version, "champion", run_id), 50)
if config != "-":
    serve = ServeParams(auth={"mode": "none"})
    write_serve_config(serve, tag, config)
print(tag)
"""


def package(home: Path, bundle: Path, version: str, run_id: str, config: Path | None) -> str:
    """Import ``bundle`` as registry ``version`` of ``run_id`` into ``home``; pin it in
    ``config`` if given. Returns the BentoML tag."""
    proc = subprocess.run(
        [sys.executable, "-c", PACKAGE, str(bundle), version, run_id, str(config or "-")],
        env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(cwd: Path, env: dict[str, str], log: Path) -> Iterator[httpx.Client]:
    """`bentoml serve` of the service in ``cwd`` until ready; stopped (SIGTERM) on exit."""
    port = _free_port()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "true", **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a busy shared machine starts slowly
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"bentoml serve exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready in 240 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, small_model) -> Path:
    folder = tmp_path_factory.mktemp("bundle") / "bundle"
    small_model.save(folder)
    return folder


def _no_pin_env() -> dict[str, str]:
    return {"BENTOML_HOME": "", MODEL_TAG_ENV: "", "CREDIT_SCORING_SERVE_CONFIG": ""}


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    "tag", ["credit-scoring:latest", "credit-scoring", "other-model:abc", "credit-scoring:"]
)
def test_only_an_exact_tag_of_the_project_model_can_be_served(tag):
    """`:latest`, a bare name, another model or an empty version: refused with the fix."""
    with pytest.raises(ServeConfigError, match="credit-scoring package"):
        check_tag(tag)


def test_no_pin_means_no_config(tmp_path):
    """Neither a serve config file nor the env var: the service has nothing to load."""
    with pytest.raises(ServeConfigError, match="no served model pinned"):
        ServeConfig.load({})


def test_the_environment_overrides_the_pinned_file(tmp_path):
    """CREDIT_SCORING_MODEL_TAG and CREDIT_SCORING_AUTH win over the file `package` wrote."""
    doc = serve_config_document(
        {"tag": "credit-scoring:aaa"}, ServeParams().auth, ServeParams().audit
    )
    (tmp_path / "serve_config.json").write_text(json.dumps(doc))
    assert ServeConfig.load({}).model_tag == "credit-scoring:aaa"
    cfg = ServeConfig.load({MODEL_TAG_ENV: "credit-scoring:bbb", "CREDIT_SCORING_AUTH": "none"})
    assert (cfg.model_tag, cfg.auth.mode) == ("credit-scoring:bbb", "none")


def test_a_password_in_the_audit_url_is_not_written_to_the_config():
    """Secrets stay in the environment: a db_url with a password is refused at package time."""
    serve = ServeParams(audit={"db_url": "postgresql+psycopg://u:secret@db/audit"})
    with pytest.raises(ServeConfigError, match="CREDIT_SCORING_AUDIT_DB_URL"):
        serve_config_document({"tag": "credit-scoring:a"}, serve.auth, serve.audit)


# --------------------------------------------------------------------------- real serve


def test_restart_serves_the_pinned_model_not_the_stores_latest(tmp_path, bundle):
    """Run A is packaged and pinned here; run B then lands in the same (shared) store and is
    its latest. `bentoml serve` answers with run A, and still does after a restart; pinning
    run B (packaging again) and restarting switches it to B."""
    home = tmp_path / "shared-bentoml"
    project = tmp_path / "checkout"
    project.mkdir()
    config = project / "serve_config.json"
    tag_a = package(home, bundle, "3", "run-aaaa", config)
    tag_b = package(home, bundle, "4", "run-bbbb", None)  # another checkout's package
    assert tag_a != tag_b
    pinned = json.loads(config.read_text())["model"]
    assert pinned["tag"] == tag_a and pinned["run_id"] == "run-aaaa"
    assert pinned["registry_version"] == "3" and len(pinned["bundle_sha256"]) == 64
    env = {**_no_pin_env(), "BENTOML_HOME": str(home)}
    for attempt in ("first start", "restart"):
        with serving(project, env, tmp_path / f"{attempt}.log") as client:
            info = client.post("/model", json={}).json()
            assert info["run_id"] == "run-aaaa", attempt
            assert info["bento_model"] == tag_a, attempt
            assert info["model_version"] == "3@run-aaaa", "registry version and run id"
    package(home, bundle, "4", "run-bbbb", config)  # package again here: pin moves
    with serving(project, env, tmp_path / "repinned.log") as client:
        assert client.post("/model", json={}).json()["run_id"] == "run-bbbb"


def test_an_unpinned_service_refuses_to_start(tmp_path, bundle):
    """A store holding a model but no pin (no serve config, no env tag): `bentoml serve`
    exits with the reason instead of loading `:latest`."""
    home = tmp_path / "bentoml"
    package(home, bundle, "1", "run-x", None)
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.run(
            [*SERVE, "--host", "127.0.0.1", "--port", str(_free_port())],
            env={**os.environ, **_no_pin_env(), "BENTOML_HOME": str(home)},
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            timeout=120,
        )
    assert proc.returncode != 0
    assert "no served model pinned" in log.read_text()


BUILD = """
import sys
from credit_scoring.tracking.bento import build_bento
print(build_bento(sys.argv[1], {"mlflow_version": "3"}, sys.argv[2]))
"""


def test_the_bento_carries_the_pinned_tag_and_only_that_model(tmp_path, bundle):
    """`package`'s Bento build: the Bento's environment names the pinned tag (so a Bento
    served anywhere loads exactly it) and it packs that model, not the store's latest."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    home = tmp_path / "bentoml"
    tag_a = package(home, bundle, "3", "run-aaaa", None)
    package(home, bundle, "4", "run-bbbb", None)  # the store's latest
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, str(repo), tag_a],
        env={**os.environ, **_no_pin_env(), "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, version = proc.stdout.strip().splitlines()[-1].split(":")
    meta = yaml.safe_load((home / "bentos" / name / version / "bento.yaml").read_text())
    envs = {e["name"]: e.get("value") for e in meta.get("envs", [])}
    assert envs[MODEL_TAG_ENV] == tag_a
    packed = [m["tag"] for s in meta["services"] for m in s["models"]]
    assert packed == [tag_a], "the pinned model only"


def test_every_200_answer_in_the_served_openapi_document_has_a_schema(tmp_path, bundle):
    """A real `bentoml serve`'s /docs.json documents each scoring route's 200 answer with
    its pydantic model (an object schema with its fields), never a bare "string", and the
    document has no duplicate keys (BentoML's int status keys beside ours) (#15)."""
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    package(home, bundle, "1", "run-docs", project / "serve_config.json")
    with serving(project, {**_no_pin_env(), "BENTOML_HOME": str(home)}, tmp_path / "s.log") as c:
        raw = c.get("/docs.json").text
    duplicates: list[str] = []

    def pairs(items: list) -> dict:
        keys = [k for k, _ in items]
        duplicates.extend(k for k in set(keys) if keys.count(k) > 1)
        return dict(items)

    doc = json.loads(raw, object_pairs_hook=pairs)
    assert not duplicates, f"duplicate keys in /docs.json (Swagger UI refuses it): {duplicates}"
    routes = ("/score", "/score_batch", "/score_events", "/score_features", "/advice", "/model")
    for route in routes:
        ok = doc["paths"][route]["post"]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        if "$ref" in schema:  # inline or a reference, either is a documented object
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert schema.get("type") == "object" and schema.get("properties"), (route, schema)
