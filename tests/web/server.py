"""A real center on a free loopback port: ``todokede serve`` as tests run it (uvicorn in a
thread over a temporary SQLite file), plus a second tiny server playing a hostile site."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from todokede.center.store import Store
from todokede.center.web.app import create_app

PASSWORDS = {
    "alice": ("reporter", "alice-password-1"),
    "bob": ("reporter", "bob-password-1"),
    "carol": ("reporter", "carol-password-1"),
    "ana": ("analyst", "ana-password-1"),
}


@dataclass
class Live:
    url: str
    store: Store


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yields its base URL."""
    sock = _bound()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def next_month_start() -> date:
    """The first day of next month. The test center's calendar is set there, so the month
    its reports are received in (today's) has closed and can be published."""
    return (datetime.now(UTC).date().replace(day=1) + timedelta(days=32)).replace(day=1)


@contextmanager
def center(tmp: Path, today: Callable[[], date] | None = next_month_start) -> Iterator[Live]:
    store = Store.open(f"sqlite:///{tmp / 'center.db'}")
    try:
        for name, (role, password) in PASSWORDS.items():
            store.add_user(name, role, password)
        with serve(create_app(store, today=today)) as url:
            yield Live(url, store)
    finally:
        store.close()
