"""tcp_wrappers (tcpd, libwrap, ``todokede wrap``) log lines.

imapd[123]: connect from pc12.lab.example (172.16.1.12)
imapd[124]: refused connect from 192.0.2.7 (192.0.2.7)
imapd[125]: refused connect from bad.example        (older tcpd: no address)
in.telnetd[126]: connect from alice@pc3.example (172.16.1.3)
"""

from __future__ import annotations

import re

from todokede.logs.events import Event
from todokede.logs.text import field

CONNECT = b"connect from "
REFUSED = b"refused connect from "


# IPv6 (hex digits, colons and dots, a colon at least) or dotted-quad IPv4
_ADDRESS = re.compile(r"[0-9a-fA-F.]*:[0-9a-fA-F:.]*|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def looks_like_address(text: str) -> bool:
    return _ADDRESS.fullmatch(text) is not None


def parse(ts: int, prog: bytes, msg: bytes) -> Event | None:
    if msg.startswith(CONNECT):
        status, rest = "granted", msg[len(CONNECT) :]
    elif msg.startswith(REFUSED):
        status, rest = "refused", msg[len(REFUSED) :]
    else:
        return None
    client, _, paren = rest.partition(b" ")
    if not client:
        return None
    user = ""
    if b"@" in client:
        raw_user, _, client = client.rpartition(b"@")
        user = field(raw_user)
    host = field(client)
    addr = ""
    if paren.startswith(b"(") and paren.endswith(b")"):
        addr = field(paren[1:-1])
    if looks_like_address(host):
        addr, host = addr or host, ""
    if host.lower() in ("unknown", "paranoid"):
        host = ""
    service = field(prog) or "unknown"
    return Event("connect", service, ts, host=host, addr=addr, user=user, status=status)
