"""Settings: a CLI flag beats a ``TODOKEDE_*`` environment variable beats the default."""

from __future__ import annotations

import os

DEFAULT_DB = "sqlite:///todokede.db"


def database_url(flag: str | None = None) -> str:
    """The center's database URL. A bare path is taken as an SQLite file."""
    value = flag or os.environ.get("TODOKEDE_DB") or DEFAULT_DB
    if "://" not in value:
        value = f"sqlite:///{value}"
    return value
