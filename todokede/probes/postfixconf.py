"""Read a Postfix ``main.cf`` (or ``postconf -n`` output) and say which settings let it
relay too widely: who is trusted (mynetworks), what the relay restrictions let through,
which domains it relays to (relay_domains), and the old back doors (permit_mx_backup,
allow_untrusted_routing). Offline: nothing is contacted."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from todokede.errors import InputError

Severity = Literal["open", "wide", "note"]

# Restrictions that end relaying for unauthorised destinations (Postfix accepts one of
# these as "a working instance" in smtpd_relay_restrictions or smtpd_recipient_restrictions).
_STOPS = {
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
    "check_relay_domains",
}
_PARAM = re.compile(r"^([A-Za-z0-9_.-]+)\s*=\s*(.*)$")
_REF = re.compile(r"\$\{?([A-Za-z0-9_]+)\}?")


@dataclass(frozen=True)
class ConfigFinding:
    setting: str
    severity: Severity
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
        }


@dataclass
class ConfigCheck:
    source: str
    settings: dict[str, str]
    findings: list[ConfigFinding] = field(default_factory=list)

    @property
    def relays_too_widely(self) -> bool:
        return any(f.severity in ("open", "wide") for f in self.findings)

    @property
    def open(self) -> bool:
        return any(f.severity == "open" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "open": self.open,
            "relays_too_widely": self.relays_too_widely,
            "findings": [f.to_dict() for f in self.findings],
            "settings": {
                k: self.settings[k]
                for k in sorted(self.settings)
                if "relay" in k or "mynetworks" in k or k in ("compatibility_level",)
            },
        }


def parse_main_cf(text: str, source: str = "main.cf") -> dict[str, tuple[str, int]]:
    """``name -> (raw value, line number)``; continuation lines start with white space."""
    params: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t":
            if current is None:
                raise InputError(
                    "continuation line without a parameter", source=source, line=number
                )
            value, first = params[current]
            params[current] = (f"{value} {stripped}".strip(), first)
            continue
        m = _PARAM.match(stripped)
        if m is None:
            raise InputError(
                f"not a 'name = value' line: {stripped[:80]!r}", source=source, line=number
            )
        current = m.group(1)
        params[current] = (m.group(2).strip(), number)
    return params


def _compat(settings: dict[str, str]) -> float:
    raw = settings.get("compatibility_level", "0")
    m = re.match(r"(\d+)(?:\.(\d+))?", raw)
    return float(f"{m.group(1)}.{m.group(2) or 0}") if m else 0.0


def _defaults(compat: float) -> dict[str, str]:
    return {
        "mynetworks_style": "host" if compat >= 2 else "subnet",
        "relay_domains": "" if compat >= 2 else "$mydestination",
        "smtpd_relay_restrictions": (
            "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
            if compat >= 1
            else ""
        ),
        # before Postfix 2.10 the relay check lived in the recipient restrictions
        "smtpd_recipient_restrictions": ""
        if compat >= 1
        else "permit_mynetworks, reject_unauth_destination",
        "mydestination": "$myhostname, localhost.$mydomain, localhost",
        "allow_untrusted_routing": "no",
    }


def _expand(value: str, settings: dict[str, str], depth: int = 0) -> str:
    if depth > 10:
        return value
    return _REF.sub(
        lambda m: (
            _expand(settings.get(m.group(1), ""), settings, depth + 1)
            if m.group(1) in settings
            else m.group(0)
        ),
        value,
    )


def _items(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value) if v]


def _lets_through(restrictions: list[str]) -> tuple[bool, str | None]:
    """Whether a restriction list passes an unauthorised destination, and the
    unconditional ``permit`` responsible if there is one."""
    for item in restrictions:
        if item in _STOPS:
            return False, None
        if item == "permit":
            return True, item
    return True, None


def analyse(text: str, source: str = "main.cf") -> ConfigCheck:
    params = parse_main_cf(text, source)
    raw = {k: v for k, (v, _) in params.items()}
    compat = _compat(raw)
    settings = {**_defaults(compat), **raw}
    line = {k: n for k, (_, n) in params.items()}
    check = ConfigCheck(source, settings)

    def add(setting: str, severity: Severity, message: str) -> None:
        check.findings.append(ConfigFinding(setting, severity, message, line.get(setting)))

    # Who is trusted.
    if "mynetworks" in raw:
        for item in _items(_expand(raw["mynetworks"], settings)):
            if item.startswith("!"):
                continue
            if not _is_ip(item) and re.match(r"^[a-z]+:", item):
                add("mynetworks", "note", f"{item}: a lookup table; its entries are trusted too")
                continue
            net = _network(item)
            if net is None:
                continue
            if net.prefixlen == 0:
                add("mynetworks", "open", f"{item} trusts every address on the Internet")
            elif (
                not net.is_private
                and not net.is_loopback
                and (
                    (net.version == 4 and net.prefixlen < 16)
                    or (net.version == 6 and net.prefixlen < 32)
                )
            ):
                add("mynetworks", "wide", f"{item} trusts {net.num_addresses:,} public addresses")
    else:
        style = settings["mynetworks_style"].strip().lower()
        if style == "class":
            add(
                "mynetworks_style",
                "wide",
                "mynetworks_style = class trusts the whole class A/B/C network of every "
                "interface; set mynetworks to the hosts you administer",
            )
        elif style == "subnet":
            add(
                "mynetworks_style",
                "note",
                "mynetworks is not set: every host on the server's own subnets is trusted",
            )

    # What the restrictions let through.
    relay = _items(_expand(settings["smtpd_relay_restrictions"], settings))
    recipient = _items(_expand(settings["smtpd_recipient_restrictions"], settings))
    relay_open, relay_permit = _lets_through(relay)
    rcpt_open, rcpt_permit = _lets_through(recipient)
    if not any(i in _STOPS for i in relay + recipient):
        add(
            "smtpd_relay_restrictions",
            "note",
            "neither smtpd_relay_restrictions nor smtpd_recipient_restrictions has "
            "reject_unauth_destination: Postfix refuses to receive mail until one does",
        )
    elif relay_open and rcpt_open and (relay_permit or rcpt_permit):
        setting = "smtpd_relay_restrictions" if relay_permit else "smtpd_recipient_restrictions"
        add(
            setting,
            "open",
            "an unconditional 'permit' comes before reject_unauth_destination: "
            "the server relays for anyone",
        )
    for name, items in (
        ("smtpd_relay_restrictions", relay),
        ("smtpd_recipient_restrictions", recipient),
    ):
        if "permit_mx_backup" in items and not settings.get("permit_mx_backup_networks"):
            add(
                name,
                "wide",
                "permit_mx_backup relays for any domain that lists this server as an MX; "
                "list backup domains in relay_domains instead (or set "
                "permit_mx_backup_networks)",
            )
        if "permit_tls_all_clientcerts" in items:
            add(name, "wide", "permit_tls_all_clientcerts relays for any client certificate")

    # Where it relays to.
    for item in _items(_expand(raw.get("relay_domains", ""), settings)):
        if re.match(r"^[a-z]+:", item) or item.startswith("$") or item == "localhost":
            continue
        bare = item.lstrip(".")
        if item == "*" or "." not in bare:
            add(
                "relay_domains",
                "wide",
                f"{item!r} in relay_domains relays for every domain under it",
            )
    if settings["allow_untrusted_routing"].strip().lower() == "yes":
        add(
            "allow_untrusted_routing",
            "wide",
            "allow_untrusted_routing = yes lets anyone route mail through relay_domains "
            "with user%domain@, host!user@ and @host: addresses",
        )
    return check


def _is_ip(item: str) -> bool:
    return _network(item) is not None


def _network(item: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    text = item.replace("[", "").replace("]", "")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def check_postfix_config(path: Path) -> ConfigCheck:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    return analyse(text, str(path))
