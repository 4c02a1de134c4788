"""Alembic migrations of the store's schema, run by `services.store.migrate`."""
