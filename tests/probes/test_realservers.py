"""The test servers themselves: they start, do what their mode says, log, run side by
side, and are gone afterwards."""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import need, need_root
from tests.realservers import dovecot, port_open, postfix


@pytest.mark.peer
def test_two_postfix_instances_side_by_side(tmp_path: Path) -> None:
    with postfix(tmp_path, "closed") as closed, postfix(tmp_path, "open") as open_:
        assert closed.port != open_.port
        assert closed.config_dir != open_.config_dir
        for server in (closed, open_):
            with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
                smtp.ehlo("client.example.net")
                assert smtp.mail("someone@example.net")[0] == 250
                code, text = smtp.rcpt("someone@example.org")
                if server.mode == "closed":
                    assert code == 554 and b"Relay access denied" in text
                else:
                    assert code == 250
                assert smtp.rcpt("postmaster@sandbox.example")[0] == 250  # local: both
        time.sleep(0.3)
        assert "Relay access denied" in closed.maillog.read_text()
        assert "Relay access denied" not in open_.maillog.read_text()
        ports = (closed.port, open_.port)
    assert not any(port_open("127.0.0.1", p) for p in ports)
    assert closed.maillog.exists()  # the log outlives the server for post-mortems
    assert not closed.config_dir.exists()


@pytest.mark.peer
def test_postfix_delivers_local_mail_and_logs_it(tmp_path: Path) -> None:
    with postfix(tmp_path, "closed") as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
            smtp.sendmail(
                "a@example.net", ["postmaster@sandbox.example"], b"Subject: t\r\n\r\nhi\r\n"
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "status=sent" not in server.maillog.read_text():
            time.sleep(0.1)
        log = server.maillog.read_text()
    assert "postfix/qmgr" in log and "status=sent" in log


@pytest.mark.peer
def test_dovecot_login(tmp_path: Path) -> None:
    with dovecot(tmp_path) as server:
        imap = imaplib.IMAP4(server.host, server.port, timeout=10)
        try:
            assert imap.login(server.user, server.password)[0] == "OK"
            assert imap.select("INBOX")[0] == "OK"
        finally:
            imap.logout()
        port = server.port
    assert not port_open(server.host, port)
    assert server.log is not None and server.log.exists()


def test_bad_mode_is_refused(tmp_path: Path) -> None:
    # a mode the signature refuses, to see the run-time check
    with pytest.raises(ValueError, match="closed"), postfix(tmp_path, "half-open"):  # type: ignore[arg-type]
        pass


SCRIPT = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.realservers import postfix
with tempfile.TemporaryDirectory() as d, postfix(Path(d), "open") as server:
    print("started", server.port)
"""


@pytest.mark.peer
@pytest.mark.root
@pytest.mark.slow
def test_postfix_needs_no_system_main_cf(tmp_path: Path) -> None:
    """Debian's "No configuration" install has no /etc/postfix/main.cf or master.cf: the
    harness must not need them. Checked in a private mount namespace."""
    need("postfix", "unshare", "mount")
    need_root()
    fake_etc = tmp_path / "etc-postfix"
    shutil.copytree("/etc/postfix", fake_etc, symlinks=True)
    for name in ("main.cf", "master.cf"):
        (fake_etc / name).unlink(missing_ok=True)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'mount --bind "{fake_etc}" /etc/postfix && exec "{sys.executable}" -c "$0" "{repo}"',
         SCRIPT],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if "unshare failed" in proc.stderr or "mount:" in proc.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("started")
