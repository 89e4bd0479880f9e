"""The promotion gate: a model becomes champion only on out-of-sample results, judged against
the champion backtested on the same test window. Also the forced promotion that overrides it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tradebot.features.feature_store import FeatureStore
from tradebot.kernel.db import Database
from tradebot.kernel.errors import NoChampionError
from tradebot.kernel.schema import ModelPromotionRow
from tradebot.kernel.settings import GateSettings
from tradebot.models import registry
from tradebot.pipelines.backtest_logging import finite_metrics
from tradebot.pipelines.model_backtest import Period, backtest_period

Check = tuple[bool, str]
FORCED = "forced"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str

    @property
    def label(self) -> str:
        """The model_promotions / ``gate.decision`` value."""
        return "promoted" if self.promote else "rejected"


@dataclass(frozen=True)
class ChampionComparison:
    """The champion when the candidate is judged, and its ``bt_*`` metrics on the candidate's
    test window (None when it was not scored there; ``note`` says why)."""

    version: str | None
    metrics: dict[str, float] | None
    note: str

    def run_metrics(self) -> dict[str, float]:
        """The champion's same-window metrics as ``champion_bt_*`` for the candidate's run."""
        return {f"champion_{k}": v for k, v in (self.metrics or {}).items()}

    @property
    def tag(self) -> str:
        return self.version or "none"


def _figure(metrics: Mapping[str, float], key: str) -> float:
    """``metrics[key]`` as a float; NaN when missing or not finite."""
    value = float(metrics.get(key, math.nan))
    return value if math.isfinite(value) else math.nan


def _auc_check(candidate: Mapping[str, float], gate: GateSettings) -> Check:
    auc = _figure(candidate, "test_auc")
    if auc >= gate.min_test_auc:
        return True, f"test AUC {auc:.4f} >= {gate.min_test_auc:.4f}"
    return False, f"test AUC {auc:.4f} < gate minimum {gate.min_test_auc:.4f}"


def _return_check(candidate: Mapping[str, float], gate: GateSettings) -> Check:
    """Test-window backtest return after costs; the simpler test_net_return without one."""
    key = "bt_total_return" if "bt_total_return" in candidate else "test_net_return"
    value, floor = _figure(candidate, key), gate.min_test_net_return
    if value > floor:
        return True, f"net return after costs ({key}) {value:.2%} > {floor:.2%}"
    return False, f"net return after costs ({key}) {value:.2%} <= gate minimum {floor:.2%}"


def _sharpe_check(candidate: Mapping[str, float], champion: Mapping[str, float],
                  gate: GateSettings) -> Check:
    """Beat the champion's same-window Sharpe by the margin; an undefined candidate Sharpe
    fails, an undefined champion Sharpe is beaten by any defined one."""
    mine, theirs = _figure(candidate, "bt_sharpe"), _figure(champion, "bt_sharpe")
    margin = gate.min_sharpe_margin
    if math.isnan(theirs) and not math.isnan(mine):
        return True, f"bt_sharpe {mine:.2f} (champion's undefined on this window)"
    if mine > theirs + margin:
        return True, f"bt_sharpe {mine:.2f} > champion {theirs:.2f} + margin {margin:.2f}"
    return False, f"bt_sharpe {mine:.2f} does not beat champion {theirs:.2f} + margin {margin:.2f}"


def _drawdown_check(candidate: Mapping[str, float], champion: Mapping[str, float],
                    gate: GateSettings) -> Check:
    mine, theirs = _figure(candidate, "bt_max_drawdown"), _figure(champion, "bt_max_drawdown")
    slack = gate.max_drawdown_slack
    if math.isnan(theirs) and not math.isnan(mine):
        return True, f"max drawdown {mine:.1%} (champion's undefined on this window)"
    if mine <= theirs + slack:
        return True, f"max drawdown {mine:.1%} vs champion {theirs:.1%} (slack {slack:.1%})"
    return False, f"max drawdown {mine:.1%} exceeds champion {theirs:.1%} + slack {slack:.1%}"


def gate_decision(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, gate: GateSettings
) -> GateDecision:
    """Pass when test AUC >= its floor, the test-window backtest return after costs exceeds its
    floor and, given the champion's metrics on the same window (and require_beat_champion),
    bt_sharpe beats the champion's by the margin and bt_max_drawdown stays within the slack.
    The reason lists every rule's figures."""
    checks: list[Check] = []
    if champion is not None and gate.require_beat_champion:
        checks += [_sharpe_check(candidate, champion, gate),
                   _drawdown_check(candidate, champion, gate)]
    checks += [_auc_check(candidate, gate), _return_check(candidate, gate)]
    texts = [text for _, text in checks]
    if champion is not None and not gate.require_beat_champion:
        texts.append("champion not compared (gate.require_beat_champion = false)")
    return GateDecision(all(ok for ok, _ in checks), "; ".join(texts))


