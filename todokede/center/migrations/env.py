"""Alembic environment: run programmatically by ``Store.open`` on a connection it passes in
``config.attributes["connection"]`` (so in-memory SQLite migrates the same database)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from todokede.center.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("todokede migrations run from Store.open, with a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
