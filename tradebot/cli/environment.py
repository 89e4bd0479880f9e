"""Process environment for Prefect and MLflow, set before either is imported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tradebot.kernel.home import Home

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Flow and task logs still go to the Prefect API (the UI shows them, tracebacks included);
    # only the terminal copy is silenced, so users see tradebot's own output and error lines.
    # Set PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO to see them in the terminal too.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "GIT_PYTHON_REFRESH": "quiet",
}


def prepare(home: Home) -> None:
    """Keep Prefect's own state in the home (unless the user chose otherwise) and quiet noise."""
    home.ensure()
    os.environ.setdefault("PREFECT_HOME", str(home.prefect_home))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


def ui_commands(home: Home) -> dict[str, str]:
    """Commands that open the MLflow and Prefect UIs on this home's results."""
    bin_dir = Path(sys.executable).parent
    return {
        "mlflow": f"{bin_dir / 'mlflow'} ui --backend-store-uri {home.mlflow_tracking_uri} "
        "--port 5000",
        "prefect": f"PREFECT_HOME={home.prefect_home} {bin_dir / 'prefect'} server start",
    }
