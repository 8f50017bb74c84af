"""Connecting to the case database and bringing its schema up to date.

The embedded default is a SQLite file under `var/`; deployments point
`NONSITE_DATABASE_URL` at PostgreSQL (`postgresql+psycopg://user@host/db`). The schema
is created and changed only by the Alembic migrations in `cases/migrations`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cases.errors import DatabaseError

DEFAULT_URL = "sqlite:///var/nonsite.db"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else `NONSITE_DATABASE_URL`, else the embedded SQLite file."""
    return url or os.environ.get("NONSITE_DATABASE_URL") or DEFAULT_URL


def mask_credentials(url: str) -> str:
    """The URL with any user and password replaced, for messages and logs."""
    return re.sub(r"://[^@/]*@", "://***@", url)


def make_engine(url: str | None = None, **options: Any) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, a busy timeout and write-locking transactions."""
    url = database_url(url)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a bad port only raises when read
    except (ArgumentError, ValueError) as e:
        raise DatabaseError(f"not a database URL: {mask_credentials(url)!r}") from e
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, begin transactions, so that each can take the write lock
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: a writer waits for the lock up front instead of failing on upgrade mid-transaction
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("cases") / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision`; a database already there is left as it is."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as e:
        raise DatabaseError(f"cannot migrate the case database at {engine.url!r}: {e.orig}") from e


def check_schema(engine: Engine) -> None:
    """Refuse to run against a database the migrations have not brought up to date."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            has_tables = bool(inspect(connection).get_table_names())
    except OperationalError as e:
        raise DatabaseError(f"cannot reach the case database at {engine.url!r}: {e.orig}") from e
    if current != head:
        state = f"at revision {current}" if current else ("unversioned" if has_tables else "empty")
        raise DatabaseError(f"the case database is {state}, not at {head}: run `nonsite db upgrade`")


class Database:
    """An engine and its session factory, migrated on open."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        else:
            check_schema(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
