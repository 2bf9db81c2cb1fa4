"""Guard reads failures of a real Dovecot from a log that is rotated while it runs, and from
a journal file (written by systemd-journal-remote from export-format entries)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import need
from tests.guard.harness import banned, fail_login, guard, wait_until, watched_dovecot

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def failures_logged(log: Path) -> int:
    return log.read_text(errors="replace").count("auth failed") if log.exists() else 0


@pytest.mark.peer
def test_failures_across_a_log_rotation(tmp_path: Path) -> None:
    deny = tmp_path / "guard.deny"
    with watched_dovecot(tmp_path) as (imap, conf):
        assert imap.log is not None and imap.config is not None
        with guard(conf):
            for _ in range(2):
                fail_login(imap.port, "127.0.0.8")
            log = imap.log
            wait_until(lambda: failures_logged(log) == 2, what="two failures logged")
            log.rename(log.with_name("dovecot.log.1"))
            subprocess.run(["doveadm", "-c", str(imap.config), "log", "reopen"], check=True,
                           timeout=30)  # fmt: skip
            wait_until(imap.log.exists, what="a new log after the rotation")
            time.sleep(0.3)  # guard polls; the third failure must land in the new file
            assert "127.0.0.8" not in banned(deny)
            fail_login(imap.port, "127.0.0.8")
            wait_until(lambda: "127.0.0.8" in banned(deny), what="the ban across the rotation")
        assert failures_logged(imap.log) == 1


def _entry(line: str) -> bytes:
    """One line of Dovecot's own log (``Mon DD HH:MM:SS prog: message``) as an entry of
    journalctl's export format."""
    prog, _, msg = line[16:].partition(": ")
    now = int(time.time() * 1_000_000)
    return (
        f"__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={now}\n"
        f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=mail\n"
        f"SYSLOG_IDENTIFIER={prog}\n_SYSTEMD_UNIT=dovecot.service\nMESSAGE={msg}\n\n"
    ).encode()


@pytest.mark.peer
def test_failures_from_a_journal_file(tmp_path: Path) -> None:
    need(JOURNAL_REMOTE, "journalctl")
    deny = tmp_path / "guard.deny"
    journal = tmp_path / "remote.journal"
    remote = subprocess.Popen(
        [JOURNAL_REMOTE, f"--output={journal}", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert remote.stdin is not None
    try:
        remote.stdin.write(_entry("Dec  7 00:00:00 dovecot: master: Dovecot starting up"))
        remote.stdin.flush()
        wait_until(journal.exists, what="the journal file")
        source = f'journal_file = "{journal}"\njournal = "_SYSTEMD_UNIT=dovecot.service"'
        with watched_dovecot(tmp_path, source=source) as (imap, conf):
            assert imap.log is not None
            with guard(conf):
                for _ in range(3):
                    fail_login(imap.port, "127.0.0.9")
                log = imap.log
                wait_until(lambda: failures_logged(log) == 3, what="three failures")
                assert "127.0.0.9" not in banned(deny)
                for line in imap.log.read_text().splitlines():
                    remote.stdin.write(_entry(line))
                remote.stdin.flush()
                wait_until(lambda: "127.0.0.9" in banned(deny), what="the ban from the journal")
    finally:
        remote.stdin.close()
        remote.wait(30)
