"""Failed logins: sshd (OpenSSH 7 to 9.x), Dovecot, UW imapd, Postfix SASL, sendmail AUTH."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.logs import auth, parse_line
from todokede.logs.auth import sshd
from todokede.logs.syslog import Framer, YearRule

FRAMER = Framer(YearRule.oldest(2024, 1, 1))


# (line, (service, user, host, addr, tries))
FAILED = [
    (
        "Sep  1 10:00:00 gw sshd[1]: maximum authentication attempts exceeded for invalid user "
        "x from 203.0.113.12 port 1 ssh2 [preauth]",
        ("sshd", "x", "", "203.0.113.12", 0),
    ),
    (  # OpenSSH before 3.8
        "Sep  1 10:00:00 gw sshd[1]: Illegal user test from 192.0.2.9",
        ("sshd", "test", "", "192.0.2.9", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: PAM: Authentication failure for root from 203.0.113.11",
        ("sshd", "root", "", "203.0.113.11", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Failed password for root from 203.0.113.5 port 4022 ssh2",
        ("sshd", "root", "", "203.0.113.5", 1),
    ),
    (
        "Sep  1 10:00:00 gw sshd-session[1]: Failed password for invalid user admin from "
        "2001:db8::5 port 4022 ssh2",
        ("sshd-session", "admin", "", "2001:db8::5", 1),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: message repeated 4 times: [ Failed password for root "
        "from 203.0.113.5 port 4022 ssh2]",
        ("sshd", "root", "", "203.0.113.5", 4),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Failed none for invalid user x from 192.0.2.1 port 5 ssh2",
        ("sshd", "x", "", "192.0.2.1", 0),
    ),
    (  # the user name is the client's text: the address is the "from" that ends the line
        "Sep  1 10:00:00 gw sshd[1]: Failed password for invalid user a from 10.0.0.1 port 1 "
        "ssh2 from 198.51.100.9 port 58946 ssh2",
        ("sshd", "a from 10.0.0.1 port 1 ssh2", "", "198.51.100.9", 1),
    ),
    (  # ... or that ": " follows (a key's text)
        "Sep  1 10:00:00 gw sshd[1]: Failed password for invalid user t from 198.51.100.9 "
        "port 58946 ssh2: from 10.0.0.1 port 1 ssh2",
        ("sshd", "t", "", "198.51.100.9", 1),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Failed password for invalid user from 10.0.0.1 from "
        "198.51.100.9 port 58946 ssh2",
        ("sshd", "from 10.0.0.1", "", "198.51.100.9", 1),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Invalid user oracle from 203.0.113.5 port 41234",
        ("sshd", "oracle", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Invalid user  from 203.0.113.5 port 41234",
        ("sshd", "", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: pam_unix(sshd:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
        ("sshd", "root", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: pam_unix(sshd:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=ssh ruser= rhost=scan.example.net",
        ("sshd", "", "scan.example.net", "", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: error: maximum authentication attempts exceeded for root "
        "from 203.0.113.5 port 41234 ssh2 [preauth]",
        ("sshd", "root", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Connection closed by invalid user admin 203.0.113.5 "
        "port 41234 [preauth]",
        ("sshd", "admin", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Disconnected from authenticating user root 203.0.113.5 "
        "port 41234 [preauth]",
        ("sshd", "root", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Disconnecting authenticating user root 203.0.113.5 port "
        "41234: Too many authentication failures [preauth]",
        ("sshd", "root", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: User root from 203.0.113.5 not allowed because not "
        "listed in AllowUsers",
        ("sshd", "root", "", "203.0.113.5", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: error: PAM: Authentication failure for root from "
        "dial.example.com",
        ("sshd", "root", "dial.example.com", "", 0),
    ),
    (
        "Sep  1 10:00:00 gw sshd[1]: Failed password for root from ::ffff:198.51.100.3 port 2 ssh2",
        ("sshd", "root", "", "198.51.100.3", 1),
    ),
    (
        "Jun 13 16:30:54 mx dovecot: imap-login: Disconnected (auth failed, 2 attempts): "
        "user=<bob>, method=PLAIN, rip=49.176.98.87, lip=113.212.99.194, TLS",
        ("imap-login", "bob", "", "49.176.98.87", 2),
    ),
    (
        "Dec 07 21:54:06 imap-login: Info: Disconnected: Aborted login by logging out (auth "
        "failed, 1 attempts in 0 secs): user=<tester>, method=PLAIN, rip=127.0.0.1, "
        "lip=127.0.0.1, secured, session=<Pq7GQxJiWoV/AAAB>",
        ("imap-login", "tester", "", "127.0.0.1", 1),
    ),
    (
        "Jul  2 13:49:31 mx dovecot[442]: pop3-login: Aborted login (auth failed, 1 attempts "
        "in 17 secs): user=<test>, method=PLAIN, rip=192.51.100.13, lip=203.0.113.17",
        ("pop3-login", "test", "", "192.51.100.13", 1),
    ),
    (
        "Jun 15 11:28:21 mx dovecot: auth-worker(5787): conn unix:auth-worker (pid=27359,"
        "uid=97): auth-worker<55>: pam(webapps,192.0.2.7): unknown user",
        ("dovecot", "webapps", "", "192.0.2.7", 0),
    ),
    (
        "Jan 29 05:32:50 mail dovecot: auth-worker(304): pam(kenji,1.2.3.4): "
        "pam_authenticate() failed: Authentication failure (password mismatch?)",
        ("dovecot", "kenji", "", "1.2.3.4", 0),
    ),
    (
        "Jul  3 20:56:53 mail imapd[666]: Login failed user=lizdy auth=lizdy "
        "host=h2066373.stratoserver.net [81.169.154.112]",
        ("imapd", "lizdy", "h2066373.stratoserver.net", "81.169.154.112", 1),
    ),
    (
        "Sep  6 00:44:56 mx postfix/submission/smtpd[11538]: warning: unknown[82.221.106.233]:"
        " SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        ("postfix/submission/smtpd", "", "", "82.221.106.233", 1),
    ),
    (
        "Dec 07 21:54:07 mx postfix/smtpd[32497]: warning: localhost[127.0.0.1]: SASL PLAIN "
        "authentication failed: (reason unavailable), sasl_username=tester",
        ("postfix/smtpd", "tester", "localhost", "127.0.0.1", 1),
    ),
    (
        "Sep  1 10:00:00 mail sendmail[9]: x81AB: AUTH failure (LOGIN): authentication failure"
        " (-13) SASL(-13): authentication failure: checkpass failed, user=taro, "
        "relay=dial.example.net [192.0.2.77]",
        ("sendmail", "taro", "dial.example.net", "192.0.2.77", 1),
    ),
]


@pytest.mark.parametrize(("line", "want"), FAILED)
def test_failed_logins(line: str, want: tuple[str, str, str, str, int]) -> None:
    ev = parse_line(line.encode(), FRAMER)
    assert ev is not None and ev.kind == "failure"
    assert (ev.service, ev.user, ev.host, ev.addr, ev.size) == want


@pytest.mark.parametrize(
    "line",
    [
        "Sep  1 10:00:00 gw sshd[1]: Accepted password for taro from 192.0.2.1 port 22 ssh2",
        "Sep  1 10:00:00 gw sshd[1]: Server listening on 0.0.0.0 port 22.",
        "Sep  1 10:00:00 gw sshd[1]: Connection closed by 192.0.2.1 port 22 [preauth]",
        "Sep  1 10:00:00 gw sshd[1]: message repeated 2 times: [ Server listening ]",
        "Sep  1 10:00:00 gw sshd[1]: Failed",
        # a client offers each of its keys in turn
        "Sep  1 10:00:00 gw sshd[1]: Failed publickey for git from 192.0.2.1 port 57904 ssh2: "
        "RSA SHA256:v3dpapGleDaUKf",
        "Sep  1 10:00:00 mx postfix/smtpd[1]: warning: unknown[1.1.1.1]: SASL LOGIN "
        "authentication failed: Connection lost to authentication server",
        "Sep  1 10:00:00 mx postfix/smtp[1]: Q1: to=<a@b>, relay=x[192.0.2.1]:25, "
        "status=deferred (SASL authentication failed; server x said: 535)",
        "Sep  1 10:00:00 mx dovecot: imap-login: Login: user=<taro>, method=PLAIN, rip=192.0.2.1",
    ],
)
def test_not_failed_logins(line: str) -> None:
    ev = parse_line(line.encode(), FRAMER)
    assert ev is None or ev.kind != "failure"


# a user name with " from " in it can make a line that reads two ways (see auth._FAILED)
USERS = st.binary(max_size=40).filter(lambda u: b"\n" not in u and b" from " not in u)
ADDRS = st.sampled_from([b"203.0.113.5", b"2001:db8::1", b"198.51.100.200"])


@given(USERS, ADDRS, st.integers(1, 65535), st.sampled_from([b"", b": RSA SHA256:abc"]))
@settings(max_examples=400, deadline=None)
def test_any_user_name_keeps_the_address(user: bytes, addr: bytes, port: int, tail: bytes) -> None:
    msg = b"Failed password for invalid user %s from %s port %d ssh2%s" % (user, addr, port, tail)
    ev = sshd(0, b"sshd", msg)
    assert ev is not None and ev.addr == addr.decode() and ev.size == 1


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_sshd_parser_takes_any_bytes(msg: bytes) -> None:
    ev = sshd(0, b"sshd", msg)
    assert ev is None or (ev.kind == "failure" and (ev.addr or ev.host or ev.user is not None))


@given(
    st.sampled_from([b"Failed password for ", b"Invalid user ", b"message repeated 3 times: [ "])
)
@settings(max_examples=50, deadline=None)
def test_sshd_parser_takes_cut_lines(head: bytes) -> None:
    for n in range(len(head) + 20):
        sshd(0, b"sshd", (head + b"root from 192.0.2.1 port 22 ssh2")[:n])


SAMPLES = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")


def _annotated(name: str) -> list[tuple[bytes, str]]:
    """fail2ban's sample lines that its normal filter counts, with the host it names."""
    out, want = [], None
    for raw in (SAMPLES / name).read_bytes().splitlines():
        if raw.startswith(b"# failJSON:"):
            want = json.loads(raw.split(b":", 1)[1])
            continue
        if raw.startswith(b"#") or not raw.strip() or want is None:
            continue
        if want.get("match") and want.get("host") and not want.get("constraint"):
            out.append((raw, str(want["host"])))
        want = None
    return out


