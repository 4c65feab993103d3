"""DVC as a team uses it, in temporary git repositories made from this project.

Every DVC command runs as ``.venv/bin/dvc`` with a bare PATH (``/usr/bin:/bin``: the
environment is not activated), so the stages' ``bin/credit-scoring`` launcher has to find
the project's ``.venv`` itself. The world is small and the pipeline runs up to
``evaluate`` (register and package need MLflow and BentoML and are tested elsewhere).

Proves: an experiment and the committed run sit side by side with numbers in
``dvc exp show``; ``dvc metrics diff`` compares them; ``dvc push`` to the default local
remote and ``dvc pull`` in a second clone gives a pipeline with nothing to recompute; a bad
param stops ``dvc repro`` and ``dvc exp run`` at the ``check`` stage with one line, before
any stage's outputs are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the project's environment running the tests
DVC = str(VENV / "bin" / "dvc")
BARE_PATH = "/usr/bin:/bin"  # no .venv/bin: the environment is not activated
TARGET = "evaluate"
pytestmark = pytest.mark.slow

#: What a clone of the project holds that the pipeline needs (git-tracked files).
TRACKED = [
    "dvc.yaml",
    "bentofile.yaml",
    ".gitignore",
    ".dvcignore",
    ".dvc/config",
    ".dvc/.gitignore",
    "reports/.gitignore",
    "bin",
    "requirements",
    "src",
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env.update(
        PATH=BARE_PATH,
        DVC_NO_ANALYTICS="1",
        DO_NOT_TRACK="true",
        MLFLOW_DISABLE_TELEMETRY="true",
        BENTOML_DO_NOT_TRACK="true",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    return env


def _run(args: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1200)
    if ok:
        assert proc.returncode == 0, (
            f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _git(cwd: Path, *args: str) -> str:
    return _run(["git", *args], cwd).stdout


def _link_venv(root: Path) -> None:
    """A clone's own .venv (a link to this environment; git ignores it like the real one)."""
    (root / ".venv").symlink_to(VENV)
    with (root / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("/.venv\n")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """The project as a git repository with a small world, after `dvc repro evaluate` and a
    commit of dvc.lock and the small reports (what README tells a user to commit)."""
    root = tmp_path_factory.mktemp("team") / "credit-scoring"
    root.mkdir()
    for rel in TRACKED:
        src, dst = REPO / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"]["observation_date"] = str(params["base"]["observation_date"])
    params["simulate"].update(n_users=3000, chunk_size=3000)
    params["train"]["lightgbm"].update(num_boost_round=80, learning_rate=0.15)
    params["evaluate"]["bootstrap_samples"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "init", "-q", "-b", "main")
    _link_venv(root)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "project")
    _run([DVC, "repro", TARGET], root)
    _git(root, "add", "dvc.lock", "reports")
    _git(root, "commit", "-qm", "run the pipeline")
    return root


def _exp_rows(shown: list[dict]) -> dict[str, dict]:
    """`dvc exp show --json` rows by name (workspace, main, experiments): their headline
    metrics and train params."""
    rows: dict[str, dict] = {}

    def visit(row: dict) -> None:
        data = row.get("data") or {}
        name = data.get("name") or row.get("name") or data.get("rev") or row.get("rev")
        metrics = (data.get("metrics") or {}).get("reports/headline.json", {}).get("data")
        params = (data.get("params") or {}).get("params.yaml", {}).get("data")
        rows[name] = {"metrics": metrics, "params": params}
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev)

    for row in shown:
        visit(row)
    return rows


def test_exp_run_and_the_committed_run_show_side_by_side_with_numbers(origin):
    """`dvc exp run -S` with a bare PATH runs (the launcher finds .venv); `dvc exp show
    --json` has numbers for main and the experiment (not `!`), and their params differ;
    `dvc metrics diff` compares the committed run and the experiment."""
    _run([DVC, "exp", "run", TARGET, "-n", "leaves7", "-S", "train.lightgbm.num_leaves=7"], origin)
    rows = _exp_rows(json.loads(_run([DVC, "exp", "show", "--json"], origin).stdout))
    assert {"main", "leaves7"} <= set(rows), sorted(rows)
    main, exp = rows["main"], rows["leaves7"]
    for row in (main, exp):
        assert row["metrics"], f"no headline metrics in a row: {rows}"
        assert 0.5 < row["metrics"]["auc"] <= 1 and 0 <= row["metrics"]["ece"] < 0.5
        assert isinstance(row["metrics"]["ks"], float)
    assert exp["params"]["train"]["lightgbm"]["num_leaves"] == 7
    assert main["params"]["train"]["lightgbm"]["num_leaves"] == "auto"
    assert main["metrics"]["auc"] != exp["metrics"]["auc"], "the experiment changed nothing"
    diff = json.loads(_run([DVC, "metrics", "diff", "main", "leaves7", "--json"], origin).stdout)
    assert "auc" in diff["reports/headline.json"], diff
    # only the headline is a DVC metric: a short table, not the full report
    shown = json.loads(_run([DVC, "metrics", "show", "--json"], origin).stdout)
    files = {f for rev in shown.values() for f in rev.get("data", {})}
    assert "reports/headline.json" in files, files
    assert files <= {"reports/headline.json", "reports/gate.json"}, files  # gate: register
    # the workspace holds the experiment's params, lock and reports: back to main
    _git(origin, "reset", "-q", "--hard")
    _run([DVC, "checkout", "-q", "--with-deps", TARGET], origin)


