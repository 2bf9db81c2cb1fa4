"""inetd mode under a tiny inetd written here (accept, then run the command with the
connection as stdin and stdout), systemd socket activation (the socket on fd 3 with
LISTEN_FDS/LISTEN_PID) in both modes, and the command line's own behaviour."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.wrap.harness import SyslogCollector, connect, greeter, read_all, read_until, rules

TODOKEDE = [sys.executable, "-m", "todokede"]
TS = r"[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d"
# sh moves the connection from stdin to fd 3 and exports what systemd would set.
AS_SYSTEMD = ["/bin/sh", "-c", 'exec 3<&0 </dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh"]


@contextmanager
def inetd(argv: list[str], *, systemd: bool = False) -> Iterator[tuple[int, list[int]]]:
    """Listen on 127.0.0.1; run ``argv`` for each connection as inetd does (nowait)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    pids: list[int] = []
    done = threading.Event()
    procs: list[subprocess.Popen[bytes]] = []

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                proc = subprocess.Popen(
                    (AS_SYSTEMD + argv) if systemd else argv,
                    stdin=conn.fileno(),
                    stdout=subprocess.DEVNULL if systemd else conn.fileno(),
                    stderr=subprocess.PIPE,
                )
            procs.append(proc)
            pids.append(proc.pid)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], pids
    finally:
        done.set()
        thread.join(10)
        listener.close()
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            assert proc.returncode == 0, err.decode()


def wrap_inetd(rd: Path, log: str, *program: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        *TODOKEDE, "wrap", "--inetd", "--rules-dir", str(rd), "--log", log,
        "--refuse-delay", "0.05", *extra, "--", *program,
    ]  # fmt: skip


def test_inetd_grants_execs_and_refuses(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "echo: 127.0.0.1\n", "ALL: ALL\n")
    log = tmp_path / "wrap.log"
    with inetd(wrap_inetd(rd, str(log), "/bin/echo", "hello")) as (port, pids):
        with connect(port, "127.0.0.1") as s:
            assert read_all(s) == b"hello\n"
        with connect(port, "127.0.0.2") as s:
            assert read_all(s) == b""
    host = socket.gethostname().split(".")[0]
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    # tcpd logs under its own pid, which the daemon keeps across exec().
    assert re.fullmatch(
        f"{TS} {host} echo\\[{pids[0]}\\]: connect from 127.0.0.1 \\(127.0.0.1\\)", lines[0]
    )
    assert re.fullmatch(
        f"{TS} {host} echo\\[{pids[1]}\\]: refused connect from 127.0.0.2 \\(127.0.0.2\\)", lines[1]
    )


def test_inetd_options_shape_the_daemon(tmp_path: Path) -> None:
    banners = tmp_path / "banners"
    banners.mkdir()
    (banners / "sh").write_text("Welcome %a\n")
    rd = rules(
        tmp_path / "r",
        f"sh: 127.0.0.1 : setenv FOO bar baz : umask 077 : banners {banners}\n"
        'sh: 127.0.0.2 : twist /bin/echo "421 go away %a (%d)"\n',
        "ALL: ALL\n",
    )
    collector = SyslogCollector()
    try:
        argv = wrap_inetd(
            rd, "syslog", "/bin/sh", "-c", "echo FOO=$FOO; umask",
            extra=("--syslog-socket", collector.path),
        )  # fmt: skip
        with inetd(argv) as (port, _pids):
            with connect(port, "127.0.0.1") as s:
                assert read_all(s) == b"Welcome 127.0.0.1\r\nFOO=bar baz\n0077\n"
            with connect(port, "127.0.0.2") as s:
                assert read_all(s) == b"421 go away 127.0.0.2 (sh)\n"
        collector.wait_for("twist")
        assert collector.normalised() == [
            "<30>TS sh[PID]: connect from 127.0.0.1 (127.0.0.1)",
            '<28>TS sh[PID]: twist 127.0.0.2 to /bin/echo "421 go away 127.0.0.2 (sh)"',
        ]
    finally:
        collector.close()


def test_inetd_twist_runs_shell_only_when_allowed(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "cat: ALL : twist /bin/sh -c 'echo twisted %d'\n")
    log = tmp_path / "wrap.log"
    with inetd(wrap_inetd(rd, str(log), "/bin/cat")) as (port, _), connect(port) as s:
        assert read_all(s) == b""
    assert "twist: command not run (needs --allow-commands)" in log.read_text()
    argv = wrap_inetd(rd, str(log), "/bin/cat", extra=("--allow-commands",))
    with inetd(argv) as (port, _), connect(port) as s:
        assert read_all(s) == b"twisted cat\n"


