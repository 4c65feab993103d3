"""The deployable model bundle: features in, calibrated probability of default out.

One object holds everything a prediction needs (feature list, booster, calibrator and
metadata). It is saved as plain files (LightGBM's text model and JSON) rather than a
pickle, so loading it never executes stored code; batch scoring, MLflow and the
service all use this one class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.calibrate import Calibrator
from credit_scoring.io import write_atomic, write_json

BOOSTER_FILE = "booster.txt"
BUNDLE_FILE = "bundle.json"


class FeatureInputError(ValueError):
    """The features given to the model do not match what it was trained on."""


@dataclass
class CreditModel:
    """Booster + calibrator over a fixed, ordered feature list."""

    feature_names: list[str]
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def feature_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Order and type-check the model's columns; extra columns are ignored."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise FeatureInputError(f"missing {len(missing)} feature column(s): {shown}")
        return features[self.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds of default from the booster (before calibration)."""
        return self.booster.predict(X, raw_score=True, num_iteration=self.best_iteration)

    def predict_pd(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default for each row."""
        return self.calibrator.predict(self.margin(self.feature_matrix(features)))

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
            metadata=dict(spec.get("metadata", {})),
        )
