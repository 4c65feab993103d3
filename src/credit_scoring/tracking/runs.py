"""One MLflow run per training, opened when training starts and continued by ``register``.

DVC stages are separate processes, so the train stage writes the run id into
``models/train_log.json`` (key :data:`RUN_ID_KEY`) and ``register`` reopens that run: the
learning curve (logged live, every ``every`` boosting rounds, by :class:`LiveCurve`), the
feature table (``mlflow.log_input`` with its md5, the hash DVC records), the test metrics,
the model and the gate decision all sit on one run. Its name carries the DVC experiment
(``DVC_EXP_NAME``, set by ``dvc exp run``) or else the git commit, so runs of different
experiments are told apart. The WoE baseline gets a child run with the same metric names,
so MLflow's compare view puts it beside the model.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric

from credit_scoring.config import Params
from credit_scoring.tracking import registry as tracking

RUN_ID_KEY = "mlflow_run_id"
#: Set by ``dvc exp run`` in the environment of every stage command.
DVC_EXP_ENV = "DVC_EXP_NAME"
DVC_BASELINE_ENV = "DVC_EXP_BASELINE_REV"
#: MLflow's batch limit is 1000 metrics per call.
BATCH = 900


def run_name(model: str = "lightgbm", commit: str | None = None) -> str:
    """``<model>-<dvc experiment>`` under ``dvc exp run``, else ``<model>-<commit[:8]>``."""
    exp = os.environ.get(DVC_EXP_ENV)
    if exp:
        return f"{model}-{exp}"
    return f"{model}-{(commit or tracking.git_commit())[:8]}"


def run_tags(commit: str | None = None) -> dict[str, str]:
    """Tags tying a run to its code and its DVC experiment (when there is one)."""
    tags = {"git_commit": commit or tracking.git_commit()}
    for env, tag in ((DVC_EXP_ENV, "dvc_experiment"), (DVC_BASELINE_ENV, "dvc_baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def quiet_mlflow() -> None:
    """No download progress bars and no MLflow chatter on the terminal of a stage; real
    errors still raise. Set before MLflow downloads anything (the env is read per call)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow's hints (integer columns in an inferred schema, ambiguous dataset sources,
    # pandas deprecations inside MLflow): about MLflow's internals, not the user's run.
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")


class LiveCurve:
    """LightGBM callback: the learning curve into an MLflow run while the model trains.

    Buffers ``learning_curve_<set>_<metric>`` points and sends them every ``every``
    rounds (one batched call), so a run open in the UI shows the curve growing.
    :meth:`flush` sends the rest after training.
    """

    order = 25  # after record_evaluation (20), before early stopping (30) can stop the loop

    def __init__(self, client: mlflow.MlflowClient, run_id: str, every: int = 10) -> None:
        self.client, self.run_id, self.every = client, run_id, max(1, every)
        self._pending: list[Metric] = []
        self.points = 0

    def __call__(self, env: Any) -> None:
        now = int(time.time() * 1000)
        for item in env.evaluation_result_list or []:
            data_name, metric, value = item[0], item[1], item[2]
            name = f"learning_curve_{data_name}_{metric}"
            self._pending.append(Metric(name, float(value), now, int(env.iteration)))
        if (env.iteration + 1) % self.every == 0:
            self.flush()

    def flush(self) -> None:
        """Send every buffered point."""
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i : i + BATCH])
        self.points += len(pending)


def log_curve(client: mlflow.MlflowClient, run_id: str, evals: dict[str, Any]) -> None:
    """The whole learning curve at once (engines that cannot call back, older train logs)."""
    now = int(time.time() * 1000)
    points = [
        Metric(f"learning_curve_{split}_{metric}", float(v), now, step)
        for split, curves in evals.items()
        for metric, values in curves.items()
        for step, v in enumerate(values)
    ]
    for i in range(0, len(points), BATCH):
        client.log_batch(run_id, metrics=points[i : i + BATCH])


def log_features(table: pd.DataFrame, path: str | Path, context: str = "training") -> str:
    """The feature table as the run's input dataset: its source is the file, its digest the
    file's md5 (what DVC records for it), so the UI names the exact data. Returns the md5."""
    from mlflow.data import from_pandas

    digest = tracking.file_md5(path)
    dataset = from_pandas(
        table.head(0),  # schema only: profiling a 100k-row table is not worth the time
        source=str(Path(path)),
        name=Path(path).name,
        digest=digest,
        targets=None,
    )
    mlflow.log_input(dataset, context=context, tags={"rows": str(len(table))})
    mlflow.set_tags({"features_md5": digest, "features_rows": str(len(table))})
    return digest


