"""Performance once outcomes mature: decisions joined to the outcomes that followed them.

- :func:`join_outcomes`: each outcome (person, start of its performance window, label,
  optionally the default date) joins the person's latest decision made on or before the
  window's start, at most ``tolerance_days`` before it; only outcomes whose window has
  ended by ``as_of`` count (a default date after ``as_of`` is not known yet).
- :func:`by_month`: AUC, KS, ECE and default rate with seeded bootstrap intervals, and
  the mean PD (calibration in the large), per month of decision.
- :func:`vintage_curves`: cumulative default rate by months on book per monthly cohort,
  censored at ``as_of`` (needs default dates).
- :func:`by_band`: observed vs predicted default rate per score band, Wilson intervals.
- :func:`backtest`: the newest matured month: is the mean PD inside the observed default
  rate's interval, and is AUC's interval above the training reference's lower bound?
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from credit_scoring.modelling.metrics import bootstrap_intervals
from credit_scoring.monitoring.stability import ACT, NOT_CHECKABLE, STABLE, WATCH, window_key

LABEL_COLUMN = "default_12m"


def wilson(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def join_outcomes(
    decisions: pd.DataFrame,
    outcomes: pd.DataFrame,
    horizon_months: int,
    as_of: pd.Timestamp,
    tolerance_days: int = 31,
) -> pd.DataFrame:
    """Matured outcomes with the decision that preceded each: the decision's columns plus
    ``start`` (the window's start), ``label`` and ``default_date`` (NaT when unknown)."""
    need = {"person_id", "observation_date", LABEL_COLUMN}
    if not need <= set(outcomes):
        raise ValueError(f"outcomes lack the columns {sorted(need - set(outcomes))}")
    if "person_id" not in decisions or decisions["person_id"].isna().all():
        raise ValueError("decisions carry no person reference: outcomes cannot be joined")
    as_of = pd.Timestamp(as_of)
    out = outcomes.rename(columns={"observation_date": "start"}).copy()
    out["start"] = pd.to_datetime(out["start"]).astype("datetime64[ns]")
    out = out[out["start"] + pd.DateOffset(months=horizon_months) <= as_of]
    if "default_date" not in out:
        out["default_date"] = pd.NaT
    out["default_date"] = pd.to_datetime(out["default_date"]).astype("datetime64[ns]")
    dec = decisions.dropna(subset=["person_id"]).copy()
    dec["decision_day"] = pd.to_datetime(dec["decided_at"]).dt.normalize().astype("datetime64[ns]")
    dec["person_id"] = dec["person_id"].astype(str)
    out["person_id"] = out["person_id"].astype(str)
    joined = pd.merge_asof(
        out.sort_values("start"),
        dec.sort_values("decision_day"),
        left_on="start",
        right_on="decision_day",
        by="person_id",
        direction="backward",
        tolerance=pd.Timedelta(days=tolerance_days),
    )
    joined = joined[joined["pd"].notna()].copy()
    joined["label"] = joined[LABEL_COLUMN].astype(float).astype(int)
    return joined.reset_index(drop=True)


def by_month(
    joined: pd.DataFrame, min_outcomes: int, n_boot: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """Per month of decision: n, defaults, mean PD and AUC / KS / ECE / default rate with
    95% bootstrap intervals ('not checkable' under ``min_outcomes`` rows)."""
    rows = []
    month = window_key(joined["decided_at"], "month")
    for start, g in joined.groupby(month, sort=True):
        y, p = g["label"].to_numpy(), g["pd"].to_numpy(dtype=float)
        row: dict[str, Any] = {
            "month": pd.Timestamp(start).date().isoformat(),
            "n": len(g),
            "defaults": int(y.sum()),
            "mean_pd": float(p.mean()),
        }
        if len(g) >= min_outcomes and 0 < y.sum() < len(y):
            row.update(bootstrap_intervals(y, p, n_boot=n_boot, seed=seed))
            row["status"] = STABLE
        else:
            row["status"] = NOT_CHECKABLE
        rows.append(row)
    return rows


def vintage_curves(joined: pd.DataFrame, horizon_months: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """Cumulative default rate by months on book (1..horizon) per monthly cohort of
    decisions, counting only months already observed at ``as_of`` (NaN after)."""
    if joined["default_date"].isna().all() and joined["label"].sum() > 0:
        raise ValueError("outcomes carry no default dates: vintage curves are not checkable")
    as_of = pd.Timestamp(as_of)
    cohort = window_key(joined["decided_at"], "month")
    rows = []
    for start, g in joined.groupby(cohort, sort=True):
        rec: dict[str, Any] = {"cohort": pd.Timestamp(start).date().isoformat(), "n": len(g)}
        for m in range(1, horizon_months + 1):
            end = g["start"] + pd.DateOffset(months=m)
            if (end > as_of).any():
                rec[m] = float("nan")
                continue
            rec[m] = float((g["default_date"].notna() & (g["default_date"] < end)).mean())
        rows.append(rec)
    return pd.DataFrame(rows)


def by_band(joined: pd.DataFrame) -> list[dict[str, Any]]:
    """Observed default rate (Wilson 95%) against the mean PD, per score band."""
    out = []
    for band, g in joined.groupby("band", sort=False):
        k, n = int(g["label"].sum()), len(g)
        lo, hi = wilson(k, n)
        out.append(
            {
                "band": band,
                "n": n,
                "defaults": k,
                "observed": k / n,
                "low": lo,
                "high": hi,
                "predicted": float(g["pd"].mean()),
                "min_score": int(g["score"].min()),
            }
        )
    return sorted(out, key=lambda r: r["min_score"])


def backtest(
    joined: pd.DataFrame,
    reference: Mapping[str, Any],
    min_outcomes: int,
    n_boot: int = 200,
    seed: int = 0,
    max_gap: float = 0.3,
) -> dict[str, Any]:
    """The champion on the newest matured month of decisions.

    act: the observed default rate's 95% interval lies wholly above ``(1 + max_gap)`` x
    the mean PD or below ``(1 - max_gap)`` x it (the probabilities no longer match what
    happens: a macro shock shows here first); watch: the mean PD is outside that interval
    (within the tolerance), or AUC's interval lies wholly below the reference's validation
    AUC lower bound.
    """
    if joined.empty:
        return {"status": NOT_CHECKABLE, "why": "no matured outcomes joined to decisions"}
    month = window_key(joined["decided_at"], "month")
    newest = month.max()
    g = joined[month == newest]
    y, p = g["label"].to_numpy(), g["pd"].to_numpy(dtype=float)
    out: dict[str, Any] = {
        "month": pd.Timestamp(newest).date().isoformat(),
        "n": len(g),
        "defaults": int(y.sum()),
        "mean_pd": float(p.mean()),
    }
    if len(g) < min_outcomes or not 0 < y.sum() < len(y):
        return {
            **out,
            "status": NOT_CHECKABLE,
            "why": f"{len(g)} matured decisions (< {min_outcomes}) or one class only",
        }
    ci = bootstrap_intervals(y, p, n_boot=n_boot, seed=seed)
    out.update(ci)
    rate = ci["default_rate"]
    out["observed_to_expected"] = rate["value"] / out["mean_pd"]
    mean = out["mean_pd"]
    off = rate["low"] > mean * (1 + max_gap) or rate["high"] < mean * (1 - max_gap)
    outside = not rate["low"] <= mean <= rate["high"]
    ref_auc = reference.get("validation_auc_low")
    weaker = ref_auc is not None and ci["auc"]["high"] < ref_auc
    out["status"] = ACT if off else WATCH if (outside or weaker) else STABLE
    out["why"] = (
        f"mean PD {out['mean_pd']:.2%} vs observed {rate['value']:.2%} "
        f"(95% CI {rate['low']:.2%}-{rate['high']:.2%})"
        + (f"; AUC CI below the reference {ref_auc:.3f}" if weaker else "")
    )
    return out
