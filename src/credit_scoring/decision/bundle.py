"""The deployable model bundle: features in, the whole credit decision out.

One object holds everything a decision needs: the ordered feature list and its
metadata, the LightGBM booster, the calibrator, the 350-950 score scale and bands, the
credit-limit policy and the benefit tiers, and its feature catalogue (what each feature
means: dimension, risk direction, wording; from the feature registry, or declared by the
lender for features they bring, :mod:`credit_scoring.data.byof`). It is the only code
that turns features into a decision: batch scoring, advice, robustness, MLflow, the
service and the benchmarks all call it. Inputs come as a feature table
(:meth:`CreditModel.decide`), a float64 matrix (:meth:`CreditModel.decide_matrix`, column
arrays out) or mappings of feature values (:meth:`CreditModel.decide_records`, one
plain-JSON decision record per person out). It is saved as plain files (LightGBM's text
model and JSON) rather than a pickle, so loading it
never executes stored code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.config import CalibrateParams, DecisionParams, ScoreParams, TrainParams
from credit_scoring.data.catalogue import FeatureMeta
from credit_scoring.decision import encoding, explain, limits, reason_codes, treeshap
from credit_scoring.decision.scorecard import ScoreScale, assign_band
from credit_scoring.features.registry import (
    FeatureSpec,
    ValueRange,
    feature_spec,
    split_gain_weights,
)
from credit_scoring.features.wording import Wording
from credit_scoring.io import write_atomic, write_json
from credit_scoring.modelling.calibrate import Calibrator, choose_calibrator
from credit_scoring.modelling.split import Split
from credit_scoring.modelling.train import (
    FeatureInputError,
    Trainer,
    feature_matrix,
    labels,
    local_trainer,
    predict_margin,
    tune_lightgbm,
)
from credit_scoring.schemas import DIMENSIONS, Dimension

__all__ = [
    "BOOSTER_FILE",
    "BUNDLE_FILE",
    "DIMENSIONS",
    "POINT_COLUMNS",
    "CreditModel",
    "FeatureInputError",
    "decision_records",
    "decisions_frame",
    "user_feature_spec",
]

logger = logging.getLogger(__name__)

BOOSTER_FILE = "booster.txt"
BUNDLE_FILE = "bundle.json"
POINT_COLUMNS: tuple[str, ...] = tuple(f"points_{d}" for d in DIMENSIONS)
INCOME_FEATURES = ("declared_income", "verified_income")


@dataclass
class CreditModel:
    """Booster + calibrator + score scale + limit and tier policy over a fixed feature list.

    An estimator: the constructor only stores settings (the feature list, the score scale
    and limit policy, the training and calibration params, the seed); :meth:`fit` learns
    ``booster``, ``calibrator``, ``best_iteration``, ``metadata`` and ``training`` (the
    learning curves, calibration report and tuning trials) and returns ``self``;
    ``catalogue`` holds the metadata of features the lender declared (bring your own
    features); every other feature's meaning comes from the feature registry, so
    :meth:`spec` answers for both and constraints, points, reasons and limits follow;
    :meth:`save` / :meth:`load` write and read the learned state as plain files. Every
    decision (batch, service, advice, robustness, benchmarks) goes through this class.
    """

    feature_names: list[str]
    booster: lgb.Booster | None = None
    calibrator: Calibrator | None = None
    best_iteration: int = 0
    score_params: ScoreParams = field(default_factory=ScoreParams)
    decision_params: DecisionParams = field(default_factory=DecisionParams)
    metadata: dict[str, Any] = field(default_factory=dict)
    train_params: TrainParams = field(default_factory=TrainParams)
    calibrate_params: CalibrateParams = field(default_factory=CalibrateParams)
    seed: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    #: What reasons are measured against (explain.Reference.to_dict), learned by fit.
    reason_reference: dict[str, Any] | None = None
    #: The reason-code table version the bundle was fitted with.
    reason_codes_version: str = reason_codes.REASON_CODES_VERSION
    #: How the booster sees missing and thin values (decision/encoding.py), set by fit.
    encoding: dict[str, Any] | None = None
    catalogue: list[FeatureMeta] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.feature_names = list(self.feature_names)
        self.catalogue = [m for m in self.catalogue if not m.protected]
        self._declared = {m.name: user_feature_spec(m) for m in self.catalogue}
        self.scale = ScoreScale.from_params(self.score_params)
        self.specs = [self.spec(n) for n in self.feature_names]
        self.feature_dimensions = [s.dimension.value for s in self.specs]
        self._col = {n: i for i, n in enumerate(self.feature_names)}
        self.used = (
            explain.used_features(self.booster, self.best_iteration)
            if self.booster is not None
            else np.zeros(len(self.feature_names), dtype=bool)
        )
        self._encoding = encoding.check_encoding(self.encoding)
        self.reference = (
            explain.Reference.from_dict(self.reason_reference, self.feature_names)
            if self.reason_reference is not None
            else explain.Reference.population_mean(len(self.feature_names))
        )

    def spec(self, name: str) -> FeatureSpec:
        """What a feature means: the lender's declaration if it brought the feature, else
        the feature registry's (``KeyError`` for a name neither knows)."""
        declared = self._declared.get(name)
        return declared if declared is not None else feature_spec(name)

    # --- learning --------------------------------------------------------------------

    def fit(self, split: Split, trainer: Trainer | None = None) -> CreditModel:
        """Learn the model out of time: LightGBM on ``split.train`` (early stopping on
        ``split.validation``), the calibrator on ``split.calibration``. Returns ``self``.

        Monotone constraints come from the features' risk directions (:meth:`spec`; when
        ``train_params.use_monotone_constraints``); with ``train_params.tune.enabled`` a
        seeded random search picks the LightGBM params first. ``trainer`` fits the booster
        (default: the local :func:`~credit_scoring.modelling.train.local_trainer`; the Dask
        engine passes its own), so every engine shares the rest of this path.
        """
        names = self.feature_names
        params = self.train_params
        unscored = [n for n, w in zip(names, split_gain_weights(names), strict=True) if w == 0]
        if unscored and self.catalogue:
            logger.warning(
                "features %s share their names with unscored features of the registry: the "
                "model carries them but never splits on them (rename them to score them)",
                unscored,
            )
        directions = [s.risk_direction for s in self.specs]
        constraints = directions if params.use_monotone_constraints else None
        # Missing and thinly-based values as the booster sees them (decision/encoding.py).
        # The Dask trainer reads raw features on its workers, so it trains without encoding.
        local = trainer is None or getattr(trainer, "__qualname__", "").startswith("local_trainer.")
        local = bool(getattr(trainer, "encodes_features", local))  # e.g. the refit's trainer
        self.encoding = encoding.fit_encoding(split.train, names) if local else {}
        self._encoding = encoding.check_encoding(self.encoding)
        split = dataclasses.replace(
            split,
            train=encoding.encode_frame(split.train, self._encoding),
            validation=encoding.encode_frame(split.validation, self._encoding),
        )
        trials: list[dict[str, Any]] = []
        if params.tune.enabled:
            if not local:
                raise ValueError("train.tune.enabled is not supported with engine: dask")
            best, trials = tune_lightgbm(
                split.train, split.validation, names, constraints, params, self.seed
            )
            params = params.model_copy(update={"lightgbm": best})
        trained = (trainer or local_trainer())(split, names, constraints, params, self.seed)
        self.booster, self.best_iteration = trained.booster, trained.best_iteration
        margin = self.margin(feature_matrix(split.calibration, names))
        self.calibrator, calibration = choose_calibrator(
            margin,
            labels(split.calibration),
            self.calibrate_params.method,
            self.calibrate_params.ece_bins,
            self.seed,
        )
        cohorts = {k: [str(d) for d in v] for k, v in split.cohorts.items()}
        self.metadata = {
            "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "cohorts": cohorts,
            "lightgbm_params": trained.params,
            "monotone_constraints": dict(zip(names, constraints or [0] * len(names), strict=True)),
        }
        self.training = {
            "best_iteration": trained.best_iteration,
            "evals_result": trained.evals_result,
            "calibration": calibration,
            "tuning_trials": trials,
        }
        self.__post_init__()
        self.reason_reference = self._approved_reference(
            feature_matrix(split.calibration, names)
        ).to_dict(names)
        self.reason_codes_version = reason_codes.REASON_CODES_VERSION
        self.__post_init__()
        return self

    def _approved_reference(self, X: np.ndarray) -> explain.Reference:
        """Reasons' reference: the approved applicants (score >= cut-off) among ``X``'s
        people (the calibration slice); all of them if none is approved."""
        contrib, bias = explain.contributions(self.booster, self.encoded(X), self.best_iteration)
        parts = explain.decompose(
            contrib, bias, self.feature_dimensions, self.calibrator, self.scale
        )
        cutoff = self.decision_params.limit.cutoff_score
        approved = parts.score >= cutoff
        if not approved.any():
            approved = np.ones_like(approved)
        return explain.Reference.of_approved(contrib, X, approved, cutoff)

    # --- inputs ----------------------------------------------------------------------

    def feature_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Order and type-check the model's columns; extra columns are ignored.

        A missing column raises :class:`FeatureInputError` (a ``ValueError``)."""
        return feature_matrix(features, self.feature_names)

    def records_matrix(self, rows: Sequence[Mapping[str, float | None]]) -> np.ndarray:
        """Mappings of feature values (one per person) -> the float64 matrix, in order.

        Missing keys or None are missing values (NaN), as LightGBM treats them; keys the
        model does not use are ignored.
        """
        names = self.feature_names
        return np.array(
            [[np.nan if r.get(n) is None else float(r[n]) for n in names] for r in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(names))

    def _income(self, X: np.ndarray, name: str) -> np.ndarray:
        if name in self._col:
            return X[:, self._col[name]]
        return np.full(X.shape[0], np.nan)

    # --- predictions -----------------------------------------------------------------

    def encoded(self, X: np.ndarray) -> np.ndarray:
        """``X`` as the booster sees it (``encoding``: decision/encoding.py)."""
        return encoding.encode_matrix(X, self.feature_names, self._encoding)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds of default from the booster (before calibration)."""
        return predict_margin(self.booster, self.encoded(X), self.best_iteration)

    def predict_pd(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default for each row."""
        return self.calibrator.predict(self.margin(self.feature_matrix(features)))

    def prepare_explanations(self) -> bool:
        """Build the contribution tables now (:mod:`~credit_scoring.decision.treeshap`;
        otherwise the first decision with reasons builds them, a few seconds for a few
        hundred trees): for a service, at start-up. False if the booster is not covered
        (contributions then come from ``pred_contrib``)."""
        self._check_fitted()
        return treeshap.tables_for(self.booster, self.best_iteration) is not None

    def decide_matrix(self, X: np.ndarray, with_reasons: bool = True) -> dict[str, Any]:
        """The whole decision for a float64 feature matrix, as column arrays.

        Reasons and dimension points need per-feature contributions (TreeSHAP, by table
        look-up several times cheaper than LightGBM's ``pred_contrib`` but still ~10x a
        prediction), so they are computed only when asked for, once per row; the
        margin, PD and score are then taken from the contributions (they sum to the margin
        exactly) in one pass (:func:`~credit_scoring.decision.explain.decompose`), so the
        points add up to the displayed score.
        """
        self._check_fitted()
        parts = None
        if with_reasons:
            contrib, bias = explain.contributions(
                self.booster, self.encoded(X), self.best_iteration
            )
            parts = explain.decompose(
                contrib, bias, self.feature_dimensions, self.calibrator, self.scale
            )
            pd_, score = parts.pd, parts.score
        else:
            pd_ = self.calibrator.predict(self.margin(X))
            score = self.scale.score(pd_)
        declared, verified = self._income(X, "declared_income"), self._income(X, "verified_income")
        policy = self.decision_params.limit
        factors = limits.limit_factors(score, pd_, declared, verified, policy)
        out: dict[str, Any] = {
            "pd": pd_,
            "score": score,
            "band": assign_band(score, self.score_params.bands),
            "credit_limit": factors["limit"],
            "tiers": limits.benefit_tiers(score, self.decision_params.tiers),
        }
        if parts is not None:
            out["base_points"] = parts.base_points
            for j, col in enumerate(POINT_COLUMNS):
                out[col] = parts.points[:, j]
            out["reasons"] = explain.adverse_reasons(
                contrib,
                X,
                self.feature_names,
                self.used,
                self.decision_params.max_reasons,
                self.reference,
                points_per_margin=parts.points_per_margin,
                declined=score < policy.cutoff_score,
                catalogue=self.specs,
            )
            out["limit_reasons"] = reason_codes.limit_reasons(
                factors, score, declared, verified, policy
            )
            out["reason_codes_version"] = np.full(
                len(score), reason_codes.REASON_CODES_VERSION, dtype=object
            )
        return out

    def decide(self, features: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """One row of decision per input row (same order and index)."""
        cols = self.decide_matrix(self.feature_matrix(features), with_reasons)
        return pd.DataFrame(cols, index=features.index)

    def decide_records(
        self,
        rows: Sequence[Mapping[str, float | None]] | pd.DataFrame,
        with_reasons: bool = True,
    ) -> list[dict[str, Any]]:
        """One decision record per person (the service's shape; see
        :func:`decision_records`), from mappings of feature values (missing keys or None =
        missing) or from a feature table (every model column required)."""
        if isinstance(rows, pd.DataFrame):
            X = self.feature_matrix(rows)
        else:
            X = self.records_matrix(rows)
        return decision_records(self.decide_matrix(X, with_reasons), with_reasons)

    def decide_one(
        self, features: Mapping[str, float | None], with_reasons: bool = True
    ) -> dict[str, Any]:
        """One person's decision record from a mapping of feature values.

        Missing keys or None are treated as missing values (NaN), as LightGBM does.
        """
        return self.decide_records([features], with_reasons)[0]

    def with_policy(self, score: ScoreParams, decision: DecisionParams) -> CreditModel:
        """The same booster and calibrator under another score scale and limit policy."""
        return dataclasses.replace(
            self, score_params=score, decision_params=decision, metadata=dict(self.metadata)
        )

    # --- persistence -----------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write booster.txt and bundle.json atomically into ``folder``.

        The learned state and the settings that produced it (training and calibration
        params, seed), so a loaded bundle says how it was made.
        """
        self._check_fitted()
        folder = Path(folder)
        model_str = self.booster.model_to_string(num_iteration=self.best_iteration)
        write_atomic(folder / BOOSTER_FILE, lambda tmp: tmp.write_text(model_str))
        write_json(
            {
                "feature_names": self.feature_names,
                "best_iteration": self.best_iteration,
                "calibrator": self.calibrator.to_dict(),
                "score": self.score_params.model_dump(mode="json"),
                "decision": self.decision_params.model_dump(mode="json"),
                "metadata": self.metadata,
                "train": self.train_params.model_dump(mode="json"),
                "calibrate": self.calibrate_params.model_dump(mode="json"),
                "seed": self.seed,
                "reason_reference": self.reason_reference,
                "reason_codes_version": self.reason_codes_version,
                "encoding": self._encoding,
                "catalogue": [m.to_dict() for m in self.catalogue],
            },
            folder / BUNDLE_FILE,
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CreditModel:
        """Load a bundle written by :meth:`save` (no pickle involved)."""
        folder = Path(folder)
        spec = json.loads((folder / BUNDLE_FILE).read_text())
        booster = lgb.Booster(model_str=(folder / BOOSTER_FILE).read_text())
        return cls(
            feature_names=list(spec["feature_names"]),
            booster=booster,
            calibrator=Calibrator.from_dict(spec["calibrator"]),
            best_iteration=int(spec["best_iteration"]),
            score_params=ScoreParams.model_validate(spec.get("score", {})),
            decision_params=DecisionParams.model_validate(spec.get("decision", {})),
            metadata=dict(spec.get("metadata", {})),
            train_params=TrainParams.model_validate(spec.get("train", {})),
            calibrate_params=CalibrateParams.model_validate(spec.get("calibrate", {})),
            seed=int(spec.get("seed", 0)),
            reason_reference=spec.get("reason_reference"),
            reason_codes_version=str(
                spec.get("reason_codes_version", reason_codes.REASON_CODES_VERSION)
            ),
            encoding=spec.get("encoding"),  # older bundles: none (trained on raw values)
            catalogue=[FeatureMeta.from_dict(d) for d in spec.get("catalogue", [])],
        )

    def _check_fitted(self) -> None:
        if self.booster is None or self.calibrator is None:
            raise ValueError("this CreditModel is not fitted: call fit(split) or load(folder)")


def user_feature_spec(meta: FeatureMeta) -> FeatureSpec:
    """A lender-declared feature as a registry-shaped :class:`FeatureSpec`.

    Its reason reads ``"<description>: <value>"`` (``"<description>: not on record"``
    when missing), the value formatted by its unit; a whole-number feature without a unit
    reads as a count, an encoded category as its level word. No window (a static fact);
    scored; its range is the declared ``min``/``max``; the example (API documentation) is
    0 clipped into that range.
    """
    if meta.protected:
        raise ValueError(f"{meta.name!r} is a protected attribute, never a model feature")
    text = (meta.description or meta.name).replace("{", "{{").replace("}", "}}")
    unit = "count" if meta.unit == "" and meta.integer else meta.unit
    low, high = meta.low, meta.high
    example = float(min(max(0.0, low), high))
    if meta.integer and not example.is_integer():
        example = float(np.ceil(example)) if example == low else float(np.floor(example))
    return FeatureSpec(
        name=meta.name,
        dimension=Dimension(meta.dimension),
        description=meta.description or meta.name,
        risk_direction=meta.risk_direction,
        actionable=meta.actionable,
        unit=unit,
        scored=True,
        window=None,
        reason=Wording(text=f"{text}: {{v}}", missing=f"{text}: not on record"),
        example=example,
        values=ValueRange(low, high, integer=meta.integer),
        levels=meta.levels,
    )


def decision_records(cols: Mapping[str, Any], with_reasons: bool) -> list[dict[str, Any]]:
    """:meth:`CreditModel.decide_matrix`'s columns as one plain-JSON record per person.

    Keys, in order: ``pd``, ``score``, ``band``, ``credit_limit``, ``tiers``, ``reasons``
    (each with its ``code``), ``base_points``, ``dimension_points`` (``{dimension:
    points}``), ``limit_reasons`` (``[{code, text}]``, for every limit below the maximum)
    and ``reason_codes_version``; the last five are None without reasons. This is the
    API's Decision without its ``model_version``.
    """
    out = []
    for i in range(len(cols["pd"])):
        record: dict[str, Any] = {
            "pd": float(cols["pd"][i]),
            "score": int(cols["score"][i]),
            "band": str(cols["band"][i]),
            "credit_limit": float(cols["credit_limit"][i]),
            "tiers": [str(t) for t in cols["tiers"][i]],
            "reasons": None,
            "base_points": None,
            "dimension_points": None,
            "limit_reasons": None,
            "reason_codes_version": None,
        }
        if with_reasons:
            record["reasons"] = [_to_python(r) for r in cols["reasons"][i]]
            record["base_points"] = float(cols["base_points"][i])
            record["dimension_points"] = {
                d: float(cols[c][i]) for d, c in zip(DIMENSIONS, POINT_COLUMNS, strict=True)
            }
            record["limit_reasons"] = [dict(r) for r in cols["limit_reasons"][i]]
            record["reason_codes_version"] = str(cols["reason_codes_version"][i])
        out.append(record)
    return out


def decisions_frame(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions with nested fields (tiers, reasons) as JSON text: a flat table schema
    for MLflow signatures and Parquet files."""
    out = decisions.copy()
    for col in ("tiers", "reasons", "limit_reasons"):
        if col in out:
            out[col] = [json.dumps(_to_python(v)) for v in out[col]]
    return out


def _to_python(value: Any) -> Any:
    """numpy scalars -> plain Python, so a decision serialises to JSON as it is."""
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
