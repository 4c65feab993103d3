"""Reason wording: every feature's sentence, filled in with its value in its unit."""

from __future__ import annotations

import math

import pytest

from credit_scoring.features.registry import FEATURES, feature_spec
from credit_scoring.features.wording import Wording, format_value, reason_text


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("n_late_30p_90d", 3.0, "3 repayments 30 or more days late in the last 90 days"),
        ("n_late_30p_90d", 1.0, "1 repayment 30 or more days late in the last 90 days"),
        ("n_late_60d", 2.0, "2 late repayments in the last 60 days"),
        ("utilisation_latest", 0.92, "Credit use is 92% of your limit"),
        ("verified_income", 4500.0, "Verified monthly income is CNY 4,500"),
        ("verified_income", math.nan, "Income not verified"),
        ("declared_income", None, "Monthly income not provided"),
        ("worst_dpd_90d", 45.0, "A repayment was 45 days late in the last 90 days"),
        ("days_since_last_late", 1.0, "Your last late repayment was 1 day ago"),
        ("days_since_last_late", math.nan, "No late repayment on record"),
        ("identity_verified", 0.0, "Identity is not verified"),
        ("education_level", 1.0, "Education level: secondary"),
        ("employment_years", 0.5, "In your current job for less than a year"),
        ("contacts_late30_mean_365d", 0.4, "Your known contacts had 0.4 repayments 30 or more"),
        (
            "spend_cv_12m",
            1.25,
            "Month-to-month variation of spending over the last 12 months: 1.25",
        ),
        ("spend_cv_12m", math.nan, "Month-to-month variation of spending over the last 12 months"),
    ],
)
def test_reason_text_formats_units_sensibly(name, value, text):
    got = reason_text(feature_spec(name), value)
    assert got.startswith(text), f"{name}={value}: {got!r}"


def test_every_feature_reads_without_placeholders_for_any_value():
    for spec in FEATURES:
        for value in (0.0, 1.0, 0.37, 12.0, math.nan):
            got = reason_text(spec, value)
            assert got and not got[0].islower(), f"{spec.name}={value}: {got!r}"
            assert not any(bad in got for bad in ("{", "}", "nan", "None")), (
                f"{spec.name}={value}: {got!r}"
            )


def test_format_value_reads_each_unit():
    assert format_value(feature_spec("n_late_90d"), 3.0) == "3"
    assert format_value(feature_spec("contacts_late30_mean_365d"), 0.4) == "0.4"
    assert format_value(feature_spec("utilisation_latest"), 0.92) == "92%"
    assert format_value(feature_spec("verified_income"), 4500.0) == "CNY 4,500"
    assert format_value(feature_spec("worst_dpd_90d"), 1.0) == "1 day"
    assert format_value(feature_spec("platform_months"), 0.3) == "less than a month"
    assert format_value(feature_spec("employment_years"), 2.5) == "2.5 years"
    assert format_value(feature_spec("income_verified"), 1.0) == "yes"
    assert format_value(feature_spec("occupation_stability"), 4.0) == "civil servant"
    assert format_value(feature_spec("occupation_stability"), 2.5) == "2.5", "not a level"
    assert format_value(feature_spec("spend_trend"), 1.234) == "1.23"


def test_wording_fields_are_the_placeholders_its_sentences_use():
    w = Wording("{v} late repayment{s} in the last {w} days", "", "None in {w} days")
    assert w.fields() == {"v", "s", "w"}
    assert Wording("Income is verified", "Income not verified").fields() == set()
