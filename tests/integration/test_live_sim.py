"""The live cycle on the simulated broker: a crash at any write leaves no trace (one
transaction) and the re-run places exactly the orders a run without the crash places."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.kit.live import SYMBOLS, TIMES, TapeStore, constant, day_bars
from tradebot.kernel.clock import SimulatedClock
from tradebot.kernel.db import Database
from tradebot.kernel.schema import FillRow, OrderRow
from tradebot.kernel.settings import TradebotSettings
from tradebot.pipelines.trade import run_trade_cycle
from tradebot.serving.ledger import LedgerBook

SETTINGS = TradebotSettings(symbols=SYMBOLS)
PROBS = [0.9, 0.9, 0.3, 0.9, 0.52]  # enter, hold, exit, re-enter, hold


def run(db: Database, steps: int) -> None:
    store = TapeStore(SETTINGS, day_bars())
    for ts, prob in zip(TIMES[1:steps + 1], PROBS, strict=False):
        run_trade_cycle(db, store, ts, constant(prob), "1",  # type: ignore[arg-type]
                        SimulatedClock(ts + timedelta(seconds=5)))


def ledger(db: Database) -> tuple[list[tuple], list[tuple]]:
    with db.session() as session:
        orders = [(o.client_order_id, o.side, o.qty, o.status)
                  for o in session.scalars(select(OrderRow).order_by(OrderRow.client_order_id))]
        fills = [(f.fill_id, f.qty, f.price)
                 for f in session.scalars(select(FillRow).order_by(FillRow.fill_id))]
    return orders, fills


@pytest.mark.parametrize("method", ["record_order", "record_fill", "record_snapshot",
                                    "record_cycle", "save_positions"])
def test_a_crash_at_any_write_is_rolled_back_and_the_rerun_matches(
        database_url, tmp_path, monkeypatch, method: str) -> None:
    clean = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    run(clean, len(PROBS))
    expected = ledger(clean)
    assert expected[0] and expected[1]

    db = Database(database_url)
    original = getattr(LedgerBook, method)
    calls = {"n": 0}

    def crash_once(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError(f"process killed in {method}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LedgerBook, method, crash_once)
    with pytest.raises(RuntimeError):
        run(db, len(PROBS))
    monkeypatch.undo()
    run(db, len(PROBS))  # the scheduler runs the cycles again; finished ones are skipped
    assert ledger(db) == expected
    orders = [o[0] for o in ledger(db)[0]]
    assert len(orders) == len(set(orders))
