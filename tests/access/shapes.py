"""Rule files of the shapes real sites write, and queries that hit them (seeded, random).

hosts.allow: service rules (daemon lists, ``ALL``) for addresses, ``a.b.`` prefixes,
``n/m`` and ``/len`` networks, ``a.b. EXCEPT a.b.c.``, IPv6 networks and a few host names.
hosts.deny: fail2ban-style single-address bans (``ALL: a.b.c.d``, ``sshd: [v6]``), some
networks and prefixes, and usually ``ALL: ALL`` last. A few rules carry ``allow`` or
``deny`` options, as one-file configurations write them. Addresses come from a small
space, so that queries hit exact bans, networks, prefixes and their EXCEPT parts.
Used by the differential tests and by ``bench/access.py``.
"""

from __future__ import annotations

import random

DAEMONS = ["sshd", "imapd", "ipop3d", "in.ftpd", "in.telnetd", "vsftpd"]
QUERY_DAEMONS = [*DAEMONS, "in.fingerd"]
DAEMON_LISTS = [
    "sshd",
    "imapd, ipop3d",
    "ALL",
    "in.ftpd vsftpd",
    "ALL EXCEPT in.telnetd",
    "imapd",
    "ipop3d,imapd,sshd",
]
FIRST = [10, 172, 192, *range(24, 222, 5)]
NAMES = ["good.example.com", "host50.lan.example.net", "multi.example.com", "shorty"]
NAME_PATTERNS = [".example.com", "good.example.com", ".lan.example.net", ".example.net"]
MASKS = {8: "255.0.0.0", 16: "255.255.0.0", 24: "255.255.255.0", 25: "255.255.255.128"}


def _quad(rng: random.Random) -> tuple[int, int, int, int]:
    return rng.choice(FIRST), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)


def _text(q: tuple[int, ...]) -> str:
    return ".".join(map(str, q))


def _net(rng: random.Random, q: tuple[int, int, int, int], bits: int, slash: bool) -> str:
    value = (q[0] << 24) | (q[1] << 16) | (q[2] << 8) | q[3]
    value &= (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    net = _text(tuple((value >> s) & 0xFF for s in (24, 16, 8, 0)))
    if slash or bits not in MASKS:
        return f"{net}/{bits}"
    return f"{net}/{MASKS[bits]}"


def client_list(rng: random.Random, *, names: bool = True, broad: bool = False) -> str:
    """One rule's client list, of a shape real sites write; ``broad``: a whole /8."""
    if broad:
        return rng.choice([f"{rng.choice(FIRST)}.", _net(rng, _quad(rng), 8, rng.random() < 0.5)])
    q = _quad(rng)
    kind = rng.random()
    if kind < 0.30:
        return " ".join(_text(_quad(rng)) for _ in range(rng.choice([1, 1, 1, 2, 3])))
    if kind < 0.42:
        return _text(q[: rng.choice([2, 3, 3, 3])]) + "."
    if kind < 0.52:
        return _net(rng, q, rng.choice([16, 24, 24, 25]), slash=False)
    if kind < 0.66:
        return _net(rng, q, rng.choice([12, 16, 20, 22, 24, 24, 26, 28, 30, 32]), slash=True)
    if kind < 0.76:
        return f"{_text(q[:2])}. EXCEPT {_text(q[:3])}."
    if kind < 0.80:
        return f"{_net(rng, q, 16, slash=True)} EXCEPT {_text(q)}"
    if kind < 0.86:
        return f"[2001:db8:{rng.randrange(4):x}::]/48"
    if kind < 0.90:
        return f"[2001:db8::{rng.randrange(1, 8):x}]"
    if kind < 0.95 and names:
        return rng.choice(NAME_PATTERNS)
    return f"{_text(q[:2])}. {_text(_quad(rng))}"


def make_tables(n: int, rng: random.Random, *, names: bool = True) -> tuple[str, str]:
    """hosts.allow and hosts.deny with ``n`` rules in all."""
    allow_n = max(1, n // 5)
    allow = ["# services"]
    broad = {rng.randrange(allow_n) for _ in range(3)}  # a few whole /8s, as sites have
    for i in range(allow_n):
        option = rng.choice(["", "", "", "", " : deny"])
        if rng.random() < 0.01:
            allow.append(f"{rng.choice(DAEMONS)}: ALL{option}")
        else:
            clients = client_list(rng, names=names, broad=i in broad)
            allow.append(f"{rng.choice(DAEMON_LISTS)}: {clients}{option}")
    deny = ["# bans"]
    last_all = rng.random() < 0.7
    for _ in range(n - allow_n - (1 if last_all else 0)):
        daemons = "ALL" if rng.random() < 0.8 else rng.choice(DAEMON_LISTS)
        if rng.random() < 0.75:
            deny.append(f"{daemons}: {_text(_quad(rng))}")
        elif rng.random() < 0.1:
            deny.append(f"{daemons}: {client_list(rng, names=names)} : allow")
        else:
            deny.append(f"{daemons}: {client_list(rng, names=names)}")
    if last_all:
        deny.append("ALL: ALL")
    return "\n".join(allow) + "\n", "\n".join(deny) + "\n"


def make_queries(
    n: int, rng: random.Random, tables: tuple[str, str] = ("", ""), *, names: bool = True
) -> list[tuple[str, str]]:
    """(daemon, client) pairs: addresses named in the tables, addresses near them, and
    other addresses (IPv4, IPv6, IPv4-mapped); with ``names``, some host names too."""
    words = (w.split("/")[0] for t in tables for w in t.split())
    named = [w for w in words if len(parts := w.split(".")) == 4 and all(map(str.isdigit, parts))]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3 and named:
            addr = rng.choice(named)
        elif kind < 0.4 and named:  # a neighbour: same /24
            addr = rng.choice(named).rsplit(".", 1)[0] + f".{rng.randrange(1, 255)}"
        elif kind < 0.8:
            addr = _text(_quad(rng))
        elif kind < 0.88:
            addr = f"2001:db8:{rng.randrange(5):x}::{rng.randrange(1, 8):x}"
        elif kind < 0.92:
            addr = "::ffff:" + _text(_quad(rng))
        elif kind < 0.97 and names:
            addr = rng.choice(NAMES)
        else:
            addr = f"198.51.100.{rng.randrange(1, 255)}"
        out.append((rng.choice(QUERY_DAEMONS), addr))
    return out
