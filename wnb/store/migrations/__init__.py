"""Alembic migrations of wnb's schema, run by `wnb db upgrade`, on `wnb serve` start and when a database is opened."""
