#!/usr/bin/env python3
"""Write a busy 1997 mail host's syslog for the benchmark (deterministic for a seed).

    mailhost.py --lines N [--seed S] [--stamps bsd|rfc3339] OUT

Shaped like the seed's site logs (todokede/samples/logs/1997-09), at a larger site: a
quarter sendmail 8.8 (a from= and its to= lines per message, now and then a refused
relay attempt or a returned message), the rest tcp_wrappers at work in front of imapd,
ipop3d, in.ftpd, in.telnetd and sshd (granted connections and the daemons' own lines),
with named, cron and the kernel in between, and about 1 line in 100 a connection refused
from outside (always "name (address)" or "address (address)", so that a fail2ban filter
has an address to take from each).

Every address is in the documentation ranges (RFC 5737) or a private range, and every name
under .example: nothing here names a real host.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
USERS = ["taro", "hanako", "jiro", "sachiko", "kenji", "yumi", "ichiro", "akiko"]
DOMAINS = ["kogyo.example", "ginko.example", "torihiki.example", "shoten.example"]
OUTSIDE = ["192.0.2", "198.51.100", "203.0.113"]
DAEMONS = ["imapd", "ipop3d", "in.ftpd", "in.telnetd", "sshd"]
NAMED = [
    "Lame server on '{n}.example' (in '{n}.example'?): [198.51.100.{a}].53 'ns.{n}.example'",
    "XSTATS {t} 873000000 RR={a}0 RNXD=3 RFwdR=12 RDupR=0 RFail=1 RFErr=0 RErr=0",
    'unapproved query from [203.0.113.{a}].1032 for "{n}.example"',
]
KERNEL = [
    "eth0: transmit timed out, status 0{a}, resetting",
    "VFS: Disk change detected on device fd(2,0)",
    "sd0: rejecting I/O to dead device",
]


def stamp(t: datetime, style: str) -> str:
    if style == "bsd":
        return f"{MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}+09:00"


class Host:
    def __init__(self, out: TextIO, rnd: random.Random, style: str, limit: int) -> None:
        self.out, self.rnd, self.style, self.limit = out, rnd, style, limit
        self.t = datetime(1997, 9, 1, 0, 0, 0)
        self.pid = 300
        self.qseq = 1000
        self.n = 0

    def line(self, prog: str, msg: str, pid: int | None = None) -> None:
        if self.n >= self.limit:  # exactly the lines asked for
            return
        self.t += timedelta(microseconds=self.rnd.randint(100_000, 4_000_000))
        tag = prog if pid is None else f"{prog}[{pid}]"
        self.out.write(f"{stamp(self.t, self.style)} mail {tag}: {msg}\n")
        self.n += 1

    def next_pid(self) -> int:
        self.pid = 300 + (self.pid + self.rnd.randint(1, 40)) % 29000
        return self.pid

    def qid(self) -> str:
        self.qseq = 1000 + (self.qseq + 1) % 9000
        return f"{'ABCDEFGHIJKLMNOPQRSTUVWX'[self.t.hour]}AA{self.qseq:05d}"

    def mail(self) -> None:
        rnd, pid, qid = self.rnd, self.next_pid(), self.qid()
        inbound = rnd.random() < 0.6
        user, dom = rnd.choice(USERS), rnd.choice(DOMAINS)
        if inbound:
            sender, relay = f"<{user}@{dom}>", f"mail.{dom} [198.51.100.{DOMAINS.index(dom) + 10}]"
        else:
            n = rnd.randint(1, 60)
            sender, relay = (
                f"<{user}@daigaku.example>",
                f"pc{n:02d}.lab.daigaku.example [172.16.1.{n}]",
            )
        size = rnd.randint(600, 20000)
        nr = 1 if rnd.random() < 0.85 else rnd.randint(2, 4)
        self.line(
            "sendmail",
            f"{qid}: from={sender}, size={size}, class=0, pri={30000 + size}, nrcpts={nr}, "
            f"msgid=<1997{self.t:%m%d%H%M}.{qid}@{dom}>, proto=SMTP, relay={relay}",
            pid,
        )
        if inbound:
            rcpts = ",".join(f"<{rnd.choice(USERS)}@daigaku.example>" for _ in range(nr))
            mailer, relay = "local", ""
        else:
            d2 = rnd.choice(DOMAINS)
            rcpts = ",".join(f"<{rnd.choice(USERS)}@{d2}>" for _ in range(nr))
            mailer = "esmtp"
            relay = f"relay=mail.{d2}. [198.51.100.{DOMAINS.index(d2) + 10}], "
        stat = "Sent (Ok)" if mailer == "esmtp" else "Sent"
        if rnd.random() < 0.02:
            stat = "Deferred: Connection timed out with mail.example."
        self.line(
            "sendmail",
            f"{qid}: to={rcpts}, delay=00:00:0{rnd.randint(1, 9)}, xdelay=00:00:01, "
            f"mailer={mailer}, {relay}stat={stat}",
            pid,
        )
        if rnd.random() < 0.003:
            self.line("sendmail", f"{qid}: {self.qid()}: return to sender: User unknown", pid)
        if rnd.random() < 0.004:
            a = rnd.randint(1, 254)
            self.line(
                "sendmail",
                f"ruleset=check_rcpt, arg1=<x{a}@aol-users.example>, relay=dial-{a}.us-provider"
                f".example [198.51.100.{a}], reject=550 5.7.1 <x{a}@aol-users.example>... "
                "Relaying denied",
                self.next_pid(),
            )

    def session(self) -> None:
        rnd = self.rnd
        daemon, pid = rnd.choice(DAEMONS), self.next_pid()
        n, user = rnd.randint(1, 60), rnd.choice(USERS)
        host, addr = f"pc{n:02d}.lab.daigaku.example", f"172.16.1.{n}"
        self.line(daemon, f"connect from {host} ({addr})", pid)
        if daemon in ("imapd", "ipop3d"):
            self.line(daemon, f"Login user={user} host={host} [{addr}]", pid)
            self.line(daemon, f"Logout user={user} host={host} [{addr}]", pid)
        elif daemon == "in.ftpd":
            self.line("ftpd", f"FTP LOGIN FROM {host} [{addr}], {user}", pid)
        elif daemon == "sshd":
            self.line(daemon, f"log: Connection from {addr} port {rnd.randint(600, 1023)}", pid)
            self.line(daemon, f"log: RSA authentication for {user} accepted.", pid)

    def refused(self) -> int:
        rnd, n = self.rnd, self.n
        a = f"{rnd.choice(OUTSIDE)}.{rnd.randint(1, 254)}"
        client = (
            f"{a} ({a})" if rnd.random() < 0.5 else f"ppp{a.rsplit('.', 1)[1]}.isp.example ({a})"
        )
        self.line(rnd.choice(DAEMONS), f"refused connect from {client}", self.next_pid())
        return self.n - n

    def other(self) -> None:
        rnd, a, n = self.rnd, self.rnd.randint(1, 254), rnd_name(self.rnd)
        what = rnd.random()
        if what < 0.5:
            self.line("named", rnd.choice(NAMED).format(n=n, a=a, t=self.n), 89)
        elif what < 0.85:
            self.line("cron", "(root) CMD (/usr/lib/atrun)", self.next_pid())
        else:
            self.line("kernel", rnd.choice(KERNEL).format(a=a))


def rnd_name(rnd: random.Random) -> str:
    return "".join(rnd.choice("abcdefghijklmnop") for _ in range(6))


def write(out: Path, lines: int, seed: int, style: str) -> int:
    rnd = random.Random(seed)
    with open(out, "w", buffering=1 << 20) as fh:
        host = Host(fh, rnd, style, lines)
        refused = 0
        while host.n < lines:
            r = rnd.random()
            # in lines: a quarter sendmail, a half and more the tcpd-wrapped daemons, 1 in
            # 100 refused, the rest named, cron and the kernel
            if r < 0.224:  # a message: two lines and now and then a third
                host.mail()
            elif r < 0.638:
                host.session()
            elif r < 0.656:
                refused += host.refused()
            else:
                host.other()
    return refused


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1997)
    ap.add_argument("--stamps", choices=["bsd", "rfc3339"], default="bsd")
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    print(write(a.out, a.lines, a.seed, a.stamps), "refused connections")


if __name__ == "__main__":
    main()
