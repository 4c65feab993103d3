"""The bundle's feature catalogue: a model of features the lender brought (examples/byof)
takes its constraints, dimension points, reasons and limits from the declared metadata,
keeps it through save/load, and registry models stay as they were."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring.config import CalibrateParams, Params
from credit_scoring.data.byof import ingest_features
from credit_scoring.data.catalogue import FeatureMeta
from credit_scoring.decision.bundle import BUNDLE_FILE, CreditModel, user_feature_spec
from credit_scoring.features.registry import feature_spec
from credit_scoring.features.wording import reason_text
from credit_scoring.modelling.split import out_of_time_split
from credit_scoring.modelling.train import local_trainer
from credit_scoring.stages import score

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "byof"


@pytest.fixture(scope="module")
def byof_model():
    result = ingest_features(EXAMPLE)
    params = Params()
    lgbm = params.train.lightgbm.model_copy(update={"num_boost_round": 200, "learning_rate": 0.1})
    model = CreditModel(
        result.model_features,
        train_params=params.train.model_copy(update={"lightgbm": lgbm}),
        calibrate_params=CalibrateParams(method="sigmoid", ece_bins=10),
        seed=0,
        catalogue=result.metadata,
    )
    model.fit(out_of_time_split(result.features, params.split), local_trainer(num_threads=1))
    return model, result


def test_constraints_and_dimensions_follow_the_declared_metadata(byof_model):
    model, result = byof_model
    declared = {m.name: m for m in result.metadata if not m.protected}
    assert model.metadata["monotone_constraints"] == {
        n: m.risk_direction for n, m in declared.items()
    }
    assert model.feature_dimensions == [declared[n].dimension for n in model.feature_names]
    assert "gender" not in model.feature_names and "age" not in model.feature_names


def test_a_riskier_declared_value_never_lowers_the_pd(byof_model):
    """Directional: more late payments (+1) and a lower bills-on-time share (-1) never
    lower the PD, for every person of the test slice."""
    model, result = byof_model
    people = result.features.head(300)
    base = model.predict_pd(people)
    worse = people.assign(
        n_late_12m=people["n_late_12m"] + 2, bills_on_time_share=people["bills_on_time_share"] / 2
    )
    assert (model.predict_pd(worse) >= base - 1e-12).all()
    assert (model.predict_pd(worse) > base).mean() > 0.5, "the declared features matter"


def test_reasons_read_the_declared_description_and_points_add_up(byof_model):
    model, result = byof_model
    people = result.features.head(200)
    out = model.decide(people, with_reasons=True)
    points = out.filter(like="points_").to_numpy().sum(axis=1) + out["base_points"].to_numpy()
    unclipped = (out["score"] > 350) & (out["score"] < 950)
    assert np.array_equal(points[unclipped], out["score"].to_numpy()[unclipped])
    texts = {r["feature"]: r["text"] for rs in out["reasons"] for r in rs}
    descriptions = {m.name: m.description for m in result.metadata}
    assert texts, "some people have adverse reasons"
    for name, text in texts.items():
        assert text.startswith(descriptions[name] + ": "), text
    reason = next(r for rs in out["reasons"] for r in rs if r["feature"] == "utilisation")
    assert reason["text"] == f"Share of credit limits in use: {100 * reason['value']:.0f}%"
    assert reason["dimension"] == "credit_history"


def test_level_words_and_missing_values_read_as_words():
    meta = FeatureMeta(
        "employment",
        "identity_traits",
        "Employment",
        -1,
        False,
        unit="level",
        low=0,
        high=2,
        integer=True,
        levels=("unemployed", "self-employed", "salaried"),
    )
    spec = user_feature_spec(meta)
    assert reason_text(spec, 0.0) == "Employment: unemployed"
    assert reason_text(spec, None) == "Employment: not on record"
    count = user_feature_spec(
        FeatureMeta("n", "credit_history", "Open {lines}", 1, True, integer=True)
    )
    assert reason_text(count, 3.0) == "Open {lines}: 3", "braces are text; whole numbers read whole"
    with pytest.raises(ValueError, match="protected attribute"):
        user_feature_spec(FeatureMeta("gender", protected=True))


def test_declared_income_drives_the_limit(byof_model):
    """The example declares verified_income: the limit policy reads it, as for registry
    features (a higher verified income never lowers the limit at the same score)."""
    model, result = byof_model
    person = result.features.iloc[[0]]
    low = model.decide(person.assign(verified_income=1000.0), with_reasons=False)
    high = model.decide(person.assign(verified_income=40000.0), with_reasons=False)
    assert "verified_income" in model.feature_names
    assert high["score"].iloc[0] >= low["score"].iloc[0], "declared direction -1"
    assert high["credit_limit"].iloc[0] > low["credit_limit"].iloc[0] > 0


def test_the_catalogue_is_saved_with_the_bundle_and_decisions_survive_loading(byof_model, tmp_path):
    model, result = byof_model
    model.save(tmp_path / "bundle")
    saved = json.loads((tmp_path / "bundle" / BUNDLE_FILE).read_text())
    assert [c["name"] for c in saved["catalogue"]] == model.feature_names
    loaded = CreditModel.load(tmp_path / "bundle")
    assert loaded.catalogue == model.catalogue
    people = result.features.head(50)
    a = model.decide(people, with_reasons=True)
    b = loaded.decide(people, with_reasons=True)
    assert a["score"].tolist() == b["score"].tolist()
    assert a["reasons"].tolist() == b["reasons"].tolist()
    assert math.isinf(loaded.spec("n_late_12m").value_range.high)


def test_registry_models_keep_the_registry_catalogue(small_model, tmp_path):
    """A model of registry features saves an empty catalogue and answers every spec from
    the feature registry, before and after loading."""
    small_model.save(tmp_path / "bundle")
    assert json.loads((tmp_path / "bundle" / BUNDLE_FILE).read_text())["catalogue"] == []
    loaded = CreditModel.load(tmp_path / "bundle")
    for name in loaded.feature_names[:10]:
        assert loaded.spec(name) == feature_spec(name)
    with pytest.raises(KeyError, match="unknown feature"):
        loaded.spec("not_a_feature")


def test_the_score_stage_scores_a_folder_of_lender_features(byof_model, tmp_path):
    """`credit-scoring score --input <folder>` validates a features-mode folder as ingest
    does: scored + rejected = input rows, the bad row rejected with its reason."""
    model, _ = byof_model
    model.save(tmp_path / "bundle")
    folder = tmp_path / "new-people"
    shutil.copytree(EXAMPLE, folder)
    lines = (folder / "features.csv").read_text().splitlines()[:21]
    bad = lines[1].split(",")
    bad[0], bad[4] = "NEW", "2.5"  # utilisation above its max of 1
    (folder / "features.csv").write_text("\n".join([*lines, ",".join(bad)]) + "\n")
    out = score.run(
        Params(), input_path=folder, output_dir=tmp_path / "scores", model_dir=tmp_path / "bundle"
    )
    assert (out["input rows"], out["scored"], out["rejected"]) == (21, 20, 1)
    rejects = pd.read_parquet(tmp_path / "scores" / "rejects.parquet")
    assert rejects["reason"].tolist() == ["utilisation 2.5 above max 1"]
