"""The schema is Alembic's: migrations and models agree, and a database that is not up to
date, not reachable or not a database URL is refused with a reason."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from cases.db import Database, make_engine, upgrade
from cases.errors import DatabaseError
from cases.models import Base, User


def test_migrations_build_exactly_the_models_schema(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrading_again_changes_nothing(database):
    before = sorted(inspect(database.engine).get_table_names())
    upgrade(database.engine)
    assert sorted(inspect(database.engine).get_table_names()) == before
    assert {"cases", "transitions", "deadlines", "case_evidence", "alembic_version"} <= set(before)


def test_an_unmigrated_database_is_refused_when_migration_is_off(tmp_path):
    with pytest.raises(DatabaseError, match=r"empty, not at \d{4}: run `nonsite db upgrade`"):
        Database(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)


def test_a_migrated_database_opens_without_migrating(tmp_path):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    Database(url).close()
    Database(url, migrate=False).close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot migrate the case database"),
    ],
)
def test_bad_database_urls_are_named(url, message):
    with pytest.raises(DatabaseError, match=message):
        Database(url)


def test_sqlite_folder_is_created(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'deep' / 'cases.db'}")
    upgrade(engine)
    assert (tmp_path / "var" / "deep" / "cases.db").is_file()


def test_naive_times_are_refused(database):
    with pytest.raises(Exception, match="timezone-aware"), database.session() as s:
        s.add(User(username="x", display_name="x", role="officer", active=True, created_at=datetime(2025, 1, 1)))
        s.flush()


@pytest.mark.parametrize("url", ["postgres ql://ops:s3cret@db/cases", "postgresql://ops:s3cret@db:54x/cases"])
def test_a_malformed_url_is_refused_without_its_password(url):
    with pytest.raises(DatabaseError, match=r"not a database URL") as caught:
        Database(url)
    assert "s3cret" not in str(caught.value) and "***@" in str(caught.value)
