"""Session-wide Prefect test harness (a real, temporary Prefect server and database)."""

from __future__ import annotations

import os

import pytest

from tests.kit.databases import database_url, postgres_url  # noqa: F401  (fixtures)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
