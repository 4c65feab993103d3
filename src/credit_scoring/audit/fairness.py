"""Fairness report: how decisions and risk estimates differ across protected groups.

Protected attributes (gender, age band) are never model inputs (see ``features``); they are
joined to the test cohort's decisions only here, to measure outcomes per group.

Label orientation (credit convention, stated once because it is easy to get backwards):

* the *favourable outcome* is **approval** (credit limit > 0); fairlearn's "selection rate"
  is therefore the approval rate;
* the *qualified* people are the true **goods** (did NOT default within the label horizon). Equal
  opportunity asks whether goods are approved at the same rate in every group, so fairlearn
  gets ``y_true = 1 - default_12m`` and ``y_pred = approved``: its "true positive rate" is
  then the approval rate among goods.

Gap measures (demographic-parity difference and ratio, equal-opportunity difference, the
four-fifths rule) compare only groups that are *known* and have at least
``min_group_size`` people: a missing attribute is not a protected class (it mixes people of
every group and mostly marks a thin profile), and a group of a few dozen people gives rates
too noisy to judge. Such groups are still reported in full, flagged ``in_gaps = false``.

Calibration per group (mean PD vs observed default rate, and the default rate per score
band per group) is what tells real risk differences from model bias: if every group's PD
matches its default rate, an approval gap reflects a difference in measured risk, not a
score that under- or over-states one group's risk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from matplotlib.figure import Figure

from credit_scoring.config import FairnessParams
from credit_scoring.modelling.metrics import auc, ece

UNKNOWN = "unknown"
#: Columns the decisions frame must carry (one row per test person, aligned with labels).
DECISION_COLUMNS = ("score", "pd", "band", "credit_limit")


def _nan_to_none(value: Any) -> Any:
    """JSON has no NaN: missing numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: _nan_to_none(v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def group_labels(values: pd.Series) -> pd.Series:
    """Attribute values as group labels; missing values form their own 'unknown' group."""
    return values.astype("string").fillna(UNKNOWN).astype(str)


def group_table(
    frame: pd.DataFrame, groups: pd.Series, n_bins: int, min_group_size: int
) -> pd.DataFrame:
    """One row per group: people, approval rates, score, limit, default rate, PD, AUC, ECE.

    ``frame`` has ``good`` (1 = repaid), ``approved`` (0/1), ``score``, ``pd`` and
    ``credit_limit``. ``calibration_gap`` = mean PD - default rate (positive: the model
    over-states the group's risk); ``default_rate_se`` is the binomial standard error of
    the default rate, to judge how much of a gap is noise. Plain pandas in one pass; the
    approval rates are what fairlearn calls selection and true-positive rates.
    """
    df = frame.assign(
        group=groups.to_numpy(),
        default=1 - frame["good"],
        limit_if_approved=frame["credit_limit"].where(frame["approved"] == 1),
        approved_good=frame["approved"].where(frame["good"] == 1),
        approved_bad=frame["approved"].where(frame["good"] == 0),
    )
    by = df.groupby("group", sort=True)
    table = by.agg(
        people=("approved", "size"),
        approval_rate=("approved", "mean"),
        approval_rate_goods=("approved_good", "mean"),
        approval_rate_defaulters=("approved_bad", "mean"),
        mean_score=("score", "mean"),
        mean_limit_approved=("limit_if_approved", "mean"),
        default_rate=("default", "mean"),
        mean_pd=("pd", "mean"),
    )
    if "true_pd" in df.columns:  # the synthetic world's truth: what a perfect model would do
        table["mean_true_pd"] = by["true_pd"].mean()
        table["oracle_approval_rate"] = by["oracle_approved"].mean()
    table["auc"] = by.apply(lambda g: auc(g["default"], g["pd"]), include_groups=False)
    table["ece"] = by.apply(lambda g: ece(g["default"], g["pd"], n_bins), include_groups=False)
    table = table.reset_index()
    table["people"] = table["people"].astype(int)
    table["calibration_gap"] = table["mean_pd"] - table["default_rate"]
    dr = table["default_rate"]
    table["default_rate_se"] = np.sqrt(dr * (1 - dr) / table["people"])
    table["in_gaps"] = (table["group"] != UNKNOWN) & (table["people"] >= min_group_size)
    return table


def band_group_table(
    frame: pd.DataFrame, groups: pd.Series, band_order: Sequence[str]
) -> pd.DataFrame:
    """People, default rate and mean PD per score band within each group: same score, same risk?"""
    df = pd.DataFrame(
        {
            "group": groups.to_numpy(),
            "band": frame["band"].to_numpy(),
            "default": 1 - frame["good"].to_numpy(),
            "pd": frame["pd"].to_numpy(),
        }
    )
    out = (
        df.groupby(["group", "band"], observed=True)
        .agg(people=("default", "size"), default_rate=("default", "mean"), mean_pd=("pd", "mean"))
        .reset_index()
    )
    rank = {b: i for i, b in enumerate(band_order)}
    out["_order"] = out["band"].map(rank)
    return out.sort_values(["group", "_order"], ignore_index=True).drop(columns="_order")


def gap_measures(frame: pd.DataFrame, groups: pd.Series, eligible: Sequence[str]) -> dict:
    """fairlearn's gap measures over the eligible groups only (NaN with fewer than two).

    One MetricFrame of approval rate (selection rate), approval rate among goods (true
    positive rate with y = good) and among defaulters (false positive rate); its
    ``difference`` / ``ratio`` are exactly fairlearn's ``demographic_parity_difference``,
    ``demographic_parity_ratio``, ``equal_opportunity_difference`` and (worst case of the
    two) ``equalized_odds_difference``, computed in one pass instead of four.
    """
    nan = float("nan")
    if len(eligible) < 2:
        return {
            "demographic_parity_difference": nan,
            "demographic_parity_ratio": nan,
            "equal_opportunity_difference": nan,
            "equalized_odds_difference": nan,
        }
    keep = groups.isin(list(eligible)).to_numpy()
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=frame["good"].to_numpy()[keep],
        y_pred=frame["approved"].to_numpy()[keep],
        sensitive_features=groups.to_numpy()[keep],
    )
    diff, ratio = mf.difference(method="between_groups"), mf.ratio(method="between_groups")
    return {
        "demographic_parity_difference": float(diff["selection_rate"]),
        "demographic_parity_ratio": float(ratio["selection_rate"]),
        "equal_opportunity_difference": float(diff["tpr"]),
        "equalized_odds_difference": float(max(diff["tpr"], diff["fpr"])),
    }


