"""Bring the service's database to the latest migration: `python -m subchange.store.migrate`.

worker.py does the same at start-up through `upgrade(url)`, so a new database gets its tables and
an existing one is upgraded. Each run is one transaction holding a lock (a PostgreSQL advisory
lock; SQLite's write lock, taken by BEGIN IMMEDIATE), so workers starting together wait for each
other and all but the first find nothing to do.

A database made before migrations existed (tables from `create_all`, no alembic_version) is
adopted: when it has every table and column of the baseline revision it is stamped with that
revision and upgraded from there. One that has only some of them is refused, not guessed at.

    python -m subchange.store.migrate                       upgrade to the latest revision
    python -m subchange.store.migrate current               print the database's revision
    python -m subchange.store.migrate downgrade REVISION    e.g. the previous id, or base
    python -m subchange.store.migrate revision -m MESSAGE   autogenerate a migration from the models
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from subchange.settings import ConfigurationError, get_settings
from subchange.store.db import normalise_url

log = logging.getLogger("subchange.migrate")  # the name log filters know

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before migrations existed
VERSION_TABLE = "alembic_version"
LOCK_KEY = 0x5C_4A_06E0  # pg_advisory_xact_lock key, private to this service's migrations

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


class MigrationError(Exception):
    """The database can't be migrated; the message says why and what to do."""


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None  # revision found; None: no migration history (new or adopted database)
    after: str | None
    applied: tuple[str, ...]  # revisions run, oldest first
    adopted: bool = False  # tables from before migrations, stamped BASELINE

    def describe(self) -> str:
        head = script_directory().get_current_head()
        at = f"{self.after} (latest)" if self.after == head else str(self.after)
        parts = []
        if self.adopted:
            parts.append(f"adopted the tables made before migrations as revision {BASELINE}")
        if self.applied:
            parts.append(f"applied {', '.join(self.applied)}; the database is now at {at}")
        elif self.after == self.before or self.adopted:
            parts.append(f"the database is at {at}: nothing to apply")
        else:
            parts.append(f"migrated from {self.before} to {at}")
        return "; ".join(parts)


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    config.attributes["url"] = url
    return config


def database_url(config: Config) -> str:
    """The URL env.py connects to when not handed a connection: the one given, or DATABASE_URL."""
    return config.attributes.get("url") or get_settings().database_url


def migration_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for migrations alone: no pool, and on SQLite a real transaction around DDL; its
    errors hide bound values, as the application's engine's do (subchange.store.db)."""
    try:
        parsed = sa.make_url(normalise_url(url) if isinstance(url, str) else url)
        if parsed.get_backend_name() != "sqlite":
            return sa.create_engine(parsed, poolclass=NullPool, hide_parameters=True)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, poolclass=NullPool, hide_parameters=True,
                                  connect_args={"timeout": 30})
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError, ValueError) as error:
        raise ConfigurationError(f"configuration error: DATABASE_URL: {error}") from None

    # pysqlite would commit before each DDL statement; emit BEGIN ourselves instead, IMMEDIATE so
    # the write lock is taken at once and a second migrator waits for the first.
    @sa.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:  # pragma: no cover - hook
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:  # pragma: no cover - hook
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def locked_connection(url: str | sa.URL) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the migration lock; committed on success."""
    engine = migration_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": LOCK_KEY})
            yield connection
    except sa_exc.OperationalError as error:
        raise MigrationError(f"database at DATABASE_URL {shown}: {error.orig}") from error
    finally:
        engine.dispose()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str | sa.URL, revision: str = "head") -> UpgradeResult:
    """Migrate the database at `url` to `revision` (the latest by default); logs what it did."""
    with locked_connection(url) as connection:
        before = current_revision(connection)
        adopted = before is None and _adopt_tables_made_before_migrations(connection)
        start = BASELINE if adopted else before
        try:
            command.upgrade(alembic_config(connection), revision)
        except CommandError as error:
            raise MigrationError(_explain(error, before)) from error
        after = current_revision(connection)
    result = UpgradeResult(before=before, after=after, applied=_between(start, after),
                           adopted=adopted)
    log.info("database migrations: %s", result.describe())
    return result