class TrainingRun:
    """The open run of a training: its id, the live-curve callback and the dataset hook."""

    def __init__(self, client: mlflow.MlflowClient, run_id: str, every: int) -> None:
        self.client, self.run_id = client, run_id
        self.curve = LiveCurve(client, run_id, every)

    def callbacks(self) -> list[Any]:
        """LightGBM callbacks to pass to the trainer."""
        return [self.curve]

    def finish(self, evals: dict[str, Any]) -> None:
        """Send the rest of the curve; log it whole if nothing was live (Dask engine)."""
        self.curve.flush()
        if self.curve.points == 0 and evals:
            log_curve(self.client, self.run_id, evals)


@contextmanager
def training_run(params: Params, every: int = 10) -> Iterator[TrainingRun]:
    """Open the run of a training (params logged, named after the DVC experiment or the
    commit); a failure marks it FAILED, success leaves it FINISHED for register to reopen."""
    quiet_mlflow()
    client = tracking.configure(params.mlflow)
    commit = tracking.git_commit()
    with mlflow.start_run(run_name=run_name(commit=commit), tags=run_tags(commit)) as run:
        mlflow.log_params(tracking.flatten(params.model_dump(mode="json")))
        yield TrainingRun(client, run.info.run_id, every)


@contextmanager
def continue_run(
    params: Params, train_log: dict[str, Any]
) -> Iterator[tuple[mlflow.ActiveRun, bool]]:
    """Reopen the training's run named in ``train_log``; yields ``(run, continued)``.

    A train log without a run id, or one whose run is not in this tracking store (another
    ``MLFLOW_TRACKING_URI``, a deleted store), gets a new run, as before runs opened at
    training: ``continued`` is then False and the caller logs what training would have.
    """
    quiet_mlflow()
    client = tracking.configure(params.mlflow)
    run_id = train_log.get(RUN_ID_KEY)
    if run_id:
        try:
            client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            run_id = None
    if run_id:
        with mlflow.start_run(run_id=run_id) as run:
            log_params_again(client, run, tracking.flatten(params.model_dump(mode="json")))
            yield run, True
        return
    commit = tracking.git_commit()
    with mlflow.start_run(run_name=run_name(commit=commit), tags=run_tags(commit)) as run:
        mlflow.log_params(tracking.flatten(params.model_dump(mode="json")))
        yield run, False


def log_params_again(client: mlflow.MlflowClient, run: Any, flat: dict[str, Any]) -> None:
    """Params of a reopened run: new keys are logged; a value that changed since training
    (MLflow params are immutable, e.g. the gate's bounds before a re-run of register only)
    becomes the tag ``register.<key>`` holding the value register used."""
    logged = client.get_run(run.info.run_id).data.params
    new = {k: v for k, v in flat.items() if k not in logged}
    if new:
        mlflow.log_params(new)
    changed = {
        f"register.{k}": str(v) for k, v in flat.items() if k in logged and logged[k] != str(v)
    }
    if changed:
        mlflow.set_tags(changed)


def split_metrics(flat: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Flattened test metrics -> (the model's, the baseline's under the model's names)."""
    model = {k: v for k, v in flat.items() if not k.startswith("baseline_")}
    baseline = {
        k.removeprefix("baseline_"): v for k, v in flat.items() if k.startswith("baseline_")
    }
    return model, baseline


def log_baseline_run(parent_name: str, metrics: dict[str, float]) -> str | None:
    """The WoE baseline scorecard as a child run of the active run, its test metrics under
    the model's names (``test_auc``...), so the UI compares the two side by side."""
    if not metrics:
        return None
    with mlflow.start_run(
        run_name=f"{parent_name}-woe-baseline",
        nested=True,
        tags={"model_kind": "woe-baseline", **run_tags()},
    ) as child:
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        return child.info.run_id


def gate_description(gate: dict[str, Any], run_name: str) -> str:
    """The text of a model version: the gate's decision, its reasons, where it came from."""
    verdict = "PROMOTED to champion" if gate.get("promote") else "REFUSED (champion unchanged)"
    lines = [
        f"Gate: {verdict}.",
        "",
        *[f"- {r}" for r in gate.get("reasons", [])],
        "",
        f"Run {run_name} ({gate.get('run_id')}); evidence: {gate.get('evidence')}.",
    ]
    return "\n".join(lines)


def describe(client: mlflow.MlflowClient, gate: dict[str, Any], run_name: str) -> None:
    """Descriptions on the version (its own gate) and on the registered model (what it is,
    the current champion and the newest gate decision), readable in the registry UI."""
    name, version = gate["model_name"], str(gate["version"])
    text = gate_description(gate, run_name)
    client.update_model_version(name, version, description=text)
    champ = tracking.champion_version(client, name)
    champion = f"Champion: version {champ.version}." if champ is not None else "No champion yet."
    client.update_registered_model(
        name,
        description=(
            "Probability of default within 12 months from behaviour features (LightGBM with "
            "monotone constraints, calibrated), turned into a 350-950 score, band, limit, "
            f"tiers and reasons. {champion}\n\nNewest gate, version {version}:\n{text}"
        ),
    )