@pytest.mark.parametrize("name", ["sshd", "dovecot", "uwimap-auth", "postfix"])
def test_fail2ban_sample_lines_name_the_same_client(name: str) -> None:
    """Where this parser reads one of fail2ban's annotated failures, it names the client
    fail2ban names."""
    if not (SAMPLES / name).exists():
        pytest.skip(f"fail2ban's sample logs are not installed ({SAMPLES})")
    framer = Framer(YearRule.oldest(2024, 1, 1))
    read = 0
    for raw, host in _annotated(name):
        line = re.sub(rb"^@[0-9a-f]{24} ", b"", raw)
        ev = parse_line(line, framer)
        if ev is None or ev.kind != "failure":
            continue
        read += 1
        assert host in (ev.addr, ev.host), (line, ev)
    assert read >= 2, f"no {name} failure read"


# every word the sshd patterns spell, to build messages in any order
WORDS = sorted(
    set(
        b"Failed password none for invalid illegal user from port ssh2 Invalid Illegal "
        b"error: maximum authentication attempts exceeded Connection closed reset by "
        b"Disconnected Disconnecting authenticating [preauth] User not allowed because "
        b"PAM: Authentication authentication failure; failure error rhost= user=root "
        b"pam_unix(sshd:auth): message repeated 2 times: [ ] root 203.0.113.5 22".split()
    )
)


