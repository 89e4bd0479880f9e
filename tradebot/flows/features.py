"""Feature flow: point-in-time feature rows for every stored bar."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task

from tradebot.flows.runtime import runtime
from tradebot.pipelines.dataset import build_features
from tradebot.pipelines.universe import select_symbols


@task(name="build-feature-rows")
def build_features_task(config_path: str | None, symbols: list[str] | None) -> dict[str, Any]:
    rt = runtime(config_path)
    chosen = select_symbols(symbols, rt.settings)
    summary = build_features(rt.db, rt.feature_store(), chosen, rt.now())
    return asdict(summary)


@flow(name="build-features")
def features_flow(config_path: str | None = None, symbols: list[str] | None = None) -> dict:
    """Compute and store feature rows and labels (idempotent)."""
    return build_features_task(config_path, symbols)