def test_inetd_names_from_a_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 pc3.lab.example\n127.0.0.2 other.example\n")
    rd = rules(tmp_path / "r", "echo: .lab.example\n", "ALL: ALL\n")
    log = tmp_path / "wrap.log"
    argv = wrap_inetd(rd, str(log), "/bin/echo", "hi", extra=("--hosts-file", str(hosts)))
    with inetd(argv) as (port, _):
        with connect(port, "127.0.0.1") as s:
            assert read_all(s) == b"hi\n"
        with connect(port, "127.0.0.2") as s:
            assert read_all(s) == b""
    # The rule needed the names, so tcpd would log them (verified: reverse and forward agree).
    assert [line.split(": ", 1)[1] for line in log.read_text().splitlines()] == [
        "connect from pc3.lab.example (127.0.0.1)",
        "refused connect from other.example (127.0.0.2)",
    ]


def test_systemd_accept_yes(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r", "echo: 127.0.0.1\n", "ALL: ALL\n")
    log = tmp_path / "wrap.log"
    with inetd(wrap_inetd(rd, str(log), "/bin/echo", "from fd 3"), systemd=True) as (port, _):
        with connect(port, "127.0.0.1") as s:
            assert read_all(s) == b"from fd 3\n"
        with connect(port, "127.0.0.2") as s:
            assert read_all(s) == b""
    text = log.read_text()
    assert "echo[" in text and "connect from 127.0.0.1 (127.0.0.1)" in text
    assert "refused connect from 127.0.0.2 (127.0.0.2)" in text


def test_inetd_without_a_socket_is_a_clear_error(tmp_path: Path) -> None:
    rd = rules(tmp_path / "r")
    proc = subprocess.run(
        wrap_inetd(rd, str(tmp_path / "log"), "/bin/true"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("todokede: error: --inetd: fd 0 is not a")
    assert "Traceback" not in proc.stderr


@dataclass
class Cli:
    proc: subprocess.Popen[str]
    stderr: IO[str]
    port: int
    log: Path


@contextmanager
def cli_wrap(tmp_path: Path, *options: str, systemd: bool = False) -> Iterator[Cli]:
    """``todokede wrap`` as a process in front of a greeter (imapd: 127.0.0.1 allowed), its
    log in a file; with ``systemd`` the listening socket is handed over as socket
    activation does, else the wrapper binds ``--listen`` itself. Killed if still running."""
    rd = rules(tmp_path / "r", "imapd: 127.0.0.1\n", "ALL: ALL\n")
    log = tmp_path / "wrap.log"
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    with greeter(b"* OK greeter\r\n") as backend:
        argv = [
            *TODOKEDE, "wrap", "--to", f"127.0.0.1:{backend}", "--daemon", "imapd",
            "--rules-dir", str(rd), "--log", str(log), *options,
        ]  # fmt: skip
        if systemd:
            listening.listen(16)
            proc = subprocess.Popen(
                AS_SYSTEMD + argv, stdin=listening.fileno(), stderr=subprocess.PIPE, text=True
            )
            listening.close()
        else:
            listening.close()
            argv += ["--listen", f"127.0.0.1:{port}"]
            proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        stderr = proc.stderr
        assert stderr is not None
        try:
            yield Cli(proc, stderr, port, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            stderr.close()


def test_cli_listener_with_systemd_socket_and_sigterm(tmp_path: Path) -> None:
    with cli_wrap(tmp_path, "--refuse-delay", "0.05", systemd=True) as cli:
        ready = cli.stderr.readline()
        assert ready.startswith(f"todokede wrap: imapd on 127.0.0.1:{cli.port} -> 127.0.0.1:")
        with connect(cli.port, "127.0.0.1") as s:
            assert read_until(s, b"\r\n") == b"* OK greeter\r\n"
        with connect(cli.port, "127.0.0.2") as s:
            assert read_all(s) == b""
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.proc.wait(30) == 0
        assert "Traceback" not in cli.stderr.read()
    lines = cli.log.read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "connect from 127.0.0.1 (127.0.0.1)",
        "refused connect from 127.0.0.2 (127.0.0.2)",
    ]


def test_cli_workers_share_the_port(tmp_path: Path) -> None:
    with cli_wrap(tmp_path, "--workers", "3") as cli:
        assert "3 workers" in cli.stderr.readline()
        for _ in range(30):
            with connect(cli.port, "127.0.0.1") as s:
                assert read_until(s, b"\r\n") == b"* OK greeter\r\n"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.proc.wait(30) == 0
    lines = cli.log.read_text().splitlines()
    assert len(lines) == 30
    assert all(line.endswith("connect from 127.0.0.1 (127.0.0.1)") for line in lines)
    pids: set[str] = set()
    for line in lines:
        m = re.search(r"imapd\[(\d+)\]", line)
        assert m is not None, line
        pids.add(m.group(1))
    assert 1 <= len(pids) <= 3


def test_cli_sigterm_loses_no_log_line(tmp_path: Path) -> None:
    # The file log is written once per loop iteration; SIGTERM must still leave a line
    # for every connection that was admitted, however many were in flight.
    socks: list[socket.socket] = []
    with cli_wrap(tmp_path, "--shutdown-grace", "2") as cli:
        try:
            cli.stderr.readline()
            port = cli.port
            socks.append(connect(port))
            assert read_until(socks[0], b"\r\n") == b"* OK greeter\r\n"
            for _ in range(100):
                try:
                    socks.append(connect(port))
                except OSError:
                    break
            cli.proc.send_signal(signal.SIGTERM)
            served = 1
            for s in socks[1:]:
                served += read_all(s).startswith(b"* OK")
                s.close()  # its session ends: the shutdown need not wait for it
            assert cli.proc.wait(30) == 0
        finally:
            for s in socks:
                s.close()
    # Every connection that reached the service was logged first (as tcpd logs before it
    # execs); a few more may have been logged and then cut by the shutdown.
    text = cli.log.read_text()
    lines = text.splitlines()
    assert text.endswith("\n")
    assert served <= len(lines) <= len(socks)
    assert all(line.endswith("connect from 127.0.0.1 (127.0.0.1)") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "127.0.0.1:1"], "--to and --daemon are required"),
        (["--listen", ":0", "--to", ":1", "--daemon", "x", "--workers", "0"], "at least 1"),
        (["--rules-dir", "/nonexistent/dir", "--to", ":1", "--daemon", "x"], "does not exist"),
        (["--to", "127.0.0.1:1", "--daemon", "x"], "--listen is required"),
        (["--listen", "::1:143", "--to", "127.0.0.1:1", "--daemon", "x"], "in brackets"),
        (["--listen", "127.0.0.1:http", "--to", "127.0.0.1:1", "--daemon", "x"], "port must be"),
        (["--inetd", "--proxy-protocol", "v1", "--", "/bin/true"], "not --inetd"),
        (["--to", ":1", "--daemon", "x", "--proxy-protocol", "v3"], "'v3' is not one of"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    proc = subprocess.run(
        [*TODOKEDE, "wrap", "--log", str(tmp_path / "log"), *args],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_help_has_an_example() -> None:
    proc = subprocess.run([*TODOKEDE, "wrap", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "Example:" in proc.stdout and "--inetd" in proc.stdout


def test_inetd_aclexec_on_the_connection_and_sticky(tmp_path: Path) -> None:
    # As tcpd: the aclexec command talks on the connection; its failure in hosts.allow
    # sends matching on to hosts.deny, whose rule with an option is then discarded too.
    rd = rules(
        tmp_path / "r",
        "echo: 127.0.0.1 : aclexec /bin/echo checking %a\necho: 127.0.0.2 : aclexec /bin/false\n",
        "echo: 127.0.0.2 : severity auth.notice\nALL: ALL\n",
    )
    log = tmp_path / "wrap.log"
    argv = wrap_inetd(rd, str(log), "/bin/echo", "hello", extra=("--allow-commands",))
    with inetd(argv) as (port, _pids):
        with connect(port, "127.0.0.1") as s:
            assert read_all(s) == b"checking 127.0.0.1\nhello\n"
        with connect(port, "127.0.0.2") as s:
            assert read_all(s) == b"hello\n"
    messages = [line.split(": ", 1)[1] for line in log.read_text().splitlines()]
    assert messages == [
        "connect from 127.0.0.1 (127.0.0.1)",
        "aclexec returned 1",
        "aclexec returned 1",
        "connect from 127.0.0.2 (127.0.0.2)",
    ]
