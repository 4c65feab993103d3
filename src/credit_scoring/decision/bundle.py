"""The deployable model bundle: features in, the whole credit decision out.

One object holds everything a decision needs: the ordered feature list and its
metadata, the LightGBM booster, the calibrator, the 350-950 score scale and bands, the
credit-limit policy and the benefit tiers. Batch scoring, MLflow and the service all
use this one class. It is saved as plain files (LightGBM's text model and JSON) rather
than a pickle, so loading it never executes stored code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.config import DecisionParams, ScoreParams
from credit_scoring.decision import explain, limits
from credit_scoring.decision.scorecard import ScoreScale, assign_band
from credit_scoring.features.registry import feature_spec
from credit_scoring.io import write_atomic, write_json
from credit_scoring.modelling.calibrate import Calibrator
from credit_scoring.schemas import Dimension

BOOSTER_FILE = "booster.txt"
BUNDLE_FILE = "bundle.json"
DIMENSIONS: tuple[str, ...] = tuple(d.value for d in Dimension)
POINT_COLUMNS: tuple[str, ...] = tuple(f"points_{d}" for d in DIMENSIONS)
INCOME_FEATURES = ("declared_income", "verified_income")


class FeatureInputError(ValueError):
    """The features given to the model do not match what it was trained on."""


@dataclass
class CreditModel:
    """Booster + calibrator + score scale + limit and tier policy over a fixed feature list."""

    feature_names: list[str]
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    score_params: ScoreParams = field(default_factory=ScoreParams)
    decision_params: DecisionParams = field(default_factory=DecisionParams)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scale = ScoreScale.from_params(self.score_params)
        self.feature_dimensions = [feature_spec(n).dimension.value for n in self.feature_names]
        self.used = explain.used_features(self.booster, self.best_iteration)
        self._col = {n: i for i, n in enumerate(self.feature_names)}

    # --- inputs ----------------------------------------------------------------------

    def feature_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Order and type-check the model's columns; extra columns are ignored."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise FeatureInputError(f"missing {len(missing)} feature column(s): {shown}")
        return features[self.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)

    def _income(self, X: np.ndarray, name: str) -> np.ndarray:
        if name in self._col:
            return X[:, self._col[name]]
        return np.full(X.shape[0], np.nan)

    # --- predictions -----------------------------------------------------------------

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds of default from the booster (before calibration)."""
        # OpenMP start-up dominates tiny batches (~8 ms for one row on 2 threads): one thread.
        threads = 1 if X.shape[0] <= explain.SINGLE_THREAD_ROWS else 0
        return self.booster.predict(
            X, raw_score=True, num_iteration=self.best_iteration, num_threads=threads
        )

    def predict_pd(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default for each row."""
        return self.calibrator.predict(self.margin(self.feature_matrix(features)))

    def decide_matrix(self, X: np.ndarray, with_reasons: bool = True) -> dict[str, Any]:
        """The whole decision for a float64 feature matrix, as column arrays.

        Reasons and dimension points need LightGBM's per-feature contributions (about
        50x the cost of a prediction), so they are computed only when asked for; the
        margin is then taken from the contributions (they sum to it exactly).
        """
        if with_reasons:
            contrib, bias = explain.contributions(self.booster, X, self.best_iteration)
            margin = contrib.sum(axis=1) + bias
        else:
            margin = self.margin(X)
        pd_ = self.calibrator.predict(margin)
        score = self.scale.score(pd_)
        out: dict[str, Any] = {
            "pd": pd_,
            "score": score,
            "band": assign_band(score, self.score_params.bands),
            "credit_limit": limits.credit_limit(
                score,
                pd_,
                self._income(X, "declared_income"),
                self._income(X, "verified_income"),
                self.decision_params.limit,
            ),
            "tiers": limits.benefit_tiers(score, self.decision_params.tiers),
        }
        if with_reasons:
            base, points = explain.dimension_points(
                contrib, bias, self.feature_dimensions, self.calibrator, self.scale
            )
            out["base_points"] = base
            for j, col in enumerate(POINT_COLUMNS):
                out[col] = points[:, j]
            out["reasons"] = explain.top_reasons(
                contrib,
                X,
                self.feature_names,
                self.used,
                self.decision_params.max_reasons,
                points_per_margin=explain.points_per_margin(
                    bias, margin - bias, self.calibrator, self.scale
                ),
            )
        return out

    def decide(self, features: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """One row of decision per input row (same order and index)."""
        cols = self.decide_matrix(self.feature_matrix(features), with_reasons)
        return pd.DataFrame(cols, index=features.index)

    def decide_one(self, features: dict[str, float | None], with_reasons: bool = True) -> dict:
        """One person's decision from a mapping of feature values (the service's path).

        Missing keys or None are treated as missing values (NaN), as LightGBM does.
        """
        row = np.array(
            [
                [
                    np.nan if features.get(n) is None else float(features[n])
                    for n in self.feature_names
                ]
            ],
            dtype=np.float64,
        )
        return _to_python({k: v[0] for k, v in self.decide_matrix(row, with_reasons).items()})

    def with_policy(self, score: ScoreParams, decision: DecisionParams) -> CreditModel:
        """The same booster and calibrator under another score scale and limit policy."""
        return CreditModel(
            self.feature_names,
            self.booster,
            self.calibrator,
            self.best_iteration,
            score,
            decision,
            dict(self.metadata),
        )

    # --- persistence -----------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write booster.txt and bundle.json atomically into ``folder``."""
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
        )


def decisions_frame(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions with nested fields (tiers, reasons) as JSON text: a flat table schema
    for MLflow signatures and Parquet files."""
    out = decisions.copy()
    for col in ("tiers", "reasons"):
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
