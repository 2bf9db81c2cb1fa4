"""Daemon, client and host patterns, compiled once into small predicates.

The semantics follow libwrap 7.6 as Debian builds it (hosts_access.c): every comparison is
an ASCII case-insensitive string comparison against the host's address or name, where an
unknown value is the literal string ``unknown`` and a failed double lookup the literal
``paranoid`` -- which is why ``UNKNOWN`` and ``PARANOID`` work as they do.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from todokede.access.table import split_at

UNKNOWN = "unknown"
PARANOID = "paranoid"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())


def fold(s: str) -> str:
    """strcasecmp()'s view of a string: ASCII letters only."""
    return s.translate(_FOLD)


def known(name: str) -> bool:
    """HOSTNAME_KNOWN(): neither ``unknown`` nor ``paranoid``."""
    return fold(name) not in (UNKNOWN, PARANOID)


class Host(Protocol):
    """What a host pattern may ask about the client or the server end."""

    def addr(self) -> str: ...
    def key(self) -> str: ...
    def canon4(self) -> int | None: ...
    def name(self) -> str: ...
    def ip4(self) -> int | None: ...
    def ip6(self) -> int | None: ...
    def port(self) -> int | None: ...
    def warn(self, message: str) -> None: ...


class Context(Protocol):
    @property
    def client(self) -> Host: ...
    @property
    def server(self) -> Host: ...

    def user(self) -> str: ...
    def daemon(self) -> str: ...


HostTest = Callable[[Host], bool]
StrTest = Callable[[str], bool]
Test = Callable[[Context], bool]


# --- numbers as the C library reads them -------------------------------------------------


def inet_aton(s: str) -> int | None:
    """glibc inet_aton(): 1-4 parts, each decimal, 0-octal or 0x-hex."""
    parts: list[int] = []
    i, n = 0, len(s)
    while True:
        if i >= n or not s[i].isdigit() or not s[i].isascii():
            return None
        base = 10
        if s[i] == "0":
            base = 8
            i += 1
            if i < n and s[i] in "xX":
                base = 16
                i += 1
        val = 0
        while i < n:
            c = s[i]
            if c.isascii() and c.isdigit() and (base != 8 or c in "01234567"):
                val = val * base + int(c)
            elif base == 16 and c in "abcdefABCDEF":
                val = val * 16 + int(c, 16)
            else:
                break
            if val > 0xFFFFFFFF:
                return None
            i += 1
        if i < n and s[i] == ".":
            if len(parts) > 2 or val > 0xFF:
                return None
            parts.append(val)
            i += 1
            continue
        break
    if i < n and s[i] not in " \t\n\v\f\r":
        return None
    limits = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)
    if val > limits[len(parts)]:
        return None
    result = 0
    for k, p in enumerate(parts):
        result |= p << (24 - 8 * k)
    return result | val


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\Z")


def dot_quad(s: str) -> int | None:
    """libwrap's dot_quad_addr(): exactly four dot-separated runs, then inet_addr().

    inet_addr() cannot tell 255.255.255.255 from an error, so neither can libwrap.
    """
    if _PLAIN4.match(s):  # the common case, without octal or hex parts
        a, b, c, d = s.split(".")
        plain = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
        return None if plain == 0xFFFFFFFF else plain
    if len([r for r in s.split(".") if r]) != 4:
        return None
    value = inet_aton(s)
    return None if value is None or value == 0xFFFFFFFF else value


_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def atoi(s: str) -> int:
    m = _ATOI.match(s)
    return int(m.group(1)) if m else 0


def parse_ip6(s: str) -> int | None:
    """inet_pton(AF_INET6): no zone index, no brackets."""
    if ":" not in s or "%" in s:
        return None
    try:
        return int(ipaddress.IPv6Address(s))
    except ValueError:
        return None


# --- strings -----------------------------------------------------------------------------


def string_test(tok: str) -> StrTest:
    """libwrap's string_match() for one token, Debian's wildcards first."""
    low = fold(tok)
    if "*" in tok or "?" in tok:
        rx = re.compile(
            "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in low),
            re.DOTALL,
        )
        return lambda s: rx.fullmatch(fold(s)) is not None
    if tok[0] == ".":
        n = len(tok)
        return lambda s: len(s) > n and fold(s[-n:]) == low
    if low == "all":
        return lambda s: True
    if low == "known":
        return lambda s: fold(s) != UNKNOWN
    if tok[-1] == ".":
        n = len(tok)
        return lambda s: fold(s[:n]) == low
    return lambda s: fold(s) == low


