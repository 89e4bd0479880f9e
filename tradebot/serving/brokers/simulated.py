"""A deterministic in-memory broker for backtests and replays: market orders fill at the next
bar's open with slippage and commission."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pandas as pd

from tradebot.kernel.domain import (
    AccountSnapshot,
    Fill,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    Position,
    Side,
    money,
)
from tradebot.kernel.settings import BrokerSettings
from tradebot.serving.brokers.base import fill_cash_delta

BAR_COLUMNS = ("symbol", "ts_event", "open", "high", "low", "close", "volume")
_BPS = Decimal(10_000)


def sim_broker_order_id(client_order_id: str) -> str:
    """Deterministic broker order id: ``sim-`` + first 16 hex of sha256(client_order_id)."""
    return "sim-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:16]


class SimulatedBroker:
    """In-memory broker implementing :class:`~tradebot.serving.brokers.base.Broker`.

    Orders are accepted by :meth:`submit` and filled by :meth:`match`, which the backtest or
    replay calls with the bars that arrived after the decision. Long-only: sells beyond the
    held quantity (net of pending sells) are rejected.
    """

    name = "simulated"

    def __init__(
        self,
        cash: Decimal,
        costs: BrokerSettings,
        positions: dict[str, Position] | None = None,
        open_orders: Sequence[OrderRequest] = (),
    ) -> None:
        self.costs = costs
        self._cash = Decimal(str(cash))
        self._positions = {s: replace(p) for s, p in (positions or {}).items()}
        self._orders: dict[str, OrderResult] = {}
        self._pending: list[str] = []
        for request in open_orders:
            self.submit(request)

    # -- Broker protocol -------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> OrderResult:
        """Accept (status NEW) or reject an order; idempotent by ``client_order_id``."""
        existing = self._orders.get(request.client_order_id)
        if existing is not None:
            return replace(existing, duplicate=True)
        if request.ts_decision.tzinfo is None:
            raise ValueError(f"order {request.client_order_id}: ts_decision must be tz-aware")
        broker_id = sim_broker_order_id(request.client_order_id)
        reason = self._rejection(request)
        if reason:
            result = OrderResult(request, broker_id, OrderStatus.REJECTED, reason=reason)
        else:
            result = OrderResult(request, broker_id, OrderStatus.NEW)
            self._pending.append(request.client_order_id)
        self._orders[request.client_order_id] = result
        return result

    def get_order(self, client_order_id: str) -> OrderResult | None:
        return self._orders.get(client_order_id)

    def positions(self) -> dict[str, Position]:
        return {s: replace(p) for s, p in self._positions.items()}

    def cash(self) -> Decimal:
        return self._cash

    def open_orders(self) -> list[OrderRequest]:
        return [self._orders[cid].request for cid in self._pending]

    # -- simulation --------------------------------------------------------------------------

    def match(self, bars: pd.DataFrame) -> list[Fill]:
        """Fill pending orders at the open of the first bar of their symbol with
        ``ts_event >= ts_decision``. Orders with no such bar stay pending.

        Fills are applied in bar-time order, sells before buys at the same time, then in
        submission order. A buy whose cost exceeds cash is rejected at fill time.
        """
        if not self._pending:
            return []
        missing = [c for c in BAR_COLUMNS if c not in bars.columns]
        if missing:
            raise ValueError(f"bars are missing columns {missing}; expected {list(BAR_COLUMNS)}")
        symbols = {self._orders[cid].request.symbol for cid in self._pending}
        frame = bars.loc[bars["symbol"].isin(symbols), ["symbol", "ts_event", "open"]]
        frame = frame.dropna(subset=["open"])
        ts = pd.to_datetime(frame["ts_event"])
        if len(ts) and ts.dt.tz is None:
            raise ValueError("bars.ts_event must be timezone-aware (UTC)")
        frame = frame.assign(ts_event=ts.dt.tz_convert("UTC") if len(ts) else ts)
        by_symbol = {
            str(sym): group.sort_values("ts_event", kind="stable")
            for sym, group in frame.groupby("symbol", sort=False)
        }
        plan: list[tuple[pd.Timestamp, bool, int, str, float]] = []
        for order_no, cid in enumerate(self._pending):
            request = self._orders[cid].request
            group = by_symbol.get(request.symbol)
            if group is None:
                continue
            decision = pd.Timestamp(request.ts_decision).tz_convert("UTC")
            pos = int(group["ts_event"].searchsorted(decision, side="left"))
            if pos >= len(group):
                continue
            row = group.iloc[pos]
            buy = request.side is Side.BUY
            plan.append((row["ts_event"], buy, order_no, cid, float(row["open"])))
        plan.sort(key=lambda item: item[:3])
        fills: list[Fill] = []
        for bar_ts, _, _, cid, open_price in plan:
            fill = self._execute(cid, bar_ts.to_pydatetime(), open_price)
            if fill is not None:
                fills.append(fill)
        done = {item[3] for item in plan}
        self._pending = [cid for cid in self._pending if cid not in done]
        return fills

    def fill_price(self, side: Side, open_price: float) -> Decimal:
        """Open price moved against the trader by ``slippage_bps`` plus half the
        ``spread_bps``, rounded with money()."""
        spread = Decimal(str(self.costs.spread_bps)) / 2
        slip = (Decimal(str(self.costs.slippage_bps)) + spread) / _BPS
        factor = 1 + slip if side is Side.BUY else 1 - slip
        return money(Decimal(str(open_price)) * factor)

    def commission(self, qty: Decimal, price: Decimal) -> Decimal:
        """``commission_per_share * qty + commission_bps / 1e4 * notional``, rounded."""
        per_share = Decimal(str(self.costs.commission_per_share)) * qty
        return money(per_share + Decimal(str(self.costs.commission_bps)) / _BPS * qty * price)

    def snapshot(self, ts: datetime, prices: Mapping[str, float]) -> AccountSnapshot:
        """Account state valued at ``prices`` (every held symbol needs a price)."""
        value = unrealized = realized = Decimal(0)
        for symbol, position in self._positions.items():
            realized += position.realized_pnl
            if position.qty == 0:
                continue
            if symbol not in prices:
                raise ValueError(f"no price to value the {symbol} position")
            value += position.market_value(prices[symbol])
            unrealized += position.unrealized_pnl(prices[symbol])
        return AccountSnapshot(
            ts=ts,
            cash=self._cash,
            equity=self._cash + value,
            positions_value=value,
            realized_pnl=realized,
            unrealized_pnl=unrealized,
        )

    # -- internals ---------------------------------------------------------------------------

    def _held(self, symbol: str) -> Decimal:
        position = self._positions.get(symbol)
        return position.qty if position is not None else Decimal(0)

    def _rejection(self, request: OrderRequest) -> str:
        if request.qty <= 0:
            return f"quantity must be positive, got {request.qty}"
        if request.order_type != OrderType.MARKET:
            return f"the simulated broker fills market orders only, got {request.order_type}"
        if request.side is Side.SELL:
            pending_sells = sum(
                (
                    self._orders[cid].request.qty
                    for cid in self._pending
                    if self._orders[cid].request.symbol == request.symbol
                    and self._orders[cid].request.side is Side.SELL
                ),
                Decimal(0),
            )
            available = self._held(request.symbol) - pending_sells
            if request.qty > available:
                return (
                    f"sell of {request.qty} {request.symbol} exceeds the {available} held "
                    f"and not already being sold (no shorting)"
                )
        return ""

    def _execute(self, cid: str, ts_fill: datetime, open_price: float) -> Fill | None:
        result = self._orders[cid]
        request = result.request
        price = self.fill_price(request.side, open_price)
        fill = Fill(
            client_order_id=cid,
            broker_order_id=result.broker_order_id or sim_broker_order_id(cid),
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            price=price,
            commission=self.commission(request.qty, price),
            ts_fill=ts_fill,
        )
        delta = fill_cash_delta(fill)
        reason = ""
        if request.side is Side.BUY and self._cash + delta < 0:
            reason = f"insufficient cash: buy costs {-delta}, cash is {self._cash}"
        elif request.side is Side.SELL and request.qty > self._held(request.symbol):
            reason = f"sell of {request.qty} {request.symbol} exceeds the held quantity"
        if reason:
            self._orders[cid] = replace(result, status=OrderStatus.REJECTED, reason=reason)
            return None
        self._positions.setdefault(request.symbol, Position(request.symbol)).apply(fill)
        self._cash += delta
        self._orders[cid] = replace(result, status=OrderStatus.FILLED, fills=(fill,))
        return fill
