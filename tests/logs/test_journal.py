"""The systemd journal: the export parser, and real journal files written by
systemd-journal-remote, read through journalctl."""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import todokede
from tests.conftest import need
from tests.journals import entry, syslog_entries, write_journal
from todokede.detect import DetectConfig, Finding, scan_paths
from todokede.detect.findings import iso
from todokede.errors import LogError
from todokede.logs.journal import (
    Entry,
    ExportParser,
    Fields,
    Source,
    export,
    journal_entries,
    journal_events,
)
from todokede.logs.journal import (
    entry as to_entry,
)
from todokede.logs.window import Window

SAMPLES = Path(todokede.__file__).parent / "samples" / "logs" / "1997-09"
SITES = ["site-imap/messages", "site-relay/maillog", "site-bomb/maillog"]


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's zone is Japan's (the seed's sites are there): journal times are UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _parse(data: bytes, cuts: list[int] | None = None) -> list[Fields]:
    parser = ExportParser("test")
    out: list[Fields] = []
    prev = 0
    for cut in [*sorted(cuts or []), len(data)]:
        out += parser.feed(data[prev:cut])
        prev = cut
    return out + parser.end()


BIN = b"MESSAGE\n" + struct.pack("<Q", 11) + b"two\n\nlines\x00"


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"A=1\nMESSAGE=hi\n\n", [{b"A": b"1", b"MESSAGE": b"hi"}]),
        (b"A=1\n\nB=x=y\n\n", [{b"A": b"1"}, {b"B": b"x=y"}]),
        (
            b"A=1\n" + BIN + b"\nC=3\n\n",
            [{b"A": b"1", b"MESSAGE": b"two\n\nlines\x00", b"C": b"3"}],
        ),
        (BIN + b"\n\n", [{b"MESSAGE": b"two\n\nlines\x00"}]),
        (b"\n\nA=\n\n", [{b"A": b""}]),
        (b"", []),
    ],
)
def test_export_format(data: bytes, want: list[Fields]) -> None:
    assert _parse(data) == want
    assert _parse(data, list(range(len(data)))) == want  # one byte at a time


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"A=1\n", "ends inside entry 1"),
        (b"A=1\n\nB=2", "ends inside entry 2"),
        (b"MESSAGE\n" + struct.pack("<Q", 3) + b"abcX\n\n", "entry 1: binary field 'MESSAGE'"),
        (b"a=1\n\n", "entry 1: bad field name 'a'"),
        (b"A=1\n\nBAD NAME=2\n\n", "entry 2: bad field name 'BAD NAME'"),
        (b"M\n" + struct.pack("<Q", 1 << 50) + b"x\n\n", "claims"),
    ],
)
def test_export_format_errors(data: bytes, message: str) -> None:
    with pytest.raises(LogError, match=message):
        _parse(data)


