"""Alembic migrations of the center's database, bundled with the package."""
