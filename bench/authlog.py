#!/usr/bin/env python3
"""A Debian auth.log of a host on the Internet, as OpenSSH 7 to 9 write it.

    .venv/bin/python bench/authlog.py OUT [--lines 1000000] [--seed 1997]

Most lines are no failure, as on a real host: cron's pam_unix sessions every few
minutes, systemd-logind, sudo and su, the owners' own logins by key (accepted, session
opened and closed, disconnected). Between them, a few thousand attacking addresses run
their dictionaries: a connection, an invalid or existing user, PAM's failure, the failed
password, then the disconnection in the form of the OpenSSH release the host runs
(``Disconnected from invalid user`` since 7.5, ``Connection closed by invalid user``
since 8.0, ``kex_exchange_identification`` and ``banner exchange`` for scanners).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from pathlib import Path

USERS = ("admin", "test", "oracle", "ubuntu", "user", "git", "postgres", "ftpuser", "pi", "guest")
OWNERS = ("taro", "hanako", "deploy")
Say = Callable[[str, str], str]


def _attacker(rnd: random.Random) -> str:
    if rnd.random() < 0.05:
        return f"2001:db8:{rnd.randrange(1 << 16):x}::{rnd.randrange(1, 1 << 16):x}"
    first = rnd.choice((45, 61, 103, 141, 185, 193, 218))
    return f"{first}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"


def _attack(rnd: random.Random, addr: str, say: Say) -> Iterator[str]:
    port = rnd.randrange(1024, 65536)
    kind = rnd.random()
    if kind < 0.1:
        yield say("sshd", "kex_exchange_identification: Connection closed by remote host")
        yield say("sshd", f"Connection closed by {addr} port {port}")
        return
    if kind < 0.15:
        yield say("sshd", f"banner exchange: Connection from {addr} port {port}: invalid format")
        return
    user = rnd.choice((*USERS, "root"))
    invalid = user != "root"
    if invalid:
        yield say("sshd", f"Invalid user {user} from {addr} port {port}")
        yield say("sshd", "pam_unix(sshd:auth): check pass; user unknown")
        yield say(
            "sshd",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
            f"ruser= rhost={addr}",
        )
    else:
        yield say(
            "sshd",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
            f"ruser= rhost={addr}  user=root",
        )
    who = f"invalid user {user}" if invalid else user
    yield say("sshd", f"Failed password for {who} from {addr} port {port} ssh2")
    yield say("sshd", f"Received disconnect from {addr} port {port}:11: Bye Bye [preauth]")
    if rnd.random() < 0.5:
        yield say("sshd", f"Disconnected from {who} {addr} port {port} [preauth]")
    else:
        yield say("sshd", f"Connection closed by {who} {addr} port {port} [preauth]")


def _owner(rnd: random.Random, say: Say) -> Iterator[str]:
    user = rnd.choice(OWNERS)
    addr = f"192.0.2.{rnd.randrange(10, 20)}"
    port = rnd.randrange(40000, 60000)
    uid = 1000 + OWNERS.index(user)
    session = rnd.randrange(1, 9999)
    yield say(
        "sshd", f"Accepted publickey for {user} from {addr} port {port} ssh2: ED25519 SHA256:x"
    )
    yield say(
        "sshd", f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)"
    )
    yield say("systemd-logind", f"New session {session} of user {user}.")
    if rnd.random() < 0.3:
        yield say(
            "sudo",
            f"{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/apt update",
        )
        yield say(
            "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by (uid=1000)"
        )
        yield say("sudo", "pam_unix(sudo:session): session closed for user root")
    yield say("sshd", f"Received disconnect from {addr} port {port}:11: disconnected by user")
    yield say("sshd", f"Disconnected from user {user} {addr} port {port}")
    yield say("sshd", f"pam_unix(sshd:session): session closed for user {user}")
    yield say("systemd-logind", f"Session {session} logged out. Waiting for processes to exit.")
    yield say("systemd-logind", f"Removed session {session}.")


def _cron(say: Say) -> Iterator[str]:
    yield say("CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
    yield say("CRON", "pam_unix(cron:session): session closed for user root")


def lines(count: int, seed: int = 1997) -> Iterator[str]:
    """``count`` lines of the log, the same for the same seed."""
    rnd = random.Random(seed)
    attackers = [_attacker(rnd) for _ in range(3000)]
    t = 0  # seconds since Mar 1 00:00:00
    pid = 1000
    made = 0

    def say(prog: str, msg: str) -> str:
        d, rest = divmod(t, 86400)
        h, rest = divmod(rest, 3600)
        stamp = f"Mar {d % 28 + 1:2d} {h:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return f"{stamp} bastion {prog}[{pid}]: {msg}\n"

    while made < count:
        t += rnd.randrange(0, 4)
        pid = 1000 + (pid + rnd.randrange(1, 50)) % 60000
        r = rnd.random()
        if r < 0.45:
            part: Iterator[str] = _cron(say)
        elif r < 0.65:
            part = _owner(rnd, say)
        else:
            # attackers come back: a few dozen of them make most of the attempts
            addr = attackers[min(int(rnd.paretovariate(1.2)) - 1, len(attackers) - 1)]
            part = _attack(rnd, addr if rnd.random() < 0.6 else rnd.choice(attackers), say)
        for line in part:
            if made >= count:
                return
            made += 1
            yield line


def write(path: Path, count: int, seed: int = 1997) -> Path:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="ascii") as out:
        out.writelines(lines(count, seed))
    tmp.rename(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1997)
    a = ap.parse_args()
    write(a.out, a.lines, a.seed)


if __name__ == "__main__":
    main()
