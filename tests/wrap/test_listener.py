"""The listener on live loopback connections: decide, log, proxy or refuse; options;
limits; reloads; shutdown. The backend is a small asyncio echo server (Dovecot is in
test_dovecot.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.wrap.harness import (
    GREETING,
    Running,
    connect,
    full_backlog,
    read_all,
    read_until,
    rules,
    wait_until,
)
from todokede.wrap.listener import WrapConfig

pytestmark = pytest.mark.usefixtures("event_loop_kind")


def config(rules_dir: Path, **kw: object) -> Callable[[int], WrapConfig]:
    """A WrapConfig factory for Running: backend port in, config out."""

    def make(port: int) -> WrapConfig:
        settings: dict[str, Any] = {  # the fields' several types
            "backend": ("127.0.0.1", port),
            "daemon": "in.echod",
            "rules_dir": rules_dir,
            "listen": [("127.0.0.1", 0)],
            "refuse_delay": 0.05,
        }
        settings.update(kw)
        return WrapConfig(**settings)

    return make


def test_granted_proxied_and_refused_logged(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    with Running(config(rd)) as run:
        with connect(run.port, "127.0.0.1") as s:
            assert read_until(s, b"\r\n") == GREETING
            s.sendall(b"a1 NOOP\r\n")
            assert read_until(s, b"\r\n") == b"a1 NOOP\r\n"
            s.shutdown(socket.SHUT_WR)  # half-close passes through; the echo ends
            assert read_all(s) == b""
        with connect(run.port, "127.0.0.2") as s:
            assert read_all(s) == b""
        run.log.wait_for("refused connect")
        assert run.log.normalised() == [
            "<30>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)",
            "<28>TS in.echod[PID]: refused connect from 127.0.0.2 (127.0.0.2)",
        ]
        assert run.wrapper is not None
        assert (run.wrapper.stats.granted, run.wrapper.stats.refused) == (1, 1)


def test_refused_client_is_held(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "", "ALL: 127.0.0.2\n")
    with Running(config(rd, refuse_delay=0.6)) as run:
        started = time.monotonic()
        with connect(run.port, "127.0.0.2") as s:
            assert read_all(s) == b""
        assert time.monotonic() - started >= 0.6


def test_ipv6(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    rd = rules(tmp_path / "r", "in.echod: [::1]\n", "ALL: ALL\n")
    with Running(config(rd, listen=[("::1", 0)])) as run:
        with connect(run.port, "::1") as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == ["<30>TS in.echod[PID]: connect from ::1 (::1)"]


def test_twist_message_without_commands(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", 'in.echod: 127.0.0.2 : twist /bin/echo "421 go away %a (%d)"\n')
    with Running(config(rd)) as run:
        with connect(run.port, "127.0.0.2") as s:
            assert read_all(s) == b"421 go away 127.0.0.2 (in.echod)\n"
        run.log.wait_for("twist")
        assert run.log.normalised() == [
            '<28>TS in.echod[PID]: twist 127.0.0.2 to /bin/echo "421 go away 127.0.0.2 (in.echod)"'
        ]


def test_twist_command_needs_allow_commands(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    rd = rules(tmp_path / "r", f"in.echod: ALL : twist /bin/touch {marker}\n")
    with Running(config(rd)) as run:
        with connect(run.port) as s:
            assert read_all(s) == b""
        run.log.wait_for("command not run")
    assert not marker.exists()


def test_twist_runs_shell_with_allow_commands(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: ALL : twist /bin/sh -c 'read x; echo got $x'\n")
    with Running(config(rd, allow_commands=True)) as run, connect(run.port) as s:
        s.sendall(b"hello\n")
        assert read_all(s) == b"got hello\n"


def test_spawn_with_and_without_commands(tmp_path: Path) -> None:
    out = tmp_path / "spawned"
    out.mkdir()
    rd = rules(
        tmp_path / "r",
        f'in.echod: ALL : spawn /bin/touch {out}/%a-%d : spawn /usr/bin/logger -t sp "c=%c"\n',
    )
    with Running(config(rd)) as run:
        with connect(run.port) as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == [
            f"<27>TS in.echod[PID]: warning: spawn: command not run (needs --allow-commands):"
            f" /bin/touch {out}/127.0.0.1-in.echod",
            "<13>TS sp: c=127.0.0.1",  # logger is carried out without a shell
            "<30>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)",
        ]
    assert list(out.iterdir()) == []
    with Running(config(rd, allow_commands=True)) as run, connect(run.port) as s:
        assert read_until(s, b"\r\n") == GREETING
    assert [p.name for p in out.iterdir()] == ["127.0.0.1-in.echod"]


def test_banner_then_service(tmp_path: Path) -> None:
    banners = tmp_path / "banners"
    banners.mkdir()
    (banners / "in.echod").write_text("Hello %a, you are %c\nSecond line\n")
    rd = rules(tmp_path / "r", f"in.echod: 127.0.0.3 : banners {banners} : allow\n", "ALL: ALL\n")
    with Running(config(rd)) as run:
        with connect(run.port, "127.0.0.3") as s:
            got = read_until(s, GREETING)
        assert got == b"Hello 127.0.0.3, you are 127.0.0.3\r\nSecond line\r\n" + GREETING


def test_severity_and_keepalive_linger(tmp_path: Path) -> None:
    rd = rules(
        tmp_path / "r",
        "in.echod: 127.0.0.1 : severity local0.notice : keepalive : linger 5\n"
        "in.echod: 127.0.0.2 : severity auth.err : deny\n",
    )
    with Running(config(rd)) as run:
        with connect(run.port, "127.0.0.1") as s:
            assert read_until(s, b"\r\n") == GREETING
            assert run.wrapper is not None
            (client,) = run.wrapper.clients
            assert client.sock is not None
            sock = client.sock
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        with connect(run.port, "127.0.0.2") as s:
            assert read_all(s) == b""
        run.log.wait_for("refused")
        assert run.log.normalised() == [
            "<133>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)",
            "<35>TS in.echod[PID]: refused connect from 127.0.0.2 (127.0.0.2)",
        ]


def test_rules_reread_and_bad_line_skipped(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    with Running(config(rd)) as run:
        with connect(run.port, "127.0.0.2") as s:
            assert read_all(s) == b""
        allow = rd / "hosts.allow"
        allow.write_text("this line has no colon\nin.echod: 127.0.0.1 127.0.0.2\n")
        later = time.time() + 5  # a new mtime even on coarse-grained file systems
        os.utime(allow, (later, later))
        with connect(run.port, "127.0.0.2") as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("^<30>.* connect from 127.0.0.2")
        lines = run.log.normalised()
        assert lines[0] == "<28>TS in.echod[PID]: refused connect from 127.0.0.2 (127.0.0.2)"
        assert lines[-1] == "<30>TS in.echod[PID]: connect from 127.0.0.2 (127.0.0.2)"
        assert any("missing" in line and "line 1" in line for line in lines[1:-1])


def test_limits_total_and_per_source(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    with Running(config(rd, max_per_source=2, max_connections=3)) as run:
        a = [connect(run.port, "127.0.0.1") for _ in range(2)]
        for s in a:
            assert read_until(s, b"\r\n") == GREETING
        with connect(run.port, "127.0.0.1") as third:
            assert read_all(third) == b""  # per-source limit: closed at once
        b = connect(run.port, "127.0.0.5")
        assert read_until(b, b"\r\n") == GREETING
        with connect(run.port, "127.0.0.6") as fourth:
            assert read_all(fourth) == b""  # total limit
        run.log.wait_for("limit")
        for s in [*a, b]:
            s.close()
        assert run.wrapper is not None
        wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)
        with connect(run.port, "127.0.0.1") as s:
            assert read_until(s, b"\r\n") == GREETING
        assert run.wrapper.stats.over_limit == 2


def test_backend_down_is_logged(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # bound, never listening: connections refused

        def make(_port: int) -> WrapConfig:
            return config(rd)(dead_port)

        with Running(make, backend=False) as run:
            with connect(run.port) as s:
                assert read_all(s) == b""
            line = run.log.wait_for("cannot connect")
    assert line.endswith(
        f"in.echod[{os.getpid()}]: error: cannot connect to"
        f" 127.0.0.1:{dead_port}: Connection refused"
    )


def test_graceful_shutdown(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    with Running(config(rd)) as run:
        s = connect(run.port)
        assert read_until(s, b"\r\n") == GREETING
        assert run.wrapper is not None
        wrapper = run.wrapper
        future = asyncio.run_coroutine_threadsafe(wrapper.shutdown(30), run.loop)
        wait_until(lambda: all(not srv.is_serving() for srv in wrapper.servers))
        with pytest.raises(ConnectionRefusedError):
            connect(run.port).close()
        s.sendall(b"still here\n")  # the live session goes on
        assert read_until(s, b"\n") == b"still here\n"
        s.close()
        future.result(30)
        assert not future.exception()


def test_rfc931_user_in_log_and_expansions(tmp_path: Path) -> None:
    async def identd_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        query = (await reader.readline()).decode().strip()
        writer.write(f"{query} : USERID : UNIX : alice\r\n".encode())
        await writer.drain()
        writer.close()

    rd = rules(
        tmp_path / "r",
        'in.echod: 127.0.0.1 : rfc931 2 : spawn /usr/bin/logger -t sp "u=%u c=%c"\n',
    )
    identd: list[asyncio.Server] = []
    with Running(config(rd)) as run:
        assert run.wrapper is not None
        run.wrapper.config.ident_port = run.call(lambda: _identd(identd_handler, identd))
        with connect(run.port) as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == [
            "<13>TS sp: u=alice c=alice@127.0.0.1",
            "<30>TS in.echod[PID]: connect from alice@127.0.0.1 (127.0.0.1)",
        ]
        run.call(lambda: _close(identd))


async def _identd(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    keep: list[asyncio.Server],
) -> int:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    keep.append(server)
    return int(server.sockets[0].getsockname()[1])


async def _close(servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
        await server.wait_closed()


def test_idle_sessions_closed(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    with Running(config(rd, idle_timeout=0.3)) as run:
        with connect(run.port) as s:
            assert read_until(s, b"\r\n") == GREETING
            assert read_all(s) == b""  # closed by the wrapper, not by us
        assert run.wrapper is not None
        wait_until(lambda: run.wrapper is not None and run.wrapper.stats.active == 0)


def test_backend_connect_timeout(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    # A backend whose accept queue is full: further connection attempts are never answered.
    with full_backlog() as (stuck, _):
        port = stuck.getsockname()[1]

        def make(_unused: int) -> WrapConfig:
            return config(rd, connect_timeout=0.3)(port)

        with Running(make, backend=False) as run:
            with connect(run.port) as s:
                assert read_all(s) == b""
            run.log.wait_for(f"error: cannot connect to 127.0.0.1:{port}: timed out")


def test_refused_holds_cannot_fill_the_limit(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    with Running(config(rd, refuse_delay=60, max_connections=8)) as run:
        held = [connect(run.port, "127.0.0.2") for _ in range(2)]  # a quarter of 8: held
        try:
            assert run.wrapper is not None
            wait_until(lambda: run.wrapper is not None and run.wrapper._held == 2)
            with connect(run.port, "127.0.0.3", timeout=10) as s:
                assert read_all(s) == b""  # refused and closed at once: no room to hold it
            with connect(run.port, "127.0.0.1") as s:
                assert read_until(s, b"\r\n") == GREETING
            for h in held:
                h.settimeout(0.2)
                with pytest.raises(TimeoutError):
                    h.recv(1)  # still held
        finally:
            for h in held:
                h.close()


def test_client_that_speaks_first_loses_nothing(tmp_path: Path) -> None:
    # Bytes sent before the wrapper has decided (HTTP, SSH clients do this) reach the backend.
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1 : spawn /usr/bin/logger -t t slow\n")
    with Running(config(rd)) as run, connect(run.port) as s:
        s.sendall(b"first words\n")
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == GREETING + b"first words\n"


def test_aclexec_runs_on_the_connection(tmp_path: Path) -> None:
    # As under tcpd, the command's stdout is the client's connection.
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1 : aclexec /bin/echo checked %a\n", "ALL: ALL\n")
    with Running(config(rd, allow_commands=True)) as run:
        with connect(run.port) as s:
            assert read_until(s, GREETING) == b"checked 127.0.0.1\n" + GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == ["<30>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)"]


def test_aclexec_without_allow_commands(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.1 : aclexec /bin/false\n", "ALL: ALL\n")
    with Running(config(rd)) as run:
        with connect(run.port) as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == [
            "<27>TS in.echod[PID]: warning: aclexec: command not run (needs --allow-commands), "
            "rule applied as if it succeeded: /bin/false",
            "<30>TS in.echod[PID]: connect from 127.0.0.1 (127.0.0.1)",
        ]


def test_user_pattern_asks_identd_lazily(tmp_path: Path) -> None:
    async def identd_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        query = (await reader.readline()).decode().strip()
        asked.append(query)
        writer.write(f"{query} : USERID : UNIX : alice\r\n".encode())
        await writer.drain()
        writer.close()

    asked: list[str] = []
    rd = rules(tmp_path / "r", "in.echod: 127.0.0.2 bob@127.0.0.1 alice@127.0.0.1\n", "ALL: ALL\n")
    identd: list[asyncio.Server] = []
    with Running(config(rd, listen=[("127.0.0.1", 0)])) as run:
        assert run.wrapper is not None
        run.wrapper.config.ident_port = run.call(lambda: _identd(identd_handler, identd))
        with connect(run.port) as s:
            assert read_until(s, b"\r\n") == GREETING
        run.log.wait_for("connect from")
        assert run.log.normalised() == [
            "<30>TS in.echod[PID]: connect from alice@127.0.0.1 (127.0.0.1)"
        ]
        assert len(asked) == 1  # once, though two patterns wanted the user
        run.call(lambda: _close(identd))
