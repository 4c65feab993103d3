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


def run_stage(project: Path, stage: str, log: Path) -> dict:
    """Run ``credit-scoring <stage>`` in ``project``; wall time, peak tree RSS, status."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(CLI), stage, "--params", "params.yaml"],
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


def write_params(project: Path, n_users: int, engine: str, dask_workers: int) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"]["n_users"] = n_users
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


def _merge(rows: list[dict], new: dict) -> list[dict]:
    key = (new["people"], new["engine"], new["stage"])
    kept = [r for r in rows if (r["people"], r["engine"], r["stage"]) != key]
    return sorted([*kept, new], key=lambda r: (r["people"], r["stage"], r["engine"]))


def markdown(rows: list[dict]) -> str:
    lines = [
        "| people | stage | engine | wall time | peak memory (process tree) | largest process |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if not r.get("ok", False):
            status = "failed: " + r.get("error", "")[:60]
            lines.append(f"| {r['people']:,} | {r['stage']} | {r['engine']} | {status} | | |")
            continue
        lines.append(
            f"| {r['people']:,} | {r['stage']} | {r['engine']} | {r['wall_s']:.0f} s "
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
