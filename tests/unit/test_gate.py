"""The promotion gate: floors on test AUC and the test-window backtest return, and against the
champion backtested on the same window, Sharpe by a margin and max drawdown within a slack."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from tradebot.kernel.settings import GateSettings
from tradebot.models import registry
from tradebot.pipelines.promote import (
    ChampionComparison,
    GateDecision,
    force_promote,
    gate_decision,
    judge,
    record_decision,
)

GATE = GateSettings(min_test_auc=0.51, min_test_net_return=0.0, require_beat_champion=True,
                    min_sharpe_margin=0.10, max_drawdown_slack=0.02)
GOOD = {"test_auc": 0.56, "test_net_return": -0.5, "bt_total_return": 0.012, "bt_sharpe": 1.2,
        "bt_max_drawdown": 0.031}
CHAMPION = {"bt_total_return": 0.004, "bt_sharpe": 0.9, "bt_max_drawdown": 0.025}


def test_candidate_beating_champion_is_promoted_and_reason_lists_every_figure() -> None:
    decision = gate_decision(GOOD, CHAMPION, GATE)
    assert decision.promote
    assert decision.label == "promoted"
    assert decision.reason == (
        "bt_sharpe 1.20 > champion 0.90 + margin 0.10; "
        "max drawdown 3.1% vs champion 2.5% (slack 2.0%); "
        "test AUC 0.5600 >= 0.5100; net return after costs (bt_total_return) 1.20% > 0.00%")


@pytest.mark.parametrize(("change", "expected"), [
    ({"test_auc": 0.505}, "test AUC 0.5050 < gate minimum 0.5100"),
    ({"bt_total_return": 0.0}, "(bt_total_return) 0.00% <= gate minimum 0.00%"),
    ({"bt_total_return": -0.01}, "(bt_total_return) -1.00% <= gate minimum 0.00%"),
    ({"bt_sharpe": 1.0}, "bt_sharpe 1.00 does not beat champion 0.90 + margin 0.10"),
    ({"bt_sharpe": math.nan}, "bt_sharpe nan does not beat champion 0.90"),
    ({"bt_max_drawdown": 0.046}, "max drawdown 4.6% exceeds champion 2.5% + slack 2.0%"),
], ids=["auc", "return-at-floor", "return-below", "sharpe-within-margin", "sharpe-nan",
        "drawdown"])
def test_each_failing_rule_rejects_and_says_why(change: dict, expected: str) -> None:
    decision = gate_decision(GOOD | change, CHAMPION, GATE)
    assert not decision.promote
    assert decision.label == "rejected"
    assert expected in decision.reason


def test_missing_candidate_sharpe_counts_as_failing() -> None:
    candidate = {k: v for k, v in GOOD.items() if k != "bt_sharpe"}
    assert not gate_decision(candidate, CHAMPION, GATE).promote


def test_drawdown_at_the_slack_passes() -> None:
    assert gate_decision(GOOD | {"bt_max_drawdown": 0.045}, CHAMPION, GATE).promote


def test_no_champion_judges_the_floors_only() -> None:
    weak = GOOD | {"bt_sharpe": -3.0, "bt_max_drawdown": 0.5}
    decision = gate_decision(weak, None, GATE)
    assert decision.promote
    assert "champion" not in decision.reason


def test_champion_comparison_can_be_switched_off() -> None:
    gate = GATE.model_copy(update={"require_beat_champion": False})
    decision = gate_decision(GOOD | {"bt_sharpe": 0.0}, CHAMPION, gate)
    assert decision.promote
    assert "require_beat_champion = false" in decision.reason


def test_undefined_champion_sharpe_is_beaten_by_a_defined_one() -> None:
    champion = {"bt_max_drawdown": 0.0}
    decision = gate_decision(GOOD | {"bt_max_drawdown": 0.01}, champion, GATE)
    assert decision.promote
    assert "champion's undefined" in decision.reason
    both_undefined = {k: v for k, v in GOOD.items() if k != "bt_sharpe"}
    decision = gate_decision(both_undefined | {"bt_max_drawdown": 0.01}, champion, GATE)
    assert not decision.promote
    assert "bt_sharpe nan does not beat champion nan" in decision.reason


@pytest.mark.parametrize(("net", "promote"), [(0.01, True), (-0.01, False)])
def test_without_backtest_metrics_the_return_floor_uses_test_net_return(
    net: float, promote: bool
) -> None:
    decision = gate_decision({"test_auc": 0.6, "test_net_return": net}, None, GATE)
    assert decision.promote is promote
    assert "(test_net_return)" in decision.reason


def test_equal_candidate_and_champion_is_not_promoted() -> None:
    """A retrain on the same data must not move the champion (zero margin, strict >)."""
    gate = GATE.model_copy(update={"min_sharpe_margin": 0.0})
    same = {k: GOOD[k] for k in ("bt_total_return", "bt_sharpe", "bt_max_drawdown")}
    decision = gate_decision(GOOD, same, gate)
    assert not decision.promote
    assert "bt_sharpe 1.20 does not beat champion 1.20 + margin 0.00" in decision.reason


def test_judge_adds_the_comparison_note_and_floors_only_without_metrics() -> None:
    unscored = ChampionComparison("3", None, "champion v3 was trained on feature set a, not b")
    decision = judge(GOOD | {"bt_sharpe": -1.0}, unscored, GATE)
    assert decision.promote
    assert decision.reason.endswith("; champion v3 was trained on feature set a, not b")
    scored = ChampionComparison("3", CHAMPION, "compared with champion v3")
    assert not judge(GOOD | {"bt_sharpe": -1.0}, scored, GATE).promote
    assert scored.run_metrics()["champion_bt_sharpe"] == 0.9
    assert scored.tag == "3" and ChampionComparison(None, None, "").tag == "none"


class _Session:
    def __init__(self, fail: bool) -> None:
        self.fail, self.added = fail, []

    def add(self, row: object) -> None:
        if self.fail:
            raise RuntimeError("database is locked")
        self.added.append(row)


class _Db:
    """A Database stand-in whose session records rows or fails on the write."""

    def __init__(self, fail: bool = False) -> None:
        self.last = _Session(fail)

    @contextmanager
    def session(self) -> Iterator[_Session]:
        yield self.last


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Registry writes, in order, instead of MLflow."""
    seen: list[tuple] = []
    monkeypatch.setattr(registry, "tag_version", lambda n, v, tags: seen.append(("tags", v, tags)))
    monkeypatch.setattr(registry, "promote", lambda n, v: seen.append(("alias", "champion", v)))
    monkeypatch.setattr(registry, "set_alias", lambda n, a, v: seen.append(("alias", a, v)))
    return seen


