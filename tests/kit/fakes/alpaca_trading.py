"""A loopback Alpaca trading REST API v2 in the real wire format, for alpaca-py's TradingClient.

Routes (paths and parameters as alpaca-py 0.44 sends them; the data routes of
:class:`~tests.kit.fakes.alpaca.AlpacaFake`, ``/v2/assets`` included, are served too):

* ``GET /v2/account``: a TradeAccount; ``equity`` = ``cash`` + positions valued at ``prices``,
  ``buying_power`` = ``cash`` less open buy orders (a cash account, multiplier 1).
* ``GET /v2/clock``: ``timestamp``, ``is_open``, ``next_open``, ``next_close`` (ET) for ``now`` on
  the XNYS calendar; ``clock_open`` overrides ``is_open``.
* ``POST /v2/orders``: JSON body (``symbol``, ``qty`` | ``notional``, ``side``, ``type``,
  ``time_in_force``, ``limit_price``, ``stop_price``, ``trail_price`` | ``trail_percent``,
  ``client_order_id``, ``order_class`` simple|bracket|oto|oco, ``take_profit``, ``stop_loss``,
  ``extended_hours``) -> the order, bracket/oto/oco exits under ``legs``. Refusals: 422 40010001
  (bad fields, reused ``client_order_id``, fractional non-market, incomplete bracket), 403 40310000
  (buying power; qty available, no shorting), 403 40310100 (pattern day trading protection).
* ``GET /v2/orders``: ``status`` open|closed|all, ``limit`` (<= 500), ``after``/``until``
  (exclusive), ``direction``, ``nested``, ``side``, ``symbols``. ``GET /v2/orders/{id}`` and
  ``GET /v2/orders:by_client_order_id`` (404 40410000), ``DELETE /v2/orders/{id}`` (204; 422
  42210000 once final), ``DELETE /v2/orders`` (207, ``[{"id", "status", "body"}]``).
* ``GET /v2/positions``, ``GET /v2/positions/{symbol}`` (404 40410000), ``DELETE /v2/positions``
  (207, a market sell per position; ``cancel_orders``), ``DELETE /v2/positions/{symbol}``
  (``qty`` | ``percentage``).

Numbers are strings, ids UUIDs, times RFC 3339 (UTC; the clock in ET). Orders fill only when the
test calls :meth:`AlpacaTradingFake.fill`, or at once for market orders with ``auto_fill``.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET, AlpacaFake, asset
from tests.kit.fakes.server import Fault, Handler, Reply, Request

FINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIFS = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
CLASSES = frozenset({"simple", "bracket", "oto", "oco"})
INVALID, FORBIDDEN, PDT_DENIED = 40010001, 40310000, 40310100
NOT_FOUND, NOT_CANCELABLE = 40410000, 42210000
SESSION_TIME = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # a Monday, 10:00 ET
NY = ZoneInfo("America/New_York")
CENT, NINE_PLACES = Decimal("0.01"), Decimal("1e-9")
OrderJson = dict[str, Any]


class Refused(Exception):
    """An Alpaca error reply; raised inside handlers, returned as ``reply``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"code": code, "message": message, **extra})


def invalid(message: str) -> Refused:
    return Refused(422, INVALID, message)


@dataclass
class Holding:
    """A long position; ``bought_on`` is the ET day of the last buy fill (for PDT checks)."""

    qty: Decimal
    avg_entry_price: Decimal
    bought_on: date | None = None


