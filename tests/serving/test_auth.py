"""Authentication of the service, against a real `bentoml serve` with minted API keys.

Proves: the health probes answer anyone and every other route (the scoring APIs, /model,
/metrics, /docs.json, the Swagger UI) answers 401 with `WWW-Authenticate: Bearer` and a
body that does not say what was wrong; a minted key is accepted and every answer carries
its request id; the keys file holds hashes only; the service refuses to start without keys
unless authentication is explicitly off; tokens and person references never reach the
log. The trusted-header (gateway) and `none` modes are shown on the ASGI middleware alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from credit_scoring.config import ServeAuditParams, ServeAuthParams
from credit_scoring.serving.auth import (
    REQUEST,
    Authenticator,
    AuthMiddleware,
    load_keys,
    mint_key,
    revoke_key,
    token_hash,
)
from credit_scoring.serving.serve_config import ServeConfig, ServeConfigError

BIN = Path(sys.executable).parent
SERVE = [str(BIN / "bentoml"), "serve", "credit_scoring.serving.service:CreditScoring"]
PROTECTED = [
    ("POST", "/score", {"features": {}}),
    ("POST", "/score_batch", {"people": [{}]}),
    ("POST", "/advice", {"features": {}}),
    ("POST", "/model", {}),
    ("GET", "/metrics", None),
    ("GET", "/docs.json", None),
    ("GET", "/", None),
    ("GET", "/docs", None),
    ("POST", "/no_such_route", {}),
]
UNAUTHORIZED = {"error": "unauthorized"}

#: Import the bundle into BENTOML_HOME and pin it with API-key auth and a keys file.
PACKAGE = """
import sys
from credit_scoring.config import ServeParams
from credit_scoring.tracking.bento import RegistryModel, import_bundle, write_serve_config
bundle, config = sys.argv[1:3]
tag = import_bundle(bundle, RegistryModel("credit-scoring", "7", "champion", "run-auth"), 50)
write_serve_config(ServeParams(auth={"mode": "api_key", "keys_file": "keys.json"}), tag, config)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(project: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "true", **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=project,
        )
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_model) -> Path:
    """A checkout with the small model packaged (pinned, api_key auth) and two clients' keys."""
    root = tmp_path_factory.mktemp("auth")
    small_model.save(root / "bundle")
    (root / "project").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", PACKAGE, str(root / "bundle"), str(root / "project/serve.json")],
        env={**os.environ, "BENTOML_HOME": str(root / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def tokens(project) -> dict[str, str]:
    return {c: mint_key(c, project / "project/keys.json")[0] for c in ("origination", "collect")}


@pytest.fixture(scope="module")
def server(project, tokens):
    """`bentoml serve` with API-key auth; yields (base url, serve log)."""
    env = {
        "BENTOML_HOME": str(project / "home"),
        "CREDIT_SCORING_SERVE_CONFIG": str(project / "project/serve.json"),
    }
    log = project / "serve.log"
    proc, url = _start(project / "project", env, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"bentoml serve exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready in 90 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield url, log
    finally:
        _stop(proc)


def _call(url: str, method: str, path: str, body, headers=None) -> httpx.Response:
    return httpx.request(method, url + path, json=body, headers=headers or {}, timeout=30)


# --------------------------------------------------------------------------- real serve


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_probes_answer_without_credentials(server, path):
    """The orchestrator's probes need no key (they reveal nothing)."""
    url, _ = server
    assert httpx.get(url + path, timeout=10).status_code == 200


def test_every_other_route_is_401_with_a_bearer_challenge_and_no_detail(server):
    """Scoring, /model, /metrics, /docs.json, the Swagger UI, even unknown routes: 401, a
    `WWW-Authenticate: Bearer` header and the same one-word body."""
    url, _ = server
    for method, path, body in PROTECTED:
        r = _call(url, method, path, body)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer"), path
        assert r.json() == UNAUTHORIZED, path


def test_wrong_credentials_of_every_kind_get_the_same_401(server, tokens):
    """A wrong secret under a real key id, an unknown key id, garbage, another scheme and a
    token with a trailing char: all the same answer, so nothing tells which part was wrong."""
    url, _ = server
    good = tokens["origination"]
    bad = [
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "csk_0000000000000000_" + good.split("_", 2)[2],
        "not-a-token",
        good + "x",
    ]
    headers = [{"Authorization": f"Bearer {t}"} for t in bad]
    headers.append({"Authorization": f"Basic {good}"})
    for h in headers:
        r = _call(url, "POST", "/score", {"features": {}}, h)
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED), h


def test_a_minted_key_is_accepted_everywhere_and_each_answer_has_its_request_id(server, tokens):
    """Each client's key scores, reads /model, /metrics and /docs.json; every answer carries
    an X-Request-ID, unique per request."""
    url, _ = server
    ids = set()
    for token in tokens.values():
        h = {"Authorization": f"Bearer {token}"}
        for method, path, body in PROTECTED[:6]:
            r = _call(url, method, path, body, h)
            assert r.status_code == 200, (path, r.text[:300])
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), path
            ids.add(r.headers["x-request-id"])
    assert len(ids) == 2 * 6, "one request id per request"


def test_a_malformed_person_reference_is_a_400_before_anything_is_decided(server, tokens):
    """X-Person-Ref carries opaque ids only (no spaces, names or PII-looking free text)."""
    url, _ = server
    h = {"Authorization": f"Bearer {tokens['collect']}", "X-Person-Ref": "Jane Doe 1985"}
    r = _call(url, "POST", "/score", {"features": {}}, h)
    assert r.status_code == 400 and "X-Person-Ref" in r.json()["error"]


def test_the_log_holds_no_token_and_no_person_reference(server, tokens):
    """After an accepted and a refused call, the serve log names neither a token, nor a
    person reference, nor a feature value, nor the request id (it joins to the audit log)."""
    url, log = server
    token = tokens["origination"]
    h = {"Authorization": f"Bearer {token}", "X-Person-Ref": "p-7d1c9e"}
    r = _call(url, "POST", "/score", {"features": {"n_repayments_365d": 8317.0}}, h)
    assert r.status_code == 200, r.text[:300]
    _call(url, "POST", "/score", {"features": {}}, {"Authorization": f"Bearer {token}x"})
    time.sleep(0.5)
    text = log.read_text()
    for secret in (token, token.split("_", 2)[2], "p-7d1c9e", "8317", r.headers["x-request-id"]):
        assert secret not in text, secret


def test_keys_file_holds_salted_hashes_never_tokens(project, tokens):
    """Each record: key id, client id, salt, HMAC-SHA256; the token is nowhere in the file,
    and the file is readable by its owner only."""
    path = project / "project/keys.json"
    text = path.read_text()
    keys = load_keys(text)
    assert {k["client_id"] for k in keys} == set(tokens)
    for client, token in tokens.items():
        assert token not in text and token.split("_", 2)[2] not in text
        (key,) = [k for k in keys if k["client_id"] == client]
        assert token_hash(token, bytes.fromhex(key["salt"])) == key["hmac_sha256"]
    assert len({k["salt"] for k in keys}) == len(keys), "a salt per key"
    assert path.stat().st_mode & 0o077 == 0


def test_without_keys_the_service_refuses_to_start(project, tmp_path):
    """api_key mode and no keys anywhere: `bentoml serve` never becomes ready and the log
    says how to mint a key or switch auth off for local use."""
    empty = tmp_path / "project"
    empty.mkdir()
    cfg = json.loads((project / "project/serve.json").read_text())
    (empty / "serve.json").write_text(json.dumps(cfg))
    env = {
        "BENTOML_HOME": str(project / "home"),
        "CREDIT_SCORING_SERVE_CONFIG": str(empty / "serve.json"),
        "CREDIT_SCORING_API_KEYS": "",
    }
    log = tmp_path / "serve.log"
    proc, url = _start(empty, env, log)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                assert httpx.get(f"{url}/readyz", timeout=1).status_code != 200
            if "no API keys" in log.read_text():
                break
            time.sleep(0.5)
        assert "no API keys" in log.read_text(), log.read_text()[-3000:]
        assert "api-key mint" in log.read_text()
    finally:
        _stop(proc)


# --------------------------------------------------------------------------- middleware


def _app(auth: dict, keys_json: str | None = None) -> TestClient:
    async def whoami(request):
        info = REQUEST.get()
        return JSONResponse({"client": info.client_id, "refs": list(info.person_refs)})

    config = ServeConfig(
        model_tag="credit-scoring:x",
        auth=ServeAuthParams(**auth),
        audit=ServeAuditParams(),
        base_dir=Path.cwd(),
        keys_json=keys_json,
    )
    app = Starlette(routes=[Route("/who", whoami), Route("/healthz", whoami)])
    app.add_middleware(AuthMiddleware, config=config)
    return TestClient(app)


def test_trusted_header_mode_takes_the_client_from_the_gateway():
    """Behind an OAuth2/mTLS gateway: the gateway's header names the client; without it 401."""
    client = _app({"mode": "trusted_header", "trusted_header": "X-Authenticated-Client"})
    r = client.get("/who", headers={"X-Authenticated-Client": "branch-app", "X-Person-Ref": "a,b"})
    assert r.json() == {"client": "branch-app", "refs": ["a", "b"]}
    assert client.get("/who").status_code == 401
    assert client.get("/who", headers={"X-Authenticated-Client": "bad id!"}).status_code == 401


def test_auth_off_must_be_asked_for_and_then_serves_anonymous(tmp_path):
    """mode none (explicit): every call is 'anonymous'; api_key mode without keys raises."""
    assert _app({"mode": "none"}).get("/who").json()["client"] == "anonymous"
    with pytest.raises(ServeConfigError, match="no API keys"):
        # Starlette builds its middleware at the first event (in `bentoml serve`: startup)
        _app({"mode": "api_key", "keys_file": str(tmp_path / "absent.json")}).get("/who")


def test_keys_from_the_environment_and_a_revoked_key(tmp_path):
    """CREDIT_SCORING_API_KEYS holds the keys JSON inline; a revoked key no longer passes."""
    path = tmp_path / "keys.json"
    keep, _ = mint_key("keep", path)
    gone, record = mint_key("gone", path)
    assert revoke_key(record["key_id"], path) and not revoke_key(record["key_id"], path)
    auth = Authenticator.from_config(
        ServeConfig(
            "credit-scoring:x",
            ServeAuthParams(),
            ServeAuditParams(),
            tmp_path,
            keys_json=path.read_text(),
        )
    )
    assert auth.client([(b"authorization", f"Bearer {keep}".encode())]) == "keep"
    assert auth.client([(b"authorization", f"Bearer {gone}".encode())]) is None


def test_the_mint_command_prints_the_token_once_and_stores_its_hash(tmp_path):
    """`credit-scoring api-key mint`: stdout is the token; the keys file authenticates it."""
    from credit_scoring.cli import app

    path = tmp_path / "secrets/keys.json"
    result = CliRunner().invoke(
        app, ["api-key", "mint", "--client-id", "cli-test", "--keys-file", str(path)]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("csk_") and token not in path.read_text()
    auth = Authenticator("api_key", load_keys(path.read_text()))
    assert auth.client([(b"authorization", f"Bearer {token}".encode())]) == "cli-test"
