"""Evaluation on the out-of-time test cohort: metrics, curves, tables and plots.

Pure functions return tables (DataFrames) that DVC plots read as CSV, and matplotlib
figures that MLflow logs; the CLI decides where they are written.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from credit_scoring.modelling.metrics import classification_metrics, psi

#: One colour per curve, the same in every figure; "uncalibrated" is also dashed, so it
#: never reads as the (calibrated) model.
COLORS = {
    "model": "#4c72b0",
    "baseline": "#dd8452",
    "oracle": "#55a868",
    "uncalibrated": "#c44e52",
}
LINESTYLES = {"uncalibrated": "--"}


def roc_table(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], max_points: int = 200):
    """Long table of ROC points per model (thinned for DVC plots)."""
    rows = []
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
        rows.append(pd.DataFrame({"model": name, "fpr": fpr[keep], "tpr": tpr[keep]}))
    return pd.concat(rows, ignore_index=True)


def per_curve(table: pd.DataFrame, column: str = "model") -> dict[str, pd.DataFrame]:
    """Split a long table (one row per point, ``column`` naming the curve) into one table
    per curve: DVC's plots draw one line per file, so each curve gets its own CSV."""
    return {
        str(name): grp.drop(columns=column).reset_index(drop=True)
        for name, grp in table.groupby(column, sort=False)
    }


def headline(metrics: Mapping) -> dict[str, float | int | bool]:
    """The few numbers a team compares run to run (``dvc metrics show`` / ``dvc exp show``):
    test AUC, KS, ECE, Brier and PSI, the baseline's AUC, the approval rate and mean limit,
    the band check; the oracle AUC on the synthetic world. Every other number stays in the
    full report (metrics.json)."""
    out: dict[str, float | int | bool] = {
        k: metrics[k] for k in ("auc", "ks", "ece", "brier", "psi") if k in metrics
    }
    out["baseline_auc"] = metrics["baseline"]["auc"]
    if "oracle_auc" in metrics:
        out["oracle_auc"] = metrics["oracle_auc"]
    for key in ("approval_rate", "mean_limit_approved", "n_test", "band_default_rate_monotone"):
        if key in metrics:
            out[key] = metrics[key]
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed default rate in equal-frequency bins of predicted PD."""
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, n_bins)
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(bins) + 1),
            "mean_predicted": [float(p[b].mean()) for b in bins],
            "observed_rate": [float(y[b].mean()) for b in bins],
            "count": [len(b) for b in bins],
        }
    )


def gains_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Deciles from riskiest to safest: captured defaults, cumulative rates and KS."""
    order = np.argsort(-p, kind="stable")
    bins = np.array_split(order, n_bins)
    bad = np.array([y[b].sum() for b in bins], dtype=float)
    cnt = np.array([len(b) for b in bins], dtype=float)
    good = cnt - bad
    cum_bad = np.cumsum(bad) / max(bad.sum(), 1)
    cum_good = np.cumsum(good) / max(good.sum(), 1)
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(bins) + 1),
            "people": cnt.astype(int),
            "defaults": bad.astype(int),
            "default_rate": bad / np.maximum(cnt, 1),
            "cum_share_of_people": np.cumsum(cnt) / cnt.sum(),
            "cum_share_of_defaults": cum_bad,
            "cum_share_of_goods": cum_good,
            "ks": cum_bad - cum_good,
        }
    )


def importance_table(booster, feature_names: list[str], dimensions: Mapping[str, str]):
    """Gain and split importance per feature, with its dimension and share of total gain."""
    gain = booster.feature_importance(importance_type="gain")
    split = booster.feature_importance(importance_type="split")
    df = pd.DataFrame(
        {
            "feature": feature_names,
            "dimension": [dimensions[f] for f in feature_names],
            "gain": gain,
            "splits": split,
        }
    )
    df["gain_share"] = df["gain"] / max(df["gain"].sum(), 1e-12)
    return df.sort_values("gain", ascending=False, ignore_index=True)


def metrics_block(y: np.ndarray, p: np.ndarray, train_p: np.ndarray, n_bins: int) -> dict:
    """The standard metric set plus PSI of the test distribution against training."""
    out = {k: float(v) for k, v in classification_metrics(y, p, n_bins).items()}
    out["psi"] = float(psi(train_p, p))
    return out


def band_table(
    score: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    bands: Mapping[str, int],
    limit: np.ndarray | None = None,
) -> pd.DataFrame:
    """People, observed default rate, mean PD (and mean limit) per score band, lowest first."""
    from credit_scoring.decision.scorecard import assign_band

    names = sorted(bands, key=bands.get)
    df = pd.DataFrame({"band": assign_band(score, bands), "y": y, "p": p})
    agg = {
        "people": ("y", "size"),
        "defaults": ("y", "sum"),
        "default_rate": ("y", "mean"),
        "mean_pd": ("p", "mean"),
    }
    if limit is not None:
        df["limit"] = limit
        df["approved"] = limit > 0
        agg |= {"approval_rate": ("approved", "mean"), "mean_limit": ("limit", "mean")}
    out = df.groupby("band").agg(**agg).reindex(names).fillna({"people": 0, "defaults": 0})
    out.insert(0, "min_score", [bands[n] for n in names])
    out["share_of_people"] = out["people"] / max(out["people"].sum(), 1)
    return out.reset_index()


