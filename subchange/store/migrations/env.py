"""Alembic environment: migrations target SQLModel.metadata (the tables of subchange.store.tables).

`subchange.store.migrate` hands over a connection that already holds the migration lock inside one
transaction; run any other way, the URL is the service's DATABASE_URL.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from subchange.store import tables  # noqa: F401  (registers the tables on the metadata)
from subchange.store.migrate import database_url, locked_connection

config = context.config


def configure(**options) -> None:
    # Batch mode lets a migration alter columns on SQLite too (by copying the table); on
    # PostgreSQL the same script runs plain ALTER statements.
    context.configure(target_metadata=SQLModel.metadata, render_as_batch=True,
                      compare_type=True, **options)


def run_migrations_offline() -> None:
    configure(url=database_url(config), literal_binds=True,
              dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection=connection)
        with context.begin_transaction():  # inside the caller's transaction: a no-op
            context.run_migrations()
        return
    with locked_connection(database_url(config)) as connection:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
