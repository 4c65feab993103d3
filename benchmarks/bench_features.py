"""Benchmark of the feature computation: events per second, wall time and peak memory.

Generates a synthetic world with the simulator (streamed to Parquet in a temporary folder,
or reused with ``--data-dir``), then runs each measurement in a fresh child process that
loads the four tables, resets its peak-memory mark and times ``compute_features`` (and
``compute_features_chunked``). Peak memory is the child's resident-set high-water mark
(``VmHWM`` after resetting it via ``/proc/self/clear_refs``; ``ru_maxrss`` elsewhere), so
it measures the computation on top of the loaded input, without tracemalloc's overhead.

Usage::

    .venv/bin/python benchmarks/bench_features.py --n-users 300000

Writes ``benchmarks/results/features.json`` and prints a small table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "features.json"
TABLES = ("profiles", "outcomes", "events", "contacts")


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS mark (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kib(reset_ok: bool) -> int:
    hwm = _status_kib("VmHWM") if reset_ok else None
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(data_dir: Path, mode: str, repeats: int, chunk_people: int) -> dict:
    """Load the tables, then time the feature computation; runs in its own process."""
    import pandas as pd

    from credit_scoring import schemas
    from credit_scoring.features.compute import compute_features, compute_features_chunked
    from credit_scoring.schemas import BehaviourData

    t0 = time.perf_counter()
    frames = {
        name: schemas.conform(pd.read_parquet(data_dir / f"{name}.parquet"), schemas.TABLES[name])
        for name in TABLES
    }
    data = BehaviourData(**frames)
    load_s = time.perf_counter() - t0
    input_kib = _status_kib("VmRSS") or 0
    reset_ok = _reset_peak()

    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        if mode == "chunked":
            out = compute_features_chunked(data, chunk_people=chunk_people)
        else:
            out = compute_features(data)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        del out
    peak_kib = _peak_kib(reset_ok)
    n_events = len(data.events)
    return {
        "mode": mode,
        "events": n_events,
        "rows": len(data.outcomes),
        "contacts": len(data.contacts),
        "load_s": round(load_s, 3),
        "wall_s": [round(t, 3) for t in times],
        "best_wall_s": round(min(times), 3),
        "events_per_s": round(n_events / min(times)),
        "events_per_s_first_run": round(n_events / times[0]),
        # CPU seconds of the process: less sensitive to other load on a shared machine.
        "cpu_s": [round(c, 3) for c in cpu],
        "events_per_cpu_s": round(n_events / min(cpu)),
        "load_average": os.getloadavg(),
        "input_rss_mib": round(input_kib / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_above_input_mib": round(max(peak_kib - input_kib, 0) / 1024, 1),
        "peak_is_compute_only": reset_ok,
        # The child's lifetime peak (includes reading and converting the input).
        "lifetime_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "chunk_people": chunk_people if mode == "chunked" else None,
    }


def _simulate(n_users: int, out_dir: Path, seed: int) -> dict:
    from credit_scoring.config import BaseParams, SimulateParams
    from credit_scoring.data.simulate import write_world

    sim = SimulateParams(n_users=n_users)
    t = time.perf_counter()
    summary = write_world(sim, BaseParams(seed=seed), out_dir, out_dir / "truth.parquet")
    summary["simulate_s"] = round(time.perf_counter() - t, 1)
    return summary


def _run_child(data_dir: Path, mode: str, repeats: int, chunk_people: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(data_dir),
        "--mode",
        mode,
        "--repeats",
        str(repeats),
        "--chunk-people",
        str(chunk_people),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child ({mode}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(results: list[dict]) -> str:
    head = (
        f"{'mode':<8} {'events':>12} {'rows':>9} {'best s':>7} {'events/s':>11} "
        f"{'ev/cpu-s':>11} {'input MiB':>10} {'peak MiB':>9} {'+compute':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r['mode']:<8} {r['events']:>12,} {r['rows']:>9,} {r['best_wall_s']:>7.2f} "
            f"{r['events_per_s']:>11,} {r['events_per_cpu_s']:>11,} {r['input_rss_mib']:>10,.0f} "
            f"{r['peak_rss_mib']:>9,.0f} {r['peak_above_input_mib']:>9,.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=300_000, help="People to simulate.")
    parser.add_argument("--seed", type=int, default=42, help="Simulator seed.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per mode (best kept).")
    parser.add_argument(
        "--chunk-people", type=int, default=100_000, help="People per chunk (chunked mode)."
    )
    parser.add_argument(
        "--modes", default="full,chunked", help="Comma-separated: full and/or chunked."
    )
    parser.add_argument("--data-dir", type=Path, help="Reuse (or keep) the simulated tables here.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file.")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        print(json.dumps(child(args.child, args.mode, args.repeats, args.chunk_people)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        data_dir = args.data_dir or Path(tmp)
        summary_file = data_dir / "simulate_summary.json"
        if summary_file.is_file() and (data_dir / "events.parquet").is_file():
            sim_summary = json.loads(summary_file.read_text())
            print(f"reusing {sim_summary['people']:,} simulated people in {data_dir}", flush=True)
        else:
            print(f"simulating {args.n_users:,} people into {data_dir} ...", flush=True)
            sim_summary = _simulate(args.n_users, data_dir, args.seed)
            summary_file.write_text(json.dumps(sim_summary, indent=2, default=str))
            print(
                f"  {sim_summary['rows']['events']:,} events in {sim_summary['simulate_s']} s",
                flush=True,
            )
        results = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            print(f"measuring {mode} ...", flush=True)
            results.append(_run_child(data_dir, mode, args.repeats, args.chunk_people))

    import numpy as np
    import pandas as pd

    report = {
        "benchmark": "compute_features",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n_users": sim_summary["people"],
        "simulate": sim_summary,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(_table(results))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