PASS, FAIL, NOT_CHECKABLE = "pass", "fail", "not checkable"


def band_check(table: pd.DataFrame, min_people: int = 0, tolerance_z: float = 1.96) -> dict:
    """Does the observed default rate fall as the band rises, beyond noise?

    Bands with fewer than ``min_people`` people are left out. Each rise from one band to
    the next better one is tested: z = rise / pooled binomial standard error; the check
    fails only when some z exceeds ``tolerance_z`` (a better band at 1.49% after one at
    1.14%, about 1.2 standard errors apart, is noise, not a verdict). With fewer than two
    bands left, or no defaults at all, the check is ``not checkable`` (never "pass"): one
    band says nothing about ordering. Returns ``status``, ``why`` and every comparison's numbers.
    """
    t = table[table["people"] >= max(min_people, 1)].reset_index(drop=True)
    result: dict = {
        "min_people": int(min_people),
        "tolerance_z": float(tolerance_z),
        "bands_checked": [str(b) for b in t["band"]],
        "comparisons": [],
    }
    if len(t) < 2 or t["defaults"].sum() == 0:
        result["status"] = NOT_CHECKABLE
        result["why"] = (
            f"{len(t)} band(s) with >= {min_people} test people"
            + (" and no defaults" if len(t) >= 2 else "")
            + ": the ordering of default rates by band cannot be judged"
        )
        return result
    worst = None
    for i in range(len(t) - 1):
        lo, hi = t.iloc[i], t.iloc[i + 1]  # hi is the better band: its rate should be lower
        n1, n2 = float(lo["people"]), float(hi["people"])
        r1, r2 = float(lo["default_rate"]), float(hi["default_rate"])
        pooled = (lo["defaults"] + hi["defaults"]) / (n1 + n2)
        se = float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
        rise = r2 - r1
        z = rise / se if se > 0 else (np.inf if rise > 0 else 0.0)
        comp = {
            "band": str(lo["band"]),
            "next_band": str(hi["band"]),
            "default_rate": r1,
            "next_default_rate": r2,
            "people": int(n1),
            "next_people": int(n2),
            "rise": rise,
            "standard_error": se,
            "z": float(z),
            "significant_rise": bool(z > tolerance_z),
        }
        result["comparisons"].append(comp)
        if worst is None or comp["z"] > worst["z"]:
            worst = comp
    if worst["significant_rise"]:
        result["status"] = FAIL
        result["why"] = (
            f"band '{worst['next_band']}' defaults at {worst['next_default_rate']:.2%} > "
            f"'{worst['band']}' at {worst['default_rate']:.2%}, {worst['z']:.1f} standard "
            f"errors (tolerance {tolerance_z})"
        )
    else:
        result["status"] = PASS
        result["why"] = (
            "default rate falls as the band rises within noise (largest rise "
            f"{max(worst['z'], 0.0):.1f} standard errors <= {tolerance_z})"
        )
    return result


def bands_monotone(
    table: pd.DataFrame, min_people: int = 0, tolerance_z: float = 1.96
) -> tuple[bool, str]:
    """``(not failed, why)`` of :func:`band_check`: False only for a rise beyond noise."""
    check = band_check(table, min_people, tolerance_z)
    return check["status"] != FAIL, check["why"]


