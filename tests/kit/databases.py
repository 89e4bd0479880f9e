"""Real databases for tests: a SQLite file, and a fresh PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    return os.environ.get("TRADEBOT_TEST_DATABASE_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped at the end of the session."""
    admin = make_url(pg_admin_url())
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={
            "connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL NOT TESTED: no server reachable at {admin.render_as_string()} "
                    f"({type(exc).__name__}); set TRADEBOT_TEST_DATABASE_URL")
    name = f"tradebot_test_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """Each test using this runs on both backends (PostgreSQL in its own schema-fresh DB)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tradebot.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    # one database per session; reset the schema for each test
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield base
