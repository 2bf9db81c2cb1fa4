"""Passing over lines without needles in bulk leaves a matcher as reading each line does."""

from __future__ import annotations

import random

import pytest

from tests.conftest import need
from todokede.logs import f2b

NOW = 1709337600.0  # 2024-03-02
# lines of an auth.log no sshd failregex matches, some with another date or none
QUIET = [
    "Mar  1 00:00:01 h CRON[2]: pam_unix(cron:session): session opened for user root",
    "Mar  1 00:00:02 h systemd-logind[3]: New session 7 of user taro.",
    "Mar  1 00:00:03 h sudo[5]: taro : TTY=pts/0 ; COMMAND=/bin/ls",
    "2024-03-01T00:00:04 h CRON[8]: pam_unix(cron:session): session closed for user root",
    "2024-03-01 00:00:04,123 h app: started",
    "Feb 30 00:00:05 h kernel: a day February does not have",
    "no date at all",
    "1709251205 h app: an epoch",
]
LOUD = [
    "Mar  1 00:00:06 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
    "2024-03-01T00:00:07 h sshd[7]: Invalid user x from 192.0.2.2 port 1",
]


def state(m: f2b.Matcher) -> object:
    d = m.dates
    slots = [(s.template.name, s.hits, s.distance) for s in d.slots]
    return slots, d._last_idx, d._first_unused, d._last_pos[0], m.last_date, m.last_text


@pytest.mark.parametrize("seed", range(8))
def test_skip_leaves_the_state_of_reading_each_line(seed: int) -> None:
    need(str(f2b.FILTER_DIR / "sshd.conf"))
    flt = f2b.load("sshd")
    rnd = random.Random(seed)
    each, bulk = f2b.Matcher(flt, now=NOW), f2b.Matcher(flt, now=NOW)
    skipped = 0
    for _ in range(300):
        if rnd.random() < 0.3:
            line = rnd.choice(LOUD)
            assert [f.host for f in each.process(line)] == [f.host for f in bulk.process(line)]
            continue
        # mostly syslog lines, sometimes another kind among them
        run = [rnd.choice(QUIET[:3] if rnd.random() < 0.8 else QUIET) for _ in range(5)]
        for line in run:
            assert each.process(line) == []
        if bulk.skip("\n".join(run), len(run)):
            skipped += 1
        else:
            for line in run:
                bulk.process(line)
        assert state(each) == state(bulk)
    assert skipped > 0
