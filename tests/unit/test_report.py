"""Daily P&L report: exact figures from a hand-made two-day ledger, day boundaries, rendering."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tradebot.kernel.errors import DataError
from tradebot.kernel.schema import (
    AccountSnapshotRow,
    BarRow,
    Base,
    FillRow,
    ModelPromotionRow,
    OrderRow,
    PositionRow,
    RiskEventRow,
    TradeCycleRow,
)
from tradebot.pipelines.report import TradeLine, build_daily_report, latest_trading_day
from tradebot.pipelines.report_render import (
    render_html,
    render_markdown,
    summary_rows,
    write_html,
)

D = Decimal
CASH = D("10000")
DAY1, DAY2, DAY3 = date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)
EVIL_SYMBOL = "<b>X</b>"
EVIL_REASON = "<script>alert('x')</script> | cap & more"


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def fill(n: int, ts: datetime, symbol: str, side: str, qty: str, price: str, fee: str) -> FillRow:
    return FillRow(
        fill_id=f"f{n}",
        client_order_id=f"tb-{symbol}-{n}",
        broker_order_id=f"b{n}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        commission=D(fee),
        ts_fill=ts,
    )


def snap(
    ts: datetime, cash: str, equity: str, unrealized: str, realized: str = "0"
) -> AccountSnapshotRow:
    return AccountSnapshotRow(
        ts=ts,
        cash=D(cash),
        equity=D(equity),
        positions_value=D(equity) - D(cash),
        realized_pnl=D(realized),
        unrealized_pnl=D(unrealized),
    )


def bar(symbol: str, known: datetime, close: float) -> BarRow:
    return BarRow(
        symbol=symbol,
        timeframe="15Min",
        ts_event=known,
        ts_known=known,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
        source="test",
        ingested_at=known,
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """Day 1 (June 1, EDT): buy AAPL 10@100 and 5@103 (avg 101), buy MSFT 4@250.25 at
    03:00 UTC June 2 (= 23:00 June 1 in New York). Day 2: sell AAPL 6@105 (+24 realized)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(
            [
                fill(1, utc(6, 1, 14), "AAPL", "buy", "10", "100.00", "1.00"),
                fill(2, utc(6, 1, 19), "AAPL", "buy", "5", "103.00", "0.50"),
                fill(3, utc(6, 2, 3), "MSFT", "buy", "4", "250.25", "0"),
                fill(4, utc(6, 2, 15), "AAPL", "sell", "6", "105.00", "0.60"),
                snap(utc(6, 1, 14, 30), "8999", "10004", "5"),
                snap(utc(6, 1, 20), "8483.5", "10013.5", "15"),
                snap(utc(6, 2, 3, 30), "7482.5", "10013.5", "15"),  # 23:30 June 1 in New York
                snap(utc(6, 2, 20), "8111.9", "10069.9", "48", "24"),
                bar("AAPL", utc(6, 1, 20), 102.0),
                bar("AAPL", utc(6, 2, 20), 106.0),
                bar("MSFT", utc(6, 2, 20), 251.0),
                bar("AAPL", utc(6, 3, 20), 999.0),  # June 3: must not leak into June 2
                PositionRow(
                    symbol="MSFT",
                    qty=D(4),
                    avg_price=D("250.25"),
                    realized_pnl=D(0),
                    last_price=251.0,
                    updated_at=utc(6, 2, 20),
                ),
                PositionRow(
                    symbol="AAPL",
                    qty=D(9),
                    avg_price=D(101),
                    realized_pnl=D(24),
                    last_price=999.0,
                    updated_at=utc(6, 3, 20),
                ),
                OrderRow(
                    client_order_id="tb-AAPL-4",
                    strategy="s",
                    symbol="AAPL",
                    side="sell",
                    qty=D(6),
                    order_type="market",
                    status="filled",
                    ts_decision=utc(6, 2, 14, 45),
                    submitted_at=utc(6, 2, 14, 45),
                ),
                TradeCycleRow(
                    ts_decision=utc(6, 2, 14, 45),
                    started_at=utc(6, 2, 14, 45),
                    status="ok",
                    model_version="3",
                ),
                TradeCycleRow(
                    ts_decision=utc(6, 3, 14, 45),
                    started_at=utc(6, 3, 14, 45),
                    status="ok",
                    model_version="",
                ),
                ModelPromotionRow(
                    ts=utc(6, 1, 1),
                    model_name="tradebot-direction",
                    model_version="3",
                    run_id="r",
                    decision="promoted",
                    reason="",
                    metrics={},
                ),
                RiskEventRow(
                    ts=utc(6, 2, 16),
                    rule="max_notional",
                    action="deny",
                    symbol=EVIL_SYMBOL,
                    client_order_id="tb-x",
                    reason=EVIL_REASON,
                ),
            ]
        )
        s.commit()
        yield s
    engine.dispose()


