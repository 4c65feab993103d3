"""The scorer behind the service: a deployable bundle and what the service says about it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic_core import ValidationError

from credit_scoring import schemas
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.features.compute import compute_features, network_event_mask
from credit_scoring.features.registry import (
    feature_windows,
)
from credit_scoring.schemas import DIMENSIONS
from credit_scoring.serving.contract import (
    BENTO_MODEL_NAME,
    DEFAULT_MAX_BATCH,
    SERVE_INFO_FILE,
    BatchTooLargeError,
    EventsRequest,
    Features,
    catalogue_features_model,
    utc_naive,
)

# --------------------------------------------------------------------------- the scorer


def behaviour_data(req: EventsRequest, person_id: str = "applicant") -> schemas.BehaviourData:
    """A one-person :class:`~credit_scoring.schemas.BehaviourData` from a request.

    Known contacts become profiles (with their identity check) and those of their late
    repayments that the network features read (:func:`~credit_scoring.features.compute.
    network_event_mask`) become events: exactly the slice
    :func:`~credit_scoring.features.compute.person_data` cuts from the full tables.
    """
    ids = {c.contact_id for c in req.contacts}
    while person_id in ids:
        person_id += "_"
    profile = {"person_id": person_id, **req.profile.model_dump()}
    profiles = [profile]
    events: list[dict[str, Any]] = []
    for i, e in enumerate(req.events):
        row = e.model_dump()
        row["event_time"] = utc_naive(e.event_time)
        row["event_id"] = e.event_id or f"e{i}"
        row["person_id"] = person_id
        events.append(row)
    of_contacts: list[dict[str, Any]] = []
    for c in req.contacts:
        if not c.is_known:
            continue
        profiles.append({"person_id": c.contact_id, "identity_verified": c.identity_verified})
        for j, late in enumerate(c.late_repayments or []):
            of_contacts.append(
                {
                    "event_id": f"c{c.contact_id}:{j}",
                    "person_id": c.contact_id,
                    "event_time": utc_naive(late.event_time),
                    "event_type": schemas.EventType.REPAYMENT.value,
                    "days_past_due": late.days_past_due,
                }
            )
    if of_contacts:
        read = network_event_mask(pd.DataFrame(of_contacts))
        events += [e for e, keep in zip(of_contacts, read.tolist(), strict=True) if keep]
    contacts = [
        {"person_id": person_id, "contact_id": c.contact_id, "since_date": c.since_date}
        for c in req.contacts
    ]

    def table(rows: list[dict[str, Any]], spec: schemas.Table) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=list(spec.column_names)) if rows else None
        if frame is None:
            return schemas.empty_table(spec)
        for col in spec.columns:
            if col.kind in ("date", "datetime"):
                frame[col.name] = pd.to_datetime(frame[col.name])
        return schemas.conform(frame, spec)

    outcomes = [{"person_id": person_id, "observation_date": req.observation_date}]
    return schemas.BehaviourData(
        profiles=table(profiles, schemas.PROFILES),
        outcomes=table(outcomes, schemas.OUTCOMES),
        events=table(events, schemas.EVENTS),
        contacts=table(contacts, schemas.CONTACTS),
    )


class Scorer:
    """A credit model and what the service says about it: the service's whole logic."""

    def __init__(
        self, model: CreditModel, info: dict[str, Any], max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.model = model
        self.info = info
        self.max_batch = int(max_batch)
        self.version = str(info.get("model_version", "unknown"))
        self.windows = feature_windows(model.feature_names)
        self.features_model = catalogue_features_model(model.specs)
        declared = {m.name for m in model.catalogue}  # features the lender brought
        unknown = sorted(set(model.feature_names) - set(Features.model_fields) - declared)
        if unknown:
            raise ValueError(
                f"the model uses features the API does not declare: {unknown[:5]} "
                "(the API's feature schema follows the default feature windows)"
            )

    @classmethod
    def load(cls, folder: str | Path) -> Scorer:
        """A bundle folder (booster.txt, bundle.json) plus its serve_info.json, if any."""
        folder = Path(folder)
        info_file = folder / SERVE_INFO_FILE
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        return cls(CreditModel.load(folder), info, info.get("max_batch", DEFAULT_MAX_BATCH))

    # --- decisions (all made by the bundle) -------------------------------------------

    def _versioned(self, decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The bundle's decision records as the API's Decisions (with the model version)."""
        for d in decisions:
            d["model_version"] = self.version
        return decisions

    def _registry_features_only(self) -> None:
        """The typed routes take the registry's features: a model of features the lender
        brought is scored through :meth:`score_features` (a 400 naming the route)."""
        if self.model.catalogue:
            raise ValidationError.from_exception_data(
                "Features",
                [
                    {
                        "type": "value_error",
                        "loc": ("features",),
                        "input": None,
                        "ctx": {
                            "error": "this model takes the lender's own features "
                            "(POST /model lists them): POST them to /score_features"
                        },
                    }
                ],
            )

    def score_features(
        self, features: Mapping[str, float | None], with_reasons: bool = True
    ) -> dict:
        """One person's decision from the served model's own features by name, checked
        against its catalogue (unknown name, value out of range: pydantic's
        ``ValidationError`` naming the field, a 400 in the service)."""
        checked = self.features_model.model_validate(dict(features)).model_dump()
        return self._versioned([self.model.decide_one(checked, with_reasons)])[0]

    def score(self, features: dict[str, float | None], with_reasons: bool = True) -> dict:
        """One person's decision from their feature values (missing = unknown)."""
        self._registry_features_only()
        return self._versioned([self.model.decide_one(features, with_reasons)])[0]

    def score_batch(
        self, people: Sequence[dict[str, float | None]], with_reasons: bool = False
    ) -> list[dict]:
        """Decisions in order; more than ``max_batch`` people is refused."""
        if len(people) > self.max_batch:
            raise BatchTooLargeError(
                f"people: {len(people)} people in one call; at most {self.max_batch} "
                "(serve.max_batch) are accepted; split the batch"
            )
        self._registry_features_only()
        return self._versioned(self.model.decide_records(people, with_reasons))

    def advise(
        self,
        features: dict[str, float | None],
        max_actions: int = 3,
        min_gain_points: int = 1,
        with_reasons: bool = False,
    ) -> dict:
        """Today's decision and the changes within the person's power that gain most.

        Today's decision is made once (with reasons if asked) and advice builds on it.
        """
        from credit_scoring.config import AdviceParams
        from credit_scoring.decision.advice import advise

        self._registry_features_only()
        today = self.model.decide_one(features, with_reasons)
        row = {n: np.nan if features.get(n) is None else float(features[n]) for n in features}
        params = AdviceParams(max_actions=max_actions, min_gain_points=min_gain_points)
        result = advise(self.model, pd.DataFrame([row]), params, today=[today])[0].to_dict()
        return {
            "decision": self._versioned([today])[0],
            "advice": result["items"],
            "combined": result["combined"],
            "combined_sentence": result["combined_sentence"],
            "model_version": self.version,
        }

    def features_from_events(self, req: EventsRequest) -> pd.DataFrame:
        """The pipeline's feature code on the one-person data of ``req`` (one row)."""
        return compute_features(behaviour_data(req), self.windows)

    def score_events(self, req: EventsRequest, features_out: list | None = None) -> dict:
        """Raw behaviour -> features (pipeline code) -> decision; the feature row is
        appended to ``features_out`` if given (for the audit log)."""
        self._registry_features_only()
        table = self.features_from_events(req)
        if features_out is not None:
            features_out.append(table[self.model.feature_names].iloc[0].to_dict())
        return self._versioned(self.model.decide_records(table, req.with_reasons))[0]

    def model_info(self) -> dict[str, Any]:
        """Name, version, alias, training date, features with metadata, test metrics."""
        m = self.model
        used = set(np.asarray(m.feature_names)[np.asarray(m.used, dtype=bool)])
        features = []
        for name in m.feature_names:
            spec = m.spec(name)
            features.append(
                {
                    "name": name,
                    "dimension": spec.dimension.value,
                    "description": spec.description,
                    "unit": spec.unit,
                    "risk_direction": spec.risk_direction,
                    "used": name in used,
                }
            )
        metrics = {
            k: float(v)
            for k, v in self.info.get("test_metrics", {}).items()
            if isinstance(v, int | float) and np.isfinite(v)
        }
        return {
            "model_name": self.info.get("model_name", BENTO_MODEL_NAME),
            "model_version": self.version,
            "alias": self.info.get("alias"),
            "run_id": self.info.get("run_id"),
            "bento_model": self.info.get("bento_model", ""),
            "trained_at": m.metadata.get("trained_at"),
            "cohorts": m.metadata.get("cohorts", {}),
            "calibration": m.calibrator.method,
            "features": features,
            "dimensions": list(DIMENSIONS),
            "test_metrics": metrics,
            "score_bands": dict(m.score_params.bands),
            "tiers": {t.name: t.min_score for t in m.decision_params.tiers},
            "max_batch": self.max_batch,
        }
