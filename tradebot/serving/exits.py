"""Protective exits of held long positions: stop-loss, the per-trade equity stop (trade stop),
trailing stop, take-profit, and the drawdown shutdown that flattens everything.

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

STOP_LOSS, TRADE_STOP, TRAILING_STOP, TAKE_PROFIT, SHUTDOWN = (
    "stop_loss", "trade_stop", "trailing_stop", "take_profit", "shutdown")


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


def trade_stop_price(position: Position, risk: RiskSettings, equity: Decimal) -> Decimal | None:
    """The price at which a long position has lost ``trade_risk_pct`` of ``equity``:
    ``avg_price - trade_risk_pct * equity / qty`` (``qty * (avg_price - price)`` reaches the
    budget there). None when the rule is off (0), the position is not long, equity is not
    positive, or the level is not a positive price (the whole position is worth less than the
    budget, so the stop can never trigger). The level is not rounded to a tick."""
    if risk.trade_risk_pct <= 0 or position.qty <= 0 or equity <= 0:
        return None
    level = position.avg_price - _trade_budget(risk, equity) / position.qty
    return level if level > 0 else None


def _trade_budget(risk: RiskSettings, equity: Decimal) -> Decimal:
    """The loss one trade may take: ``trade_risk_pct`` of ``equity``."""
    return _dec(risk.trade_risk_pct) * equity


def exit_levels(position: Position, risk: RiskSettings,
                equity: Decimal | None = None) -> dict[str, Decimal]:
    """The enabled exit levels of a long position, in priority order (the trade stop only
    with ``equity``)."""
    levels = {}
    if risk.stop_loss_pct > 0:
        levels[STOP_LOSS] = position.avg_price * (1 - _dec(risk.stop_loss_pct))
    trade_stop = None if equity is None else trade_stop_price(position, risk, equity)
    if trade_stop is not None:
        levels[TRADE_STOP] = trade_stop
    if risk.trailing_stop_pct > 0:
        levels[TRAILING_STOP] = position.peak_price * (1 - _dec(risk.trailing_stop_pct))
    if risk.take_profit_pct > 0:
        levels[TAKE_PROFIT] = position.avg_price * (1 + _dec(risk.take_profit_pct))
    return levels


def _crossed(rule: str, price: Decimal, level: Decimal) -> bool:
    return price >= level if rule == TAKE_PROFIT else price <= level


def _trade_stop_hit(position: Position, price: Decimal, risk: RiskSettings,
                    equity: Decimal) -> bool:
    """``qty * (avg_price - price) >= trade_risk_pct * equity``, compared without dividing."""
    return position.qty * (position.avg_price - price) >= _trade_budget(risk, equity)


def exit_reasons(positions: Mapping[str, Position], prices: Mapping[str, float],
                 risk: RiskSettings, equity: Decimal | None = None) -> dict[str, str]:
    """The exit rule each long position with a price has crossed (the level itself counts):
    stop-loss before trade stop before trailing stop before take-profit. The trade stop (a
    loss of ``trade_risk_pct`` of ``equity``) is checked only when ``equity`` is given."""
    reasons = {}
    for symbol, position in positions.items():
        price = _price(prices, symbol)
        if position.qty <= 0 or price is None:
            continue
        last = _dec(price)
        for rule, level in exit_levels(position, risk, equity).items():
            hit = (_trade_stop_hit(position, last, risk, equity)
                   if rule == TRADE_STOP and equity is not None else _crossed(rule, last, level))
            if hit:
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
    if rule == TRADE_STOP:
        stop = trade_stop_price(position, risk, ctx.equity)
        at = "" if stop is None else f" <= trade stop {format(money(stop).normalize(), 'f')}"
        return (f"last price {price}{at}: {position.qty} {position.symbol} bought at "
                f"{position.avg_price} lost {risk.trade_risk_pct:.2%} of equity {ctx.equity} "
                "or more")
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