def test_day2_realized_uses_day1_average_cost(session: Session) -> None:
    r = build_daily_report(session, DAY2, CASH)
    assert r.equity_start == D("10013.5")  # snapshot at 03:30 UTC June 2 is June 1's last
    assert r.equity_end == D("10069.9")
    assert r.pnl_day == D("56.4") and r.pnl_total == D("69.9")
    assert r.realized_day == D("24")  # 6 x (105 - 101): cost basis from day 1
    assert r.unrealized_end == D("48")
    assert r.commissions_day == D("0.60")
    aapl, msft = r.per_symbol
    assert (aapl.symbol, aapl.qty_end, aapl.avg_price, aapl.last_price) == ("AAPL", 9, 101, 106)
    assert (aapl.realized_day, aapl.unrealized, aapl.trades) == (D(24), D(45), 1)
    assert (msft.symbol, msft.qty_end, msft.last_price, msft.unrealized) == ("MSFT", 4, 251, 3)
    assert msft.trades == 0 and msft.realized_day == 0
    assert [(t.symbol, t.side, t.qty, t.realized) for t in r.trades] == [("AAPL", "sell", 6, 24)]
    assert [(p.symbol, p.market_value) for p in r.positions] == [("AAPL", 954), ("MSFT", 1004)]
    assert [e.reason for e in r.risk_events] == [EVIL_REASON]
    assert [eq for _, eq in r.equity_curve] == [D("10069.9")]
    assert (r.n_cycles, r.n_orders, r.generated_for) == (1, 1, "tradebot-direction v3")
    money = [r.pnl_day, r.realized_day, r.unrealized_end, aapl.unrealized, r.trades[0].price]
    assert all(isinstance(v, Decimal) for v in money)


def test_day1_boundary_is_new_york_date(session: Session) -> None:
    r = build_daily_report(session, DAY1, CASH, model_label="given v9")
    assert r.generated_for == "given v9"
    assert r.equity_start == CASH  # no earlier snapshot
    assert r.equity_end == D("10013.5") and r.pnl_day == D("13.5")
    assert r.realized_day == 0 and r.unrealized_end == D("15")
    # The 03:00 UTC June 2 MSFT fill is 23:00 on June 1 in New York.
    assert [t.symbol for t in r.trades] == ["AAPL", "AAPL", "MSFT"]
    assert [ts for ts, _ in r.equity_curve] == [utc(6, 1, 14, 30), utc(6, 1, 20), utc(6, 2, 3, 30)]
    aapl, msft = r.per_symbol
    assert (aapl.qty_end, aapl.avg_price, aapl.last_price, aapl.unrealized) == (15, 101, 102, 15)
    # No MSFT bar by then and the positions row is newer than the day: mark at the last fill.
    assert (msft.last_price, msft.unrealized, msft.trades) == (D("250.25"), 0, 1)
    assert (r.n_cycles, r.n_orders) == (0, 0)
    assert build_daily_report(session, DAY1, CASH, tz="UTC").trades[-1].symbol == "AAPL"


def test_day_without_snapshots_marks_replayed_book(session: Session) -> None:
    r = build_daily_report(session, DAY3, CASH)  # only a trade cycle on June 3
    assert r.equity_start == r.equity_end == D("10069.9") and r.pnl_day == 0
    assert r.trades == [] and r.equity_curve == [] and r.n_cycles == 1
    # AAPL marked at June 3's bar, MSFT at the positions table (updated before June 3 ended).
    assert [(s.symbol, s.last_price, s.unrealized) for s in r.per_symbol] == [
        ("AAPL", 999, 9 * (999 - 101)),
        ("MSFT", 251, 3),
    ]
    assert r.unrealized_end == D(8085)
    assert "No account snapshots" in render_html(r)


def test_no_data_raises(session: Session, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"2026-06-04.*latest day with data is 2026-06-02"):
        build_daily_report(session, date(2026, 6, 4), CASH)
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as empty:
        with pytest.raises(DataError, match="ledger is empty"):
            build_daily_report(empty, DAY1, CASH)
        assert latest_trading_day(empty) is None
    assert latest_trading_day(session) == DAY2
    assert latest_trading_day(session, tz="Asia/Tokyo") == DAY3


def test_markdown_tables_cap_and_escaping(session: Session) -> None:
    r = build_daily_report(session, DAY2, CASH)
    md = render_markdown(r)
    assert "+56.40 (+0.56%)" in md and "+69.90" in md
    assert "| Symbol | Qty (end) | Avg price | Last price | Realized (day) | Unrealized |" in md
    assert "| AAPL | 9 | 101.00 | 106.00 | +24.00 | +45.00 | 1 |" in md
    assert "| MSFT | 4 | 250.25 | 251.00 | +0.00 | +3.00 | 0 |" in md
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script&gt;alert('x')&lt;/script&gt; \\| cap & more" in md
    line = TradeLine(utc(6, 2, 15), "AAPL", "buy", D(1), D(1), D(0), "id")
    many = dataclasses.replace(r, trades=[line] * 61)
    md = render_markdown(many)
    assert "_... 11 more_" in md
    assert len(re.findall(r"^\| 11:00:00 \| AAPL \| buy ", md, flags=re.M)) == 50


def test_html_written_with_figures_plot_and_escaping(session: Session, tmp_path: Path) -> None:
    r = build_daily_report(session, DAY1, CASH)
    r2 = build_daily_report(session, DAY2, CASH)
    path = write_html(r2, tmp_path / "reports" / "nested")
    assert path == tmp_path / "reports" / "nested" / "daily-2026-06-02.html"
    html = path.read_text(encoding="utf-8")
    for figure in ("+56.40", "+69.90", "+24.00", "+48.00", "10,069.90", "tradebot-direction v3"):
        assert figure in html
    m = re.search(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert m is not None and base64.b64decode(m.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<script" not in html and "<b>X</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;X&lt;/b&gt;" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert write_html(r, path.parent).name == "daily-2026-06-01.html"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "daily-2026-06-01.html",
        "daily-2026-06-02.html",
    ]


def test_summary_rows_are_plain_values(session: Session) -> None:
    rows = summary_rows(build_daily_report(session, DAY2, CASH))
    assert rows[0] == {
        "symbol": "AAPL",
        "qty_end": 9.0,
        "avg_price": 101.0,
        "last_price": 106.0,
        "realized_day": 24.0,
        "unrealized": 45.0,
        "trades": 1,
    }
    assert all(type(v) in (str, float, int) for row in rows for v in row.values())
