"""Options several commands share, declared once."""

from __future__ import annotations

import click

from todokede import settings

db_option = click.option(
    "--db",
    "db",
    metavar="URL",
    default=None,
    help=(
        f"Database URL or SQLite file (default: ${settings.DB_VAR}, "
        f"else {settings.DEFAULT_DB.removeprefix('sqlite:///')})."
    ),
)
