"""The feature registry is the one home of feature knowledge: every feature declares its
wording, range, window and example, the ranges hold on simulated data, and what other
layers need (the API's request model, advice, the scorer's windows) is derived from it."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pydantic
import pytest

from credit_scoring.decision import advice
from credit_scoring.features.registry import (
    CURRENT_ACCOUNT_DAYS,
    DEFAULT_WINDOWS,
    EXAMPLE_FEATURES,
    FEATURES,
    UNIT_RANGES,
    YEAR_DAYS,
    FeatureSpec,
    ValueRange,
    WindowedFeature,
    feature_names,
    feature_spec,
    feature_specs,
    feature_windows,
)
from credit_scoring.features.wording import Wording
from credit_scoring.schemas import Dimension
from credit_scoring.serving import contract, scorer
from credit_scoring.serving.contract import (
    AdviceRequest,
    BatchRequest,
    Features,
    ScoreRequest,
    feature_bounds,
)

OTHER_WINDOWS = (7, 60, 400)
_WORDING = Wording("{v} things", "Nothing on record")


def _all_specs() -> list[FeatureSpec]:
    return [*FEATURES, *feature_specs(OTHER_WINDOWS)]


def _periods(description: str) -> list[int]:
    """Days of every period a description names ("last 90 days", "last 12 months")."""
    days = [int(d) for d in re.findall(r"last (\d+) days", description)]
    months = [int(m) for m in re.findall(r"last (\d+) months", description)]
    return days + [YEAR_DAYS * m // 12 for m in months]


# --------------------------------------------------------------------------- declarations


def test_every_feature_declares_wording_range_window_and_example():
    """For the default and other windows: a wording, a range (low <= high) that holds the
    example (a whole number where the range says so), and a window."""
    for spec in _all_specs():
        assert isinstance(spec.reason, Wording) and spec.reason.text, spec.name
        r = spec.value_range
        assert isinstance(r, ValueRange) and r.low <= r.high, spec.name
        assert spec.example in r, f"{spec.name}: example {spec.example} outside {r}"
        assert isinstance(spec.example, int | float) and math.isfinite(spec.example)
        assert spec.window is None or spec.window > 0, spec.name
    assert set(EXAMPLE_FEATURES) == {s.name for s in FEATURES}


def test_windows_follow_the_names_and_the_descriptions():
    """A windowed feature's window is its name's; a fixed feature's window is the longest
    period its description names; features that name none look at the whole history or
    the profile (None), or at current accounts (statements of the last 90 days)."""
    for spec in _all_specs():
        if spec.stem is not None:
            assert spec.name == f"{spec.stem}_{spec.window}d", spec.name
            continue
        periods = _periods(spec.description)
        if periods:
            assert spec.window == max(periods), f"{spec.name}: {spec.window} vs {periods}"
        elif spec.window is not None:
            assert spec.window == CURRENT_ACCOUNT_DAYS, spec.name
            assert re.search("current account|latest statement", spec.description), spec.name
        if re.search(r"_\d+d$", spec.name):
            assert spec.window == int(spec.name.rsplit("_", 1)[1][:-1]), spec.name
    assert feature_spec("n_contacts").window is None, "a link age is not a look-back window"
    assert feature_spec("days_since_last_late").window is None, "reads the whole history"


def test_ranges_are_the_units_unless_declared_and_honest_where_they_differ():
    """Counts whole >= 0, shares in [0, 1], flags 0/1; utilisation and the other shares that
    can exceed 1 say so, trends can be negative, levels stop at their last word."""
    assert UNIT_RANGES["count"] == ValueRange(0, math.inf, integer=True)
    assert UNIT_RANGES["share"] == ValueRange(0, 1)
    assert UNIT_RANGES["flag"] == ValueRange(0, 1, integer=True)
    for spec in FEATURES:
        if spec.values is None and not spec.levels:
            assert spec.value_range == UNIT_RANGES[spec.unit], spec.name
    for name in ("utilisation_latest", "repaid_to_due_365d", "income_verified_ratio"):
        assert feature_spec(name).value_range.high == math.inf, name
    assert feature_spec("utilisation_trend").value_range.low == -math.inf
    assert feature_spec("late_rate_trend").value_range == ValueRange(-1, 1)
    assert feature_spec("spend_trend").value_range.low == 0, "a ratio of two spendings"
    assert feature_spec("education_level").value_range == ValueRange(0, 5, integer=True)
    assert feature_spec("occupation_stability").value_range == ValueRange(0, 4, integer=True)
    assert not feature_spec("contacts_late30_mean_365d").value_range.integer, "an average"


def test_every_value_of_the_simulated_world_lies_in_its_features_range(small_world):
    """The declared ranges hold on data: every computed value of every feature of the
    small world is inside its range, and whole wherever the range says so."""
    _, _, table = small_world
    for spec in FEATURES:
        v = table[spec.name].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        r = spec.value_range
        assert ((v >= r.low) & (v <= r.high)).all(), (
            f"{spec.name}: values in [{v.min()}, {v.max()}] outside [{r.low}, {r.high}]"
        )
        if r.integer:
            assert (v == np.round(v)).all(), f"{spec.name}: not whole numbers"


def test_declarations_are_checked_when_made():
    """A feature without wording, with an unknown placeholder, a window placeholder
    without a window, an example outside its range or a unit without a range is refused."""
    base = dict(name="x", dimension=Dimension.CREDIT_HISTORY, description="X")
    with pytest.raises(TypeError, match="reason"):
        FeatureSpec(**base, risk_direction=0, actionable=True, unit="count", window=None, example=0)
    kw = dict(**base, risk_direction=0, actionable=True, unit="count", window=None, example=0)
    with pytest.raises(ValueError, match="unknown field"):
        FeatureSpec(**{**kw, "reason": Wording("{n} things", "")})
    with pytest.raises(ValueError, match="without a window"):
        FeatureSpec(**{**kw, "reason": Wording("{v} in {w} days", "")})
    assert FeatureSpec(**{**kw, "window": 30, "reason": Wording("{v} in {w} days", "")})
    with pytest.raises(ValueError, match="outside its range"):
        FeatureSpec(**{**kw, "reason": _WORDING, "example": -1})
    with pytest.raises(ValueError, match="outside its range"):
        FeatureSpec(**{**kw, "reason": _WORDING, "example": 0.5})  # a count is whole
    with pytest.raises(ValueError, match="no default range"):
        FeatureSpec(**{**kw, "unit": "level", "reason": _WORDING})
    with pytest.raises(ValueError, match="unknown field"):
        WindowedFeature(
            "y", Dimension.CREDIT_HISTORY, "Y in {w} days", 0, True, "count",
            reason=Wording("{x}", ""), example_per_day=0,
        )  # fmt: skip


# --------------------------------------------------------------------------- the API


def _limits(name: str) -> tuple[float, float]:
    prop = Features.model_json_schema()["properties"][name]
    number = next(s for s in prop["anyOf"] if s.get("type") == "number")
    return number["minimum"], number["maximum"]


def test_the_apis_feature_bounds_descriptions_and_examples_are_the_registrys():
    """Each field of the request model: the registry's range (an unbounded end capped at
    the API's 1e10), description and example; the documented example person is the
    registry's, and it is accepted by every request that carries features."""
    cap = contract._MAX_VALUE
    schema = Features.model_json_schema()
    assert list(schema["properties"]) == [s.name for s in FEATURES]
    for spec in FEATURES:
        r = spec.value_range
        want = (max(r.low, -cap), min(r.high, cap))
        assert _limits(spec.name) == want, spec.name
        assert feature_bounds(spec) == {"ge": want[0], "le": want[1]}
        prop = schema["properties"][spec.name]
        assert prop["examples"] == [spec.example], spec.name
        assert prop["description"].startswith(
            f"[{spec.dimension.value}] {spec.description} ({spec.unit}). "
        ), spec.name
    assert schema["example"] == EXAMPLE_FEATURES
    for model in (ScoreRequest, AdviceRequest):
        example = model.model_json_schema()["example"]
        assert example["features"] == EXAMPLE_FEATURES
        model.model_validate(example)
    BatchRequest.model_validate(BatchRequest.model_json_schema()["example"])


