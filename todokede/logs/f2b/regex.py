"""fail2ban's regexes: its tags turned into Python groups, and matching over line buffers.

``<HOST>`` is an address (IPv4, IPv4-mapped IPv6 as its IPv4, IPv6, optionally in
brackets) or a host name (only an address when ``usedns = no``); ``<ADDR>``, ``<IP4>``,
``<IP6>``, ``<DNS>``, ``<CIDR>``, ``<SUBNET>`` and their ``<F-NAME/>`` forms; ``<F-ID/>``
and ``<F-PORT/>``; ``<F-NAME>...</F-NAME>`` any upper-case field (``F-USER``, ``F-MLFID``,
``F-NOFAIL``, ``F-ALT_USER1``, ``F-TUPLE_X``...); ``<SKIPLINES>`` any lines between two
parts of a multi-line regex. A regex sees the buffered lines joined by newlines, each with
its date cut out.
"""

from __future__ import annotations

import re

from todokede.errors import ConfigError
from todokede.logs.f2b.literals import firsts, needles, prefix

IP4 = r"(?:\d{1,3}\.){3}\d{1,3}"
IP6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
_R_IP4 = rf"(?:::f{{4,6}}:)?(?P<ip4>{IP4})"
_R_IP6 = rf"(?P<ip6>{IP6})"
_R_DNS = r"(?P<dns>[\w\-.^_]*\w)"
_R_ADDR = rf"\[?(?:{_R_IP4}|{_R_IP6})\]?"
_R_HOST = rf"(?:{_R_ADDR}|{_R_DNS})"
_R_CIDR = r"(?P<cidr>\d+)"
_R_SUBNET = rf"\[?(?:{_R_IP4}|{_R_IP6})(?:/{_R_CIDR})?\]?"
TAGS = {
    "IP4": _R_IP4,
    "F-IP4/": _R_IP4,
    "IP6": _R_IP6,
    "F-IP6/": _R_IP6,
    "ADDR": _R_ADDR,
    "F-ADDR/": _R_ADDR,
    "CIDR": _R_CIDR,
    "F-CIDR/": _R_CIDR,
    "SUBNET": _R_SUBNET,
    "F-SUBNET/": _R_SUBNET,
    "DNS": _R_DNS,
    "F-DNS/": _R_DNS,
    "F-ID/": r"(?P<fid>\S+)",
    "F-PORT/": r"(?P<fport>\w+)",
}
_FTAG = re.compile(r"</?[\w\-]+/?>")
_FIELD = re.compile(r"^(/?)F-([A-Z0-9_\-]+)$")
_RENAMED = {"id": "fid", "port": "fport"}
# Python takes (?i) only at the start: "((?i)x)" and "(?:(?i)x)" become "(?i:x)"
_LOCAL_FLAGS = re.compile(r"(?<!\\)\((?:\?:)?(\(\?[a-z]+)\)")
_COMPOUND = re.compile(r"^(alt_|tuple_)(.*?)(?:_\d+)?$")
FAILURE_ID_GROUPS = ("fid", "ip4", "ip6", "dns")

Line = tuple[str, str, str]  # (before the date, the date, after it)


def field_name(tag: str) -> str:
    tag = tag.lower()
    return _RENAMED.get(tag, tag)


def resolve_tags(regex: str, use_dns: str = "warn") -> str:
    """The regex with fail2ban's tags replaced by Python groups."""
    opened: set[str] = set()
    skips = 0

    def tag(m: re.Match[str]) -> str:
        nonlocal skips
        text = m.group()
        name = text[1:-1]
        if name == "HOST":
            return _R_ADDR if use_dns == "no" else _R_HOST
        if name == "SKIPLINES":
            skips += 1
            return rf"\n(?P<skiplines{skips - 1}>(?:(?:.*\n)*?))"
        if name in TAGS:
            return TAGS[name]
        f = _FIELD.match(name)
        if f is None:
            return text
        closing, field = f.groups()
        if closing:
            return ")" if field in opened else text
        opened.add(field)
        return f"(?P<{field_name(field)}>"

    return _FTAG.sub(tag, regex)


