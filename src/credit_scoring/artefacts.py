"""Every artefact of the pipeline: where it lives (declared once) and, for those one stage
hands to another, the contract checked where it is read.

:class:`Paths` is built once from params (``Paths.from_params``): the folders params name
(``data.*``, ``features.output_dir``, ``train.output_dir``) and the fixed ones (the
simulated world, reports, scores), with every file name inside them. dvc.yaml names the
same paths; ``tests/stages/test_dvc_stages.py`` checks that they agree.

The artefacts stages pass to each other have schemas: ``models/predictions.parquet``
(columns and dtypes, :data:`PREDICTION_COLUMNS`), ``models/train_log.json``
(:class:`TrainLog`), ``reports/metrics.json`` (:class:`MetricsReport`),
``reports/fairness.json`` (:class:`FairnessReport`), ``reports/robustness.json``
(:class:`RobustnessReport`) and ``reports/gate.json`` (:class:`GateReport`). Readers go
through :func:`read_json` / :func:`read_predictions`, which refuse a missing file or a
missing or mistyped field with one line naming the file and the field
(:class:`ArtefactError`), as input validation does for the input tables.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pandas.api import types as ptypes
from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scoring.config import Params, describe_validation_error
from credit_scoring.schemas import DATE, LABEL

#: File names inside the folders of :class:`Paths`.
FEATURES_FILE = "features.parquet"
PROTECTED_FILE = "protected.parquet"
BUNDLE_DIR = "bundle"
VALIDATED_BUNDLE_DIR = "validated_bundle"
#: Where the simulate stage writes (the default ``data.input_dir``) and the true PDs.
SIMULATED_DIR = Path("data/simulated")
TRUTH_FILE = Path("data/truth.parquet")
REPORTS_DIR = Path("reports")
SCORES_DIR = Path("data/scores")
#: DVC's record of every stage's outputs (the register stage tags the run with their md5).
DVC_LOCK = Path("dvc.lock")


class ArtefactError(ValueError):
    """A file the pipeline reads is missing or does not match its contract.

    The message is one line naming the file and the missing or bad field; the CLI shows
    it and exits with code 2. :class:`credit_scoring.data.ingest.InputError` (the input
    tables) is one kind of it.
    """


@dataclass(frozen=True)
class Paths:
    """Where every artefact of the pipeline lives, built once from params."""

    input_dir: Path
    validated_dir: Path
    rejects_dir: Path
    quality_report: Path
    features_dir: Path
    models_dir: Path
    simulated_dir: Path = SIMULATED_DIR
    truth: Path = TRUTH_FILE
    reports_dir: Path = REPORTS_DIR
    scores_dir: Path = SCORES_DIR

    @classmethod
    def from_params(cls, params: Params) -> Paths:
        return cls(
            input_dir=Path(params.data.input_dir),
            validated_dir=Path(params.data.validated_dir),
            rejects_dir=Path(params.data.rejects_dir),
            quality_report=Path(params.data.quality_report),
            features_dir=Path(params.features.output_dir),
            models_dir=Path(params.train.output_dir),
        )

    # --- features stage ----------------------------------------------------------------
    @property
    def features(self) -> Path:
        """Label + point-in-time features, one row per person and observation date."""
        return self.features_dir / FEATURES_FILE

    @property
    def protected(self) -> Path:
        """Protected attributes (fairness measurement only, never model inputs)."""
        return self.features_dir / PROTECTED_FILE

    # --- train stage -------------------------------------------------------------------
    @property
    def bundle(self) -> Path:
        """The deployable model bundle (booster, calibrator, score scale, policy)."""
        return self.models_dir / BUNDLE_DIR

    @property
    def validated_bundle(self) -> Path:
        """The validated model (train slice, calibration slice): what evaluate measures on
        the test cohort and the gate compares. The same model as :attr:`bundle` unless
        ``train.refit_on_all`` deployed a refit (README "Validated model and deployed refit")."""
        return self.models_dir / VALIDATED_BUNDLE_DIR

    def measured_bundle(self) -> Path:
        """The bundle whose test-cohort numbers are evidence: the validated one (older runs
        wrote only :attr:`bundle`, then that one)."""
        return self.validated_bundle if self.validated_bundle.is_dir() else self.bundle

    @property
    def predictions(self) -> Path:
        """Per-slice margins and PDs of the model and the baseline."""
        return self.models_dir / "predictions.parquet"

    @property
    def train_log(self) -> Path:
        return self.models_dir / "train_log.json"

    @property
    def monitoring_reference(self) -> Path:
        """The training reference the monitor compares production with (bins frozen)."""
        return self.models_dir / "monitoring_reference.json"

    @property
    def baseline_table(self) -> Path:
        """The WoE baseline scorecard's bins and points."""
        return self.models_dir / "baseline_scorecard.parquet"

    # --- check, evaluate, robustness, register, package --------------------------------
    @property
    def params_check(self) -> Path:
        """Written once params.yaml is valid; every stage after ``check`` depends on it."""
        return self.reports_dir / "params_check.json"

    @property
    def metrics(self) -> Path:
        """The full evaluation report (every number, intervals, baseline, fairness)."""
        return self.reports_dir / "metrics.json"

    @property
    def headline(self) -> Path:
        """A handful of headline numbers: the metric `dvc metrics show` / `dvc exp show` print."""
        return self.reports_dir / "headline.json"

    @property
    def fairness(self) -> Path:
        return self.reports_dir / "fairness.json"

    @property
    def plots_dir(self) -> Path:
        return self.reports_dir / "plots"

    @property
    def robustness(self) -> Path:
        return self.reports_dir / "robustness.json"

    @property
    def robustness_dir(self) -> Path:
        return self.reports_dir / "robustness"

    @property
    def gate(self) -> Path:
        return self.reports_dir / "gate.json"

    @property
    def validation_dir(self) -> Path:
        """The model validation report (``index.html``) and its plots."""
        return self.reports_dir / "validation"

    @property
    def validation_report(self) -> Path:
        return self.validation_dir / "index.html"

    @property
    def package(self) -> Path:
        return self.reports_dir / "package.json"

    # --- score stage -------------------------------------------------------------------
    @property
    def decisions(self) -> Path:
        return self.scores_dir / "decisions.parquet"

    @property
    def score_rejects(self) -> Path:
        return self.scores_dir / "rejects.parquet"


