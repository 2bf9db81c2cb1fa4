"""The same failures as fail2ban-regex, in the same order, on whole sample logs.

fail2ban-regex is fail2ban's own command that applies a filter to a log; ``--out fid``
prints the failure id (the host) of each failure it finds. Here it reads each sample log
whole (with today's clock) and todokede's filter must find the same failures in the
same order, for every filter Debian ships.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from todokede.logs.fail2ban import Filter

LOGS = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
FILTERS = Path("/etc/fail2ban/filter.d")
# a few that once went wrong first; the rest of Debian's filters are marked slow
FIRST = ["courier-smtp", "exim", "named-refused", "sshd", "mongodb-auth", "slapd"]
REST = sorted(
    p.stem for p in FILTERS.glob("*.conf") if not p.stem.endswith("common") and p.stem not in FIRST
)
NAMES = [*FIRST, *(pytest.param(n, marks=pytest.mark.slow) for n in REST)]


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
    data = (LOGS / name).read_bytes()
    # fail2ban-regex waits for the end of a last line that has none, as if the file were
    # still being written
    lines = data.splitlines() if data.endswith(b"\n") else data.splitlines()[:-1]
    ours = []
    for raw in lines:
        ours += [hit.host for hit in flt.feed("log", raw.decode("utf-8", "replace"))]
    theirs = _fail2ban_regex(LOGS / name, FILTERS / f"{name}.conf")
    assert theirs, "fail2ban-regex found nothing: the comparison would prove nothing"
    assert ours == theirs
