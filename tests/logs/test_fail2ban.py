# ruff: noqa: E501 - real log lines are long
from __future__ import annotations

import calendar
import datetime
from pathlib import Path

import pytest

from todokede.errors import ConfigError
from todokede.logs.fail2ban import Filter

COMMON = """\
[INCLUDES]
after = common.local
[DEFAULT]
_daemon = \\S*
__pid_re = (?:\\[\\d+\\])
__prefix_line = \\s*(?:\\S+\\s+)?<_daemon><__pid_re>?:\\s+
"""

TCPD = """\
[INCLUDES]
before = common.conf
[Definition]
_daemon = \\S+
failregex = ^%(__prefix_line)srefused connect from \\S+ \\(<HOST>\\)$
            ^%(__prefix_line)srefused connect from <HOST>$
ignoreregex = ^%(__prefix_line)srefused connect from \\S+ \\(192\\.0\\.2\\.1\\)$
"""


@pytest.fixture
def filters(tmp_path: Path) -> Path:
    (tmp_path / "common.conf").write_text(COMMON)
    (tmp_path / "tcpd.conf").write_text(TCPD)
    return tmp_path


def test_includes_interpolation_and_host(filters: Path) -> None:
    flt = Filter.load(filters / "tcpd.conf")
    assert flt.name == "tcpd"
    hit = flt.match("gw imapd[12]: refused connect from x.example (198.51.100.7)")
    assert hit is not None and hit.host == "198.51.100.7"
    hit = flt.match("gw imapd[12]: refused connect from 203.0.113.5")
    assert hit is not None and hit.host == "203.0.113.5"
    assert flt.match("gw imapd[12]: connect from x.example (198.51.100.7)") is None
    assert flt.match("gw imapd[12]: refused connect from x (192.0.2.1)") is None  # ignoreregex


def test_local_override_and_known(filters: Path) -> None:
    (filters / "tcpd.local").write_text(
        "[Definition]\nfailregex = %(known/failregex)s\n            ^%(__prefix_line)sPROBE from <ADDR>$\n"
    )
    flt = Filter.load(filters / "tcpd.conf")
    probe = flt.match("gw x[1]: PROBE from 192.0.2.77")
    assert probe is not None and probe.host == "192.0.2.77"
    assert flt.match("gw imapd[12]: refused connect from 203.0.113.5") is not None


def test_prefregex_fields_and_nofail(tmp_path: Path) -> None:
    (tmp_path / "f.conf").write_text(
        "[Definition]\n"
        "prefregex = ^\\S+ app\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$\n"
        "failregex = ^bad login for <F-USER>\\S+</F-USER> from <HOST>\n"
        "            ^<F-NOFAIL>good login</F-NOFAIL> from <HOST>\n"
        "mode = normal\n"
    )
    flt = Filter.load(tmp_path / "f.conf")
    hit = flt.match("h app[1]: bad login for bob from 2001:db8::9")
    assert hit is not None and (hit.host, hit.user) == ("2001:db8::9", "bob")
    assert flt.match("h app[1]: good login from 192.0.2.3") is None
    assert flt.match("h other[1]: bad login for bob from 192.0.2.3") is None


def test_tags_nest_innermost_first(tmp_path: Path) -> None:
    (tmp_path / "f.conf").write_text(
        "[Definition]\nmode = strict\nre-strict = ^denied <HOST>$\nre-lax = ^x\nfailregex = <re-<mode>>\n"
    )
    assert Filter.load(tmp_path / "f.conf").match("denied 192.0.2.8") is not None


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("[Definition]\nfailregex = ^(unclosed <HOST>\n", "line 2", "missing )"),
        ("no sections", "line 1", "section header"),
        ("[Definition]\nfailregex = %(missing)s <HOST>\n", "line 2", "'missing'"),
        ("[Definition]\nfailregex = a <HOST>\nfailregex = b <HOST>\n", "line 3", "already"),
        ("[Definition]\nfailregex = ^denied$\n", "line 2", "no group names the failure"),
        ("[Definition]\nmaxlines = 0\nfailregex = <HOST>\n", "line 2", "maxlines"),
        ("[Definition]\ndatepattern = %%Q\nfailregex = <HOST>\n", "line 2", "datepattern"),
        ("[Definition]\na = <b>\nb = <a>\nfailregex = <a> <HOST>\n", "bad.conf", "itself"),
        ("[Definition]\nfailregex = 100%% <HOST> %x\n", "line 2", "'%'"),
    ],
)
def test_filters_fail2ban_rejects_say_where(
    tmp_path: Path, text: str, where: str, says: str
) -> None:
    (tmp_path / "bad.conf").write_text(text)
    with pytest.raises(ConfigError) as err:
        Filter.load(tmp_path / "bad.conf")
    message = str(err.value)
    assert message.startswith(str(tmp_path / "bad.conf")), message
    assert where in message and says in message, message


