"""What a flow run needs: settings, home, database and market clock, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradebot.features.feature_store import FeatureStore
from tradebot.features.finbert import make_scorer
from tradebot.features.sentiment import SentimentScorer
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.home import Home
from tradebot.kernel.settings import TradebotSettings, load_settings


@dataclass(frozen=True)
class Runtime:
    settings: TradebotSettings
    home: Home
    db: Database
    clock: MarketClock

    @staticmethod
    def now() -> datetime:
        """Wall-clock time for bookkeeping (ingestion and record times), never for features."""
        return datetime.now(UTC)

    def scorer(self) -> SentimentScorer:
        """The configured sentiment scorer (FinBERT, or the lexicon when it cannot load);
        loaded once per process."""
        return make_scorer(self.settings.sentiment)

    def feature_store(self) -> FeatureStore:
        """Feature rows built from the texts the configured scorer scored."""
        return FeatureStore(self.settings, self.clock, self.scorer().name)


_RUNTIMES: dict[str, Runtime] = {}


def _key(settings: TradebotSettings) -> str:
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    return f"{settings.model_dump_json()}|{url}"


def runtime(config_path: str | None = None) -> Runtime:
    """The runtime for a config file (or the default lookup); cached per effective settings."""
    settings = load_settings(Path(config_path) if config_path else None)
    key = _key(settings)
    if key not in _RUNTIMES:
        home = Home.from_settings(settings)
        home.ensure()
        clock = MarketClock(settings.market.calendar, settings.market.bar_minutes)
        _RUNTIMES[key] = Runtime(settings, home, Database(home.database_url), clock)
    return _RUNTIMES[key]


def reset_runtimes() -> None:
    """Forget cached runtimes and close their engines (tests switch homes in one process)."""
    for rt in _RUNTIMES.values():
        rt.db.dispose()
    _RUNTIMES.clear()
