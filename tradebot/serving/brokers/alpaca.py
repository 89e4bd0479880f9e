"""Alpaca trading through alpaca-py's ``TradingClient``: idempotent orders, order lookups,
positions, the account and the market clock.

Every request goes through the same :class:`~tradebot.sources.http.ResilientAdapter` as the
data clients (pacing, Retry-After, jittered back-off, timeouts), POSTs included. A retried
order POST whose first attempt did reach Alpaca comes back as HTTP 422 "client_order_id must
be unique"; then, and after any reply that leaves the outcome unknown (5xx, timeout), the
order is looked up by its client_order_id, so one decision is never two orders.
Errors name the endpoint and the HTTP status, never the keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

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
from tradebot.kernel.errors import BrokerError, SourceError
from tradebot.kernel.settings import AlpacaSource, HttpSettings
from tradebot.sources.alpaca import _adapter, credentials, default_budget, harden
from tradebot.sources.http import RetryPolicy

log = logging.getLogger(__name__)
NAME = "alpaca"
DUPLICATE_ID = "client_order_id must be unique"
_OPEN = {"new", "accepted", "pending_new", "accepted_for_bidding", "held", "calculated",
         "pending_cancel", "pending_replace", "pending_review", "stopped", "suspended",
         "done_for_day"}
_FINAL = {"filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
          "expired": OrderStatus.CANCELED, "replaced": OrderStatus.CANCELED,
          "rejected": OrderStatus.REJECTED, "partially_filled": OrderStatus.PARTIALLY_FILLED}
_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
          "trailing_stop": OrderType.TRAILING_STOP}


def order_status(alpaca_status: str) -> OrderStatus:
    """Our status for one of Alpaca's (every not-yet-final state is NEW: still open)."""
    value = str(getattr(alpaca_status, "value", alpaca_status))
    if value in _FINAL:
        return _FINAL[value]
    if value in _OPEN:
        return OrderStatus.NEW
    raise BrokerError(f"{NAME}: unknown order status {value!r}")


def broker_price(price: Decimal) -> float:
    """A price on Alpaca's increments: whole cents from $1, 1/100 cent below."""
    step = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return float(price.quantize(step, rounding=ROUND_HALF_UP))


def broker_qty(request: OrderRequest) -> Decimal:
    """Quantity as Alpaca accepts it: fractional only for simple market orders (day);
    other orders are cut to whole shares."""
    if request.order_type is OrderType.MARKET and not request.is_bracket:
        return request.qty
    return request.qty.to_integral_value(rounding=ROUND_DOWN)


def alpaca_order(request: OrderRequest) -> Any:
    """The alpaca-py request object for ``request`` (time in force: day)."""
    qty = broker_qty(request)
    if qty <= 0:
        raise ValueError(
            f"{request.order_type} orders need whole shares; {request.qty} rounds to 0")
    common: dict[str, Any] = {
        "symbol": request.symbol, "qty": float(qty),
        "side": OrderSide.BUY if request.side is Side.BUY else OrderSide.SELL,
        "time_in_force": TimeInForce.DAY, "client_order_id": request.client_order_id,
    }
    if request.is_bracket:
        assert request.take_profit_price is not None and request.stop_loss_price is not None
        common["order_class"] = OrderClass.BRACKET
        common["take_profit"] = TakeProfitRequest(
            limit_price=broker_price(request.take_profit_price))
        common["stop_loss"] = StopLossRequest(stop_price=broker_price(request.stop_loss_price))
    kind = request.order_type
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if kind is OrderType.LIMIT:
        if request.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        return LimitOrderRequest(**common, limit_price=broker_price(request.limit_price))
    if kind is OrderType.STOP:
        if request.stop_price is None:
            raise ValueError("a stop order needs stop_price")
        return StopOrderRequest(**common, stop_price=broker_price(request.stop_price))
    if request.trail_percent is None:
        raise ValueError("a trailing stop needs trail_percent")
    return TrailingStopOrderRequest(**common, trail_percent=float(request.trail_percent))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def request_of(order: Order, parent: str | None = None) -> OrderRequest:
    """The request an Alpaca order stands for (used when reconciliation adopts an order)."""
    kind = _TYPES.get(str(getattr(order.type, "value", order.type)), OrderType.MARKET)
    submitted = _utc(order.submitted_at) or _utc(order.created_at) or datetime.now(UTC)
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol or "",
        side=Side.BUY if str(getattr(order.side, "value", order.side)) == "buy" else Side.SELL,
        qty=_decimal(order.qty) or Decimal(0),
        ts_decision=submitted,
        order_type=kind,
        limit_price=_decimal(order.limit_price),
        stop_price=_decimal(order.stop_price),
        trail_percent=_decimal(order.trail_percent),
        intent="adopted",
        parent_client_order_id=parent,
    )


