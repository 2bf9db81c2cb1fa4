"""What a scan remembers while it reads: small aggregates, mergeable in file order.

The hot loop frames each line and hands it to the one parser its program calls for; lines
of programs that cannot matter cost one framing and a few byte comparisons. Byte ranges of a
big file are read by separate processes, each into its own :class:`State`, and merged.
"""

from __future__ import annotations

from typing import Any

from todokede.detect import bulk
from todokede.logs import imap, mail, tcpd
from todokede.logs.events import Event
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Framer, YearRule
from todokede.logs.text import decode

EVIDENCE = 5
UNPARSED_EXAMPLES = 5


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
        if self.count == 0 or ts < self.first:
            self.first = ts
        if ts > self.last or self.count == 0:
            self.last = ts
        self.count += 1
        if len(self.lines) < EVIDENCE - 1:
            self.lines.append(raw)
        else:
            self.last_line = raw
        if ev.host:
            self.names.add(ev.host)
        if ev.addr:
            self.addrs.add(ev.addr)
        if target:
            self.targets.add(target)
        if ev.user and len(self.users) < 20:
            self.users.add(ev.user)

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


class Msg:
    """One queued mail message, joined from its lines by queue id."""

    __slots__ = (
        "addr",
        "host",
        "key",
        "raw",
        "rcpts",
        "sender",
        "sent_from",
        "service",
        "size",
        "ts",
    )

    def __init__(self, key: tuple[bytes, bytes], ts: int, service: str) -> None:
        self.key = key
        self.ts = ts
        self.service = service
        self.host = ""
        self.addr = ""
        self.sender: str | None = None
        self.size = 0
        self.rcpts: list[tuple[str, str, str, str, int]] = []  # rcpt, via, status, orig, ts
        self.raw: list[bytes] = []
        self.sent_from = False

    def __reduce__(self) -> tuple[Any, ...]:
        # a plain tuple: a byte range's queued messages go to the parent process in a
        # smaller pickle than slot by slot, and come out of it sooner
        return _msg, tuple(getattr(self, name) for name in self.__slots__)

    def add_rcpt(self, rcpt: tuple[str, str, str, str, int]) -> None:
        """A delivery attempt; a later attempt for the same recipient (a deferred message
        retried) replaces the earlier one, so a recipient counts once, with its last status."""
        rcpts = self.rcpts
        if rcpts:
            name = rcpt[0]
            for i in range(len(rcpts) - 1, -1, -1):
                if rcpts[i][0] == name:
                    rcpts[i] = rcpt
                    return
        rcpts.append(rcpt)

    def merge(self, other: Msg) -> None:
        self.ts = min(self.ts, other.ts)
        if other.service and "smtpd" not in self.service and "sendmail" not in self.service:
            self.service = other.service
        self.host = self.host or other.host
        self.addr = self.addr or other.addr
        if self.sender is None:
            self.sender, self.size = other.sender, other.size
        for rcpt in other.rcpts:
            self.add_rcpt(rcpt)
        self.raw.extend(other.raw[: 2 - len(self.raw)])


MsgKey = tuple[bytes, bytes]


def _msg(*values: Any) -> Msg:
    m = Msg.__new__(Msg)
    for name, value in zip(Msg.__slots__, values, strict=True):
        setattr(m, name, value)
    return m


# statuses and transports repeat on every line: one str object each
_WORDS: dict[bytes, str] = {}


def _word(raw: bytes) -> str:
    word = raw.decode("ascii", "replace")
    if len(_WORDS) < 1000:
        _WORDS[raw] = word
    return word