def attribute_breaches(attribute: str, table: pd.DataFrame, gaps: dict, params: FairnessParams):
    """Human-readable threshold breaches for one attribute (empty list: all within bounds)."""
    out: list[str] = []
    dpd, dpr = gaps["demographic_parity_difference"], gaps["demographic_parity_ratio"]
    eod = gaps["equal_opportunity_difference"]
    rates = table.loc[table["in_gaps"]].set_index("group")["approval_rate"]
    spread = (  # gaps are finite only with two or more compared groups
        f"(approval {rates.idxmin()} {rates.min():.1%} vs {rates.idxmax()} {rates.max():.1%})"
        if len(rates)
        else ""
    )
    if np.isfinite(dpd) and dpd > params.max_demographic_parity_difference:
        out.append(
            f"{attribute}: demographic-parity difference {dpd:.3f} > "
            f"{params.max_demographic_parity_difference} {spread}"
        )
    if np.isfinite(dpr) and dpr < params.min_demographic_parity_ratio:
        out.append(
            f"{attribute}: approval-rate ratio {dpr:.3f} < {params.min_demographic_parity_ratio} "
            f"(four-fifths rule) {spread}"
        )
    if np.isfinite(eod) and eod > params.max_equal_opportunity_difference:
        out.append(
            f"{attribute}: equal-opportunity difference {eod:.3f} > "
            f"{params.max_equal_opportunity_difference} (approval rate among non-defaulters)"
        )
    for row in table.loc[table["in_gaps"]].itertuples():
        if abs(row.calibration_gap) > params.max_calibration_gap:
            side = "over" if row.calibration_gap > 0 else "under"
            out.append(
                f"{attribute}={row.group}: calibration gap {row.calibration_gap:+.4f} "
                f"(mean PD {row.mean_pd:.2%} vs default rate {row.default_rate:.2%}, "
                f"model {side}-states risk) beyond ±{params.max_calibration_gap}"
            )
    return out


