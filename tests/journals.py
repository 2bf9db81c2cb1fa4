"""Real journal files for the tests, written by systemd-journal-remote from export entries.

    from tests.journals import write_journal, syslog_entries

    path = write_journal(tmp_path / "site.journal", syslog_entries(text_log, year=1997))

``syslog_entries`` turns each syslog line of a text log into the entry journald would have
stored for it (the wall-clock time read in the machine's zone, host, identifier, PID,
message); lines the framer cannot read are left out, and counted.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import need
from todokede.detect import year_rule
from todokede.logs.export import Fields, export
from todokede.logs.syslog import Framer

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = b"0123456789abcdef0123456789abcdef"


def write_journal(path: Path, entries: list[Fields]) -> Path:
    """Append ``entries`` to the journal file ``path`` (its name ends in .journal)."""
    need(JOURNAL_REMOTE, "journalctl")
    source = path.with_suffix(".export")
    source.write_bytes(export(entries))
    done = subprocess.run(
        [JOURNAL_REMOTE, f"--output={path}", str(source)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return path


def usec(wall: int) -> int:
    """The epoch microseconds whose wall clock in the machine's zone is ``wall`` (seconds
    counted as if UTC, as the framer counts them)."""
    return int(time.mktime(time.gmtime(wall))) * 1_000_000


def entry(wall: int, host: bytes, prog: bytes, pid: bytes, msg: bytes, monotonic: int) -> Fields:
    fields: Fields = {
        b"__REALTIME_TIMESTAMP": str(usec(wall)).encode(),
        b"__MONOTONIC_TIMESTAMP": str(monotonic).encode(),
        b"_BOOT_ID": BOOT_ID,
        b"_TRANSPORT": b"syslog",
        b"PRIORITY": b"6",
        b"SYSLOG_FACILITY": b"2",
    }
    if host:
        fields[b"_HOSTNAME"] = host
    if prog:
        fields[b"SYSLOG_IDENTIFIER"] = prog
    if pid:
        fields[b"_PID"] = pid
    fields[b"MESSAGE"] = msg
    return fields


def syslog_entries(log: Path, year: int | None = None, start: int = 1) -> tuple[list[Fields], int]:
    """The entries of a text log's lines, and how many lines were left out."""
    framer = Framer(year_rule(log, year))
    out: list[Fields] = []
    skipped = 0
    for line in log.read_bytes().splitlines():
        f = framer.frame(line)
        if f is None:
            skipped += 1
            continue
        ts, host, prog, pid, msg = f
        out.append(entry(ts, host, prog, pid, msg, start + len(out)))
    return out, skipped
