"""Daily P&L report: gather one trading day's figures from the ledger (no Prefect, no rendering).

A UTC timestamp belongs to ``day`` when its local date in ``tz`` (New York by default) is ``day``.
Realized P&L replays every fill up to the end of the day with the ledger's own average-cost rule
(:meth:`tradebot.kernel.domain.Position.apply`), so a sell against an earlier day's buy is right.
Money stays :class:`~decimal.Decimal` throughout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tradebot.kernel.db import Database
from tradebot.kernel.domain import Fill, Position, Side, money
from tradebot.kernel.errors import DataError
from tradebot.kernel.schema import (
    AccountSnapshotRow,
    BarRow,
    FillRow,
    ModelPromotionRow,
    OrderRow,
    PositionRow,
    RiskEventRow,
    TradeCycleRow,
)

DEFAULT_TZ = "America/New_York"
ZERO = Decimal(0)


@dataclass(frozen=True)
class SymbolPnl:
    symbol: str
    qty_end: Decimal
    avg_price: Decimal
    last_price: Decimal
    realized_day: Decimal
    unrealized: Decimal
    trades: int


@dataclass(frozen=True)
class TradeLine:
    ts_fill: datetime
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    commission: Decimal
    client_order_id: str
    realized: Decimal = ZERO


@dataclass(frozen=True)
class PositionLine:
    """A holding at the end of the day (replayed from fills, marked at ``last_price``)."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal
    market_value: Decimal
    unrealized: Decimal


@dataclass(frozen=True)
class RiskEventLine:
    ts: datetime
    rule: str
    action: str
    symbol: str
    client_order_id: str
    reason: str


@dataclass(frozen=True)
class DailyReport:
    day: date
    generated_for: str
    equity_start: Decimal
    equity_end: Decimal
    pnl_day: Decimal
    pnl_total: Decimal
    realized_day: Decimal
    unrealized_end: Decimal
    per_symbol: list[SymbolPnl]
    trades: list[TradeLine]
    positions: list[PositionLine]
    risk_events: list[RiskEventLine]
    equity_curve: list[tuple[datetime, Decimal]]
    n_cycles: int
    n_orders: int
    commissions_day: Decimal = ZERO
    tz: str = DEFAULT_TZ


