"""The systemd journal: entries read through ``journalctl -o export``, as syslog frames.

One ``journalctl`` process streams every entry (of this machine's journal, of journal
files, or of a journal directory) in the export format, asking only for the fields a
syslog line has (``--output-fields``); :class:`todokede.logs.export.ExportParser` cuts the
stream into entries in bulk (the format is described there). An entry becomes the frame its
syslog line would give (time, host, program, PID, message), so every parser, detector and
fail2ban filter reads it as it reads a log file:

    __REALTIME_TIMESTAMP  the time: microseconds since the epoch, shown as the wall clock
                          of the machine's zone (``TZ``), as syslog writes it
    _HOSTNAME             the host
    SYSLOG_IDENTIFIER     the program (else ``_COMM``; ``kernel`` for kernel messages)
    _PID / SYSLOG_PID     the process id
    MESSAGE               the message (a binary field when it is not text: its length, then
                          its bytes)
"""

from __future__ import annotations

import contextlib
import fcntl
import operator
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from todokede.errors import LogError
from todokede.logs.events import Event
from todokede.logs.export import ExportParser, Fields, Run
from todokede.logs.syslog import Frame
from todokede.logs.window import Window

JOURNALCTL = "journalctl"
FIELDS = (
    "_HOSTNAME",
    "SYSLOG_IDENTIFIER",
    "_COMM",
    "_PID",
    "SYSLOG_PID",
    "MESSAGE",
    "_TRANSPORT",
    # what fail2ban filters' journalmatch lines test
    "_SYSTEMD_UNIT",
    "PRIORITY",
)
MAGIC = b"LPKSHHRH"  # the first bytes of every journal file
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # Linux's largest for anyone (/proc/sys/fs/pipe-max-size)
_MONTHS = b"JanFebMarAprMayJunJulAugSepOctNovDec"
_MATCH = re.compile(r"[A-Z0-9_]+=.*|\+", re.S)  # journalctl's FIELD=value, or + (or)


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry as a syslog line has it (see the module docstring)."""

    usec: int  # __REALTIME_TIMESTAMP
    ts: int  # the machine's wall clock, as epoch seconds counted as if it were UTC
    host: bytes
    prog: bytes
    pid: bytes
    msg: bytes
    transport: bytes = b""
    cursor: bytes = b""
    # every field journalctl gave (a fail2ban filter's journalmatch tests them)
    fields: Fields | None = field(default=None, compare=False, repr=False)

    def frame(self) -> Frame:
        return self.ts, self.host, self.prog, self.pid, self.msg

    def line(self) -> bytes:
        """The entry as a BSD syslog line (``Sep  1 10:00:00 host prog[pid]: msg``)."""
        stamp = _stamp(self.ts)[0]
        host = self.host or b"localhost"
        if not self.prog:
            return b"%s %s %s" % (stamp, host, self.msg)
        tag = self.prog + (b"[" + self.pid + b"]" if self.pid else b"")
        return b"%s %s %s: %s" % (stamp, host, tag, self.msg)

    @property
    def year(self) -> int:
        return _stamp(self.ts)[1]


_STAMPS: dict[int, tuple[bytes, int]] = {}


def _stamp(ts: int) -> tuple[bytes, int]:
    """The BSD timestamp of a wall-clock second, and its year (a busy journal repeats each
    second often)."""
    got = _STAMPS.get(ts)
    if got is None:
        t = time.gmtime(ts)
        month = _MONTHS[(t.tm_mon - 1) * 3 : t.tm_mon * 3]
        stamp = b"%s %2d %02d:%02d:%02d" % (month, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
        if len(_STAMPS) > 20_000:
            _STAMPS.clear()
        got = _STAMPS[ts] = (stamp, t.tm_year)
    return got


@dataclass(frozen=True, slots=True)
class Lines:
    """Entries of one year as syslog lines (BSD-stamped, one per entry, each ending in a
    newline), which the framer reads back as exactly the entries' frames: see
    :class:`Texts`."""

    year: int
    block: bytes
    count: int


# a host and a program the framer reads back as they are, in "host prog[pid]: "
_HOST = re.compile(rb"[\x21-\x5a\x5c-\x7e\x80-\xff][\x21-\x7e\x80-\xff]*")
_PROG = re.compile(rb"[\x21-\x39\x3b-\x5a\x5c\x5e-\x7e\x80-\xff]+")
ZONE_SPAN = 900  # zone offsets change on a quarter hour at the finest
_SECONDS = tuple(b"%02d" % s for s in range(60))
_PICK = operator.itemgetter(b"__REALTIME_TIMESTAMP", b"_HOSTNAME", b"SYSLOG_IDENTIFIER", b"MESSAGE")


class Texts:
    """Turns entries into :class:`Lines` in bulk, for the scanner's block reader.

    An entry whose syslog line would not frame back to it (no host or program, a host or
    program with spaces or brackets, a PID that is not a number, a message of several
    lines or with a carriage return or NUL) stays an :class:`Entry`, in its place.
    """

    def __init__(self) -> None:
        self._heads: dict[tuple[bytes, bytes], bytes | None] = {}  # " host prog"
        self.zones: dict[int, int | None] = {}  # quarter hour -> the zone's offset then
        self._minutes: dict[int, tuple[bytes, int]] = {}  # "Sep  1 10:00:", the year

    def convert(self, batch: Sequence[Fields]) -> list[Lines | Entry]:
        out: list[Lines | Entry] = []
        lines: list[bytes] = []
        year = 0
        heads, zone, minutes = self._heads, self.zones, self._minutes
        for fields in batch:
            # the common entry in a few lookups, each raising KeyError when it is not one
            # (missing fields, a program or PID found elsewhere, a time not seen yet)
            try:
                usec, host, prog, msg = _PICK(fields)
                head = heads[(host, prog)]
                pid = fields.get(b"_PID")
                if pid is None:
                    tag = b": "
                    if b"SYSLOG_PID" in fields:
                        raise KeyError(pid)
                elif pid.isdigit():
                    tag = b"[" + pid + b"]: "
                else:  # empty (SYSLOG_PID then), or not a number
                    raise KeyError(pid)
                sec = int(usec) // 1_000_000
                off = zone[sec // ZONE_SPAN]
                if head is None or off is None or b"\n" in msg or b"\r" in msg or b"\0" in msg:
                    raise KeyError(usec)
                t = sec + off
                minute, y = minutes[t // 60]
                line: bytes | Entry | None = minute + _SECONDS[t % 60] + head + tag + msg
            except (KeyError, ValueError):
                line, y = self._slow(fields)
            if type(line) is bytes:
                if y != year:
                    if lines:
                        out.append(Lines(year, b"\n".join(lines) + b"\n", len(lines)))
                        lines = []
                    year = y
                lines.append(line)
            elif line is not None:
                if lines:
                    out.append(Lines(year, b"\n".join(lines) + b"\n", len(lines)))
                    lines = []
                out.append(line)  # type: ignore[arg-type]  # an Entry
        if lines:
            out.append(Lines(year, b"\n".join(lines) + b"\n", len(lines)))
        return out

    def take(self, items: Sequence[Fields | Run]) -> list[Lines | Entry]:
        """As :meth:`convert`, for what :meth:`ExportParser.feed_lines` gives: runs of lines
        made already, and entries still to convert."""
        out: list[Lines | Entry] = []
        todo: list[Fields] = []
        for item in items:
            if type(item) is tuple:
                if todo:
                    out += self.convert(todo)
                    todo = []
                out.append(Lines(*item))
            else:
                todo.append(item)  # type: ignore[arg-type]  # Fields
        if todo:
            out += self.convert(todo)
        return out

    def _slow(self, fields: Fields) -> tuple[bytes | Entry | None, int]:
        """An entry's line and year; else the entry (no line reads back as it), or None
        (no time or no message: :func:`entry`)."""
        get = fields.get
        msg = get(b"MESSAGE")
        prog = get(b"SYSLOG_IDENTIFIER") or get(b"_COMM")
        if not prog and get(b"_TRANSPORT") == b"kernel":
            prog = b"kernel"
        key = (get(b"_HOSTNAME", b""), prog or b"")
        head = self._heads[key] if key in self._heads else self._head(key)
        pid = get(b"_PID") or get(b"SYSLOG_PID") or b""
        ts = self._wall(get(b"__REALTIME_TIMESTAMP"))
        if (
            head is None
            or not (pid.isdigit() or not pid)
            or ts is None
            or msg is None
            or any(c in msg for c in b"\n\r\0")
        ):
            return entry(fields), 0
        stamp, year = _stamp(ts)
        if len(self._minutes) > 20_000:
            self._minutes.clear()
        self._minutes[ts // 60] = stamp[:-2], year
        return stamp + head + (b"[" + pid + b"]: " if pid else b": ") + msg, year

    def _head(self, key: tuple[bytes, bytes]) -> bytes | None:
        """ " host prog", or None when the framer would not read them back."""
        host, prog = key
        if _HOST.fullmatch(host) is None or host[-1:] == b":" or _PROG.fullmatch(prog) is None:
            head = None
        else:
            head = b" " + host + b" " + prog
        if len(self._heads) > 10_000:
            self._heads.clear()
        self._heads[key] = head
        return head

    def zone(self, span: int) -> int | None:
        """The zone's offset in a quarter hour (``seconds // ZONE_SPAN``), looked up once; None
        when it changes inside (then each second is asked) or cannot be known."""
        try:
            return self.zones[span]
        except KeyError:
            pass
        start = span * ZONE_SPAN
        try:
            off: int | None = time.localtime(start).tm_gmtoff
            if time.localtime(start + ZONE_SPAN - 1).tm_gmtoff != off:
                off = None  # a change of offset inside: ask for each second
        except (OverflowError, OSError, ValueError):
            off = None
        if len(self.zones) > 100_000:
            self.zones.clear()
        self.zones[span] = off
        return off

    def _wall(self, usec: bytes | None) -> int | None:
        """:func:`wall_clock` of a timestamp field, the zone's offset looked up once a
        quarter hour; None when it is missing or out of range (:func:`entry` decides)."""
        try:
            sec = int(usec) // 1_000_000  # type: ignore[arg-type]
            off = self.zone(sec // ZONE_SPAN)
            ts = sec + (time.localtime(sec).tm_gmtoff if off is None else off)
        except (TypeError, OverflowError, OSError, ValueError):
            return None
        return ts if _YEAR_MIN <= ts < _YEAR_MAX else None


_YEAR_MIN = -62135596800  # 0001-01-01, as epoch seconds
_YEAR_MAX = 253402300800  # 10000-01-01


def wall_clock(usec: int) -> int:
    """Seconds of the machine's wall clock at ``usec`` (µs since the epoch), counted as if
    they were UTC: how the framer counts a syslog line's time."""
    sec = usec // 1_000_000
    return sec + time.localtime(sec).tm_gmtoff


