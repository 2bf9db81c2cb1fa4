"""The seed's advice end to end: a client that keeps failing to log in to a real Dovecot
through ``todokede wrap`` (which names the client to Dovecot with the PROXY protocol, so
that Dovecot logs the client's address, not the wrapper's) is refused by the wrapper at its
next connection, through the host list guard owns; another address still gets in; the ban
ends on time and survives a restart of guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guard.harness import (
    banned,
    fail_login,
    greeting,
    guard,
    run,
    wait_until,
    watched_dovecot,
    wrap,
)

OWN = "# the site's own line\nsshd: 192.0.2.99\n"


def failed(log: Path, addr: str) -> int:
    """Dovecot's ``auth failed`` lines that name ``addr`` as the client."""
    lines = log.read_text(errors="replace").splitlines()
    return sum("auth failed" in x and f"rip={addr}," in x for x in lines)


def site_rules(tmp: Path) -> tuple[Path, Path]:
    """The site's rules directory for wrap, naming guard's host list once; (dir, list)."""
    deny = tmp / "guard.deny"
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "hosts.allow").write_text("")
    (rules / "hosts.deny").write_text(f"{OWN}imapd: {deny}\n")
    return rules, deny


@pytest.mark.peer
@pytest.mark.parametrize(
    ("attacker", "bystander", "proxy"),
    [("127.0.0.5", "127.0.0.6", "v1"), ("127.0.0.15", "127.0.0.16", "v2")],
)
def test_failures_in_dovecot_ban_at_the_wrapper(
    tmp_path: Path, attacker: str, bystander: str, proxy: str
) -> None:
    rules, deny = site_rules(tmp_path)
    with watched_dovecot(tmp_path, bantime="6s", haproxy=True) as (imap, conf):
        assert imap.log is not None
        log = imap.log
        with wrap(imap.port, rules, tmp_path / "wrap.log", proxy=proxy) as front, guard(conf):
            assert greeting(front, attacker).startswith(b"* OK")
            for n in range(3):
                assert b"a1 NO" in fail_login(front, attacker)

                # Dovecot names the client, so the failure is the attacker's
                def logged(n: int = n) -> bool:
                    return failed(log, attacker) == n + 1

                wait_until(logged, what="the failure logged with the client's address")
                if n < 2:  # below maxretry: still let in
                    assert attacker not in banned(deny)
            wait_until(lambda: attacker in banned(deny), what="the ban")
            assert greeting(front, attacker) == b""
            assert greeting(front, bystander).startswith(b"* OK")
            wait_until(lambda: attacker not in banned(deny), timeout=20, what="the ban to end")
            assert greeting(front, attacker).startswith(b"* OK")
        assert f"refused connect from {attacker}" in (tmp_path / "wrap.log").read_text()
    assert (rules / "hosts.deny").read_text() == f"{OWN}imapd: {deny}\n"


@pytest.mark.peer
def test_a_restart_keeps_an_unexpired_ban(tmp_path: Path) -> None:
    rules, deny = site_rules(tmp_path)
    with (
        watched_dovecot(tmp_path, bantime="1h", haproxy=True) as (imap, conf),
        wrap(imap.port, rules, tmp_path / "wrap.log", proxy="v2") as front,
    ):
        with guard(conf):
            for _ in range(3):
                fail_login(front, "127.0.0.7")
            wait_until(lambda: "127.0.0.7" in banned(deny), what="the ban")
        deny.unlink()  # whatever happens to the file while guard is down
        assert greeting(front, "127.0.0.7").startswith(b"* OK")
        with guard(conf):
            assert "127.0.0.7" in banned(deny)
            assert greeting(front, "127.0.0.7") == b""
            status = run(conf, "status", "imap")
            assert "127.0.0.7  3 failure(s)" in status.stdout