def join_lines(lines: list[Line]) -> str:
    return "\n".join(before + after for before, _, after in lines) + "\n"


class Regex:
    """A compiled fail2ban regex; :meth:`search` remembers which lines the match took."""

    def __init__(self, regex: str, multiline: bool = False, use_dns: str = "warn") -> None:
        regex = resolve_tags(regex, use_dns)
        if not regex.strip():
            raise ConfigError("cannot add an empty regex")
        regex = _LOCAL_FLAGS.sub(r"\1:", regex)
        try:
            self.compiled = re.compile(regex, re.MULTILINE if multiline else 0)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(f"not a regular expression Python compiles: {exc}") from exc
        self.source = regex
        # a text without any of these cannot match (None: no such strings are known)
        found = needles(regex, self.compiled.flags)
        self.needles = None if found is None else tuple(sorted(found))
        # a regex that matches only at the start: the literal text it starts with
        self.prefix = prefix(regex, self.compiled.flags)
        # and the characters it may start with (None: any)
        self.firsts = firsts(regex, self.compiled.flags)
        self.alt: list[tuple[str, str]] = []
        self.tuples: list[tuple[str, str]] = []
        for group in self.compiled.groupindex:
            c = _COMPOUND.match(group) if len(group) > 4 else None
            if c:
                (self.alt if c.group(1) == "alt_" else self.tuples).append(
                    (group, field_name(c.group(2)))
                )
        self.alt.sort()
        self.tuples.sort()
        self.match: re.Match[str] | None = None
        self.matched: list[Line] = []
        self.unmatched: list[Line] = []

    def __getstate__(self) -> dict[str, object]:
        # a match is not picklable, and only means something within one line's matching
        return {**self.__dict__, "match": None, "matched": [], "unmatched": []}

    def search(self, buf: str, lines: list[Line]) -> bool:
        if self.prefix and not buf.startswith(self.prefix):
            self.match = None
            return False
        if self.needles is not None:
            for needle in self.needles:
                if needle in buf:
                    break
            else:
                self.match = None
                return False
        m = self.match = self.compiled.search(buf)
        if m is None:
            return False
        if len(lines) <= 1:
            self.matched, self.unmatched = lines, []
            return True
        s = m.string
        start = s.rfind("\n", 0, m.start() + 1) + 1
        end = s.find("\n", m.end() - 1)
        end = len(s) if end < 0 else end + 1
        first, last = s.count("\n", 0, start), s.count("\n", 0, end)
        matched, unmatched = lines[first:last], lines[:first]
        n = 0
        for skipped in self.skipped_lines():
            for k, line in enumerate(matched[n:]):
                if line[0] + line[2] == skipped:
                    unmatched.append(matched.pop(n + k))
                    n += k
                    break
        unmatched.extend(lines[last:])
        self.matched, self.unmatched = matched, unmatched
        return True

    def skipped_lines(self) -> list[str]:
        m = self.match
        if m is None:
            return []
        text = ""
        n = 0
        while f"skiplines{n}" in self.compiled.groupindex:
            text += m.group(f"skiplines{n}") or ""
            n += 1
        return text.splitlines()

    def groups(self) -> dict[str, object]:
        assert self.match is not None
        fail: dict[str, object] = dict(self.match.groupdict())
        for group, name in self.alt:
            v = fail.get(group)
            if v and not fail.get(name):
                fail[name] = v
        for group, name in self.tuples:
            v = fail.get(group)
            t = fail.get(name)
            fail[name] = (*t, v) if isinstance(t, tuple) else (t, v)
        return fail

    def has_any(self, names: tuple[str, ...]) -> bool:
        return any(n in self.compiled.groupindex for n in names)