def entry(fields: Fields) -> Entry | None:
    """The syslog view of one entry's fields (None: no time or no message)."""
    try:
        usec = int(fields[b"__REALTIME_TIMESTAMP"])
        msg = fields[b"MESSAGE"]
    except (KeyError, ValueError):
        return None
    try:
        ts = wall_clock(usec)
    except (OverflowError, OSError, ValueError):
        return None
    transport = fields.get(b"_TRANSPORT", b"")
    prog = fields.get(b"SYSLOG_IDENTIFIER") or fields.get(b"_COMM") or b""
    if not prog and transport == b"kernel":
        prog = b"kernel"
    return Entry(
        usec,
        ts,
        fields.get(b"_HOSTNAME", b""),
        prog,
        fields.get(b"_PID") or fields.get(b"SYSLOG_PID") or b"",
        msg,
        transport,
        fields.get(b"__CURSOR", b""),
        fields,
    )


@dataclass(frozen=True)
class Source:
    """Which journal to read: journal ``files``, a ``directory`` of them, or this machine's
    (``local``); the entries of a time ``window`` only (:mod:`todokede.logs.window`), and
    of the journalctl ``matches`` only (``_SYSTEMD_UNIT=dovecot.service``, ``+`` for "or")."""

    files: tuple[Path, ...] = ()
    directory: Path | None = None
    local: bool = False
    window: Window | None = None
    matches: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.files:
            return ",".join(str(f) for f in self.files)
        return str(self.directory) if self.directory else "journal"

    def command(self, *, follow: bool = False, after_cursor: bytes = b"") -> list[str]:
        """The journalctl command line (checks the files first: see :func:`check`)."""
        exe = shutil.which(JOURNALCTL)
        if exe is None:
            raise LogError(
                "journalctl not found: the journal is read through systemd's journalctl "
                "(Debian package systemd)",
                source=self.name,
            )
        if not (self.files or self.directory or self.local):
            raise LogError("no journal named (files, a directory, or this machine's)")
        args = [exe, "--no-pager", "-q", "-o", "export", "--output-fields=" + ",".join(FIELDS)]
        for f in self.files:
            check(f)
            args += ["--file", str(f)]
        if self.directory is not None:
            if not self.directory.is_dir():
                raise LogError("not a directory", source=str(self.directory))
            args += ["--directory", str(self.directory)]
        if self.window is not None:
            args += self.window.journalctl()
        if after_cursor:
            args += ["--after-cursor", after_cursor.decode("ascii", "replace")]
        if follow:
            args += ["--follow", "--no-tail"]
        for m in self.matches:
            # a match is a positional argument: one that looked like an option would be one
            if _MATCH.fullmatch(m) is None:
                raise LogError(f"not a journal match: {m!r} (FIELD=value)", source=self.name)
        return args + list(self.matches)


