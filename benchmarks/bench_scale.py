"""Benchmark of the pipeline at scale: the features and train stages, local vs Dask.

For each size (people in the simulated world) the script prepares a temporary project
(a copy of params.yaml with ``simulate.n_users`` set, then ``credit-scoring simulate``
and ``ingest``), then for each engine runs ``credit-scoring features`` and ``train`` as
subprocesses, exactly as ``dvc repro`` would, and records:

- wall time of the command;
- peak memory of the whole process tree: the sum of the resident sets of the command
  and all its descendants (Dask's scheduler and worker processes included), polled
  every 0.1 s with psutil, and the largest single process (``ru_maxrss``).

The Dask engine is selected with ``engine: dask`` and a ``dask`` section (an empty
``scheduler_address`` starts a LocalCluster with ``--dask-workers`` workers). A run that
fails (e.g. a build without the Dask engine) is recorded with its error line.

Usage::

    .venv/bin/python benchmarks/bench_scale.py --sizes 100000,1000000 --engines local,dask

Writes ``benchmarks/results/scale.json`` (rows merged with earlier results by size,
engine and stage, so engines can be measured separately) and prints a Markdown table.
Only one size runs at a time: a million people needs ~10 GiB at the ingest step.

Ingest, before and after batching (issue 16)::

    .venv/bin/python benchmarks/bench_scale.py --sizes 50000,100000,200000 --ingest \
        --out benchmarks/results/scale_ingest.json

runs on the same simulated world, one after another, the in-memory ingest (the library's
``ingest`` + ``write_ingest_result``, whole tables: the path before issue 16), and the
ingest stage with ``data.batch_rows`` = 1,000,000 (the default) and 200,000, records each
one's wall time and peak memory (``variant``), and fits a straight line (least squares over
the sizes measured) to project each row to 1 M and 10 M people (``projection``: measured
sizes and projected values are kept apart).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
CLI = Path(sys.executable).parent / "credit-scoring"
STAGES = ("features", "train")


class _TreePeak:
    """Polls the resident set of a process and all its descendants; keeps the peak sum."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.max_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self.max_procs = max(self.max_procs, len(procs))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# The ingest before issue 16: whole tables in memory, then written (kept in the library).
IN_MEMORY_INGEST = (
    "import sys, yaml; from credit_scoring.data.ingest import ingest, write_ingest_result; "
    "p = yaml.safe_load(open('params.yaml'))['data']; "
    "write_ingest_result(ingest(p['input_dir'], p['label']['column'], "
    "p['label']['horizon_months']), p['validated_dir'], p['rejects_dir'], p['quality_report'])"
)


def run_stage(project: Path, stage: str, log: Path, command: list[str] | None = None) -> dict:
    """Run ``credit-scoring <stage>`` (or ``command``) in ``project``; wall time, peak tree
    RSS, status."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command or [str(CLI), stage, "--params", "params.yaml"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        poll = _TreePeak(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        poll.stop()
    wall = time.perf_counter() - start
    result = {
        "wall_s": round(wall, 1),
        "peak_tree_rss_gib": round(poll.peak / 2**30, 2),
        "peak_process_rss_gib": round(usage.ru_maxrss / 2**20, 2),  # KiB on Linux
        "processes": poll.max_procs,
        "ok": proc.returncode == 0,
    }
    if proc.returncode != 0:
        lines = [x for x in log.read_text().splitlines() if x.strip()]
        result["error"] = lines[-1][:300] if lines else f"exit code {proc.returncode}"
    return result


def write_params(
    project: Path, n_users: int, engine: str, dask_workers: int, batch_rows: object = "keep"
) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"]["n_users"] = n_users
    if batch_rows != "keep":
        params["data"]["batch_rows"] = batch_rows
    if engine == "dask":  # a LocalCluster started by the stage; other dask keys as given
        params["engine"] = "dask"
        params["dask"] = {
            **(params.get("dask") or {}),
            "scheduler_address": "",
            "n_workers": dask_workers,
        }
    elif "engine" in params:
        params["engine"] = "local"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def prepare(project: Path, n_users: int) -> dict:
    """Simulate and ingest a world of ``n_users`` people in ``project`` (skipped if there)."""
    project.mkdir(parents=True, exist_ok=True)
    if (project / "data" / "validated" / "events.parquet").is_file():
        return {}
    write_params(project, n_users, "local", 0)
    prep = {}
    for stage in ("simulate", "ingest"):
        prep[stage] = run_stage(project, stage, project / f"{stage}.log")
        print(f"  {stage}: {prep[stage]}", flush=True)
        if not prep[stage]["ok"]:
            raise SystemExit(f"{stage} failed: {prep[stage].get('error')}")
    return prep


def _load_results(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"runs": []}


def _key(r: dict) -> tuple:
    return (r["people"], r["engine"], r["stage"], r.get("variant", ""))


def _merge(rows: list[dict], new: dict) -> list[dict]:
    kept = [r for r in rows if _key(r) != _key(new)]
    return sorted([*kept, new], key=lambda r: (r["people"], r["stage"], r["engine"], _key(r)[3]))


# (variant, data.batch_rows or None for the in-memory library path)
INGEST_VARIANTS: tuple[tuple[str, int | None], ...] = (
    ("in-memory (before)", None),
    ("batch_rows=1000000", 1_000_000),
    ("batch_rows=200000", 200_000),
)


def run_ingest_variants(project: Path, n: int) -> list[dict]:
    """The ingest of one world, before (in memory) and after (batched), one after another."""
    rows = []
    for variant, batch_rows in INGEST_VARIANTS:
        if batch_rows is None:
            write_params(project, n, "local", 0)
            command = [sys.executable, "-c", IN_MEMORY_INGEST]
        else:
            write_params(project, n, "local", 0, batch_rows=batch_rows)
            command = None
        log = project / f"ingest_{batch_rows or 'memory'}.log"
        r = run_stage(project, "ingest", log, command)
        row = {"people": n, "engine": "local", "stage": "ingest", "variant": variant, **r}
        row["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        print(f"  ingest {variant}: {r}", flush=True)
        rows.append(row)
    return rows


def project_linear(rows: list[dict], to: tuple[int, ...] = (1_000_000, 10_000_000)) -> list[dict]:
    """Least-squares line (intercept + slope per person) of wall time and peak memory over
    the sizes measured, per stage/engine/variant, evaluated at ``to`` (projected, not
    measured; needs two sizes or more)."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("ok"):
            groups.setdefault(_key(r)[1:], []).append(r)
    out = []
    for (engine, stage, variant), rs in sorted(groups.items()):
        sizes = sorted({r["people"] for r in rs})
        if len(sizes) < 2:
            continue
        x = np.array([r["people"] for r in rs], dtype=float)
        fit = {}
        for what in ("wall_s", "peak_tree_rss_gib"):
            slope, intercept = np.polyfit(x, [r[what] for r in rs], 1)
            fit[what] = {
                "per_million_people": round(slope * 1e6, 2),
                "intercept": round(intercept, 2),
                **{f"projected_at_{n}": round(intercept + slope * n, 1) for n in to},
            }
        out.append(
            {"engine": engine, "stage": stage, "variant": variant, "measured_sizes": sizes, **fit}
        )
    return out


