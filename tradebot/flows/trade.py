"""Trade flow: one cycle at a decision time (live: the latest 15-minute boundary)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, task

from tradebot.flows.runtime import Runtime, runtime
from tradebot.kernel.clock import WallClock
from tradebot.models.registry import (
    ChampionCache,
    configure,
    pyfunc_predictor,
    trained_feature_set,
)
from tradebot.pipelines.trade import require_feature_set, run_trade_cycle

_champions = ChampionCache()


def latest_decision_time(rt: Runtime) -> datetime:
    step = rt.settings.market.bar_minutes
    now = rt.now()
    return now - timedelta(
        minutes=now.minute % step, seconds=now.second, microseconds=now.microsecond
    )


@task(name="trade-cycle")
def trade_cycle_task(config_path: str | None, ts: datetime) -> dict[str, Any]:
    rt = runtime(config_path)
    configure(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts, rt.settings.model.experiment)
    model, info = _champions.get(rt.settings.model.registered_name)

    store = rt.feature_store()
    require_feature_set(store, trained_feature_set(model), info.version)
    result = run_trade_cycle(rt.db, store, ts, pyfunc_predictor(model), info.version,
                             WallClock())
    return asdict(result)


@flow(name="trade-cycle")
def trade_flow(config_path: str | None = None, ts: datetime | None = None) -> dict[str, Any]:
    """Run the trade cycle at ``ts`` (default: the latest decision boundary, wall clock)."""
    rt = runtime(config_path)
    return trade_cycle_task(config_path, ts or latest_decision_time(rt))
