"""A deterministic in-memory broker for backtests and replays: market, limit, stop, trailing
stop and bracket orders filled against minute bars with slippage, spread and commission (the
trigger and price rules are in :mod:`tradebot.serving.brokers.sim_orders`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from itertools import count

import pandas as pd

from tradebot.kernel.domain import (
    AccountSnapshot,
    Fill,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    Side,
    money,
)
from tradebot.kernel.settings import BrokerSettings
from tradebot.serving.brokers.base import fill_cash_delta
from tradebot.serving.brokers.sim_orders import (
    SymbolBars,
    Trigger,
    bracket_legs,
    find_trigger,
    order_rejection,
    stop_loss_wins,
)

BAR_COLUMNS = ("symbol", "ts_event", "open", "high", "low", "close", "volume")
_BPS = Decimal(10_000)


@dataclass(slots=True)
class _Pending:
    """Matching state of a pending order: submission rank, the last bar examined and a
    trailing stop's water mark."""

    seq: int
    cursor: pd.Timestamp | None = None
    mark: float | None = None


def sim_broker_order_id(client_order_id: str) -> str:
    """Deterministic broker order id: ``sim-`` + first 16 hex of sha256(client_order_id)."""
    return "sim-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:16]


class SimulatedBroker:
    """In-memory broker implementing :class:`~tradebot.serving.brokers.base.Broker`.

    Orders are accepted by :meth:`submit` and filled by :meth:`match`, which the backtest or
    replay calls with the bars that arrived after the decision. Market orders fill at the open
    of the first bar with ``ts_event >= ts_decision``; limit, stop and trailing stop orders on
    the first bar that triggers them (rules in :mod:`~tradebot.serving.brokers.sim_orders`).
    Orders that nothing triggers stay pending: time in force is GTC until :meth:`cancel`.

    A filled bracket entry creates a take-profit limit sell and a stop-loss stop sell (one
    OCO group, see :meth:`created_orders`): the first to fill cancels the other, and when both
    trigger on one bar the stop-loss wins. Long-only: sells beyond the held quantity (net of
    pending sells, a bracket's legs counted once) are rejected.

    A broker rebuilt from ``open_orders()`` (legs included) continues as the first one would
    when :meth:`match` is given the bars from the orders' decision times again, as the trade
    cycle does: a trailing stop's high-water mark is recomputed from them.
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
        self._pending: dict[str, _Pending] = {}  # in submission order
        self._created: list[str] = []
        self._seq = count()
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
            self._pending[request.client_order_id] = _Pending(next(self._seq))
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

    def cancel(self, client_order_id: str) -> OrderResult | None:
        """Cancel a pending order (only that order: a bracket leg's sibling stays). A final
        order is returned unchanged; None if the id is unknown."""
        return self._cancel(client_order_id, "canceled")

    def cancel_all(self) -> list[OrderResult]:
        """Cancel every pending order; their results, in submission order."""
        return [self._cancel(cid, "canceled") for cid in list(self._pending)]

    def created_orders(self) -> list[OrderResult]:
        """The bracket legs this broker created since construction, each once, in creation
        order, with their current status (the caller records them in its book)."""
        return [self._orders[cid] for cid in self._created]

    # -- simulation --------------------------------------------------------------------------

    def match(self, bars: pd.DataFrame) -> list[Fill]:
        """Fill pending orders on the first bar of their symbol that triggers them (bars with
        ``ts_event >= ts_decision``, ``>`` for bracket legs, each examined once per order).
        Orders with no such bar stay pending.

        Bar times are processed in order; at one time sells fill before buys, then in
        submission order. A buy whose cost exceeds cash is rejected at fill time. Legs created
        by a bracket entry's fill may fill on later bars of the same call.
        """
        if not self._pending:
            return []
        missing = [c for c in BAR_COLUMNS if c not in bars.columns]
        if missing:
            raise ValueError(f"bars are missing columns {missing}; expected {list(BAR_COLUMNS)}")
        symbols = {self._orders[cid].request.symbol for cid in self._pending}
        frame = bars.loc[bars["symbol"].isin(symbols), ["symbol", "ts_event", "open", "high",
                                                        "low"]]
        frame = frame.dropna(subset=["open"])
        ts = pd.to_datetime(frame["ts_event"])
        if len(ts) and ts.dt.tz is None:
            raise ValueError("bars.ts_event must be timezone-aware (UTC)")
        frame = frame.assign(ts_event=ts.dt.tz_convert("UTC") if len(ts) else ts)
        by_symbol = {
            str(sym): SymbolBars.from_frame(group)
            for sym, group in frame.groupby("symbol", sort=False)
        }
        events: dict[str, tuple[pd.Timestamp, Trigger]] = {}
        for cid in list(self._pending):
            self._scan(cid, by_symbol, events)
        fills: list[Fill] = []
        while events:
            now = min(when for when, _ in events.values())
            batch = [cid for cid, (when, _) in events.items() if when == now]
            batch.sort(key=lambda c: (self._orders[c].request.side is Side.BUY,
                                      self._pending[c].seq))
            triggers = {cid: events.pop(cid)[1] for cid in batch}
            held_back = stop_loss_wins([self._orders[cid].request for cid in batch])
            for cid in batch:
                if cid not in self._pending:
                    continue  # its bracket sibling filled earlier at this time
                if cid in held_back:
                    self._pending[cid].cursor = now
                    continue
                fill = self._execute(cid, now.to_pydatetime(), triggers[cid])
                if fill is not None:
                    fills.append(fill)
                    self._after_fill(cid, fill, by_symbol, events)
            for cid in held_back:
                if cid in self._pending:  # its stop-loss did not fill: keep watching
                    self._scan(cid, by_symbol, events)
        return fills

    def settle(self, bars: pd.DataFrame) -> list[Fill]:
        """The trade cycle's name for :meth:`match` (a live broker settles without bars)."""
        return self.match(bars)

    def fill_price(self, side: Side, open_price: float | Decimal) -> Decimal:
        """Open (or triggered stop) price moved against the trader by ``slippage_bps`` plus
        half the ``spread_bps``, rounded with money()."""
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
        reason = order_rejection(request)
        if reason or request.side is not Side.SELL:
            return reason
        group = request.parent_client_order_id
        others, group_qty = Decimal(0), Decimal(0)
        legs: dict[str, Decimal] = {}  # an OCO group's legs sell the same shares: count once
        for cid in self._pending:
            pending = self._orders[cid].request
            if pending.symbol != request.symbol or pending.side is not Side.SELL:
                continue
            parent = pending.parent_client_order_id
            if parent is None:
                others += pending.qty
            elif parent == group:
                group_qty = max(group_qty, pending.qty)
            else:
                legs[parent] = max(legs.get(parent, Decimal(0)), pending.qty)
        available = self._held(request.symbol) - others - sum(legs.values(), Decimal(0))
        if max(request.qty, group_qty) > available:
            return (
                f"sell of {request.qty} {request.symbol} exceeds the {available} held "
                f"and not already being sold (no shorting)"
            )
        return ""

    def _cancel(self, cid: str, reason: str) -> OrderResult | None:
        result = self._orders.get(cid)
        if result is None or cid not in self._pending:
            return result
        del self._pending[cid]
        result = replace(result, status=OrderStatus.CANCELED, reason=reason)
        self._orders[cid] = result
        return result

    def _scan(self, cid: str, by_symbol: Mapping[str, SymbolBars],
              events: dict[str, tuple[pd.Timestamp, Trigger]]) -> None:
        """Find the order's triggering bar among the bars not yet examined for it: an event,
        or (none) the examined bars recorded in its state."""
        state = self._pending[cid]
        request = self._orders[cid].request
        bars = by_symbol.get(request.symbol)
        if bars is None:
            return
        start = bars.start(request, state.cursor)
        trigger = find_trigger(request, bars, start, state.mark)
        if trigger.index is not None:
            events[cid] = (bars.times[trigger.index], trigger)
        elif trigger.last >= start:
            state.cursor, state.mark = bars.times[trigger.last], trigger.mark

    def _after_fill(self, cid: str, fill: Fill, by_symbol: Mapping[str, SymbolBars],
                    events: dict[str, tuple[pd.Timestamp, Trigger]]) -> None:
        """A filled bracket entry creates its legs; a filled leg cancels its siblings."""
        request = self._orders[cid].request
        if request.is_bracket:
            for leg in bracket_legs(request, fill):
                if leg.client_order_id in self._orders:
                    continue
                broker_id = sim_broker_order_id(leg.client_order_id)
                self._orders[leg.client_order_id] = OrderResult(leg, broker_id, OrderStatus.NEW)
                self._pending[leg.client_order_id] = _Pending(next(self._seq))
                self._created.append(leg.client_order_id)
                self._scan(leg.client_order_id, by_symbol, events)
        parent = request.parent_client_order_id
        if parent is not None:
            for other in list(self._pending):
                if self._orders[other].request.parent_client_order_id == parent:
                    self._cancel(other, f"one-cancels-other: {cid} filled")
                    events.pop(other, None)

    def _execute(self, cid: str, ts_fill: datetime, trigger: Trigger) -> Fill | None:
        result = self._orders[cid]
        request = result.request
        del self._pending[cid]
        if trigger.slipped:
            price = self.fill_price(request.side, trigger.price)
        else:
            price = money(trigger.price)
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
