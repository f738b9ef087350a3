"""Alembic migrations of the service's database; `subchange.store.migrate` runs them."""