def test_a_value_outside_the_registry_range_is_refused_by_the_api():
    """At each end of each feature's range the API accepts the bound and refuses the next
    value beyond it (an unbounded end: beyond the API's cap)."""
    cap = contract._MAX_VALUE
    for spec in FEATURES:
        r = spec.value_range
        low, high = max(r.low, -cap), min(r.high, cap)
        Features.model_validate({spec.name: low})
        Features.model_validate({spec.name: high})
        for bad in (low - max(1e-6, abs(low) * 1e-6), high + max(1e-6, abs(high) * 1e-6)):
            assert bad not in r or abs(bad) > cap
            with pytest.raises(pydantic.ValidationError, match=spec.name):
                Features.model_validate({spec.name: bad})


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("windows", [DEFAULT_WINDOWS, (7,), (30, 60), (1, 400, 720)])
def test_feature_windows_recovers_the_windows_of_a_feature_list(windows):
    """From the full list in any order, with ids, labels and unknown names mixed in, and
    from any list holding one windowed feature per window."""
    names = [*feature_names(windows), "person_id", "observation_date", "default_12m", "x_5d"]
    random.Random(0).shuffle(names)
    assert feature_windows(names) == tuple(sorted(windows))
    stems = ["n_late", "spend", "n_purchases"]
    some = [f"{stems[i % 3]}_{w}d" for i, w in enumerate(windows)] + ["ontime_rate_365d"]
    assert feature_windows(some) == tuple(sorted(windows))


def test_feature_windows_of_a_model_and_of_a_list_without_windowed_features(small_model):
    assert feature_windows(small_model.feature_names) == DEFAULT_WINDOWS
    assert feature_windows(["ontime_rate_365d", "worst_dpd_90d"]) == DEFAULT_WINDOWS
    assert feature_windows([]) == DEFAULT_WINDOWS


def test_advice_and_the_scorer_use_the_registrys_feature_windows():
    """One implementation: the names other layers use are the registry's function."""
    assert advice.feature_windows is feature_windows
    assert scorer.feature_windows is feature_windows
