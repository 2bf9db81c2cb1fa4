"""Postfix and sendmail 8.x log lines -> mail events.

Postfix (one line per event, joined by queue id)::

    postfix/smtpd[1]: ABC0320E249: client=mail.example[192.0.2.1]
    postfix/qmgr[2]: ABC0320E249: from=<a@example>, size=457, nrcpt=1 (queue active)
    postfix/smtp[3]: ABC0320E249: to=<b@example>, relay=mx[198.51.100.1]:25, ..., status=sent (...)
    postfix/local[4]: ABC0320E249: to=<root@site>, orig_to=<postmaster>, relay=local, ...
    postfix/bounce[5]: ABC0320E249: sender non-delivery notification: DEF...
    postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 5.7.1 <v@r>: Relay access ...

sendmail 8.8/8.9 (1997)::

    sendmail[1]: DAA01234: from=<a@x>, size=1523, class=0, pri=31523, nrcpts=3, msgid=<..>,
        proto=SMTP, relay=dialup.example [192.0.2.4]
    sendmail[1]: DAA01234: to=<b@y>,<c@y>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp,
        relay=mx.y. [198.51.100.2], stat=Sent (OK)
    sendmail[1]: DAA01234: DAA01240: return to sender: Host unknown
    sendmail[1]: ruleset=check_rcpt, arg1=<x@y>, relay=h [192.0.2.5],
        reject=550 5.7.1 <x@y>... Relaying denied
"""

from __future__ import annotations

import re

from todokede.logs.events import Event
from todokede.logs.text import field

LOCAL_TRANSPORTS = frozenset({"local", "virtual", "prog", "file", "*file*", "*include*", "lmtp"})
_CLIENT = re.compile(rb"^([^\[\s]*)\[([^\]]*)\]")
_SM_RELAY = re.compile(rb"^(?:[^@\s]*@)?([^\s\[]*)\s*(?:\[([^\]]*)\])?")
_PF_TO = re.compile(rb"^to=<([^>]*)>,(?: orig_to=<([^>]*)>,)? relay=([^,]*),.*? status=(\w+)")
_PF_REJECT = re.compile(
    rb"reject: RCPT from ([^\[\s]*)\[([^\]]*)\]: (.*?); from=<([^>]*)> to=<([^>]*)>"
)
_SM_TO = re.compile(rb"^to=(.*?), (?:ctladdr|delay)=.*?mailer=([\w*]+)(?:, .*?)?, stat=(.*)$")
_SM_FROM = re.compile(rb"^from=(.*?), size=(\d+)")
_SM_RULESET = re.compile(rb"ruleset=\w+, arg1=<?([^>,]*)>?, relay=([^,]*), reject=(.*)$")


def _size(text: bytes) -> int:
    """A size= as a number; 0 for what int() refuses: not a number, or more digits than
    sys.get_int_max_str_digits() (a crafted line must not stop the scan)."""
    try:
        return int(text)
    except ValueError:
        return 0


def _strip(addr: bytes) -> str:
    addr = addr.strip()
    if addr.startswith(b"<") and addr.endswith(b">"):
        addr = addr[1:-1]
    return field(addr)


def _status(stat: bytes) -> str:
    if stat.startswith(b"Sent"):
        return "sent"
    if stat.startswith(b"Deferred") or stat.startswith(b"queued"):
        return "deferred"
    return "bounced"


def parse_postfix(ts: int, prog: bytes, msg: bytes) -> Event | None:
    qid, sep, rest = msg.partition(b": ")
    if not sep:
        return None
    service = field(prog)
    if qid == b"NOQUEUE" or rest.startswith(b"reject: "):
        m = _PF_REJECT.search(msg)
        if m is None:
            return None
        reason = m.group(3)
        status = "relay-denied" if b"Relay access denied" in reason else "rejected"
        return Event(
            "reject",
            service,
            ts,
            host=field(m.group(1)),
            addr=field(m.group(2)),
            sender=field(m.group(4)),
            rcpts=(field(m.group(5)),),
            status=status,
            detail=field(reason),
        )
    if not qid.isalnum():
        return None
    head = rest[:5]
    if head == b"clien" and rest.startswith(b"client="):
        m = _CLIENT.match(rest[7:])
        if m is None:
            return None
        return Event(
            "client", service, ts, qid=field(qid), host=field(m.group(1)), addr=field(m.group(2))
        )
    if head == b"from=":
        end = rest.find(b">, size=")
        if end < 0:
            return None
        size_end = rest.find(b",", end + 8)
        size = _size(rest[end + 8 : size_end if size_end > 0 else None])
        return Event("from", service, ts, qid=field(qid), sender=field(rest[6:end]), size=size)
    if head.startswith(b"to=<"):
        m = _PF_TO.match(rest)
        if m is None:
            return None
        relay = m.group(3)
        transport = service.rpartition("/")[2]
        via = "local" if relay == b"local" or transport in LOCAL_TRANSPORTS else transport
        return Event(
            "to",
            service,
            ts,
            qid=field(qid),
            rcpts=(field(m.group(1)),),
            via=via,
            status=field(m.group(4)),
            detail=field(m.group(2) or b""),
        )
    if b"non-delivery notification: " in rest:
        new = rest.rpartition(b": ")[2]
        return Event("notice", service, ts, qid=field(qid), via=field(new))
    return None


def parse_sendmail(ts: int, prog: bytes, msg: bytes) -> Event | None:
    service = field(prog)
    if msg.startswith(b"ruleset=") or b": ruleset=" in msg[:20]:
        m = _SM_RULESET.search(msg)
        if m is None:
            return None
        relay = _SM_RELAY.match(m.group(2).strip())
        host, addr = (field(relay.group(1)), field(relay.group(2) or b"")) if relay else ("", "")
        reason = m.group(3)
        status = "relay-denied" if b"Relaying denied" in reason else "rejected"
        return Event(
            "reject",
            service,
            ts,
            host=host.rstrip("."),
            addr=addr,
            rcpts=(_strip(m.group(1)),),
            status=status,
            detail=field(reason),
        )
    qid, sep, rest = msg.partition(b": ")
    if not sep or not qid.isalnum():
        return None
    if rest.startswith(b"from="):
        m = _SM_FROM.match(rest)
        if m is None:
            return None
        host = addr = ""
        at = rest.find(b", relay=")
        if at >= 0:
            relay = _SM_RELAY.match(rest[at + 8 :])
            if relay:
                host, addr = field(relay.group(1)).rstrip("."), field(relay.group(2) or b"")
        return Event(
            "from",
            service,
            ts,
            qid=field(qid),
            sender=_strip(m.group(1)),
            size=_size(m.group(2)),
            host=host,
            addr=addr,
        )
    if rest.startswith(b"to="):
        m = _SM_TO.match(rest)
        if m is None:
            return None
        rcpts = tuple(_strip(r) for r in m.group(1).split(b",") if r.strip())
        mailer = field(m.group(2))
        return Event(
            "to",
            service,
            ts,
            qid=field(qid),
            rcpts=rcpts,
            via="local" if mailer in LOCAL_TRANSPORTS else mailer,
            status=_status(m.group(3)),
        )
    new, sep2, what = rest.partition(b": ")
    if (
        sep2
        and new.isalnum()
        and (
            what.startswith(b"return to sender")
            or what.startswith(b"DSN")
            or what.startswith(b"postmaster notify")
        )
    ):
        return Event("notice", service, ts, qid=field(qid), via=field(new))
    return None
