"""Pre-trade risk engine: every order passes here and may be denied or reduced, with a reason.

Pure logic: the caller passes the time, account state and prices in a :class:`RiskContext`.
Entries (orders that increase |position|) face every rule; exits are allowed unless the kill
switch is HALTED, the market is closed, or the pattern day trader limit forbids closing a
position opened this session.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from tradebot.kernel.domain import (
    QTY_QUANT,
    KillSwitchState,
    OrderRequest,
    RiskDecision,
    Side,
)
from tradebot.kernel.settings import RiskSettings


@dataclass(frozen=True, slots=True)
class RiskContext:
    """Everything the risk engine knows at one decision time."""

    ts: datetime
    session_open: bool
    equity: Decimal
    peak_equity: Decimal
    day_start_equity: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    last_prices: Mapping[str, float] = field(default_factory=dict)
    kill_switch: KillSwitchState = KillSwitchState.ACTIVE
    orders_this_cycle: int = 0
    orders_last_minute: int = 0  # orders sent in the minute before ``ts``
    day_trades: int = 0  # in the rolling ``pdt_window_sessions`` window, today included
    opened_today: frozenset[str] = frozenset()  # symbols bought this session


def _signed(request: OrderRequest) -> Decimal:
    return request.qty if request.side is Side.BUY else -request.qty


def reduces(request: OrderRequest, current: Decimal) -> bool:
    """True when the order trades against the held position (a sell of a long, a buy of a
    short), whatever its size."""
    return current != 0 and (_signed(request) > 0) != (current > 0)


def is_entry(request: OrderRequest, current: Decimal) -> bool:
    """True when the order increases |position| (or crosses zero to the other side)."""
    after = current + _signed(request)
    crosses = current != 0 and after != 0 and (after > 0) != (current > 0)
    return abs(after) > abs(current) or crosses


def _floor_qty(value: Decimal) -> Decimal:
    return value.quantize(QTY_QUANT, rounding=ROUND_DOWN)


def _deny(request: OrderRequest, rule: str, reason: str) -> RiskDecision:
    return RiskDecision(approved=False, request=request, rule=rule, reason=reason)


def _loss_fraction(start: Decimal, now: Decimal) -> float:
    """Fractional loss from ``start`` to ``now`` (0 when ``start`` is not positive)."""
    if start <= 0:
        return 0.0
    return float((start - now) / start)


class RiskEngine:
    """Applies :class:`RiskSettings` to order requests."""

    def __init__(self, risk: RiskSettings) -> None:
        self.risk = risk

    def drawdown_breached(self, ctx: RiskContext) -> bool:
        """True when equity is ``max_drawdown_pct`` or more below its peak."""
        return _loss_fraction(ctx.peak_equity, ctx.equity) >= self.risk.max_drawdown_pct

    def daily_loss_breached(self, ctx: RiskContext) -> bool:
        """True when equity is ``daily_loss_pct`` or more below the day's starting equity."""
        return _loss_fraction(ctx.day_start_equity, ctx.equity) >= self.risk.daily_loss_pct

    def pdt_limited(self, ctx: RiskContext) -> bool:
        """True when equity is under ``pdt_equity_threshold`` and the day trades of the window
        already reach ``pdt_max_day_trades``: no further day trade is allowed."""
        risk = self.risk
        return (ctx.equity < Decimal(str(risk.pdt_equity_threshold))
                and ctx.day_trades >= risk.pdt_max_day_trades)

    def is_day_trade(self, request: OrderRequest, ctx: RiskContext) -> bool:
        """True when the order reduces a position in a symbol bought this session."""
        current = ctx.positions.get(request.symbol, Decimal(0))
        return request.symbol in ctx.opened_today and reduces(request, current)

    def check(self, request: OrderRequest, ctx: RiskContext) -> RiskDecision:
        """Approve, reduce (``adjusted_qty``) or deny one order request."""
        sym, switch = request.symbol, KillSwitchState(ctx.kill_switch)  # tolerate plain strings
        if switch is KillSwitchState.HALTED:
            return _deny(request, "kill_switch", "kill switch is HALTED: no orders are allowed")
        if not ctx.session_open:
            return _deny(request, "market_closed", f"market is closed at {ctx.ts.isoformat()}")
        if request.qty <= 0:
            return _deny(request, "invalid_qty", f"order qty must be positive, got {request.qty}")
        current = ctx.positions.get(sym, Decimal(0))
        if self.is_day_trade(request, ctx) and self.pdt_limited(ctx):
            risk = self.risk
            return _deny(
                request,
                "pdt",
                f"pattern day trader limit: {ctx.day_trades} day trades in the last "
                f"{risk.pdt_window_sessions} sessions (max {risk.pdt_max_day_trades}) with "
                f"equity {ctx.equity} < {risk.pdt_equity_threshold:g}: closing {sym}, bought "
                "this session, would be another day trade",
            )
        if not is_entry(request, current):
            return RiskDecision(approved=True, request=request)
        if request.side is Side.SELL:
            if current > 0:  # long-only: trim a sell that would flip the position to short
                return RiskDecision(
                    approved=True,
                    request=request,
                    rule="no_short",
                    adjusted_qty=current,
                    reason=f"sell of {request.qty} {sym} cut to the held {current}: no shorting",
                )
            return _deny(request, "no_short", f"sell of {request.qty} {sym} would open a short")
        if switch is KillSwitchState.REDUCING:
            return _deny(request, "kill_switch", "kill switch is REDUCING: only exits are allowed")
        return self._check_entry(request, ctx, current)

    def _check_entry(
        self, request: OrderRequest, ctx: RiskContext, current: Decimal
    ) -> RiskDecision:
        def deny(rule: str, reason: str) -> RiskDecision:
            return _deny(request, rule, reason)

        risk, sym = self.risk, request.symbol
        if self.drawdown_breached(ctx):
            dd = _loss_fraction(ctx.peak_equity, ctx.equity)
            return deny(
                "max_drawdown",
                f"drawdown {dd:.2%} from peak {ctx.peak_equity} >= limit "
                f"{risk.max_drawdown_pct:.2%}: entries blocked",
            )
        if self.daily_loss_breached(ctx):
            loss = _loss_fraction(ctx.day_start_equity, ctx.equity)
            return deny(
                "daily_loss",
                f"day loss {loss:.2%} from {ctx.day_start_equity} >= limit "
                f"{risk.daily_loss_pct:.2%}: entries blocked",
            )
        if ctx.orders_this_cycle >= risk.max_orders_per_cycle:
            return deny(
                "order_rate",
                f"{ctx.orders_this_cycle} orders already this cycle "
                f"(max {risk.max_orders_per_cycle})",
            )
        if ctx.orders_last_minute >= risk.max_orders_per_minute:
            return deny(
                "order_rate",
                f"{ctx.orders_last_minute} orders in the last minute "
                f"(max {risk.max_orders_per_minute} per minute)",
            )
        last = ctx.last_prices.get(sym)
        if last is None or not math.isfinite(last) or last <= 0:
            return deny("price_band", f"no valid last trade price for {sym}: cannot check entry")
        ref = request.reference_price
        if not math.isfinite(ref) or ref <= 0:
            return deny("price_band", f"entry for {sym} has no reference price")
        band = abs(ref / last - 1.0)
        if band > risk.price_band_pct:
            return deny(
                "price_band",
                f"reference price {ref} is {band:.2%} from last price {last} "
                f"(band {risk.price_band_pct:.2%})",
            )
        price = Decimal(str(last))
        qty, rule, reasons = request.qty, "", []
        max_notional = Decimal(str(risk.max_notional_per_order))
        if qty * price > max_notional:
            qty = _floor_qty(max_notional / price)
            rule = "max_notional"
            reasons.append(
                f"notional {request.qty * price:.2f} > max {max_notional}: qty reduced to {qty}"
            )
        cap = Decimal(str(risk.max_position_pct)) * ctx.equity
        if (abs(current) + qty) * price > cap:
            room = _floor_qty(cap / price - abs(current)) if cap > 0 else Decimal(0)
            if room <= 0:
                return deny(
                    "max_position",
                    f"{sym} position {current} is already at the cap "
                    f"{risk.max_position_pct:.2%} of equity {ctx.equity}",
                )
            qty = min(qty, room)
            rule = "max_position"
            reasons.append(
                f"position would exceed {risk.max_position_pct:.2%} of equity {ctx.equity}: "
                f"qty reduced to {qty}"
            )
        if qty <= 0:
            return deny(rule or "max_notional", "; ".join(reasons) or "nothing left to order")
        if qty == request.qty:
            return RiskDecision(approved=True, request=request)
        return RiskDecision(
            approved=True, request=request, rule=rule, reason="; ".join(reasons), adjusted_qty=qty
        )

    def check_all(self, requests: Iterable[OrderRequest], ctx: RiskContext) -> list[RiskDecision]:
        """Check requests in order; approved ones count toward the cycle's and the minute's
        order limits and move the projected positions seen by later requests. An approved
        close of a position bought this session counts as one more day trade, and an approved
        buy marks its symbol as bought this session, for the later requests."""
        decisions: list[RiskDecision] = []
        positions = dict(ctx.positions)
        count, day_trades, opened = 0, ctx.day_trades, ctx.opened_today
        for request in requests:
            step = replace(ctx, positions=positions,
                           orders_this_cycle=ctx.orders_this_cycle + count,
                           orders_last_minute=ctx.orders_last_minute + count,
                           day_trades=day_trades, opened_today=opened)
            decision = self.check(request, step)
            decisions.append(decision)
            if decision.approved:
                count += 1
                day_trades += self.is_day_trade(request, step)
                if request.side is Side.BUY:
                    opened = opened | {request.symbol}
                qty = decision.adjusted_qty if decision.adjusted_qty is not None else request.qty
                signed = qty if request.side is Side.BUY else -qty
                positions[request.symbol] = positions.get(request.symbol, Decimal(0)) + signed
        return decisions
