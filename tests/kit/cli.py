"""Run the real ``tradebot`` command line in a subprocess with an isolated environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tradebot.cli.main ARGS`` in ``tmp_path`` with an isolated environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("TRADEBOT_", "PREFECT_", "MLFLOW_"))
    }
    clean.update(
        TRADEBOT_HOME=str(tmp_path / "home"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PYTHONIOENCODING="utf-8",
    )
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tradebot.cli.main", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
