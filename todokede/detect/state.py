"""What a scan remembers while it reads: small aggregates, mergeable in file order.

The hot loop frames each line and hands it to the one parser its program calls for; lines
of programs that cannot matter cost one framing and a few byte comparisons. Byte ranges of a
big file are read by separate processes, each into its own :class:`State`, and merged.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from todokede.detect import bulk
from todokede.detect.mailagg import MailAgg, Nets, Pair
from todokede.detect.queue import Done, Msg, MsgKey, Queue, Rcpt, new_queue
from todokede.logs import auth, imap, mail, tcpd
from todokede.logs.events import Event
from todokede.logs.fail2ban import Failure, Filter
from todokede.logs.journal import Entry, Lines
from todokede.logs.syslog import Frame, Framer, YearRule
from todokede.logs.text import decode
from todokede.logs.window import Window

try:
    from todokede.detect import _fast
except ImportError:  # built without a C compiler: the Python path
    _fast = None  # type: ignore[assignment]

EVIDENCE = 5
SASL_FAILED = b"authentication failed"  # Postfix: "SASL LOGIN authentication failed"
UNPARSED_EXAMPLES = 5
_EPOCH = datetime.datetime(1970, 1, 1)  # a journal entry's wall clock counts from here
# an empty line or one not starting with a letter or digit: a filter takes it one by one
# (fail2ban passes over empty and comment lines; a date may follow punctuation)
_ODD_LINE = re.compile(rb"(?m)^(?:[^A-Za-z0-9_]|$)")


class Agg:
    """Count, time span, a few raw lines, and who/what was involved."""

    __slots__ = (
        "addrs",
        "count",
        "first",
        "last",
        "last_line",
        "lines",
        "names",
        "targets",
        "users",
    )

    def __init__(self) -> None:
        self.count = 0
        self.first = 0
        self.last = 0
        self.lines: list[bytes] = []
        self.last_line = b""
        self.names: set[str] = set()
        self.addrs: set[str] = set()
        self.targets: set[str] = set()
        self.users: set[str] = set()

    def add(self, ts: int, raw: bytes, ev: Event, target: str) -> None:
        self.add_fields(ts, raw, ev.host, ev.addr, ev.user, target)

    def add_fields(self, ts: int, raw: bytes, host: str, addr: str, user: str, target: str) -> None:
        if self.count == 0 or ts < self.first:
            self.first = ts
        if ts > self.last or self.count == 0:
            self.last = ts
        self.count += 1
        if len(self.lines) < EVIDENCE - 1:
            self.lines.append(raw)
        else:
            self.last_line = raw
        if host:
            self.names.add(host)
        if addr:
            self.addrs.add(addr)
        if target:
            self.targets.add(target)
        if user and len(self.users) < 20:
            self.users.add(user)

    def merge(self, other: Agg) -> None:
        if other.count == 0:
            return
        if self.count == 0 or other.first < self.first:
            self.first = other.first
        if other.last > self.last or self.count == 0:
            self.last = other.last
        self.count += other.count
        room = EVIDENCE - 1 - len(self.lines)
        self.lines.extend(other.lines[:room])
        rest = other.lines[room:] + ([other.last_line] if other.last_line else [])
        if rest:
            self.last_line = rest[-1]
        self.names |= other.names
        self.addrs |= other.addrs
        self.targets |= other.targets
        self.users |= other.users

    def evidence(self) -> list[str]:
        raw = self.lines + ([self.last_line] if self.last_line else [])
        return [decode(r) for r in raw]


class State:
    def __init__(
        self,
        filters: list[Filter] | None = None,
        *,
        fast: bool = True,
        native: bool = True,
        nets: tuple[str, ...] = (),
        admins: tuple[str, ...] = ("root", "postmaster"),
        own_domains: tuple[str, ...] | None = None,
        window: Window | None = None,
    ) -> None:

        self.filters = filters or []
        # lines outside the window are skipped, which the fast paths do not know how to do
        self.window = window
        self.fast = fast and window is None
        self.nets = Nets(nets)
        self.admins = frozenset(a.lower() for a in admins)
        self.native = native and _fast is not None  # the C scanner was built
        self.mail = MailAgg(own_domains, native=self.native)
        self.lines = 0
        self.unparsed = 0
        self.unparsed_examples: list[tuple[str, int, str]] = []
        self._unparsed_raw: list[bytes] = []  # their lines, while a bulk pass renumbers them
        self.refused: dict[tuple[str, str], Agg] = {}
        # (program, client text) -> [count, first line, its source, last line, its source]
        self.granted: dict[tuple[bytes, bytes], list[object]] = {}
        self.rules: dict[str, YearRule] = {}
        self.framers: dict[str, Framer] = {}  # of the journal's years (feed_journal)
        self.names: dict[str, str] = {}  # host name -> address, from tcpd lines with both
        self.notices: set[MsgKey] = set()
        self.msgs = new_queue(self.folder(self.mail), native=self.native)
        self.rejects: dict[tuple[str, str], Agg] = {}
        self.exploits: dict[tuple[str, str], Agg] = {}
        self.failures: dict[tuple[str, str], Agg] = {}
        # failed logins (sshd, IMAP/POP, SMTP AUTH) by (service, client), and the tries
        # their lines stand for (see todokede.logs.auth)
        self.auth: dict[tuple[str, str], Agg] = {}
        self.tries: dict[tuple[str, str], int] = {}
        self.logins: set[str] = set()
        self._last_ts: dict[str, int] = {}  # per log: the time of its last filter match
        self._needles = _needles(self.filters)
        self._taken: set[int] = set()  # line numbers of a block's lines a filter took
        # the same filters for journal entries (logtype journal), set when a journal is read
        self.journal_filters: list[Filter] = []

    # -- reading -------------------------------------------------------------------------

    def feed(self, block: bytes, framer: Framer, source: str, lineno: int) -> int:
        """Read a block of whole lines; ``lineno`` is the file line number of its first line.
        Returns the number of lines read.

        With fail2ban filters, the lines that have none of their needles (see
        :attr:`Filter.needles`) are found in the block by one regex and read as without
        filters; each filter passes over them in bulk when it can (:meth:`Filter.skip`).
        """
        self.rules[source] = framer.rule
        if self.filters and self._needles is not None:
            return self._feed_needles(block, framer, source, lineno, self._needles)
        return self._feed(block, framer, source, lineno)

    def _feed_needles(
        self, block: bytes, framer: Framer, source: str, lineno: int, needles: re.Pattern[bytes]
    ) -> int:
        """The filters read the block's lines in order: those with a needle one by one, the
        runs between in bulk where they can; then the built-in parsers read the whole
        block as without filters (the C loop). A line that is not syslog but that a
        filter matched is no unparsed line: the second pass is told which they are."""
        taken = self._taken
        at, pos = lineno, 0  # the line number at byte pos
        for start, end, hit in _runs(block, needles):
            at += block.count(b"\n", pos, start)
            pos = start
            if not hit:
                self._pass(block[start:end], framer, source)
                continue
            # numbered as the block loop numbers them
            for k, line in enumerate(block[start:end].split(b"\n"), at):
                if line and line[-1] == 13:
                    line = line[:-1]
                if line and self._filters(None, line, source, framer):
                    taken.add(k)
        filters, fast = self.filters, self.fast
        self.filters = []
        if taken and not self.native:
            self.fast = False  # the bulk pass of the Python path loses line numbers
        try:
            return self._feed(block, framer, source, lineno)
        finally:
            self.filters, self.fast = filters, fast
            taken.clear()

    def _pass(self, run: bytes, framer: Framer, source: str) -> None:
        """Lines no failregex can match, for the filters alone: passed over in bulk by
        each filter that can (:meth:`Filter.skip`), else read one by one."""
        filters = self.filters
        todo = self._unskipped(run, source)
        if not todo:
            return
        self.filters = todo
        try:
            for line in _lines(run):
                self._filters(framer.frame(line), line, source)
        finally:
            self.filters = filters

    def _unskipped(self, run: bytes, source: str) -> list[Filter]:
        """The filters that could not pass over ``run`` in bulk (:meth:`Filter.skip`); the
        others have."""
        body = run[:-1] if run.endswith(b"\n") else run
        if body.isascii() and b"\r" not in body and not _ODD_LINE.search(body):
            text, count = body.decode("ascii"), body.count(b"\n") + 1
            return [f for f in self.filters if not f.skip(source, text, count)]
        return self.filters

    def _feed(self, block: bytes, framer: Framer, source: str, lineno: int) -> int:
        """:meth:`feed` without the needles.

        The common lines are handled without a per-line parser: by the C scanner when it
        was built (:mod:`todokede.detect._fast`); else granted tcpd connections in bulk by
        one regex over the block (when they are a good part of it) and BSD-stamped Postfix
        queue lines inline by slicing. Every other line goes through the general path:
        :meth:`Framer.frame` and the parser of its program.
        """
        fast = self.fast and not self.filters
        if fast and self.native and _fast is not None:
            first = lineno - 1
            total = _fast.scan_block(
                block,
                framer.days,
                self.msgs,  # type: ignore[arg-type]  # native: the C queue
                self.granted,
                self.logins,
                source,
                lambda line, n: self._other(line, framer, source, first + n),
                self.refused_connect,
            )
            self.lines += total
            return total
        total = block.count(b"\n") + (1 if block and not block.endswith(b"\n") else 0)
        rest = None
        if fast and block.count(b": connect from ") * 4 >= total > 0:
            rest = bulk.connects(self, block, source, framer)
        if rest is not None:
            examples = len(self.unparsed_examples)
            self._loop(rest, framer, source, None)
            padded, pos = b"\n" + block, 0
            for i in range(examples, len(self.unparsed_examples)):
                # the bulk pass removed lines: find the example's real line number (the
                # next whole line that is the same, after the one found before)
                src, _, text = self.unparsed_examples[i]
                raw = b"\n" + self._unparsed_raw.pop(0)
                at = padded.find(raw, pos)
                while padded[at + len(raw) : at + len(raw) + 1] not in (b"", b"\n", b"\r"):
                    at = padded.find(raw, at + 1)
                pos = at + 1
                self.unparsed_examples[i] = (src, lineno + block.count(b"\n", 0, at), text)
        else:
            self._loop(block, framer, source, lineno)
        self.lines += total
        return total

    def feed_entries(self, entries: Iterable[Entry], source: str) -> int:
        """Read journal entries (:mod:`todokede.logs.journal`): each is the frame of its
        syslog line, and that line its evidence. Returns the number read."""
        filters = self.journal_filters
        n = 0
        for e in entries:
            year = e.year
            key = f"{source}@{year}"  # the evidence lines have no year: one rule a year
            if key not in self.rules:
                self.rules[key] = YearRule.oldest(year, 1, 1)
            line = e.line()
            self._general(e.frame(), line, key)
            if filters:
                self._journal_filters(e, line, source)
            n += 1
        self.lines += n
        return n

    def feed_journal(self, items: Iterable[Lines | Entry], source: str) -> int:
        """Read journal entries as :class:`todokede.logs.journal.Texts` gives them: blocks
        of their syslog lines through :meth:`feed` (the path of a text log), and the few
        entries with no such line one by one (:meth:`feed_entries`). Returns the number
        read."""
        n = 0
        for item in items:
            if isinstance(item, Entry):
                n += self.feed_entries((item,), source)
                continue
            key = f"{source}@{item.year}"  # as feed_entries names them
            framer = self.framers.get(key)
            if framer is None:
                framer = self.framers[key] = Framer(YearRule.oldest(item.year, 1, 1))
            n += self.feed(item.block, framer, key, self.lines + 1)
        return n

    def feed_journal_apart(
        self, items: Iterable[Lines | Entry], entries: Iterable[Entry], source: str
    ) -> int:
        """Journal entries with filters: the built-in parsers read ``items`` as without
        filters (:meth:`feed_journal`, in bulk), then the journal filters read ``entries``
        (those their journalmatch may take, in order) one by one, as :meth:`feed_entries`
        would. Returns the number of entries read."""
        filters, journal = self.filters, self.journal_filters
        self.filters, self.journal_filters = [], []
        try:
            n = self.feed_journal(items, source)
        finally:
            self.filters, self.journal_filters = filters, journal
        for e in entries:
            self._journal_filters(e, e.line(), source)
        return n

    def _loop(self, block: bytes, framer: Framer, source: str, lineno: int | None) -> None:
        bsd_cache = framer.bsd_cache
        bsd_time = framer.bsd_time
        postfix, removed = self.msgs.postfix, self.msgs.removed
        granted = self.granted
        fast = self.fast and not self.filters
        # Postfix's SASL failures go to the general path: one search of the block for them
        sasl = SASL_FAILED in block
        n = 0
        for line in block.split(b"\n"):
            n += 1
            if not line:
                continue
            if line[-1] == 13:
                line = line[:-1]
                if not line:
                    continue
            if fast and line[15:16] == b" " and 65 <= line[0] <= 90:
                sp = line.find(b" ", 16)
                colon = line.find(b": ", sp)
                # the tag as the framer (syslog._tag) reads it, or the general path:
                # "host:" is a tag without a host, a tag with a space no tag, and
                # "prog[pid]" only when it ends with "]"; and a Postfix SASL failure, maybe
                tag = line[sp + 1 : colon]
                if (
                    sp < 0
                    or colon < 0
                    or b" " in tag
                    or (sp > 16 and line[sp - 1] == 58 and line[16] != 91)
                    or (sasl and SASL_FAILED in line)
                ):
                    pass
                elif line.startswith(b"postfix/", sp + 1):
                    q = colon + 2
                    qe = line.find(b": ", q)
                    head = line[qe + 2 : qe + 5] if qe > 0 else b""
                    if head == b"to=" or head == b"fro" or head == b"cli":
                        ts = bsd_cache.get(line[:15])
                        if ts is None:
                            ts = bsd_time(line[:15])
                        bracket = tag.find(b"[")
                        prog = tag[:bracket] if bracket >= 0 and tag[-1:] == b"]" else tag
                        if ts is not None and postfix(
                            ts, line[16:sp], prog, line[q:qe], head, line[qe + 2 :], line
                        ):
                            continue
                    elif head == b"rem" and line[qe + 2 :] == b"removed":
                        if bsd_cache.get(line[:15]) is not None or bsd_time(line[:15]):
                            removed(line[16:sp], line[q:qe])
                            continue
                    elif b"Relay access denied" not in line and (
                        bsd_cache.get(line[:15]) is not None or bsd_time(line[:15])
                    ):
                        # a Postfix line no detector needs (notices: bounces are known by
                        # their null sender; rejects other than relaying)
                        continue
                elif line.startswith(b"connect from ", colon + 2):
                    bracket = tag.find(b"[")
                    prog = tag[:bracket] if bracket >= 0 and tag[-1:] == b"]" else tag
                    key = (prog, line[colon + 15 :])
                    if bsd_cache.get(line[:15]) is not None or bsd_time(line[:15]):
                        seen = granted.get(key)
                        if seen is None:
                            granted[key] = [1, line, source, line, source]
                        else:
                            seen[0] += 1  # type: ignore[operator]
                            seen[3], seen[4] = line, source
                        continue
            self._other(line, framer, source, None if lineno is None else lineno + n - 1)

    def _other(self, line: bytes, framer: Framer, source: str, at: int | None) -> None:
        """A line the fast path did not take (``at``: its line number, None when a bulk
        pass took lines out of the block and it is found later)."""
        f = framer.frame(line)
        if f is None:
            # a line that is not syslog (exim's own log, a web server's...) may still be
            # one a fail2ban filter reads
            if (self.filters and self._filters(None, line, source)) or at in self._taken:
                return
            self.unparsed += 1
            if len(self.unparsed_examples) < UNPARSED_EXAMPLES:
                if at is None:
                    self._unparsed_raw.append(line)
                self.unparsed_examples.append((source, at or 0, decode(line[:200])))
            return
        self._general(f, line, source)
        if self.filters:
            # outside the window too: a filter's dates and multi-line state follow the
            # whole log (its failures out of the window are dropped)
            self._filters(f, line, source)

    def _general(self, f: Frame, line: bytes, source: str) -> None:
        ts, host, prog, _pid, msg = f
        if self.window is not None and ts not in self.window:
            return
        ev: Event | None
        if prog[:8] == b"postfix/":
            if SASL_FAILED in msg:
                ev = auth.postfix_sasl(ts, prog, msg)
                if ev is not None:
                    self._auth(ev, host, line)
            qid, _, rest = msg.partition(b": ")
            head = rest[:3]
            if rest == b"removed":
                self.msgs.removed(host, qid)
            elif not (
                (head == b"to=" or head == b"fro" or head == b"cli")
                and self.msgs.postfix(ts, host, prog, qid, head, rest, line)
            ):
                ev = mail.parse_postfix(ts, prog, msg)
                if ev is not None:
                    self._mail(ev, host, line)
        elif msg[:13] == b"connect from ":
            # before sendmail's own lines: a sendmail run by tcpd from inetd logs these
            key = (prog, msg[13:])
            seen = self.granted.get(key)
            if seen is None:
                self.granted[key] = [1, line, source, line, source]
            else:
                seen[0] += 1  # type: ignore[operator]
                seen[3], seen[4] = line, source
        elif msg[:21] == b"refused connect from ":
            ev = tcpd.parse(ts, prog, msg)
            if ev is not None:
                self._connect(ev, host, line)
        elif prog == b"sendmail" or prog == b"sm-mta":
            ev = auth.sendmail(ts, prog, msg) if b"AUTH failure" in msg else None
            if ev is not None:
                self._auth(ev, host, line)
            else:
                ev = mail.parse_sendmail(ts, prog, msg)
                if ev is not None:
                    self._mail(ev, host, line)
        elif prog in imap.PROGRAMS:
            ev = imap.parse(ts, prog, msg)
            if ev is not None:
                self._imap(ev, host, line)
        elif prog in auth.SSHD:
            ev = auth.sshd(ts, prog, msg)
            if ev is not None:
                self._auth(ev, host, line)

    def folder(self, agg: MailAgg) -> Done:
        """The callback that folds a complete message of the queue into ``agg``: with the
        C scanner a ``_fast.Fold``, which the C queue runs without making Python objects
        for the message (called from Python, it is this same :meth:`MailAgg.add`)."""
        notices, nets, admins = self.notices, self.nets, self.admins
        if self.native and _fast is not None:
            return _fast.Fold(agg, notices, nets, admins, Pair, agg.new_relay)

        def fold(
            key: MsgKey,
            ts: int,
            service: str,
            host: str,
            addr: str,
            sender: str | None,
            size: int,
            rcpts: list[Rcpt],
            raw: list[bytes],
        ) -> None:
            agg.add(service, ts, host, addr, sender, size, rcpts, raw, key in notices, nets, admins)

        return fold

    def _connect(self, ev: Event, host: bytes, raw: bytes) -> None:
        """A refused connection (granted ones are only counted, in :meth:`feed`)."""
        target = host.decode("ascii", "replace")
        self.refused_connect(ev.service, ev.ts, ev.host, ev.addr, ev.user, raw, target)

    def refused_connect(
        self, service: str, ts: int, host: str, addr: str, user: str, raw: bytes, target: str
    ) -> None:
        """A refused connection's fields (``target``: the logging host), as
        :func:`tcpd.parse` reads them; the C loop calls this too."""
        key = addr or host
        if host and addr:
            self.names[host.lower()] = addr
        agg = self.refused.get((service, key))
        if agg is None:
            agg = self.refused[(service, key)] = Agg()
        agg.add_fields(ts, raw, host, addr, user, target)

    def _mail(self, ev: Event, host: bytes, raw: bytes) -> None:
        kind = ev.kind
        if kind == "reject":
            if ev.status == "relay-denied":
                key = (ev.service, ev.addr or ev.host)
                agg = self.rejects.get(key)
                if agg is None:
                    agg = self.rejects[key] = Agg()
                agg.add(ev.ts, raw, ev, ev.rcpts[0].rpartition("@")[2] if ev.rcpts else "")
            return
        if kind == "notice":
            if not ev.service.startswith("postfix/"):  # Postfix notices have a null sender
                self.notices.add((host, ev.via.encode()))
            return
        mkey = (host, ev.qid.encode())
        queue = self.msgs
        m = queue.take(mkey)
        if kind == "from":
            if m is not None and m.sent_from:
                queue.retire(m)  # sendmail reuses queue ids: this is a new message
                m = None
            if m is None:
                m = Msg(mkey, ev.ts, ev.service)
            m.sent_from = True
            m.sender, m.size = ev.sender, ev.size
            if ev.host or ev.addr:
                m.host, m.addr = ev.host, ev.addr
                m.service = ev.service
            if len(m.raw) < 2:
                m.raw.append(raw)
            queue.put(m)
            return
        if m is None:
            m = Msg(mkey, ev.ts, ev.service)
        if kind == "client":
            m.host, m.addr, m.service, m.ts = ev.host, ev.addr, ev.service, min(m.ts, ev.ts)
            if len(m.raw) < 2:
                m.raw.insert(0, raw)
        elif kind == "to":
            for r in ev.rcpts:
                m.add_rcpt((r, ev.via, ev.status, ev.detail, ev.ts))
            if len(m.raw) < 2:
                m.raw.append(raw)
        queue.put(m)

    def _imap(self, ev: Event, host: bytes, raw: bytes) -> None:
        if ev.kind == "failure":
            self._auth(ev, host, raw)
            return
        if ev.kind == "login":
            if ev.addr or ev.host:
                self.logins.add(ev.addr or ev.host)
            return
        key = (ev.service, ev.addr or ev.host or "unknown")
        agg = self.exploits.get(key)
        if agg is None:
            agg = self.exploits[key] = Agg()
        agg.add(ev.ts, raw, ev, host.decode("ascii", "replace"))

    def _auth(self, ev: Event, host: bytes, raw: bytes) -> None:
        """A failed login (``ev.size``: the tries its line stands for)."""
        key = (ev.service, ev.addr or ev.host or "unknown")
        agg = self.auth.get(key)
        if agg is None:
            agg = self.auth[key] = Agg()
            self.tries[key] = 0
        agg.add(ev.ts, raw, ev, host.decode("ascii", "replace"))
        self.tries[key] += ev.size

    def _filters(
        self, f: Frame | None, raw: bytes, source: str, framer: Framer | None = None
    ) -> bool:
        """Each filter over the whole line, as fail2ban reads it (its own date detection
        decides what is cut out). The time is the syslog stamp when the line has one
        (it knows the year), else the date the filter found. True if a filter matched a
        line that is not syslog (``f`` None: it is read, not unparsed, even when its time
        is outside the window). With ``framer`` the line is framed only if a filter
        matches it."""
        text = decode(raw)
        found = False
        for flt in self.filters:
            for hit in flt.feed(source, text):
                if framer is not None:
                    f, framer = framer.frame(raw), None
                ts = f[0] if f is not None else hit.ts
                if ts is None:
                    ts = self._last_ts.get(source, 0)
                self._last_ts[source] = ts
                host = f[1].decode("ascii", "replace") if f is not None else ""
                self._failure(flt.name, hit, ts, raw, host)
                found = True
        return found and f is None

    def _journal_filters(self, e: Entry, raw: bytes, source: str) -> None:
        """Each journal filter whose ``journalmatch`` takes the entry, over the line
        fail2ban's systemd backend makes of it (host, tag, message: no date; the time is
        the entry's own)."""
        tag = e.prog + (b"[" + e.pid + b"]" if e.pid else b"") + b": " if e.prog else b""
        text = decode((e.host + b" " if e.host else b"") + tag + e.msg)
        when = (e.usec / 1e6, _EPOCH + datetime.timedelta(seconds=e.ts))
        host = e.host.decode("ascii", "replace")
        for flt in self.journal_filters:
            if not flt.reads(e.fields):
                continue
            for hit in flt.feed(source, text, when):
                self._failure(flt.name, hit, e.ts, raw, host)

    def _failure(self, name: str, hit: Failure, ts: int, raw: bytes, host: str) -> None:
        if self.window is not None and ts not in self.window:
            return
        key = (name, hit.host)
        agg = self.failures.get(key)
        if agg is None:
            agg = self.failures[key] = Agg()
        if hit.is_address:
            ev = Event("failure", name, ts, addr=hit.host, user=hit.user)
        else:
            ev = Event("failure", name, ts, host=hit.host, user=hit.user)
        agg.add(ts, raw, ev, host)
        for user in sorted(hit.users - agg.users)[: max(0, 20 - len(agg.users))]:
            agg.users.add(user)

    # -- merging (byte ranges of one file come back in order) ----------------------------

    def merge(self, other: State, line_offset: int = 0) -> None:
        self.lines += other.lines
        self.unparsed += other.unparsed
        for src, ln, text in other.unparsed_examples:
            if len(self.unparsed_examples) < UNPARSED_EXAMPLES:
                self.unparsed_examples.append((src, ln + line_offset, text))
        for table, theirs in (
            (self.refused, other.refused),
            (self.rejects, other.rejects),
            (self.exploits, other.exploits),
            (self.failures, other.failures),
            (self.auth, other.auth),
        ):
            for key, agg in theirs.items():
                mine = table.get(key)
                if mine is None:
                    table[key] = agg
                else:
                    mine.merge(agg)
        for gkey, seen in other.granted.items():
            have = self.granted.get(gkey)
            if have is None:
                self.granted[gkey] = seen
            else:
                have[0] += seen[0]  # type: ignore[operator]
                have[3], have[4] = seen[3], seen[4]
        for tkey, n in other.tries.items():
            self.tries[tkey] = self.tries.get(tkey, 0) + n
        self.rules.update(other.rules)
        self.names.update(other.names)
        self.mail.merge(other.mail)
        self.notices |= other.notices
        self.logins |= other.logins
        self.msgs.merge(other.msgs)  # type: ignore[arg-type]  # both of one kind

    def fold_alone(self, keep: set[int], notices: set[MsgKey]) -> None:
        """Fold in the queued messages whose tag (:meth:`Queue.tag`) is not in ``keep``:
        in the first byte range of a file nothing is read after, those no later range's
        lines can change (see ``Scanner._fold_alone``), folded as the end of the log would
        fold them. ``notices``: every range's, which the fold asks for."""
        self.notices |= notices
        self.msgs.fold(self.folder(self.mail), True, keep)

    # -- pickling (a byte range's state goes to the parent process) ----------------------

    def pack_queue(self) -> bytes:
        """The C queue's messages packed into bytes, the queue emptied (b"": the Python
        queue, which is pickled with the state)."""
        msgs = self.msgs
        if isinstance(msgs, Queue):
            return b""
        packed = msgs.dump()
        msgs.clear()
        return packed

    def unpack_queue(self, packed: bytes) -> None:
        if packed and not isinstance(self.msgs, Queue):
            self.msgs.load(packed)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        # the queue holds a callback into this state; the C one packs itself into bytes
        msgs = self.msgs
        state["msgs"] = msgs.messages() if isinstance(msgs, Queue) else msgs.dump()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        msgs = state.pop("msgs")
        self.__dict__.update(state)
        self.msgs = new_queue(self.folder(self.mail), native=self.native)
        if isinstance(msgs, bytes) and not isinstance(self.msgs, Queue):
            self.msgs.load(msgs)
        else:
            for m in msgs:  # type: ignore[attr-defined]
                self.msgs.put(m)


