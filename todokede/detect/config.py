"""Detection thresholds and the site's own networks and domains (flags or a TOML file)."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from todokede.errors import ConfigError

# What counts as "inside" when the user names no networks: loopback and private ranges.
DEFAULT_LOCAL_NETS = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)


@dataclass(frozen=True)
class DetectConfig:
    """Every knob of ``scan``. ``None`` for nets/domains means "infer from the log"."""

    local_nets: tuple[str, ...] | None = None
    local_domains: tuple[str, ...] | None = None
    admins: tuple[str, ...] = ("root", "postmaster")
    probe_min: int = 1  # refused attempts from one source before it is a finding
    new_hosts: bool = True  # flag hosts first seen after the learning window
    learn_days: float = 7.0
    relay_min: int = 1  # relayed messages from one client
    relay_refused_min: int = 1  # refused relay attempts from one client
    bounce_per_hour: int = 20  # notices to an administrator in one hour ...
    bounce_bytes_per_hour: int = 10_000_000  # ... or bytes of them
    bomb_min: int = 100  # messages from one sender to one recipient ...
    bomb_gap: int = 900  # ... with no pause longer than this (seconds)
    exploit_min: int = 1
    failure_min: int = 1  # fail2ban filter matches from one host
    login_min: int = 1  # failed login tries from one client (sshd, IMAP/POP, SMTP AUTH)
    evidence: int = 5  # raw lines kept per finding
    filters: tuple[str | Path, ...] = ()  # fail2ban filters: paths or NAME[options]
    filter_dirs: tuple[Path, ...] = ()  # where filter names are looked up (fail2ban's)
    jobs: int | None = None  # worker processes for large files (None: one per core)

    def with_overrides(self, **values: Any) -> DetectConfig:
        """A copy with the given (non-None) values set, each checked like a TOML value."""
        clean = {k: v for k, v in values.items() if v is not None}
        return replace(self, **_checked(clean, "option")).validate()

    def validate(self) -> DetectConfig:
        for net in self.local_nets or ():
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(f"local_nets: not a network: {net!r}") from exc
        for name in (
            "probe_min",
            "relay_min",
            "relay_refused_min",
            "bounce_per_hour",
            "bomb_min",
            "login_min",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.evidence < 1 or self.bomb_gap < 1 or self.learn_days < 0:
            raise ConfigError("evidence and bomb_gap must be positive, learn_days not negative")
        return self

    @classmethod
    def from_toml(cls, path: Path) -> DetectConfig:
        """Read ``[scan]`` (or top-level keys) of a TOML file; unknown keys are errors."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        table = data.get("scan", data)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [scan] must be a table")
        values = _checked(table, str(path))
        base = Path(path).parent
        if "filters" in values:
            values["filters"] = tuple(_filter_path(base, p) for p in values["filters"])
        if "filter_dirs" in values:
            values["filter_dirs"] = tuple(base / p for p in values["filter_dirs"])
        return replace(cls(), **values).validate()


_KINDS: dict[str, type] = {
    f.name: f.type if isinstance(f.type, type) else object for f in fields(DetectConfig)
}


def _filter_path(base: Path, spec: str) -> str | Path:
    """A filter named by its file is relative to the TOML file; a bare name is not."""
    name = spec.partition("[")[0]
    if "/" in name or name.endswith((".conf", ".local")):
        return base / spec
    return spec


_TUPLES = {"local_nets", "local_domains", "admins", "filters", "filter_dirs"}
_INTS = {
    "probe_min",
    "relay_min",
    "relay_refused_min",
    "bounce_per_hour",
    "bounce_bytes_per_hour",
    "bomb_min",
    "bomb_gap",
    "exploit_min",
    "failure_min",
    "login_min",
    "evidence",
    "jobs",
}


def _checked(table: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KINDS:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        if key in _TUPLES:
            if isinstance(value, str | Path) or not all(isinstance(v, str | Path) for v in value):
                raise ConfigError(f"{where}: {key} must be a list of strings")
            value = tuple(value)
        elif key in _INTS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{where}: {key} must be an integer")
        elif key == "learn_days":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{where}: {key} must be a number")
            value = float(value)
        elif key == "new_hosts" and not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false")
        out[key] = value
    return out
