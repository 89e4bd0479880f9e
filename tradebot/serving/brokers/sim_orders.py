"""Order rules of the simulated broker: which order fields are valid, on which bar an order
triggers and at what price, and the two legs a filled bracket entry creates.

Within a bar the price path is unknown, so every rule is conservative and deterministic:

- market: the first usable bar, at its open (then slippage and spread);
- limit buy: ``low <= limit``, at ``min(open, limit)``; limit sell: ``high >= limit``, at
  ``max(open, limit)`` (no slippage: a limit price is guaranteed);
- stop sell: ``low <= stop``, at ``min(open, stop)``; stop buy: ``high >= stop``, at
  ``max(open, stop)`` (then slippage and spread: a triggered stop is a market order);
- trailing stop sell: the high-water mark starts at ``reference_price`` (the first bar's open
  if 0) and is raised by each bar's high after that bar's check; it triggers when
  ``low <= mark * (1 - trail_percent / 100)``, at ``min(open, level)`` plus costs. A trailing
  buy mirrors it with a low-water mark and ``high >= mark * (1 + trail_percent / 100)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np
import pandas as pd

from tradebot.kernel.domain import Fill, OrderRequest, OrderType, Side

_HUNDRED = Decimal(100)
TAKE_PROFIT, STOP_LOSS = "take_profit", "stop_loss"


def _dec(value: float) -> Decimal:
    """A bar price as the Decimal of its shortest repr (as the market fill price uses)."""
    return Decimal(str(float(value)))


@dataclass(frozen=True, slots=True)
class SymbolBars:
    """One symbol's bars in time order, one per ``ts_event`` (the first row of duplicates).

    ``high``/``low`` are widened to include the open (a missing high or low becomes it)."""

    times: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray

    @classmethod
    def from_frame(cls, group: pd.DataFrame) -> SymbolBars:
        """From rows of one symbol (UTC ``ts_event``, no missing open), in any order."""
        group = group.sort_values("ts_event", kind="stable")
        group = group.drop_duplicates("ts_event", keep="first")
        open_ = group["open"].to_numpy(dtype=float)
        high = np.fmax(group["high"].to_numpy(dtype=float), open_)
        low = np.fmin(group["low"].to_numpy(dtype=float), open_)
        return cls(pd.DatetimeIndex(group["ts_event"]), open_, high, low)

    def start(self, request: OrderRequest, after: pd.Timestamp | None) -> int:
        """Index of the first bar ``request`` may use: ``ts_event >= ts_decision`` (``>`` for a
        bracket leg, which never fills on its parent's fill bar) and ``> after``."""
        decision = pd.Timestamp(request.ts_decision).tz_convert("UTC")
        side = "right" if request.parent_client_order_id else "left"
        first = int(self.times.searchsorted(decision, side=side))
        if after is not None:
            first = max(first, int(self.times.searchsorted(after, side="right")))
        return first


@dataclass(frozen=True, slots=True)
class Trigger:
    """Where an order triggers among the bars examined.

    ``index`` is the triggering bar (None: none did), ``price`` the execution price before
    costs and ``slipped`` whether slippage and spread apply (market, stop, trailing stop).
    ``last`` is the last bar examined and ``mark`` a trailing stop's water mark after it."""

    index: int | None
    price: Decimal = Decimal(0)
    slipped: bool = True
    last: int = -1
    mark: float | None = None


def find_trigger(request: OrderRequest, bars: SymbolBars, start: int,
                 mark: float | None = None) -> Trigger:
    """The first bar from ``start`` on which ``request`` triggers; ``mark`` is a trailing
    stop's water mark carried from bars examined before (None: start a new one)."""
    n = len(bars.times)
    if start >= n:
        return Trigger(None, last=start - 1, mark=mark)
    buy = request.side is Side.BUY
    open_, high, low = bars.open[start:], bars.high[start:], bars.low[start:]
    kind = request.order_type
    if kind is OrderType.MARKET:
        return Trigger(start, _dec(open_[0]))
    if kind is OrderType.TRAILING_STOP:
        return _trailing(request, bars, start, mark)
    level = request.limit_price if kind is OrderType.LIMIT else request.stop_price
    if level is None:  # rejected at submit; never pending
        return Trigger(None, last=n - 1)
    if kind is OrderType.LIMIT:
        hit = low <= float(level) if buy else high >= float(level)
    else:
        hit = high >= float(level) if buy else low <= float(level)
    at = np.flatnonzero(hit)
    if not len(at):
        return Trigger(None, last=n - 1)
    k = int(at[0])
    bar_open = _dec(open_[k])
    limit_buy_or_stop_sell = buy == (kind is OrderType.LIMIT)
    price = min(bar_open, level) if limit_buy_or_stop_sell else max(bar_open, level)
    return Trigger(start + k, price, slipped=kind is not OrderType.LIMIT)


def _trailing(request: OrderRequest, bars: SymbolBars, start: int,
              mark: float | None) -> Trigger:
    buy = request.side is Side.BUY
    open_, high, low = bars.open[start:], bars.high[start:], bars.low[start:]
    if mark is None:
        mark = request.reference_price if request.reference_price > 0 else float(open_[0])
    trail = request.trail_percent or Decimal(0)
    # The water mark before each bar: the carried mark, then each earlier bar's high (low).
    seen = low if buy else high
    before = np.concatenate([[mark], seen[:-1]])
    marks = np.minimum.accumulate(before) if buy else np.maximum.accumulate(before)
    factor = 1 + float(trail) / 100 if buy else 1 - float(trail) / 100
    levels = marks * factor
    at = np.flatnonzero(high >= levels if buy else low <= levels)
    if not len(at):
        final = min(mark, float(seen.min())) if buy else max(mark, float(seen.max()))
        return Trigger(None, last=len(bars.times) - 1, mark=final)
    k = int(at[0])
    level = _dec(marks[k]) * ((_HUNDRED + trail) if buy else (_HUNDRED - trail)) / _HUNDRED
    bar_open = _dec(open_[k])
    return Trigger(start + k, max(bar_open, level) if buy else min(bar_open, level))


def order_rejection(request: OrderRequest) -> str:
    """Why the order's own fields are invalid ("" if they are valid)."""
    kind = request.order_type
    if kind is OrderType.LIMIT and not _positive(request.limit_price):
        return f"a limit order needs a positive limit_price, got {request.limit_price}"
    if kind is OrderType.STOP and not _positive(request.stop_price):
        return f"a stop order needs a positive stop_price, got {request.stop_price}"
    if kind is OrderType.TRAILING_STOP:
        trail = request.trail_percent
        if trail is None or not 0 < trail < 100:
            return f"a trailing stop needs 0 < trail_percent < 100, got {trail}"
    tp, sl = request.take_profit_price, request.stop_loss_price
    if (tp is None) != (sl is None):
        return "a bracket needs both take_profit_price and stop_loss_price"
    if request.is_bracket:
        return _bracket_rejection(request)
    return ""


def _bracket_rejection(request: OrderRequest) -> str:
    tp, sl = request.take_profit_price, request.stop_loss_price
    assert tp is not None and sl is not None
    if request.side is not Side.BUY:
        return "a bracket is a long entry: its side must be buy"
    if request.order_type not in (OrderType.MARKET, OrderType.LIMIT):
        return f"a bracket entry must be a market or limit order, got {request.order_type}"
    if request.parent_client_order_id:
        return "a bracket leg cannot itself be a bracket"
    if sl <= 0:
        return f"bracket stop_loss_price must be positive, got {sl}"
    if request.order_type is OrderType.LIMIT:
        entry, name = request.limit_price, "limit_price"
    else:
        entry, name = _dec(request.reference_price), "reference_price"
    if entry is not None and entry > 0:
        if not sl < entry < tp:
            return (f"bracket prices inconsistent for a long entry: need stop_loss {sl} < "
                    f"{name} {entry} < take_profit {tp}")
    elif not sl < tp:
        return f"bracket prices inconsistent: stop_loss {sl} must be below take_profit {tp}"
    return ""


def _positive(value: Decimal | None) -> bool:
    return value is not None and value > 0


def bracket_legs(parent: OrderRequest, fill: Fill) -> tuple[OrderRequest, OrderRequest]:
    """The take-profit limit sell and stop-loss stop sell closing a filled bracket entry:
    ``ts_decision`` is the entry's fill bar, so neither fills on that bar."""
    take_profit = OrderRequest(
        client_order_id=f"{parent.client_order_id}-tp",
        symbol=parent.symbol,
        side=Side.SELL,
        qty=fill.qty,
        ts_decision=fill.ts_fill,
        order_type=OrderType.LIMIT,
        limit_price=parent.take_profit_price,
        intent=TAKE_PROFIT,
        reference_price=float(fill.price),
        parent_client_order_id=parent.client_order_id,
    )
    stop_loss = replace(
        take_profit, client_order_id=f"{parent.client_order_id}-sl", order_type=OrderType.STOP,
        limit_price=None, stop_price=parent.stop_loss_price, intent=STOP_LOSS,
    )
    return take_profit, stop_loss


def stop_loss_wins(batch: list[OrderRequest]) -> set[str]:
    """Take-profit legs to hold back because the stop-loss of the same bracket triggered on
    the same bar (the conservative reading of an unknown intra-bar path)."""
    stops = {r.parent_client_order_id for r in batch
             if r.parent_client_order_id and r.order_type is OrderType.STOP}
    return {r.client_order_id for r in batch
            if r.parent_client_order_id in stops and r.order_type is OrderType.LIMIT}
