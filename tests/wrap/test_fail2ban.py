"""The point of logging exactly as tcpd: fail2ban reads the wrapper's log file as it is."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from tests.wrap.harness import Running, connect, read_all, read_until, rules
from tests.wrap.test_listener import config
from todokede.wrap.tcpdlog import FileSink

FAILREGEX = r"\S+\[\d+\]: refused connect from (?:\S+@)?\S+ \(<HOST>\)$"


@pytest.mark.peer
def test_fail2ban_reads_the_log_file(tmp_path: Path) -> None:
    need("fail2ban-regex")
    rd = rules(tmp_path / "r", "imapd: 127.0.0.1\n", "ALL: ALL\n")
    log = tmp_path / "wrap.log"
    sink = FileSink(log)
    with Running(config(rd, daemon="imapd"), sink=sink) as run:
        with connect(run.port, "127.0.0.1") as s:
            assert read_until(s, b"\r\n").startswith(b"* OK")
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
            with connect(run.port, source) as s:
                assert read_all(s) == b""
    sink.close()
    assert len(log.read_text().splitlines()) == 4
    proc = subprocess.run(
        ["fail2ban-regex", str(log), FAILREGEX],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Lines: 4 lines, 0 ignored, 3 matched, 1 missed", proc.stdout), proc.stdout
    assert "Date template hits" in proc.stdout and "MON Day" in proc.stdout