def markdown(rows: list[dict]) -> str:
    lines = [
        "| people | stage | engine | wall time | peak memory (process tree) | largest process |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        engine = r["engine"] + (f" {r['variant']}" if r.get("variant") else "")
        if not r.get("ok", False):
            status = "failed: " + r.get("error", "")[:60]
            lines.append(f"| {r['people']:,} | {r['stage']} | {engine} | {status} | | |")
            continue
        lines.append(
            f"| {r['people']:,} | {r['stage']} | {engine} | {r['wall_s']:.0f} s "
            f"| {r['peak_tree_rss_gib']:.1f} GiB | {r['peak_process_rss_gib']:.1f} GiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="People, comma separated.")
    parser.add_argument("--engines", default="local,dask", help="local and/or dask.")
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Keep the projects here (one folder per size; reused when already ingested). "
        "Default: a temporary folder, removed at the end.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results JSON.")
    parser.add_argument("--stages", default=",".join(STAGES), help="features and/or train.")
    parser.add_argument(
        "--ingest",
        action="store_true",
        help="Measure ingest before (in memory) and after (batched) instead of the stages.",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"local", "dask"}
    if unknown:
        parser.error(f"unknown engine(s): {sorted(unknown)}")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if set(stages) - set(STAGES):
        parser.error(f"unknown stage(s): {sorted(set(stages) - set(STAGES))}")

    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    results = _load_results(args.out)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for n in sizes:
            project = root / f"n{n}"
            print(f"{n:,} people: preparing {project}", flush=True)
            if args.ingest:
                project.mkdir(parents=True, exist_ok=True)
                if not (project / "data" / "simulated").is_dir():
                    write_params(project, n, "local", 0)
                    sim = run_stage(project, "simulate", project / "simulate.log")
                    results.setdefault("prepare", {})[f"{n}:simulate"] = sim
                    print(f"  simulate: {sim}", flush=True)
                for row in run_ingest_variants(project, n):
                    results["runs"] = _merge(results["runs"], row)
                results["projection"] = project_linear(results["runs"])
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
                continue
            prep = prepare(project, n)
            for stage, r in prep.items():
                results.setdefault("prepare", {})[f"{n}:{stage}"] = r
            for engine in engines:
                write_params(project, n, engine, args.dask_workers)
                for stage in stages:
                    r = run_stage(project, stage, project / f"{stage}_{engine}.log")
                    row = {"people": n, "engine": engine, "stage": stage, **r}
                    if engine == "dask":
                        row["dask_workers"] = args.dask_workers
                    row["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                    print(f"  {engine} {stage}: {r}", flush=True)
                    results["runs"] = _merge(results["runs"], row)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(markdown(results["runs"]))


if __name__ == "__main__":
    main()