def check(path: Path) -> None:
    """A journal file that journalctl can be given, else :class:`LogError` saying why."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
    except OSError as exc:
        raise LogError(f"cannot open: {exc.strerror}", source=str(path)) from exc
    if head != MAGIC:
        raise LogError("not a systemd journal file (no journal signature)", source=str(path))


class Reader:
    """A running ``journalctl`` and the entries it has printed so far.

    ``poll(timeout)`` returns the entries that came within ``timeout`` seconds (an empty
    list: none yet); ``done`` is true once journalctl has exited and everything was read.
    """

    def __init__(self, source: Source, *, follow: bool = False, after_cursor: bytes = b"") -> None:
        self.source = source
        self.cursor = after_cursor  # the last entry's, to resume after
        self.done = False
        self.warnings: list[str] = []
        self._parser = ExportParser(source.name)
        args = source.command(follow=follow, after_cursor=after_cursor)
        # a file, not a pipe: journalctl's warnings can never fill a pipe nobody reads yet
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err
            )
        except OSError as exc:
            self._err.close()
            raise LogError(f"cannot run journalctl: {exc.strerror}", source=source.name) from exc
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        # a big pipe: journalctl writes on while the entries before are read (two cores)
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._texts = Texts()

    def poll(self, timeout: float | None = None) -> list[Entry]:
        out = []
        for fields in self._read(timeout, None):
            e = entry(fields)  # type: ignore[arg-type]  # Fields only without texts
            if e is not None:
                out.append(e)
        if out and out[-1].cursor:
            self.cursor = out[-1].cursor
        return out

    def poll_lines(self, timeout: float | None = None) -> list[Lines | Entry]:
        """As :meth:`poll`, the entries turned into syslog lines in bulk (:class:`Texts`)."""
        batch = self._read(timeout, self._texts)
        if batch and self._parser.cursor is not None:
            self.cursor = self._parser.cursor
        return self._texts.take(batch)

    def poll_both(
        self, take: Callable[[Fields], bool], timeout: float | None = None
    ) -> tuple[list[Lines | Entry], list[Entry]]:
        """As :meth:`poll_lines`, and the entries (as :meth:`poll` gives them) whose fields
        ``take`` takes: a filter's, whose journalmatch reads few of them."""
        batch: list[Fields] = self._read(timeout, None)  # type: ignore[assignment]  # Fields only
        if batch and b"__CURSOR" in batch[-1]:
            self.cursor = batch[-1][b"__CURSOR"]
        taken = [e for e in map(entry, filter(take, batch)) if e is not None]
        return self._texts.convert(batch), taken

    def _read(self, timeout: float | None, texts: Texts | None) -> list[Fields | Run]:
        if self.done:
            return []
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self._fd, READ_SIZE)
        if not data:
            return self._finish(texts)
        if texts is None:
            return self._parser.feed(data)  # type: ignore[return-value]  # invariance
        return self._parser.feed_lines(data, texts)

    def _finish(self, texts: Texts | None) -> list[Fields | Run]:
        self.done = True
        proc = self._proc
        proc.wait(timeout=10)
        self._err.seek(0)
        err = self._err.read(1 << 16).decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            raise LogError(
                f"journalctl failed (exit {proc.returncode}): {err or 'no message'}",
                source=self.source.name,
            )
        # journalctl skips what it cannot read (a truncated file) and says so
        self.warnings += [f"{self.source.name}: journalctl: {line}" for line in err.splitlines()]
        return self._parser.end(texts)

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        self._err.close()


