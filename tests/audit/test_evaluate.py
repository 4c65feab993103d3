"""The band check of the evaluate stage: a tolerance for noise, and "not checkable" when
the test slice cannot judge the ordering (issues #12 and #13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.audit.evaluate import band_check, band_table, bands_monotone

BANDS = {"poor": 350, "fair": 550, "good": 600, "very good": 650, "excellent": 700}


def _table(people: list[int], defaults: list[int]) -> pd.DataFrame:
    names = list(BANDS)[: len(people)]
    return pd.DataFrame(
        {
            "band": names,
            "people": people,
            "defaults": defaults,
            "default_rate": np.array(defaults) / np.array(people),
        }
    )


def test_a_rise_of_about_one_standard_error_is_noise_not_a_failure():
    """#13: a better band at 1.49% after one at 1.14% is about 1.2 standard errors: the
    strict check failed it; the tolerance passes it and the numbers are in the report."""
    check = band_check(_table([3000, 3000], [34, 45]), min_people=100)
    (comp,) = check["comparisons"]
    assert check["status"] == "pass", check["why"]
    assert comp["default_rate"] == pytest.approx(0.01133, abs=1e-4)
    assert comp["next_default_rate"] == pytest.approx(0.015)
    assert 1.0 < comp["z"] < 1.5 and comp["significant_rise"] is False
    assert bands_monotone(_table([3000, 3000], [34, 45]), 100)[0] is True


def test_a_rise_well_beyond_noise_fails_naming_the_bands_and_the_z():
    check = band_check(_table([3000, 3000, 3000], [300, 150, 300]), min_people=100)
    assert check["status"] == "fail"
    assert "'good' defaults at 10.00% > 'fair' at 5.00%" in check["why"]
    assert "standard errors" in check["why"]


def test_everyone_in_one_band_is_not_checkable_never_pass():
    """Issue #12 case 3: a model with one PD for everyone put all in one band and the old
    check called that monotone."""
    score = np.full(400, 620)
    y = (np.arange(400) % 10 == 0).astype(float)
    table = band_table(score, y, np.full(400, 0.1), BANDS)
    check = band_check(table, min_people=100)
    assert check["status"] == "not checkable", check
    assert check["bands_checked"] == ["good"]
    assert "1 band(s)" in check["why"]


def test_bands_below_the_minimum_people_are_left_out():
    check = band_check(_table([3000, 20, 3000], [300, 10, 150]), min_people=100)
    assert check["bands_checked"] == ["poor", "good"] and check["status"] == "pass"


# --- what DVC plots and the PNGs show ----------------------------------------------------


def _curves(n: int = 2000, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    return {
        "model": (y, np.clip(0.1 + 0.3 * y + rng.normal(0, 0.2, n), 0.001, 0.999)),
        "baseline": (y, np.clip(0.1 + 0.2 * y + rng.normal(0, 0.2, n), 0.001, 0.999)),
        "oracle": (y, np.clip(0.1 + 0.5 * y + rng.normal(0, 0.2, n), 0.001, 0.999)),
    }


def test_per_curve_gives_each_roc_curve_its_own_table_in_order():
    """DVC draws one line per file: the long ROC table splits into one table per model,
    each a whole curve from (0, 0) to (1, 1), without the `model` column."""
    from credit_scoring.audit.evaluate import per_curve, roc_table

    tables = per_curve(roc_table(_curves()))
    assert list(tables) == ["model", "baseline", "oracle"]
    for t in tables.values():
        assert list(t.columns) == ["fpr", "tpr"]
        assert t["fpr"].is_monotonic_increasing and t["tpr"].is_monotonic_increasing
        assert (t.iloc[0].tolist(), t.iloc[-1].tolist()) == ([0.0, 0.0], [1.0, 1.0])


def test_headline_is_short_and_numeric():
    """The DVC metric is a handful of numbers (not the ~230 of metrics.json): every value
    a number or a bool, the baseline's AUC beside the model's."""
    from credit_scoring.audit.evaluate import headline

    metrics = {
        "auc": 0.81234567891,
        "ks": 0.5,
        "ece": 0.01,
        "brier": 0.04,
        "psi": 0.02,
        "baseline": {"auc": 0.78, "ks": 0.4},
        "oracle_auc": 0.9,
        "approval_rate": 0.9,
        "mean_limit_approved": 7000.5,
        "n_test": 600,
        "band_default_rate_monotone": True,
        "ci": {"auc": {"low": 0.7, "high": 0.9}},
        "split": {"method": "out_of_time"},
    }
    h = headline(metrics)
    assert h["auc"] == pytest.approx(0.812346) and h["baseline_auc"] == 0.78
    assert len(h) <= 12 and all(isinstance(v, float | int | bool) for v in h.values())
    assert "ci" not in h and "split" not in h


def _line_colours_and_styles(fig) -> dict[str, tuple[str, str]]:
    from matplotlib.colors import to_hex

    ax = fig.axes[0]
    return {
        ln.get_label(): (to_hex(ln.get_color()), ln.get_linestyle())
        for ln in ax.get_lines()
        if not ln.get_label().startswith("_")
    }


def test_calibration_png_draws_model_and_uncalibrated_distinctly():
    """Each curve of the calibration figure has its own colour, and "uncalibrated" is
    also dashed: it never reads as the calibrated model."""
    from credit_scoring.audit.evaluate import calibration_table, plot_calibration

    curves = _curves()
    y, p = curves["model"]
    tables = {
        "model": calibration_table(y, p),
        "uncalibrated": calibration_table(y, p * 1.3),
        "baseline": calibration_table(*curves["baseline"]),
    }
    styles = _line_colours_and_styles(plot_calibration(tables))
    named = {k: v for k, v in styles.items() if k in tables}
    assert len({c for c, _ in named.values()}) == 3, named
    assert named["uncalibrated"][1] != named["model"][1], named


def test_roc_png_has_one_colour_per_model():
    from credit_scoring.audit.evaluate import plot_roc, roc_table

    styles = _line_colours_and_styles(plot_roc(roc_table(_curves()), dict.fromkeys(_curves(), 0.8)))
    assert len({c for c, _ in styles.values()}) == 3, styles


def test_score_distribution_band_labels_overlap_nothing():
    """Band names (drawn once the figure is rendered) overlap neither each other, nor the
    title, nor the legend, with the project's bands."""
    from credit_scoring.audit.evaluate import plot_score_distribution
    from credit_scoring.config import Params

    bands = Params().score.bands
    rng = np.random.default_rng(1)
    fig = plot_score_distribution(
        {"train": rng.normal(640, 60, 3000), "test": rng.normal(630, 60, 1000)}, bands
    )
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # text extents are known after a draw
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text() in bands]
    assert sorted(t.get_text() for t in labels) == sorted(bands)
    boxes = [t.get_window_extent(renderer) for t in labels]
    others = [ax.title.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :] + others:
            assert not a.overlaps(b), f"{labels[i].get_text()!r} overlaps another label"
