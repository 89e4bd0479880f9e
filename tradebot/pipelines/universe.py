"""Which symbols and sessions a run covers, validated against the configuration."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.errors import DataError
from tradebot.kernel.settings import TradebotSettings


def select_symbols(requested: Sequence[str] | None, settings: TradebotSettings) -> list[str]:
    """The requested symbols (default: all configured); an unknown one is a clear error."""
    if not requested:
        return list(settings.symbols)
    chosen = [s.strip().upper() for s in requested]
    for symbol in chosen:
        if symbol not in settings.symbols:
            close = difflib.get_close_matches(symbol, settings.symbols, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise DataError(
                f"unknown symbol '{symbol}': not in the configured universe "
                f"{', '.join(settings.symbols)}{hint} (add it to 'symbols' in the config)"
            )
    return chosen


@dataclass(frozen=True)
class DataWindow:
    """All ingested sessions, split into training sessions and the replayed (traded) tail."""

    sessions: tuple[date, ...]
    replay_sessions: int

    @property
    def training(self) -> tuple[date, ...]:
        return self.sessions[: -self.replay_sessions]

    @property
    def replay(self) -> tuple[date, ...]:
        return self.sessions[-self.replay_sessions :]


def data_window(settings: TradebotSettings, clock: MarketClock) -> DataWindow:
    sessions = tuple(clock.sessions(settings.data.start, settings.data.sessions))
    if len(sessions) <= settings.data.replay_sessions + 2:
        raise DataError(
            f"data.sessions={settings.data.sessions} leaves too few sessions to train on after "
            f"holding out data.replay_sessions={settings.data.replay_sessions}"
        )
    return DataWindow(sessions, settings.data.replay_sessions)
