"""The systemd journal: the export parser, and real journal files written by
systemd-journal-remote, read through journalctl."""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import todokede
from tests.conftest import need
from tests.journals import entry, syslog_entries, write_journal
from tests.zones import machine_zone
from todokede.detect import DetectConfig, Finding, Scanner, scan_paths
from todokede.detect.findings import iso
from todokede.errors import LogError
from todokede.logs.export import ExportParser, Fields, export
from todokede.logs.journal import (
    Entry,
    Lines,
    Source,
    Texts,
    journal_entries,
    journal_events,
)
from todokede.logs.journal import (
    entry as to_entry,
)
from todokede.logs.syslog import Frame, Framer, YearRule
from todokede.logs.window import Window

SAMPLES = Path(todokede.__file__).parent / "samples" / "logs" / "1997-09"
SITES = ["site-imap/messages", "site-relay/maillog", "site-bomb/maillog"]


@pytest.fixture
def tokyo() -> Iterator[None]:
    """The machine's zone is Japan's (the seed's sites are there): journal times are UTC."""
    with machine_zone("Asia/Tokyo"):
        yield


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
def test_not_a_journal(tmp_path: Path, make: Callable[[Path], object], message: str) -> None:
    path = tmp_path / "x.journal"
    make(path)
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


@pytest.mark.parametrize(
    ("matches", "progs"),
    [
        ((), [b"sshd", b"cron", b"imapd"]),
        (("SYSLOG_IDENTIFIER=sshd",), [b"sshd"]),
        (("SYSLOG_IDENTIFIER=sshd", "+", "SYSLOG_IDENTIFIER=imapd"), [b"sshd", b"imapd"]),
        (("SYSLOG_IDENTIFIER=nobody",), []),
    ],
)
def test_journalctl_matches(tmp_path: Path, matches: tuple[str, ...], progs: list[bytes]) -> None:
    entries = [
        entry(900_000_000 + i, b"gw", p, b"7", b"x", i + 1)
        for i, p in enumerate([b"sshd", b"cron", b"imapd"])
    ]
    path = write_journal(tmp_path / "m.journal", entries)
    assert [e.prog for e in journal_entries(files=[path], matches=matches)] == progs


@pytest.mark.parametrize("match", ["--all", "sshd", "_PID"])
def test_not_a_journalctl_match(tmp_path: Path, match: str) -> None:
    path = write_journal(tmp_path / "m.journal", [entry(900_000_000, b"gw", b"a", b"1", b"x", 1)])
    with pytest.raises(LogError, match="not a journal match"):
        list(journal_entries(files=[path], matches=[match]))


ZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Australia/Lord_Howe"]
NEW_YEAR_2027 = 1_798_761_600  # 2027-01-01 00:00 UTC
FIELD_VALUES = {
    b"_HOSTNAME": [None, b"", b"mail", b"a b", b"mx:", b"[x", b"h\xc3\xa9"],
    b"SYSLOG_IDENTIFIER": [None, b"", b"sshd", b"postfix/smtpd", b"a[1]", b"x:y", b"p q"],
    b"_COMM": [None, b"", b"cron", b"c\tx"],
    b"_PID": [None, b"", b"12", b"x1", b"1 2"],
    b"SYSLOG_PID": [None, b"7", b"y"],
    b"_TRANSPORT": [None, b"kernel", b"syslog"],
    b"MESSAGE": [None, b"", b"Failed password for root from 192.0.2.1 port 22 ssh2", b"a\r"],
}
FIELD_ENTRY = st.fixed_dictionaries(
    {
        # mostly within a few minutes: the later entries of a minute take the fast way
        b"__REALTIME_TIMESTAMP": st.one_of(
            st.integers(NEW_YEAR_2027 - 100, NEW_YEAR_2027 + 100).map(
                lambda s: str(s * 1_000_000 + 123).encode()
            ),
            st.integers(NEW_YEAR_2027 - 86400 * 200, NEW_YEAR_2027 + 86400).map(
                lambda s: str(s * 1_000_000 + 123).encode()
            ),
            st.sampled_from([b"soon", b"9" * 30, b"-1"]),
        ),
        **{name: st.sampled_from(values) for name, values in FIELD_VALUES.items()},
        b"MESSAGE": st.one_of(st.sampled_from(FIELD_VALUES[b"MESSAGE"]), st.binary(max_size=12)),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not None})