def result_of(order: Order, request: OrderRequest, duplicate: bool = False) -> OrderResult:
    return OrderResult(request, str(order.id), order_status(order.status), duplicate=duplicate)


def new_fill(order: Order, known: Sequence[Fill]) -> Fill | None:
    """The part of ``order``'s cumulative fill not yet in ``known`` (its recorded fills), as
    one fill at the price that makes the recorded notional match Alpaca's average price."""
    filled = _decimal(order.filled_qty) or Decimal(0)
    done = sum((f.qty for f in known), Decimal(0))
    if filled <= done or order.filled_avg_price is None:
        return None
    notional = Decimal(str(order.filled_avg_price)) * filled
    known_notional = sum((f.qty * f.price for f in known), Decimal(0))
    qty = filled - done
    when = _utc(order.filled_at) or _utc(order.updated_at) or _utc(order.submitted_at)
    assert when is not None
    side = Side.BUY if str(getattr(order.side, "value", order.side)) == "buy" else Side.SELL
    return Fill(order.client_order_id, str(order.id), order.symbol or "", side, qty,
                money((notional - known_notional) / qty), Decimal(0), when)


@dataclass(frozen=True)
class Account:
    cash: Decimal
    equity: Decimal
    daytrade_count: int
    pattern_day_trader: bool


