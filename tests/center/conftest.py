"""Fixtures of the center's tests.

- ``pg_server`` (session): a real PostgreSQL server (Debian's binaries: initdb into a temp
  dir as the ``postgres`` user when run as root), listening on 127.0.0.1 on a free port,
  stopped at the end. Skipped, with the reason, when PostgreSQL is not installed.
- ``pg_url``: a fresh, empty database on that server for one test.
- ``store``: a ``Store`` on SQLite and on PostgreSQL (every test using it runs on both).
- ``client``: a test client of ``create_app(store)``; ``tokens``: one user per role.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from todokede.center.store import Store

with warnings.catch_warnings():
    # Starlette asks for httpx2 at import time; httpx is what is installed and works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as TestClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    bindir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[PgServer]:
    """A throw-away PostgreSQL server on 127.0.0.1 (also used by bench/center.py)."""
    bindir = _pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin)")
    base = Path(tempfile.mkdtemp(prefix="todokede-pg-"))
    base.chmod(0o755)
    data, sock, logfile = base / "data", base / "sock", base / "server.log"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as the postgres system user.
        for path in (base, sock):
            shutil.chown(path, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = (
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [*pg_ctl, "-l", str(logfile), "-w", "-t", "60", "-o", options, "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        yield PgServer("127.0.0.1", port, "postgres", bindir)
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "-w", "-t", "60", "stop"],
            capture_output=True, timeout=90,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    need(str(bindir / "initdb") if bindir else "initdb")
    if os.geteuid() == 0:
        need("runuser")
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = f"host={pg_server.host} port={pg_server.port} user={pg_server.user} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(name)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for one test: an SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'center.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A ``Store`` on each backend."""
    s = Store.open(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def tokens(store: Store) -> dict[str, str]:
    """API tokens: two reporters (alice, bob), an analyst and an admin."""
    return {
        "alice": store.add_user("alice", "reporter"),
        "bob": store.add_user("bob", "reporter"),
        "analyst": store.add_user("ana", "analyst"),
        "admin": store.add_user("root", "admin"),
    }


@pytest.fixture
def client(store: Store) -> Iterator[Any]:
    """A test client of ``create_app(store)``: server errors come back as 500s, so tests
    can assert there are none."""
    from todokede.center.web.app import create_app

    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