@pytest.mark.parametrize("size", [10, (1 << 20) + 7, 5 << 20])
@pytest.mark.parametrize("last", [True, False])
def test_long_entries_in_pipe_sized_pieces(size: int, last: bool) -> None:
    big = bytes(range(256)) * (size // 256) + b"\n\n"
    entries: list[Fields] = [{b"A": b"1"}, {b"MESSAGE": big, b"B": b"x" * size}]
    if not last:
        entries.append({b"C": b"3"})
    data = export(entries)
    assert _parse(data, list(range(0, len(data), 1 << 16))) == entries


NAMES = st.from_regex(rb"\A_{0,2}[A-Z][A-Z0-9_]{0,12}\Z")
ENTRIES = st.lists(
    st.dictionaries(NAMES, st.binary(max_size=60), min_size=1, max_size=6), max_size=6
)


@given(ENTRIES, st.lists(st.integers(0, 2000), max_size=8))
@settings(max_examples=300, deadline=None)
def test_export_round_trip_in_any_pieces(entries: list[Fields], cuts: list[int]) -> None:
    data = export(entries)
    assert _parse(data, [c for c in cuts if c <= len(data)]) == entries


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_export_parser_takes_any_bytes(data: bytes) -> None:
    try:
        got = _parse(data)
    except LogError as exc:
        assert exc.source == "test"
    else:
        assert all(isinstance(v, bytes) for fields in got for v in fields.values())


def test_entry_is_the_syslog_line(tokyo: None) -> None:
    fields = entry(873_000_000, b"mail", b"imapd", b"42", b"hello", 1)
    got = to_entry(fields)
    assert isinstance(got, Entry)
    assert (got.ts, got.line()) == (873_000_000, b"Aug 31 04:00:00 mail imapd[42]: hello")
    assert int(fields[b"__REALTIME_TIMESTAMP"]) == (873_000_000 - 9 * 3600) * 1_000_000


@pytest.mark.parametrize("site", SITES)
def test_a_site_journal_gives_the_findings_of_its_text_log(
    tmp_path: Path, tokyo: None, site: str
) -> None:
    text = scan_paths([SAMPLES / site], year=1997)
    entries, skipped = syslog_entries(SAMPLES / site, year=1997)
    assert skipped == text.unparsed
    path = write_journal(tmp_path / "site.journal", entries)
    got = scan_paths([], journal=Source(files=(path,)))
    assert got.lines == len(entries) and got.unparsed == 0
    assert got.findings  # every site has some
    assert [f.to_dict() for f in got.findings] == [f.to_dict() for f in text.findings]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todokede", "scan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_cli_since_until_and_the_directory(tmp_path: Path, tokyo: None) -> None:
    entries, _ = syslog_entries(SAMPLES / "site-imap" / "messages", year=1997)
    (tmp_path / "j").mkdir()
    write_journal(tmp_path / "j" / "site.journal", entries)
    every = _cli("--json", "--journal-dir", str(tmp_path / "j"))
    assert every.returncode == 0, every.stderr
    rows = [json.loads(x) for x in every.stdout.splitlines()]
    assert any(r["first_seen"] < "1997-09-01" for r in rows)
    # journalctl reads --since in the machine's zone, as the findings show times
    september = _cli(
        "--json", "--journal-dir", str(tmp_path / "j"), "--since", "1997-09-01 00:00:00"
    )
    later = [json.loads(x) for x in september.stdout.splitlines()]
    assert later and all(r["first_seen"] >= "1997-09-01" for r in later)
    refused = (SAMPLES / "site-imap" / "messages").read_bytes().splitlines()
    outside = [x for x in refused if b"refused connect" in x and b"(172.16." not in x]
    want = sum(1 for x in outside if x.startswith(b"Sep"))
    assert sum(r["count"] for r in later if r["outcome"] == "refused") == want > 0
    until = _cli("--json", "--journal-dir", str(tmp_path / "j"), "--until", "1997-08-01 00:00:00")
    assert until.returncode == 0 and until.stdout == ""
    # the same window over the text log gives the same findings
    text = _cli(
        "--json", "--year", "1997", "--since", "1997-09-01", str(SAMPLES / "site-imap" / "messages")
    )
    assert text.returncode == 0 and text.stdout == september.stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("Sep  1 10:00:00 mail imapd[1]: text\n"), "not a systemd journal"),
        (lambda p: None, "cannot open"),
        (lambda p: p.write_bytes(b"LPKSHHRH" + b"\0" * 10), "journalctl failed"),
    ],
)
def test_not_a_journal(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "x.journal"
    make(path)  # type: ignore[operator]
    with pytest.raises(LogError, match=message):
        scan_paths([], journal=Source(files=(path,)))
    done = _cli("--journal-file", str(path))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_without_journalctl(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    done = _cli("--journal", env=env)
    assert done.returncode == 2 and "journalctl not found" in done.stderr


def test_journal_events_for_a_monitor(tmp_path: Path) -> None:
    lines = [
        (b"sshd", b"Failed password for root from 203.0.113.9 port 4022 ssh2"),
        (b"cron", b"(root) CMD (true)"),
        (b"imapd", b"refused connect from 198.51.100.7"),
    ]
    entries = [entry(900_000_000 + i, b"gw", p, b"7", m, i + 1) for i, (p, m) in enumerate(lines)]
    path = write_journal(tmp_path / "m.journal", entries)
    got = list(journal_events(files=[path]))
    assert [(e.prog, ev.kind, ev.addr) for e, ev in got] == [
        (b"sshd", "failure", "203.0.113.9"),
        (b"imapd", "connect", "198.51.100.7"),
    ]
    assert all(e.cursor for e, _ in got)
    after = list(journal_entries(files=[path], after_cursor=got[0][0].cursor))
    assert [e.prog for e in after] == [b"cron", b"imapd"]


def _line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from scan --follow in {timeout}s"
    return proc.stdout.readline()


def test_follow_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "f.journal"
    first = [entry(900_000_000, b"gw", b"sshd", b"7", b"Invalid user a from 203.0.113.9 port 1", 1)]
    write_journal(path, first)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "todokede",
            "scan",
            "--follow",
            "--json",
            "--journal-file",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        row = json.loads(_line(proc))
        assert (row["sources"], row["count"], row["details"]["tries"]) == (["203.0.113.9"], 1, 0)
        more = [
            entry(
                900_000_010 + i,
                b"gw",
                b"sshd",
                b"7",
                b"Failed password for invalid user a from 203.0.113.9 port 1 ssh2",
                10 + i,
            )
            for i in range(3)
        ]
        write_journal(path, more)
        row = json.loads(_line(proc))
        assert (row["count"], row["details"]["tries"], row["details"]["lines"]) == (3, 3, 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "4 lines" in err


def test_two_hosts_journal_files_at_once(tmp_path: Path, tokyo: None) -> None:
    """Journal files of two hosts (--journal-file twice): journalctl interleaves their
    entries in time, and the findings are those of both text logs read together."""
    logs = [SAMPLES / "site-imap" / "messages", SAMPLES / "site-bomb" / "maillog"]
    args = ["--json"]
    for n, log in enumerate(logs):
        entries, _ = syslog_entries(log, year=1997)
        for fields in entries:  # each host boots once
            fields[b"_BOOT_ID"] = b"%032x" % (n + 1)
        args += ["--journal-file", str(write_journal(tmp_path / f"host{n}.journal", entries))]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    text = scan_paths(logs, year=1997)
    assert [json.loads(x) for x in done.stdout.splitlines()] == [f.to_dict() for f in text.findings]
    assert "in 1 file(s)" in done.stderr  # one journal


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({b"MESSAGE": b"x"}, None),  # no time
        ({b"__REALTIME_TIMESTAMP": b"soon", b"MESSAGE": b"x"}, None),
        ({b"__REALTIME_TIMESTAMP": b"9" * 30, b"MESSAGE": b"x"}, None),
        ({b"__REALTIME_TIMESTAMP": b"0"}, None),  # no message
        (
            {b"__REALTIME_TIMESTAMP": b"1000000", b"MESSAGE": b"oops", b"_TRANSPORT": b"kernel"},
            (1, b"", b"kernel", b"", b"oops"),
        ),
        (
            {
                b"__REALTIME_TIMESTAMP": b"2000000",
                b"MESSAGE": b"hi",
                b"_COMM": b"cron",
                b"SYSLOG_PID": b"9",
                b"_HOSTNAME": b"h",
            },
            (2, b"h", b"cron", b"9", b"hi"),
        ),
    ],
)
def test_entry_fields(fields: Fields, want: tuple[object, ...] | None) -> None:
    got = to_entry(fields)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert got.frame()[1:] == want[1:]


SSHD_FILTER = Path("/etc/fail2ban/filter.d/sshd.conf")
T0 = 1_764_558_000  # 2025-12-01 03:00:00 wall clock


def _filtered(found: list[Finding]) -> list[tuple[object, ...]]:
    return [
        (f.details.get("filter"), f.sources, f.count, iso(f.first_seen), iso(f.last_seen))
        for f in found
        if f.outcome == "failed"
    ]


@pytest.mark.peer
@pytest.mark.parametrize(
    ("since", "want_filter"),
    [
        (None, [("sshd", ["192.0.2.44"], 2, iso(T0), iso(T0 + 1))]),
        (T0 + 1, [("sshd", ["192.0.2.44"], 1, iso(T0 + 1), iso(T0 + 1))]),
    ],
)
def test_filters_read_journal_entries_as_fail2ban_systemd_backend(
    tmp_path: Path, tokyo: None, since: int | None, want_filter: list[tuple[object, ...]]
) -> None:
    need(str(SSHD_FILTER))
    failed = b"Failed password for root from %s port 2222 ssh2"
    rows = [
        (T0, b"sshd", failed % b"192.0.2.44", b"sshd.service"),
        (T0 + 1, b"sshd", failed % b"192.0.2.44", b"sshd.service"),
        # no unit and no _COMM: sshd's journalmatch does not take it, the built-in parser does
        (T0 + 2, b"sshd", failed % b"198.51.100.9", b""),
        (T0 + 3, b"CRON", b"pam_unix(cron:session): session opened for user root", b"cron.service"),
    ]
    entries = []
    for n, (wall, prog, msg, unit) in enumerate(rows):
        fields = entry(wall, b"srv", prog, b"77", msg, n + 1)
        if unit:
            fields[b"_SYSTEMD_UNIT"] = unit
        entries.append(fields)
    path = write_journal(tmp_path / "auth.journal", entries)
    window = Window(since, None) if since is not None else None
    got = scan_paths(
        [],
        config=DetectConfig(filters=("sshd",), jobs=1),
        journal=Source(files=(path,), window=window),
        window=window,
    )
    found = _filtered(got.findings)
    assert [f for f in found if f[0] == "sshd"] == want_filter
    # the built-in parser reads every entry, the filter's or not
    builtin = [f[1] for f in found if f[0] is None]
    assert ["198.51.100.9"] in builtin
    assert (["192.0.2.44"] in builtin) is (since is None or since <= T0 + 1)
