"""tcpd's log format: priorities, syslog datagrams on a socket we bind, file lines."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.errors import ConfigError
from todokede.wrap.tcpdlog import (
    ALLOW_PRIORITY,
    DENY_PRIORITY,
    DIAG_PRIORITY,
    FileSink,
    MemorySink,
    SyslogSink,
    TcpdLog,
    parse_severity,
    timestamp,
)

TS = r"[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d"


@pytest.mark.parametrize(
    ("value", "priority"),
    [
        ("auth.err", 35),  # the <35> of the live PARANOID case
        ("local0.notice", 133),
        ("daemon.notice", 29),
        ("err", 27),
        ("WARNING", 28),
        ("mail.info", 22),
        ("local7.debug", 191),
    ],
)
def test_parse_severity(value: str, priority: int) -> None:
    assert parse_severity(value) == priority


@pytest.mark.parametrize("value", ["", "loud", "auth.", "nowhere.err", "auth.err.x"])
def test_bad_severity(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_severity(value)


def test_default_priorities_are_tcpds() -> None:
    assert (ALLOW_PRIORITY, DENY_PRIORITY, DIAG_PRIORITY) == (30, 28, 27)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0, max_value=4e9))
def test_timestamp_shape(now: float) -> None:
    assert re.fullmatch(TS, timestamp(now))


def test_syslog_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        sink = SyslogSink(path)
        log = TcpdLog(sink, "in.echod", 4242)
        log.connect("localhost", "127.0.0.1")
        log.refused("127.0.0.2", "127.0.0.2")
        log.warning("/etc/hosts.allow, line 1: host name/name mismatch: a != b")
        log.error('error: /etc/hosts.allow, line 4: bad option name: "x"')
        log.twist("127.0.0.2", '/bin/echo "421 go away"')
        got = [server.recv(4096).decode() for _ in range(5)]
        sink.close()
    expected = [
        "<30>TS in.echod[4242]: connect from localhost (127.0.0.1)",
        "<28>TS in.echod[4242]: refused connect from 127.0.0.2 (127.0.0.2)",
        "<27>TS in.echod[4242]: warning: /etc/hosts.allow, line 1: host name/name mismatch: a != b",
        '<27>TS in.echod[4242]: error: /etc/hosts.allow, line 4: bad option name: "x"',
        '<28>TS in.echod[4242]: twist 127.0.0.2 to /bin/echo "421 go away"',
    ]
    assert [re.sub(TS, "TS", line, count=1) for line in got] == expected


def test_background_syslog_flush_sends_every_queued_line(tmp_path: Path) -> None:
    """A command started after ``flush`` logs after the wrapper's own lines, as under
    libwrap, whose syslog(3) calls return after the send."""
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        sink = SyslogSink(path, background=True)
        for n in range(8):  # fewer than a datagram socket's queue holds
            sink.emit(30, "in.echod[1]", f"line {n}")
        sink.flush()
        server.setblocking(False)  # everything must be there already: no waiting
        got = []
        with contextlib.suppress(BlockingIOError):
            while True:
                got.append(server.recv(4096).decode().rsplit(" ", 1)[1])
        sink.close()
    assert got == [str(n) for n in range(8)]


def test_syslog_socket_missing_falls_back_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = SyslogSink(tmp_path / "nothing")
    TcpdLog(sink, "imapd", 7).refused("192.0.2.7", "192.0.2.7")
    assert capsys.readouterr().err == "imapd[7]: refused connect from 192.0.2.7 (192.0.2.7)\n"


def test_syslog_reconnects_after_log_daemon_restart(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    sink = SyslogSink(path)
    for n in range(2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
            server.bind(str(path))
            server.settimeout(5)
            sink.emit(30, "x[1]", f"line {n}")
            assert server.recv(100).decode().endswith(f"x[1]: line {n}")
        path.unlink()
    sink.close()


def test_file_sink_lines_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "wrap.log"
    sink = FileSink(path, hostname="gw.example.jp")
    log = TcpdLog(sink, "imapd", 99)
    log.connect("alice@localhost", "127.0.0.1")
    path.rename(tmp_path / "wrap.log.1")
    sink._checked = 0.0  # the rotation check runs at most once a second; force it
    log.refused("192.0.2.7", "192.0.2.7")
    sink.close()
    first = (tmp_path / "wrap.log.1").read_text()
    second = path.read_text()
    assert re.fullmatch(
        f"{TS} gw imapd\\[99\\]: connect from alice@localhost \\(127.0.0.1\\)\n", first
    )
    assert re.fullmatch(
        f"{TS} gw imapd\\[99\\]: refused connect from 192.0.2.7 \\(192.0.2.7\\)\n", second
    )


def test_file_sink_unwritable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open log file"):
        FileSink(tmp_path / "no" / "such" / "dir.log")


def test_memory_sink() -> None:
    sink = MemorySink()
    TcpdLog(sink, "d", 1).warning("x")
    assert sink.records == [(27, "d[1]", "warning: x")]


def test_file_sink_deferred_to_the_end_of_the_loop_iteration(tmp_path: Path) -> None:
    path = tmp_path / "wrap.log"
    sink = FileSink(path, hostname="gw")
    loop = asyncio.new_event_loop()
    try:
        sink.defer_flush(loop)
        for i in range(3):
            sink.emit(ALLOW_PRIORITY, "imapd[7]", f"connect from 192.0.2.{i} (192.0.2.{i})")
        assert path.read_text() == ""  # held until the loop's next turn ...
        loop.run_until_complete(asyncio.sleep(0))
        assert len(path.read_text().splitlines()) == 3  # ... then written together
        thread = threading.Thread(target=sink.emit, args=(ALLOW_PRIORITY, "imapd[7]", "other"))
        thread.start()  # from another thread: the loop is woken to write it
        thread.join()
        loop.run_until_complete(asyncio.sleep(0.05))
        assert path.read_text().splitlines()[-1].endswith("imapd[7]: other")
        sink.emit(DENY_PRIORITY, "imapd[7]", "refused connect from 192.0.2.9 (192.0.2.9)")
    finally:
        sink.close()  # what is still held is written, never lost
        loop.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    assert lines[-1].endswith("imapd[7]: refused connect from 192.0.2.9 (192.0.2.9)")


def test_file_sink_after_its_loop_closed(tmp_path: Path) -> None:
    path = tmp_path / "wrap.log"
    sink = FileSink(path, hostname="gw")
    loop = asyncio.new_event_loop()
    sink.defer_flush(loop)
    loop.close()
    sink.emit(ALLOW_PRIORITY, "imapd[7]", "late")  # written at once, not lost
    assert path.read_text().endswith("imapd[7]: late\n")
    sink.close()
