"""Which symbols and sessions a run covers, validated against the configuration."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import pandas as pd
from sqlalchemy import delete, select

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.schema import UniverseAssetRow
from tradebot.kernel.settings import TradebotSettings
from tradebot.pipelines.symbols import filter_universe


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


class AssetSource(Protocol):
    def fetch_assets(self) -> pd.DataFrame: ...
    def latest_prices(self, symbols: list[str]) -> dict[str, float]: ...


def refresh_universe(db: Database, settings: TradebotSettings, source: AssetSource,
                     now: datetime) -> pd.DataFrame:
    """Fetch tradable assets and prices, filter them, and replace the stored universe.

    Returns every asset with its ``excluded_reason`` (None for the chosen symbols)."""
    assets = source.fetch_assets()
    if assets.empty:
        raise DataError("the assets endpoint returned no assets; the stored universe is kept")
    candidates = assets[(assets["status"] == "active") & assets["tradable"].astype(bool)]
    prices = source.latest_prices(candidates["symbol"].tolist())
    frame = filter_universe(assets, prices, settings.universe)
    rows = [
        {
            "symbol": r["symbol"], "name": r.get("name") or "", "exchange": str(r["exchange"]),
            "asset_class": str(r.get("asset_class") or "us_equity"), "status": str(r["status"]),
            "tradable": bool(r["tradable"]),
            "price": None if pd.isna(r["price"]) else float(r["price"]),
            "excluded_reason": r["excluded_reason"], "refreshed_at": now,
        }
        for r in frame.to_dict("records")
    ]
    with db.session() as session:
        session.execute(delete(UniverseAssetRow))
        if rows:
            session.execute(UniverseAssetRow.__table__.insert(), rows)
    return frame


def stored_universe(db: Database, include_excluded: bool = False) -> pd.DataFrame:
    """The universe from the last refresh: symbol, name, exchange, price, excluded_reason."""
    stmt = select(UniverseAssetRow.symbol, UniverseAssetRow.name, UniverseAssetRow.exchange,
                  UniverseAssetRow.price, UniverseAssetRow.excluded_reason,
                  UniverseAssetRow.refreshed_at).order_by(UniverseAssetRow.symbol)
    if not include_excluded:
        stmt = stmt.where(UniverseAssetRow.excluded_reason.is_(None))
    with db.session() as session:
        rows = session.execute(stmt).all()
    return pd.DataFrame(rows, columns=["symbol", "name", "exchange", "price", "excluded_reason",
                                       "refreshed_at"])


def universe_symbols(settings: TradebotSettings, db: Database) -> list[str]:
    """The active universe: configured symbols, or the last Alpaca refresh (mode = alpaca)."""
    if settings.universe.mode == "configured":
        return list(settings.symbols)
    symbols = stored_universe(db)["symbol"].tolist()
    if not symbols:
        raise DataError("universe.mode is 'alpaca' but no universe is stored yet: run "
                        "'tradebot symbols refresh'")
    return symbols


def resolve_symbols(requested: Sequence[str] | None, settings: TradebotSettings, db: Database,
                    any_symbol: bool = False) -> list[str]:
    """Requested symbols checked against the active universe (all of it by default).

    ``any_symbol`` skips the check (crypto pairs such as BTC/USD are not in the universe)."""
    if any_symbol:
        if not requested:
            raise DataError("name the pairs to fetch, e.g. --symbols BTC/USD,ETH/USD")
        return [s.strip().upper() for s in requested]
    if settings.universe.mode == "configured":
        return select_symbols(requested, settings)
    universe = universe_symbols(settings, db)
    if not requested:
        return universe
    chosen = [s.strip().upper() for s in requested]
    unknown = sorted(set(chosen) - set(universe) - set(settings.symbols))
    if unknown:
        raise DataError(f"symbols not in the universe: {', '.join(unknown)} "
                        "(see 'tradebot symbols list')")
    return chosen
