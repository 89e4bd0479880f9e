"""The live broker of a trade cycle: Alpaca behind the paper/live gate, its clock cross-check
and the reconciliation that runs before every cycle."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import TradebotSettings
from tradebot.serving.book import Book
from tradebot.serving.brokers.alpaca import AlpacaBroker, AlpacaTrading
from tradebot.serving.reconcile import Difference, reconcile_alpaca

log = logging.getLogger(__name__)


def open_alpaca(settings: TradebotSettings) -> AlpacaTrading:
    """The Alpaca account to trade: paper unless ``broker.paper = false`` in the config AND
    ``TRADEBOT_LIVE_TRADING=true`` in the environment both ask for live orders."""
    paper = settings.broker.paper
    if not paper and not settings.live_trading:
        raise ConfigError(
            "broker.paper = false asks for live trading but TRADEBOT_LIVE_TRADING is not true: "
            "refusing to place live orders (set both to trade live, or broker.paper = true)")
    if settings.live_trading and paper:
        log.warning("TRADEBOT_LIVE_TRADING is true but broker.paper = true: trading on paper")
    live = not paper and settings.live_trading
    if live:
        log.warning("LIVE TRADING: orders go to %s with real money", settings.broker.live_url)
    return AlpacaTrading(settings.sources.alpaca, settings.sources.http, live=live,
                         live_url=settings.broker.live_url)


class LiveBroker:
    """Alpaca for the live trade cycle."""

    def __init__(self, trading: AlpacaTrading, settings: TradebotSettings,
                 clock: MarketClock) -> None:
        self.trading, self.settings, self.clock = trading, settings, clock
        self.last_differences: list[Difference] = []

    @property
    def name(self) -> str:
        return "alpaca-live" if self.trading.live else "alpaca-paper"

    def refusal(self, ts: datetime, now: datetime) -> str:
        """Why no cycle may run at ``ts`` now ('' when it may): a real broker only trades at
        the current decision time, and only when its own clock agrees the market is open."""
        step = timedelta(minutes=self.settings.market.bar_minutes)
        if not ts - timedelta(minutes=1) <= now < ts + step:
            return (f"{self.name} trades only at the current decision time; "
                    f"{ts.isoformat()} is not it (now {now.isoformat()}): replay past times "
                    "with the simulated broker")
        if not self.trading.is_open():
            return (f"the NYSE calendar is open at {ts.isoformat()} but Alpaca's clock says the "
                    "market is closed: nothing traded")
        return ""

    def reconcile(self, session: Session, now: datetime) -> list[Difference]:
        """Reconcile the ledger with Alpaca (orders of the last ``broker.reconcile_days``)."""
        since = now - timedelta(days=self.settings.broker.reconcile_days)
        initial = Decimal(str(self.settings.broker.initial_cash))
        self.last_differences = reconcile_alpaca(session, self.trading, now, since,
                                                 self.settings.strategy.name, initial)
        for diff in self.last_differences:
            log.warning("reconciliation: %s %s %s ledger=%s broker=%s: %s", diff.kind,
                        diff.symbol or "", diff.client_order_id or "", diff.ledger_value,
                        diff.broker_value, diff.action)
        return self.last_differences

    def broker(self, book: Book) -> AlpacaBroker:
        return AlpacaBroker(self.trading, book.positions(), book.open_orders())