def test_a_filter_without_failregex_loads_and_warns(tmp_path: Path) -> None:
    (tmp_path / "f.conf").write_text("[Definition]\nignoreregex = x\n")
    flt = Filter.load(tmp_path / "f.conf")
    assert flt.match("x 192.0.2.1") is None
    assert flt.warnings and "no failregex" in flt.warnings[0]


def test_names_options_and_filter_dirs(filters: Path) -> None:
    (filters / "opt.conf").write_text(
        "[INCLUDES]\nbefore = common.conf\n[Definition]\nmode = normal\n"
        "normal = ^%(__prefix_line)sbad password from <HOST>$\n"
        "aggressive = %(normal)s\n             ^%(__prefix_line)sno such user from <HOST>$\n"
        "failregex = <<mode>>\n"
    )
    line = "gw app[3]: no such user from 198.51.100.9"
    assert Filter.load("opt", [filters]).match(line) is None
    hit = Filter.load("opt[mode=aggressive]", [filters]).match(line)
    assert hit is not None and hit.host == "198.51.100.9"
    hit = Filter.load(f'{filters}/opt.conf[mode="aggressive"]').match(line)
    assert hit is not None
    # a name with its suffix, and a path below a filter directory, as jail.conf may write
    assert Filter.load("opt.conf[mode=aggressive]", [filters]).match(line) is not None
    (filters / "sub").mkdir()
    (filters / "sub" / "deep.conf").write_text("[Definition]\nfailregex = ^deep <ADDR>$\n")
    assert Filter.load("sub/deep", [filters]).match("deep 192.0.2.3") is not None
    with pytest.raises(ConfigError, match="not found"):
        Filter.load("nosuch", [filters])
    with pytest.raises(ConfigError, match="no such fail2ban filter file"):
        Filter.load(filters / "sub" / "nosuch.conf", [filters])
    with pytest.raises(ConfigError, match="unexpected"):
        Filter.load("opt[mode=a]x", [filters])


def test_init_and_conditional_sections(tmp_path: Path) -> None:
    (tmp_path / "f.conf").write_text(
        "[Init]\nword = denied\n[Definition]\nfailregex = ^<word> <ADDR>$\n"
    )
    (tmp_path / "f.local").write_text("[Init]\nword = refused\n")
    flt = Filter.load("f", [tmp_path])
    assert flt.match("refused 192.0.2.5") is not None
    assert flt.match("denied 192.0.2.5") is None
    assert Filter.load("f[word=blocked]", [tmp_path]).match("blocked 192.0.2.5") is not None


def test_a_line_whose_date_fails_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "f.conf").write_text("[Definition]\nfailregex = failed from <ADDR>\n")
    flt = Filter.load(tmp_path / "f.conf")
    # fail2ban fails on a zone name it does not know, and goes on with the next line
    assert flt.feed("log", "XYZW Jan 23 21:59:59 failed from 192.0.2.1") == []
    assert flt.feed("log", "CET Jan 23 21:59:59 failed from 192.0.2.2")[0].host == "192.0.2.2"


@pytest.mark.parametrize(
    ("line", "host"),
    [
        # exim's own log: the date at the start, no syslog framing
        (
            "2013-06-02 09:05:48 login authenticator failed for (x) [203.0.113.7]: 535",
            "203.0.113.7",
        ),
        # Apache's error log
        (
            "[Sun Jun 09 07:57:47 2013] login authenticator failed for [::ffff:192.0.2.8]",
            "192.0.2.8",
        ),
        # an IPv4-mapped address given as IPv6 is reported as its IPv4
        ("1370757467 login authenticator failed for ::ffff:192.0.2.9 now", "192.0.2.9"),
        ("2013-06-02T09:05:48Z login authenticator failed for [2001:DB8::0:1]", "2001:db8::1"),
    ],
)
def test_dates_are_cut_as_fail2ban_does(tmp_path: Path, line: str, host: str) -> None:
    (tmp_path / "f.conf").write_text(
        "[Definition]\nfailregex = ^\\s*\\S*\\s*login authenticator failed for .*?<ADDR>\n"
    )
    hit = Filter.load(tmp_path / "f.conf").match(line)
    assert hit is not None and hit.host == host and hit.ts is not None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Filter.load(tmp_path / "nope.conf")


SSHD = Path("/etc/fail2ban/filter.d/sshd.conf")