# --------------------------------------------------------------------------- schemas


class _Report(BaseModel):
    """A JSON artefact: the fields its readers need, typed; other keys are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cohorts(_Strict):
    """The observation dates of each slice (oldest train ... newest test) and how the
    split was made, enough for ``modelling.split.select_slice`` to rebuild any slice.

    ``method``: ``out_of_time`` or ``in_time``; ``group_by_person``: test people were left
    out of the earlier slices; in time, ``seed`` and ``shares`` (test, calibration,
    validation) draw the people. Logs without them are out of time, ungrouped.
    """

    train: list[dt.date]
    validation: list[dt.date]
    calibration: list[dt.date]
    test: list[dt.date]
    method: str = "out_of_time"
    group_by_person: bool = False
    seed: int = 0
    shares: dict[str, float] | None = None


class TrainLog(_Report):
    """``models/train_log.json``, written by train; read by evaluate, robustness, register."""

    engine: str
    best_iteration: int
    evals_result: dict[str, dict[str, list[float]]]
    slices: dict[str, int]
    cohorts: Cohorts
    calibration: dict[str, Any]
    tuning_trials: list[dict[str, Any]]


class UncalibratedMetrics(_Report):
    brier: float
    ece: float


class MetricBlock(_Report):
    auc: float
    gini: float
    ks: float
    brier: float
    ece: float
    log_loss: float
    psi: float


class MetricsReport(MetricBlock):
    """``reports/metrics.json``, written by evaluate; read by register (the gate, MLflow)."""

    baseline: MetricBlock
    uncalibrated: UncalibratedMetrics
    n_test: int
    test_default_rate: float
    mean_pd: float
    calibration_method: str
    best_iteration: int
    band_default_rate_monotone: bool
    approval_rate: float
    mean_limit_approved: float
    fairness: dict[str, Any]
    oracle_auc: float | None = None


class FairnessReport(_Report):
    """``reports/fairness.json``, written by evaluate; register reads its breaches."""

    people: int
    attributes: dict[str, Any]
    breaches: list[str]
    verdict: str


class LimitGains(_Report):
    """One gaming scenario's granted-limit gains (CNY) and whether its bound holds."""

    p99: float
    max: float
    bounded_gain: float
    within_bound: bool


