"""The guard's TOML configuration: one ``[guard]`` table and one ``[jail.NAME]`` table per jail.

fail2ban's vocabulary where it fits: ``logpath``, ``journal`` (journalctl matches such as
``_SYSTEMD_UNIT=sshd.service``; ``journal_file`` reads given journal files instead of the
system's), ``filter``/``filters`` (todokede's own detectors by name, or the path of a
fail2ban filter file), ``maxretry``, ``findtime``, ``bantime`` (``-1``: for ever)
with ``bantime_increment``/``bantime_factor``/``bantime_maxtime`` for repeat offenders (fail2ban's
``bantime.increment``), ``ignoreip``. A ``[guard]`` value is the default of every jail.

Every error names the file, the line and the key.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from todokede.errors import InputError

DETECTORS = ("tcpd", "dovecot", "imapd", "sshd", "postfix", "sendmail", "exploit")
ACTIONS = ("hosts-deny", "nft", "command", "json")
REPORTS = ("none", "draft", "submit")
# Loopback and the private networks: a site's own machines are never banned unless a jail's
# ignoreip says otherwise (a test that bans 127.0.0.x sets its own).
DEFAULT_IGNORE = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GUARD_KEYS = {
    "state", "hosts_deny", "hosts_deny_daemons", "nft_table", "nft_set", "nft_chain", "ban_command",
    "unban_command", "json", "max_tracked", "center", "report_dir", "poll",
}  # fmt: skip
_JAIL_KEYS = {
    "enabled", "logpath", "journal", "journal_file", "filter", "filters", "maxretry",
    "findtime", "bantime", "bantime_increment", "bantime_factor", "bantime_maxtime",
    "ignoreip", "actions", "report", "report_threshold", "lang",
}  # fmt: skip


@dataclass(frozen=True)
class Jail:
    name: str
    logpath: tuple[Path, ...] = ()
    journal: tuple[str, ...] = ()
    journal_file: tuple[Path, ...] = ()  # journal files to read instead of the system's
    filters: tuple[str, ...] = ("tcpd",)
    maxretry: int = 5
    findtime: float = 600.0
    bantime: float = 600.0  # -1: until unbanned
    bantime_increment: bool = False
    bantime_factor: float = 2.0
    bantime_maxtime: float = 7 * 86400.0
    ignoreip: tuple[str, ...] = DEFAULT_IGNORE
    actions: tuple[str, ...] = ("hosts-deny",)
    report: str = "none"
    report_threshold: int = 1  # bans of one address before its report is made
    lang: str = "ja"

    def ban_seconds(self, previous_bans: int) -> float:
        """How long the next ban lasts, given how often this address was banned before."""
        if self.bantime < 0:
            return -1.0
        if not self.bantime_increment or previous_bans <= 0:
            return self.bantime
        grown = self.bantime * self.bantime_factor ** min(previous_bans, 64)
        return min(grown, max(self.bantime_maxtime, self.bantime))


@dataclass(frozen=True)
class GuardConfig:
    source: str
    jails: dict[str, Jail]
    state: Path = Path("/var/lib/todokede/guard.db")
    hosts_deny: Path = Path("/var/lib/todokede/guard.deny")
    # "": a host list (the site's hosts.deny names it); else whole rules "DAEMONS: ADDR"
    hosts_deny_daemons: str = ""
    nft_table: str = "inet todokede"
    nft_set: str = "guard"  # guard4 / guard6 hold the IPv4 / IPv6 addresses
    nft_chain: bool = True  # create an input chain that drops the sets' addresses
    ban_command: str = ""
    unban_command: str = ""
    json: str = "stdout"  # stdout | syslog
    max_tracked: int = 100_000  # addresses with failures counted, per jail
    center: str = ""
    report_dir: Path = Path("/var/lib/todokede/reports")
    poll: float = 0.2
    extras: dict[str, Any] = field(default_factory=dict)


def duration(value: object) -> float:
    """Seconds of ``600``, ``"10m"``, ``"1h"``, ``"2d"``, ``"1w"``; ``-1`` means for ever."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '10m'")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("a duration must be a finite number")
        if value < 0 and value != -1:
            raise ValueError("a duration cannot be negative (-1: for ever)")
        return float(value)
    if isinstance(value, str):
        if value.strip() == "-1":
            return -1.0
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (seconds, or 30s, 10m, 1h, 2d, 1w)")


