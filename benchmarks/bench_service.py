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


def _wait_ready(url: str, proc: subprocess.Popen, path: str, timeout: float = 600) -> None:
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


async def _open_loop(
    client, path, bodies, rate: float, seconds: float, answered: dict | None = None
) -> dict:
    """Requests started at a fixed rate regardless of responses; latency of each. With
    ``answered``, each 200's ``X-Request-ID`` -> its score (for the audit join)."""
    n = int(rate * seconds)
    lat: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        r = await client.post(path, json=bodies[i % len(bodies)])
        lat.append((time.perf_counter() - t0) * 1000)
        errors += r.status_code != 200
        if answered is not None and r.status_code == 200:
            answered[r.headers.get("x-request-id", "")] = r.json()["score"]

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


async def _paced(
    url: str, path: str, bodies, rate: float, seconds: float, answered: dict, timeout: float
) -> dict:
    """An open loop for long runs: request ``i`` is due at ``i / rate`` s and is sent by
    one of 32 senders, each with its own connection (a new client after an error), and its
    latency counts from when it was due. One shared httpx pool was not usable here: under
    a loaded machine it lost its connections after timeouts and the whole soak stalled."""
    n = int(rate * seconds)
    lat: list[float] = []
    errors: list[str] = []
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    start = time.perf_counter()

    async def sender() -> None:
        client = httpx.AsyncClient(base_url=url, timeout=timeout)
        try:
            while (i := await queue.get()) is not None:
                due = start + i / rate
                try:
                    r = await client.post(path, json=bodies[i % len(bodies)])
                except httpx.HTTPError as err:
                    errors.append(type(err).__name__)
                    await client.aclose()
                    client = httpx.AsyncClient(base_url=url, timeout=timeout)
                    continue
                lat.append((time.perf_counter() - due) * 1000)
                if r.status_code != 200:
                    errors.append(str(r.status_code))
                else:
                    answered[r.headers.get("x-request-id", "")] = r.json()["score"]
        finally:
            await client.aclose()

    senders = [asyncio.create_task(sender()) for _ in range(32)]
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    wall = time.perf_counter() - start
    return {
        **_pct(lat),
        "rps": round(len(lat) / wall, 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "target_rps": rate,
        "latency_from": "the time each request was due (open loop, 32 senders)",
    }


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


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a server process and all its children so far."""
    total = 0.0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


async def _timed_cpu(pid: int, run) -> dict:
    """``run``'s result plus the server's CPU milliseconds per request: far less sensitive
    than wall-clock latency to other jobs on a shared machine."""
    before = _tree_cpu_s(pid)
    res = await run
    res["server_cpu_ms_per_request"] = round((_tree_cpu_s(pid) - before) * 1000 / res["n"], 2)
    return res


async def _scenarios(
    url: str, pid: int, people: list[dict], seconds: float, which: set[str]
) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        single_r = [{"features": p, "with_reasons": True} for p in people]
        single_n = [{"features": p, "with_reasons": False} for p in people]
        for body in single_r[:50]:  # warm-up
            await client.post("/score", json=body)
        out = {}
        if "latency" in which:
            out["single_reasons_50rps"] = await _timed_cpu(
                pid, _open_loop(client, "/score", single_r, 50, seconds)
            )
            out["single_noreasons_50rps"] = await _timed_cpu(
                pid, _open_loop(client, "/score", single_n, 50, seconds)
            )
        if "max" in which:
            out["single_reasons_max"] = await _closed_loop(client, "/score", single_r, 16, seconds)
        for size in (100, 1000) if "batch" in which else ():
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


def _rss_mib(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


def _flat(series: list[float]) -> dict:
    """Mean of the first and last third of a series, and their ratio."""
    third = max(1, len(series) // 3)
    first, last = float(np.mean(series[:third])), float(np.mean(series[-third:]))
    return {
        "first_third_mean_mib": round(first, 1),
        "last_third_mean_mib": round(last, 1),
        "ratio": round(last / first, 3),
    }


async def _soak(url: str, pid: int, people: list[dict], seconds: float, answered: dict) -> dict:
    """50 req/s with reasons for ``seconds``; errors, and every 5 s the RSS of the whole
    tree and of each worker; each 200's request id and score go into ``answered``."""
    bodies = [{"features": p, "with_reasons": True} for p in people]
    memory: list[tuple[float, float]] = []
    workers = _worker_pids(pid)
    per_worker: dict[int, list[float | None]] = {w: [] for w in workers}
    stop = asyncio.Event()

    async def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            memory.append((round(time.perf_counter() - t0, 1), _tree_rss_mib(pid)))
            for w, series in per_worker.items():
                series.append(_rss_mib(w))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)

    sampler = asyncio.create_task(sample())
    res = await _paced(url, "/score", bodies, 50, seconds, answered, timeout=10)
    stop.set()
    await sampler
    tree = _flat([m for _, m in memory])
    workers_flat = {
        str(w): _flat([x for x in series if x is not None]) for w, series in per_worker.items()
    }
    return {
        **res,
        "seconds": seconds,
        "answered": len(answered),
        "rss_mib": memory,
        "worker_rss_mib": {str(w): series for w, series in per_worker.items()},
        "rss_first_third_mean_mib": tree["first_third_mean_mib"],
        "rss_last_third_mean_mib": tree["last_third_mean_mib"],
        "worker_rss_flat": workers_flat,
        "workers_restarted": sorted(set(_worker_pids(pid)) ^ set(workers)),
    }