def _unfiltered(monkeypatch: pytest.MonkeyPatch, msgs: list[bytes]) -> None:
    """sshd() with and without its look at SSHD_STARTS: the same events."""
    with_starts = [sshd(0, b"sshd", m) for m in msgs]
    monkeypatch.setattr(auth, "SSHD_STARTS", (b"",))
    assert [sshd(0, b"sshd", m) for m in msgs] == with_starts


@given(st.lists(st.sampled_from(WORDS), max_size=14))
@settings(max_examples=1000, deadline=None)
def test_sshd_starts_names_every_shape_sshd_reads(words: list[bytes]) -> None:
    # the C scanner skips sshd lines that begin otherwise (tests/detect/test_fast.py)
    with pytest.MonkeyPatch.context() as mp:
        _unfiltered(mp, [b" ".join(words), b" ".join(words) + b" port 22 ssh2"])


def test_sshd_starts_names_every_shape_of_the_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [FRAMER.frame(line.encode()) for line, _want in FAILED]
    msgs = [f[4] for f in frames if f is not None and f[2] in auth.SSHD]
    assert len(msgs) > 10
    _unfiltered(monkeypatch, msgs)


def test_sshd_starts_names_every_shape_of_the_sample_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (SAMPLES / "sshd").exists():
        pytest.skip(f"fail2ban's sample logs are not installed ({SAMPLES})")
    framer = Framer(YearRule.oldest(2024, 1, 1))
    frames = [framer.frame(line) for line in (SAMPLES / "sshd").read_bytes().splitlines()]
    msgs = [f[4] for f in frames if f is not None and f[2] in auth.SSHD]
    assert len(msgs) > 100
    _unfiltered(monkeypatch, msgs)