def day_bounds(day: date, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the local calendar day ``day`` in ``tz`` (DST-aware)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def latest_trading_day(session: Session, tz: str = DEFAULT_TZ) -> date | None:
    """Local date of the newest account snapshot or fill, or ``None`` on an empty ledger."""
    stamps = [
        session.scalar(select(func.max(AccountSnapshotRow.ts))),
        session.scalar(select(func.max(FillRow.ts_fill))),
    ]
    known = [ts for ts in stamps if ts is not None]
    return max(known).astimezone(ZoneInfo(tz)).date() if known else None


def _to_fill(row: FillRow) -> Fill:
    return Fill(
        client_order_id=row.client_order_id,
        broker_order_id=row.broker_order_id,
        symbol=row.symbol,
        side=Side(row.side.lower()),
        qty=row.qty,
        price=row.price,
        commission=row.commission,
        ts_fill=row.ts_fill,
    )


def _last_price(session: Session, symbol: str, end: datetime, fallback: Decimal) -> Decimal:
    """Price known by ``end``: the newest bar's close, else the positions table's mark if it was
    updated before ``end`` (it holds only the latest state), else ``fallback`` (the last fill)."""
    close = session.scalar(
        select(BarRow.close)
        .where(BarRow.symbol == symbol, BarRow.ts_known < end)
        .order_by(BarRow.ts_known.desc())
        .limit(1)
    )
    if close is None:
        pos = session.get(PositionRow, symbol)
        if pos is not None and pos.last_price and pos.updated_at < end:
            close = pos.last_price
    return fallback if close is None else Decimal(str(close))


def _model_label(session: Session, start: datetime, end: datetime) -> str:
    """``"<model name> v<version>"`` of the day's latest cycle that names a model, else ``""``."""
    version = session.scalar(
        select(TradeCycleRow.model_version)
        .where(TradeCycleRow.ts_decision >= start, TradeCycleRow.ts_decision < end)
        .where(TradeCycleRow.model_version != "")
        .order_by(TradeCycleRow.ts_decision.desc())
        .limit(1)
    )
    if not version:
        return ""
    name = session.scalar(
        select(ModelPromotionRow.model_name)
        .where(ModelPromotionRow.model_version == version, ModelPromotionRow.ts < end)
        .order_by(ModelPromotionRow.ts.desc())
        .limit(1)
    )
    return f"{name} v{version}" if name else f"v{version}"


def _count(
    session: Session, column: InstrumentedAttribute[datetime], start: datetime, end: datetime
) -> int:
    return int(session.scalar(select(func.count()).where(column >= start, column < end)) or 0)


def build_daily_report(
    session: Session,
    day: date,
    initial_cash: Decimal,
    tz: str = DEFAULT_TZ,
    model_label: str = "",
) -> DailyReport:
    """Gather the P&L figures of the local trading day ``day``.

    Raises :class:`DataError` when the day has no snapshot, no fill and no trade cycle.
    """
    initial_cash = Decimal(str(initial_cash))
    start, end = day_bounds(day, tz)
    snaps = session.scalars(
        select(AccountSnapshotRow)
        .where(AccountSnapshotRow.ts >= start, AccountSnapshotRow.ts < end)
        .order_by(AccountSnapshotRow.ts)
    ).all()
    fill_rows = session.scalars(
        select(FillRow).where(FillRow.ts_fill < end).order_by(FillRow.ts_fill, FillRow.id)
    ).all()
    day_fills = [row for row in fill_rows if row.ts_fill >= start]
    n_cycles = _count(session, TradeCycleRow.ts_decision, start, end)
    if not snaps and not day_fills and n_cycles == 0:
        latest = latest_trading_day(session, tz)
        hint = f"the latest day with data is {latest}" if latest else "the ledger is empty"
        raise DataError(
            f"No trading data for {day} ({tz}): no account snapshot, fill or trade cycle "
            f"between {start.isoformat()} and {end.isoformat()}; {hint}."
        )

    before = session.scalar(
        select(AccountSnapshotRow)
        .where(AccountSnapshotRow.ts < start)
        .order_by(AccountSnapshotRow.ts.desc())
        .limit(1)
    )
    equity_start = before.equity if before is not None else initial_cash
    equity_end = snaps[-1].equity if snaps else equity_start

    # Replay all fills up to the end of the day with the ledger's average-cost rule.
    book: dict[str, Position] = {}
    realized: dict[str, Decimal] = defaultdict(lambda: ZERO)
    n_trades: dict[str, int] = defaultdict(int)
    last_fill: dict[str, Decimal] = {}
    trades: list[TradeLine] = []
    for row in fill_rows:
        f = _to_fill(row)
        pnl = book.setdefault(f.symbol, Position(f.symbol)).apply(f)
        last_fill[f.symbol] = f.price
        if f.ts_fill >= start:
            realized[f.symbol] += pnl
            n_trades[f.symbol] += 1
            line = (f.ts_fill, f.symbol, f.side.value, f.qty, f.price, f.commission)
            trades.append(TradeLine(*line, client_order_id=f.client_order_id, realized=pnl))

    per_symbol: list[SymbolPnl] = []
    positions: list[PositionLine] = []
    for symbol in sorted(set(n_trades) | {s for s, p in book.items() if p.qty != 0}):
        pos = book[symbol]
        last = _last_price(session, symbol, end, last_fill[symbol]) if pos.qty else ZERO
        unrealized = money(pos.qty * (last - pos.avg_price)) if pos.qty else money(0)
        realized_sym = money(realized[symbol])
        row_pnl = (symbol, pos.qty, pos.avg_price, last, realized_sym, unrealized, n_trades[symbol])
        per_symbol.append(SymbolPnl(*row_pnl))
        if pos.qty:
            positions.append(
                PositionLine(
                    symbol, pos.qty, pos.avg_price, last, money(pos.qty * last), unrealized
                )
            )

    # The day's last account snapshot is authoritative; without one, mark the replayed book.
    marked = money(sum((p.unrealized for p in positions), ZERO))
    risk_rows = session.scalars(
        select(RiskEventRow)
        .where(RiskEventRow.ts >= start, RiskEventRow.ts < end)
        .order_by(RiskEventRow.ts, RiskEventRow.id)
    ).all()
    return DailyReport(
        day=day,
        generated_for=model_label or _model_label(session, start, end),
        equity_start=equity_start,
        equity_end=equity_end,
        pnl_day=equity_end - equity_start,
        pnl_total=equity_end - initial_cash,
        realized_day=money(sum((s.realized_day for s in per_symbol), ZERO)),
        unrealized_end=snaps[-1].unrealized_pnl if snaps else marked,
        per_symbol=per_symbol,
        trades=trades,
        positions=positions,
        risk_events=[
            RiskEventLine(
                r.ts, r.rule, r.action, r.symbol or "", r.client_order_id or "", r.reason
            )
            for r in risk_rows
        ],
        equity_curve=[(s.ts, s.equity) for s in snaps],
        n_cycles=n_cycles,
        n_orders=_count(session, OrderRow.ts_decision, start, end),
        commissions_day=sum((t.commission for t in trades), ZERO),
        tz=tz,
    )


def report_for_day(
    db: Database, day: date | None, initial_cash: Decimal, tz: str, model_label: str = ""
) -> DailyReport:
    """The report for ``day``, or for the latest day with trading activity when None."""
    with db.session() as session:
        chosen = day or latest_trading_day(session, tz)
        if chosen is None:
            raise DataError("no trading activity recorded yet: run 'tradebot demo' or trade first")
        return build_daily_report(session, chosen, initial_cash, tz, model_label)
