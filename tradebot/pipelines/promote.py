"""The promotion gate: a model becomes champion only on out-of-sample results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tradebot.kernel.schema import ModelPromotionRow
from tradebot.kernel.settings import GateSettings


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def gate_decision(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, gate: GateSettings
) -> GateDecision:
    """Pass when test AUC clears the floor, the test-window trading return after costs exceeds
    its floor, and (optionally) the candidate beats the current champion's test AUC."""
    auc = candidate.get("test_auc", 0.0)
    net = candidate.get("test_net_return", float("-inf"))
    if auc < gate.min_test_auc:
        return GateDecision(False, f"test AUC {auc:.4f} < gate minimum {gate.min_test_auc:.4f}")
    if net <= gate.min_test_net_return:
        return GateDecision(
            False,
            f"test net return after costs {net:.4%} <= gate minimum {gate.min_test_net_return:.4%}",
        )
    if champion and gate.require_beat_champion:
        best = champion.get("test_auc", 0.0)
        if auc <= best:
            return GateDecision(False, f"test AUC {auc:.4f} does not beat champion's {best:.4f}")
        return GateDecision(True, f"test AUC {auc:.4f} beats champion's {best:.4f}")
    return GateDecision(True, f"test AUC {auc:.4f} >= {gate.min_test_auc:.4f}, net {net:.4%}")


def promotion_row(
    ts: datetime, name: str, version: str, run_id: str, decision: GateDecision,
    metrics: Mapping[str, float],
) -> ModelPromotionRow:
    return ModelPromotionRow(
        ts=ts, model_name=name, model_version=version, run_id=run_id,
        decision="promoted" if decision.promote else "rejected", reason=decision.reason,
        metrics={k: float(v) for k, v in metrics.items()},
    )