_NOT_INADDR = re.compile(r"[^0-9./]")
_DOTTED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


# --- hosts -------------------------------------------------------------------------------


@dataclass
class Never:
    """Why a pattern can never match (for `access check`)."""

    reason: str


@dataclass
class FileList:
    """A ``/file`` host list, read at load time (libwrap re-reads it on every match)."""

    path: str
    patterns: list[HostTest] = field(default_factory=list)
    error: str | None = None  # open() failed for another reason than ENOENT
    missing: bool = False
    # Plain addresses (a dotted quad, an [IPv6]): looked up in sets, so that a list of
    # 100,000 banned addresses (todokede guard's) costs one lookup, not 100,000 tests.
    exact4: set[str] = field(default_factory=set)
    exact6: set[int] = field(default_factory=set)


def _read_file_list(path: str, depth: int, files: dict[str, FileList]) -> FileList:
    if path in files:
        return files[path]
    fl = FileList(path)
    files[path] = fl
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        fl.missing = True
        return fl
    except IsADirectoryError:
        return fl  # fopen() succeeds on a directory and fscanf() then reads nothing
    except OSError as exc:
        fl.error = f"open {path}: {exc.strerror}"
        return fl
    if depth > 16:  # a loop of files; libwrap would recurse until the stack overflows
        fl.error = f"open {path}: too many levels of nested files"
        return fl
    for word in data.split():  # fscanf("%s"): whitespace-separated, '#' is no comment
        word = word.split(b"\0", 1)[0]
        if not word:
            continue
        text = word.decode("latin-1")
        if _DOTTED.fullmatch(text):
            fl.exact4.add(text)  # string_test of digits and dots: equality with the address
            continue
        if text[0] == "[" and text[-1] == "]":
            parts = _ip6_parts(text)
            if not isinstance(parts, str):
                fl.exact6.add(parts[1])
                continue
        fl.patterns.append(host_test(text, depth + 1, files)[0])
    return fl


def host_test(
    tok: str, depth: int = 0, files: dict[str, FileList] | None = None
) -> tuple[HostTest, Never | None]:
    """Compile libwrap's host_match() for one token; also say if it can never match."""
    files = {} if files is None else files
    low = fold(tok)
    if tok[0] == "@":
        return (lambda h: False), Never("netgroups need NIS; without it they never match")
    if tok[0] == "/":
        fl = _read_file_list(tok, depth, files)
        pats = fl.patterns
        if fl.error:
            err = fl.error

            def file_error(h: Host) -> bool:
                h.warn(err)
                return False

            return file_error, Never(err)
        if fl.missing:
            return (lambda h: False), Never(f"{tok}: no such file")
        exact4, exact6 = fl.exact4, fl.exact6

        def in_file(h: Host) -> bool:
            if exact4 and h.addr() in exact4:
                return True
            if exact6 and h.ip6() in exact6:
                return True
            return any(p(h) for p in pats)

        return in_file, None
    if low == "known":
        return (lambda h: fold(h.addr()) != UNKNOWN and known(h.name())), None
    if low == "local":

        def local(h: Host) -> bool:
            name = h.name()
            return "." not in name and known(name)

        return local, None
    if tok[0] == "[":
        return _ip6_test(tok)
    parts = split_at(tok, "/")
    if parts is not None:
        return _masked_test(*parts)
    st = string_test(tok)
    if _NOT_INADDR.search(tok):
        return (lambda h: st(h.addr()) or st(h.name())), None
    return (lambda h: st(h.addr())), None


def _ip6_parts(tok: str) -> tuple[int, int] | str:
    """(mask, net) of a ``[addr]`` or ``[net]/len`` token, or why it never matches."""
    close = tok.find("]")
    if close < 0:
        return f"{tok}: missing ']'"
    net = parse_ip6(tok[1:close])
    rest = tok[close + 1 :]
    if net is None:
        return f"{tok}: not an IPv6 address"
    if rest == "":
        bits = 128
    elif rest[0] == "/":
        bits = atoi(rest[1:])
        if not 0 <= bits <= 128:
            return f"{tok}: prefix length out of range"
    else:
        return f"{tok}: junk after ']'"
    mask = ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
    return mask, net & mask  # libwrap ignores host bits here


def _ip6_test(tok: str) -> tuple[HostTest, Never | None]:
    parts = _ip6_parts(tok)
    if isinstance(parts, str):
        return (lambda h: False), Never(parts)
    mask, want = parts

    def ip6(h: Host) -> bool:
        a = h.ip6()
        return a is not None and a & mask == want

    return ip6, None