class _Where:
    """Finds the line of a key in the TOML text, for error messages (tomllib does not say)."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def line(self, table: tuple[str, ...], key: str | None = None) -> int | None:
        current: tuple[str, ...] = ()
        header = None
        for n, raw in enumerate(self.lines, 1):
            s = raw.strip()
            if s.startswith("["):
                inner = s.strip("[]").split("#")[0].strip()
                current = tuple(p.strip().strip("\"'") for p in inner.split("."))
                if header is None and current[: len(table)] == table:
                    header = n  # [jail.a] is where the jails start
                continue
            if current == table and key is not None:
                name = s.split("=", 1)[0].strip().strip("\"'")
                if "=" in s and name == key:
                    return n
        return header

    def error(self, message: str, table: tuple[str, ...], key: str | None = None) -> InputError:
        return InputError(message, source=self.source, line=self.line(table, key), field=key)


def load(path: Path) -> GuardConfig:
    """Read and check a guard configuration file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=source) from None
    return parse(text, source)


def parse(text: str, source: str = "<config>") -> GuardConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line .*\)$", "", str(exc))
        raise InputError(
            f"not TOML: {message}", source=source, line=int(m.group(1)) if m else None
        ) from None
    where = _Where(source, text)
    for key in data:
        if key not in ("guard", "jail"):
            raise where.error(f"unknown table [{key}] (allowed: guard, jail)", (key,))
    guard = data.get("guard", {})
    if not isinstance(guard, dict):
        raise where.error("must be a table", (), "guard")
    for key in guard:
        if key not in _GUARD_KEYS and key not in _JAIL_KEYS:
            raise where.error("unknown key", ("guard",), key)
    defaults = {k: v for k, v in guard.items() if k in _JAIL_KEYS}
    settings = _guard_settings({k: v for k, v in guard.items() if k in _GUARD_KEYS}, where)
    jails_raw = data.get("jail", {})
    if not isinstance(jails_raw, dict) or not jails_raw:
        raise where.error("no jails: add a [jail.NAME] table", ("jail",))
    jails: dict[str, Jail] = {}
    for name, table in jails_raw.items():
        if not isinstance(table, dict):
            raise where.error("must be a table", ("jail",), name)
        if not _NAME.match(name):
            raise where.error("a jail name is letters, digits, '.', '_' or '-'", ("jail", name))
        jail = _jail(name, {**defaults, **table}, where, set(table))
        if jail is not None:
            jails[name] = jail
    if not jails:
        raise where.error("every jail is disabled", ("jail",))
    return GuardConfig(source=source, jails=jails, **settings)


def _guard_settings(raw: dict[str, Any], where: _Where) -> dict[str, Any]:
    out: dict[str, Any] = {}
    table = ("guard",)
    for key, value in raw.items():
        if key in ("state", "hosts_deny", "report_dir"):
            out[key] = Path(_text(value, key, table, where))
        elif key in ("nft_table", "nft_set", "ban_command", "unban_command", "center"):
            out[key] = _text(value, key, table, where, empty=key.endswith(("command", "center")))
            if key == "nft_table" and not re.fullmatch(
                r"(?:(?:ip|ip6|inet|arp|bridge|netdev) )?[A-Za-z_][\w-]*", out[key]
            ):
                raise where.error("an nftables table: [FAMILY] NAME", table, key)
            if key == "nft_set" and not re.fullmatch(r"[A-Za-z_][\w-]{0,24}", out[key]):
                raise where.error("an nftables set name: letters, digits, '_', '-'", table, key)
        elif key == "hosts_deny_daemons":
            out[key] = _text(value, key, table, where)
            if not re.fullmatch(r"[\w.@-]+(?:[ ,]+[\w.@-]+)*", out[key]):
                raise where.error("a daemon list such as ALL or 'sshd, imapd'", table, key)
        elif key == "nft_chain":
            out[key] = _bool(value, key, table, where)
        elif key == "json":
            out[key] = _choice(value, ("stdout", "syslog"), key, table, where)
        elif key == "max_tracked":
            out[key] = _int(value, key, table, where, 1, 10_000_000)
        elif key == "poll":
            out[key] = _seconds(value, key, table, where)
            if not 0.01 <= out[key] <= 10:
                raise where.error("between 0.01 and 10 seconds", table, key)
    return out