def fairness_report(
    decisions: pd.DataFrame,
    default_12m: np.ndarray,
    protected: pd.DataFrame,
    params: FairnessParams,
    band_order: Sequence[str],
    n_bins: int = 10,
    true_pd: np.ndarray | None = None,
    oracle_approved: np.ndarray | None = None,
) -> dict:
    """The full fairness report of one cohort's decisions, per protected attribute.

    ``decisions`` (score, pd, band, credit_limit), ``default_12m`` (0/1) and ``protected``
    (one column per attribute in ``params.attributes``) are row-aligned. Returns a
    JSON-ready dict: per attribute the group table, the band x group table, the gaps
    and its breaches, plus the list of all ``breaches`` and the thresholds used.

    On the synthetic world, ``true_pd`` (the simulator's probabilities) and
    ``oracle_approved`` (approval had the score been computed from them) add each group's
    true mean PD and oracle approval rate, and the oracle's approval-rate gap: the part of
    a gap that a perfect model would show too, i.e. a real risk difference.
    """
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions lack column(s) {missing}")
    absent = [a for a in params.attributes if a not in protected.columns]
    if absent:
        raise ValueError(
            f"protected attributes lack column(s) {absent}; have {list(protected.columns)}"
        )
    y = np.asarray(default_12m, dtype=float)
    if not (len(decisions) == len(y) == len(protected)):
        raise ValueError(
            f"decisions ({len(decisions)}), labels ({len(y)}) and protected attributes "
            f"({len(protected)}) must have one row per person"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("default_12m must be 0 or 1 for every person (unlabelled rows removed)")
    frame = pd.DataFrame(
        {
            "good": (1 - y).astype(int),
            "approved": (decisions["credit_limit"].to_numpy() > 0).astype(int),
            "score": decisions["score"].to_numpy(dtype=float),
            "pd": decisions["pd"].to_numpy(dtype=float),
            "credit_limit": decisions["credit_limit"].to_numpy(dtype=float),
            "band": decisions["band"].astype(str).to_numpy(),
        }
    )
    if (true_pd is None) != (oracle_approved is None):
        raise ValueError("true_pd and oracle_approved go together")
    if true_pd is not None:
        frame["true_pd"] = np.asarray(true_pd, dtype=float)
        frame["oracle_approved"] = np.asarray(oracle_approved).astype(int)
    report: dict[str, Any] = {
        "convention": (
            "favourable outcome = approval (credit_limit > 0); equal opportunity = approval "
            "rate among people who did NOT default (true goods); calibration_gap = mean PD - "
            "default rate (positive: risk over-stated). Gaps compare known groups with at "
            f"least {params.min_group_size} people; 'unknown' and smaller groups are reported "
            "but not compared."
        ),
        "thresholds": params.model_dump(mode="json"),
        "people": len(frame),
        "approval_rate": float(frame["approved"].mean()),
        "default_rate": float(y.mean()),
        "attributes": {},
    }
    all_breaches: list[str] = []
    for attribute in params.attributes:
        groups = group_labels(protected[attribute].reset_index(drop=True))
        table = group_table(frame, groups, n_bins, params.min_group_size)
        eligible = table.loc[table["in_gaps"], "group"].tolist()
        gaps = gap_measures(frame, groups, eligible)
        gaps["four_fifths_rule_pass"] = (
            None
            if not np.isfinite(gaps["demographic_parity_ratio"])
            else bool(gaps["demographic_parity_ratio"] >= 0.8)
        )
        in_gaps = table.loc[table["in_gaps"]]
        gaps["max_abs_calibration_gap"] = (
            float(in_gaps["calibration_gap"].abs().max()) if len(in_gaps) else float("nan")
        )
        gaps["default_rate_difference"] = (
            float(in_gaps["default_rate"].max() - in_gaps["default_rate"].min())
            if len(in_gaps) >= 2
            else float("nan")
        )
        if "oracle_approval_rate" in in_gaps.columns:
            oracle = in_gaps["oracle_approval_rate"]
            gaps["oracle_demographic_parity_difference"] = (
                float(oracle.max() - oracle.min()) if len(in_gaps) >= 2 else float("nan")
            )
        breaches = attribute_breaches(attribute, table, gaps, params)
        all_breaches += breaches
        report["attributes"][attribute] = {
            "groups": _records(table),
            "compared_groups": eligible,
            "gaps": {k: _nan_to_none(v) for k, v in gaps.items()},
            "breaches": breaches,
            "by_band": _records(band_group_table(frame, groups, band_order)),
        }
    report["breaches"] = all_breaches
    report["not_compared"] = [
        a for a, body in report["attributes"].items() if len(body["compared_groups"]) < 2
    ]
    checkable = [a for a in report["attributes"] if a not in report["not_compared"]]
    for attribute, body in report["attributes"].items():
        body["status"] = "checked" if attribute in checkable else "not checkable"
    if all_breaches:
        report["status"] = report["verdict"] = "breach"
    elif not checkable:
        # Never "within thresholds" when nothing could be compared (issue #12).
        report["status"] = report["verdict"] = "not checkable"
    else:
        report["status"], report["verdict"] = "pass", "within thresholds"
    if report["not_compared"]:
        report["verdict"] += (
            f"; gaps not measured for {', '.join(report['not_compared'])} (fewer than two "
            f"groups of {params.min_group_size}+ people)"
        )
    return report


def _metric_key(text: str) -> str:
    """Group names as MLflow metric-name parts ('55+' -> '55plus'; only [\\w.-] kept)."""
    return re.sub(r"[^\w\-]", "_", text.replace("+", "plus"))


def summary_metrics(report: Mapping[str, Any]) -> dict[str, Any]:
    """The compact numeric part for metrics.json (the register stage logs it to MLflow)."""
    out: dict[str, Any] = {"n_breaches": len(report["breaches"])}
    for attribute, body in report["attributes"].items():
        gaps = body["gaps"]
        block: dict[str, Any] = {
            k: v for k, v in gaps.items() if isinstance(v, float) and k != "four_fifths_rule_pass"
        }
        if gaps["four_fifths_rule_pass"] is not None:
            block["four_fifths_rule_pass"] = int(gaps["four_fifths_rule_pass"])
        block["approval_rate"] = {
            _metric_key(g["group"]): g["approval_rate"] for g in body["groups"]
        }
        block["calibration_gap"] = {
            _metric_key(g["group"]): g["calibration_gap"] for g in body["groups"]
        }
        out[attribute] = block
    return out


def plot_fairness(report: Mapping[str, Any]) -> Figure:
    """Per attribute: approval rate per group with the four-fifths line (top), and observed
    default rate (95% interval) against mean PD per group (bottom: calibration by group)."""
    attrs = list(report["attributes"])
    n = max(len(attrs), 1)
    fig = Figure(figsize=(5.5 * n, 7.5))
    axes = fig.subplots(2, n, squeeze=False)
    for col, attribute in enumerate(attrs):
        groups = pd.DataFrame(report["attributes"][attribute]["groups"])
        x = np.arange(len(groups))
        labels = [
            f"{g}\n(n={k:,}){'' if ok else ' *'}"
            for g, k, ok in zip(groups["group"], groups["people"], groups["in_gaps"], strict=True)
        ]
        colors = ["#4c72b0" if ok else "#b8c4d9" for ok in groups["in_gaps"]]
        top, bottom = axes[0][col], axes[1][col]
        top.bar(x, groups["approval_rate"], color=colors)
        for xi, rate in zip(x, groups["approval_rate"], strict=True):
            top.text(xi, rate + 0.01, f"{rate:.1%}", ha="center", fontsize=7)
        compared = groups[groups["in_gaps"]]
        if len(compared):
            line = 0.8 * compared["approval_rate"].max()
            top.axhline(line, color="#c44e52", ls="--", lw=1, label=f"four-fifths line {line:.1%}")
            top.legend(loc="lower right", fontsize=7)
        top.set_xticks(x, labels, fontsize=7)
        top.set(ylim=(0, 1.08), ylabel="approval rate (limit > 0)", title=attribute)
        half = 1.96 * groups["default_rate_se"].fillna(0)
        bottom.bar(x, groups["default_rate"], color="#dd8452", alpha=0.8, label="default rate")
        bottom.errorbar(
            x, groups["default_rate"], yerr=half, fmt="none", ecolor="dimgrey", capsize=3
        )
        bottom.plot(x, groups["mean_pd"], "k_", ms=16, mew=2.5, ls="none", label="mean PD")
        bottom.set_xticks(x, labels, fontsize=7)
        bottom.set(ylabel="default rate (label horizon)")
        bottom.legend(loc="upper right", fontsize=7)
    fig.suptitle(
        f"Fairness, test cohort: {report['verdict']} ({len(report['breaches'])} breaches)\n"
        "* = not compared (unknown, or fewer people than min_group_size)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