async def _kill_worker(
    url: str, pid: int, people: list[dict], answered: dict, seconds: float = 30
) -> dict:
    """50 req/s (2 s client timeout); ``kill -9`` of one worker 10 s in. Each 200's request
    id -> (seconds after the start, score) goes into ``answered`` (for the audit check)."""
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
                else:
                    answered[r.headers.get("x-request-id", "")] = (round(t, 3), r.json()["score"])
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
        # several calls, so that the replacement worker answers some of them
        cards_after = [(await client.post("/model", json={})).json() for _ in range(10)]
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
        "model": {
            k: card_before.get(k) for k in ("bento_model", "model_version", "run_id", "trained_at")
        },
    }


def _audit_rows(db: Path) -> dict[str, tuple]:
    """request_id -> (route, score, bundle_sha256, bento_model, model_version) of every
    row of the audit database, read after the server has shut down."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT request_id, route, score, bundle_sha256, bento_model, model_version "
            "FROM decisions"
        ).fetchall()
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    out = {r[0]: r[1:] for r in rows}
    out["__integrity__"] = (integrity,)
    return out


def _join_soak(rows: dict[str, tuple], answered: dict[str, int]) -> dict:
    """How many of the soak's answered decisions are in the audit DB under their request
    id, with the score the client got."""
    joined = [rid for rid in answered if rid in rows]
    same = sum(rows[rid][1] == answered[rid] for rid in joined)
    return {
        "sent_answered_200": len(answered),
        "joined": len(joined),
        "joined_same_score": same,
        "missing": len(answered) - len(joined),
        "all_joined": len(joined) == len(answered) == same,
    }


def _join_kill(rows: dict[str, tuple], answered: dict, kill: dict, audit: dict) -> dict:
    """What the killed worker lost from the audit log: answered decisions missing from the
    database (all before the kill), against the documented bound; rows logged after the
    kill name the same model (tag, version, bundle hash) as before."""
    missing = sorted(t for rid, (t, _) in answered.items() if rid not in rows)
    kill_t = kill["killed_at_s"]
    after = {rows[rid][2:] for rid, (t, _) in answered.items() if rid in rows and t > kill_t}
    before = {rows[rid][2:] for rid, (t, _) in answered.items() if rid in rows and t <= kill_t}
    # one worker's share of 50 req/s over two flush intervals: the rows waiting for the
    # next flush plus the batch being committed when the worker died
    practical = int(np.ceil(50 / kill["workers"] * 2 * audit["flush_seconds"]))
    return {
        "answered_200": len(answered),
        "lost_rows": len(missing),
        "lost_rows_seconds_before_kill": [round(kill_t - t, 2) for t in missing[:50]],
        "lost_rows_after_kill": sum(t > kill_t for t in missing),
        "bound_queue_size": audit["queue_size"],
        "practical_bound_rows": practical,
        "within_queue_size_bound": len(missing) <= audit["queue_size"],
        "models_logged_before_kill": sorted(before),
        "models_logged_after_kill": sorted(after),
        "same_model_logged_after_kill": len(after) == 1 and after == before,
        "sqlite_integrity": rows["__integrity__"][0],
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
    ap.add_argument(
        "--scenarios",
        default="latency,max,batch",
        help="Comma-separated load scenarios to run on each server: latency (50 req/s with "
        "and without reasons), max (flat out), batch (100 and 1,000 people); '' for none.",
    )
    ap.add_argument("--no-baseline", action="store_true", help="Skip the FastAPI baseline server.")
    ap.add_argument(
        "--no-audit",
        action="store_true",
        help="Serve with the decision audit log off (default: on, SQLite, as deployed).",
    )
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
        # the pinned tag, auth off (this measures the scoring path); the audit log on,
        # SQLite in the temporary folder, with the service's default settings
        from credit_scoring.config import ServeAuditParams

        audit = ServeAuditParams()
        audit_db = tmp / "audit" / "decisions.sqlite3"
        env |= {
            "CREDIT_SCORING_MODEL_TAG": tag,
            "CREDIT_SCORING_AUTH": "none",
            "CREDIT_SCORING_AUDIT": "off" if args.no_audit else "on",
            "CREDIT_SCORING_AUDIT_DB_URL": f"sqlite:///{audit_db}",
        }
        which = {w.strip() for w in args.scenarios.split(",") if w.strip()}
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
        if args.no_baseline:
            del servers["fastapi_baseline"]
        soak_answered: dict[str, int] = {}
        kill_answered: dict[str, tuple[float, int]] = {}
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
                results[name] = asyncio.run(_scenarios(url, proc.pid, people, args.seconds, which))
                if name == "bentoml":
                    results[name]["workers_seen"] = len(_worker_pids(proc.pid))
                    if args.soak_seconds > 0:
                        load["soak"] = [round(x, 2) for x in os.getloadavg()]
                        print(
                            f"soak {args.soak_seconds:.0f} s (load {load['soak']}) ...", flush=True
                        )
                        results[name]["soak"] = asyncio.run(
                            _soak(url, proc.pid, people, args.soak_seconds, soak_answered)
                        )
                    if not args.no_kill:
                        load["kill_worker"] = [round(x, 2) for x in os.getloadavg()]
                        print("kill -9 of a worker under load ...", flush=True)
                        results[name]["kill_worker"] = asyncio.run(
                            _kill_worker(url, proc.pid, people, kill_answered)
                        )
            finally:
                # a clean shutdown (SIGTERM): every worker writes what it has queued
                proc.terminate()
                proc.wait(timeout=60)
                log.close()
            if name == "bentoml" and not args.no_audit:
                rows = _audit_rows(audit_db)
                b = results[name]
                if "soak" in b:
                    b["soak"]["audit"] = _join_soak(rows, soak_answered)
                if "kill_worker" in b:
                    b["kill_worker"]["audit"] = _join_kill(
                        rows, kill_answered, b["kill_worker"], audit.model_dump()
                    )

    b = results["bentoml"]
    f = results.get("fastapi_baseline", {})
    checks: dict[str, bool] = {}
    extra: dict[str, float] = {}
    if "single_reasons_50rps" in b:
        checks["single_reasons_p99_le_15ms"] = b["single_reasons_50rps"]["p99_ms"] <= 15
        if "single_reasons_50rps" in f:
            single, base = b["single_reasons_50rps"], f["single_reasons_50rps"]
            checks["p50_within_1.5x_baseline"] = single["p50_ms"] <= 1.5 * base["p50_ms"]
            extra["p50_ratio_vs_baseline"] = round(single["p50_ms"] / base["p50_ms"], 2)
    if "single_reasons_max" in b and "single_reasons_max" in f:
        ratio = b["single_reasons_max"]["rps"] / f["single_reasons_max"]["rps"]
        checks["throughput_ge_0.6x_baseline"] = ratio >= 0.6
        extra["throughput_ratio_vs_baseline"] = round(ratio, 2)
    if "soak" in b:
        soak = b["soak"]
        checks["soak_0_errors"] = soak["errors"] == 0
        checks["soak_memory_flat_within_10pct"] = (
            soak["rss_last_third_mean_mib"] <= 1.1 * soak["rss_first_third_mean_mib"]
        ) and all(w["ratio"] <= 1.1 for w in soak["worker_rss_flat"].values())
        if "audit" in soak:
            checks["soak_every_decision_in_audit_log"] = soak["audit"]["all_joined"]
    if "kill_worker" in b:
        kw = b["kill_worker"]
        checks["kill_model_unchanged"] = kw["model_unchanged"]
        if "audit" in kw:
            checks["kill_audit_lost_within_bound"] = kw["audit"]["within_queue_size_bound"]
            checks["kill_audit_same_model_after"] = kw["audit"]["same_model_logged_after_kill"]
    report = {
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15_before": load,
            "note": "2 cores shared with other jobs while measured: numbers are noisy",
        },
        "workers": args.workers,
        "audit_log": "off" if args.no_audit else f"on (SQLite, {audit.model_dump()})",
        "seconds_per_scenario": args.seconds,
        "results": results,
        **extra,
        "targets_met": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'scenario':26} {'server':17} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'CPU ms':>8}")
    scenarios = ("single_reasons_50rps", "single_noreasons_50rps", "single_reasons_max")
    for scen in (*scenarios, "batch_100", "batch_1000"):
        for name, res in results.items():
            if scen in res:
                r = res[scen]
                cpu = r.get("server_cpu_ms_per_request", "")
                print(
                    f"{scen:26} {name:17} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                    f"{r['rps']:8.1f} {cpu:>8}"
                )
    if "soak" in b:
        sk = b["soak"]
        print(
            f"soak {sk['seconds']:.0f} s: {sk['n']} requests, {sk['errors']} errors, p99 "
            f"{sk['p99_ms']} ms, RSS {sk['rss_first_third_mean_mib']} -> "
            f"{sk['rss_last_third_mean_mib']} MiB; audit: {sk.get('audit')}"
        )
    if "kill_worker" in b:
        k = b["kill_worker"]
        print(
            f"kill -9: {k['failed']}/{k['requests']} failed, worker replaced after "
            f"{k['worker_replaced_after_s']} s, model unchanged: {k['model_unchanged']}; "
            f"audit lost {k.get('audit', {}).get('lost_rows')}"
        )
    print(json.dumps(checks, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
