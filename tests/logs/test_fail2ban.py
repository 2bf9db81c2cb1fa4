# ruff: noqa: E501 - real log lines are long
from __future__ import annotations

import os
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
    assert flt.match("gw x[1]: PROBE from 192.0.2.77").host == "192.0.2.77"  # type: ignore[union-attr]
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
    "text",
    [
        "[Definition]\nfailregex = ^(unclosed <HOST>\n",
        "[Definition]\nignoreregex = x\n",
        "no sections",
        "[Definition]\nfailregex = %(missing)s <HOST>\n",
    ],
)
def test_bad_filters_are_config_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.conf").write_text(text)
    with pytest.raises(ConfigError):
        Filter.load(tmp_path / "bad.conf")


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
def test_every_shipped_filter_loads_or_says_why() -> None:
    d = Path("/etc/fail2ban/filter.d")
    if not d.is_dir():
        pytest.skip("fail2ban's filters are not installed (run scripts/peers as root)")
    loaded = 0
    for conf in sorted(d.glob("*.conf")):
        try:
            Filter.load(conf)
            loaded += 1
        except ConfigError as exc:  # include-only files (common.conf, ...) have no failregex
            assert (
                "failregex" in str(exc) or "[Definition]" in str(exc) or "not defined" in str(exc)
            )
    assert loaded >= len(os.listdir(d)) * 3 // 4