def journal_entries(
    files: Sequence[Path] = (),
    directory: Path | None = None,
    local: bool = False,
    since: str | None = None,
    until: str | None = None,
    follow: bool = False,
    *,
    after_cursor: bytes = b"",
    matches: Sequence[str] = (),
    stop: Callable[[], bool] | None = None,
    on_idle: Callable[[], None] | None = None,
    interval: float = 0.25,
) -> Iterator[Entry]:
    """The entries of a journal, oldest first, through one ``journalctl -o export``.

    ``files``: journal files (``journalctl --file``); ``directory``: a directory of them
    (``--directory``); ``local``: this machine's journal (root, or the ``adm`` or
    ``systemd-journal`` group); ``since``/``until``: as ``scan --since`` takes them
    (:func:`todokede.logs.window.parse_time`: "2026-12-01 10:00:00", "yesterday", "-1h").
    ``follow``: after the entries there are, wait for new ones until ``stop()`` is true,
    calling ``on_idle()`` when ``interval`` seconds pass without one; ``after_cursor``
    resumes after an entry (:attr:`Entry.cursor`); ``matches``: journalctl's field matches
    (``_SYSTEMD_UNIT=sshd.service``). Raises :class:`LogError` when
    journalctl is missing, a file is not a journal, or journalctl fails.
    """
    window = Window.parse(since, until)
    source = Source(tuple(Path(f) for f in files), directory, local, window, tuple(matches))
    reader = Reader(source, follow=follow, after_cursor=after_cursor)
    try:
        while not reader.done and not (stop is not None and stop()):
            got = reader.poll(interval if follow else None)
            yield from got
            if not got and follow and on_idle is not None:
                on_idle()
    finally:
        reader.close()


def journal_events(
    files: Sequence[Path] = (),
    directory: Path | None = None,
    local: bool = False,
    since: str | None = None,
    until: str | None = None,
    follow: bool = False,
    *,
    after_cursor: bytes = b"",
    matches: Sequence[str] = (),
    stop: Callable[[], bool] | None = None,
    on_idle: Callable[[], None] | None = None,
    interval: float = 0.25,
) -> Iterator[tuple[Entry, Event]]:
    """The events of a journal: ``(entry, event)`` for each entry a parser reads, the same
    :class:`Event` its syslog line gives (:func:`todokede.logs.parse_frame`). The arguments
    are those of :func:`journal_entries`; ``entry.cursor`` is where to resume.
    """
    from todokede.logs import parse_frame

    entries = journal_entries(
        files,
        directory,
        local,
        since,
        until,
        follow,
        after_cursor=after_cursor,
        matches=matches,
        stop=stop,
        on_idle=on_idle,
        interval=interval,
    )
    for e in entries:
        ev = parse_frame(e.frame())
        if ev is not None:
            yield e, ev
