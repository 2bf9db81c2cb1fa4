"""Reading a fail2ban filter's files as fail2ban does.

The files are INI files read by the standard library's ``configparser`` with the settings
fail2ban uses: names are case-insensitive, ``;`` after a space starts a comment, a repeated
option or section in one file is an error, ``%(name)s`` is interpolated (``%%`` is a
percent sign) from the section, then ``[DEFAULT]``, with fail2ban's additions:
``%(section/name)s`` and ``%(known/name)s`` (the value a later file overrode).

A filter ``NAME`` is ``filter.d/NAME.conf``, then ``filter.d/NAME.d/*.conf``,
``NAME.local``, ``NAME.d/*.local``; each file is preceded by its ``[INCLUDES] before``
files and followed by its ``after`` files (each with its own ``.local``), recursively.
Files are merged in that order, section by section; ``[Section?opt=value]`` holds values
used only when the option has that value.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import MutableMapping
from pathlib import Path

from todokede.errors import ConfigError

_SECTION_OPT = re.compile(r"^([\w\-]+)/([^\s>]+)$")
_SECTION_SUBST = re.compile(r"%\(([\w\-]+/([^\)]+))\)s")
CONDITIONAL = re.compile(r"^(\w+)(\?.+)$")
_MAX_INCLUDE_DEPTH = 32


class _Interpolation(configparser.BasicInterpolation):
    """``%(name)s`` plus fail2ban's ``%(section/name)s``, ``%(known/name)s`` and
    ``%(__name__)s``."""

    def _interpolate_some(
        self,
        parser: Parser,
        option: str,
        accum: list[str],
        rest: str,
        section: str,
        map: MutableMapping[str, str],
        depth: int,
    ) -> None:
        if section:
            map = dict(map)
            map["__name__"] = section
            parser.map_section_options(section, rest, map)
        super()._interpolate_some(parser, option, accum, rest, section, map, depth)  # type: ignore[misc]


class Parser(configparser.ConfigParser):
    """One file, or the merge of several."""

    def __init__(self) -> None:
        super().__init__(interpolation=_Interpolation(), inline_comment_prefixes=(";",))

    @property
    def sections_raw(self) -> dict[str, dict[str, str]]:
        return self._sections  # type: ignore[attr-defined,no-any-return]

    @property
    def defaults_raw(self) -> dict[str, str]:
        return self._defaults  # type: ignore[attr-defined,no-any-return]

    def map_section_options(self, section: str, rest: str, map: MutableMapping[str, str]) -> None:
        if "/" not in rest or "%(" not in rest:
            return
        for sopt, opt in _SECTION_SUBST.findall(rest):
            if sopt in map:
                continue
            sec = sopt[: -len(opt) - 1]
            value = None
            if sec.lower() == "known":
                value = self.sections_raw.get("KNOWN/" + section, {}).get(opt)
            elif sec.lower() != "default":
                if sec not in self.sections_raw:
                    continue
                value = self.sections_raw[sec].get(opt)
            if value is None:
                value = self.defaults_raw.get(opt)
            if value is not None:
                map[sopt] = value

    def get_ex(self, section: str, option: str, vars: dict[str, str] | None = None) -> str:
        """``get`` that reads ``section/option`` and ``known/option`` names."""
        m = _SECTION_OPT.search(option) if "/" in option else None
        if m:
            sec, opt = m.groups()
            low = sec.lower()
            tries = ("KNOWN/" + section, section) if low == "known" else (sec,)
            if low == "default":
                tries = ("DEFAULT",)
            for s in tries:
                try:
                    return self.get(s, opt)
                except (configparser.NoSectionError, configparser.NoOptionError):
                    pass
        return self.get(section, option, vars=vars)

    def merge(self, other: Parser) -> None:
        self.defaults_raw.update(other.defaults_raw)
        mine = self.sections_raw
        for name, values in other.sections_raw.items():
            cond = CONDITIONAL.match(name)
            if cond:
                name, suffix = cond.groups()
                values = {k + suffix: v for k, v in values.items()}
            have = mine.get(name)
            if have is None:
                mine[name] = dict(values)
                continue
            known = mine.setdefault("KNOWN/" + name, {})
            known.update({k: v for k, v in have.items() if k in values})
            have.update(values)


def _error_where(exc: configparser.Error, path: Path) -> str:
    line = getattr(exc, "lineno", None)
    errors = getattr(exc, "errors", None)
    if line is None and errors:
        line = errors[0][0]
    where = f"{path}, line {line}" if line else str(path)
    message = str(exc).splitlines()[0]
    return f"{where}: not a filter fail2ban reads: {message}"


def read_one(path: Path) -> Parser | None:
    """One file alone (None when it cannot be read, which fail2ban passes over)."""
    parser = Parser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(_error_where(exc, path)) from exc
    return parser


def _with_local(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.append(p)
        local = p.with_suffix(".local") if p.suffix else Path(str(p) + ".local")
        if local not in paths and local.is_file():
            out.append(local)
    return out


def _includes(paths: list[Path], seen: tuple[Path, ...] = ()) -> list[Path]:
    out: list[Path] = []
    for p in _with_local(paths):
        out += _include_one(p, seen)
    return out


def _include_one(path: Path, seen: tuple[Path, ...]) -> list[Path]:
    if len(seen) > _MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: [INCLUDES] nest deeper than {_MAX_INCLUDE_DEPTH}")
    parser = read_one(path)
    if parser is None:
        return []
    before: list[Path] = []
    after: list[Path] = []
    if parser.has_section("INCLUDES"):
        for key, into in (("before", before), ("after", after)):
            if not parser.has_option("INCLUDES", key):
                continue
            try:
                names = parser.get("INCLUDES", key)
            except configparser.Error as exc:
                raise ConfigError(f"{path}: [INCLUDES] {key}: {exc}") from exc
            for name in names.split("\n"):
                target = Path(name) if Path(name).is_absolute() else path.parent / name
                if target in seen:
                    continue
                into += _includes([target], (*seen, path))
    return [*before, path, *after]


def read_files(paths: list[Path]) -> tuple[Parser, list[Path]]:
    """The merge of ``paths`` with their includes, and the files read in order."""
    merged = Parser()
    order = _includes(paths)
    read: list[Path] = []
    for p in order:
        one = read_one(p)
        if one is not None:
            merged.merge(one)
            read.append(p)
    return merged, read


def filter_files(base: Path) -> list[Path]:
    """``NAME.conf``, ``NAME.d/*.conf``, ``NAME.local``, ``NAME.d/*.local`` that exist."""
    d = Path(str(base) + ".d")
    files = [Path(str(base) + ".conf"), *sorted(d.glob("*.conf"))]
    files += [Path(str(base) + ".local"), *sorted(d.glob("*.local"))]
    return [f for f in files if f.exists()]


def option_line(files: list[Path], section: str, option: str) -> tuple[Path, int] | None:
    """Where the value of ``option`` in ``section`` that won was written (the last one)."""
    found = None
    head = re.compile(r"^\[([^\]]+)\]")
    key = re.compile(rf"^{re.escape(option)}\s*[=:]", re.IGNORECASE)
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        current = ""
        for n, text in enumerate(lines, 1):
            h = head.match(text)
            if h:
                current = h.group(1).strip()
            elif current == section and key.match(text):
                found = (path, n)
    return found
