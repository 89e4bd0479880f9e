"""Small synthetic markets for tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import SyntheticSettings
from tradebot.sources.synthetic import SyntheticMarket, generate_market

TINY_START = date(2026, 6, 1)


def tiny_market(
    symbols: Sequence[str] = ("QQQ", "AAPL"),
    n_sessions: int = 3,
    signal_strength: float = 0.35,
    seed: int = 7,
) -> SyntheticMarket:
    """A few sessions of synthetic bars, news and posts starting 2026-06-01 (fresh frames)."""
    clock = MarketClock()
    sessions = clock.sessions(TINY_START, n_sessions)
    cfg = SyntheticSettings(seed=seed, signal_strength=signal_strength)
    return generate_market(list(symbols), sessions, clock, cfg)