@pytest.mark.peer
def test_real_shipped_sshd_filter() -> None:
    if not SSHD.is_file():
        pytest.skip("fail2ban's filters are not installed (run scripts/peers as root)")
    flt = Filter.load(SSHD)
    hit = flt.match(
        "host sshd[123]: Failed password for invalid user bob from 192.0.2.4 port 22 ssh2"
    )
    assert hit is not None and (hit.host, hit.user) == ("192.0.2.4", "bob")
    assert (
        flt.match("host sshd[123]: Accepted password for bob from 192.0.2.4 port 22 ssh2") is None
    )


@pytest.mark.peer
def test_every_shipped_filter_loads() -> None:
    d = Path("/etc/fail2ban/filter.d")
    if not d.is_dir():
        pytest.skip("fail2ban's filters are not installed (run scripts/peers as root)")
    # the *-common files are only included by others (fail2ban's tests leave them out too)
    for conf in sorted(c for c in d.glob("*.conf") if not c.stem.endswith("common")):
        assert Filter.load(conf.stem, [d]).compiled.failregex, conf


@pytest.mark.peer
def test_journal_entries_with_their_time() -> None:
    if not SSHD.is_file():
        pytest.skip("fail2ban's filters are not installed (run scripts/peers as root)")
    wall = datetime.datetime(2026, 12, 1, 3, 4, 5)
    line = "srv sshd[77]: Failed password for root from 192.0.2.44 port 2222 ssh2"
    hits = Filter.load("sshd", journal=True).feed("journal", line, (1.0, wall))
    assert [(h.host, h.user, h.ts) for h in hits] == [
        ("192.0.2.44", "root", calendar.timegm(wall.timetuple()))
    ]
    assert Filter.load("sshd", journal=True).journalmatch == [
        "_SYSTEMD_UNIT=sshd.service + _COMM=sshd"
    ]


def test_a_connection_trying_two_users_fails_with_both(tmp_path: Path) -> None:
    # fail2ban's rule: a success-looking line is no failure, unless the same connection
    # (F-MLFID) already tried another user
    (tmp_path / "f.conf").write_text(
        "[Definition]\nfailregex = ^\\s*\\S+ app\\[<F-MLFID>\\d+</F-MLFID>\\]: "
        "<F-NOFAIL>key offered</F-NOFAIL> for <F-USER>\\S+</F-USER> from <ADDR>$\n"
    )
    flt = Filter.load(tmp_path / "f.conf")
    assert flt.feed("log", "Jan 1 10:00:00 h app[7]: key offered for bob from 192.0.2.7") == []
    hits = flt.feed("log", "Jan 1 10:00:01 h app[7]: key offered for eve from 192.0.2.7")
    assert [(h.host, h.user, sorted(h.users)) for h in hits] == [
        ("192.0.2.7", "eve", ["bob", "eve"])
    ]
    assert flt.feed("log", "Jan 1 10:00:02 h app[8]: key offered for ann from 192.0.2.8") == []


@pytest.mark.parametrize(
    ("journalmatch", "fields", "reads"),
    [
        ("", {}, True),
        ("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", {b"_SYSTEMD_UNIT": b"sshd.service"}, True),
        ("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", {b"_COMM": b"sshd"}, True),
        ("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", {b"SYSLOG_IDENTIFIER": b"sshd"}, False),
        ("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", {b"_COMM": b"sshd-session"}, False),
        # one field twice: either value; two fields: both
        ("_COMM=a _COMM=b", {b"_COMM": b"b"}, True),
        ("_COMM=a PRIORITY=3", {b"_COMM": b"a", b"PRIORITY": b"6"}, False),
        ("_COMM=a PRIORITY=3", {b"_COMM": b"a", b"PRIORITY": b"3"}, True),
        # lines are alternatives too
        ("_COMM=a\n_SYSTEMD_UNIT=x.service", {b"_SYSTEMD_UNIT": b"x.service"}, True),
        ("_COMM=a\n_SYSTEMD_UNIT=x.service", {}, False),
    ],
)
def test_journalmatch_takes_entries_as_the_journal_does(
    tmp_path: Path, journalmatch: str, fields: dict[bytes, bytes], reads: bool
) -> None:
    conf = tmp_path / "f.conf"
    indented = journalmatch.replace("\n", "\n    ")
    conf.write_text(
        "[Definition]\nfailregex = ^fail <HOST>$\n"
        + (f"[Init]\njournalmatch = {indented}\n" if journalmatch else "")
    )
    flt = Filter.load(conf, journal=True)
    assert flt.journalmatch == [m.strip() for m in journalmatch.splitlines()]
    assert flt.reads(fields) is reads