def downgrade(url: str | sa.URL, revision: str) -> UpgradeResult:
    """Undo migrations down to `revision` ("base": no tables left). Loses the data they held."""
    with locked_connection(url) as connection:
        before = current_revision(connection)
        try:
            command.downgrade(alembic_config(connection), revision)
        except CommandError as error:
            raise MigrationError(_explain(error, before)) from error
        after = current_revision(connection)
    result = UpgradeResult(before=before, after=after,
                           applied=tuple(reversed(_between(after, before))))
    log.info("database migrations: reverted %s; now at %s", ", ".join(result.applied) or "nothing",
             after or "base")
    return result


def new_revision(url: str | sa.URL, message: str) -> Path:
    """Autogenerate the next migration from the difference between the models and the database
    at `url`, which must be at the latest revision. Review the script before committing it."""
    script = script_directory()
    head = script.get_current_head()
    with locked_connection(url) as connection:
        if current_revision(connection) != head:
            raise MigrationError(f"the database at DATABASE_URL is at revision "
                                 f"{current_revision(connection)}, not the latest ({head}): "
                                 f"upgrade it first, the new migration is what differs from it")
        rev_id = "0001" if head is None else f"{int(head) + 1:04d}" if head.isdigit() else None
        written = command.revision(alembic_config(connection), message=message,
                                   autogenerate=True, rev_id=rev_id)
    assert isinstance(written, Script)  # one head: one new script
    return Path(written.path)


def _adopt_tables_made_before_migrations(connection: sa.Connection) -> bool:
    """Stamp BASELINE on a database whose tables `create_all` made; False if it has none."""
    existing = set(sa.inspect(connection).get_table_names()) - {VERSION_TABLE}
    if not existing:
        return False
    baseline = _baseline_schema()
    present = [table for table in baseline if table in existing]
    if not present:
        return False
    inspector = sa.inspect(connection)
    missing = [table for table in baseline if table not in existing]
    missing += [f"{table}.{column}" for table in present
                for column in sorted(baseline[table] - {c["name"]
                                                        for c in inspector.get_columns(table)})]
    if missing:
        raise MigrationError(
            "the database has some of the service's tables but no migration history, and lacks "
            f"{', '.join(missing)}, so it is not the schema of revision {BASELINE}: complete it by "
            f"hand, or start from an empty database, and migrate again")
    command.stamp(alembic_config(connection), BASELINE)
    return True


def _baseline_schema() -> dict[str, set[str]]:
    """Tables and columns of BASELINE, read from the migration itself run on a scratch SQLite."""
    engine = migration_engine("sqlite://")
    try:
        with engine.connect() as connection, connection.begin():
            command.upgrade(alembic_config(connection), BASELINE)
            inspector = sa.inspect(connection)
            return {table: {column["name"] for column in inspector.get_columns(table)}
                    for table in inspector.get_table_names() if table != VERSION_TABLE}
    finally:
        engine.dispose()


def _between(older: str | None, newer: str | None) -> tuple[str, ...]:
    """Revisions after `older` up to `newer`, oldest first."""
    if newer == older or newer is None:
        return ()
    scripts = script_directory().iterate_revisions(newer, older or "base")
    return tuple(reversed([s.revision for s in scripts]))


def _explain(error: CommandError, found: str | None) -> str:
    if found and found not in {s.revision for s in script_directory().walk_revisions()}:
        return (f"the database is at revision {found}, which this version of the service does "
                f"not know: it was migrated by a newer version; deploy that one (or downgrade "
                f"the database with it first)")
    return str(error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subchange.store.migrate",
                                     description="Migrate the database at DATABASE_URL.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("upgrade", help="to the latest revision (the default)")
    commands.add_parser("current", help="print the database's revision")
    down = commands.add_parser("downgrade", help="undo migrations down to REVISION")
    down.add_argument("revision", help="a revision id, or base (drops every table)")
    new = commands.add_parser("revision", help="autogenerate a migration from the models")
    new.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        url = get_settings().database_url
        if args.command == "current":
            with locked_connection(url) as connection:
                print(current_revision(connection) or "base (no migration applied)")
        elif args.command == "downgrade":
            result = downgrade(url, args.revision)
            print(f"reverted {', '.join(result.applied) or 'nothing'}; "
                  f"the database is now at {result.after or 'base'}")
        elif args.command == "revision":
            print(f"wrote {new_revision(url, args.message)}: review it, then commit it")
        else:
            print(upgrade(url).describe())
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG
    except MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
