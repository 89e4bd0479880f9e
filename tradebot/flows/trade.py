"""Trade flow: one cycle at a decision time (live: the latest 15-minute boundary)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from prefect import flow, task

from tradebot.flows.runtime import Runtime, runtime
from tradebot.kernel.clock import WallClock
from tradebot.models.registry import (
    ChampionCache,
    configure,
    pyfunc_predictor,
    trained_feature_set,
)
from tradebot.pipelines import ingest_jobs
from tradebot.pipelines.notify import Notifier
from tradebot.pipelines.trade import require_feature_set, run_trade_cycle
from tradebot.serving.live import LiveBroker, open_alpaca

BrokerName = Literal["sim", "alpaca"]
_champions = ChampionCache()
_live: dict[str, LiveBroker] = {}


def latest_decision_time(rt: Runtime) -> datetime:
    step = rt.settings.market.bar_minutes
    now = rt.now()
    return now - timedelta(
        minutes=now.minute % step, seconds=now.second, microseconds=now.microsecond
    )


def broker_name(rt: Runtime, broker: str | None) -> BrokerName:
    """The broker to use: the argument, else the config's ``broker.kind``."""
    chosen = broker or ("alpaca" if rt.settings.broker.kind == "alpaca" else "sim")
    if chosen not in ("sim", "alpaca"):
        raise ValueError(f"unknown broker {chosen!r}: choose sim or alpaca")
    return chosen  # type: ignore[return-value]


def live_broker(rt: Runtime) -> LiveBroker:
    """The process's Alpaca connection for this runtime (kept between cycles)."""
    key = str(rt.home.root)
    if key not in _live:
        _live[key] = LiveBroker(open_alpaca(rt.settings), rt.settings, rt.clock)
    return _live[key]


@task(name="refresh-bars")
def refresh_bars_task(config_path: str | None, ts: datetime) -> dict[str, Any] | None:
    """Fetch the bars closed since the newest stored one from Alpaca's market data."""
    rt = runtime(config_path)
    ctx = ingest_jobs.IngestContext(rt.settings, rt.db, rt.clock, rt.home.root, rt.now)
    counts = ingest_jobs.refresh_latest(ctx, "alpaca", list(rt.settings.symbols), ts)
    return None if counts is None else counts.as_dict()


@task(name="trade-cycle")
def trade_cycle_task(config_path: str | None, ts: datetime,
                     broker: BrokerName = "sim") -> dict[str, Any]:
    rt = runtime(config_path)
    configure(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts, rt.settings.model.experiment)
    model, info = _champions.get(rt.settings.model.registered_name)

    store = rt.feature_store()
    require_feature_set(store, trained_feature_set(model), info.version)
    live = live_broker(rt) if broker == "alpaca" else None
    notifier = Notifier.from_settings(rt.settings.notifications)
    result = run_trade_cycle(rt.db, store, ts, pyfunc_predictor(model), info.version,
                             WallClock(), live, notifier.send)
    return asdict(result)


@flow(name="trade-cycle")
def trade_flow(config_path: str | None = None, ts: datetime | None = None,
               broker: str | None = None, refresh: bool | None = None) -> dict[str, Any]:
    """Run the trade cycle at ``ts`` (default: the latest decision boundary, wall clock) with
    the simulated broker or Alpaca (default: the config's ``broker.kind``). ``refresh``
    first fetches the newest bars from Alpaca (default: on with Alpaca, off with sim)."""
    rt = runtime(config_path)
    name = broker_name(rt, broker)
    when = ts or latest_decision_time(rt)
    if refresh if refresh is not None else name == "alpaca":
        refresh_bars_task(config_path, when)
    return trade_cycle_task(config_path, when, name)