class State:
    def __init__(
        self,
        filters: list[Filter] | None = None,
        *,
        fast: bool = True,
        nets: tuple[str, ...] = (),
        admins: tuple[str, ...] = ("root", "postmaster"),
        own_domains: tuple[str, ...] | None = None,
    ) -> None:
        from todokede.detect.mailagg import MailAgg, Nets

        self.filters = filters or []
        self.fast = fast
        self.nets = Nets(nets)
        self.admins = frozenset(a.lower() for a in admins)
        self.mail = MailAgg(own_domains)
        self.lines = 0
        self.unparsed = 0
        self.unparsed_examples: list[tuple[str, int, str]] = []
        self._unparsed_raw: list[bytes] = []  # their lines, while a bulk pass renumbers them
        self.refused: dict[tuple[str, str], Agg] = {}
        # (program, client text) -> [count, first line, its source, last line, its source]
        self.granted: dict[tuple[bytes, bytes], list[object]] = {}
        self.rules: dict[str, YearRule] = {}
        self.names: dict[str, str] = {}  # host name -> address, from tcpd lines with both
        self.msgs: dict[MsgKey, Msg] = {}
        self.notices: set[MsgKey] = set()
        self.rejects: dict[tuple[str, str], Agg] = {}
        self.exploits: dict[tuple[str, str], Agg] = {}
        self.failures: dict[tuple[str, str], Agg] = {}
        self.logins: set[str] = set()

    # -- reading -------------------------------------------------------------------------

    def feed(self, block: bytes, framer: Framer, source: str, lineno: int) -> int:
        """Read a block of whole lines; ``lineno`` is the file line number of its first line.
        Returns the number of lines read.

        The common lines are handled without a per-line parser: granted tcpd connections
        in bulk by one regex over the block (when they are a good part of it), BSD-stamped
        Postfix queue lines inline by slicing; every other line goes through the general
        path: :meth:`Framer.frame` and the parser of its program.
        """
        self.rules[source] = framer.rule
        total = block.count(b"\n") + (1 if block and not block.endswith(b"\n") else 0)
        rest = None
        if self.fast and not self.filters and block.count(b": connect from ") * 4 >= total > 0:
            rest = bulk.connects(self, block, source, framer)
        if rest is not None:
            examples = len(self.unparsed_examples)
            self._loop(rest, framer, source, None)
            for i in range(examples, len(self.unparsed_examples)):
                # the bulk pass removed lines: find the example's real line number
                src, _, text = self.unparsed_examples[i]
                at = block.find(self._unparsed_raw.pop(0))
                self.unparsed_examples[i] = (src, lineno + block.count(b"\n", 0, at), text)
        else:
            self._loop(block, framer, source, lineno)
        self.lines += total
        return total

    def _loop(self, block: bytes, framer: Framer, source: str, lineno: int | None) -> None:
        bsd_cache = framer.bsd_cache
        bsd_time = framer.bsd_time
        granted = self.granted
        fast = self.fast and not self.filters
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
                if sp < 0 or colon < 0:
                    pass
                elif line.startswith(b"postfix/", sp + 1):
                    q = colon + 2
                    qe = line.find(b": ", q)
                    head = line[qe + 2 : qe + 5] if qe > 0 else b""
                    if head == b"to=" or head == b"fro" or head == b"cli":
                        ts = bsd_cache.get(line[:15])
                        if ts is None:
                            ts = bsd_time(line[:15])
                        bracket = line.find(b"[", sp, colon)
                        prog = line[sp + 1 : bracket if bracket > 0 else colon]
                        if ts is not None and self._postfix(
                            ts, line[16:sp], prog, line[q:qe], head, line[qe + 2 :], line
                        ):
                            continue
                    elif head == b"rem" and line.endswith(b": removed"):
                        if bsd_cache.get(line[:15]) is not None or bsd_time(line[:15]):
                            self._removed((line[16:sp], line[q:qe]))
                            continue
                    elif b"Relay access denied" not in line and (
                        bsd_cache.get(line[:15]) is not None or bsd_time(line[:15])
                    ):
                        # a Postfix line no detector needs (notices: bounces are known by
                        # their null sender; rejects other than relaying)
                        continue
                elif line.startswith(b"connect from ", colon + 2):
                    tag = line[sp + 1 : colon]
                    if b" " not in tag:
                        bracket = tag.find(b"[")
                        key = (tag[:bracket] if bracket > 0 else tag, line[colon + 15 :])
                        if bsd_cache.get(line[:15]) is not None or bsd_time(line[:15]):
                            seen = granted.get(key)
                            if seen is None:
                                granted[key] = [1, line, source, line, source]
                            else:
                                seen[0] += 1  # type: ignore[operator]
                                seen[3], seen[4] = line, source
                            continue
            f = framer.frame(line)
            if f is None:
                self.unparsed += 1
                if len(self.unparsed_examples) < UNPARSED_EXAMPLES:
                    if lineno is None:
                        self._unparsed_raw.append(line)
                    at = 0 if lineno is None else lineno + n - 1
                    self.unparsed_examples.append((source, at, decode(line[:200])))
                continue
            self._general(f, line, source)

    def _general(self, f: tuple[int, bytes, bytes, bytes, bytes], line: bytes, source: str) -> None:
        ts, host, prog, _pid, msg = f
        ev: Event | None
        if prog[:8] == b"postfix/":
            qid, _, rest = msg.partition(b": ")
            head = rest[:3]
            if rest == b"removed":
                self._removed((host, qid))
            elif not (
                (head == b"to=" or head == b"fro" or head == b"cli")
                and self._postfix(ts, host, prog, qid, head, rest, line)
            ):
                ev = mail.parse_postfix(ts, prog, msg)
                if ev is not None:
                    self._mail(ev, host, line)
        elif prog == b"sendmail" or prog == b"sm-mta":
            ev = mail.parse_sendmail(ts, prog, msg)
            if ev is not None:
                self._mail(ev, host, line)
        elif msg[:13] == b"connect from ":
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
        elif prog in imap.PROGRAMS:
            ev = imap.parse(ts, prog, msg)
            if ev is not None:
                self._imap(ev, host, line)
        if self.filters:
            self._filters(f, line)

    def _postfix(
        self, ts: int, host: bytes, prog: bytes, qid: bytes, head: bytes, rest: bytes, line: bytes
    ) -> bool:
        """client=, from= and to= lines of Postfix, parsed by slicing. False: not understood."""
        key = (host, qid)
        m = self.msgs.get(key)
        if head == b"to=":
            end = rest.find(b">", 4)
            if end < 0 or rest[3:4] != b"<":
                return False
            rcpt = rest[4:end]
            pos = end + 3
            orig = b""
            if rest.startswith(b"orig_to=<", pos):
                oend = rest.find(b">", pos + 9)
                orig = rest[pos + 9 : oend]
                pos = oend + 3
            st = rest.find(b" status=", pos)
            if st < 0:
                return False
            st_end = rest.find(b" ", st + 8)
            status_b = rest[st + 8 : st_end if st_end > 0 else None]
            status = _WORDS.get(status_b) or _word(status_b)
            transport = _WORDS.get(prog[8:]) or _word(prog[8:])
            if rest.startswith(b"relay=local", pos) or transport in mail.LOCAL_TRANSPORTS:
                transport = "local"
            if m is None:
                m = self.msgs[key] = Msg(key, ts, prog.decode("ascii", "replace"))
            m.add_rcpt(
                (
                    rcpt.decode("utf-8", "replace"),
                    transport,
                    status,
                    orig.decode("utf-8", "replace"),
                    ts,
                )
            )
            if not m.raw:
                m.raw.append(line)
            return True
        if head == b"fro":
            end = rest.find(b">, size=", 5)
            if end < 0 or rest[5:6] != b"<":
                return False
            comma = rest.find(b",", end + 8)
            size_b = rest[end + 8 : comma if comma > 0 else None]
            if not size_b.isdigit():
                return False
            # qmgr logs from= again at each retry of a deferred message: same message
            if m is None:
                m = self.msgs[key] = Msg(key, ts, prog.decode("ascii", "replace"))
            m.sender = rest[6:end].decode("utf-8", "replace")
            m.size = int(size_b)
            return True
        if rest[:7] != b"client=":
            return False
        bracket = rest.find(b"[", 7)
        close = rest.find(b"]", bracket)
        if bracket < 0 or close < 0:
            return False
        if m is not None and (m.host or m.addr or m.sender is not None):
            self._retire(m)  # the queue id was reused: a new message
            m = None
        if m is None:
            m = self.msgs[key] = Msg(key, ts, "")
        m.host = rest[7:bracket].decode("utf-8", "replace")
        m.addr = rest[bracket + 1 : close].decode("ascii", "replace")
        m.service = prog.decode("ascii", "replace")
        m.ts = min(m.ts, ts)
        m.raw[:] = [line]
        return True

    def _retire(self, m: Msg) -> None:
        self.mail.add(m, self.nets, self.admins, m.key in self.notices)

    def _removed(self, key: MsgKey) -> None:
        """Postfix is done with a message: fold it into the aggregates and forget it. A
        message whose start is in another part of the file stays, to be merged."""
        m = self.msgs.get(key)
        if m is not None and (m.host or m.addr or m.sender is not None):
            del self.msgs[key]
            self.mail.add(m, self.nets, self.admins, key in self.notices)

    def _connect(self, ev: Event, host: bytes, raw: bytes) -> None:
        """A refused connection (granted ones are only counted, in :meth:`feed`)."""
        key = ev.addr or ev.host
        if ev.host and ev.addr:
            self.names[ev.host.lower()] = ev.addr
        agg = self.refused.get((ev.service, key))
        if agg is None:
            agg = self.refused[(ev.service, key)] = Agg()
        agg.add(ev.ts, raw, ev, host.decode("ascii", "replace"))

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
        m = self.msgs.get(mkey)
        if kind == "from":
            if m is not None and m.sent_from:
                self._retire(m)  # sendmail reuses queue ids: this is a new message
                m = None
            if m is None:
                m = self.msgs[mkey] = Msg(mkey, ev.ts, ev.service)
            m.sent_from = True
            m.sender, m.size = ev.sender, ev.size
            if ev.host or ev.addr:
                m.host, m.addr = ev.host, ev.addr
                m.service = ev.service
            if len(m.raw) < 2:
                m.raw.append(raw)
            return
        if m is None:
            m = self.msgs[mkey] = Msg(mkey, ev.ts, ev.service)
        if kind == "client":
            m.host, m.addr, m.service, m.ts = ev.host, ev.addr, ev.service, min(m.ts, ev.ts)
            if len(m.raw) < 2:
                m.raw.insert(0, raw)
        elif kind == "to":
            for r in ev.rcpts:
                m.add_rcpt((r, ev.via, ev.status, ev.detail, ev.ts))
            if len(m.raw) < 2:
                m.raw.append(raw)

    def _imap(self, ev: Event, host: bytes, raw: bytes) -> None:
        if ev.kind == "login":
            if ev.addr or ev.host:
                self.logins.add(ev.addr or ev.host)
            return
        key = (ev.service, ev.addr or ev.host or "unknown")
        agg = self.exploits.get(key)
        if agg is None:
            agg = self.exploits[key] = Agg()
        agg.add(ev.ts, raw, ev, host.decode("ascii", "replace"))

    def _filters(self, f: tuple[int, bytes, bytes, bytes, bytes], raw: bytes) -> None:
        ts, host, prog, pid, msg = f
        text = decode(host + b" " + prog + (b"[" + pid + b"]" if pid else b"") + b": " + msg)
        for flt in self.filters:
            hit = flt.match(text)
            if hit is None:
                continue
            key = (flt.name, hit.host)
            agg = self.failures.get(key)
            if agg is None:
                agg = self.failures[key] = Agg()
            ev = Event("failure", flt.name, ts, addr=hit.host, user=hit.user)
            agg.add(ts, raw, ev, host.decode("ascii", "replace"))

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
        self.rules.update(other.rules)
        self.names.update(other.names)
        self.mail.merge(other.mail)
        self.notices |= other.notices
        self.logins |= other.logins
        for mkey, msg in other.msgs.items():
            mine_msg = self.msgs.get(mkey)
            if mine_msg is None:
                self.msgs[mkey] = msg
            elif mine_msg.sender is not None and (msg.host or msg.addr):
                self._retire(mine_msg)
                self.msgs[mkey] = msg
            else:
                mine_msg.merge(msg)
