"""Feature flow: point-in-time feature rows for every stored bar."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from tradebot.flows.runtime import runtime
from tradebot.pipelines.checks import check_lookahead, check_parity, checks_markdown
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


@task(name="feature-checks")
def feature_checks_task(config_path: str | None, symbols: list[str] | None,
                        samples: int, seed: int) -> dict[str, dict[str, Any]]:
    rt = runtime(config_path)
    chosen = select_symbols(symbols, rt.settings)
    store = rt.feature_store()
    reports = [check_lookahead(rt.db, store, chosen, samples, seed),
               check_parity(rt.db, store, chosen, samples, seed)]
    create_markdown_artifact(markdown=checks_markdown(reports), key="feature-checks",
                             description=f"Lookahead and parity of feature set {store.version}")
    return {r.check: r.summary() for r in reports}


@flow(name="feature-checks")
def feature_checks_flow(config_path: str | None = None, symbols: list[str] | None = None,
                        samples: int = 10, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Lookahead and parity checks on the stored data (see ``tradebot check``)."""
    return feature_checks_task(config_path, symbols, samples, seed)