class AlpacaTrading:
    """One Alpaca trading account (paper unless ``live``)."""

    name = NAME

    def __init__(self, cfg: AlpacaSource, http: HttpSettings, *, live: bool = False,
                 live_url: str = "https://api.alpaca.markets",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        key, secret = credentials(cfg)
        self.live = live
        url = live_url if live else cfg.trading_url
        adapter = _adapter(RetryPolicy.from_settings(http), default_budget(cfg, http), sleep)
        self.client = harden(
            TradingClient(key, secret, paper=not live, url_override=url), adapter
        )

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except APIError as exc:
            raise BrokerError(f"{NAME}: {what} failed with HTTP {exc.status_code}: "
                              f"{_message(exc)}") from None
        except SourceError as exc:
            raise BrokerError(str(exc)) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BrokerError(f"{NAME}: malformed reply to {what} "
                              f"({type(exc).__name__})") from None

    # -- orders ----------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> OrderResult:
        """Place ``request`` once. A duplicate id returns the existing order (duplicate=True);
        a refusal (403 buying power or PDT, 422 invalid) returns a REJECTED result with
        Alpaca's reason; an unknown outcome is settled by a lookup, else BrokerError."""
        try:
            payload = alpaca_order(request)
        except ValueError as exc:
            return OrderResult(request, None, OrderStatus.REJECTED, reason=str(exc))
        try:
            order = self.client.submit_order(payload)
            return result_of(order, request)
        except APIError as exc:
            message = _message(exc)
            if exc.status_code == 422 and DUPLICATE_ID in message:
                return self._existing(request, duplicate=True)
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                return OrderResult(request, None, OrderStatus.REJECTED,
                                   reason=f"{NAME} HTTP {exc.status_code}: {message}")
            outcome = f"HTTP {exc.status_code}"
        except SourceError as exc:
            outcome = str(exc)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            outcome = f"malformed reply ({type(exc).__name__})"
        log.warning("%s: order %s outcome unknown (%s); looking it up",
                    NAME, request.client_order_id, outcome)
        return self._existing(request, duplicate=False, outcome=outcome)

    def _existing(self, request: OrderRequest, duplicate: bool, outcome: str = "") -> OrderResult:
        order = self.order(request.client_order_id)
        if order is not None:
            return result_of(order, request, duplicate=duplicate)
        if duplicate:
            raise BrokerError(f"{NAME}: order {request.client_order_id} was refused as a "
                              "duplicate but cannot be found")
        raise BrokerError(
            f"{NAME}: submitting order {request.client_order_id} failed ({outcome}) and the "
            "broker does not know it; re-run the cycle (the id makes the retry safe)")

    def order(self, client_order_id: str) -> Order | None:
        """Alpaca's order with this client_order_id, or None when it has none."""
        try:
            return self.client.get_order_by_client_id(client_order_id)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise BrokerError(f"{NAME}: GET /v2/orders:by_client_order_id failed with HTTP "
                              f"{exc.status_code}: {_message(exc)}") from None
        except SourceError as exc:
            raise BrokerError(str(exc)) from None

    def cancel(self, client_order_id: str) -> Order | None:
        """Cancel an open order; returns its state afterwards (None if Alpaca lacks it)."""
        order = self.order(client_order_id)
        if order is None:
            return None
        if order_status(order.status) in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            try:
                self.client.cancel_order_by_id(order.id)
            except APIError as exc:
                if exc.status_code != 422:  # 422: it became final meanwhile
                    raise BrokerError(f"{NAME}: DELETE /v2/orders/{{id}} failed with HTTP "
                                      f"{exc.status_code}: {_message(exc)}") from None
            order = self.order(client_order_id)
        return order

    def orders_since(self, after: datetime, page: int = 500) -> list[Order]:
        """Every order submitted after ``after`` (all statuses, legs nested), oldest first."""
        found: dict[str, Order] = {}
        cursor = after
        while True:
            batch = self._call("GET /v2/orders", lambda c=cursor: self.client.get_orders(
                GetOrdersRequest(status=QueryOrderStatus.ALL, after=c, limit=page,
                                 direction=Sort.ASC, nested=True)))
            fresh = [o for o in batch if str(o.id) not in found]
            found.update((str(o.id), o) for o in fresh)
            if len(batch) < page or not fresh:
                break
            cursor = max(_utc(o.submitted_at) or cursor for o in fresh)
        return sorted(found.values(), key=lambda o: _utc(o.submitted_at) or after)

    # -- account ---------------------------------------------------------------------------

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """(qty, average entry price) per symbol."""
        rows = self._call("GET /v2/positions", self.client.get_all_positions)
        return {p.symbol: (Decimal(str(p.qty)), Decimal(str(p.avg_entry_price))) for p in rows}

    def account(self) -> Account:
        acct = self._call("GET /v2/account", self.client.get_account)
        return Account(Decimal(str(acct.cash)), Decimal(str(acct.equity)),
                       int(acct.daytrade_count or 0), bool(acct.pattern_day_trader))

    def is_open(self) -> bool:
        """Alpaca's own view of whether the market is open now."""
        return bool(self._call("GET /v2/clock", self.client.get_clock).is_open)


def _message(exc: APIError) -> str:
    try:
        message = str(exc.message)
    except (ValueError, KeyError, TypeError):
        message = str(exc)
    return " ".join(message.split())[:200]


class AlpacaBroker:
    """The trade cycle's broker for Alpaca: positions come from the ledger (reconciled with
    Alpaca just before the cycle, which also took in the fills), cash from Alpaca's account,
    and orders go to Alpaca."""

    name = NAME

    def __init__(self, trading: AlpacaTrading, positions: Mapping[str, Position],
                 open_orders: Sequence[OrderRequest]) -> None:
        self.trading = trading
        self._positions = {s: replace(p) for s, p in positions.items()}
        self._open = list(open_orders)
        self._results: dict[str, OrderResult] = {}

    def settle(self, bars: pd.DataFrame) -> list[Fill]:
        """Nothing to match: Alpaca fills orders; reconciliation already recorded them."""
        return []

    def created_orders(self) -> list[OrderResult]:
        return []

    def open_orders(self) -> list[OrderRequest]:
        return list(self._open)

    def get_order(self, client_order_id: str) -> OrderResult | None:
        return self._results.get(client_order_id)

    def positions(self) -> dict[str, Position]:
        return {s: replace(p) for s, p in self._positions.items()}

    def submit(self, request: OrderRequest) -> OrderResult:
        result = self.trading.submit(request)
        self._results[request.client_order_id] = result
        return result

    def cancel(self, client_order_id: str) -> OrderResult | None:
        order = self.trading.cancel(client_order_id)
        if order is None:
            return None
        known = next((r for r in self._open if r.client_order_id == client_order_id), None)
        result = result_of(order, known or request_of(order))
        self._results[client_order_id] = result
        return result

    def snapshot(self, ts: datetime, prices: Mapping[str, float]) -> AccountSnapshot:
        """Alpaca's cash plus the positions valued at the cycle's last prices."""
        cash = self.trading.account().cash
        value = unrealized = realized = Decimal(0)
        for symbol, position in self._positions.items():
            realized += position.realized_pnl
            if position.qty == 0 or symbol not in prices:
                continue
            value += position.market_value(prices[symbol])
            unrealized += position.unrealized_pnl(prices[symbol])
        return AccountSnapshot(ts, cash, cash + value, value, realized, unrealized)