def _runs(block: bytes, needles: re.Pattern[bytes]) -> list[tuple[int, int, bool]]:
    """The block cut into runs of whole lines: (start, end, whether its lines have a
    needle), in order, alternating."""
    out: list[tuple[int, int, bool]] = []
    pos = 0
    size = len(block)
    first: int | None = None  # where the lines with a needle not yet cut off start
    while True:
        m = needles.search(block, pos)
        start = size if m is None else block.rfind(b"\n", 0, m.start()) + 1
        if start > pos:
            if first is not None:
                out.append((first, pos, True))
                first = None
            out.append((pos, start, False))
        if m is None:
            break
        if first is None:
            first = start
        end = block.find(b"\n", m.end())
        pos = size if end < 0 else end + 1
    if first is not None:
        out.append((first, pos, True))
    return out


def _lines(run: bytes) -> Iterable[bytes]:
    """The lines of a run as the block loop reads them: a carriage return at the end
    dropped, empty lines passed over."""
    for line in run.split(b"\n"):
        if line and line[-1] == 13:
            line = line[:-1]
        if line:
            yield line


def _needles(filters: list[Filter]) -> re.Pattern[bytes] | None:
    """One regex finding the lines some filter may match (None: any line may). Only ASCII
    needles: they are the same bytes in each encoding a line is decoded from, except in
    ISO-2022-JP, whose escapes could part them (a line with an escape is always taken)."""
    found: set[str] = set()
    for f in filters:
        n = f.needles
        if not n or not all(s.isascii() for s in n):
            return None
        found |= n
    ordered = sorted(found, key=len, reverse=True)
    return re.compile(b"|".join([b"\x1b", *(re.escape(s.encode()) for s in ordered)]))
