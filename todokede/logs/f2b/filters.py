"""Loading a fail2ban filter: its files, its options, its regexes, as fail2ban-regex does.

The options a filter takes from outside (``sshd[mode=aggressive]``) win over ``[Init]``,
which wins over ``[Definition]`` and ``[DEFAULT]``. A filter is rejected, with the file
and line of the value at fault, where fail2ban rejects it: a file it cannot parse, a
``%(name)s`` that names nothing, a regex Python cannot compile, a failregex without a group
naming the failure (``<HOST>``, ``<F-ID>``...), ``maxlines`` below one, a bad datepattern.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from todokede.errors import ConfigError
from todokede.logs.f2b import config
from todokede.logs.f2b.dates import DateDetector
from todokede.logs.f2b.matcher import Compiled
from todokede.logs.f2b.options import parse_spec, substitute
from todokede.logs.f2b.regex import FAILURE_ID_GROUPS, Regex

FILTER_DIR = Path("/etc/fail2ban/filter.d")
_OPTIONS = (
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
)
_ID_GROUPS = (*FAILURE_ID_GROUPS, "mlfid")


@dataclass
class Definition:
    """A filter's options after interpolation: what fail2ban hands its matcher."""

    name: str
    files: list[Path]
    options: dict[str, str | None] = field(default_factory=dict)


def locate(spec: str, dirs: list[Path] | None = None) -> tuple[Path, dict[str, str]]:
    """A ``--filter`` value as (the base of the filter's files, its options): a file path
    (``.../sshd.conf``), or a name (``sshd``) looked up in ``dirs`` (default
    /etc/fail2ban/filter.d); options in brackets either way."""
    try:
        name, opts = parse_spec(spec)
    except ConfigError as exc:
        raise ConfigError(f"--filter {spec!r}: {exc}") from exc
    path = Path(name)
    stem = path.with_suffix("") if path.suffix in (".conf", ".local") else path
    if stem is not path and config.filter_files(stem):
        return stem, opts
    if path.is_file():
        return path, opts
    dirs = dirs or [FILTER_DIR]
    if not path.is_absolute():
        # as in jail.conf, a name (or a path below filter.d) is looked up in the directories
        for d in dirs:
            if config.filter_files(d / stem):
                return d / stem, opts
    if stem is not path or os.sep in name:
        raise ConfigError(f"{path}: no such fail2ban filter file")
    raise ConfigError(f"fail2ban filter {name!r} not found in {', '.join(map(str, dirs))}")


def read(base: Path, opts: dict[str, str], logtype: str | None = None) -> Definition:
    """The filter whose files are ``base.conf``, ``base.local``..., or the file ``base``.
    ``logtype`` ("file", "journal") is set as a jail sets it from its backend: unless the
    options give one or the filter's own ``[Definition]`` does."""
    files = config.filter_files(base) if not base.is_file() else [base]
    if not files:
        raise ConfigError(f"{base}.conf: no such fail2ban filter file")
    parser, read_files = config.read_files(files)
    if not read_files:
        raise ConfigError(f"{files[0]}: cannot be read")
    own = parser.sections_raw.get("Definition", {})
    if logtype and not opts.get("logtype") and "logtype" not in own:
        opts = {**opts, "logtype": logtype}
    try:
        options = _options(parser, dict(opts))
    except (configparser.Error, ConfigError) as exc:
        raise ConfigError(_located(read_files, exc)) from exc
    return Definition(base.name, read_files, options)


def _located(files: list[Path], exc: Exception) -> str:
    section = getattr(exc, "section", None) or "Definition"
    option = getattr(exc, "option", None)
    where = config.option_line(files, section, option) if option else None
    place = f"{where[0]}, line {where[1]}" if where else str(files[0])
    return f"{place}: {str(exc).splitlines()[0]}"


def _options(parser: config.Parser, init: dict[str, str]) -> dict[str, str | None]:
    given = dict(init)
    values: dict[str, str | None] = {}
    for name in _OPTIONS:
        if name in given:
            continue
        try:
            values[name] = parser.get("Definition", name, vars=given)
        except configparser.NoSectionError:
            values[name] = None
        except configparser.NoOptionError:
            pass
    if parser.has_section("Init"):
        for opt in list(parser.sections_raw["Init"]):
            value = None
            if not opt.startswith("known/"):
                value = parser.get("Init", opt)
                init["known/" + opt] = value
            if opt not in init:
                init[opt] = value if value is not None else parser.get("Init", opt)
    combined: dict[str, str | None] = {**values, **init}
    ignore = set()
    for n in combined:
        cond = config.CONDITIONAL.match(n)
        if cond:
            ignore.add(cond.group(1))

    def lookup(name: str) -> str | None:
        try:
            return parser.get_ex("Definition", name, vars=given)
        except (configparser.NoSectionError, configparser.NoOptionError, ValueError):
            return None

    return substitute(combined, ignore, lookup)


def compile_definition(d: Definition) -> Compiled:
    """The regexes and date patterns of a read filter (ConfigError where fail2ban fails)."""
    o = d.options
    use_dns = o.get("usedns") or "warn"
    maxlines = 1
    if o.get("maxlines") is not None:
        try:
            maxlines = int(str(o["maxlines"]))
        except ValueError:
            maxlines = 1  # fail2ban warns and keeps its default
        if maxlines <= 0:
            raise ConfigError(f"{_where(d, 'maxlines')}: maxlines must be greater than zero")
    pref = o.get("prefregex")
    prefregex = _regex(d, "prefregex", pref, False, use_dns) if pref else None
    failregex = []
    for line in _lines(o.get("failregex")):
        rx = _regex(d, "failregex", line, maxlines > 1, use_dns)
        if not rx.has_any(_ID_GROUPS) and not (prefregex and prefregex.has_any(_ID_GROUPS)):
            raise ConfigError(
                f"{_where(d, 'failregex')}: no group names the failure (<HOST>, <ADDR>, "
                f"<F-ID>...) in {line!r}"
            )
        failregex.append(rx)
    ignoreregex = [
        _regex(d, "ignoreregex", x, False, use_dns) for x in _lines(o.get("ignoreregex"))
    ]
    datepattern = None
    if o.get("datepattern") is not None:
        datepattern = [p.strip() for p in str(o["datepattern"]).split("\n") if p.strip()]
        try:
            DateDetector().extend(datepattern)
        except ConfigError as exc:
            raise ConfigError(f"{_where(d, 'datepattern')}: {exc}") from exc
    journal = [m for m in _lines(o.get("journalmatch")) if m]
    return Compiled(d.name, failregex, ignoreregex, prefregex, maxlines, datepattern, journal)


def _lines(value: str | None) -> list[str]:
    return [] if value is None else [x for x in value.split("\n") if x != ""]


def _where(d: Definition, option: str) -> str:
    where = config.option_line(d.files, "Definition", option)
    return f"{where[0]}, line {where[1]}" if where else str(d.files[0])


def _regex(d: Definition, option: str, text: str, multiline: bool, use_dns: str) -> Regex:
    try:
        return Regex(text, multiline, use_dns)
    except ConfigError as exc:
        raise ConfigError(f"{_where(d, option)}: {option} {text!r}: {exc}") from exc
