"""What the decision audit log costs: p99 at 50 req/s with reasons, audit log on vs off.

The same `bentoml serve` (API-key auth on in both) is started alternately with the audit
log on (SQLite by default, or ``--db-url``) and off (``CREDIT_SCORING_AUDIT=off``), rounds
interleaved (on, off, on, off, ...) so that load from other processes on the machine hits
both alike. Each round: 50 warm-up requests, then an open loop at 50 requests/s for
``--seconds``. After each "on" round the service is stopped (SIGTERM) and the database
must hold exactly one row per request made. Target: p99(on) - p99(off) <= 2 ms.

Usage::

    .venv/bin/python benchmarks/bench_audit_log.py                  # trains on 20,000
    .venv/bin/python benchmarks/bench_audit_log.py --seconds 30 --rounds 2
    .venv/bin/python benchmarks/bench_audit_log.py --db-url postgresql+psycopg://...

Writes ``benchmarks/results/audit_log.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_service import (  # noqa: E402
    BIN,
    _free_port,
    _model_bundle,
    _open_loop,
    _wait_ready,
)

RESULTS = HERE / "results" / "audit_log.json"
RATE = 50.0
SERVE = [str(BIN / "bentoml"), "serve", "credit_scoring.serving.service:CreditScoring"]


async def _round(url: str, token: str, bodies: list[dict], seconds: float) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}", "X-Person-Ref": "bench-person"}
    async with httpx.AsyncClient(
        base_url=url, timeout=60, limits=limits, headers=headers
    ) as client:
        for body in bodies[:50]:  # warm-up
            r = await client.post("/score", json=body)
            assert r.status_code == 200, r.text[:300]
        return await _open_loop(client, "/score", bodies, RATE, seconds)


def _count(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar())
    finally:
        engine.dispose()


def in_process(bundle: Path, people: list[dict], seconds: float, rounds: int, db: str) -> dict:
    """The request path without HTTP: score one person with reasons at 50/s, with and
    without ``AuditLog.record`` (its background writer inserting into ``db`` meanwhile),
    rounds interleaved. Isolates the log's cost (row building, queueing, the writer's share
    of the GIL) from the HTTP stack's noise on a shared machine."""
    import time

    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.serving.audit_log import AuditLog
    from credit_scoring.serving.scorer import Scorer

    scorer = Scorer(CreditModel.load(bundle), {"model_version": "bench@run"})
    log = AuditLog(
        db,
        {"model_name": "credit-scoring", "model_version": "bench@run", "bundle_sha256": "0" * 64},
        "credit-scoring:bench",
        scorer.model.feature_names,
    )
    out: dict[str, list[dict]] = {"on": [], "off": []}
    rec: list[float] = []
    for _ in range(rounds):
        for mode in ("on", "off"):
            lat: list[float] = []
            n = int(RATE * seconds)
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / RATE - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                f = people[i % len(people)]
                t0 = time.perf_counter()
                d = scorer.score(f, True)
                if mode == "on":
                    t1 = time.perf_counter()
                    log.record("score", [f], [d])
                    rec.append((time.perf_counter() - t1) * 1000)
                lat.append((time.perf_counter() - t0) * 1000)
            a = np.asarray(lat)
            out[mode].append(
                {
                    "p50_ms": round(float(np.percentile(a, 50)), 3),
                    "p99_ms": round(float(np.percentile(a, 99)), 3),
                }
            )
            if mode == "on":
                r = np.asarray(rec)
                out[mode][-1] |= {
                    "record_p50_ms": round(float(np.percentile(r, 50)), 3),
                    "record_p99_ms": round(float(np.percentile(r, 99)), 3),
                }
                rec.clear()
            print(f"in-process audit {mode}: {out[mode][-1]}", flush=True)
    log.close()
    med = {m: round(float(np.median([r["p99_ms"] for r in rs])), 3) for m, rs in out.items()}
    return {"rounds": out, "median_p99_ms": med, "p99_cost_ms": round(med["on"] - med["off"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="A bundle folder (default: train one).")
    ap.add_argument("--n-users", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=30.0, help="Length of each round.")
    ap.add_argument("--rounds", type=int, default=2, help="Rounds of each (on, off).")
    ap.add_argument("--keep-model", help="Save the trained bundle here (reuse: --model).")
    ap.add_argument("--in-process", action="store_true", help="Only the in-process request path.")
    ap.add_argument("--db-url", help="Audit database URL (default: SQLite in a temp dir).")
    args = ap.parse_args()

    from credit_scoring.serving.auth import mint_key
    from credit_scoring.telemetry import disable_telemetry

    disable_telemetry()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp_name:
        tmp = Path(tmp_name)
        bundle, people = _model_bundle(args, tmp)
        if args.keep_model and not args.model:
            shutil.copytree(bundle, args.keep_model, dirs_exist_ok=True)
        if args.in_process:
            db = args.db_url or f"sqlite:///{tmp / 'inproc.sqlite3'}"
            res = in_process(bundle, people, args.seconds, args.rounds, db)
            res |= {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "seconds_per_round": args.seconds,
                "database": "postgresql" if args.db_url else "sqlite",
            }
            path = RESULTS.with_name("audit_log_in_process.json")
            path.write_text(json.dumps(res, indent=2) + "\n")
            print(json.dumps(res["median_p99_ms"]), "cost", res["p99_cost_ms"], "ms")
            return
        env = {**os.environ, "BENTOML_HOME": str(tmp / "bentoml")}
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
        token, _ = mint_key("bench", tmp / "keys.json")
        env |= {
            "CREDIT_SCORING_MODEL_TAG": tag,
            "CREDIT_SCORING_AUTH": "api_key",
            "CREDIT_SCORING_API_KEYS": (tmp / "keys.json").read_text(),
        }
        bodies = [{"features": p, "with_reasons": True} for p in people]
        rounds: list[dict] = []
        for k in range(args.rounds):
            for mode in ("on", "off"):
                db = args.db_url or f"sqlite:///{tmp / f'audit-{k}.sqlite3'}"
                round_env = dict(env)
                if mode == "on":
                    round_env["CREDIT_SCORING_AUDIT_DB_URL"] = db
                else:
                    round_env["CREDIT_SCORING_AUDIT"] = "off"
                before = _count(db) if mode == "on" and args.db_url else 0
                port = _free_port()
                log = open(tmp / f"serve-{mode}-{k}.log", "w")  # noqa: SIM115 - closed below
                proc = subprocess.Popen(
                    [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
                    env=round_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                )
                try:
                    url = f"http://127.0.0.1:{port}"
                    try:
                        _wait_ready(url, proc, "/readyz", timeout=300)
                    except RuntimeError:
                        log.flush()
                        print((tmp / f"serve-{mode}-{k}.log").read_text()[-3000:])
                        raise
                    print(f"round {k + 1}: audit log {mode} ...", flush=True)
                    res = asyncio.run(_round(url, token, bodies, args.seconds))
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
                    log.close()
                res["audit"] = mode
                if mode == "on":
                    res["rows_logged"] = _count(db) - before
                    res["rows_expected"] = res["n"] + 50
                rounds.append(res)

    def agg(mode: str) -> dict:
        rs = [r for r in rounds if r["audit"] == mode]
        return {
            "p50_ms": round(float(np.median([r["p50_ms"] for r in rs])), 2),
            "p99_ms": round(float(np.median([r["p99_ms"] for r in rs])), 2),
            "errors": sum(r["errors"] for r in rs),
        }

    on, off = agg("on"), agg("off")
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "rate_rps": RATE,
        "seconds_per_round": args.seconds,
        "database": "postgresql" if args.db_url else "sqlite",
        "rounds": rounds,
        "on": on,
        "off": off,
        "p99_cost_ms": round(on["p99_ms"] - off["p99_ms"], 2),
        "all_logged": all(
            r["rows_logged"] == r["rows_expected"] for r in rounds if r["audit"] == "on"
        ),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'round':>6} {'audit':>5} {'p50 ms':>8} {'p99 ms':>8} {'rps':>6} {'err':>4} logged")
    for i, r in enumerate(rounds):
        logged = f"{r['rows_logged']}/{r['rows_expected']}" if r["audit"] == "on" else "-"
        print(
            f"{i // 2 + 1:>6} {r['audit']:>5} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['rps']:>6} {r['errors']:>4} {logged}"
        )
    print(
        f"median p99: on {on['p99_ms']} ms, off {off['p99_ms']} ms, cost {result['p99_cost_ms']} ms"
    )


if __name__ == "__main__":
    main()
