"""How a feature's value reads in words: the reason sentences and the values in them.

Each feature declares its sentence (a :class:`Wording`) in the registry
(:mod:`credit_scoring.features.registry`), next to its unit, range and window; this module
only fills it in. :func:`reason_text` is what adverse-action reasons show and
:func:`format_value` is the value in the feature's unit (also used by advice).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Protocol

#: Fields a wording may use: {v} the value formatted by unit, {w} the window in days,
#: {s} plural "s", {ies} "y"/"ies", {pp} |value| in percentage points, {hl} higher/lower.
FIELDS: frozenset[str] = frozenset({"v", "w", "s", "ies", "pp", "hl"})


@dataclass(frozen=True)
class Wording:
    """Sentence for a feature value, with the fields of :data:`FIELDS`.

    ``zero`` is used when the value is 0, ``missing`` when it is NaN (empty: the ``zero``
    sentence, as for counts, where nothing on record means none).
    """

    text: str
    missing: str
    zero: str | None = None

    def fields(self) -> set[str]:
        """The fields its sentences use."""
        out = set()
        for s in (self.text, self.missing, self.zero or ""):
            out |= {f for _, f, _, _ in string.Formatter().parse(s) if f is not None}
        return out


class Worded(Protocol):
    """What wording reads of a feature (a registry ``FeatureSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def window(self) -> int | None: ...
    @property
    def levels(self) -> tuple[str, ...]: ...
    @property
    def reason(self) -> Wording | None: ...


def _plural(n: float, word: str) -> str:
    return f"{n:,.0f} {word}" + ("" if round(n) == 1 else "s")


def _is_one(v: float) -> bool:
    return abs(v - 1) < 1e-9


def format_value(spec: Worded, value: float) -> str:
    """The value in the feature's unit: 3, 92%, CNY 4,500, 12 days, 1.5 years, 0.80."""
    unit = spec.unit
    if unit == "count":  # whole numbers, except averages such as 0.4 per contact
        return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 else f"{value:,.1f}"
    if unit == "share":
        return f"{100 * value:.0f}%"
    if unit == "CNY":
        return f"CNY {value:,.0f}"
    if unit == "days":
        return _plural(value, "day")
    if unit == "months":
        return "less than a month" if 0 < value < 0.5 else _plural(value, "month")
    if unit == "years":
        if value < 1:
            return "less than a year"
        return _plural(value, "year") if abs(value - round(value)) < 0.05 else f"{value:.1f} years"
    if unit == "flag":
        return "yes" if value >= 0.5 else "no"
    if unit == "level":
        words = spec.levels
        i = round(value)
        if words and 0 <= i < len(words) and abs(value - i) < 1e-9:
            return words[i]
        return f"{value:g}"
    return f"{value:.2f}"


def reason_text(spec: Worded, value: float | None) -> str:
    """A short sentence a person understands, for a feature and its value.

    Fills the feature's declared :class:`Wording` (``"<description>: <value>"`` for a
    feature without one); values are formatted by the feature's unit
    (:func:`format_value`: count as an integer, share as a percentage, CNY as money,
    days/months with their unit, flags as yes/no) and a missing value (None or NaN) says
    what is not on record or not provided.

    Examples: ``"3 repayments 30 or more days late in the last 90 days"``,
    ``"Credit use is 92% of your limit"``, ``"Monthly income not provided"``.
    """
    missing = value is None or math.isnan(float(value))
    wording = spec.reason
    if wording is None:
        if missing:
            return f"{spec.description}: not on record"
        return f"{spec.description}: {format_value(spec, float(value))}"
    v = 0.0 if missing else float(value)
    fields = {
        "v": "" if missing else format_value(spec, v),
        "w": spec.window if spec.window is not None else "",
        "s": "" if _is_one(v) else "s",
        "ies": "y" if _is_one(v) else "ies",
        "pp": f"{abs(100 * v):.0f}",
        "hl": "higher" if v >= 0 else "lower",
    }
    if missing:
        text = wording.missing or wording.zero or f"{spec.description}: not on record"
    elif wording.zero is not None and v == 0:
        text = wording.zero
    else:
        text = wording.text
    return text.format(**fields)
