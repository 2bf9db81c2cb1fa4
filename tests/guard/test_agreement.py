"""``scan`` and ``guard`` read the same lines as the same failures: over one log, the
failed-login findings of the scanner and the guard's counts name the same addresses with
the same numbers (fail2ban's annotated sample logs, when installed, and the scanner's own
test lines)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.detect.test_logins import AUTH_LOG
from tests.guard.harness import config
from todokede.detect import DetectConfig, Scanner
from todokede.guard.config import DEFAULT_IGNORE, load
from todokede.guard.networks import normalize
from todokede.guard.watch import Guard
from todokede.logs import auth
from todokede.logs.syslog import Framer, YearRule

SAMPLES = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
JAILS = ("sshd", "dovecot", "imapd", "postfix", "sendmail")
MAIL = b"""\
Sep  1 11:00:00 mx dovecot: imap-login: Disconnected (auth failed, 3 attempts in 9 secs): \
user=<taro>, method=PLAIN, rip=198.51.100.20, lip=192.0.2.1, session=<x>
Sep  1 11:00:01 mx dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): \
user=<hanako>, method=PLAIN, rip=2001:db8::20, lip=192.0.2.1, session=<y>
Sep  1 11:00:02 mx dovecot: auth: passwd-file(kenji,198.51.100.21): unknown user
Sep  1 11:00:03 mx imapd[4]: Login failed user=taro auth=taro host=pc.example [198.51.100.22]
Sep  1 11:00:04 mx sendmail[5]: AUTH failure (LOGIN): authentication failure (-13) \
SASL(-13): authentication failure: checkpass failed, user=taro, relay=x.example [198.51.100.23]
Sep  1 11:00:05 mx postfix/smtpd[6]: warning: unknown[198.51.100.24]: SASL PLAIN \
authentication failed: UGFzc3dvcmQ6
Sep  1 11:00:06 mx postfix/smtpd[6]: warning: unknown[198.51.100.24]: SASL LOGIN \
authentication failed: UGFzc3dvcmQ6
"""


def _jail(service: str) -> str:
    if service.encode() in auth.SSHD:
        return "sshd"
    if service.startswith("postfix/"):
        return "postfix"
    if service in ("sendmail", "sm-mta"):
        return "sendmail"
    return "dovecot" if service in ("dovecot", "imap-login", "pop3-login") else "imapd"


def scanned(data: bytes) -> dict[tuple[str, str], int]:
    """Per jail and address: the tries of the scanner's findings, or where none names a try,
    their lines (a jail takes the services of one server together: Dovecot's login and
    auth processes, sshd and sshd-session)."""
    sc = Scanner(DetectConfig(local_nets=DEFAULT_IGNORE), year=2024)
    sc._framers["auth.log"] = Framer(YearRule.oldest(2024, 1, 1))
    sc.feed("auth.log", data)
    tries: dict[tuple[str, str], int] = defaultdict(int)
    lines: dict[tuple[str, str], int] = defaultdict(int)
    for f in sc.result().findings:
        if f.kind == "access-probe" and f.outcome == "failed":
            for source in f.sources:
                if normalize(source) is not None:  # guard bans addresses only
                    tries[_jail(f.service), source] += f.details["tries"]
                    lines[_jail(f.service), source] += f.details["lines"]
    return {key: tries[key] or n for key, n in lines.items()}


def guarded(tmp: Path, data: bytes) -> dict[tuple[str, str], int]:
    log = tmp / "auth.log"
    log.touch()
    jails = "".join(
        f'[jail.{name}]\nlogpath = "{log}"\nfilters = ["{name}"]\nmaxretry = 1000000\n'
        f'findtime = "1w"\n'
        for name in JAILS
    )
    g = Guard(load(config(tmp, jails)), clock=lambda: 1_000_000.0, log=lambda m: None)
    g.start()
    try:
        with log.open("ab") as fh:
            fh.write(data)
        while g.poll():
            pass
        out = {}
        for name, r in g.running.items():
            for addr in {*r.counter.addresses(), *r.noted.addresses()}:
                out[name, addr] = r.counter.count(addr) or r.noted.count(addr)
        return {k: v for k, v in out.items() if v}
    finally:
        g.close()


def _sample(name: str) -> bytes:
    if not (SAMPLES / name).exists():
        pytest.skip(f"fail2ban's sample logs are not installed ({SAMPLES})")
    lines = (SAMPLES / name).read_bytes().splitlines()
    return b"\n".join(re.sub(rb"^@[0-9a-f]{24} ", b"", x) for x in lines if x[:1] != b"#") + b"\n"


@pytest.mark.parametrize("source", ["tests", "sshd", "dovecot", "uwimap-auth", "postfix"])
def test_scan_and_guard_count_the_same_failures(tmp_path: Path, source: str) -> None:
    data = AUTH_LOG + b"\n" + MAIL if source == "tests" else _sample(source)
    from_scan = scanned(data)
    assert from_scan, "no failure found: the test would prove nothing"
    assert guarded(tmp_path, data) == from_scan
