"""``todokede access check``: tcpdchk's job, and what tcpdchk never said.

Every finding names its file and line: syntax and option errors (as libwrap would raise
them when the rule matches), lines libwrap ignores, patterns that can never match,
rules that an earlier rule shadows, daemon names nothing on this system answers to.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from todokede.access import options as opts
from todokede.access.compiled import Rule, Table
from todokede.access.engine import Rules
from todokede.access.patterns import dot_quad, fold, parse_ip6
from todokede.access.resolve import Resolver
from todokede.access.table import RawWarning, split_at, tokens
from todokede.errors import RuleError

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.file}, line {self.line}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "message": self.message,
        }


# Daemons commonly run under tcpd or linked with libwrap; anything else must exist as a
# program on this system to count as known.
KNOWN_DAEMONS = frozenset(
    {
        "sshd",
        "sshd-session",
        "in.telnetd",
        "telnetd",
        "in.ftpd",
        "ftpd",
        "vsftpd",
        "proftpd",
        "in.tftpd",
        "tftpd",
        "in.fingerd",
        "fingerd",
        "in.rlogind",
        "rlogind",
        "in.rshd",
        "rshd",
        "in.rexecd",
        "rexecd",
        "in.talkd",
        "in.ntalkd",
        "in.identd",
        "identd",
        "imapd",
        "imap2",
        "imap3",
        "imaps",
        "ipop2d",
        "ipop3d",
        "pop3d",
        "popa3d",
        "dovecot",
        "imap-login",
        "pop3-login",
        "sendmail",
        "smtpd",
        "exim",
        "exim4",
        "postfix",
        "in.comsat",
        "comsat",
        "swat",
        "nntpd",
        "innd",
        "in.nntpd",
        "rpcbind",
        "portmap",
        "mountd",
        "rpc.mountd",
        "statd",
        "rpc.statd",
        "rquotad",
        "rpc.rquotad",
        "xinetd",
        "inetd",
        "stunnel",
        "stunnel4",
        "snmpd",
        "nrpe",
        "cupsd",
        "lpd",
        "in.lpd",
        "rsync",
        "rsyncd",
        "cvs",
        "cvspserver",
        "git-daemon",
        "mysqld",
        "slapd",
        "dhcpd",
        "named",
        "sshguard",
        "fail2ban",
        "echo",
        "daytime",
        "chargen",
        "discard",
        "time",
        "auth",
    }
)
RESERVED = frozenset({"known", "unknown", "paranoid", "local", "except"})
_PROGRAM_DIRS = ("/usr/sbin", "/sbin", "/usr/libexec", "/usr/lib", "/usr/local/sbin")


def _program_exists(name: str) -> bool:
    if shutil.which(name):
        return True
    return any(os.path.exists(os.path.join(d, name)) for d in _PROGRAM_DIRS)


class _Placeholders:
    """Expansion values for checking options without a request (as tcpdchk shows them)."""

    def expansion(self, letter: str) -> str | None:
        names = {
            "a": "client_addr",
            "A": "server_addr",
            "c": "user_name@client_hostname",
            "d": "daemon_name",
            "h": "client_hostname",
            "H": "server_hostname",
            "n": "client_hostname",
            "N": "server_hostname",
            "p": "process_id",
            "r": "0",
            "R": "0",
            "s": "daemon_name@server_hostname",
            "u": "user_name",
        }
        return names.get(letter)

    def daemon(self) -> str:
        return "daemon_name"

    def aclexec(self, command: str) -> None:
        pass  # checking runs nothing

    def rfc931(self, timeout: float) -> None:
        pass


_BARE_V6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f*]{0,4}){2,7}(?:\.[0-9.]+)?(?:/\d+)?")


def _outside_brackets(text: str) -> str:
    depth, out = 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        out.append(" " if depth > 0 or ch in "[]" else ch)
    return "".join(out)


def check(rules_dir: Path, *, resolver: Resolver | None = None) -> list[Finding]:
    """All findings for ``rules_dir``/hosts.allow and hosts.deny, in file order."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RuleError("no such directory", source=str(rules_dir))
    rules = Rules.load(rules_dir, resolver=resolver, recheck=-1)
    findings: list[Finding] = []
    earlier = _Earlier()
    for t_index, table in enumerate(rules.tables):
        findings += _check_table(t_index, table, earlier)
    return findings


