"""Signal to target weight to orders. Pure functions: no clock, no I/O (times are passed in)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from tradebot.kernel.domain import OrderRequest, OrderType, Side, client_order_id, quantity
from tradebot.kernel.settings import RiskSettings, StrategySettings


def _check_prob(prob_up: float) -> None:
    if not math.isfinite(prob_up) or not 0.0 <= prob_up <= 1.0:
        raise ValueError(f"prob_up must be a probability in [0, 1], got {prob_up!r}")


def _check_payoff(payoff: float) -> None:
    if not math.isfinite(payoff) or payoff <= 0:
        raise ValueError(f"payoff ratio must be finite and > 0, got {payoff!r}")


def payoff_ratio(realized_pnls: Sequence[Decimal], strategy: StrategySettings) -> float:
    """The payoff ratio b = mean win / mean |loss| of recent closed trades (oldest first).

    Zero (and non-finite) P&L values are ignored, then the last ``payoff_window`` values are
    used. With fewer than ``min_trades_for_payoff`` of them, or without at least one win and
    one loss, the result is ``default_payoff_ratio``.
    """
    values = [Decimal(str(v)) if not isinstance(v, Decimal) else v for v in realized_pnls]
    values = [v for v in values if v.is_finite() and v != 0][-strategy.payoff_window:]
    wins = [v for v in values if v > 0]
    losses = [-v for v in values if v < 0]
    if len(values) < strategy.min_trades_for_payoff or not wins or not losses:
        return strategy.default_payoff_ratio
    mean_win = sum(wins, Decimal(0)) / len(wins)
    mean_loss = sum(losses, Decimal(0)) / len(losses)
    return float(mean_win / mean_loss)


def kelly_fraction_of_equity(prob_up: float, payoff: float) -> float:
    """The full Kelly bet f* = p - (1 - p) / b as a share of equity (<= 0: no edge)."""
    _check_prob(prob_up)
    _check_payoff(payoff)
    return prob_up - (1.0 - prob_up) / payoff


def target_weight(
    prob_up: float,
    current_weight: float,
    strategy: StrategySettings,
    risk: RiskSettings,
    payoff: float | None = None,
) -> float:
    """Long-only target weight (share of equity) for one symbol.

    ``prob_up >= entry_probability``: the entry size. With ``strategy.sizing == "kelly"`` it is
    ``kelly_fraction * f*`` clamped to ``[0, max_position_pct]``, f* the Kelly bet for the
    payoff ratio ``payoff`` (``default_payoff_ratio`` when None); with "linear" it rises from
    ``0.5 * max_position_pct`` at the threshold linearly to ``max_position_pct`` at 1.0.
    ``prob_up < exit_probability``: 0 (flat). In between (the hysteresis band) the current
    weight is kept, capped to ``[0, max_position_pct]`` (so a flat symbol stays flat).
    """
    _check_prob(prob_up)
    if payoff is not None:
        _check_payoff(payoff)
    cap = risk.max_position_pct
    entry = strategy.entry_probability
    if prob_up >= entry:
        if strategy.sizing == "kelly":
            b = strategy.default_payoff_ratio if payoff is None else payoff
            bet = strategy.kelly_fraction * kelly_fraction_of_equity(prob_up, b)
            return min(max(bet, 0.0), cap)
        frac = (prob_up - entry) / (1.0 - entry)
        return cap * (0.5 + 0.5 * min(max(frac, 0.0), 1.0))
    if prob_up < strategy.exit_probability:
        return 0.0
    if not math.isfinite(current_weight):
        return 0.0
    return min(max(current_weight, 0.0), cap)


def orders_for_targets(
    targets: Mapping[str, float],
    positions: Mapping[str, Decimal],
    prices: Mapping[str, float],
    equity: Decimal,
    ts_decision: datetime,
    strategy_name: str,
    min_notional: float = 1.0,
    intents: Mapping[str, str] | None = None,
) -> list[OrderRequest]:
    """Market orders that move each symbol in ``targets`` to its target weight of ``equity``.

    Only symbols in ``targets`` are traded (a held symbol without a target is left alone).
    Deltas whose notional is below ``min_notional`` are skipped, except a full close to zero.
    An order's intent (part of its client_order_id) is "entry" or "exit", unless ``intents``
    names one for its symbol (e.g. "stop_loss").
    Result order is deterministic: exits first, then entries, each sorted by symbol.
    """
    intents = intents or {}
    exits: list[OrderRequest] = []
    entries: list[OrderRequest] = []
    for symbol in sorted(targets):
        weight = targets[symbol]
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"target weight for {symbol} must be finite and >= 0, got {weight!r}")
        price = prices.get(symbol)
        if price is None or not math.isfinite(price) or price <= 0:
            raise ValueError(f"no valid price for {symbol} (got {price!r}); cannot size its order")
        current = positions.get(symbol, Decimal(0))
        dec_price = Decimal(str(price))
        target_value = Decimal(str(weight)) * max(equity, Decimal(0))
        target_qty = quantity(target_value / dec_price)
        delta = quantity(target_qty - current)
        if delta == 0:
            continue
        full_close = target_qty == 0
        if abs(delta) * dec_price < Decimal(str(min_notional)) and not full_close:
            continue
        kind = "entry" if abs(target_qty) > abs(current) else "exit"
        intent = intents.get(symbol, kind)
        request = OrderRequest(
            client_order_id=client_order_id(strategy_name, symbol, ts_decision, intent),
            symbol=symbol,
            side=Side.BUY if delta > 0 else Side.SELL,
            qty=abs(delta),
            ts_decision=ts_decision,
            order_type=OrderType.MARKET,
            intent=intent,
            reference_price=float(price),
        )
        (entries if kind == "entry" else exits).append(request)
    return exits + entries
