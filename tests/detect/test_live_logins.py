"""Password guessing against the real sshd, Dovecot and Postfix (SASL through Dovecot) on
loopback, then found by ``scan`` in their logs (and, for sshd, in a journal of the same
syslog traffic)."""

from __future__ import annotations

import imaplib
import os
import smtplib
import stat
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from tests.journals import entry, write_journal
from tests.realservers import dovecot, postfix, sshd
from todokede.detect import DetectConfig, Scanner, scan_paths
from todokede.logs.journal import Source
from todokede.logs.syslog import Framer, YearRule

pytestmark = [pytest.mark.peer, pytest.mark.slow]

# loopback is where the tests come from: the site is somewhere else
OUTSIDE = DetectConfig(local_nets=("192.0.2.0/24",))


def _wait_for(path: Path, text: str, count: int = 1, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = path.read_text(errors="replace") if path.exists() else ""
        if seen.count(text) >= count:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} x{count} not logged in {timeout}s:\n{seen[-2000:]}")


def _ssh(tmp_path: Path, port: int, user: str, tries: int) -> None:
    """Log in with a wrong password ``tries`` times in one connection (OpenSSH's client,
    the password given by SSH_ASKPASS)."""
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho not-the-password\n")
    askpass.chmod(askpass.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    done = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            f"NumberOfPasswordPrompts={tries}",
            "-p",
            str(port),
            f"{user}@127.0.0.1",
            "true",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 255 and b"Permission denied" in done.stderr, done.stderr


def test_ssh_password_guessing(tmp_path: Path) -> None:
    with sshd(tmp_path) as s:
        _ssh(tmp_path, s.port, s.user, 3)  # sshd's MaxAuthTries: 3
        _ssh(tmp_path, s.port, "admin", 2)  # no such user
        log = _wait_for(s.log, "Failed password", 5)
        _wait_for(s.log, "Connection closed by invalid user admin")
    assert "sshd[" in log
    result = scan_paths([s.log], config=OUTSIDE)
    assert result.unparsed == 0, result.unparsed_examples
    found = [f for f in result.findings if f.kind == "access-probe"]
    assert [(f.service, f.sources, f.count, f.outcome) for f in found] == [
        ("sshd", ["127.0.0.1"], 5, "failed")
    ]
    assert found[0].details["users"] == ["admin", s.user]
    assert found[0].targets == ["gw"]
    assert "Failed password for tkguest" in found[0].evidence[0]
    assert "invalid user admin" in found[0].evidence[-1]
    # the site's own network is not a guesser: with the default networks loopback is inside
    assert not scan_paths([s.log]).findings

    # the same syslog traffic as journald keeps it
    framer = Framer(YearRule.newest(date.today()))
    entries = []
    for n, line in enumerate(s.log.read_bytes().splitlines(), 1):
        f = framer.frame(line)
        assert f is not None
        entries.append(entry(f[0], f[1], f[2], f[3], f[4], n))
    journal = write_journal(tmp_path / "auth.journal", entries)
    from_journal = scan_paths([], config=OUTSIDE, journal=Source(files=(journal,)))
    assert [f.to_dict() for f in from_journal.findings] == [f.to_dict() for f in result.findings]


def test_imap_and_smtp_auth_failures(tmp_path: Path) -> None:
    with dovecot(tmp_path, sasl=True) as d:
        assert d.auth_socket is not None and d.log is not None
        sasl = (
            "smtpd_sasl_auth_enable = yes\n"
            "smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = {d.auth_socket}\n"
        )
        with postfix(tmp_path, "closed", extra_main_cf=sasl) as pf:
            for password in ("guess1", "guess2"):
                imap = imaplib.IMAP4(d.host, d.port, timeout=20)
                with pytest.raises(imaplib.IMAP4.error):
                    imap.login(d.user, password)
                imap.logout()
            for user in ("tester", "sales"):
                with smtplib.SMTP(pf.host, pf.port, timeout=20) as client:
                    client.ehlo("guesser.example")
                    with pytest.raises(smtplib.SMTPAuthenticationError):
                        client.login(user, "wrong")
            _wait_for(pf.maillog, "authentication failed", 2)
            _wait_for(d.log, "auth failed", 2)
    imap_found = scan_paths([d.log], config=OUTSIDE).findings
    assert [(f.kind, f.service, f.sources, f.count, f.outcome) for f in imap_found] == [
        ("access-probe", "imap-login", ["127.0.0.1"], 2, "failed")
    ]
    assert imap_found[0].details["users"] == [d.user]
    smtp = scan_paths([pf.maillog], config=OUTSIDE)
    assert smtp.unparsed == 0, smtp.unparsed_examples
    smtp_found = [f for f in smtp.findings if f.outcome == "failed"]
    # smtplib tries each mechanism Postfix offers (PLAIN, then LOGIN): two tries a login
    assert [(f.service, f.count) for f in smtp_found] == [("postfix/smtpd", 4)]
    assert smtp_found[0].details["users"] == ["sales", "tester"]
    assert "127.0.0.1" in smtp_found[0].sources
    assert all("SASL" in e and "authentication failed" in e for e in smtp_found[0].evidence)
    # the Python path reads them as the C one does
    python = Scanner(OUTSIDE, native=False)
    python.scan(pf.maillog)
    assert [f.to_dict() for f in python.result().findings] == [f.to_dict() for f in smtp.findings]
