"""Serving a model of features the lender brought: POST /score_features, checked against
the served bundle's own catalogue (in process and over HTTP with a real `bentoml serve`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from pydantic import ValidationError

from credit_scoring.config import CalibrateParams, Params
from credit_scoring.data.byof import ingest_features
from credit_scoring.decision.bundle import CreditModel
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.serving.scorer import Scorer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "byof"


@pytest.fixture(scope="module")
def byof():
    """A small model of examples/byof and its feature table."""
    result = ingest_features(EXAMPLE)
    params = Params()
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 150, "learning_rate": 0.1})
    model = CreditModel(
        result.model_features,
        train_params=params.train.model_copy(update={"lightgbm": lgbm}),
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=0,
        catalogue=result.metadata,
    )
    model.fit(out_of_time_split(result.features, params.split), local_trainer(num_threads=1))
    return model, result.features


def _person(table: pd.DataFrame, i: int, names: list[str]) -> dict:
    row = table.iloc[i]
    return {n: None if pd.isna(row[n]) else float(row[n]) for n in names}


def test_a_byof_model_is_servable_and_scores_as_the_bundle_does(byof):
    model, table = byof
    scorer = Scorer(model, {"model_version": "7"})
    person = _person(table, 3, model.feature_names)
    got = scorer.score_features(person, with_reasons=True)
    want = model.decide(table.iloc[[3]], with_reasons=True).iloc[0]
    assert (got["score"], got["band"], got["model_version"]) == (want["score"], want["band"], "7")
    assert got["pd"] == pytest.approx(want["pd"])
    assert [r["text"] for r in got["reasons"]] == [r["text"] for r in want["reasons"]]
    info = scorer.model_info()["features"]
    assert {f["name"]: f["description"] for f in info}["utilisation"] == (
        "Share of credit limits in use"
    )


@pytest.mark.parametrize(
    ("features", "field", "kind"),
    [
        ({"income": 1.0}, "income", "extra_forbidden"),
        ({"utilisation": 1.5}, "utilisation", "less_than_equal"),
        ({"n_late_12m": -1.0}, "n_late_12m", "greater_than_equal"),
        ({"n_late_12m": 1.5}, "n_late_12m", "multiple_of"),
        ({"employment": 3.0}, "employment", "less_than_equal"),
    ],
)
def test_unknown_names_and_out_of_range_values_are_refused_naming_the_field(
    byof, features, field, kind
):
    scorer = Scorer(byof[0], {})
    with pytest.raises(ValidationError) as err:
        scorer.score_features(features)
    (e,) = err.value.errors()
    assert (e["loc"], e["type"]) == ((field,), kind)


def test_missing_features_are_missing_values(byof):
    model, _ = byof
    scorer = Scorer(model, {})
    assert scorer.score_features({}) == scorer.score_features(dict.fromkeys(model.feature_names))


def test_the_registry_routes_refuse_a_byof_model_and_serve_registry_models(byof, small_model):
    scorer = Scorer(byof[0], {})
    with pytest.raises(ValidationError, match="POST them to /score_features"):
        scorer.score({"n_late_365d": 1.0})
    registry = Scorer(small_model, {})
    name = small_model.feature_names[0]
    assert registry.score_features({name: 0.0}) == registry.score({name: 0.0})


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def server(byof, tmp_path_factory, serve_tools):
    """`bentoml serve` of the BYOF bundle, imported and pinned as `package` does."""
    root = tmp_path_factory.mktemp("byof_bento")
    byof[0].save(root / "bundle")
    home = serve_tools.import_to_home(root / "bundle", root, 50)
    with (
        serve_tools.bentoml_serve(home, root / "serve.log") as served,
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        yield client


@pytest.mark.slow
def test_score_features_over_http(server, byof):
    model, table = byof
    person = _person(table, 5, model.feature_names)
    r = server.post("/score_features", json={"features": person, "with_reasons": True})
    assert r.status_code == 200, r.text
    want = model.decide(table.iloc[[5]], with_reasons=True).iloc[0]
    assert r.json()["score"] == int(want["score"])
    assert set(r.json()["dimension_points"]) == {
        "credit_history",
        "fulfilment_capacity",
        "behaviour_preferences",
        "identity_traits",
        "social_connections",
    }
    bad = server.post("/score_features", json={"features": {"utilisation": 2.0}})
    assert bad.status_code == 400 and "utilisation" in bad.text, bad.text
    unknown = server.post("/score_features", json={"features": {"income": 2.0}})
    assert unknown.status_code == 400 and "income" in unknown.text, unknown.text
    typed = server.post("/score", json={"features": {"n_late_365d": 1.0}})
    assert typed.status_code == 400 and "/score_features" in typed.text, typed.text
    card = server.post("/model", json={})
    assert card.status_code == 200, card.text
    assert [f["name"] for f in card.json()["features"]] == model.feature_names
