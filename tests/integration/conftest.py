"""Session-wide Prefect test harness (a real, temporary Prefect server and database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.kit.config import write_tiny_config
from tests.kit.databases import database_url, postgres_url  # noqa: F401  (fixtures)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
WIDE = {"COLUMNS": "200"}  # keep rich from wrapping the commands tests look for


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory, prefect_server):
    """Run the demo once per test session on a tiny config; yield (config path, first demo
    output). Tests that use it may add cycles but must not change what the demo recorded."""
    directory = tmp_path_factory.mktemp("demo")
    saved = {k: v for k, v in os.environ.items() if k.startswith("TRADEBOT_")}
    for key in saved:
        del os.environ[key]
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        config = write_tiny_config(directory)
        from tradebot.cli.main import app

        result = CliRunner().invoke(app, ["--config", str(config), "demo"], env=WIDE)
        assert result.exit_code == 0, result.output + repr(result.exception)
        yield config, result.output
    finally:
        os.chdir(cwd)
        os.environ.update(saved)
