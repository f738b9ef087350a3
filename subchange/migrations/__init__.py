"""Alembic migrations of the service's database; `subchange.migrate` runs them."""