def _flatten(items: list[Lines | Entry]) -> list[tuple[Frame, int, bytes] | Entry]:
    """What the scanner reads of each item: a line's frame (by the framer of its year),
    its year and the line itself; an entry as it is."""
    out: list[tuple[Frame, int, bytes] | Entry] = []
    for item in items:
        if isinstance(item, Entry):
            out.append(item)
            continue
        framer = Framer(YearRule.oldest(item.year, 1, 1))
        lines = item.block.split(b"\n")
        assert lines[-1] == b"" and len(lines) - 1 == item.count
        for line in lines[:-1]:
            # as the scanner reads a line: a carriage return at its end is not part of it
            f = framer.frame(line[:-1] if line[-1:] == b"\r" else line)
            assert f is not None, line
            out.append((f, item.year, line))
    return out


@pytest.mark.parametrize("zone", ZONES)
@given(st.lists(FIELD_ENTRY, max_size=40))
@settings(max_examples=200, deadline=None)
def test_texts_read_back_as_the_entries(zone: str, batch: list[Fields]) -> None:
    """Every entry turned into a line frames back to exactly the entry, in the entry's
    year; the others stay entries, in their place; those with no time or message go."""
    with machine_zone(zone):
        want = [e for e in map(to_entry, batch) if e is not None]
        got = _flatten(Texts().convert(batch))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if isinstance(g, Entry):
            assert g == w
        else:
            assert g[0] == w.frame() and g[1] == w.year and g[2] == w.line()


@pytest.mark.parametrize("zone", ["UTC", "Australia/Lord_Howe"])
def test_texts_of_every_kind_of_entry_twice(zone: str) -> None:
    """Each combination of the fields twice in a row, the second in the same minute: the
    first is looked at closely, the second goes the fast way; both read back the same."""
    batch: list[Fields] = []
    for n, values in enumerate(itertools.product(*FIELD_VALUES.values())):
        fields = {k: v for k, v in zip(FIELD_VALUES, values, strict=True) if v is not None}
        for second in (0, 30):
            stamp = (NEW_YEAR_2027 + (n % 3) * 60 + second) * 1_000_000
            batch.append({b"__REALTIME_TIMESTAMP": str(stamp).encode(), **fields})
    with machine_zone(zone):
        want = [e for e in map(to_entry, batch) if e is not None]
        got = _flatten(Texts().convert(batch))
    assert len(got) == len(want)
    lines = 0
    for g, w in zip(got, want, strict=True):
        if isinstance(g, Entry):
            assert g == w
        else:
            lines += 1
            assert g[0] == w.frame() and g[1] == w.year and g[2] == w.line()
    assert 0 < lines < len(got)


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("America/New_York", 1_793_602_800),  # 2026-11-01 07:00 UTC: clocks go back
        ("Australia/Lord_Howe", 1_775_314_800),  # 2026-04-05: back by half an hour
        ("Asia/Tokyo", NEW_YEAR_2027 - 9 * 3600),  # the new year there
    ],
)
def test_texts_across_a_change_of_offset(zone: str, around: int) -> None:
    batch: list[Fields] = [
        entry(0, b"gw", b"sshd", b"7", b"m%d" % s, s)
        for s in range(around - 7200, around + 7200, 97)
    ]
    for fields, s in zip(batch, range(around - 7200, around + 7200, 97), strict=True):
        fields[b"__REALTIME_TIMESTAMP"] = str(s * 1_000_000).encode()
    with machine_zone(zone):
        want = [to_entry(f) for f in batch]
        got = _flatten(Texts().convert(batch))
    # an entry in place of a line fails the comparison
    assert [g[0] if isinstance(g, tuple) else g for g in got] == [
        w.frame() for w in want if w is not None
    ]


def _made_in_c(data: bytes, cuts: list[int]) -> list[Lines | Entry]:
    """The items the scanner reads of an export stream fed in pieces, as
    :meth:`Reader.poll_lines` makes them (the C pass, then :meth:`Texts.take`)."""
    parser, texts = ExportParser("test"), Texts()
    out: list[Lines | Entry] = []
    prev = 0
    for cut in [*sorted(cuts), len(data)]:
        out += texts.take(parser.feed_lines(data[prev:cut], texts))
        prev = cut
    return out + texts.take(parser.end(texts))


def _stream(entries: list[list[tuple[bytes, bytes]]]) -> bytes:
    """An export stream whose entries may give a field twice (journald allows it)."""
    return b"".join(
        b"".join(export([dict([pair])])[:-1] for pair in pairs) + b"\n"
        for pairs in entries
        if pairs
    )


REPEATED = st.lists(
    st.tuples(FIELD_ENTRY, st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=2)).map(
        lambda e: [*e[0].items(), *((n, b"again") for n in e[1])]
    ),
    max_size=30,
)


def test_the_c_pass_is_built_where_it_is_required() -> None:
    if os.environ.get("TODOKEDE_REQUIRE_NATIVE") == "1":
        from todokede.logs import _export  # noqa: F401


