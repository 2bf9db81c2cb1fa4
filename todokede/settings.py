"""Settings: a CLI flag beats a ``TODOKEDE_*`` environment variable beats the default.

Every ``TODOKEDE_*`` variable the product reads is read here, and only here:

- ``TODOKEDE_DB``: the center's database (a URL, or a path taken as an SQLite file);
- ``TODOKEDE_DOMAIN``: the center's domain, the namespace of exported incident ids;
- ``TODOKEDE_SECRET``: the key of the pages' CSRF tokens for visitors not signed in;
- ``TODOKEDE_TOKEN``: the API token ``report submit`` and the guard submit with;
- ``TODOKEDE_GUARD_CONFIG``: the guard's TOML file (read by its ``--config`` option).
"""

from __future__ import annotations

import os

DEFAULT_DB = "sqlite:///todokede.db"
DEFAULT_DOMAIN = "todokede.invalid"
DB_VAR = "TODOKEDE_DB"
GUARD_CONFIG_VAR = "TODOKEDE_GUARD_CONFIG"


def database_url(flag: str | None = None) -> str:
    """The center's database URL. A bare path is taken as an SQLite file."""
    value = flag or os.environ.get(DB_VAR) or DEFAULT_DB
    if "://" not in value:
        value = f"sqlite:///{value}"
    return value


def share_database_url(url: str) -> None:
    """Hand ``url`` to worker processes started from this one (they read ``TODOKEDE_DB``)."""
    os.environ[DB_VAR] = url


def domain(flag: str | None = None) -> str:
    """The center's domain, the namespace of its incident ids."""
    return flag or os.environ.get("TODOKEDE_DOMAIN") or DEFAULT_DOMAIN


def secret(flag: str | None = None) -> str | None:
    """The key of the pages' CSRF tokens; None: make a random one per process."""
    return flag or os.environ.get("TODOKEDE_SECRET") or None


def api_token() -> str:
    """The API token to submit with ('' if none is set)."""
    return os.environ.get("TODOKEDE_TOKEN", "").strip()
