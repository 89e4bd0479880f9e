"""Engines, sessions and migrations for the project database (SQLite default, PostgreSQL too)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tradebot.kernel.errors import ConfigError


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: WAL and a busy timeout for SQLite, pre-ping for servers."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("database_url is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tradebot.kernel") / "migrations"))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version of tradebot."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Apply all pending migrations (idempotent)."""
    if current_revision(engine) == head_revision():
        return
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass
class Database:
    """The project database: one engine and its session factory, migrated on first use."""

    url: str

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.url)
        try:
            migrate(engine)
        except SQLAlchemyError as exc:
            backend = make_url(self.url).get_backend_name()
            raise ConfigError(
                f"cannot open the project database ({backend}): {type(exc).__name__}: "
                f"{str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}"
            ) from None
        return engine

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error (no partial writes)."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


UPSERT_CHUNK = 5_000


def upsert(
    session: Session, table: Table, rows: list[dict[str, Any]], keys: Sequence[str],
    update: Sequence[str] = (),
) -> int:
    """Insert rows; on a natural-key conflict keep the stored row (or update ``update`` columns).

    Works on SQLite and PostgreSQL (``INSERT ... ON CONFLICT``)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), UPSERT_CHUNK):
        stmt = insert(table)
        if update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        session.execute(stmt, rows[start : start + UPSERT_CHUNK])
    return len(rows)
