"""State shared by the CLI's command modules: the global --config and the runtime it builds.

It lives in its own module so ``python -m tradebot.cli.main`` (which runs main as
``__main__``) and the sub-command modules see the same state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradebot.kernel.settings import load_settings


class _State:
    config: Path | None = None


state = _State()


def _config_arg() -> str | None:
    return str(state.config) if state.config else None


def _runtime() -> Any:
    """Validated settings, home prepared, Prefect/MLflow environment set (then imported)."""
    from tradebot.cli.environment import prepare
    from tradebot.kernel.home import Home

    settings = load_settings(state.config)
    prepare(Home.from_settings(settings))
    from tradebot.flows.runtime import runtime

    return runtime(_config_arg())