def judge(candidate: Mapping[str, float], comparison: ChampionComparison,
          gate: GateSettings) -> GateDecision:
    """:func:`gate_decision` against the comparison's metrics, its note added to the reason."""
    decision = gate_decision(candidate, comparison.metrics, gate)
    return GateDecision(decision.promote, "; ".join(filter(None, [decision.reason,
                                                                   comparison.note])))


def compare_champion(store: FeatureStore, period: Period, name: str) -> ChampionComparison:
    """Backtest the champion on the candidate's test window when it was trained on the
    store's feature set (registry configured by the caller)."""
    try:
        model, info = registry.model_version(name, None)
    except NoChampionError:
        return ChampionComparison(None, None, "no champion yet")
    trained_on = registry.trained_feature_set(model)
    if trained_on != store.version:
        return ChampionComparison(info.version, None, (
            f"champion v{info.version} was trained on feature set {trained_on or 'unknown'}, "
            f"not {store.version}: it cannot be scored on these rows, so the candidate is "
            "judged on the floors alone"))
    done = backtest_period(store, period, registry.pyfunc_predictor(model), info.version)
    return ChampionComparison(info.version, finite_metrics(done.run),
                              f"compared with champion v{info.version} on the same test window")


def champion_unscored(name: str) -> ChampionComparison:
    """The comparison when the candidate has no test-window backtest to compare with."""
    current = registry.champion(name)
    note = ("no test-window backtest (backtest.after_training = false): "
            "judged on the floors alone")
    return ChampionComparison(current.version if current else None, None, note)


def promotion_row(
    ts: datetime, info: registry.ModelInfo, decision: str, reason: str,
    metrics: Mapping[str, float],
) -> ModelPromotionRow:
    return ModelPromotionRow(
        ts=ts, model_name=info.name, model_version=info.version, run_id=info.run_id,
        decision=decision, reason=reason, metrics={k: float(v) for k, v in metrics.items()},
    )


def record_decision(db: Database, ts: datetime, info: registry.ModelInfo,
                    decision: GateDecision, comparison: ChampionComparison,
                    metrics: Mapping[str, float]) -> None:
    """Tag the version, store the decision, then (last, so a failure moves nothing) point
    ``champion`` at it if it passed and ``challenger`` at it in any case."""
    registry.tag_version(info.name, info.version, {
        registry.TAG_DECISION: decision.label, registry.TAG_REASON: decision.reason,
        registry.TAG_CHAMPION: comparison.tag})
    with db.session() as session:
        session.add(promotion_row(ts, info, decision.label, decision.reason, metrics))
    if decision.promote:
        registry.promote(info.name, info.version)
    registry.set_alias(info.name, registry.CHALLENGER, info.version)


def force_promote(db: Database, ts: datetime, name: str, version: str,
                  reason: str) -> registry.ModelInfo:
    """Make ``version`` the champion without the gate; recorded as decision ``forced``
    (registry configured by the caller)."""
    info = registry.version_info(name, version)
    registry.tag_version(name, info.version, {registry.TAG_DECISION: FORCED,
                                              registry.TAG_REASON: reason})
    with db.session() as session:
        session.add(promotion_row(ts, info, FORCED, reason, info.metrics))
    registry.promote(name, info.version)
    return info