def _check_table(t_index: int, table: Table, earlier: _Earlier) -> list[Finding]:
    out: list[Finding] = []
    name = table.name

    def add(line: int, severity: Severity, message: str) -> None:
        out.append(Finding(name, line, severity, message))

    for pos, entry in enumerate(table.entries):
        if isinstance(entry, RawWarning):
            if entry.fatal:
                later = (
                    "every request not matched earlier is denied"
                    if t_index
                    else ("the scan falls through to hosts.deny")
                )
                add(
                    entry.line + 1,
                    "error",
                    "missing newline or line too long (2047 bytes at most; libwrap reports "
                    f"it as line {entry.line}): this line and all later ones are ignored, "
                    f"and {later}",
                )
            else:
                add(entry.line, "error", 'missing ":" separator: libwrap skips this line')
            continue
        _check_rule(entry, add)
        if pos < table.stop:
            shadow = earlier.shadowing(entry)
            if shadow is not None:
                add(
                    entry.line,
                    "warning",
                    f"shadowed by {shadow.file} line {shadow.line}: this rule can never match",
                )
            earlier.add(entry)
    return out


def _check_rule(rule: Rule, add: Callable[[int, Severity, str], None]) -> None:
    def emit(severity: Severity, message: str) -> None:
        add(rule.line, severity, message)

    raw = rule.raw
    bare = [
        m.group(0)
        for m in _BARE_V6.finditer(_outside_brackets(raw.text))
        if m.group(0).count(":") >= 2 and any(c.isalnum() for c in m.group(0))
    ]
    for word in bare:
        emit(
            "error",
            f"bare IPv6 address {word}: the ':' splits the rule; write [{word}]",
        )
    if raw.text[:1] in (" ", "\t") and raw.text.lstrip(" \t").startswith("#"):
        emit("warning", "'#' starts a comment only in column 1: this indented line is a rule")
    elif any(t.startswith("#") for t in tokens(raw.clients)):
        emit("warning", "'#' after a rule starts no comment: its words are client patterns")
    for label, text in (("daemon", raw.daemons), ("client", raw.clients)):
        toks = tokens(text)
        if not toks and not bare:
            emit("error", f"empty {label} list: the rule never matches")
        elif toks and fold(toks[0]) == "except":
            emit("error", f"the {label} list starts with EXCEPT: the rule never matches")
    for tok, never in rule.nevers:
        severity: Severity = "warning" if tok.startswith("@") else "error"
        reason = never.reason.removeprefix(f"{tok}: ")
        emit(severity, f"{tok} can never match: {reason}")
    for tok in tokens(raw.daemons):
        if fold(tok) == "except":
            continue
        parts = split_at(tok[1:], "@")
        daemon = tok if parts is None else tok[0] + parts[0]
        low = fold(daemon)
        if low in RESERVED and low != "except":
            emit("warning", f"{daemon}: daemon name may be reserved word")
        elif low in ("portmap", "rpcbind"):
            emit("warning", f"{daemon}: service possibly not wrapped")
        elif (
            low != "all"
            and not any(c in daemon for c in "*?")
            and not daemon.isdigit()
            and low not in KNOWN_DAEMONS
            and not _program_exists(os.path.basename(daemon))
        ):
            emit("warning", f"{daemon}: unknown daemon name (no such program on this system)")
    if raw.options is not None:
        outcome = opts.process(raw.options, _Placeholders(), dry_run=False)
        for kind, text in outcome.events:
            if kind == "error":
                emit("error", f"{text} (a match is denied)")
            elif kind == "warning":
                emit("warning", text)


# --- shadowing ------------------------------------------------------------------------------


def _flat(rule: Rule, which: str) -> list[str] | None:
    text = rule.raw.daemons if which == "daemons" else rule.raw.clients
    toks = tokens(text)
    if not toks or any(fold(t) == "except" for t in toks):
        return None
    return toks


def _net4(tok: str) -> tuple[int, int] | None:
    parts = split_at(tok, "/")
    if parts is None:
        a = dot_quad(tok)
        return None if a is None else (a, 0xFFFFFFFF)
    net, mask_tok = dot_quad(parts[0]), dot_quad(parts[1])
    if net is None:
        return None
    if mask_tok is None:
        try:
            bits = int(parts[1])
        except ValueError:
            return None
        if not 1 <= bits <= 32:
            return None
        mask_tok = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return (net, mask_tok) if net & mask_tok == net else None