class ScenarioGains(_Report):
    """One gaming scenario's gains (score points, over the people it applied to), its
    limit gains and its status (pass, breach, not exercised)."""

    n: int
    n_targets: int
    mean: float
    p99: float
    max: float
    share_moved: float
    bounded_quantile: float
    bounded_gain: float
    within_bound: bool
    limit_gain: LimitGains
    status: str


class RobustnessSummary(_Report):
    max_bounded_gain: float
    worst_scenario: str
    stable_p90_change: float
    passed: bool


class RobustnessReport(_Report):
    """``reports/robustness.json``, written by robustness; register checks it before it
    logs the reports."""

    sample_people: int
    good_contact_pool: int
    bounds: dict[str, float]
    gaming: dict[str, ScenarioGains]
    stability: dict[str, Any]
    summary: RobustnessSummary
    breaches: list[str]


class GateReport(_Report):
    """``reports/gate.json``, written by register; package reads it."""

    model_name: str
    version: str
    run_id: str
    promote: bool
    reasons: list[str]
    challenger: dict[str, float]
    champion: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None


R = TypeVar("R", bound=BaseModel)


def parse(raw: Any, schema: type[R], source: str | Path) -> R:
    """Check an artefact's content against its schema; one line naming ``source`` if not."""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ArtefactError(f"{source}: {describe_validation_error(err)}") from None


def load_json(path: str | Path, producer: str) -> dict[str, Any]:
    """The JSON object in ``path`` (written by the ``producer`` stage), not yet checked:
    for a reader that passes it on as it is (to MLflow) and checks it with :func:`parse`."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path}: not found (written by the {producer} stage)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtefactError(f"{path}: not valid JSON: {err}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise ArtefactError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    return raw


def read_json(path: str | Path, schema: type[R], producer: str) -> R:
    """Read a JSON artefact that the ``producer`` stage writes, checked against ``schema``."""
    return parse(load_json(path, producer), schema, path)


#: ``models/predictions.parquet``: column -> kind of dtype (written by train, read by
#: evaluate).
PREDICTION_COLUMNS: dict[str, str] = {
    "slice": "str",
    "person_id": "str",
    DATE: "datetime",
    LABEL: "int",
    "margin": "float",
    "pd_uncalibrated": "float",
    "pd": "float",
    "pd_baseline": "float",
}

_KIND_CHECKS = {
    "str": lambda s: ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s),
    "datetime": ptypes.is_datetime64_any_dtype,
    "int": lambda s: ptypes.is_integer_dtype(s) and not ptypes.is_bool_dtype(s),
    "float": ptypes.is_float_dtype,
}


def check_columns(frame: pd.DataFrame, contract: dict[str, str], source: str | Path) -> None:
    """Refuse a table that lacks a contract column or holds it with the wrong dtype."""
    missing = [c for c in contract if c not in frame.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ArtefactError(f"{source}: missing column{plural} {', '.join(missing)}")
    for col, kind in contract.items():
        if not _KIND_CHECKS[kind](frame[col]):
            raise ArtefactError(f"{source}: column '{col}' must be {kind}, got {frame[col].dtype}")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """``models/predictions.parquet``, checked against :data:`PREDICTION_COLUMNS`."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path}: not found (written by the train stage)")
    frame = pd.read_parquet(path)
    check_columns(frame, PREDICTION_COLUMNS, path)
    return frame