class AlpacaTradingFake(AlpacaFake):
    """An Alpaca paper account: orders, fills, positions, cash and the market clock.

    State is guarded by one lock; test-side controls (``fill``, ``reject``...) take it too.
    """

    def __init__(
        self, *, cash: Decimal | float = 100_000, prices: dict[str, float] | None = None,
        auto_fill: bool = False, now: datetime = SESSION_TIME, api_key: str = TEST_KEY,
        secret_key: str = TEST_SECRET, pattern_day_trader_block: bool = False,
    ) -> None:
        super().__init__(prices=prices, api_key=api_key, secret_key=secret_key)
        self.cash = Decimal(str(cash))
        self.last_equity = self.cash
        self.auto_fill, self.now = auto_fill, now
        self.pattern_day_trader_block = pattern_day_trader_block
        self.daytrade_count = 0
        self.clock_open: bool | None = None
        self.reject_symbols: set[str] = set()
        self.positions: dict[str, Holding] = {}
        self.rejections: dict[str, str] = {}  # client_order_id -> reason given to reject()
        self._top: list[OrderJson] = []  # orders as submitted (legs live under their parent)
        self._by_id: dict[str, OrderJson] = {}  # every order, legs included, in creation order
        self._by_cid: dict[str, OrderJson] = {}
        self._parent: dict[str, str] = {}  # leg id -> parent id
        self._after_effects: list[tuple[str | None, Fault]] = []
        self._lock = threading.RLock()
        for method, pattern, handler in (
            ("GET", r"/v2/account", self._account), ("GET", r"/v2/clock", self._clock),
            ("POST", r"/v2/orders", self._submit), ("GET", r"/v2/orders", self._list_orders),
            ("GET", r"/v2/orders:by_client_order_id", self._get_by_cid),
            ("GET", r"/v2/orders/[^/]+", self._get_order),
            ("DELETE", r"/v2/orders", self._cancel_all),
            ("DELETE", r"/v2/orders/[^/]+", self._cancel_one),
            ("GET", r"/v2/positions", self._list_positions),
            ("GET", r"/v2/positions/[^/]+", self._get_position),
            ("DELETE", r"/v2/positions", self._close_all),
            ("DELETE", r"/v2/positions/[^/]+", self._close_one),
        ):
            self.server.route(method, pattern, self._authed(self._processed(handler)))

    def __enter__(self) -> AlpacaTradingFake:
        super().__enter__()
        return self

    # ------------------------------------------------------------------ test-side controls

    @property
    def orders(self) -> list[OrderJson]:
        """Every submitted order (bracket legs nested under ``legs``), in creation order."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._top]

    def order_by_client_id(self, client_order_id: str) -> OrderJson | None:
        with self._lock:
            order = self._by_cid.get(client_order_id)
            return copy.deepcopy(order) if order is not None else None

    def created_count(self, symbol: str | None = None) -> int:
        """How many orders were created (legs not counted), optionally for one symbol."""
        with self._lock:
            return sum(1 for o in self._top if symbol is None or o["symbol"] == symbol)

    def fill(self, client_order_id: str, qty: float | None = None,
             price: float | None = None) -> OrderJson:
        """Fill ``qty`` (default: all that remains) at ``price`` (default ``prices[symbol]``).

        ``client_order_id`` may also be an order id. Raises ValueError for held or final orders.
        """
        with self._lock:
            order = self._lookup(client_order_id)
            at = _dec(price) if price is not None else self._price(order["symbol"])
            if at is None:
                raise ValueError(f"no price for {order['symbol']}: pass price= or set prices")
            self._fill(order, _dec(qty) if qty is not None else None, at)
            return copy.deepcopy(order)

    def reject(self, client_order_id: str, reason: str = "rejected by the test") -> OrderJson:
        """Reject an open order (its legs are canceled); ``rejections`` keeps the reason."""
        with self._lock:
            order = self._lookup(client_order_id)
            if order["status"] in FINAL:
                raise ValueError(f"order {client_order_id} is already {order['status']}")
            self.rejections[order["client_order_id"]] = reason
            self._close_order(order, "rejected")
            return copy.deepcopy(order)

    def cancel_all_open(self) -> list[OrderJson]:
        """Cancel every open order (legs included); returns them as they were before."""
        with self._lock:
            before = [copy.deepcopy(o) for o in self._open()]
            for order in self._open():
                if order["status"] not in FINAL:  # a parent's cancel already took its legs
                    self._close_order(order, "canceled")
            return before

    def after_effect_fault(self, path_pattern: str, reply: Reply, times: int = 1, *,
                           method: str | None = None) -> None:
        """Process the next ``times`` matching requests, but answer them with ``reply``.

        A lost response: e.g. the order is created, yet the client sees a 500 (or a slow
        reply it gives up on). ``server.fail`` instead refuses without processing.
        """
        with self._lock:
            self._after_effects.append((method, Fault(path_pattern, reply, times)))

    # ------------------------------------------------------------------ plumbing

    def _processed(self, handler: Handler) -> Handler:
        def run(request: Request) -> Reply:
            with self._lock:
                try:
                    reply = handler(request)
                except Refused as exc:
                    reply = exc.reply
                return self._after_effect(request) or reply
        return run

    def _after_effect(self, request: Request) -> Reply | None:
        for method, fault in self._after_effects:
            if method in (None, request.method) and re.match(fault.path_pattern + r"\Z",
                                                             request.path):
                fault.times -= 1
                if fault.times <= 0:
                    self._after_effects.remove((method, fault))
                return fault.reply
        return None

    def _lookup(self, key: str) -> OrderJson:
        order = self._by_cid.get(key) or self._by_id.get(key)
        if order is None:
            raise KeyError(f"no order {key!r}")
        return order

    def _price(self, symbol: str) -> Decimal | None:
        price = self.prices.get(symbol)
        return _dec(price) if price is not None else None

    def _today(self) -> date:
        return _aware(self.now).astimezone(NY).date()

    def _open(self) -> list[OrderJson]:
        return [o for o in self._by_id.values() if o["status"] not in FINAL]

    def _remaining(self, order: OrderJson) -> Decimal:
        if order["qty"] is not None:
            return Decimal(order["qty"]) - Decimal(order["filled_qty"])
        price = self._price(order["symbol"])
        return _q(Decimal(order["notional"]) / price) if price else Decimal(0)

    def _held_for_orders(self, symbol: str) -> Decimal:
        """Shares reserved by open sells; one bracket/oco group reserves its qty once."""
        groups: dict[str, Decimal] = {}
        for o in self._open():
            if o["symbol"] == symbol and o["side"] == "sell" and o["status"] != "held":
                key = self._parent.get(o["id"], o["id"])
                groups[key] = max(groups.get(key, Decimal(0)), self._remaining(o))
        return sum(groups.values(), Decimal(0))

    def _buying_power(self) -> Decimal:
        reserved = Decimal(0)
        for o in self._open():
            if o["side"] != "buy" or o["status"] == "held":
                continue
            if o["qty"] is None:
                reserved += Decimal(o["notional"])
                continue
            ref = o["limit_price"] or o["stop_price"] or self._price(o["symbol"]) or 0
            reserved += self._remaining(o) * Decimal(ref)
        return self.cash - reserved

    # ------------------------------------------------------------------ orders

    def _submit(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, 40010000, "request body format is invalid")
        return Reply(200, _view(self._create(body)))

    def _create(self, body: dict[str, Any]) -> OrderJson:
        symbol, side, kind = body.get("symbol"), body.get("side"), body.get("type")
        tif, klass = body.get("time_in_force"), body.get("order_class") or "simple"
        if not symbol:
            raise invalid("symbol is required")
        for name, value, allowed in (("side", side, {"buy", "sell"}), ("type", kind, TYPES),
                                     ("time_in_force", tif, TIFS), ("order_class", klass,
                                                                    CLASSES)):
            if value not in allowed:
                raise invalid(f"invalid {name}: {value!r}")
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if len(cid) > 128:
            raise invalid("client_order_id must be no more than 128 characters")
        if cid in self._by_cid:
            raise invalid("client_order_id must be unique")
        qty, notional = _field(body, "qty"), _field(body, "notional")
        if (qty is None) == (notional is None):
            raise invalid("qty or notional is required" if qty is None
                          else "qty and notional cannot both be specified")
        if (qty or notional or 0) <= 0:
            raise invalid("qty must be > 0" if qty is not None else "notional must be > 0")
        limit, stop = _field(body, "limit_price"), _field(body, "stop_price")
        trail_price, trail_pct = _field(body, "trail_price"), _field(body, "trail_percent")
        tp, sl = body.get("take_profit") or {}, body.get("stop_loss") or {}
        if not isinstance(tp, dict) or not isinstance(sl, dict):
            raise Refused(400, 40010000, "request body format is invalid")
        tp_limit = _field(tp, "limit_price", "take_profit.limit_price")
        sl_stop = _field(sl, "stop_price", "stop_loss.stop_price")
        sl_limit = _field(sl, "limit_price", "stop_loss.limit_price")
        if klass == "oco" and limit is None:
            limit = tp_limit
        if kind in ("limit", "stop_limit") and limit is None:
            raise invalid("limit orders require a limit price")
        if kind in ("stop", "stop_limit") and stop is None:
            raise invalid("stop orders require a stop price")
        if kind == "trailing_stop" and (trail_price is None) == (trail_pct is None):
            raise invalid("trailing_stop orders require one of trail_price or trail_percent")
        if (notional is not None or qty != qty.to_integral_value()) and (
                kind != "market" or tif != "day" or klass != "simple"):
            raise invalid("fractional orders must be simple market orders with "
                          "time_in_force=day")
        price = self._price(symbol)
        self._check_class(klass, kind, side, tif, limit if limit is not None else price,
                          tp_limit, sl_stop)
        self._check_funds(symbol, side, qty, notional, limit or stop or price)
        order = _order(cid, symbol, side, kind, tif, klass, self.now, qty=qty,
                       notional=notional, limit=limit, stop=stop,
                       extended_hours=bool(body.get("extended_hours")))
        if kind == "trailing_stop":
            sign = -1 if side == "sell" else 1
            offset = trail_price if trail_price is not None else (price or 0) * trail_pct / 100
            order.update(trail_price=_num(trail_price), trail_percent=_num(trail_pct),
                         hwm=_num(price), stop_price=_num(price + sign * offset)
                         if price is not None else None)
        exit_side = "sell" if side == "buy" else "buy"
        leg_status = "new" if klass == "oco" else "held"
        legs = []
        if tp_limit is not None and klass in ("bracket", "oto"):
            legs.append(_order(str(uuid.uuid4()), symbol, exit_side, "limit", tif, klass,
                               self.now, qty=qty, limit=tp_limit, status="held"))
        if sl_stop is not None and klass != "simple":
            legs.append(_order(str(uuid.uuid4()), symbol, exit_side if klass != "oco" else side,
                               "stop_limit" if sl_limit else "stop", tif, klass, self.now,
                               qty=qty, limit=sl_limit, stop=sl_stop, status=leg_status))
        order["legs"] = legs or None
        self._top.append(order)
        for o in (order, *legs):
            self._by_id[o["id"]], self._by_cid[o["client_order_id"]] = o, o
            if o is not order:
                self._parent[o["id"]] = order["id"]
        if symbol in self.reject_symbols:
            self.rejections[cid] = f"{symbol} is not tradable"
            self._close_order(order, "rejected")
        elif self.auto_fill and kind == "market" and price is not None:
            self._fill(order, None, price)
        return order

    def _check_class(self, klass: str, kind: str, side: str, tif: str, base: Decimal | None,
                     tp_limit: Decimal | None, sl_stop: Decimal | None) -> None:
        if klass in ("bracket", "oco") and (tp_limit is None or sl_stop is None):
            raise invalid(f"{klass} orders require take_profit.limit_price and "
                          "stop_loss.stop_price")
        if klass == "oto" and tp_limit is None and sl_stop is None:
            raise invalid("oto orders require take_profit.limit_price or stop_loss.stop_price")
        if klass == "oco" and kind != "limit":
            raise invalid("oco orders must be limit orders")
        if klass != "bracket":
            return
        if kind not in ("market", "limit"):
            raise invalid("bracket orders must be market or limit orders")
        if tif not in ("day", "gtc"):
            raise invalid("bracket orders must be day or gtc orders")
        if base is not None and tp_limit is not None and sl_stop is not None:
            up, down = ("+", "-") if side == "buy" else ("-", "+")
            sign = 1 if side == "buy" else -1
            if sign * (tp_limit - base) < CENT:
                raise invalid(f"take_profit.limit_price must be {'>' if sign > 0 else '<'}= "
                              f"base_price {up} 0.01")
            if sign * (base - sl_stop) < CENT:
                raise invalid(f"stop_loss.stop_price must be {'<' if sign > 0 else '>'}= "
                              f"base_price {down} 0.01")

    def _check_funds(self, symbol: str, side: str, qty: Decimal | None,
                     notional: Decimal | None, ref: Decimal | None) -> None:
        if side == "buy":
            cost = notional if notional is not None else (qty or 0) * (ref or 0)
            power = self._buying_power()
            if cost > power:
                raise Refused(403, FORBIDDEN, "insufficient buying power",
                              buying_power=_num(power), cost_basis=_num(cost))
            return
        holding = self.positions.get(symbol)
        if self.pattern_day_trader_block and holding and holding.bought_on == self._today():
            raise Refused(403, PDT_DENIED, "trade denied due to pattern day trading protection")
        existing = holding.qty if holding else Decimal(0)
        held = self._held_for_orders(symbol)
        available = existing - held
        requested = (qty if qty is not None
                     else _q((notional or 0) / ref) if ref else Decimal(0))
        if requested > available:
            raise Refused(403, FORBIDDEN, f"insufficient qty available for order (requested: "
                          f"{_num(requested)}, available: {_num(available)})",
                          symbol=symbol, available=_num(available), existing_qty=_num(existing),
                          held_for_orders=_num(held))

    def _fill(self, order: OrderJson, qty: Decimal | None, price: Decimal) -> None:
        if order["status"] in FINAL or order["status"] == "held":
            raise ValueError(f"order {order['client_order_id']} is {order['status']}")
        filled = Decimal(order["filled_qty"])
        if order["qty"] is None:  # notional: all at once, the size set by the fill price
            n = remaining = _q(Decimal(order["notional"]) / price)
        else:
            remaining = Decimal(order["qty"]) - filled
            n = remaining if qty is None else min(qty, remaining)
        symbol, now = order["symbol"], _ts(self.now)
        holding = self.positions.get(symbol)
        if order["side"] == "sell" and (holding is None or holding.qty < n):
            raise ValueError(f"filling {order['client_order_id']} would sell short")
        if n <= 0:
            raise ValueError(f"nothing left to fill on {order['client_order_id']}")
        paid = Decimal(order["filled_avg_price"] or 0) * filled + price * n
        order.update(filled_qty=_num(filled + n), filled_avg_price=_num(paid / (filled + n)),
                     status="filled" if n == remaining else "partially_filled", updated_at=now)
        if order["side"] == "buy":
            self.cash -= n * price
            if holding is None:
                holding = self.positions[symbol] = Holding(Decimal(0), price)
            cost = holding.avg_entry_price * holding.qty + price * n
            holding.qty += n
            holding.avg_entry_price, holding.bought_on = _q(cost / holding.qty), self._today()
        else:
            self.cash += n * price
            assert holding is not None
            holding.qty -= n
            if holding.qty == 0:
                del self.positions[symbol]
        if order["status"] != "filled":
            return
        order["filled_at"] = now
        if order["order_class"] in ("bracket", "oto") and order["id"] not in self._parent:
            for leg in order["legs"] or []:
                if leg["status"] == "held":
                    leg.update(status="new", updated_at=now)
        for sibling in self._siblings(order):
            if sibling["status"] not in FINAL:
                self._close_order(sibling, "canceled")

    def _siblings(self, order: OrderJson) -> list[OrderJson]:
        """The other exits of a one-cancels-other group (bracket legs, oco parent + leg)."""
        parent = self._by_id.get(self._parent.get(order["id"], ""))
        if parent is None:
            return list(order["legs"] or []) if order["order_class"] == "oco" else []
        if parent["order_class"] == "oto":
            return []
        group = parent["legs"] + ([parent] if parent["order_class"] == "oco" else [])
        return [o for o in group if o is not order]

    def _close_order(self, order: OrderJson, status: str) -> OrderJson:
        """Move an open order (and its open legs) to ``canceled`` or ``rejected``."""
        now = _ts(self.now)
        order.update(status=status, updated_at=now,
                     **({"canceled_at": now} if status == "canceled" else {"failed_at": now}))
        for leg in order["legs"] or []:
            if leg["status"] not in FINAL:
                leg.update(status="canceled", canceled_at=now, updated_at=now)
        return order

    def _list_orders(self, request: Request) -> Reply:
        status, direction = request.arg("status", "open"), request.arg("direction", "desc")
        if status not in ("open", "closed", "all"):
            raise invalid(f"invalid status: {status!r}")
        if direction not in ("asc", "desc"):
            raise invalid(f"invalid direction: {direction!r}")
        try:
            limit = int(request.arg("limit") or 50)
        except ValueError:
            raise invalid("invalid limit") from None
        if not 1 <= limit <= 500:
            raise invalid("limit must be between 1 and 500")
        after, until = _time(request.arg("after")), _time(request.arg("until"))
        nested = (request.arg("nested") or "").lower() == "true"
        symbols = {s for s in (request.arg("symbols") or "").split(",") if s}
        side = request.arg("side")

        def keep(o: OrderJson) -> bool:
            submitted = datetime.fromisoformat(o["submitted_at"])
            return ((status == "all" or (status == "closed") == (o["status"] in FINAL))
                    and (not symbols or o["symbol"] in symbols)
                    and (side is None or o["side"] == side)
                    and (after is None or submitted > after)
                    and (until is None or submitted < until))

        pool = self._top if nested else list(self._by_id.values())
        chosen = sorted(((o["submitted_at"], n, o) for n, o in enumerate(pool) if keep(o)),
                        key=lambda t: t[:2], reverse=direction == "desc")[:limit]
        return Reply(200, [_view(o, legs=nested) for _, _, o in chosen])

    def _order_at(self, request: Request) -> OrderJson:
        order_id = request.path.rsplit("/", 1)[1]
        if order_id not in self._by_id:
            raise Refused(404, NOT_FOUND, f"order not found for {order_id}")
        return self._by_id[order_id]

    def _get_order(self, request: Request) -> Reply:
        return Reply(200, _view(self._order_at(request)))

    def _get_by_cid(self, request: Request) -> Reply:
        cid = request.arg("client_order_id") or ""
        if cid not in self._by_cid:
            raise Refused(404, NOT_FOUND, f"order not found for {cid}")
        return Reply(200, _view(self._by_cid[cid]))

    def _cancel_one(self, request: Request) -> Reply:
        order = self._order_at(request)
        if order["status"] in FINAL:
            raise Refused(422, NOT_CANCELABLE, f'order is already in "{order["status"]}" state')
        for o in (order, *self._siblings(order)):  # one leg's cancel takes its siblings
            if o["status"] not in FINAL:
                self._close_order(o, "canceled")
        return Reply(204)

    def _cancel_all(self, request: Request) -> Reply:
        ids = [o["id"] for o in self.cancel_all_open()]
        return Reply(207, [{"id": i, "status": 200, "body": _view(self._by_id[i])} for i in ids])

    # ------------------------------------------------------------------ positions & account

    def _symbol(self, request: Request) -> str:
        key = request.path.rsplit("/", 1)[1]
        for symbol in self.positions:
            if key in (symbol, _asset_id(symbol)):
                return symbol
        raise Refused(404, NOT_FOUND, "position does not exist")

    def _position(self, symbol: str) -> dict[str, Any]:
        h = self.positions[symbol]
        price = self._price(symbol) or h.avg_entry_price
        value, cost = h.qty * price, h.qty * h.avg_entry_price
        pl = value - cost
        plpc = _num(pl / cost if cost else Decimal(0))
        return {
            "asset_id": _asset_id(symbol), "symbol": symbol, "exchange": "NASDAQ",
            "asset_class": "us_equity", "asset_marginable": True, "qty": _num(h.qty),
            "qty_available": _num(h.qty - self._held_for_orders(symbol)),
            "avg_entry_price": _num(h.avg_entry_price), "side": "long",
            "market_value": _num(value), "cost_basis": _num(cost), "unrealized_pl": _num(pl),
            "unrealized_plpc": plpc, "unrealized_intraday_pl": _num(pl),
            "unrealized_intraday_plpc": plpc, "current_price": _num(price),
            "lastday_price": _num(price), "change_today": "0",
        }

    def _list_positions(self, request: Request) -> Reply:
        return Reply(200, [self._position(s) for s in sorted(self.positions)])

    def _get_position(self, request: Request) -> Reply:
        return Reply(200, self._position(self._symbol(request)))

    def _sell(self, symbol: str, qty: Decimal) -> OrderJson:
        return self._create({"symbol": symbol, "qty": str(qty), "side": "sell",
                             "type": "market", "time_in_force": "day"})

    def _close_all(self, request: Request) -> Reply:
        if (request.arg("cancel_orders") or "").lower() == "true":
            self.cancel_all_open()
        results = []
        for symbol, holding in sorted(self.positions.items()):
            try:
                order = self._sell(symbol, holding.qty)
                results.append({"order_id": order["id"], "status": 200, "symbol": symbol,
                                "body": _view(order)})
            except Refused as exc:
                results.append({"symbol": symbol, "status": exc.reply.status,
                                "body": exc.reply.body})
        return Reply(207, results)

    def _close_one(self, request: Request) -> Reply:
        symbol = self._symbol(request)
        held = self.positions[symbol].qty
        args = {k: v[0] for k, v in request.query.items()}
        qty, pct = _field(args, "qty"), _field(args, "percentage")
        if pct is not None and not 0 < pct <= 100:
            raise invalid("percentage must be between 0 and 100")
        amount = qty if qty is not None else _q(held * pct / 100) if pct is not None else held
        return Reply(200, _view(self._sell(symbol, amount)))

    def _account(self, request: Request) -> Reply:
        long_value = sum((h.qty * (self._price(s) or h.avg_entry_price)
                          for s, h in self.positions.items()), Decimal(0))
        equity, power = self.cash + long_value, self._buying_power()
        zero = "0"
        return Reply(200, {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "account.alpaca.test")),
            "account_number": "PA3FAKE0000T", "status": "ACTIVE", "crypto_status": "ACTIVE",
            "currency": "USD", "buying_power": _num(power), "regt_buying_power": _num(power),
            "daytrading_buying_power": zero, "non_marginable_buying_power": _num(power),
            "options_buying_power": _num(power), "cash": _num(self.cash), "accrued_fees": zero,
            "pending_transfer_in": zero, "pending_transfer_out": zero,
            "portfolio_value": _num(equity), "equity": _num(equity),
            "last_equity": _num(self.last_equity), "long_market_value": _num(long_value),
            "short_market_value": zero, "position_market_value": _num(long_value),
            "initial_margin": zero, "maintenance_margin": zero,
            "last_maintenance_margin": zero, "sma": zero, "multiplier": "1",
            "pattern_day_trader": self.pattern_day_trader_block,
            "daytrade_count": self.daytrade_count, "trading_blocked": False,
            "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "shorting_enabled": False,
            "options_approved_level": 0, "options_trading_level": 0,
            "created_at": "2024-01-02T15:04:05.123456Z",
            "balance_asof": self._today().isoformat(),
        })

    def _clock(self, request: Request) -> Reply:
        now = pd.Timestamp(_aware(self.now)).tz_convert(UTC)
        opens, closes = _sessions(now.year)
        is_open = bool(((opens <= now) & (closes > now)).any())
        return Reply(200, {
            "timestamp": now.tz_convert(NY).isoformat(),
            "is_open": is_open if self.clock_open is None else self.clock_open,
            "next_open": opens[opens > now].iloc[0].tz_convert(NY).isoformat(),
            "next_close": closes[closes > now].iloc[0].tz_convert(NY).isoformat(),
        })


@lru_cache(maxsize=4)
def _sessions(year: int) -> tuple[pd.Series, pd.Series]:
    """XNYS session opens and closes (UTC) of ``year`` and the years either side."""
    with warnings.catch_warnings():  # exchange_calendars trips pandas deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        nyse = xcals.get_calendar("XNYS", start=f"{year - 1}-01-01", end=f"{year + 1}-12-31")
    return nyse.opens, nyse.closes


def _order(cid: str, symbol: str, side: str, kind: str, tif: str, klass: str, now: datetime, *,
           qty: Decimal | None = None, notional: Decimal | None = None,
           limit: Decimal | None = None, stop: Decimal | None = None,
           status: str = "accepted", extended_hours: bool = False) -> OrderJson:
    at = _ts(now)
    intent = "buy_to_open" if side == "buy" else "sell_to_close"
    return {
        "id": str(uuid.uuid4()), "client_order_id": cid, "created_at": at, "updated_at": at,
        "submitted_at": at, "filled_at": None, "expired_at": None, "canceled_at": None,
        "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
        "asset_id": _asset_id(symbol), "symbol": symbol, "asset_class": "us_equity",
        "notional": _num(notional), "qty": _num(qty), "filled_qty": "0",
        "filled_avg_price": None, "order_class": klass, "order_type": kind, "type": kind,
        "side": side, "position_intent": intent, "time_in_force": tif,
        "limit_price": _num(limit), "stop_price": _num(stop), "status": status,
        "extended_hours": extended_hours, "legs": None, "trail_percent": None,
        "trail_price": None, "hwm": None, "expires_at": None, "subtag": None, "source": None,
    }


def _view(order: OrderJson, legs: bool = True) -> OrderJson:
    """A detached copy for the wire (json-encoded after the lock is released)."""
    out = copy.deepcopy(order)
    if not legs:
        out["legs"] = None
    return out


def _asset_id(symbol: str) -> str:
    return asset(symbol)["id"]


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _ts(ts: datetime) -> str:
    return _aware(ts).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        raise invalid(f"invalid time: {value!r}") from None


def _dec(value: Any) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite():
        raise InvalidOperation(value)
    return number


def _field(data: dict[str, Any], name: str, label: str | None = None) -> Decimal | None:
    """A decimal request field, None when absent; 422 when it is not a number."""
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        return _dec(value)
    except (InvalidOperation, ValueError):
        raise invalid(f"invalid {label or name}: {value!r}") from None


def _q(value: Decimal) -> Decimal:
    return value.quantize(NINE_PLACES)


def _num(value: Decimal | None) -> str | None:
    """Alpaca's number strings: ``"100"``, ``"0.5"``, ``"187.25"`` (at most 9 places)."""
    return None if value is None else format(_q(value).normalize(), "f")
