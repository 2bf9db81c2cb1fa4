"""fail2ban filters as todokede parsers.

A filter file is an INI file: ``[INCLUDES]`` ``before``/``after`` name files to read first or
last (relative to the filter; ``common.conf`` supplies ``%(__prefix_line)s``), a ``NAME.local``
beside it overrides it, ``[DEFAULT]`` values are seen by every section, ``[Definition]`` holds
``failregex``, ``ignoreregex`` and ``prefregex`` (one regex per line), ``[Init]`` overrides.
Values are expanded as fail2ban does: ``%(name)s`` and ``%(section/name)s`` interpolation, then
``<name>`` tags (innermost first, so ``<lt_<logtype>/__prefix_line>`` works), then the regex
tags ``<HOST>``, ``<ADDR>``, ``<IP4>``, ``<IP6>``, ``<DNS>``, ``<CIDR>``, ``<SUBNET>`` and
``<F-NAME>...</F-NAME>`` field groups. As in fail2ban, the regexes see a line with its date cut
off (``host prog[pid]: message``). A match whose ``F-NOFAIL``, ``F-MLFGAINED`` or
``F-MLFFORGET`` group took part is not a failure. Multi-line regexes (``<SKIPLINES>``) are
not supported: they are dropped with a warning.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path

from todokede.errors import ConfigError

_IP4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IP6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
_DNS = r"[\w\-.^_]*\w"
REGEX_TAGS = {
    "IP4": f"(?P<ip4>{_IP4})",
    "IP6": f"(?P<ip6>{_IP6})",
    "ADDR": rf"(?:(?P<ip4>{_IP4})|\[?(?P<ip6>{_IP6})\]?)",
    "HOST": rf"(?:(?P<ip4>{_IP4})|\[?(?P<ip6>{_IP6})\]?|(?P<dns>{_DNS}))",
    "DNS": f"(?P<dns>{_DNS})",
    "CIDR": r"(?P<cidr>\d{1,3})",
    "SUBNET": rf"(?P<ip4>{_IP4})(?:/(?P<cidr>\d{{1,3}}))?",
}
_TAG = re.compile(r"<([^<>\s]+)>")
_INTERP = re.compile(r"%\(([^)]+)\)s")
_NOT_FAILURES = ("nofail", "mlfgained", "mlfforget")
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_MAX_DEPTH = 40

Sections = dict[str, dict[str, str]]


@dataclass
class Failure:
    host: str
    user: str


@dataclass
class Filter:
    """A loaded fail2ban filter: call :meth:`match` on a line without its date."""

    name: str
    failregex: list[re.Pattern[str]]
    ignoreregex: list[re.Pattern[str]] = field(default_factory=list)
    prefregex: re.Pattern[str] | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Filter:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such fail2ban filter file")
        sections = _read_with_includes(path, depth=0)
        return _compile(path, sections)

    def match(self, text: str) -> Failure | None:
        if self.prefregex is not None:
            pm = self.prefregex.search(text)
            if pm is None:
                return None
            content = pm.groupdict().get("content")
            if content is not None:
                text = content
        for rx in self.ignoreregex:
            if rx.search(text):
                return None
        for rx in self.failregex:
            m = rx.search(text)
            if m is None:
                continue
            groups = m.groupdict()
            if any(groups.get(g) is not None for g in _NOT_FAILURES):
                return None
            host = groups.get("ip4") or groups.get("ip6") or groups.get("dns") or ""
            if not host:
                continue
            user = groups.get("user") or groups.get("alt_user") or ""
            return Failure(host, user)
        return None


def _parse_ini(path: Path) -> Sections:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="\0")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a fail2ban filter: {exc}") from exc
    return {s.strip(): dict(parser.items(s)) for s in parser.sections()}


def _merge(into: Sections, layer: Sections) -> None:
    for name, values in layer.items():
        target = into.setdefault(name, {})
        for key, value in values.items():
            if key in target and "\0known" not in name:
                # what %(known/key)s refers to: the value this layer overrides
                into.setdefault(name + "\0known", {})[key] = target[key]
            target[key] = value


def _read_with_includes(path: Path, depth: int) -> Sections:
    if depth > 10:
        raise ConfigError(f"{path}: [INCLUDES] nest too deep")
    own = _parse_ini(path)
    includes = own.pop("INCLUDES", {})
    result: Sections = {}
    for name in includes.get("before", "").split():
        inc = path.parent / name
        if inc.is_file():
            _merge(result, _read_with_includes(inc, depth + 1))
    _merge(result, own)
    local = path.with_suffix(".local")
    if path.suffix == ".conf" and local.is_file():
        _merge(result, _parse_ini(local))
    for name in includes.get("after", "").split():
        inc = path.parent / name
        if inc.is_file():
            _merge(result, _read_with_includes(inc, depth + 1))
    return result


class _Resolver:
    def __init__(self, path: Path, sections: Sections) -> None:
        self.path = path
        self.sections = sections

    def lookup(self, section: str, name: str) -> str | None:
        if "/" in name:
            other, _, key = name.partition("/")
            if other == "known":
                known = self.sections.get(section + "\0known", {})
                if key in known:
                    return known[key]
                if key in self.sections.get(section, {}) and section != "DEFAULT":
                    return self.sections.get("DEFAULT", {}).get(key)
                return self.lookup(section, key)
            sec = self.sections.get(other, {})
            if key in sec:
                return sec[key]
            return self.sections.get("DEFAULT", {}).get(key)
        for sec_name in (
            ("Init", section, "Definition", "DEFAULT") if section != "DEFAULT" else ("DEFAULT",)
        ):
            sec = self.sections.get(sec_name, {})
            if name in sec:
                return sec[name]
        return None

    def expand(self, value: str, section: str, depth: int = 0) -> str:
        if depth > _MAX_DEPTH:
            raise ConfigError(f"{self.path}: interpolation loops (depth {_MAX_DEPTH})")

        def interp(m: re.Match[str]) -> str:
            name = m.group(1)
            sec = (
                name.partition("/")[0] if "/" in name and not name.startswith("known/") else section
            )
            found = self.lookup(section, name)
            if found is None:
                raise ConfigError(f"{self.path}: %({name})s is not defined")
            return self.expand(found, sec, depth + 1)

        value = _INTERP.sub(interp, value)

        def tag(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in REGEX_TAGS or name.startswith(("F-", "/F-")) or name == "SKIPLINES":
                return m.group(0)
            found = self.lookup(section, name)
            if found is None:
                return m.group(0)
            sec = name.partition("/")[0] if "/" in name else section
            return self.expand(found, sec, depth + 1)

        for _ in range(_MAX_DEPTH):
            new = _TAG.sub(tag, value)
            if new == value:
                break
            value = new
        return value


def _to_python(rx: str) -> str:
    def tag(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in REGEX_TAGS:
            return REGEX_TAGS[name]
        if name.startswith("F-") and name.endswith("/"):
            return f"(?P<{name[2:-1].lower().replace('-', '_')}>\\S+)"
        if name.startswith("F-"):
            return f"(?P<{name[2:].lower().replace('-', '_')}>"
        if name.startswith("/F-"):
            return ")"
        return m.group(0)

    rx = _TAG.sub(tag, rx)
    # Python wants global flags such as (?i) first; fail2ban's regexes put them anywhere
    flags = "".join(sorted(set("".join(_GLOBAL_FLAGS.findall(rx)))))
    return f"(?{flags})" + _GLOBAL_FLAGS.sub("", rx) if flags else rx


def _compile_list(
    value: str, what: str, path: Path, warnings: list[str], resolver: _Resolver
) -> list[re.Pattern[str]]:
    out = []
    for raw in resolver.expand(value, "Definition").splitlines():
        line = raw.strip()
        if not line:
            continue
        if "<SKIPLINES>" in line:
            warnings.append(f"{path}: {what}: multi-line regex skipped: {line[:60]}")
            continue
        out.append(_compile_one(line, what, path))
    return out


def _compile_one(line: str, what: str, path: Path) -> re.Pattern[str]:
    source = _to_python(line)
    try:
        return re.compile(source)
    except re.error as exc:
        # fail2ban lets each regex name its own groups; a repeated <HOST> would clash here
        if "redefinition of group name" in str(exc):
            seen: dict[str, int] = {}

            def rename(m: re.Match[str]) -> str:
                n = m.group(1)
                seen[n] = seen.get(n, 0) + 1
                return f"(?P<{n}>" if seen[n] == 1 else "(?:"

            try:
                return re.compile(re.sub(r"\(\?P<(\w+)>", rename, source))
            except re.error:
                pass
        raise ConfigError(f"{path}: {what}: bad regex {line!r}: {exc}") from exc


def _compile(path: Path, sections: Sections) -> Filter:
    resolver = _Resolver(path, sections)
    definition = sections.get("Definition")
    if definition is None:
        raise ConfigError(f"{path}: no [Definition] section")
    warnings: list[str] = []
    failregex = _compile_list(
        definition.get("failregex", ""), "failregex", path, warnings, resolver
    )
    if not failregex:
        raise ConfigError(f"{path}: [Definition] has no usable failregex")
    ignoreregex = _compile_list(
        definition.get("ignoreregex", ""), "ignoreregex", path, warnings, resolver
    )
    pref = resolver.expand(definition.get("prefregex", ""), "Definition").strip()
    prefregex = _compile_one(pref, "prefregex", path) if pref else None
    name = path.name.removesuffix(".conf").removesuffix(".local")
    return Filter(name, failregex, ignoreregex, prefregex, warnings)
