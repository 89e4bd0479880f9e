"""Backtest/live parity: the champion backtested on the demo's held-out sessions places exactly
the orders the live trade flow placed there, and gets exactly the same fills and equity."""

from __future__ import annotations

import json
from datetime import UTC

import pandas as pd
import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from tradebot.cli.main import app

pytestmark = pytest.mark.prefect


def _utc(values: pd.Series) -> list[str]:
    return [pd.Timestamp(v).tz_convert(UTC).isoformat() if pd.Timestamp(v).tzinfo
            else pd.Timestamp(v).tz_localize(UTC).isoformat() for v in values]


def _ledger(home) -> dict[str, pd.DataFrame]:
    engine = create_engine(f"sqlite:///{home / 'tradebot.db'}")
    with engine.connect() as con:
        frames = {
            "orders": pd.read_sql("SELECT client_order_id, symbol, side, qty, status, "
                                  "ts_decision FROM orders", con),
            "fills": pd.read_sql("SELECT client_order_id, symbol, side, qty, price, commission,"
                                 " ts_fill FROM fills", con),
            "snapshots": pd.read_sql("SELECT ts, cash, equity FROM account_snapshots", con),
            "predictions": pd.read_sql("SELECT symbol, ts_decision, prob_up, target_weight "
                                       "FROM predictions", con),
        }
    engine.dispose()
    return frames


@pytest.fixture(scope="module")
def both(demo_home):
    """(ledger tables after the demo's live replay, backtest of the champion on the same
    sessions)."""
    from tradebot.flows.runtime import reset_runtimes, runtime
    from tradebot.pipelines.model_backtest import backtest_registered
    from tradebot.pipelines.universe import data_window

    config, _ = demo_home
    reset_runtimes()
    rt = runtime(str(config))
    window = data_window(rt.settings, rt.clock)
    done, info = backtest_registered(rt.db, rt.home, rt.feature_store(), None,
                                     window.replay[0], window.replay[-1])
    ledger = _ledger(config.parent / "home")
    return config, ledger, done, info


def test_backtest_places_the_live_orders(both) -> None:
    _, ledger, done, info = both
    live = ledger["orders"].sort_values("client_order_id").reset_index(drop=True)
    assert len(live) > 10
    book = pd.DataFrame([{
        "client_order_id": cid, "symbol": o.request.symbol, "side": str(o.request.side),
        "qty": float(o.request.qty), "status": str(o.status), "ts_decision": o.request.ts_decision,
    } for cid, o in done.book.orders.items()]).sort_values("client_order_id").reset_index(
        drop=True)
    assert list(book["client_order_id"]) == list(live["client_order_id"])
    for column in ("symbol", "side", "status"):
        assert list(book[column]) == list(live[column]), column
    assert list(book["qty"]) == [float(q) for q in live["qty"]]
    assert _utc(book["ts_decision"]) == _utc(live["ts_decision"])
    assert info.version == "1"


def test_backtest_gets_the_live_fills_and_equity(both) -> None:
    _, ledger, done, _ = both
    live = ledger["fills"].sort_values(["ts_fill", "client_order_id"]).reset_index(drop=True)
    book = pd.DataFrame([{
        "client_order_id": f.client_order_id, "qty": str(f.qty), "price": str(f.price),
        "commission": str(f.commission), "ts_fill": f.ts_fill} for f in done.book.fills])
    book = book.sort_values(["ts_fill", "client_order_id"]).reset_index(drop=True)
    assert len(book) == len(live) > 10
    assert list(book["client_order_id"]) == list(live["client_order_id"])
    for column in ("price", "commission", "qty"):  # exact decimals, compared as numbers
        assert [float(v) for v in book[column]] == [float(v) for v in live[column]], column
    assert _utc(book["ts_fill"]) == _utc(live["ts_fill"])
    snaps = ledger["snapshots"].sort_values("ts")
    assert _utc(snaps["ts"]) == [s.ts.astimezone(UTC).isoformat() for s in done.book.snapshots]
    assert [float(e) for e in snaps["equity"]] == [float(s.equity) for s in done.book.snapshots]
    assert done.run.metrics["final_equity"] == float(snaps["equity"].iloc[-1])


def test_backtest_predictions_equal_the_live_ones(both) -> None:
    _, ledger, done, _ = both
    live = ledger["predictions"].sort_values(["ts_decision", "symbol"]).reset_index(drop=True)
    book = pd.DataFrame(done.book.predictions).sort_values(["ts_decision", "symbol"])
    assert len(book) == len(live)
    assert list(book["prob_up"]) == list(live["prob_up"])
    assert list(book["target_weight"]) == list(live["target_weight"])


def test_backtest_cli_defaults_to_the_sessions_after_the_training_data(both, tmp_path) -> None:
    config, ledger, done, info = both
    report = tmp_path / "model.html"
    result = CliRunner().invoke(app, ["--config", str(config), "backtest", "--json",
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    payload = json.loads(result.stdout)
    assert payload["model_version"] == info.version
    assert not any("in-sample" in note for note in payload["notes"])
    assert payload["orders"] == len(ledger["orders"])
    assert payload["final_equity"] == pytest.approx(float(ledger["snapshots"]["equity"].iloc[-1]))
    assert payload["n_trades"] == done.run.metrics["n_trades"]
    html = report.read_text()
    assert "Backtest: tradebot-direction v1" in html and "data:image/png;base64," in html


def test_an_in_sample_period_is_flagged(demo_home) -> None:
    config, _ = demo_home
    result = CliRunner().invoke(app, ["--config", str(config), "backtest", "--start",
                                      "2026-06-12", "--json"])
    assert result.exit_code == 0, result.output
    notes = " ".join(json.loads(result.stdout)["notes"])
    assert "in-sample" in notes


def test_model_backtest_refuses_signal_flags(demo_home) -> None:
    config, _ = demo_home
    result = CliRunner().invoke(app, ["--config", str(config), "backtest", "--fill", "close"])
    assert result.exit_code != 0
    assert "apply to --signals backtests" in result.output