def _jail(name: str, raw: dict[str, Any], where: _Where, own: set[str]) -> Jail | None:
    table = ("jail", name)
    # a key from [guard] that is wrong is reported where it is written
    at = {k: (table if k in own else ("guard",)) for k in raw}
    for key in raw:
        if key not in _JAIL_KEYS:
            raise where.error("unknown key", table, key)
    if "enabled" in raw and not _bool(raw["enabled"], "enabled", at["enabled"], where):
        return None
    out: dict[str, Any] = {"name": name}
    if "filter" in raw and "filters" in raw:
        raise where.error("give filter or filters, not both", table, "filters")
    for key, value in raw.items():
        t = at[key]
        if key in ("logpath", "journal_file"):
            out[key] = tuple(Path(p) for p in _texts(value, key, t, where))
        elif key == "journal":
            out[key] = tuple(_texts(value, key, t, where))
            for m in out[key]:
                if not re.fullmatch(r"[A-Z0-9_]+=\S*|\+", m):
                    raise where.error(f"not a journal match: {m!r} (FIELD=value)", t, key)
        elif key in ("filter", "filters"):
            out["filters"] = tuple(_filter(f, key, t, where) for f in _texts(value, key, t, where))
        elif key in ("maxretry", "report_threshold"):
            out[key] = _int(value, key, t, where, 1, 1_000_000)
        elif key in ("findtime", "bantime", "bantime_maxtime"):
            out[key] = _seconds(value, key, t, where)
            if key != "bantime" and out[key] <= 0:
                raise where.error("must be positive", t, key)
            if key == "bantime" and out[key] == 0:
                raise where.error("must be positive (-1: for ever)", t, key)
        elif key == "bantime_factor":
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 1
            ):
                raise where.error("a number of at least 1", t, key)
            out[key] = float(value)
        elif key in ("bantime_increment", "enabled"):
            out[key] = _bool(value, key, t, where)
        elif key == "ignoreip":
            out[key] = tuple(_network(n, key, t, where) for n in _texts(value, key, t, where))
        elif key == "actions":
            out[key] = tuple(
                _choice(a, ACTIONS, key, t, where) for a in _texts(value, key, t, where)
            )
        elif key == "report":
            out[key] = _choice(value, REPORTS, key, t, where)
        elif key == "lang":
            out[key] = _choice(value, ("ja", "en"), key, t, where)
    out.pop("enabled", None)
    if not out.get("logpath") and not out.get("journal") and not out.get("journal_file"):
        raise where.error("a jail needs logpath or journal to follow", table)
    return Jail(**out)


def _text(value: Any, key: str, table: tuple[str, ...], where: _Where, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value.strip() and not empty):
        raise where.error("must be a non-empty string", table, key)
    if "\0" in value or "\n" in value:
        raise where.error("must be one line", table, key)
    return value


def _texts(value: Any, key: str, table: tuple[str, ...], where: _Where) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise where.error("a string or a non-empty list of strings", table, key)
    return [_text(v, key, table, where) for v in items]


def _bool(value: Any, key: str, table: tuple[str, ...], where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error("must be true or false", table, key)
    return value


def _int(value: Any, key: str, table: tuple[str, ...], where: _Where, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise where.error(f"an integer from {lo} to {hi}", table, key)
    return value


def _seconds(value: Any, key: str, table: tuple[str, ...], where: _Where) -> float:
    try:
        return duration(value)
    except ValueError as exc:
        raise where.error(str(exc), table, key) from None


def _choice(value: Any, allowed: tuple[str, ...], key: str, t: tuple[str, ...], w: _Where) -> str:
    if value not in allowed:
        raise w.error(f"{value!r} is not one of {', '.join(allowed)}", t, key)
    return str(value)


def _filter(value: str, key: str, table: tuple[str, ...], where: _Where) -> str:
    if value in DETECTORS:
        return value
    if "/" in value or value.endswith((".conf", ".local")):
        if not Path(value).is_file():
            raise where.error(f"no such fail2ban filter file: {value}", table, key)
        return value
    raise where.error(
        f"{value!r} is neither a detector ({', '.join(DETECTORS)}) nor a filter file path",
        table,
        key,
    )


def _network(value: str, key: str, table: tuple[str, ...], where: _Where) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise where.error(f"not an address or network: {value!r}", table, key) from None
