"""Find incidents in logs: ``scan_paths(paths) -> ScanResult`` with ``.findings``.

    >>> from todokede.detect import scan_paths
    >>> result = scan_paths([Path("/var/log/maillog")], year=1997)
    >>> [f.to_dict() for f in result.findings]

Large plain files are cut into byte ranges read by one process per core; compressed files
and standard input are read in one stream. ``Scanner`` is the incremental form used by
``scan --follow``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from todokede.detect.config import DetectConfig
from todokede.detect.findings import KINDS, Finding, build
from todokede.detect.state import State
from todokede.errors import LogError
from todokede.logs import files
from todokede.logs.fail2ban import Filter
from todokede.logs.journal import Entry, Reader, Source
from todokede.logs.syslog import Framer, YearRule, bsd_month_day
from todokede.logs.window import Window

__all__ = [
    "KINDS",
    "DetectConfig",
    "Finding",
    "ScanResult",
    "Scanner",
    "scan_paths",
    "year_rule",
]

PARALLEL_MIN = 32 << 20  # smaller files are not worth a second process
# the last byte range folds its queued messages when they are more than this many times
# its sender-recipient pairs (_fold_last): records outweighing what they would add
FOLD_LAST = 2

Progress = Callable[[int], None]  # called with bytes read since the last call


@dataclass
class ScanResult:
    findings: list[Finding]
    lines: int
    unparsed: int
    unparsed_examples: list[tuple[str, int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def year_rule(path: Path | str, year: int | None) -> YearRule:
    """How BSD timestamps in ``path`` get their year (see :mod:`todokede.logs.syslog`)."""
    if year is not None:
        md = bsd_month_day(files.first_line(path)) if not files.is_stdin(path) else None
        return YearRule.oldest(year, *(md or (1, 1)))
    if files.is_stdin(path):
        return YearRule.newest(date.today())
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise LogError(f"cannot open: {exc.strerror}", source=str(path)) from exc
    return YearRule.newest(datetime.fromtimestamp(mtime).date())


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while reading a file or building findings: the scan
    makes many small containers and no cycles, and each collection would walk them all."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _jobs(config: DetectConfig) -> int:
    if config.jobs is not None:
        return max(1, config.jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Scanner:
    """Reads logs into one :class:`State`; ``findings()`` can be asked at any time."""

    def __init__(
        self,
        config: DetectConfig | None = None,
        *,
        year: int | None = None,
        native: bool = True,
        window: Window | None = None,
    ) -> None:
        self.config = (config or DetectConfig()).validate()
        self.year = year
        self.window = window  # --since/--until
        self.native = native  # the C scanner, when it was built (else the same, in Python)
        dirs = list(self.config.filter_dirs) or None
        self.filters = [Filter.load(p, dirs) for p in self.config.filters]
        self._journal_filters: list[Filter] | None = None
        self.state = self._new_state()
        self._framers: dict[str, Framer] = {}
        self._lineno: dict[str, int] = {}
        self._read_warnings: list[str] = []

    def _new_state(self) -> State:
        from todokede.detect.config import DEFAULT_LOCAL_NETS

        nets = self.config.local_nets if self.config.local_nets is not None else DEFAULT_LOCAL_NETS
        return State(
            self.filters,
            native=self.native,
            nets=nets,
            admins=self.config.admins,
            own_domains=self.config.local_domains,
            window=self.window,
        )

    @property
    def warnings(self) -> list[str]:
        return [w for f in self.filters for w in f.warnings] + self._read_warnings

    def framer(self, path: Path | str) -> Framer:
        key = str(path)
        fr = self._framers.get(key)
        if fr is None:
            fr = self._framers[key] = Framer(year_rule(path, self.year))
        return fr

    def feed(self, path: Path | str, block: bytes) -> None:
        """Read a block of whole lines that came from ``path`` (in file order)."""
        key = str(path)
        start = self._lineno.get(key, 0) + 1
        self._lineno[key] = start - 1 + self.state.feed(block, self.framer(path), key, start)

    def feed_entries(self, entries: Sequence[Entry], source: str = "journal") -> None:
        """Read journal entries (in the journal's order)."""
        self._journal()
        self.state.feed_entries(entries, source)

    def _journal(self) -> None:
        """The filters loaded again for journal entries (fail2ban's systemd backend:
        ``logtype = journal``), when a journal is first read."""
        if self._journal_filters is None:
            dirs = list(self.config.filter_dirs) or None
            self._journal_filters = [
                Filter.load(p, dirs, journal=True) for p in self.config.filters
            ]
        self.state.journal_filters = self._journal_filters

    def scan_journal(self, source: Source) -> None:
        """Read a journal to its end, through one ``journalctl`` (see
        :mod:`todokede.logs.journal`)."""
        self._journal()
        with _gc_paused():
            reader = Reader(source)
            try:
                journal = self.state.journal_filters
                while not reader.done:
                    if self.filters:
                        # fail2ban filters read entries as its systemd backend gives them,
                        # not the syslog lines the bulk path makes of them; the built-in
                        # parsers read those lines
                        items, taken = reader.poll_both(
                            lambda f: any(flt.reads(f) for flt in journal), None
                        )
                        self.state.feed_journal_apart(items, taken, source.name)
                    else:
                        self.state.feed_journal(reader.poll_lines(None), source.name)
            finally:
                reader.close()
                self._read_warnings += reader.warnings

    def scan(
        self, path: Path | str, progress: Progress | None = None, *, final: bool = False
    ) -> None:
        """Read a log to its end. ``final``: nothing is read after it (no later file or
        journal can continue its mail messages), so that the first byte range of a big file
        may fold at once the messages no later range changes (:meth:`_fold_alone`)."""
        with _gc_paused():
            self._scan(path, progress, final)

    def _scan(self, path: Path | str, progress: Progress | None, final: bool) -> None:
        p = Path(path)
        jobs = _jobs(self.config)
        if (
            jobs > 1
            and not any(f.stateful for f in self.filters)
            and not files.is_stdin(path)
            and p.is_file()
            and p.stat().st_size >= PARALLEL_MIN
            and files.compression(p) is None
        ):
            self._scan_parallel(p, jobs, progress, final)
            return
        read = 0
        # small reads from a compressed stream: a damaged one then loses little
        size = files.BLOCK if files.is_stdin(path) or files.compression(p) is None else 1 << 16
        with files.open_log(path) as fh:
            try:
                for block in files.blocks(fh, size=size):
                    self.feed(path, block)
                    read += len(block)
                    if progress is not None:
                        progress(len(block))
            except LogError as exc:
                if not read:
                    raise
                # a compressed file cut short (still being written, or damaged): keep what
                # was read and say so
                self._read_warnings.append(f"{exc} (after {read} bytes; the rest is skipped)")

    def _scan_parallel(self, path: Path, jobs: int, progress: Progress | None, final: bool) -> None:
        framer = self.framer(path)
        ranges = files.byte_ranges(path, jobs)
        ctx = multiprocessing.get_context("fork")
        children = []
        back: Connection | None = None
        for n, (start, end) in enumerate(ranges[1:], 2):
            recv, send = ctx.Pipe(duplex=False)
            # the last range folds its own messages too, once told what earlier ranges
            # have queued (_fold_alone)
            told, back = ctx.Pipe(duplex=False) if final and n == len(ranges) else (None, None)
            # the child takes its state out of the box, so that it can let go of it
            box = [self._new_state()]
            proc = ctx.Process(
                target=_child,
                args=(send, final, path, start, end, framer, box, told),
                daemon=True,
            )
            proc.start()
            send.close()
            if told is not None:
                told.close()
            children.append((proc, recv, end - start))
        key = str(path)
        try:
            start, end = ranges[0]
            for block in files.read_range(path, start, end):
                self.feed(path, block)
                if progress is not None:
                    progress(len(block))
            if final:
                self._fold_alone(key, children, back)
            for proc, recv, size in children:
                try:
                    tag = recv.recv_bytes()
                    queued = recv.recv_bytes() if tag == b"P" else b""
                    payload = recv.recv_bytes() if tag == b"P" else b""
                except EOFError as exc:
                    raise LogError("a worker process died while reading", source=key) from exc
                finally:
                    recv.close()
                proc.join()
                if tag[:1] == b"E":
                    raise LogError(tag[1:].decode("utf-8", "replace"), source=key)
                part: State = pickle.loads(payload)  # noqa: S301 - our own child's pickle
                del payload
                part.unpack_queue(queued)
                del queued
                before = self._lineno.get(key, 0)
                self.state.merge(part, line_offset=before)
                self._lineno[key] = before + part.lines
                del part
                if progress is not None:
                    progress(size)
        finally:
            if back is not None:
                back.close()
            for proc, _recv, _ in children:
                if proc.is_alive():
                    proc.kill()
                proc.join()

    def _fold_alone(
        self,
        key: str,
        children: Sequence[tuple[BaseProcess, Connection, int]],
        back: Connection | None,
    ) -> None:
        """Fold the messages of this process's range that no later range can change, while
        the children pack theirs, instead of folding all of them at the end: sendmail never
        says it is done with a message, so most of a sendmail log's are still queued at its
        end. The children offer the tags of their queued messages (:meth:`Queue.tags`) and
        their notices first; the messages kept (:func:`_kept`) are merged in file order as
        before. The last range (``back``: a pipe to its process) is then told the tags of
        the messages the earlier ranges have queued, and every range's notices, to fold
        those of its own that no earlier range continues (:func:`_fold_last`); the other
        children send theirs as records, which the parent folds at the end."""
        offers = [(self.state.msgs.tags(), self.state.notices)]
        for _proc, recv, _size in children:
            try:
                offer = recv.recv_bytes()
            except EOFError as exc:
                raise LogError("a worker process died while reading", source=key) from exc
            if offer[:1] == b"E":
                raise LogError(offer[1:].decode("utf-8", "replace"), source=key)
            offers.append(pickle.loads(offer[1:]))  # noqa: S301 - our own child's pickle
        notices = set().union(*(theirs for _, theirs in offers))
        # the last range first: its fold and this one's then run side by side
        if back is not None:
            every = b"".join(tags[0] for tags, _ in offers[:-1])
            no_sender = b"".join(tags[1] for tags, _ in offers[:-1])
            told = (every, no_sender, notices)
            try:
                back.send_bytes(pickle.dumps(told, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError as exc:
                raise LogError("a worker process died while reading", source=key) from exc
            finally:
                back.close()
        keep = _kept([tags for tags, _ in offers])
        del offers
        self.state.fold_alone(keep, notices)

    def findings(self) -> list[Finding]:
        return build(self.state, self.config)

    def result(self) -> ScanResult:
        """The findings of everything read so far; the scanner is used up."""
        with _gc_paused():
            findings = build(self.state, self.config, consume=True)
        return ScanResult(
            findings,
            self.state.lines,
            self.state.unparsed,
            list(self.state.unparsed_examples),
            self.warnings,
        )


def _kept(offers: list[tuple[bytes, bytes, bytes]]) -> set[int]:
    """The tags of the first range's queued messages that it keeps queued, given each
    range's :meth:`Queue.tags` in file order. Merging the queues in file order
    (:meth:`Queue.merge`) leaves a message queued in the first range only as it is, so it
    is folded at once. For a key also queued in a later range, the next such range
    decides: the merge folds the first range's message as it is when it has a sender and
    the later one a client (the queue id used again), and merges the two otherwise, when
    the message is kept.

    Two keys with one tag (a 64-bit hash) change no result: each test only keeps more (a
    tag without a sender or a client if one of its messages has none), and a message
    folded for a tag it shares is folded as it is either way."""
    undecided = _tags(offers[0][0])
    no_sender = _tags(offers[0][1])
    keep: set[int] = set()
    for every, _, no_client in offers[1:]:
        met = undecided.intersection(memoryview(every).cast("Q"))
        keep |= met & (no_sender | _tags(no_client))
        undecided -= met
    return keep


def _fold_last(state: State, told: Connection, no_client: bytes) -> None:
    """In the last byte range of a file nothing is read after: fold the messages of this
    range that merging the ranges in file order leaves as they are (:func:`_kept`, seen
    from this side: those no earlier range has queued, and those with a client whose key
    every earlier range that has it queued gave a sender), as the end of the log would fold
    them, with every range's notices. Their aggregates then travel to the parent instead of
    their records, which pays when the records are the bigger: when most of the range's
    messages are still queued (sendmail never says that it is done with one), not when most
    were folded as the range was read (Postfix logs ``removed``) and the few left would add
    more to the aggregates than they weigh (:data:`FOLD_LAST`). ``no_client``: the tags of
    this range's queued messages without a client (:meth:`Queue.tags`)."""
    try:
        every, no_sender, notices = pickle.loads(told.recv_bytes())  # noqa: S301 - our parent's
    except EOFError:
        return  # the parent gave up: it reads nothing this process sends either
    finally:
        told.close()
    if len(state.msgs) <= FOLD_LAST * len(state.mail.pairs):
        return
    keep = (_tags(no_sender) | _tags(no_client)).intersection(memoryview(every).cast("Q"))
    state.fold_alone(keep, notices)


def _tags(blob: bytes) -> set[int]:
    """The tags packed by :meth:`Queue.tags`."""
    return set(memoryview(blob).cast("Q"))


def _child(
    send: Connection,
    offer: bool,
    path: Path,
    start: int,
    end: int,
    framer: Framer,
    box: list[State],
    told: Connection | None = None,
) -> None:
    """Read one byte range and send back what it found. Messages still queued at the end of
    the range are sent as they are: the parent folds them with its own at the end, in time
    order, as one pass over the file does. With ``offer`` (nothing is read after the file)
    the tags of the messages it has queued and its notices go first
    (:meth:`Scanner._fold_alone`); the last range (``told``) then folds its own
    (:func:`_fold_last`)."""
    state = box.pop()
    try:
        lineno = 1
        for block in files.read_range(path, start, end):
            lineno += state.feed(block, framer, str(path), lineno)
        if offer:
            tags = (state.msgs.tags(), state.notices)
            send.send_bytes(b"K" + pickle.dumps(tags, protocol=pickle.HIGHEST_PROTOCOL))
            if told is not None:
                _fold_last(state, told, tags[0][2])
            del tags
        # the C queue packs its messages itself, and lets go of them before the rest is
        # pickled: the two are never held twice at once
        queued = state.pack_queue()
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
        # no memo: it would hold an entry for every object pickled, more than the
        # payload itself (the state has no cycles; strings shared by messages are
        # written again)
        pickler.fast = True
        pickler.dump(state)
        payload = buf.getbuffer()
    except Exception as exc:
        send.send_bytes(b"E" + str(exc).encode())
        send.close()
        return
    # the parent holds its own state and this payload at once: hold only the payload here
    del state
    send.send_bytes(b"P")
    send.send_bytes(queued)
    del queued
    send.send_bytes(payload)
    send.close()


def scan_paths(
    paths: Sequence[Path],
    *,
    year: int | None = None,
    config: DetectConfig | None = None,
    progress: Progress | None = None,
    journal: Source | None = None,
    window: Window | None = None,
) -> ScanResult:
    """Scan log files (plain, .gz, .bz2, .xz; '-' for stdin) and a journal (journal files,
    a directory of them, or this machine's: :class:`todokede.logs.journal.Source`), and
    return the findings.

    Rotated sets are read oldest first (``maillog.2.gz``, ``maillog.1``, ``maillog``).
    ``window`` keeps the lines of a time span only (``--since``/``--until``; give the
    journal's source the same one).
    """
    scanner = Scanner(config, year=year, window=window)
    ordered = files.time_order([Path(p) for p in paths])
    # one pause from the first file to the findings: a collection between them would walk
    # every object of the state, which is let go of before the findings are returned
    with _gc_paused():
        for n, path in enumerate(ordered):
            scanner.scan(path, progress, final=n == len(ordered) - 1 and journal is None)
        if journal is not None:
            scanner.scan_journal(journal)
        result = scanner.result()
        del scanner
    return result
