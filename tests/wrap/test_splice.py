"""The splice on plain sockets: bulk data both ways with flow control, a client that does
not read for a while, a backend that resets after its EOF, a slow backend connect, a
backend given by name, a wildcard listener, and decisions cached across connections."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.wrap.harness import (
    GREETING,
    Running,
    connect,
    full_backlog,
    greeter,
    read_all,
    read_until,
    rules,
    wait_until,
)
from tests.wrap.test_listener import config
from todokede.wrap.listener import WrapConfig

pytestmark = pytest.mark.usefixtures("event_loop_kind")

BULK = 8 * 1024 * 1024


def _pattern(size: int) -> bytes:
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


def test_bulk_both_ways_at_once(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    data = _pattern(BULK)
    with Running(config(rd)) as run, connect(run.port) as s:
        assert read_until(s, b"\r\n") == GREETING
        got = bytearray()

        def reader() -> None:
            while len(got) < len(data):
                chunk = s.recv(1 << 20)
                if not chunk:
                    return
                got.extend(chunk)

        thread = threading.Thread(target=reader)
        thread.start()
        s.sendall(data)
        thread.join(60)
        assert bytes(got) == data


def test_client_that_stops_reading_gets_everything_later(tmp_path: Path) -> None:
    # The echo backend's answers pile up: the wrapper stops reading from it (and then from
    # the client) instead of buffering without bound; nothing is lost once the client reads.
    rd = rules(tmp_path / "r")
    data = _pattern(BULK // 2)
    with Running(config(rd)) as run, connect(run.port) as s:
        assert read_until(s, b"\r\n") == GREETING
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        time.sleep(0.5)  # long enough for every buffer on the way to fill up
        assert run.wrapper is not None
        (client,) = run.wrapper.clients
        assert client.backend is not None
        assert len(client.side.out) <= 2 * 65536  # one recv's worth at most, per direction
        got = b""
        while len(got) < len(data):
            chunk = s.recv(1 << 20)
            assert chunk
            got += chunk
        sender.join(30)
        assert got == data


def test_backend_reset_after_its_eof_is_noticed(tmp_path: Path) -> None:
    # The backend has closed; what the client sends then draws a reset. The wrapper no
    # longer reads that socket, but the reset must still end the session (and not leave
    # the wrapper polling a dead socket).
    rd = rules(tmp_path / "r")
    with greeter() as port:

        def make(_unused: int) -> WrapConfig:
            return config(rd)(port)

        with Running(make, backend=False) as run, connect(run.port) as s:
            assert read_all(s) == GREETING  # greeting, then the backend's EOF passed on
            s.sendall(b"too late\n")
            # Linux reports the reset of a socket past its EOF as EPIPE.
            run.log.wait_for(
                rf"warning: connection to 127\.0\.0\.1:{port} lost:"
                r" (Broken pipe|Connection reset by peer) \(client 127\.0\.0\.1\)$"
            )
            wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)


def test_slow_backend_connect_completes(tmp_path: Path) -> None:
    # The backend's accept queue is full, so the connect is still in progress when the
    # wrapper asks again; it completes once there is room (the kernel resends the SYN).
    rd = rules(tmp_path / "r")
    accepted: list[socket.socket] = []
    with full_backlog() as (backend, fillers):
        port = backend.getsockname()[1]
        filler_ports = {f.getsockname()[1] for f in fillers}

        def make(_unused: int) -> WrapConfig:
            return config(rd, connect_timeout=60)(port)

        try:
            with Running(make, backend=False) as run, connect(run.port) as s:
                run.log.wait_for("connect from")
                assert run.wrapper is not None
                (client,) = run.wrapper.clients
                assert client.connecting is not None  # in progress, not failed
                for f in fillers:
                    f.close()
                backend.settimeout(30)
                while True:
                    conn, peer = backend.accept()
                    accepted.append(conn)
                    if peer[1] not in filler_ports:
                        break
                conn.sendall(GREETING)
                assert read_until(s, b"\r\n") == GREETING
                s.sendall(b"ping\n")
                assert conn.recv(64) == b"ping\n"
        finally:
            for sock in accepted:
                sock.close()


def test_backend_given_as_a_name(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")

    def make(port: int) -> WrapConfig:
        cfg = config(rd)(port)
        cfg.backend = ("localhost", port)  # resolved for each connection
        return cfg

    with Running(make) as run, connect(run.port) as s:
        assert read_until(s, b"\r\n") == GREETING


def test_wildcard_listener_knows_the_server_address(tmp_path: Path) -> None:
    # daemon@host patterns match the address the client connected to.
    rd = rules(tmp_path / "r", "in.echod@127.0.0.1: ALL\n", "ALL: ALL\n")
    with Running(config(rd, listen=[("0.0.0.0", 0)])) as run:
        with connect(run.port, host="127.0.0.1") as s:
            assert read_until(s, b"\r\n") == GREETING
        with connect(run.port, host="127.0.0.2") as s:
            assert read_all(s) == b""
        run.log.wait_for("refused")
        assert run.log.normalised() == [
            "<30>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)",
            "<28>TS in.echod[PID]: refused connect from 127.0.0.1 (127.0.0.1)",
        ]


def test_cached_grant_is_dropped_when_the_rules_change(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    with Running(config(rd)) as run:
        for _ in range(3):  # the second and third come from the decision cache
            with connect(run.port) as s:
                assert read_until(s, b"\r\n") == GREETING
        (rd / "hosts.allow").write_text("")
        later = time.time() + 5  # a new mtime even on coarse-grained file systems
        os.utime(rd / "hosts.allow", (later, later))
        with connect(run.port) as s:
            assert read_all(s) == b""
        run.log.wait_for("refused")
        assert run.log.normalised()[-1] == (
            "<28>TS in.echod[PID]: refused connect from 127.0.0.1 (127.0.0.1)"
        )


def test_socket_kept_by_an_aclexec_child_leaves_the_poller(tmp_path: Path) -> None:
    # The aclexec command leaves a child behind that holds the connection open. Closing
    # our socket then does not take it out of the epoll set by itself; if it stayed, its
    # EOF would be reported again and again.
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1 : aclexec sleep 2 &\n", "ALL: ALL\n")
    with greeter() as port:

        def make(_unused: int) -> WrapConfig:
            return config(rd, allow_commands=True)(port)

        with Running(make, backend=False) as run:
            with connect(run.port) as s:
                assert read_all(s) == GREETING
            wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)
            assert run.wrapper is not None
            assert run.wrapper.poller.epoll.poll(0) == []
