"""IMAP and POP servers: UW imapd/ipop3d (1997) and Dovecot.

UW c-client servers log ``Login user=taro host=pc12.example [172.16.1.12]`` and
``Login failed user=... auth=... host=... [addr]``, each field cut at 80 characters: an
80-character user name, or one with binary bytes, is what the CA-97.09 / CVE-1999-0042 overflow
(an over-long LOGIN or AUTHENTICATE argument) leaves behind. Dovecot logs
``imap-login: Login: user=<tester>, method=PLAIN, rip=192.0.2.1, ...`` and, for a command
line longer than its buffer, ``Disconnected: Input buffer full`` (the client got
``* BYE Input buffer full, aborting``). Failed logins (UW's ``Login failed``, Dovecot's
``auth failed``) are read by :mod:`todokede.logs.auth`.
"""

from __future__ import annotations

import re

from todokede.logs import auth
from todokede.logs.events import Event
from todokede.logs.text import field

PROGRAMS = frozenset(
    {b"imapd", b"ipop3d", b"ipop2d", b"in.imapd", b"in.ipop3d", b"popper", b"dovecot"}
    | {b"imap-login", b"pop3-login", b"imap", b"pop3"}
)
LONG_ARGUMENT = 64  # UW cuts user= at 80; no real user name is this long
_UW_USER = re.compile(rb"user=(.*?) (?:auth=.*? )?host=(\S*)(?: \[([^\]]*)\])?")
# UW cuts each field at 80 characters: a real line is far shorter, and the pattern above
# would take time growing with the square of a long line's length
_UW_MAX = 2048
# what Dovecot logs of a command over its input buffer
OVERLONG = (b"Input buffer full", b"Too long", b"too long")
_RIP = re.compile(rb"rip=([0-9a-fA-F.:]+)")
_DOVECOT_USER = re.compile(rb"user=<([^>]*)>")
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f-\xff]{4,}")


def parse(ts: int, prog: bytes, msg: bytes) -> Event | None:
    service = field(prog)
    if (
        prog == b"dovecot"
        or b"-login" in prog
        or msg.startswith((b"imap-login: ", b"pop3-login: "))
    ):
        return _dovecot(ts, service, msg)
    if msg.startswith(b"Login") or msg.startswith(b"Authenticat") or b" user=" in msg:
        m = _UW_USER.search(msg, 0, _UW_MAX)
        if m is None:
            return None
        user, host, addr = m.group(1), field(m.group(2)), field(m.group(3) or b"")
        if len(user) >= LONG_ARGUMENT or _BINARY.search(user):
            return Event(
                "exploit",
                service,
                ts,
                host=host,
                addr=addr,
                user=field(user[:LONG_ARGUMENT]),
                detail=f"over-long or binary user argument ({len(user)} bytes logged)",
            )
        if msg.startswith(b"Login user=") or msg.startswith(b"Authenticated user="):
            return Event("login", service, ts, host=host, addr=addr, user=field(user))
        if msg.startswith((b"Login failed ", b"Login excessive ")):
            return Event("failure", service, ts, host=host, addr=addr, user=field(user), size=1)
        return None
    if _BINARY.search(msg):
        return Event("exploit", service, ts, detail="binary bytes in a logged command")
    return None


def _dovecot(ts: int, service: str, msg: bytes) -> Event | None:
    if msg.startswith((b"imap-login: ", b"pop3-login: ")):
        service, _, msg = field(msg).partition(": ")[0], b"", msg.partition(b": ")[2]
    if msg.startswith(b"Info: "):
        msg = msg[6:]
    if b"auth" in msg:
        failed = auth.dovecot(ts, service, msg)
        if failed is not None:
            return failed
    rip = _RIP.search(msg)
    addr = field(rip.group(1)) if rip else ""
    if any(m in msg for m in OVERLONG):
        return Event(
            "exploit", service, ts, addr=addr, detail="over-long command (input buffer full)"
        )
    if msg.startswith(b"Login: "):
        user = _DOVECOT_USER.search(msg)
        return Event("login", service, ts, addr=addr, user=field(user.group(1)) if user else "")
    return None
