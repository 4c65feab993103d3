"""Load test of the BentoML service against a minimal FastAPI + LightGBM baseline.

Both servers serve the same model on this machine, in the same run; the load comes from
this separate process (asyncio + httpx). Scenarios, for each server:

- ``single_reasons_50rps`` / ``single_noreasons_50rps``: one person per request, open
  loop at 50 requests/s (latency under a steady rate);
- ``single_reasons_max``: closed loop with 8 concurrent clients (sustained throughput);
- ``batch_100`` / ``batch_1000``: 100 or 1,000 people per request, one client.

Targets: single with reasons p50 <= 10 ms and p99 <= 30 ms at 50 req/s; >= 150 req/s
sustained with reasons; p50 within 1.5x of the baseline.

Usage::

    .venv/bin/python benchmarks/bench_service.py                       # trains on 30,000
    .venv/bin/python benchmarks/bench_service.py --model models/bundle

Writes ``benchmarks/results/service.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "service.json"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def _pct(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


async def _open_loop(client, path, bodies, rate: float, seconds: float) -> dict:
    """Requests started at a fixed rate regardless of responses; latency of each."""
    n = int(rate * seconds)
    lat: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        r = await client.post(path, json=bodies[i % len(bodies)])
        lat.append((time.perf_counter() - t0) * 1000)
        errors += r.status_code != 200

    start = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    return {**_pct(lat), "rps": round(n / wall, 1), "errors": errors, "target_rps": rate}


async def _closed_loop(client, path, bodies, concurrency: int, seconds: float) -> dict:
    """``concurrency`` clients sending back to back for ``seconds``: sustained throughput."""
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await client.post(path, json=bodies[i % len(bodies)])
            lat.append((time.perf_counter() - t0) * 1000)
            errors += r.status_code != 200
            i += concurrency

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - start
    return {**_pct(lat), "rps": round(len(lat) / wall, 1), "errors": errors}


async def _scenarios(url: str, people: list[dict], seconds: float) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        single_r = [{"features": p, "with_reasons": True} for p in people]
        single_n = [{"features": p, "with_reasons": False} for p in people]
        for body in single_r[:50]:  # warm-up
            await client.post("/score", json=body)
        out = {
            "single_reasons_50rps": await _open_loop(client, "/score", single_r, 50, seconds),
            "single_noreasons_50rps": await _open_loop(client, "/score", single_n, 50, seconds),
            "single_reasons_max": await _closed_loop(client, "/score", single_r, 8, seconds),
        }
        for size in (100, 1000):
            bodies = [
                {"people": [people[(k * size + j) % len(people)] for j in range(size)]}
                for k in range(10)
            ]
            res = await _closed_loop(client, "/score_batch", bodies, 1, seconds)
            res["people_per_s"] = round(res["rps"] * size)
            out[f"batch_{size}"] = res
    return out


def _model_bundle(args, tmp: Path) -> tuple[Path, list[dict]]:
    """The bundle to serve and a pool of real feature rows to send."""
    sys.path.insert(0, str(HERE))
    from bench_decisions import _train_model

    from credit_scoring.decision.bundle import CreditModel

    if args.model:
        model = CreditModel.load(args.model)
        from credit_scoring.config import BaseParams, SimulateParams
        from credit_scoring.data.simulate import simulate_world
        from credit_scoring.features.compute import compute_features

        data, _ = simulate_world(SimulateParams(n_users=5000, chunk_size=5000), BaseParams())
        table = compute_features(data)
        bundle = Path(args.model)
    else:
        model, table = _train_model(args.n_users)
        bundle = model.save(tmp / "bundle")
    rows = table[model.feature_names].sample(2000, random_state=0)
    people = [
        {k: (None if np.isnan(v) else float(v)) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    return bundle, people


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="A bundle folder (default: train one).")
    ap.add_argument("--n-users", type=int, default=30_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="Length of each scenario.")
    args = ap.parse_args()

    from credit_scoring.telemetry import disable_telemetry

    disable_telemetry()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        bundle, people = _model_bundle(args, tmp)
        env = {**os.environ, "BENTOML_HOME": str(tmp / "bentoml"), "BUNDLE": str(bundle)}
        tag = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from credit_scoring.tracking.bento import import_bundle; "
                "print(import_bundle(sys.argv[1], None, 1000))",
                str(bundle),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # the pinned tag; auth and the audit log off: this measures the scoring path
        env |= {
            "CREDIT_SCORING_MODEL_TAG": tag,
            "CREDIT_SCORING_AUTH": "none",
            "CREDIT_SCORING_AUDIT": "off",
        }
        results: dict[str, dict] = {}
        servers = {
            "bentoml": (
                [str(BIN / "bentoml"), "serve", "credit_scoring.serving.service:CreditScoring"],
                "--port",
                "/readyz",
            ),
            "fastapi_baseline": (
                [
                    str(BIN / "uvicorn"),
                    "baseline_fastapi:app",
                    "--app-dir",
                    str(HERE),
                    "--log-level",
                    "warning",
                ],
                "--port",
                "/docs",
            ),
        }
        for name, (cmd, port_flag, ready) in servers.items():
            port = _free_port()
            log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(
                [*cmd, "--host", "127.0.0.1", port_flag, str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_ready(url, proc, ready)
                print(f"benchmarking {name} ...", flush=True)
                results[name] = asyncio.run(_scenarios(url, people, args.seconds))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                log.close()

    b, f = results["bentoml"], results["fastapi_baseline"]
    single = b["single_reasons_50rps"]
    checks = {
        "single_reasons_p50_le_10ms": single["p50_ms"] <= 10,
        "single_reasons_p99_le_30ms": single["p99_ms"] <= 30,
        "sustained_reasons_ge_150rps": b["single_reasons_max"]["rps"] >= 150,
        "p50_within_1.5x_baseline": single["p50_ms"] <= 1.5 * f["single_reasons_50rps"]["p50_ms"],
    }
    report = {
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "seconds_per_scenario": args.seconds,
        "results": results,
        "p50_ratio_vs_baseline": round(single["p50_ms"] / f["single_reasons_50rps"]["p50_ms"], 2),
        "targets_met": checks,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'scenario':26} {'server':17} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for scen in b:
        for name, res in results.items():
            r = res[scen]
            print(f"{scen:26} {name:17} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f}")
    print(json.dumps(checks, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
