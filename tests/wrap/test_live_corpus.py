"""Replays of real tcpd runs (tests/wrap/live/: rule files, hosts file, what each
client received and the raw syslog datagrams tcpd sent) against `todokede wrap`.

The wrapper runs in listener mode in front of an echo backend, so where tcpd's daemon
printed its environment our client gets the backend's greeting instead; everything else
(refusals, twist messages, banners, every log datagram with its priority) must be the
same, timestamps, pids and ports aside.

Not replayed: L04/L05 (Debian's aclexec runs a command while matching, which the engine
leaves to its caller) and L06 (ident looked up lazily in the middle of %-expansion).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("case", ["L01-basic-logging", "L02-names-paranoid", "L03-options"])
def test_live_case(case: str, tmp_path: Path) -> None:
    src = LIVE / case
    work = tmp_path / "srv"
    shutil.copytree(src, work)
    for name in ("hosts.allow", "hosts.deny"):
        text = (src / name).read_text().replace("/srv/", f"{work}/")
        (work / name).write_text(text)
    resolver = HostsFileResolver(src / "etc-hosts")
    for run_spec in parse_expected((src / "expected.txt").read_text()):

        def make(port: int, server: str = run_spec.server) -> WrapConfig:
            return WrapConfig(
                backend=("127.0.0.1", port),
                daemon="in.echod",
                rules_dir=work,
                listen=[(server, 0)],
                refuse_delay=0.05,
            )

        with Running(make, resolver=resolver) as run:
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