def gap_to_truth(p: np.ndarray, true_pd: np.ndarray, n_bins: int = 10) -> float:
    """ECE against the simulator's true PD: |mean predicted - mean true| in quantile bins."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, n_bins)
    return float(sum(len(g) / len(p) * abs(p[g].mean() - true_pd[g].mean()) for g in groups))


# --- figures -------------------------------------------------------------------------
# Figures are built with the object API (no pyplot), so no GUI backend or global state.


def _subplots(figsize, **kwargs):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(**kwargs)


def plot_roc(roc: pd.DataFrame, aucs: Mapping[str, float]) -> Figure:
    fig, ax = _subplots((5, 5))
    for name, grp in roc.groupby("model", sort=False):
        ax.plot(
            grp["fpr"], grp["tpr"], label=f"{name} (AUC {aucs[name]:.3f})", color=COLORS.get(name)
        )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="ROC, out-of-time test cohort",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_calibration(tables: Mapping[str, pd.DataFrame]) -> Figure:
    fig, ax = _subplots((5, 5))
    hi = max(max(t["mean_predicted"].max(), t["observed_rate"].max()) for t in tables.values())
    for name, t in tables.items():
        ax.plot(
            t["mean_predicted"],
            t["observed_rate"],
            marker="o",
            label=name,
            color=COLORS.get(name),
            ls=LINESTYLES.get(name, "-"),
        )
    ax.plot([0, hi], [0, hi], ls="--", color="grey", lw=1, label="perfect")
    ax.set(
        xlabel="mean predicted PD",
        ylabel="observed default rate",
        title="Calibration (reliability), test cohort",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def plot_gains(gains: pd.DataFrame) -> Figure:
    fig, ax = _subplots((5.5, 4.5))
    x = np.r_[0, gains["cum_share_of_people"]]
    ax.plot(x, np.r_[0, gains["cum_share_of_defaults"]], marker="o", label="defaults captured")
    ax.plot(x, np.r_[0, gains["cum_share_of_goods"]], marker="o", label="goods captured")
    k = int(gains["ks"].idxmax())
    ax.vlines(
        gains["cum_share_of_people"][k],
        gains["cum_share_of_goods"][k],
        gains["cum_share_of_defaults"][k],
        color="red",
        label=f"KS {gains['ks'][k]:.3f}",
    )
    ax.set(
        xlabel="share of people, riskiest first",
        ylabel="cumulative share",
        title="Gains and KS, test cohort",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def plot_score_distribution(scores: Mapping[str, np.ndarray], bands: Mapping[str, int]) -> Figure:
    fig, ax = _subplots((7, 4))
    edges = np.arange(350, 951, 10)
    for name, s in scores.items():
        ax.hist(s, bins=edges, alpha=0.55, density=True, label=name)
    # band names above the plot, centred in their band: never on the bars or the legend
    lows = sorted(bands.items(), key=lambda kv: kv[1])
    top = ax.get_xaxis_transform()
    for i, (band, low) in enumerate(lows):
        high = lows[i + 1][1] if i + 1 < len(lows) else 950
        if low > 350:
            ax.axvline(low, color="grey", ls=":", lw=1)
        ax.text(
            (max(low, 350) + high) / 2, 1.01, band, transform=top, fontsize=7,
            color="dimgrey", ha="center", va="bottom",
        )  # fmt: skip
    ax.set_xlim(350, 950)
    ax.set_xlabel("score (350-950)")
    ax.set_ylabel("density")
    ax.set_title("Score distribution", pad=14)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_importance(imp: pd.DataFrame, top: int = 20) -> Figure:
    fig, axes = _subplots((11, 5.5), nrows=1, ncols=2, gridspec_kw={"width_ratios": [2, 1]})
    head = imp.head(top).iloc[::-1]
    axes[0].barh(head["feature"], head["gain_share"], color="#4c72b0")
    axes[0].set(xlabel="share of total gain", title=f"Top {top} features by gain")
    axes[0].tick_params(axis="y", labelsize=7)
    by_dim = imp.groupby("dimension")["gain_share"].sum().sort_values()
    axes[1].barh(by_dim.index, by_dim.values, color="#55a868")
    axes[1].set(xlabel="share of total gain", title="Gain by dimension")
    fig.tight_layout()
    return fig


def plot_learning_curve(evals: Mapping[str, Mapping[str, list[float]]], best: int) -> Figure:
    fig, ax = _subplots((6, 4))
    for split, curves in evals.items():
        if "binary_logloss" in curves:
            ax.plot(curves["binary_logloss"], label=f"{split} log loss")
    ax.axvline(best, color="grey", ls="--", lw=1, label=f"best iteration {best}")
    ax.set(xlabel="boosting round", ylabel="binary log loss", title="Learning curve")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_band_table(bands: pd.DataFrame) -> Figure:
    fig, ax = _subplots((7, 4))
    x = np.arange(len(bands))
    ax.bar(x, bands["share_of_people"], color="#4c72b0", alpha=0.6, label="share of people")
    ax.set_xticks(x, bands["band"])
    ax.set(ylabel="share of people", title="Score bands, test cohort")
    ax2 = ax.twinx()
    ax2.plot(x, bands["default_rate"], color="#c44e52", marker="o", label="observed default rate")
    ax2.set_ylabel("observed default rate")
    fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
    fig.tight_layout()
    return fig


def plot_limit_distribution(limit: np.ndarray, band: np.ndarray) -> Figure:
    fig, ax = _subplots((7, 4))
    approved = limit > 0
    for b in pd.unique(band[approved]):
        ax.hist(limit[approved & (band == b)], bins=40, alpha=0.55, label=str(b))
    ax.set(
        xlabel="credit limit, CNY (approved)",
        ylabel="people",
        title=f"Credit limits, test cohort ({approved.mean():.0%} approved)",
    )
    ax.legend()
    fig.tight_layout()
    return fig
