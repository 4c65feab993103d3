"""Load test of the BentoML service against a minimal FastAPI + LightGBM baseline.

Both servers serve the same model on this machine, in the same run; the load comes from
this separate process (asyncio + httpx). Scenarios, for each server:

- ``single_reasons_50rps`` / ``single_noreasons_50rps``: one person per request, open
  loop at 50 requests/s (latency under a steady rate);
- ``single_reasons_max``: closed loop with 16 concurrent clients (flat-out throughput);
- ``batch_100`` / ``batch_1000``: 100 or 1,000 people per request, one client;

and for the BentoML service only:

- ``soak``: 50 requests/s with reasons for ``--soak-seconds`` (150 by default; the
  10-minute soak of issue #14 is ``--soak-seconds 600``): errors, and the memory (RSS)
  of the whole server process tree every 5 s;
- ``kill_worker``: 50 requests/s (2 s client timeout) while one worker gets ``kill -9``
  ten seconds in: failed requests, the time until a new worker is up, and the model card
  before and after (it must not change).

Both servers get the same cores: BentoML runs ``--workers`` workers (one per core by
default, as the service is configured) and the baseline runs as many uvicorn workers.
The load generator shares the machine: the load average before each server is recorded.

Targets (issue #14): single with reasons p99 <= 15 ms at 50 req/s; flat-out throughput
with reasons >= 0.6x the baseline's; the soak with 0 errors and flat memory.

Usage::

    .venv/bin/python benchmarks/bench_service.py                       # trains on 30,000
    .venv/bin/python benchmarks/bench_service.py --model models/bundle
    .venv/bin/python benchmarks/bench_service.py --soak-seconds 600    # the 10-minute soak

Writes ``benchmarks/results/service.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import psutil

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
            "single_reasons_max": await _closed_loop(client, "/score", single_r, 16, seconds),
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


def _tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its children, MiB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


def _worker_pids(pid: int) -> list[int]:
    """Live BentoML worker processes under `bentoml serve`."""
    pids = []
    for c in psutil.Process(pid).children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker.service" in " ".join(
                c.cmdline()
            ):
                pids.append(c.pid)
        except psutil.Error:
            continue
    return pids


async def _soak(url: str, pid: int, people: list[dict], seconds: float) -> dict:
    """50 req/s with reasons for ``seconds``; errors and tree RSS every 5 s."""
    bodies = [{"features": p, "with_reasons": True} for p in people]
    memory: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            memory.append((round(time.perf_counter() - t0, 1), _tree_rss_mib(pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        sampler = asyncio.create_task(sample())
        res = await _open_loop(client, "/score", bodies, 50, seconds)
        stop.set()
        await sampler
    rss = [m for _, m in memory]
    third = max(1, len(rss) // 3)
    return {
        **res,
        "seconds": seconds,
        "rss_mib": memory,
        "rss_first_third_mean_mib": round(float(np.mean(rss[:third])), 1),
        "rss_last_third_mean_mib": round(float(np.mean(rss[-third:])), 1),
    }


async def _kill_worker(url: str, pid: int, people: list[dict], seconds: float = 30) -> dict:
    """50 req/s (2 s client timeout); ``kill -9`` of one worker 10 s in."""
    bodies = [{"features": p, "with_reasons": True} for p in people]
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=2, limits=limits) as client:
        card_before = (await client.post("/model", json={})).json()
        workers = _worker_pids(pid)
        failures: list[tuple[float, str]] = []
        n = int(50 * seconds)
        start = time.perf_counter()
        kill_at = start + 10
        killed: dict[str, float] = {}

        async def one(i: int) -> None:
            t = time.perf_counter() - start
            try:
                r = await client.post("/score", json=bodies[i % len(bodies)])
                if r.status_code != 200:
                    failures.append((round(t, 2), str(r.status_code)))
            except httpx.HTTPError as err:
                failures.append((round(t, 2), type(err).__name__))

        async def killer() -> None:
            await asyncio.sleep(max(0.0, kill_at - time.perf_counter()))
            victim = workers[0]
            os.kill(victim, 9)
            killed["at"] = time.perf_counter()
            while True:
                now = _worker_pids(pid)
                if len(now) >= len(workers) and victim not in now:
                    break
                await asyncio.sleep(0.05)
            # the new worker is up; it is serving once a request lands on it
            killed["replaced_s"] = round(time.perf_counter() - killed["at"], 2)

        kill_task = asyncio.create_task(killer())
        tasks = []
        for i in range(n):
            delay = start + i / 50 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await kill_task
        await asyncio.sleep(2)
        cards_after = [(await client.post("/model", json={})).json() for _ in range(6)]
    kill_t = round(killed["at"] - start, 2)
    last_failure = max((t for t, _ in failures), default=None)
    return {
        "requests": n,
        "failed": len(failures),
        "failures": failures[:50],
        "workers": len(workers),
        "killed_at_s": kill_t,
        "worker_replaced_after_s": killed.get("replaced_s"),
        "last_failure_after_kill_s": (
            round(last_failure - kill_t, 2) if last_failure is not None else None
        ),
        "model_unchanged": all(c == card_before for c in cards_after),
        "model": {k: card_before.get(k) for k in ("bento_model", "model_version", "trained_at")},
    }


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
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Workers of each server (default: one per core, as the service is configured).",
    )
    ap.add_argument(
        "--soak-seconds",
        type=float,
        default=150.0,
        help="Length of the soak at 50 req/s (600 = the 10-minute soak; 0 = skip).",
    )
    ap.add_argument("--no-kill", action="store_true", help="Skip the kill -9 scenario.")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Results JSON.")
    args = ap.parse_args()

    from credit_scoring.telemetry import disable_telemetry

    disable_telemetry()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        bundle, people = _model_bundle(args, tmp)
        env = {
            **os.environ,
            "BENTOML_HOME": str(tmp / "bentoml"),
            "BUNDLE": str(bundle),
            "BENTOML_CONFIG_OPTIONS": f"services.credit_scoring.workers={args.workers}",
        }
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
        load: dict[str, list[float]] = {}
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
                    "--workers",
                    str(args.workers),
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
                load[name] = [round(x, 2) for x in os.getloadavg()]
                print(f"benchmarking {name} (load {load[name]}) ...", flush=True)
                results[name] = asyncio.run(_scenarios(url, people, args.seconds))
                if name == "bentoml":
                    results[name]["workers_seen"] = len(_worker_pids(proc.pid))
                    if args.soak_seconds > 0:
                        print(f"soak {args.soak_seconds:.0f} s ...", flush=True)
                        results[name]["soak"] = asyncio.run(
                            _soak(url, proc.pid, people, args.soak_seconds)
                        )
                    if not args.no_kill:
                        print("kill -9 of a worker under load ...", flush=True)
                        results[name]["kill_worker"] = asyncio.run(
                            _kill_worker(url, proc.pid, people)
                        )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                log.close()

    b, f = results["bentoml"], results["fastapi_baseline"]
    single = b["single_reasons_50rps"]
    ratio = b["single_reasons_max"]["rps"] / f["single_reasons_max"]["rps"]
    checks = {
        "single_reasons_p99_le_15ms": single["p99_ms"] <= 15,
        "throughput_ge_0.6x_baseline": ratio >= 0.6,
        "p50_within_1.5x_baseline": single["p50_ms"] <= 1.5 * f["single_reasons_50rps"]["p50_ms"],
    }
    if "soak" in b:
        soak = b["soak"]
        checks["soak_0_errors"] = soak["errors"] == 0
        checks["soak_memory_flat_within_10pct"] = (
            soak["rss_last_third_mean_mib"] <= 1.1 * soak["rss_first_third_mean_mib"]
        )
    if "kill_worker" in b:
        checks["kill_model_unchanged"] = b["kill_worker"]["model_unchanged"]
    report = {
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15_before": load,
            "note": "2 cores shared with other jobs while measured: numbers are noisy",
        },
        "workers": args.workers,
        "seconds_per_scenario": args.seconds,
        "results": results,
        "p50_ratio_vs_baseline": round(single["p50_ms"] / f["single_reasons_50rps"]["p50_ms"], 2),
        "throughput_ratio_vs_baseline": round(ratio, 2),
        "targets_met": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'scenario':26} {'server':17} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for scen in ("single_reasons_50rps", "single_noreasons_50rps", "single_reasons_max"):
        for name, res in results.items():
            r = res[scen]
            print(f"{scen:26} {name:17} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f}")
    for scen in ("batch_100", "batch_1000"):
        for name, res in results.items():
            r = res[scen]
            print(f"{scen:26} {name:17} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f}")
    if "soak" in b:
        sk = b["soak"]
        print(
            f"soak {sk['seconds']:.0f} s: {sk['n']} requests, {sk['errors']} errors, p99 "
            f"{sk['p99_ms']} ms, RSS {sk['rss_first_third_mean_mib']} -> "
            f"{sk['rss_last_third_mean_mib']} MiB"
        )
    if "kill_worker" in b:
        k = b["kill_worker"]
        print(
            f"kill -9: {k['failed']}/{k['requests']} failed, worker replaced after "
            f"{k['worker_replaced_after_s']} s, model unchanged: {k['model_unchanged']}"
        )
    print(json.dumps(checks, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
