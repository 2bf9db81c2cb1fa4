"""Load and faults: 1,000 sessions held at once, slow clients and slow name lookups that
starve no one, a backend killed mid-session, and no file descriptor left behind."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.wrap.harness import (
    GREETING,
    Running,
    connect,
    fd_count,
    read_all,
    read_until,
    rules,
    wait_until,
)
from tests.wrap.test_listener import config
from tests.wrap.test_lookup import TableResolver
from todokede.wrap.listener import WrapConfig

pytestmark = pytest.mark.usefixtures("event_loop_kind")


@pytest.fixture(autouse=True)
def enough_fds() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@pytest.mark.slow
def test_thousand_concurrent_sessions(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    baseline = fd_count()
    with Running(config(rd)) as run:
        socks = []
        try:
            for _ in range(1000):
                socks.append(connect(run.port))
            for s in socks:
                assert read_until(s, b"\r\n") == GREETING
            assert run.wrapper is not None
            assert run.wrapper.stats.active == 1000
            for i, s in enumerate(socks):
                s.sendall(f"ping {i}\n".encode())
            for i, s in enumerate(socks):
                assert read_until(s, b"\n") == f"ping {i}\n".encode()
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0, 30)
        assert run.wrapper.stats.granted == 1000
    wait_until(lambda: fd_count() <= baseline, 10)
    assert fd_count() == baseline


def test_slow_clients_and_lookups_starve_no_one(tmp_path: Path) -> None:
    # 127.0.0.3 can only be decided with its name, and its name server takes 1 s.
    rd = rules(
        tmp_path / "r",
        "in.echod: 127.0.0.1\nin.echod: .example\n",
        "ALL: ALL\n",
    )
    names = TableResolver({"127.0.0.3": ["three.example"]}, {"three.example": ["127.0.0.3"]}, 1)
    with Running(config(rd, refuse_delay=30), resolver=names) as run:
        idle = [connect(run.port, "127.0.0.1") for _ in range(200)]  # never send, never read
        held = [connect(run.port, "127.0.0.2") for _ in range(200)]  # refused, held 30 s
        slow = connect(run.port, "127.0.0.3")  # waits on its name lookup
        try:
            started = time.monotonic()
            with connect(run.port, "127.0.0.1", timeout=5) as s:
                assert read_until(s, b"\r\n") == GREETING
                s.sendall(b"x\n")
                assert read_until(s, b"\n") == b"x\n"
            fast = time.monotonic() - started
            assert read_until(slow, b"\r\n") == GREETING  # served once its name came back
            assert time.monotonic() - started > fast
            run.log.wait_for(r"connect from three\.example \(127\.0\.0\.3\)")
        finally:
            for s in [*idle, *held, slow]:
                s.close()


BACKEND = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); c.sendall(b"* OK test backend ready\\r\\n"); conns.append(c)  # never reads
"""


def test_backend_killed_mid_session(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    baseline = fd_count()
    backend = subprocess.Popen([sys.executable, "-c", BACKEND], stdout=subprocess.PIPE, text=True)
    try:
        assert backend.stdout is not None
        port = int(backend.stdout.readline())

        def make(_unused: int) -> WrapConfig:
            return config(rd)(port)

        with Running(make, backend=False) as run:
            clients = [connect(run.port) for _ in range(3)]
            for s in clients:
                assert read_until(s, b"\r\n") == GREETING
                s.sendall(b"data the backend will never read\n")
            time.sleep(0.1)  # let the data reach the backend's receive queue
            os.kill(backend.pid, signal.SIGKILL)
            backend.wait(10)
            for s in clients:
                assert read_all(s) == b""  # closed, not hung
                s.close()
            line = run.log.wait_for("lost")
            assert line.endswith(
                f"warning: connection to 127.0.0.1:{port} lost: Connection reset by peer"
                " (client 127.0.0.1)"
            )
            with connect(run.port) as s:  # and the next client hears why it gets nothing
                assert read_all(s) == b""
            run.log.wait_for(f"error: cannot connect to 127.0.0.1:{port}")
            wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)
    finally:
        if backend.poll() is None:
            backend.kill()
            backend.wait(10)
        if backend.stdout is not None:
            backend.stdout.close()
    wait_until(lambda: fd_count() <= baseline, 10)
    assert fd_count() == baseline


def test_client_reset_closes_backend(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    with Running(config(rd)) as run:
        s = connect(run.port)
        assert read_until(s, b"\r\n") == GREETING
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
        wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)
        wait_until(lambda: not run.backend.writers)