def test_push_then_pull_in_a_second_clone_leaves_nothing_to_recompute(origin, tmp_path):
    """`dvc push` to the default remote (a folder beside the project), `git clone` +
    `dvc pull` in a second clone: every output is there, `dvc status` is clean and `dvc
    repro` runs no stage."""
    _run([DVC, "push", "--with-deps", TARGET], origin)
    remote = origin.parent / "credit-scoring-dvc-remote"
    assert remote.is_dir() and any(remote.rglob("*")), "dvc push wrote nothing to the remote"
    clone = origin.parent / "teammate"
    _run(["git", "clone", "-q", str(origin), str(clone)], origin.parent)
    _link_venv(clone)
    _run([DVC, "pull", "--with-deps", TARGET], clone)
    for rel in ["data/features/features.parquet", "models/bundle/booster.txt"]:
        assert (clone / rel).is_file(), f"dvc pull did not bring {rel}"
        assert _md5(clone / rel) == _md5(origin / rel)
    status = _run([DVC, "status", "--json", "--with-deps", TARGET], clone).stdout
    assert json.loads(status) == {}, status
    out = _run([DVC, "repro", TARGET], clone).stdout
    assert "Running stage" not in out, f"the second clone recomputed:\n{out}"


def test_bad_param_stops_at_check_and_keeps_every_output(origin):
    """A param out of range stops `dvc repro` and `dvc exp run -S` at the `check` stage
    with one line naming the key; the model and features DVC would have deleted are
    byte-for-byte the same. `dvc exp run` leaves the bad value in params.yaml (DVC applies
    -S to the workspace first): `git checkout params.yaml` undoes it."""
    kept = [origin / "models/bundle/booster.txt", origin / "data/features/features.parquet"]
    before = {p: _md5(p) for p in kept}
    good = (origin / "params.yaml").read_text()
    params = yaml.safe_load(good)
    params["train"]["lightgbm"]["num_leaves"] = 1
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        failed = _run([DVC, "repro", TARGET], origin, ok=False)
    finally:
        (origin / "params.yaml").write_text(good)
    assert failed.returncode != 0
    assert "Running stage 'check'" in failed.stdout
    assert "Running stage 'train'" not in failed.stdout
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.lightgbm.num_leaves" in errors[0], failed.stderr
    assert {p: _md5(p) for p in kept} == before

    failed = _run([DVC, "exp", "run", TARGET, "-S", "train.lightgbm.num_leaves=1"], origin, False)
    assert failed.returncode != 0 and "train.lightgbm.num_leaves" in failed.stderr
    assert {p: _md5(p) for p in kept} == before
    assert "num_leaves: 1" in (origin / "params.yaml").read_text()  # DVC's doing
    _git(origin, "checkout", "-q", "--", "params.yaml")
    assert (origin / "params.yaml").read_text() == good
    # the check's own output (deleted by DVC before it ran) comes back on the next repro
    _run([DVC, "repro", TARGET], origin)
    assert (origin / "reports/params_check.json").is_file()
    assert {p: _md5(p) for p in kept} == before


def test_dvc_plots_draw_one_line_per_model(origin):
    """`dvc plots show --json` (the Vega-Lite specs DVC renders): ROC has one series per
    file (model, baseline, oracle) split by the `filename` encoding, calibration has model,
    uncalibrated and baseline, so no curve zig-zags into another. (The HTML loads Vega from
    a CDN, closed here: the spec is what is checked; README says how it was rendered.)"""
    shown = json.loads(_run([DVC, "plots", "show", "--json"], origin).stdout)["data"]
    for plot, files in {
        "ROC (test cohort)": {"roc_model.csv", "roc_baseline.csv", "roc_oracle.csv"},
        "Calibration (test cohort)": {
            "calibration_model.csv",
            "calibration_uncalibrated.csv",
            "calibration_baseline.csv",
        },
    }.items():
        spec = shown[plot][0]["content"]
        assert spec["mark"]["type"] == "line"
        split = spec["encoding"]["strokeDash"]
        assert split["field"] == "filename" and set(split["scale"]["domain"]) == files
        values = spec["data"]["values"]
        assert {v["filename"] for v in values} == files
        for name in files:  # each series is one whole curve from its own file
            xs = [float(v[spec["encoding"]["x"]["field"]]) for v in values if v["filename"] == name]
            assert len(xs) >= 5 and xs == sorted(xs), f"{plot}: {name} is not one curve"
