"""Population stability of a window of decisions against the training reference.

Each item gets a value, its reference and a status: ``stable``, ``watch``, ``act`` or
``not checkable`` (a window under ``monitor.min_decisions`` decisions, or an item the
reference cannot support). Items: volume; PSI of the score, the limit and every model
feature with the bins frozen at training (missing values their own bin); change of each
feature's missing rate; approval rate; band mix and reason-code mix (PSI over their
categories); each tier's share; categories never seen in training (bands, tiers, reason
codes). PSI < ``psi_watch`` stable, up to ``psi_act`` watch, above act (DOMAIN.md's
0.10 / 0.25 convention).

Exit codes for a scheduler (:func:`exit_code`): 0 all stable, 3 the worst is watch,
4 something to act on (1 and 2 stay the CLI's usage and input errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.config import MonitorParams
from credit_scoring.monitoring.reference import bin_shares, category_shares, psi_from_shares

STABLE, WATCH, ACT, NOT_CHECKABLE = "stable", "watch", "act", "not checkable"
_RANK = {NOT_CHECKABLE: 0, STABLE: 0, WATCH: 1, ACT: 2}
#: A category unseen in training counts as new from this share of the window on (a rare
#: reason code missing from the reference's reason sample is not news).
NEW_SHARE = 0.01
#: Exit code per worst status.
EXIT_CODES = {STABLE: 0, WATCH: 3, ACT: 4}
#: Feature columns of a window are prefixed (a feature may share a decision's name,
#: e.g. the bureau ``credit_limit`` feature and the decided ``credit_limit``).
FEATURE_PREFIX = "feature:"
#: Columns a window of decisions carries (plus ``feature:<name>`` per model feature).
DECISION_COLUMNS = ("decided_at", "pd", "score", "band", "credit_limit", "tiers", "reason_codes")


def graded(value: float, watch: float, act: float) -> str:
    """stable below ``watch``, watch up to ``act``, act above; NaN is not checkable."""
    if value is None or not np.isfinite(value):
        return NOT_CHECKABLE
    return STABLE if value < watch else WATCH if value <= act else ACT


def worst(statuses: Iterable[str]) -> str:
    """The most severe status (not checkable counts as stable for alarms)."""
    found = [s for s in statuses if s != NOT_CHECKABLE]
    return max(found, key=_RANK.__getitem__) if found else NOT_CHECKABLE


def exit_code(status: str) -> int:
    """0 stable (or nothing checkable), 3 watch, 4 act."""
    return EXIT_CODES.get(status, 0)


def _item(item: str, kind: str, value: Any, reference: Any, status: str, **extra) -> dict:
    return {
        "item": item,
        "kind": kind,
        "value": value,
        "reference": reference,
        "status": status,
        **extra,
    }


def _mix_psi(ref: Mapping[str, float], window: Mapping[str, float]) -> float:
    """PSI over categories (shares renormalised over the union of categories)."""
    keys = sorted(set(ref) | set(window))
    e = np.array([ref.get(k, 0.0) for k in keys])
    a = np.array([window.get(k, 0.0) for k in keys])
    if e.sum() == 0 or a.sum() == 0:
        return float("nan")
    return psi_from_shares(e / e.sum(), a / a.sum())


def window_items(
    window: pd.DataFrame, reference: Mapping[str, Any], params: MonitorParams
) -> list[dict[str, Any]]:
    """Every stability item of one window of decisions (see the module docstring)."""
    n = len(window)
    checkable = n >= params.min_decisions
    items = [
        _item("decisions", "volume", n, reference["rows"], STABLE if checkable else NOT_CHECKABLE)
    ]

    def psi_item(name: str, kind: str, values: np.ndarray, ref: Mapping[str, Any]) -> dict:
        value = psi_from_shares(ref["shares"], bin_shares(values, ref["edges"]))
        status = graded(value, params.psi_watch, params.psi_act) if checkable else NOT_CHECKABLE
        return _item(name, kind, value, 0.0, status)

    items.append(psi_item("score", "psi", window["score"].to_numpy(float), reference["score"]))
    items.append(
        psi_item("decided_limit", "psi", window["credit_limit"].to_numpy(float), reference["limit"])
    )
    approval = float((window["credit_limit"].to_numpy(float) > 0).mean()) if n else float("nan")
    change = abs(approval - reference["approval_rate"])
    items.append(
        _item(
            "approval_rate",
            "rate",
            approval,
            reference["approval_rate"],
            graded(change, params.approval_watch, params.approval_act)
            if checkable
            else NOT_CHECKABLE,
        )
    )
    bands = category_shares(window["band"])
    items.append(
        _item(
            "band_mix",
            "psi",
            _mix_psi(reference["bands"], bands),
            0.0,
            graded(_mix_psi(reference["bands"], bands), params.psi_watch, params.psi_act)
            if checkable
            else NOT_CHECKABLE,
            shares=bands,
        )
    )
    tiers = category_shares(window["tiers"])
    for tier in sorted(set(reference["tiers"]) | set(tiers)):
        ref, now = reference["tiers"].get(tier, 0.0), tiers.get(tier, 0.0)
        items.append(
            _item(
                f"tier {tier}",
                "rate",
                now,
                ref,
                graded(abs(now - ref), params.approval_watch, params.approval_act)
                if checkable
                else NOT_CHECKABLE,
            )
        )
    given = [r for r in window["reason_codes"] if isinstance(r, list | tuple | np.ndarray)]
    if given and reference.get("reason_rows"):
        codes = category_shares(given)
        value = _mix_psi(reference["reason_codes"], codes)
        status = graded(value, params.psi_watch, params.psi_act) if checkable else NOT_CHECKABLE
        items.append(_item("reason_codes", "psi", value, 0.0, status, shares=codes))
    else:
        codes = {}
        items.append(
            _item(
                "reason_codes", "psi", None, 0.0, NOT_CHECKABLE, detail="no reasons in this window"
            )
        )
    new = sorted(
        {f"band {b}" for b, v in bands.items() if b not in reference["bands"] and v >= NEW_SHARE}
        | {f"tier {t}" for t, v in tiers.items() if t not in reference["tiers"] and v >= NEW_SHARE}
        | {
            f"reason {c}"
            for c, v in codes.items()
            if c not in reference["reason_codes"] and v >= NEW_SHARE
        }
    )
    items.append(
        _item(
            "new categories",
            "categories",
            new,
            [],
            (WATCH if new else STABLE) if checkable else NOT_CHECKABLE,
        )
    )
    for name in reference["feature_names"]:
        ref = reference["features"][name]
        col = FEATURE_PREFIX + name
        if col not in window:
            items.append(_item(name, "psi", None, 0.0, ACT, detail="feature absent"))
            continue
        values = pd.to_numeric(window[col], errors="coerce").to_numpy(dtype=np.float64)
        items.append(psi_item(name, "psi", values, ref))
        missing = float((~np.isfinite(values)).mean()) if n else float("nan")
        status = (
            graded(abs(missing - ref["missing_rate"]), params.missing_watch, params.missing_act)
            if checkable
            else NOT_CHECKABLE
        )
        items.append(_item(name, "missing_rate", missing, ref["missing_rate"], status))
    return items


def window_key(times: pd.Series, window: str) -> pd.Series:
    """The window each decision falls in: its day, ISO week (Monday) or month, as a date."""
    t = pd.to_datetime(times)
    if window == "day":
        return t.dt.normalize()
    if window == "week":
        return (t - pd.to_timedelta(t.dt.weekday, unit="D")).dt.normalize()
    return t.dt.to_period("M").dt.start_time


def monitor_windows(
    decisions: pd.DataFrame, reference: Mapping[str, Any], params: MonitorParams
) -> list[dict[str, Any]]:
    """The decisions cut into windows (``params.window``), oldest first, each with its
    items, its worst status and its score PSI."""
    missing = [c for c in DECISION_COLUMNS if c not in decisions]
    if missing:
        raise ValueError(f"decisions lack the columns {missing}")
    keys = window_key(decisions["decided_at"], params.window)
    out = []
    for i, (start, frame) in enumerate(decisions.groupby(keys, sort=True)):
        items = window_items(frame, reference, params)
        out.append(
            {
                "index": i,
                "window": pd.Timestamp(start).date().isoformat(),
                "decisions": len(frame),
                "status": worst(it["status"] for it in items),
                "score_psi": next(it["value"] for it in items if it["item"] == "score"),
                "approval_rate": next(it["value"] for it in items if it["item"] == "approval_rate"),
                "mean_pd": float(frame["pd"].mean()),
                "items": items,
            }
        )
    return out


def alarms(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The items at watch or act, most severe and largest first."""
    hit = [it for it in items if it["status"] in (WATCH, ACT)]
    return sorted(hit, key=lambda it: (-_RANK[it["status"]], -_num(it["value"])))


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0
