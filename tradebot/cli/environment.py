"""Process environment for Prefect and MLflow, set before either is imported."""

from __future__ import annotations

import os

from tradebot.kernel.home import Home

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
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
    return {
        "mlflow": f"mlflow ui --backend-store-uri {home.mlflow_tracking_uri} --port 5000",
        "prefect": f"PREFECT_HOME={home.prefect_home} prefect server start",
    }