@pytest.mark.parametrize("zone", ZONES)
@given(REPEATED, st.lists(st.integers(0, 3000), max_size=4))
@settings(max_examples=150, deadline=None)
def test_lines_made_in_c_are_those_texts_makes(
    zone: str, entries: list[list[tuple[bytes, bytes]]], cuts: list[int]
) -> None:
    """Every kind of entry, a field given twice (the last counts), the stream cut anywhere:
    what the scanner reads is what Texts.convert makes of the parsed entries."""
    data = _stream(entries)
    batch = [dict(pairs) for pairs in entries if pairs]
    with machine_zone(zone):
        want = _flatten(Texts().convert(batch))
        got = _flatten(_made_in_c(data, [c for c in cuts if c <= len(data)]))
    assert got == want


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"A=1\n\nB=2\n\n\n\nC=3\n\n", None),  # blank lines between entries
        (b"A=1\n\nbad=2\n\n", "entry 2: bad field name 'bad'"),
        (b"A=1\n\nNOEQUALS\nB=2\n\n", "entry 2"),
        (b"A=1\n", "ends inside entry 1"),
    ],
)
def test_the_c_pass_leaves_odd_streams_to_the_parser(data: bytes, message: str | None) -> None:
    if message is None:
        assert _made_in_c(data, []) == [] and _parse(data) == [
            {b"A": b"1"},
            {b"B": b"2"},
            {b"C": b"3"},
        ]
    else:
        with pytest.raises(LogError, match=message):
            _made_in_c(data, [])


def test_odd_entries_in_a_journal_keep_their_place(tmp_path: Path, tokyo: None) -> None:
    """Entries with no syslog line of their own (no host, a message of two lines) are read
    one by one between the blocks: the findings are those of reading every entry alone."""
    entries, _ = syslog_entries(SAMPLES / "site-imap" / "messages", year=1997)
    for i in range(0, len(entries), 7):
        del entries[i][b"_HOSTNAME"]
    for i in range(3, len(entries), 11):
        entries[i][b"MESSAGE"] += b"\nand more"
    path = write_journal(tmp_path / "odd.journal", entries)
    bulk = scan_paths([], journal=Source(files=(path,)))
    one = Scanner()
    one.feed_entries(list(journal_entries(files=[path])), str(path))
    alone = one.result()
    assert bulk.lines == alone.lines == len(entries)
    assert bulk.findings and [f.to_dict() for f in bulk.findings] == [
        f.to_dict() for f in alone.findings
    ]


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


@pytest.mark.peer
@pytest.mark.parametrize("seed", range(3))
def test_filters_on_a_journal_read_in_bulk_as_entry_by_entry(
    tmp_path: Path, tokyo: None, seed: int
) -> None:
    """With filters the built-in parsers read the journal's lines in bulk and the filters
    the entries their journalmatch takes: the findings are those of reading every entry
    alone through both."""
    need(str(SSHD_FILTER))
    rnd = random.Random(seed)
    shapes = [
        (b"sshd", b"Failed password for root from 192.0.2.%d port 2222 ssh2", b"sshd.service"),
        (b"sshd", b"Invalid user admin from 192.0.2.%d port 4022", b"sshd.service"),
        (b"sshd", b"Connection closed by invalid user admin 192.0.2.%d port 4022 [preauth]", b""),
        (b"sshd", b"Failed password for root from 198.51.100.%d port 22 ssh2", b""),
        (b"CRON", b"pam_unix(cron:session): session opened for user root (%d)", b"cron.service"),
        (b"sshd", b"Accepted publickey for taro from 192.0.2.%d port 1 ssh2", b"sshd.service"),
    ]
    entries = []
    for n in range(400):
        prog, msg, unit = rnd.choice(shapes)
        fields = entry(
            T0 + n // 3, b"srv", prog, b"%d" % rnd.randrange(50, 60), msg % (n % 7), n + 1
        )
        if unit:
            fields[b"_SYSTEMD_UNIT"] = unit
        if n % 37 == 0:
            del fields[b"_HOSTNAME"]  # an odd entry, read on its own in the bulk path
        entries.append(fields)
    path = write_journal(tmp_path / "auth.journal", entries)
    cfg = DetectConfig(filters=("sshd",), jobs=1)
    bulk = scan_paths([], config=cfg, journal=Source(files=(path,)))
    one = Scanner(cfg)
    one.feed_entries(list(journal_entries(files=[path])), str(path))
    alone = one.result()
    assert bulk.lines == alone.lines == len(entries)
    assert any(f.details.get("filter") for f in bulk.findings)
    assert [f.to_dict() for f in bulk.findings] == [f.to_dict() for f in alone.findings]
