"""Protective exits of held long positions: stop-loss, trailing stop, take-profit, and the
drawdown shutdown that flattens everything.

Pure functions: no clock, no I/O. Levels are compared in ``Decimal`` (prices and fractions
through ``str``), so the live and the backtest shells take exactly the same exits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from tradebot.kernel.domain import OrderRequest, Position, RiskDecision, money
from tradebot.kernel.settings import RiskSettings
from tradebot.serving.risk import RiskContext

STOP_LOSS, TRAILING_STOP, TAKE_PROFIT, SHUTDOWN = (
    "stop_loss", "trailing_stop", "take_profit", "shutdown")


def _price(prices: Mapping[str, float], symbol: str) -> float | None:
    """The symbol's price when it is a usable one (finite, positive), else None."""
    price = prices.get(symbol)
    return price if price is not None and math.isfinite(price) and price > 0 else None


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


def raise_peaks(positions: Mapping[str, Position],
                prices: Mapping[str, float]) -> dict[str, Position]:
    """Copies of ``positions``; an open long with a price gets ``peak_price`` raised to it."""
    raised = {}
    for symbol, position in positions.items():
        copy = replace(position)
        price = _price(prices, symbol)
        if copy.qty > 0 and price is not None:
            copy.peak_price = max(copy.peak_price, money(price))
        raised[symbol] = copy
    return raised


def exit_levels(position: Position, risk: RiskSettings) -> dict[str, Decimal]:
    """The enabled exit levels of a long position, in priority order."""
    levels = {}
    if risk.stop_loss_pct > 0:
        levels[STOP_LOSS] = position.avg_price * (1 - _dec(risk.stop_loss_pct))
    if risk.trailing_stop_pct > 0:
        levels[TRAILING_STOP] = position.peak_price * (1 - _dec(risk.trailing_stop_pct))
    if risk.take_profit_pct > 0:
        levels[TAKE_PROFIT] = position.avg_price * (1 + _dec(risk.take_profit_pct))
    return levels


def _crossed(rule: str, price: Decimal, level: Decimal) -> bool:
    return price >= level if rule == TAKE_PROFIT else price <= level


def exit_reasons(positions: Mapping[str, Position], prices: Mapping[str, float],
                 risk: RiskSettings) -> dict[str, str]:
    """The exit rule each long position with a price has crossed (the level itself counts):
    stop-loss before trailing stop before take-profit."""
    reasons = {}
    for symbol, position in positions.items():
        price = _price(prices, symbol)
        if position.qty <= 0 or price is None:
            continue
        last = _dec(price)
        for rule, level in exit_levels(position, risk).items():
            if _crossed(rule, last, level):
                reasons[symbol] = rule
                break
    return reasons


def shutdown_reasons(positions: Mapping[str, Position],
                     prices: Mapping[str, float]) -> dict[str, str]:
    """Reason "shutdown" for every open position with a price (the drawdown flattening)."""
    return {s: SHUTDOWN for s, p in positions.items()
            if p.qty != 0 and _price(prices, s) is not None}


def describe_exit(rule: str, position: Position, ctx: RiskContext, risk: RiskSettings) -> str:
    """Why an exit fires: the last price and the level it crossed."""
    price = ctx.last_prices[position.symbol]
    if rule == SHUTDOWN:
        return (f"equity {ctx.equity} fell {risk.max_drawdown_pct:.2%} or more below its peak "
                f"{ctx.peak_equity}: flatten {position.qty} {position.symbol} at last price "
                f"{price}")
    level = format(exit_levels(position, risk)[rule].normalize(), "f")
    if rule == TRAILING_STOP:
        return (f"last price {price} <= trailing stop {level} "
                f"({risk.trailing_stop_pct:.2%} below the peak {position.peak_price})")
    if rule == STOP_LOSS:
        return (f"last price {price} <= stop-loss {level} "
                f"({risk.stop_loss_pct:.2%} below the average price {position.avg_price})")
    return (f"last price {price} >= take-profit {level} "
            f"({risk.take_profit_pct:.2%} above the average price {position.avg_price})")


def exit_decisions(requests: Iterable[OrderRequest], reasons: Mapping[str, str],
                   positions: Mapping[str, Position], ctx: RiskContext,
                   risk: RiskSettings) -> list[RiskDecision]:
    """One approved decision per exit order, its rule the exit's reason (for the risk log)."""
    return [
        RiskDecision(approved=True, request=request, rule=reasons[request.symbol],
                     reason=describe_exit(reasons[request.symbol], positions[request.symbol],
                                          ctx, risk))
        for request in requests if request.symbol in reasons
    ]
