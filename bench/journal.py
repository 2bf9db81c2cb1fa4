#!/usr/bin/env python3
"""todokede scan of systemd journal files against the pipes a user has without it.

    .venv/bin/python bench/journal.py [--entries 1000000] [--runs 1]

Makes (once) in bench/_work/ the journal of a busy mail host (Postfix, sshd, Dovecot, cron,
kernel firewall lines, systemd; a few messages of two lines), written by
systemd-journal-remote from an export stream made here, deterministic for a seed: a
directory D of a few journal files. Then runs, one after another, in one run:

  todokede scan --json --journal-dir D                      (journalctl -o export inside)
  journalctl -D D -o short | todokede scan --json -         (the floor a user has today)
  journalctl -D D -o short > f; fail2ban-regex f FILTER     (an equivalent failregex; it
                                                             reads files, not pipes)
  journalctl -D D -o export / -o short > file               (what journalctl itself costs)

and prints wall and CPU seconds (user+sys of the whole process tree: the children's rusage)
and their ratios. The two todokede runs must give the same findings: the bench says so.
On a busy machine wall times say more about the neighbours than about the programs:
compare the CPU times too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scan import WORK, Run, measure  # noqa: E402

from todokede.logs.journal import FIELDS  # noqa: E402

TODOKEDE = f"{sys.executable} -m todokede"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = b"5c1b2fd0a54f4f6c9d4e1f0a7b3c2d1e"
START = 1_793_577_600  # 2026-11-02 00:00 UTC: within the year before the bench is run
HOST = b"mail"

# what todokede reports on such a host: password guessing (sshd, Dovecot, Postfix SASL)
# and relaying refused by Postfix
FILTER = """\
[INCLUDES]
before = common.conf
[Definition]
_daemon = \\S+
failregex = ^%(__prefix_line)sFailed \\S+ for (?:invalid user )?\\S+ from <HOST> port \\d+
            ^%(__prefix_line)sInvalid user \\S* from <HOST>
            ^%(__prefix_line)swarning: \\S+\\[<HOST>\\]: SASL \\S+ authentication failed
            ^%(__prefix_line)sNOQUEUE: reject: RCPT from \\S+\\[<HOST>\\]: 554 .*Relay access denied
            ^%(__prefix_line)s\\S+: Disconnected \\(auth failed, \\d+ attempts.* rip=<HOST>,
ignoreregex =
"""


class Host:
    """Entries of a mail host in time order (the shape of a real one: most lines are
    Postfix mail flows and kernel firewall drops; a few clients guess passwords)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.usec = START * 1_000_000
        self.mono = 5_000_000
        self.pid = 1000
        self.qid = 0x1A2B3C
        self.guessers = [f"203.0.113.{i}" for i in range(1, 60)] + [
            f"198.51.100.{i}" for i in range(1, 40)
        ]
        self.clients = [f"192.0.2.{i}" for i in range(1, 200)]

    def entry(self, ident: bytes, msg: bytes, pid: int | None = None) -> bytes:
        self.usec += self.rnd.randrange(1, 1_500_000)
        self.mono += 1000
        kernel = ident == b"kernel"
        out = [
            b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n" % (self.usec, self.mono),
            b"_BOOT_ID=" + BOOT_ID + b"\n_HOSTNAME=" + HOST + b"\n",
            b"_TRANSPORT=kernel\nPRIORITY=4\n" if kernel else b"_TRANSPORT=syslog\nPRIORITY=6\n",
            b"SYSLOG_IDENTIFIER=" + ident + b"\n",
        ]
        if pid is not None:
            out.append(b"_PID=%d\n_COMM=%s\n" % (pid, ident.rpartition(b"/")[2]))
        if b"\n" in msg:
            out.append(b"MESSAGE\n" + len(msg).to_bytes(8, "little") + msg + b"\n\n")
        else:
            out.append(b"MESSAGE=" + msg + b"\n\n")
        return b"".join(out)

    def newpid(self) -> int:
        self.pid = self.pid + 1 if self.pid < 32000 else 1000
        return self.pid

    def mail(self) -> Iterator[bytes]:
        r = self.rnd
        self.qid += r.randrange(1, 5000)
        q = b"%X" % self.qid
        smtpd, ip = self.newpid(), r.choice(self.clients).encode()
        name = b"mx%d.example.net" % r.randrange(50)
        yield self.entry(b"postfix/smtpd", b"connect from %s[%s]" % (name, ip), smtpd)
        yield self.entry(b"postfix/smtpd", b"%s: client=%s[%s]" % (q, name, ip), smtpd)
        cleanup = self.newpid()
        yield self.entry(
            b"postfix/cleanup", b"%s: message-id=<%d@%s>" % (q, self.qid, name), cleanup
        )
        sender = b"user%d@example.net" % r.randrange(300)
        yield self.entry(
            b"postfix/qmgr",
            b"%s: from=<%s>, size=%d, nrcpt=1 (queue active)"
            % (q, sender, r.randrange(900, 90000)),
            800,
        )
        yield self.entry(b"postfix/smtpd", b"disconnect from %s[%s]" % (name, ip), smtpd)
        rcpt = b"staff%d@mail.example" % r.randrange(40)
        yield self.entry(
            b"postfix/local",
            b"%s: to=<%s>, relay=local, delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, "
            b"status=sent (delivered to mailbox)" % (q, rcpt),
            self.newpid(),
        )
        yield self.entry(b"postfix/qmgr", b"%s: removed" % q, 800)

    def relay(self) -> Iterator[bytes]:
        ip = self.rnd.choice(self.guessers).encode()
        yield self.entry(
            b"postfix/smtpd",
            b"NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <victim%d@example.com>: "
            b"Relay access denied; from=<spam@example.org> to=<victim%d@example.com> "
            b"proto=ESMTP helo=<x>" % (ip, self.rnd.randrange(99), self.rnd.randrange(99)),
            self.newpid(),
        )

    def sasl(self) -> Iterator[bytes]:
        ip = self.rnd.choice(self.guessers).encode()
        yield self.entry(
            b"postfix/smtpd",
            b"warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6" % ip,
            self.newpid(),
        )

    def sshd(self) -> Iterator[bytes]:
        r, pid = self.rnd, self.newpid()
        port = r.randrange(1024, 65535)
        if r.random() < 0.2:
            ip = r.choice(self.clients).encode()
            yield self.entry(
                b"sshd", b"Accepted publickey for admin from %s port %d ssh2" % (ip, port), pid
            )
            yield self.entry(
                b"sshd",
                b"pam_unix(sshd:session): session opened for user admin(uid=1000) by (uid=0)",
                pid,
            )
            return
        ip, user = r.choice(self.guessers).encode(), r.choice([b"root", b"admin", b"test"])
        if user != b"root":
            yield self.entry(b"sshd", b"Invalid user %s from %s port %d" % (user, ip, port), pid)
        invalid = b"" if user == b"root" else b"invalid user "
        for _ in range(r.randrange(1, 4)):
            yield self.entry(
                b"sshd",
                b"Failed password for %s%s from %s port %d ssh2" % (invalid, user, ip, port),
                pid,
            )
        yield self.entry(
            b"sshd",
            b"Connection closed by %s%s %s port %d [preauth]" % (invalid, user, ip, port),
            pid,
        )

    def dovecot(self) -> Iterator[bytes]:
        r = self.rnd
        if r.random() < 0.7:
            ip, user = r.choice(self.clients).encode(), b"staff%d" % r.randrange(40)
            yield self.entry(
                b"dovecot",
                b"imap-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=192.0.2.250, "
                b"mpid=%d, TLS, session=<k3Zr9x>" % (user, ip, self.pid),
            )
            yield self.entry(
                b"dovecot",
                b"imap(%s)<%d><k3Zr9x>: Disconnected: Logged out in=%d out=%d"
                % (user, self.newpid(), r.randrange(999), r.randrange(99999)),
            )
            return
        ip = r.choice(self.guessers).encode()
        yield self.entry(
            b"dovecot",
            b"imap-login: Disconnected (auth failed, %d attempts in 4 secs): user=<info>, "
            b"method=PLAIN, rip=%s, lip=192.0.2.250, TLS, session=<Zk2b1c>"
            % (r.randrange(1, 4), ip),
        )

    def cron(self) -> Iterator[bytes]:
        pid = self.newpid()
        yield self.entry(
            b"CRON", b"pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", pid
        )
        yield self.entry(b"CRON", b"(root) CMD (command -v debian-sa1 > /dev/null)", pid)
        yield self.entry(b"CRON", b"pam_unix(cron:session): session closed for user root", pid)

    def kernel(self) -> Iterator[bytes]:
        r = self.rnd
        src = r.choice(self.guessers) if r.random() < 0.3 else f"100.{r.randrange(64, 128)}.1.9"
        yield self.entry(
            b"kernel",
            b"[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=%s DST=192.0.2.250 LEN=44 "
            b"TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=%d DPT=%d WINDOW=1024 RES=0x00 "
            b"SYN URGP=0" % (src.encode(), r.randrange(1024, 65535), r.choice([23, 445, 3389])),
        )

    def systemd(self) -> Iterator[bytes]:
        if self.rnd.random() < 0.02:  # a multi-line message (a binary field in the export)
            yield self.entry(b"systemd", b"Failed to start unit:\n  status=1/FAILURE", 1)
        yield self.entry(b"systemd", b"Started session-%d.scope - Session." % self.pid, 1)

    def entries(self, n: int) -> Iterator[bytes]:
        kinds = [self.mail, self.kernel, self.sshd, self.dovecot, self.cron, self.sasl]
        kinds += [self.relay, self.systemd]
        weights = [10, 20, 9, 8, 3, 3, 2, 3]
        made = 0
        while made < n:
            for e in self.rnd.choices(kinds, weights)[0]():
                yield e
                made += 1
                if made == n:
                    return


def make_journal(n: int) -> Path:
    """A directory of journal files (systemd-journal-remote starts a new file when one's
    hash tables fill up: a million entries make a few)."""
    WORK.mkdir(exist_ok=True)
    path = WORK / f"mailhost-{n}"
    if path.exists():
        return path
    print(f"making {path.name}/ ...", file=sys.stderr)
    tmp = WORK / f"mailhost-{n}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    proc = subprocess.Popen(
        [JOURNAL_REMOTE, "--split-mode=none", f"--output={tmp}/mailhost.journal", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    batch: list[bytes] = []
    for e in Host(random.Random(1997)).entries(n):
        batch.append(e)
        if len(batch) == 10_000:
            proc.stdin.write(b"".join(batch))
            batch.clear()
    proc.stdin.write(b"".join(batch))
    proc.stdin.close()
    if proc.wait(timeout=3600) != 0:
        raise SystemExit("systemd-journal-remote failed")
    tmp.rename(path)
    return path


def row(name: str, r: Run, n: int) -> None:
    print(
        f"  {name:<48} {r.wall:7.2f} s wall {r.cpu:7.2f} s CPU {r.cpu / r.wall:5.2f} cores "
        f"{n / r.wall / 1000:7.0f} k entries/s"
    )


def ratio(name: str, ours: Run, theirs: Run) -> None:
    print(
        f"  {name:<48} wall {ours.wall / theirs.wall:6.3f}   CPU {ours.cpu / theirs.cpu:6.3f}"
        f"   (speed {theirs.wall / ours.wall:5.1f}x wall, {theirs.cpu / ours.cpu:5.1f}x CPU)"
    )


def _findings(out: bytes) -> list[dict[str, Any]]:
    found = [json.loads(x) for x in out.splitlines()]
    for f in found:
        del f["evidence"]
    return found


def sh(command: str) -> list[str]:
    return ["sh", "-c", command]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1, help="best of N runs for each command")
    a = ap.parse_args()
    if not (shutil.which("journalctl") and os.path.exists(JOURNAL_REMOTE)):
        raise SystemExit(
            "needs journalctl and systemd-journal-remote (Debian: systemd-journal-remote)"
        )
    os.environ["TZ"] = "UTC"  # the same wall clock for journalctl and todokede
    journal = make_journal(a.entries)
    n = a.entries
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    files = list(journal.iterdir())
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"\njournal: {journal.name}/ ({size:.0f} MB in {len(files)} files, {n} entries)")
    out = WORK / "out.txt"
    jc = f"journalctl --no-pager -q --directory {journal}"
    ours = measure([*TODOKEDE.split(), "scan", "--json", "--journal-dir", str(journal)], a.runs)
    row("todokede scan --journal-dir", ours, n)
    found = out.read_bytes()
    piped = measure(sh(f"{jc} -o short | {TODOKEDE} scan --json -"), a.runs)
    row("journalctl -o short | todokede scan -", piped, n)
    theirs = _findings(out.read_bytes())
    mine = _findings(found)
    lines = sum(f["details"].get("lines", f["count"]) for f in mine)
    print(
        f"  the same findings both ways: {'yes' if mine == theirs else 'NO'} ({len(mine)} "
        "findings; their evidence lines differ: journalctl writes 'Nov 02', syslog 'Nov  2')"
    )
    export = measure(sh(f"{jc} -o export --output-fields={','.join(FIELDS)} > {out}"), a.runs)
    row("journalctl -o export --output-fields=... > file", export, n)
    short = measure(sh(f"{jc} -o short > {out}"), a.runs)
    row("journalctl -o short > file", short, n)
    ratio("todokede --journal-dir / short | todokede -", ours, piped)
    common = Path("/etc/fail2ban/filter.d/common.conf")
    if shutil.which("fail2ban-regex") and common.exists():
        shutil.copy(common, WORK / "common.conf")
        (WORK / "mailhost.conf").write_text(FILTER)
        # fail2ban-regex reads a file, not a pipe: the text is written first
        text = WORK / "mailhost-short.log"
        peer = measure(
            sh(
                f"{jc} -o short > {text} && "
                f"fail2ban-regex --usedns=no {text} {WORK / 'mailhost.conf'}"
            ),
            a.runs,
        )
        row("journalctl -o short > f; fail2ban-regex f", peer, n)
        hits = next(x for x in out.read_text().splitlines() if x.startswith("Failregex:"))
        print(f"  fail2ban-regex: {hits}; todokede: {lines} lines in its findings")
        text.unlink()
        ratio("todokede --journal-dir / fail2ban-regex", ours, peer)
    else:
        print("  fail2ban-regex not installed: skipped (run scripts/peers as root)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (numbers on a loaded machine are noisy)")


if __name__ == "__main__":
    main()