def _net4_parts(net_tok: str, mask_tok: str) -> tuple[int, int] | str:
    """(mask, net) of a ``net/mask`` or ``net/len`` token, or why it never matches."""
    net = dot_quad(net_tok)
    if net is None:
        return f"{net_tok}/{mask_tok}: bad network address"
    mask = dot_quad(mask_tok)
    if mask is None:
        bits = atoi(mask_tok)
        if not 1 <= bits <= 32:
            return f"{net_tok}/{mask_tok}: bad mask or prefix length"
        mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    if net & mask != net:
        return f"{net_tok}/{mask_tok}: the network has host bits set"
    return mask, net


def _masked_test(net_tok: str, mask_tok: str) -> tuple[HostTest, Never | None]:
    parts = _net4_parts(net_tok, mask_tok)
    if isinstance(parts, str):
        return (lambda h: False), Never(parts)
    mask, net = parts

    def masked(h: Host) -> bool:
        a = h.ip4()
        return a is not None and a & mask == net

    return masked, None


Key = tuple[str, int, int] | tuple[str, str] | tuple[str]


def index_key(tok: str) -> Key | None:
    """How an index finds a host pattern that never looks anything up.

    Address side: ("*",) everyone (``ALL``), ("a", text) exact, ("p", text) prefix,
    ("s", text) suffix, ("m", mask, net) IPv4 network, ("6", mask, net) IPv6 network,
    ("x",) never matches. Name side
    (compared with the address text, then with the name, which may need a lookup):
    ("n", text) exact, ("d", text) suffix. None: neither (wildcards, keywords, files)."""
    if "*" in tok or "?" in tok or tok[0] in "@/":
        return ("x",) if tok[0] == "@" else None
    low = fold(tok)
    if low == "all":
        return ("*",)
    if low in ("known", "local"):
        return None
    if tok[0] == "[":
        parts = _ip6_parts(tok)
        return ("x",) if isinstance(parts, str) else ("6", *parts)
    slash = split_at(tok, "/")
    if slash is not None:
        parts = _net4_parts(*slash)
        return ("x",) if isinstance(parts, str) else ("m", *parts)
    if _NOT_INADDR.search(tok):
        if tok[-1] == "." and tok[0] != ".":
            return None  # a name prefix: rare, left to the general scan
        return ("d", low) if tok[0] == "." else ("n", low)
    if tok[0] == ".":
        return ("s", low)
    return ("p", low) if tok[-1] == "." else ("a", low)


# --- client and daemon tokens ------------------------------------------------------------


@dataclass
class Compiled:
    test: Test
    never: Never | None
    key: Key | None = None  # see index_key(): a pattern an index can find
    needs_host: bool = False  # a daemon token with @host or a port: not cacheable


def client_token(tok: str, files: dict[str, FileList]) -> Compiled:
    at = split_at(tok[1:], "@")
    if at is None:
        ht, never = host_test(tok, 0, files)
        return Compiled(lambda ctx: ht(ctx.client), never, index_key(tok))
    user_tok, host_tok = tok[0] + at[0], at[1]
    if not host_tok:
        return Compiled(lambda ctx: False, Never(f"{tok}: empty host part"))
    ht, never = host_test(host_tok, 0, files)
    ut = string_test(user_tok)
    return Compiled(lambda ctx: ht(ctx.client) and ut(ctx.user()), never)


def daemon_token(tok: str, files: dict[str, FileList]) -> Compiled:
    at = split_at(tok[1:], "@")
    if at is None:
        st = string_test(tok)
        if tok.isascii() and tok.isdigit():
            port = int(tok)

            def daemon_or_port(ctx: Context) -> bool:
                return st(ctx.daemon()) or ctx.server.port() == port

            return Compiled(daemon_or_port, None, needs_host=True)
        return Compiled(lambda ctx: st(ctx.daemon()), None)
    daemon_tok, host_tok = tok[0] + at[0], at[1]
    st = string_test(daemon_tok)
    if not host_tok:
        return Compiled(lambda ctx: False, Never(f"{tok}: empty host part"), needs_host=True)
    ht, never = host_test(host_tok, 0, files)
    return Compiled(lambda ctx: st(ctx.daemon()) and ht(ctx.server), never, needs_host=True)


def file_paths(files: dict[str, FileList]) -> list[str]:
    return [p for p in files if os.path.isabs(p)]
