"""Alembic environment: runs the migrations on the engine `cases.db.upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from cases.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through cases.db.upgrade (or `nonsite db upgrade`), which passes the engine")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
