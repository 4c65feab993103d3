"""The monitoring report a risk committee reads: one self-contained HTML page.

Pure parts: matplotlib figures (score PSI over windows, calibration and AUC by month of
decision, vintage curves, observed vs predicted by band) and :func:`render_html`, one
Jinja2 template. The monitor stage writes the page and the PNGs beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape
from matplotlib.figure import Figure

from credit_scoring.audit.report import data_uri, figure_png, fmt
from credit_scoring.config import MonitorParams

_COLORS = {"stable": "#2e7d32", "watch": "#f9a825", "act": "#c62828", "not checkable": "#888"}


def score_psi_figure(windows: Sequence[Mapping[str, Any]], params: MonitorParams) -> Figure:
    """Score PSI and the approval rate per window, with the watch / act lines."""
    fig = Figure(figsize=(7, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    x = [w["window"] for w in windows]
    y = [w["score_psi"] for w in windows]
    ax.plot(x, y, marker="o", color="#1f4e79", label="score PSI")
    ax.scatter(x, y, c=[_COLORS[w["status"]] for w in windows], zorder=3, s=40)
    ax.axhline(params.psi_watch, color=_COLORS["watch"], ls="--", lw=1, label="watch")
    ax.axhline(params.psi_act, color=_COLORS["act"], ls="--", lw=1, label="act")
    ax.set(ylabel="PSI vs training (frozen bins)", title="Score stability by window")
    ax.set_ylim(0, max(params.psi_act * 1.3, max(y, default=0) * 1.1))
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def calibration_figure(months: Sequence[Mapping[str, Any]]) -> Figure:
    """Observed default rate (95% bootstrap interval) against the mean PD, and AUC with
    its interval, by month of decision."""
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ok = [m for m in months if "auc" in m]
    x = [m["month"] for m in ok]
    if ok:
        obs = np.array([m["default_rate"]["value"] for m in ok])
        err = np.array(
            [
                [m["default_rate"]["value"] - m["default_rate"]["low"] for m in ok],
                [m["default_rate"]["high"] - m["default_rate"]["value"] for m in ok],
            ]
        )
        ax1.errorbar(x, obs, yerr=err, fmt="o", color="#c62828", capsize=3, label="observed")
        ax1.plot(x, [m["mean_pd"] for m in ok], marker="s", color="#1f4e79", label="mean PD")
        auc = np.array([m["auc"]["value"] for m in ok])
        aerr = np.array(
            [
                [m["auc"]["value"] - m["auc"]["low"] for m in ok],
                [m["auc"]["high"] - m["auc"]["value"] for m in ok],
            ]
        )
        ax2.errorbar(x, auc, yerr=aerr, fmt="o", color="#1f4e79", capsize=3)
    ax1.set(ylabel="12-month default rate", title="Calibration by month of decision")
    ax1.legend(fontsize=8)
    ax2.set(ylabel="AUC (95% bootstrap)", title="Discrimination by month of decision")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def vintage_figure(vintages: pd.DataFrame) -> Figure:
    """Cumulative default rate by months on book, one line per monthly cohort."""
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    months = [c for c in vintages.columns if isinstance(c, int | np.integer)]
    cmap = __import__("matplotlib").colormaps["viridis"]
    for i, (_, row) in enumerate(vintages.iterrows()):
        ax.plot(
            months,
            [row[m] for m in months],
            marker=".",
            color=cmap(i / max(len(vintages) - 1, 1)),
            label=row["cohort"],
        )
    ax.set(
        xlabel="months on book",
        ylabel="cumulative default rate",
        title="Vintage curves by month of decision",
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def band_figure(bands: Sequence[Mapping[str, Any]]) -> Figure:
    """Observed default rate per band (Wilson 95%) against the band's mean PD."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    x = [b["band"] for b in bands]
    obs = np.array([b["observed"] for b in bands])
    err = np.array(
        [[b["observed"] - b["low"] for b in bands], [b["high"] - b["observed"] for b in bands]]
    )
    ax.errorbar(x, obs, yerr=err, fmt="o", color="#c62828", capsize=3, label="observed")
    ax.plot(x, [b["predicted"] for b in bands], marker="s", color="#1f4e79", label="mean PD")
    ax.set(ylabel="default rate", title="Observed vs predicted by band (matured)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figures(
    windows: Sequence[Mapping[str, Any]],
    params: MonitorParams,
    months: Sequence[Mapping[str, Any]] = (),
    vintages: pd.DataFrame | None = None,
    bands: Sequence[Mapping[str, Any]] = (),
) -> dict[str, bytes]:
    """Every figure the data supports, as PNG bytes by file stem."""
    out = {"score_psi": figure_png(score_psi_figure(windows, params))}
    if any("auc" in m for m in months):
        out["calibration_by_month"] = figure_png(calibration_figure(months))
    if vintages is not None and len(vintages):
        out["vintage_curves"] = figure_png(vintage_figure(vintages))
    if bands:
        out["band_calibration"] = figure_png(band_figure(bands))
    return out


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model monitoring: {{ model }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.stable{color:#2e7d32}.watch{color:#b07800;font-weight:600}.act{color:#c62828;font-weight:700}
img{max-width:100%}
</style></head><body>
<h1>Model monitoring</h1>
<p>Model {{ model }}; {{ n_decisions }} decisions in {{ windows|length }} window(s)
({{ window_kind }}); reference: the training slice ({{ ref_rows }} rows), bins frozen at
training. Overall status: <span class="{{ status }}">{{ status }}</span>
(exit code {{ exit_code }}).</p>
<section><h2>Summary</h2>
<table><tr><th class="l">window</th><th>decisions</th><th>score PSI</th><th>approval rate</th>
<th>mean PD</th><th>items at watch</th><th>items to act on</th><th class="l">status</th></tr>
{% for w in windows %}<tr><td class="l">{{ w.window }}</td><td>{{ w.decisions }}</td>
<td>{{ fmt(w.score_psi, 3) }}</td><td>{{ fmt(w.approval_rate, 3) }}</td>
<td>{{ fmt(w.mean_pd, 4) }}</td>
<td>{{ w.n_watch }}</td><td>{{ w.n_act }}</td><td class="l {{ w.status }}">{{ w.status }}</td></tr>
{% endfor %}</table></section>
<section><h2>Drift table (newest window {{ newest.window }})</h2>
<p>Items at watch or act first, then the largest PSI. PSI: &lt; {{ p.psi_watch }} stable,
up to {{ p.psi_act }} watch, above act. Missing rate and approval / tier shares: absolute
change against training.</p>
<table><tr><th class="l">item</th><th class="l">measure</th><th>value</th><th>training</th>
<th class="l">status</th></tr>
{% for it in drift_rows %}<tr><td class="l">{{ it.item }}</td><td class="l">{{ it.kind }}</td>
<td>{{ fmtv(it.value) }}</td><td>{{ fmtv(it.reference) }}</td>
<td class="l {{ it.status }}">{{ it.status }}</td></tr>{% endfor %}</table></section>
<section><h2>Score stability over time</h2>
<img alt="score PSI by window" src="{{ img.score_psi }}"></section>
<section><h2>Performance on matured outcomes</h2>
{% if backtest %}<p>Backtest of the champion on the newest matured month
({{ backtest.month or "none" }}): <span class="{{ backtest.status }}">{{ backtest.status }}</span>
&mdash; {{ backtest.why }}.</p>{% else %}<p>Not checkable: no outcomes given.</p>{% endif %}
{% if months %}<table><tr><th class="l">month</th><th>matured</th><th>defaults</th><th>mean PD</th>
<th>default rate (95% CI)</th><th>AUC (95% CI)</th><th>KS (95% CI)</th><th>ECE (95% CI)</th></tr>
{% for m in months %}<tr><td class="l">{{ m.month }}</td><td>{{ m.n }}</td><td>{{ m.defaults }}</td>
<td>{{ fmt(m.mean_pd, 4) }}</td>{% for k in ["default_rate", "auc", "ks", "ece"] %}
<td>{% if m[k] %}{{ fmt(m[k].value, 3) }} ({{ fmt(m[k].low, 3) }}-{{ fmt(m[k].high, 3) }})
{% else %}not checkable{% endif %}</td>
{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if img.calibration_by_month %}
<img alt="calibration by month" src="{{ img.calibration_by_month }}">{% endif %}
{% if img.band_calibration %}
<img alt="observed vs predicted by band" src="{{ img.band_calibration }}">{% endif %}
</section>
<section><h2>Vintage curves</h2>
{% if img.vintage_curves %}<img alt="vintage curves" src="{{ img.vintage_curves }}">
{% else %}<p>Not checkable: {{ vintage_why }}</p>{% endif %}</section>
</body></html>
"""


def _fmtv(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "none"
    return fmt(v, 4)


def render_html(context: Mapping[str, Any]) -> str:
    """The page from the context the monitor stage builds (figures as data URIs)."""
    env = Environment(autoescape=select_autoescape(default=True))
    ctx = dict(context)
    ctx["img"] = {k: data_uri(v) for k, v in context.get("png", {}).items()}
    return env.from_string(_TEMPLATE).render(**ctx, fmt=fmt, fmtv=_fmtv)