INFO = registry.ModelInfo("m", "4", "run4", {"test_auc": 0.6})
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_decision_is_tagged_and_stored_before_any_alias_moves(calls: list[tuple]) -> None:
    db = _Db()
    passed = GateDecision(True, "all good")
    record_decision(db, NOW, INFO, passed, ChampionComparison("3", {}, "note"), INFO.metrics)
    assert calls == [
        ("tags", "4", {"gate.decision": "promoted", "gate.reason": "all good",
                       "gate.champion_version": "3"}),
        ("alias", "champion", "4"), ("alias", "challenger", "4")]
    row = db.last.added[0]
    assert (row.model_version, row.decision, row.reason) == ("4", "promoted", "all good")
    calls.clear()
    record_decision(_Db(), NOW, INFO, GateDecision(False, "no"), ChampionComparison(
        None, None, ""), INFO.metrics)
    assert [c for c in calls if c[0] == "alias"] == [("alias", "challenger", "4")]
    assert calls[0][2]["gate.champion_version"] == "none"


def test_a_failed_write_moves_no_alias(calls: list[tuple]) -> None:
    with pytest.raises(RuntimeError):
        record_decision(_Db(fail=True), NOW, INFO, GateDecision(True, "ok"),
                        ChampionComparison(None, None, ""), INFO.metrics)
    assert not [c for c in calls if c[0] == "alias"]


def test_forced_promotion_is_recorded_then_moves_the_champion(
    calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "version_info", lambda n, v: INFO)
    db = _Db()
    force_promote(db, NOW, "m", "4", "manual check")
    assert calls == [("tags", "4", {"gate.decision": "forced", "gate.reason": "manual check"}),
                     ("alias", "champion", "4")]
    row = db.last.added[0]
    assert (row.decision, row.reason, row.run_id) == ("forced", "manual check", "run4")
