"""The promotion gate: a pure rule that says whether a challenger may become champion."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from credit_scoring.config import GateParams


@dataclass
class GateDecision:
    """Whether the challenger becomes champion, and every reason, pass or fail."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    gate: GateParams,
    fairness_breaches: list[str] | None = None,
    block_on_fairness: bool = False,
) -> GateDecision:
    """Pure promotion rule: calibrated, stable and better than the champion on the same test.

    ``fairness_breaches`` (from reports/fairness.json; None = no fairness report) refuse
    promotion only when ``block_on_fairness`` (params ``fairness.block_promotion``) is
    true; otherwise they are listed as warnings so the decision record still shows them.
    """
    reasons: list[str] = []
    ok = True
    ece, psi, auc = challenger["ece"], challenger["psi"], challenger["auc"]
    if ece <= gate.max_ece:
        reasons.append(f"pass: ECE {ece:.4f} <= {gate.max_ece}")
    else:
        ok = False
        reasons.append(f"fail: ECE {ece:.4f} > {gate.max_ece} (not calibrated enough)")
    if psi <= gate.max_psi:
        reasons.append(f"pass: PSI {psi:.4f} <= {gate.max_psi}")
    else:
        ok = False
        reasons.append(f"fail: PSI {psi:.4f} > {gate.max_psi} (score not stable)")
    if champion is None:
        reasons.append("pass: no current champion")
    else:
        need = champion["auc"] + gate.min_auc_gain
        if auc >= need:
            reasons.append(
                f"pass: AUC {auc:.4f} >= champion {champion['auc']:.4f} + {gate.min_auc_gain}"
            )
        else:
            ok = False
            reasons.append(
                f"fail: AUC {auc:.4f} < champion {champion['auc']:.4f} + {gate.min_auc_gain}"
            )
    if fairness_breaches is not None:
        if not fairness_breaches:
            reasons.append("pass: no fairness breach")
        elif block_on_fairness:
            ok = False
            reasons += [f"fail: fairness: {b}" for b in fairness_breaches]
        else:
            reasons += [
                f"warn: fairness (not blocking, fairness.block_promotion false): {b}"
                for b in fairness_breaches
            ]
    return GateDecision(promote=ok, reasons=reasons, challenger=challenger, champion=champion)
