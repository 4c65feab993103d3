"""The model validation report: one HTML page per run that a model-risk reviewer reads.

Pure parts only: tables computed from arrays and frames (performance with confidence
intervals, score-to-odds, calibration, per-feature stability, characteristic analysis),
figures, and :func:`render_html`, which fills one Jinja2 template with a context of
sections. The ``report`` stage reads the artefacts, calls these and writes the page.

Every section is built from what exists: a missing artefact makes its section say "not
available" (and why), never fail the page.

- **Performance**: AUC with a DeLong interval (Gini from it); KS, Brier and ECE with
  seeded bootstrap percentile intervals; per slice of the out-of-time split.
- **Score to odds**: the scale promises ``pdo`` points per doubling of the odds of being
  good. Per score bucket, the observed log-odds ln(goods / defaults) (0.5 added to each
  count) against the log-odds the scale states for the bucket's mean score; a weighted
  least-squares line through the observed points gives the *implied* points to double
  the odds.
- **Calibration**: observed default rate per PD decile with a Wilson interval, against
  the mean PD.
- **Stability**: PSI of the score and CSI of every scored characteristic, train vs test
  (bins: deciles of the training values, missing values their own bin); PSI < 0.10
  stable, 0.10-0.25 watch, > 0.25 act.
- **Characteristic analysis**: for the most important features, per bin of the training
  values: share of train and test, observed default rate and mean PD on test.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy.stats import norm

from credit_scoring.audit.gate import delong_auc_ci
from credit_scoring.modelling.metrics import bootstrap_intervals

NOT_AVAILABLE = "not available"
#: PSI / CSI thresholds (DOMAIN.md): below the first stable, above the second act.
PSI_WATCH, PSI_ACT = 0.10, 0.25
#: Added to goods and defaults of a score bucket so a bucket without defaults has a
#: finite log-odds.
ODDS_SMOOTHING = 0.5


def psi_status(value: float | None) -> str:
    """stable / watch / act, or 'not available'."""
    if value is None or not math.isfinite(value):
        return NOT_AVAILABLE
    return "stable" if value < PSI_WATCH else "watch" if value <= PSI_ACT else "act"


# --------------------------------------------------------------------------- performance


def performance_row(
    y: ArrayLike,
    p: ArrayLike,
    n_bins: int = 10,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """People, defaults, AUC (DeLong CI), Gini, KS, Brier, ECE (bootstrap CIs)."""
    y_arr = np.asarray(y).astype(int).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    row: dict[str, float] = {
        "people": len(y_arr),
        "defaults": int(y_arr.sum()),
        "default_rate": float(y_arr.mean()) if len(y_arr) else math.nan,
        "mean_pd": float(p_arr.mean()) if len(p_arr) else math.nan,
    }
    if not 0 < y_arr.sum() < len(y_arr):
        return row
    auc_, lo, hi = delong_auc_ci(y_arr, p_arr, confidence)
    row.update(auc=auc_, auc_lo=lo, auc_hi=hi, gini=2 * auc_ - 1, gini_lo=2 * lo - 1)
    row["gini_hi"] = 2 * hi - 1
    intervals = bootstrap_intervals(
        y_arr, p_arr, n_boot, seed, confidence, n_bins, metrics=("ks", "brier", "ece")
    )
    for name, ci in intervals.items():
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = ci["value"], ci["low"], ci["high"]
    return row


def performance_table(
    preds: pd.DataFrame,
    label: str,
    slices: Sequence[str],
    columns: Mapping[str, str],
    **kwargs: Any,
) -> pd.DataFrame:
    """One row per (slice, model): ``columns`` maps a model's name to its PD column."""
    rows = []
    for name in slices:
        part = preds[preds["slice"] == name]
        if part.empty:
            continue
        for model, col in columns.items():
            rows.append(
                {"slice": name, "model": model, **performance_row(part[label], part[col], **kwargs)}
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- score to odds


def score_odds_table(
    score: ArrayLike,
    y: ArrayLike,
    offset: float,
    factor: float,
    bucket_points: float = 20.0,
    min_people: int = 50,
) -> pd.DataFrame:
    """Observed vs stated log-odds of being good per score bucket.

    Buckets are ``bucket_points`` wide; neighbouring buckets with fewer than
    ``min_people`` people are merged upwards. ``stated_log_odds`` is what the scale says
    for the bucket's mean score: ``(mean_score - offset) / factor``.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    y_arr = np.asarray(y).astype(int).ravel()
    edge = np.floor(s / bucket_points) * bucket_points
    df = pd.DataFrame({"edge": edge, "score": s, "y": y_arr}).sort_values("edge")
    groups, current, count = [], [], 0
    for e, grp in df.groupby("edge", sort=True):
        current.append(e)
        count += len(grp)
        if count >= min_people:
            groups.append(current)
            current, count = [], 0
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    rows = []
    for g in groups:
        part = df[df["edge"].isin(g)]
        bad = int(part["y"].sum())
        good = len(part) - bad
        mean_score = float(part["score"].mean())
        rows.append(
            {
                "from": float(min(g)),
                "to": float(max(g) + bucket_points),
                "people": len(part),
                "defaults": bad,
                "mean_score": mean_score,
                "observed_log_odds": math.log((good + ODDS_SMOOTHING) / (bad + ODDS_SMOOTHING)),
                "stated_log_odds": (mean_score - offset) / factor,
                "log_odds_se": math.sqrt(1 / (good + ODDS_SMOOTHING) + 1 / (bad + ODDS_SMOOTHING)),
            }
        )
    out = pd.DataFrame(rows)
    if not out.empty:
        out["gap"] = out["observed_log_odds"] - out["stated_log_odds"]
    return out


def score_odds_fit(table: pd.DataFrame, pdo: float) -> dict[str, float]:
    """Weighted least squares of observed log-odds on mean score (weights 1/se^2): the
    slope, the implied points to double the odds (ln 2 / slope) and the stated PDO."""
    out = {"stated_pdo": pdo, "buckets": len(table)}
    if len(table) < 2:
        return {**out, "slope": math.nan, "implied_pdo": math.nan}
    w = 1 / table["log_odds_se"].to_numpy() ** 2
    x, yv = table["mean_score"].to_numpy(), table["observed_log_odds"].to_numpy()
    xm, ym = np.average(x, weights=w), np.average(yv, weights=w)
    slope = float(np.sum(w * (x - xm) * (yv - ym)) / np.sum(w * (x - xm) ** 2))
    implied = math.log(2) / slope if slope > 0 else math.inf
    return {**out, "slope": slope, "implied_pdo": implied}


# --------------------------------------------------------------------------- calibration


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate k / n."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def calibration_deciles(
    y: ArrayLike, p: ArrayLike, n_bins: int = 10, confidence: float = 0.95
) -> pd.DataFrame:
    """Per equal-frequency PD bin: people, mean PD, observed rate, its Wilson interval and
    whether the mean PD lies inside it."""
    y_arr = np.asarray(y).astype(int).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    order = np.argsort(p_arr, kind="stable")
    rows = []
    for i, g in enumerate(np.array_split(order, min(n_bins, max(len(order), 1)))):
        if len(g) == 0:
            continue
        k = int(y_arr[g].sum())
        lo, hi = wilson(k, len(g), confidence)
        mean_pd = float(p_arr[g].mean())
        rows.append(
            {
                "bin": i + 1,
                "people": len(g),
                "mean_pd": mean_pd,
                "observed_rate": k / len(g),
                "rate_lo": lo,
                "rate_hi": hi,
                "inside": bool(lo <= mean_pd <= hi),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- stability


def _bins(reference: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges: unique deciles of the non-missing reference values."""
    ref = reference[~np.isnan(reference)]
    if ref.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))


