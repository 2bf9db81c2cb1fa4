"""Mail messages in flight, joined from their lines by (host, queue id).

A :class:`Queue` holds each message until its mail server says it is done with it (Postfix's
``QID: removed``) or reuses its queue id; the message is then handed, field by field, to the
``done`` callback (the aggregates of :mod:`todokede.detect.mailagg`) and forgotten.

This module is the reference. ``todokede.detect._fast`` (C, built when a compiler is at hand)
has a ``Queue`` with the same methods and the same results that keeps each message in a few
hundred bytes instead of a couple of kilobytes; :func:`new_queue` picks it when it is there.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from todokede.logs.mail import LOCAL_TRANSPORTS

if TYPE_CHECKING:
    from todokede.detect import _fast

MsgKey = tuple[bytes, bytes]  # (log host, queue id)
Rcpt = tuple[str, str, str, str, int]  # recipient, via, status, original recipient, time
# key, time, service, client name, client address, sender, size, recipients, raw lines
Done = Callable[[MsgKey, int, str, str, str, "str | None", int, list[Rcpt], list[bytes]], None]


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

    def __init__(self, key: MsgKey, ts: int, service: str) -> None:
        self.key = key
        self.ts = ts
        self.service = service
        self.host = ""
        self.addr = ""
        self.sender: str | None = None
        self.size = 0
        self.rcpts: list[Rcpt] = []
        self.raw: list[bytes] = []
        self.sent_from = False

    def __reduce__(self) -> tuple[Any, ...]:
        # a plain tuple: a byte range's queued messages go to the parent process in a
        # smaller pickle than slot by slot, and come out of it sooner
        return _msg, tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"Msg({fields})"

    @property
    def started(self) -> bool:
        """Has a line that only the start of a message writes (client, sender) been read?"""
        return bool(self.host or self.addr or self.sender is not None)

    def add_rcpt(self, rcpt: Rcpt) -> None:
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


def _tag(key: MsgKey) -> int:
    return hash(key) & 0xFFFF_FFFF_FFFF_FFFF


def _msg(*values: Any) -> Msg:
    m = Msg.__new__(Msg)
    for name, value in zip(Msg.__slots__, values, strict=True):
        setattr(m, name, value)
    return m


# a size= of more digits is left to mail.parse_postfix: int() may refuse it (more than
# sys.get_int_max_str_digits(), 640 at least) and a crafted line must not stop the scan
_SIZE_DIGITS = 640

# statuses and transports repeat on every line: one str object each
_WORDS: dict[bytes, str] = {}


def _word(raw: bytes) -> str:
    word = _WORDS.get(raw)
    if word is None:
        word = raw.decode("ascii", "replace")
        if len(_WORDS) < 1000:
            _WORDS[raw] = word
    return word


class Queue:
    """The messages in flight, in the order they were first seen."""

    def __init__(self, done: Done) -> None:
        self.done = done
        self._msgs: dict[MsgKey, Msg] = {}

    def __len__(self) -> int:
        return len(self._msgs)

    def messages(self) -> list[Msg]:
        return list(self._msgs.values())

    def clear(self) -> None:
        self._msgs.clear()

    def take(self, key: MsgKey) -> Msg | None:
        """Remove and return a message (to change it and :meth:`put` it back)."""
        return self._msgs.pop(key, None)

    def put(self, m: Msg) -> None:
        self._msgs[m.key] = m

    def tags(self) -> tuple[bytes, bytes, bytes]:
        """The tags (:meth:`tag`) of the queued messages, of those without a sender and of
        those without a client (what :meth:`merge` asks of them), each packed as native
        unsigned 64-bit integers, in no order."""
        every, no_sender, no_client = [], [], []
        for key, m in self._msgs.items():
            t = _tag(key)
            every.append(t)
            if m.sender is None:
                no_sender.append(t)
            if not (m.host or m.addr):
                no_client.append(t)
        return (
            array("Q", every).tobytes(),
            array("Q", no_sender).tobytes(),
            array("Q", no_client).tobytes(),
        )

    def tag(self, key: MsgKey) -> int:
        """A key's tag: a 64-bit hash, the same for the same key within a process and the
        processes it forks (two keys may share one)."""
        return _tag(key)

    def fold(self, done: Done, consume: bool, keep: AbstractSet[int] = frozenset()) -> None:
        """Hand every message to ``done`` in time order (then by key), as the end of a log
        does with the messages still open; ``consume`` takes them out of the queue as it
        goes. Messages whose tag is in ``keep`` are neither handed on nor taken out."""
        # newest first, taken from the end: each message is let go of once handed on, so
        # that the aggregates grow into the memory the messages leave (keys are unique)
        msgs = self._msgs.values()
        if keep:
            msgs = [m for m in msgs if _tag(m.key) not in keep]  # type: ignore[assignment]
        todo = sorted(msgs, key=lambda m: (m.ts, m.key), reverse=True)
        if consume and keep:
            for m in todo:
                del self._msgs[m.key]
        elif consume:
            self._msgs.clear()
        while todo:
            m = todo.pop()
            done(m.key, m.ts, m.service, m.host, m.addr, m.sender, m.size, m.rcpts, m.raw)

    def merge(self, other: Queue) -> None:
        """Take in the messages of the next byte range of the same file (``other`` is used
        up): one still open here is continued there, unless there it starts again."""
        for msg in other.messages():
            mine = self.take(msg.key)
            if mine is None:
                self.put(msg)
            elif mine.sender is not None and (msg.host or msg.addr):
                self.retire(mine)
                self.put(msg)
            else:
                mine.merge(msg)
                self.put(mine)
        other.clear()

    def retire(self, m: Msg) -> None:
        """Hand a complete message to ``done`` (it is not in the queue any more)."""
        self.done(m.key, m.ts, m.service, m.host, m.addr, m.sender, m.size, m.rcpts, m.raw)

    def removed(self, host: bytes, qid: bytes) -> None:
        """Postfix is done with a message: fold it in and forget it. A message whose start
        is in another part of the file stays, to be merged."""
        key = (host, qid)
        m = self._msgs.get(key)
        if m is not None and m.started:
            del self._msgs[key]
            self.retire(m)

    def postfix(
        self, ts: int, host: bytes, prog: bytes, qid: bytes, head: bytes, rest: bytes, line: bytes
    ) -> bool:
        """A Postfix ``client=``, ``from=`` or ``to=`` line, parsed by slicing (``head`` is
        the first three bytes of ``rest``). False: not understood here."""
        key = (host, qid)
        m = self._msgs.get(key)
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
            status = _word(rest[st + 8 : st_end if st_end > 0 else None])
            transport = _word(prog[8:])
            if rest.startswith(b"relay=local", pos) or transport in LOCAL_TRANSPORTS:
                transport = "local"
            if m is None:
                m = self._msgs[key] = Msg(key, ts, prog.decode("ascii", "replace"))
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
            size = rest[end + 8 : comma if comma > 0 else None]
            if not size.isdigit() or len(size) > _SIZE_DIGITS:
                return False
            # qmgr logs from= again at each retry of a deferred message: same message
            if m is None:
                m = self._msgs[key] = Msg(key, ts, prog.decode("ascii", "replace"))
            m.sender = rest[6:end].decode("utf-8", "replace")
            m.size = int(size)
            return True
        if rest[:7] != b"client=":
            return False
        bracket = rest.find(b"[", 7)
        close = rest.find(b"]", bracket)
        if bracket < 0 or close < 0:
            return False
        if m is not None and m.started:
            self.retire(m)  # the queue id was reused: a new message
            m = None
        if m is None:
            m = self._msgs[key] = Msg(key, ts, "")
        m.host = rest[7:bracket].decode("utf-8", "replace")
        m.addr = rest[bracket + 1 : close].decode("ascii", "replace")
        m.service = prog.decode("ascii", "replace")
        m.ts = min(m.ts, ts)
        m.raw[:] = [line]
        return True


def new_queue(done: Done, *, native: bool = True) -> Queue | _fast.Queue:
    """The C queue when it was built (and ``native``), else this module's."""
    if native:
        try:
            from todokede.detect import _fast
        except ImportError:
            pass
        else:
            return _fast.Queue(done, _msg, LOCAL_TRANSPORTS)
    return Queue(done)
