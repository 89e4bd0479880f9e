"""Signal to target weight to orders. Pure functions: no clock, no I/O (times are passed in)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from tradebot.kernel.domain import OrderRequest, OrderType, Side, client_order_id, quantity
from tradebot.kernel.settings import RiskSettings, StrategySettings


def target_weight(
    prob_up: float, current_weight: float, strategy: StrategySettings, risk: RiskSettings
) -> float:
    """Long-only target weight (share of equity) for one symbol.

    ``prob_up >= entry_probability``: from ``0.5 * max_position_pct`` at the threshold rising
    linearly to ``max_position_pct`` at 1.0. ``prob_up < exit_probability``: 0 (flat). In
    between (the hysteresis band) the current weight is kept, capped to ``[0, max_position_pct]``.
    """
    if not math.isfinite(prob_up) or not 0.0 <= prob_up <= 1.0:
        raise ValueError(f"prob_up must be a probability in [0, 1], got {prob_up!r}")
    cap = risk.max_position_pct
    entry = strategy.entry_probability
    if prob_up >= entry:
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