def _bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, x, side="right")
    idx[np.isnan(x)] = edges.size + 1
    return idx


def csi(reference: ArrayLike, actual: ArrayLike, n_bins: int = 10) -> float:
    """Characteristic stability index of ``actual`` against ``reference``: PSI over the
    reference's decile bins plus one bin for missing values (shares floored at 1e-4)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    act = np.asarray(actual, dtype=np.float64).ravel()
    edges = _bins(ref, n_bins)
    k = edges.size + 2
    e = np.bincount(_bin_index(ref, edges), minlength=k) / max(ref.size, 1)
    a = np.bincount(_bin_index(act, edges), minlength=k) / max(act.size, 1)
    keep = (e > 0) | (a > 0)
    e, a = np.maximum(e[keep], 1e-4), np.maximum(a[keep], 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def csi_table(
    train: pd.DataFrame, test: pd.DataFrame, features: Sequence[str], n_bins: int = 10
) -> pd.DataFrame:
    """CSI, status and missing shares of each feature, train vs test, largest first."""
    rows = []
    for f in features:
        a = train[f].to_numpy(dtype=np.float64, na_value=np.nan)
        b = test[f].to_numpy(dtype=np.float64, na_value=np.nan)
        value = csi(a, b, n_bins)
        rows.append(
            {
                "feature": f,
                "csi": value,
                "status": psi_status(value),
                "missing_train": float(np.isnan(a).mean()) if a.size else math.nan,
                "missing_test": float(np.isnan(b).mean()) if b.size else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=["feature", "csi", "status", "missing_train", "missing_test"])
    return out.sort_values("csi", ascending=False, ignore_index=True)


def characteristic_table(
    feature: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    y_test: ArrayLike,
    pd_test: ArrayLike,
    n_bins: int = 5,
) -> pd.DataFrame:
    """Per bin of the training values (quintiles, missing apart): share of train and test,
    observed default rate and mean PD on test."""
    a = train[feature].to_numpy(dtype=np.float64, na_value=np.nan)
    b = test[feature].to_numpy(dtype=np.float64, na_value=np.nan)
    y_arr = np.asarray(y_test).astype(int)
    p_arr = np.asarray(pd_test, dtype=np.float64)
    edges = _bins(a, n_bins)
    ia, ib = _bin_index(a, edges), _bin_index(b, edges)
    lows = np.concatenate([[-np.inf], edges])
    highs = np.concatenate([edges, [np.inf]])
    rows = []
    for i in range(edges.size + 2):
        in_b = ib == i
        if not (ia == i).any() and not in_b.any():
            continue
        label = "missing" if i == edges.size + 1 else f"[{lows[i]:.4g}, {highs[i]:.4g})"
        rows.append(
            {
                "feature": feature,
                "bin": label,
                "share_train": float((ia == i).mean()),
                "share_test": float(in_b.mean()),
                "people_test": int(in_b.sum()),
                "default_rate": float(y_arr[in_b].mean()) if in_b.any() else math.nan,
                "mean_pd": float(p_arr[in_b].mean()) if in_b.any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- plots


def selection_bias_table(through_the_door: Mapping[str, Any]) -> pd.DataFrame:
    """Through-the-door metrics (``metrics.json`` ``reject_inference``), one row per group
    of applicants: all, previously approved, previously declined (issue #18)."""
    cols = (
        "n",
        "auc_vs_true_pd",
        "ece_vs_true_pd",
        "mean_pd",
        "mean_true_pd",
        "pd_bias",
        "approval_rate",
        "mean_limit",
        "expected_loss_true",
        "expected_loss_model",
    )
    rows = [
        {"applicants": group.replace("_", " "), **{c: body.get(c) for c in cols}}
        for group, body in through_the_door.items()
        if group in ("all", "previously_approved", "previously_declined") and body
    ]
    return pd.DataFrame(rows)


def plot_score_odds(table: pd.DataFrame, fit: Mapping[str, float]) -> Figure:
    """Observed log-odds per score bucket (with 95% bars) against the scale's line."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    x = table["mean_score"].to_numpy()
    ax.errorbar(
        x,
        table["observed_log_odds"],
        yerr=1.96 * table["log_odds_se"],
        fmt="o",
        color="#4c72b0",
        label="observed ln(goods / defaults)",
    )
    ax.plot(x, table["stated_log_odds"], color="#c44e52", lw=1.5, label="stated by the scale")
    ax.set(
        xlabel="score (bucket mean)",
        ylabel="log-odds of being good",
        title=f"Score to odds: stated {fit['stated_pdo']:g} points per doubling, "
        f"implied {fit['implied_pdo']:.1f}",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def plot_calibration(table: pd.DataFrame) -> Figure:
    """Observed default rate (Wilson 95%) against mean PD per decile."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    m, o = table["mean_pd"].to_numpy(), table["observed_rate"].to_numpy()
    err = np.clip(
        np.vstack([o - table["rate_lo"].to_numpy(), table["rate_hi"].to_numpy() - o]), 0, None
    )
    ax.errorbar(m, o, yerr=err, fmt="o", color="#4c72b0", label="observed (95% Wilson)")
    top = float(max(m.max(), table["rate_hi"].max())) * 1.05 if len(m) else 1.0
    ax.plot([0, top], [0, top], color="#888", ls="--", lw=1, label="perfect calibration")
    ax.set(xlabel="mean PD", ylabel="observed default rate", title="Calibration (test cohort)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_csi(table: pd.DataFrame, top: int = 20) -> Figure:
    """CSI of the least stable characteristics, with the 0.10 and 0.25 lines."""
    t = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7, 0.28 * len(t) + 1.4))
    ax = fig.subplots()
    colors = [
        "#c44e52" if v > PSI_ACT else "#dd8452" if v >= PSI_WATCH else "#4c72b0" for v in t["csi"]
    ]
    ax.barh(t["feature"], t["csi"], color=colors)
    for x in (PSI_WATCH, PSI_ACT):
        ax.axvline(x, color="#888", ls="--", lw=1)
    ax.set(xlabel="CSI, train vs test", title="Characteristic stability (least stable first)")
    fig.tight_layout()
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """PNG bytes as a data: URI, so the page is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- HTML


def fmt(value: Any, digits: int = 4) -> str:
    """A number as the page shows it; None / NaN as 'not available'."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "inf" if value == math.inf else NOT_AVAILABLE
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table_html(frame: pd.DataFrame | None, digits: int = 4, cls: str = "") -> str:
    """A small HTML table of ``frame`` (numbers formatted with :func:`fmt`)."""
    if frame is None or frame.empty:
        return f'<p class="na">{NOT_AVAILABLE}</p>'
    shown = frame.map(lambda v: fmt(v, digits))
    return shown.to_html(index=False, escape=True, classes=cls or None, border=0)


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Model validation report: {{ title }}</title>
<style>
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222;
        background: #fafafa; line-height: 1.45; }
 header { background: #1f3a5f; color: #fff; padding: 1.2em 2em; }
 header h1 { margin: 0 0 .3em 0; font-size: 1.6em; }
 header p { margin: 0; opacity: .9; }
 nav { padding: .6em 2em; background: #e8edf3; font-size: .92em; }
 nav a { margin-right: 1em; color: #1f3a5f; }
 main { max-width: 1100px; margin: 0 auto; padding: 1em 2em 3em 2em; }
 section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em 1.4em 1.2em;
           margin: 1.2em 0; }
 h2 { color: #1f3a5f; border-bottom: 2px solid #e8edf3; padding-bottom: .2em; }
 table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
 th, td { padding: .25em .7em; border-bottom: 1px solid #eee; text-align: right; }
 th { background: #f2f4f7; }
 td:first-child, th:first-child { text-align: left; }
 .na { color: #888; font-style: italic; }
 .verdict { display: inline-block; padding: .15em .6em; border-radius: 4px; font-weight: 600; }
 .ok { background: #dff0d8; color: #2b542c; } .bad { background: #f2dede; color: #843534; }
 .warn { background: #fcf8e3; color: #8a6d3b; }
 .kpis { display: flex; flex-wrap: wrap; gap: .8em; }
 .kpi { background: #f2f4f7; border-radius: 6px; padding: .5em 1em; min-width: 9em; }
 .kpi b { display: block; font-size: 1.3em; color: #1f3a5f; }
 img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
 ul.reasons li { margin: .2em 0; }
</style>
</head>
<body>
<header>
 <h1>Model validation report</h1>
 <p>{{ title }} &middot; generated {{ generated }} &middot; {{ subtitle }}</p>
</header>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>
<main>
<section id="summary"><h2>Summary</h2>
 <div class="kpis">{% for k in kpis %}
  <div class="kpi"><b>{{ k.value }}</b>{{ k.label }}</div>{% endfor %}
 </div>
 <ul>{% for v in verdicts %}
  <li><span class="verdict {{ v.cls }}">{{ v.status }}</span> {{ v.text }}</li>{% endfor %}
 </ul>
</section>
{% for s in sections %}
<section id="{{ s.id }}"><h2>{{ s.title }}</h2>
 {% if s.available %}
  {% for block in s.blocks %}
   {% if block.kind == "text" %}<p>{{ block.text }}</p>
   {% elif block.kind == "list" %}
    <ul class="reasons">{% for item in block.entries %}<li>{{ item }}</li>{% endfor %}</ul>
   {% elif block.kind == "heading" %}<h3>{{ block.text }}</h3>
   {% elif block.kind == "table" %}{{ block.html | safe }}
   {% elif block.kind == "image" %}<img alt="{{ block.alt }}" src="{{ block.src }}">
   {% endif %}
  {% endfor %}
 {% else %}
  <p class="na">{{ s.missing }}</p>
 {% endif %}
</section>
{% endfor %}
</main>
</body>
</html>
"""


def text(t: str) -> dict[str, Any]:
    return {"kind": "text", "text": t}


def heading(t: str) -> dict[str, Any]:
    return {"kind": "heading", "text": t}


def bullets(items: Sequence[str]) -> dict[str, Any]:
    return {"kind": "list", "entries": list(items)}


def table(frame: pd.DataFrame | None, digits: int = 4) -> dict[str, Any]:
    return {"kind": "table", "html": table_html(frame, digits)}


def image(png: bytes, alt: str) -> dict[str, Any]:
    return {"kind": "image", "src": data_uri(png), "alt": alt}


def section(
    sid: str, title: str, blocks: list[dict[str, Any]] | None, missing: str = ""
) -> dict[str, Any]:
    """A page section; ``blocks`` None makes it say 'not available: <missing>'."""
    return {
        "id": sid,
        "title": title,
        "available": blocks is not None,
        "blocks": blocks or [],
        "missing": f"{NOT_AVAILABLE.capitalize()}: {missing}" if blocks is None else "",
    }


def render_html(context: Mapping[str, Any]) -> str:
    """The page: ``title``, ``subtitle``, ``generated``, ``kpis`` (label, value),
    ``verdicts`` (status, cls, text) and ``sections`` (see :func:`section`)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(TEMPLATE).render(**context)
