"""The same failures as fail2ban-regex, in the same order, on whole sample logs.

fail2ban-regex is fail2ban's own command that applies a filter to a log; ``--out fid``
prints the failure id (the host) of each failure it finds. Here it reads each sample log
whole (comment lines and all, with today's clock) and todokede's filter must find the
same failures in the same order: the filters the issue that asked for this named first,
then others with multi-line matching, prefregex, several modes, and non-syslog dates.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from todokede.logs.fail2ban import Filter

LOGS = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
FILTERS = Path("/etc/fail2ban/filter.d")
NAMES = [
    "courier-smtp",
    "exim",
    "named-refused",
    "sshd",
    "mongodb-auth",
    "slapd",
    "postfix",
    "dovecot",
    "apache-auth",
    "nginx-limit-req",
    "asterisk",
    "monit",
]


def _fail2ban_regex(log: Path, conf: Path) -> list[str]:
    out = subprocess.run(
        ["fail2ban-regex", "--usedns=no", "--out", "fid", str(log), str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


@pytest.mark.peer
@pytest.mark.parametrize("name", NAMES)
def test_same_failures_as_fail2ban_regex(name: str) -> None:
    need("fail2ban-regex")
    if not (LOGS / name).is_file():
        pytest.skip("fail2ban's sample logs are not installed (run scripts/peers as root)")
    flt = Filter.load(f"{name}[usedns=no]", [FILTERS])
    ours = []
    for raw in (LOGS / name).read_bytes().splitlines():
        ours += [hit.host for hit in flt.feed("log", raw.decode("utf-8", "replace"))]
    theirs = _fail2ban_regex(LOGS / name, FILTERS / f"{name}.conf")
    assert theirs, "fail2ban-regex found nothing: the comparison would prove nothing"
    assert ours == theirs
