"""A real `bentoml serve` for the serving tests: the small model of the root conftest,
imported into a temporary BENTOML_HOME (never the user's), served on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

BIN = Path(sys.executable).parent
MAX_BATCH = 50  # small, so the too-large tests are cheap
READY_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running `bentoml serve`: its process, URL and log file."""

    proc: subprocess.Popen
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def bentoml_serve(home: Path, log: Path, env: dict | None = None) -> Iterator[Served]:
    """`bentoml serve credit_scoring.serving.service:CreditScoring` until the block ends
    (SIGTERM, then SIGKILL after 30 s). It serves the tag pinned beside ``home`` (as
    `package` pins it), with auth off unless ``env`` says otherwise: these tests are about
    the contract, limits and resilience (tests/serving/test_auth.py tests auth)."""
    port = free_port()
    full_env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "CREDIT_SCORING_MODEL_TAG": (home.parent / "tag").read_text().strip(),
        "CREDIT_SCORING_AUTH": "none",
        **(env or {}),
    }
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [
                str(BIN / "bentoml"),
                "serve",
                "credit_scoring.serving.service:CreditScoring",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=full_env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=home.parent,
        )
    url = f"http://127.0.0.1:{port}"
    served = Served(proc, url, log)
    try:
        # generous: on a shared 2-core machine two workers have taken over 2 minutes to start
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"bentoml serve exited:\n{served.log_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"not ready in {READY_TIMEOUT_S} s:\n{served.log_text()[-3000:]}"
            )
            time.sleep(0.3)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def import_to_home(bundle_dir: Path, root: Path, max_batch: int = MAX_BATCH) -> Path:
    """A BENTOML_HOME under ``root`` holding ``bundle_dir``, imported as `package` does, with
    the imported tag pinned beside it (``root / "tag"``, read by :func:`bentoml_serve`)."""
    home = root / "home"
    code = (
        "import sys; from credit_scoring.tracking.bento import import_bundle; "
        f"print(import_bundle(sys.argv[1], None, {max_batch}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bundle_dir)],
        env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (root / "tag").write_text(proc.stdout.strip())  # the service serves exactly this tag
    return home


@pytest.fixture(scope="session")
def serve_tools() -> SimpleNamespace:
    """The helpers above, for test modules that serve a model of their own."""
    return SimpleNamespace(import_to_home=import_to_home, bentoml_serve=bentoml_serve)


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory, small_model) -> Path:
    """A temporary BENTOML_HOME holding the small model, imported as `package` does."""
    root = tmp_path_factory.mktemp("bento")
    small_model.save(root / "bundle")
    return import_to_home(root / "bundle", root)


@pytest.fixture(scope="session")
def served(bentoml_home, tmp_path_factory) -> Iterator[Served]:
    """One server shared by the serving tests (session scope: started once)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with bentoml_serve(bentoml_home, log) as s:
        yield s


@pytest.fixture(scope="session")
def server(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def max_batch() -> int:
    """serve.max_batch of the served model."""
    return MAX_BATCH


@pytest.fixture(scope="session")
def serve():
    """:func:`bentoml_serve`, for tests that need a server of their own (kill, SIGTERM)."""
    return bentoml_serve