def _net6(tok: str) -> ipaddress.IPv6Network | None:
    if not tok.startswith("["):
        return None
    close = tok.find("]")
    rest = tok[close + 1 :]
    addr = parse_ip6(tok[1:close]) if close > 0 else None
    if addr is None:
        return None
    bits = 128 if rest == "" else int(rest[1:]) if re.fullmatch(r"/\d{1,3}", rest) else -1
    if not 0 <= bits <= 128:
        return None
    return ipaddress.IPv6Network((addr, bits), strict=False)


def _token_covers(a: str, b: str) -> bool:
    """Does host pattern ``a`` match everything host pattern ``b`` matches?"""
    fa, fb = fold(a), fold(b)
    if fa == "all" or fa == fb:
        return True
    if "@" in a + b or any(c in a + b for c in "*?"):
        return False
    if "/" in a and not a.startswith("["):
        net_a = _net4(a)
        if net_a is None:
            return False
        na, ma = net_a
        if "/" in b:
            net_b = _net4(b)
            return net_b is not None and net_b[1] & ma == ma and net_b[0] & ma == na
        addr_b = dot_quad(b)
        return addr_b is not None and addr_b & ma == na
    if fa.endswith(".") and not fa.startswith("."):
        return fb.startswith(fa) and (fb.endswith(".") or dot_quad(b) is not None)
    if fa.startswith("."):
        return fb.endswith(fa) and len(fb) > len(fa)
    n6a, n6b = _net6(a), _net6(b)
    if n6a is not None and n6b is not None:
        return n6b.subnet_of(n6a)
    return False


@dataclass
class _Shape:
    """What shadowing needs to know of a rule, computed once."""

    rule: Rule
    order: int
    daemons: frozenset[str] | None  # folded; None: EXCEPT or empty (not analysed)
    clients: list[str] | None
    all_daemons: bool
    all_clients: bool
    usable: bool  # may shadow later rules (no aclexec, no never-matching pattern)


_SPECIAL = frozenset({"all", "known", "local", "unknown", "paranoid"})


def _exact(tok: str) -> bool:
    """A token that covers only itself: no wildcard, network, prefix, suffix or keyword."""
    return not (
        fold(tok) in _SPECIAL
        or any(c in tok for c in "*?/@[")
        or tok.startswith(".")
        or tok.endswith(".")
    )


def _shape(rule: Rule, order: int) -> _Shape:
    daemons, clients = _flat(rule, "daemons"), _flat(rule, "clients")
    folded = None if daemons is None else frozenset(fold(d) for d in daemons)
    aclexec = bool(rule.raw.options) and "aclexec" in fold(rule.raw.options or "")
    return _Shape(
        rule,
        order,
        folded,
        clients,
        folded is not None and "all" in folded,
        clients is not None and any(fold(c) == "all" for c in clients),
        not aclexec and not rule.nevers and folded is not None and clients is not None,
    )


class _Earlier:
    """The rules scanned so far, indexed so that a later rule is compared only with the
    earlier rules that could cover it."""

    def __init__(self) -> None:
        self.by_token: dict[str, list[_Shape]] = {}  # rules listing exact clients only
        self.broad: list[_Shape] = []  # rules with a network, prefix, wildcard, ALL...
        self.count = 0

    def add(self, rule: Rule) -> None:
        shape = _shape(rule, self.count)
        self.count += 1
        if not shape.usable or shape.clients is None:
            return
        if all(_exact(c) for c in shape.clients):
            for c in {fold(c) for c in shape.clients}:
                self.by_token.setdefault(c, []).append(shape)
        else:
            self.broad.append(shape)

    def shadowing(self, rule: Rule) -> Rule | None:
        later = _shape(rule, self.count)
        if later.daemons is None or later.clients is None:
            return None
        candidates = list(self.broad)
        for c in {fold(c) for c in later.clients}:
            candidates += self.by_token.get(c, [])
        for e in sorted(candidates, key=lambda s: s.order):
            assert e.daemons is not None and e.clients is not None
            if not (e.all_daemons or later.daemons <= e.daemons):
                continue
            if e.all_clients or all(
                any(_token_covers(a, b) for a in e.clients) for b in later.clients
            ):
                return e.rule
        return None
