"""Guard configuration: every mistake is reported with its file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from todokede.errors import InputError
from todokede.guard.config import DEFAULT_IGNORE, Jail, duration, load, parse

GOOD = """\
[guard]
state = "/tmp/x.db"
maxretry = 4

[jail.sshd]
logpath = ["/var/log/auth.log"]
filters = ["sshd"]
bantime = "1h"
bantime_increment = true

[jail.imap]
journal = "_SYSTEMD_UNIT=dovecot.service"
filter = "dovecot"
maxretry = 2
ignoreip = ["192.0.2.0/24"]
actions = ["nft", "json"]
report = "draft"
"""


def test_a_good_file() -> None:
    c = parse(GOOD, "guard.toml")
    sshd, imap = c.jails["sshd"], c.jails["imap"]
    assert c.state == Path("/tmp/x.db")
    assert (sshd.maxretry, sshd.bantime, sshd.bantime_increment) == (4, 3600.0, True)
    assert sshd.ignoreip == DEFAULT_IGNORE and "127.0.0.0/8" in sshd.ignoreip
    assert (imap.maxretry, imap.filters, imap.journal) == (
        2,
        ("dovecot",),
        ("_SYSTEMD_UNIT=dovecot.service",),
    )
    assert imap.ignoreip == ("192.0.2.0/24",)
    assert imap.actions == ("nft", "json") and imap.report == "draft"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ('[guard]\nstate = "x"\n[jail.a]\nlogpath = "l"\nmaxretry = 0\n', 5, "maxretry", "integer"),
        ('[jail.a]\nlogpath = "l"\nbantime = "ten"\n', 3, "bantime", "not a duration"),
        ('[jail.a]\nlogpath = "l"\nfindtime = -5\n', 3, "findtime", "negative"),
        ('[jail.a]\nlogpath = "l"\nfilters = ["nosuch"]\n', 3, "filters", "neither a detector"),
        ('[jail.a]\nlogpath = "l"\nfilter = "/no/such.conf"\n', 3, "filter", "no such fail2ban"),
        ('[jail.a]\nlogpath = "l"\nignoreip = ["300.1.1.1"]\n', 3, "ignoreip", "not an address"),
        ('[jail.a]\nlogpath = "l"\nactions = ["iptables"]\n', 3, "actions", "not one of"),
        ('[jail.a]\nlogpath = "l"\nreport = "mail"\n', 3, "report", "not one of"),
        ('[jail.a]\nlogpath = "l"\n\nbogus = 1\n', 4, "bogus", "unknown key"),
        ('[guard]\nmaxretry = "3"\n[jail.a]\nlogpath = "l"\n', 2, "maxretry", "integer"),
        ('[guard]\nnft_table = "inet bad;name"\n[jail.a]\nlogpath = "l"\n', 2, "nft_table", ""),
        ('[jail.a]\nlogpath = "l"\njournal = "not a match"\n', 3, "journal", "journal match"),
        (
            '[guard]\nhosts_deny_daemons = "ALL: x"\n[jail.a]\nlogpath = "l"\n',
            2,
            "hosts_deny_daemons",
            "daemon list",
        ),
        ("[jail.a]\nmaxretry = 3\n", 1, None, "logpath or journal"),
        (
            '[jail.a]\nlogpath = "l"\nfilter = "tcpd"\nfilters = ["tcpd"]\n',
            4,
            "filters",
            "not both",
        ),
        ("[other]\nx = 1\n", 1, None, "unknown table"),
        ("[guard]\n", None, None, "no jails"),
        ('[jail.a]\nlogpath = "l\n', 2, None, "not TOML"),
        ('[jail."bad name"]\nlogpath = "l"\n', 1, None, "jail name"),
        ('[jail.a]\nenabled = false\nlogpath = "l"\n', 1, None, "every jail is disabled"),
    ],
)
def test_errors_say_where(text: str, line: int | None, field: str | None, words: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(text, "guard.toml")
    err = caught.value
    assert (err.source, err.line, err.field) == ("guard.toml", line, field)
    assert words in err.message
    assert str(err).startswith("guard.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"[jail.a]\nlogpath = '\xe9'\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load(bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(600, 600.0), ("10m", 600.0), ("1h", 3600.0), ("2d", 172800.0), ("1w", 604800.0),
     ("30", 30.0), ("1.5m", 90.0), (-1, -1.0), ("-1", -1.0)],
)  # fmt: skip
def test_durations(value: object, seconds: float) -> None:
    assert duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "10 minutes", "-5", True, -2, "1y", None, float("nan"), float("inf")]
)
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        duration(value)


@pytest.mark.parametrize(
    ("increment", "previous", "seconds"),
    [(False, 3, 600.0), (True, 0, 600.0), (True, 1, 1200.0), (True, 2, 2400.0),
     (True, 30, 7 * 86400.0)],
)  # fmt: skip
def test_ban_time_grows_for_repeat_offenders(
    increment: bool, previous: int, seconds: float
) -> None:
    jail = Jail("j", bantime=600.0, bantime_increment=increment, bantime_factor=2.0)
    assert jail.ban_seconds(previous) == seconds


def test_a_permanent_ban_stays_permanent() -> None:
    assert Jail("j", bantime=-1.0, bantime_increment=True).ban_seconds(5) == -1.0


KEYS = ["logpath", "journal", "filters", "maxretry", "findtime", "bantime", "ignoreip",
        "actions", "report", "bantime_factor", "enabled", "nft_table", "json", "poll"]  # fmt: skip
VALUES = st.one_of(
    st.integers(-5, 10**8).map(str),
    st.floats(allow_nan=True).map(lambda f: repr(f) if f == f else "nan"),
    st.sampled_from(['"10m"', '"-1"', "true", '["sshd"]', '"x"', "[]", '[""]', "{}", '"a\\u0000"']),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
)


@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6), st.booleans())
def test_any_file_is_a_config_or_a_precise_error(pairs: list[tuple[str, str]], guard: bool) -> None:
    body = "".join(f"{k} = {v}\n" for k, v in dict(pairs).items())
    text = ("[guard]\n" + body + '[jail.a]\nlogpath = "l"\n') if guard else "[jail.a]\n" + body
    try:
        c = parse(text, "fuzz.toml")
    except InputError as err:
        assert err.source == "fuzz.toml" and err.message
        return
    for jail in c.jails.values():  # what is accepted is usable
        assert jail.ban_seconds(3) == -1 or jail.ban_seconds(3) > 0
        assert jail.findtime > 0 and jail.maxretry >= 1


@given(st.text(max_size=200))
def test_garbage_is_a_precise_error(text: str) -> None:
    try:
        parse(text, "fuzz.toml")
    except InputError as err:
        assert err.source == "fuzz.toml"
