"""Replays of real tcpd runs (tests/wrap/live/: rule files, hosts file, what each
client received and the raw syslog datagrams tcpd sent) against `todokede wrap`.

The wrapper runs in listener mode in front of an echo backend, so where tcpd's daemon
printed its environment our client gets the backend's greeting instead; everything else
(refusals, twist messages, banners, every log datagram with its priority) must be the
same, timestamps, pids and ports aside.

L04/L05 run Debian's aclexec commands (with --allow-commands), including libwrap's
"sticky" failed-aclexec flag; L06 has a numeric-port daemon pattern, a server endpoint
pattern and the RFC 931 user looked up lazily (a loopback identd answers).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import need
from tests.wrap.harness import (
    GREETING,
    Running,
    SyslogCollector,
    connect,
    read_all,
    read_until,
    wait_until,
)
from todokede.access import HostsFileResolver
from todokede.wrap.listener import WrapConfig

LIVE = Path(__file__).parent / "live"

pytestmark = pytest.mark.usefixtures("event_loop_kind")


@dataclass
class Run:
    server: str
    clients: list[tuple[str, str]] = field(default_factory=list)  # (address, received)
    datagrams: list[str] = field(default_factory=list)


def parse_expected(text: str) -> list[Run]:
    runs: list[Run] = []
    in_datagrams = False
    for line in text.splitlines():
        if line.startswith("### run: "):
            words = [w for w in line[9:].split() if "=" not in w]
            runs.append(Run(words[0]))
            in_datagrams = False
        elif line.startswith("--- client "):
            runs[-1].clients.append((line.split()[2], ""))
        elif line.startswith("client received: "):
            addr, _ = runs[-1].clients[-1]
            received = eval(line[len("client received: ") :])  # a Python repr of a str
            runs[-1].clients[-1] = (addr, received)
        elif line.startswith("--- syslog datagrams"):
            in_datagrams = True
        elif in_datagrams and line:
            runs[-1].datagrams.append(line)
    return runs


def expected_bytes(received: str) -> bytes:
    # tcpd's daemon printed "in.echod: uid=..."; behind the wrapper the backend greets.
    daemon_at = received.find("in.echod: uid=")
    if daemon_at >= 0:
        return received[:daemon_at].encode("latin-1") + GREETING
    return received.encode("latin-1")


CASES = sorted(p.name for p in LIVE.iterdir() if (p / "expected.txt").exists())
# Cases whose rules run commands (aclexec, and spawn with the real logger): the wrapper
# gets --allow-commands, and logger is pointed at the test's syslog socket.
COMMANDS = {"L04-aclexec-and-errors", "L05-aclexec-sticky"}


class Identd:
    """An RFC 1413 server on loopback answering USERID for every query, bound to the
    client addresses (the wrapper asks the client's address), all on one port."""

    def __init__(self, user: str, addresses: list[str]) -> None:
        self.user = user
        self.socks: list[socket.socket] = []
        self.port = 0
        for addr in addresses:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((addr, self.port))
            sock.listen(16)
            sock.settimeout(0.1)
            self.port = sock.getsockname()[1]
            self.socks.append(sock)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            for sock in self.socks:
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, BlockingIOError):
                    continue
                except OSError:
                    return
                with conn:
                    conn.settimeout(5)
                    query = conn.recv(1024).decode().strip()
                    conn.sendall(f"{query} : USERID : UNIX : {self.user}\r\n".encode())

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def _settings(first_line: str) -> dict[str, str]:
    return dict(w.split("=", 1) for w in first_line[9:].split() if "=" in w)


@pytest.mark.parametrize("case", CASES)
def test_live_case(case: str, tmp_path: Path) -> None:
    src = LIVE / case
    commands = case in COMMANDS
    if commands:
        need("logger")
    work = tmp_path / "srv"
    shutil.copytree(src, work)
    log = SyslogCollector()
    texts = {}
    for name in ("hosts.allow", "hosts.deny"):
        text = (src / name).read_text().replace("/srv/", f"{work}/")
        if commands:
            text = text.replace("/usr/bin/logger ", f"/usr/bin/logger -u {log.path} ")
        texts[name] = text
        (work / name).write_text(text)
    resolver = HostsFileResolver(src / "etc-hosts")
    expected_text = (src / "expected.txt").read_text()
    settings = _settings(expected_text.splitlines()[0])
    try:
        for run_spec in parse_expected(expected_text):
            identd = None
            if "LIVE_IDENT" in settings:
                identd = Identd(settings["LIVE_IDENT"], sorted({a for a, _ in run_spec.clients}))

            def make(
                port: int, server: str = run_spec.server, identd: Identd | None = identd
            ) -> WrapConfig:
                return WrapConfig(
                    backend=("127.0.0.1", port),
                    daemon="in.echod",
                    rules_dir=work,
                    listen=[(server, 0)],
                    refuse_delay=0.05,
                    allow_commands=commands,
                    ident_port=identd.port if identd else 113,
                )

            try:
                _replay(case, run_spec, make, resolver, log, work, settings, texts)
            finally:
                if identd is not None:
                    identd.close()
    finally:
        log.close()


def _replay(
    case: str,
    run_spec: Run,
    make: Callable[[int], WrapConfig],
    resolver: HostsFileResolver,
    log: SyslogCollector,
    work: Path,
    settings: dict[str, str],
    texts: dict[str, str],
) -> None:
    log.lines.clear()
    with Running(make, resolver=resolver, log=log) as run:
        if "LIVE_PORT" in settings:
            # The recording's server port is in the rules (a numeric daemon pattern): put
            # ours there. The wrapper stat()s the files on every decision and re-reads them.
            text = texts["hosts.allow"].replace(settings["LIVE_PORT"], str(run.port))
            (work / "hosts.allow").write_text(text + "\n")
        for addr, received in run_spec.clients:
            want = expected_bytes(received)
            with connect(run.port, addr, host=run_spec.server) as s:
                got = read_until(s, GREETING) if want.endswith(GREETING) else read_all(s)
            assert got == want, (case, addr)
            # one client at a time, as the recording was made: log order is then fixed
            wait_until(lambda: run.wrapper is not None and not run.wrapper.clients)
        expected: int = len(run_spec.datagrams)

        def logged(n: int = expected, log: SyslogCollector = run.log) -> bool:
            return len(log.drain()) >= n

        wait_until(logged)
        got_lines = [
            re.sub(r"\b([rR])=\d+", r"\1=PORT", line).replace(f"{work}/", "/etc/")
            for line in run.log.normalised()
        ]
    assert got_lines == run_spec.datagrams, case
