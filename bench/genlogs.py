#!/usr/bin/env python3
"""Write logs for the demo, the tests and the benchmarks (deterministic for a given seed).

    genlogs.py seed OUTDIR          the September 1997 site logs (tcpd + imapd syslog,
                                    sendmail 8.8 relay abuse, the "happy today" mail bomb)
    genlogs.py tcpd --lines N OUT   a busy tcpd syslog with a few refused probes

The big Postfix log of the benchmark is cut from real lines by bench/biglog.py.

Every address is in the documentation ranges (RFC 5737) or a private range, and every name
under .example: nothing here names a real host.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta
from pathlib import Path

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def bsd(t: datetime) -> str:
    return f"{MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"


class Syslog:
    def __init__(self, host: str, rnd: random.Random) -> None:
        self.host = host
        self.rnd = rnd
        self.lines: list[tuple[datetime, int, str]] = []
        self.pid = 200

    def next_pid(self) -> int:
        self.pid += self.rnd.randint(1, 40)
        if self.pid > 29999:
            self.pid = 200
        return self.pid

    def add(self, t: datetime, prog: str, msg: str, pid: int | None = None) -> None:
        tag = prog if pid is None else f"{prog}[{pid}]"
        self.lines.append((t, len(self.lines), f"{bsd(t)} {self.host} {tag}: {msg}"))

    def raw(self, t: datetime, text: str) -> None:
        self.lines.append((t, len(self.lines), text))

    def write(self, path: Path, encoding_lines: list[tuple[datetime, bytes]] = ()) -> None:  # type: ignore[assignment]
        path.parent.mkdir(parents=True, exist_ok=True)
        items = [(t, i, s.encode()) for t, i, s in self.lines]
        items += [(t, -1, b) for t, b in encoding_lines]
        items.sort(key=lambda x: (x[0], x[1]))
        path.write_bytes(b"".join(b + b"\n" for _, _, b in items))


# -- site-imap: tcp_wrapper's log on a university-like site's mail server -----------------

LOCAL_PCS = [(f"pc{n:02d}.lab.daigaku.example", f"172.16.1.{n}") for n in range(1, 31)]
USERS = ["taro", "hanako", "jiro", "sachiko", "kenji", "yumi", "ichiro", "akiko"]
# the 9 refused attempts: (day, time, name or None, address or None, old-style line?)
PROBES = [
    ("1997-08-14 03:12:40", "ppp23.dialup.far-isp.example", "192.0.2.23"),
    ("1997-08-19 22:47:05", None, "198.51.100.77"),
    ("1997-08-19 22:47:11", None, "198.51.100.77"),
    ("1997-08-26 04:05:59", "scanner.univ-abroad.example", "203.0.113.45"),
    ("1997-08-31 01:30:02", "gw.net-abroad.example", None),
    ("1997-09-03 13:21:48", "ppp5.dialup.far-isp.example", "192.0.2.5"),
    ("1997-09-08 02:02:17", None, "203.0.113.200"),
    ("1997-09-11 23:59:30", "host7.cable.elsewhere.example", "198.51.100.7"),
    ("1997-09-16 05:44:01", "ppp23.dialup.far-isp.example", "192.0.2.23"),
]


def site_imap(out: Path, rnd: random.Random) -> None:
    log = Syslog("mail", rnd)
    day = datetime(1997, 8, 1)
    end = datetime(1997, 9, 30, 23, 59)
    while day < end:
        for _ in range(rnd.randint(25, 45)):
            t = day + timedelta(seconds=rnd.randint(7 * 3600, 22 * 3600))
            name, addr = rnd.choice(LOCAL_PCS)
            pid = log.next_pid()
            svc = rnd.choices(["imapd", "in.telnetd", "in.ftpd", "ipop3d"], [6, 2, 1, 1])[0]
            log.add(t, svc, f"connect from {name} ({addr})", pid)
            if svc in ("imapd", "ipop3d"):
                user = rnd.choice(USERS)
                log.add(
                    t + timedelta(seconds=1), svc, f"Login user={user} host={name} [{addr}]", pid
                )
                log.add(
                    t + timedelta(seconds=rnd.randint(5, 900)),
                    svc,
                    f"Logout user={user} host={name} [{addr}]",
                    pid,
                )
        day += timedelta(days=1)
    for when, name, addr in PROBES:
        t = datetime.fromisoformat(when)
        who = name or addr
        log.add(
            t,
            "imapd",
            f"refused connect from {who}"
            + (f" ({addr})" if addr and name else (f" ({addr})" if not name else "")),
            log.next_pid(),
        )
    # one of the site's own hosts refused on another service: not an unknown host
    log.add(
        datetime(1997, 9, 2, 10, 15, 3),
        "in.rshd",
        "refused connect from pc07.lab.daigaku.example (172.16.1.7)",
        log.next_pid(),
    )
    log.add(datetime(1997, 9, 2, 10, 15, 4), "", "last message repeated 2 times")
    log.add(datetime(1997, 8, 20, 9, 0, 0), "syslogd 1.3-3", "restart")
    # a console message in ISO-2022-JP and a line cut short by a crash
    ja = "ディスクの残り容量が少なくなりました".encode("iso2022_jp")
    extra = [
        (
            datetime(1997, 9, 5, 12, 0, 0),
            f"{bsd(datetime(1997, 9, 5, 12, 0, 0))} mail kernel: ".encode() + ja,
        ),
        (datetime(1997, 9, 12, 0, 0, 1), b"Sep 12 00:00:0\x00\x00\x00"),
    ]
    log.write(out / "site-imap" / "messages", extra)


# -- sendmail 8.8 ------------------------------------------------------------------------


class Sendmail:
    def __init__(self, log: Syslog, domain: str, rnd: random.Random) -> None:
        self.log = log
        self.domain = domain
        self.rnd = rnd
        self.seq = 0

    def qid(self, t: datetime) -> str:
        self.seq += 1
        return f"{chr(65 + t.hour)}AA{(1000 + self.seq * 7) % 30000:05d}"

    def msgid(self, t: datetime, qid: str, host: str) -> str:
        return f"<{t:%Y%m%d%H%M}.{qid}@{host}>"

    def received(
        self, t: datetime, sender: str, size: int, rcpts: int, relay: str
    ) -> tuple[str, int]:
        pid = self.log.next_pid()
        qid = self.qid(t)
        self.log.add(
            t,
            "sendmail",
            f"{qid}: from=<{sender}>, size={size}, class=0, pri={30000 + size + 1800 * rcpts}, "
            f"nrcpts={rcpts}, msgid={self.msgid(t, qid, sender.partition('@')[2])}, proto=SMTP, "
            f"relay={relay}",
            pid,
        )
        return qid, pid

    def to(
        self,
        t: datetime,
        qid: str,
        pid: int,
        rcpts: list[str],
        mailer: str,
        relay: str,
        stat: str,
        delay: int = 1,
        ctladdr: str = "",
    ) -> None:
        ctl = f", ctladdr={ctladdr}" if ctladdr else ""
        rel = f", relay={relay}" if relay else ""
        self.log.add(
            t + timedelta(seconds=delay),
            "sendmail",
            f"{qid}: to={','.join(rcpts)}{ctl}, delay=00:00:{delay:02d}, xdelay=00:00:01, "
            f"mailer={mailer}{rel}, stat={stat}",
            pid,
        )


PARTNERS = ["torihiki.example", "ginko.example", "shoten.example", "kogyo.example"]


def normal_mail(
    sm: Sendmail, start: datetime, days: int, local_users: list[str], rnd: random.Random, pcs: str
) -> None:
    for d in range(days):
        day = start + timedelta(days=d)
        for _ in range(rnd.randint(30, 50)):
            t = day + timedelta(seconds=rnd.randint(8 * 3600, 20 * 3600))
            if rnd.random() < 0.6:  # inbound from a partner, delivered locally
                dom = rnd.choice(PARTNERS)
                user = rnd.choice(local_users)
                qid, pid = sm.received(
                    t,
                    f"{rnd.choice(USERS)}@{dom}",
                    rnd.randint(900, 9000),
                    1,
                    f"mail.{dom} [198.51.100.{PARTNERS.index(dom) + 10}]",
                )
                sm.to(t, qid, pid, [f"<{user}@{sm.domain}>"], "local", "", "Sent")
            else:  # outbound from a PC on the site's network
                dom = rnd.choice(PARTNERS)
                n = rnd.randint(10, 40)
                qid, pid = sm.received(
                    t,
                    f"{rnd.choice(local_users)}@{sm.domain}",
                    rnd.randint(900, 9000),
                    1,
                    f"{pcs}{n:02d}.{sm.domain} [172.16.2.{n}]",
                )
                sm.to(
                    t,
                    qid,
                    pid,
                    [f"<{rnd.choice(USERS)}@{dom}>"],
                    "esmtp",
                    f"mail.{dom}. [198.51.100.{PARTNERS.index(dom) + 10}]",
                    "Sent (Ok)",
                )


US_DOMAINS = [
    "netcom-mail.example",
    "aol-users.example",
    "prodigy-net.example",
    "compu-serve.example",
    "juno-mail.example",
    "msn-mail.example",
    "earthlink-users.example",
    "mindspring-net.example",
]
SPAMMERS = [
    ("dial-17.us-provider.example", "198.51.100.117"),
    ("dial-42.us-provider.example", "198.51.100.142"),
]
SPAM_MESSAGES = 400


def site_relay(out: Path, rnd: random.Random) -> None:
    log = Syslog("mail", rnd)
    sm = Sendmail(log, "kaisha.example", rnd)
    normal_mail(sm, datetime(1997, 9, 1), 12, USERS, rnd, "pc")
    t0 = datetime(1997, 9, 8, 22, 0, 0)
    span = 10 * 3600
    for i in range(SPAM_MESSAGES):
        t = t0 + timedelta(seconds=span * i // SPAM_MESSAGES + rnd.randint(0, 30))
        name, addr = SPAMMERS[i % 2] if i < SPAM_MESSAGES - 40 else SPAMMERS[0]
        sender = f"offer{rnd.randint(1, 99)}@us-provider.example"
        rcpts: dict[str, list[str]] = {}
        for _ in range(rnd.randint(15, 35)):
            dom = rnd.choice(US_DOMAINS)
            rcpts.setdefault(dom, []).append(f"<{rnd.choice(USERS)}{rnd.randint(1, 9999)}@{dom}>")
        n = sum(len(v) for v in rcpts.values())
        size = rnd.randint(3000, 6000)
        qid, pid = sm.received(t, sender, size, n, f"{name} [{addr}]")
        failed = False
        for dom, lst in rcpts.items():
            if rnd.random() < 0.5:
                sm.to(
                    t,
                    qid,
                    pid,
                    lst,
                    "esmtp",
                    f"mx.{dom}. [203.0.113.{US_DOMAINS.index(dom) + 1}]",
                    "Sent (Message accepted for delivery)",
                    delay=rnd.randint(2, 20),
                )
            else:
                failed = True
                sm.to(
                    t,
                    qid,
                    pid,
                    lst,
                    "esmtp",
                    "",
                    f"Host unknown (Name server: mx.{dom}: host not found)",
                    delay=rnd.randint(2, 20),
                )
        if not failed:
            continue
        tb = t + timedelta(seconds=25)
        bq = sm.qid(tb)
        log.add(
            tb,
            "sendmail",
            f"{qid}: {bq}: return to sender: Host unknown (Name server: host not found)",
            pid,
        )
        bsize = size + 2000 + 120 * n
        log.add(
            tb,
            "sendmail",
            f"{bq}: from=<>, size={bsize}, class=0, pri=0, nrcpts=1, "
            f"msgid=<{tb:%Y%m%d%H%M}.{bq}@mail.kaisha.example>, proto=",
            pid,
        )
        log.add(
            tb + timedelta(seconds=3),
            "sendmail",
            f"{bq}: to=<{sender}>, delay=00:00:03, xdelay=00:00:03, mailer=esmtp, "
            "stat=Host unknown (Name server: us-provider.example: host not found)",
            pid,
        )
        dq = sm.qid(tb)
        log.add(
            tb + timedelta(seconds=4),
            "sendmail",
            f"{bq}: {dq}: postmaster notify: Host unknown",
            pid,
        )
        dsize = bsize * rnd.randint(22, 30) + rnd.randint(
            0, 999
        )  # the bounced spam, many times over
        log.add(
            tb + timedelta(seconds=4),
            "sendmail",
            f"{dq}: from=<>, size={dsize}, class=0, pri=0, "
            f"nrcpts=1, msgid=<{tb:%Y%m%d%H%M}.{dq}@mail.kaisha.example>, proto=",
            pid,
        )
        log.add(
            tb + timedelta(seconds=5),
            "sendmail",
            f"{dq}: to=root, ctladdr=postmaster (0/0), delay=00:00:01, xdelay=00:00:00, "
            "mailer=local, stat=Sent",
            pid,
        )
    # the admin's fix the next morning: the provider's mail is refused at the router, and a
    # last try through sendmail is refused once relaying is closed
    t = datetime(1997, 9, 9, 10, 5, 12)
    log.add(
        t,
        "sendmail",
        "ruleset=check_rcpt, arg1=<someone@aol-users.example>, "
        "relay=dial-42.us-provider.example [198.51.100.142], reject=550 5.7.1 "
        "<someone@aol-users.example>... Relaying denied",
        log.next_pid(),
    )
    log.write(out / "site-relay" / "maillog")


BOMB_MESSAGES = 3200


def site_bomb(out: Path, rnd: random.Random) -> None:
    log = Syslog("ns", rnd)
    sm = Sendmail(log, "shosha.example", rnd)
    normal_mail(sm, datetime(1997, 9, 19), 4, USERS, rnd, "ws")
    t = datetime(1997, 9, 21, 9, 30, 0)
    for _ in range(BOMB_MESSAGES):
        t += timedelta(seconds=rnd.randint(1, 7))
        qid, pid = sm.received(
            t,
            "happy@today-mail.example",
            rnd.randint(1200, 1300),
            1,
            "mailhost.today-mail.example [203.0.113.99]",
        )
        sm.to(t, qid, pid, ["<sachiko@shosha.example>"], "local", "", "Sent")
    log.write(out / "site-bomb" / "maillog")


# -- a busy tcpd log for the benchmark --------------------------------------------------


def tcpd_big(out: Path, lines: int, rnd: random.Random) -> None:
    start = datetime(2024, 3, 1)
    svcs = ["imapd", "in.telnetd", "in.ftpd", "ipop3d", "sshd", "in.fingerd"]
    with open(out, "w", buffering=1 << 20) as fh:
        step = 86400 * 7 / lines
        for i in range(lines):
            t = start + timedelta(seconds=i * step)
            svc = svcs[i % 6 if i % 7 else 0]
            pid = 1000 + (i * 37) % 30000
            if i % 97 == 0:
                a = f"{rnd.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rnd.randint(1, 254)}"
                msg = f"refused connect from {a} ({a})"
            else:
                n = rnd.randint(1, 250)
                msg = f"connect from pc{n}.lab.example (10.1.{n // 100}.{n})"
            fh.write(f"{bsd(t)} gw {svc}[{pid}]: {msg}\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("seed")
    s.add_argument("outdir", type=Path)
    t = sub.add_parser("tcpd")
    t.add_argument("--lines", type=int, default=1_000_000)
    t.add_argument("out", type=Path)
    a = ap.parse_args()
    rnd = random.Random(1997)
    if a.what == "seed":
        site_imap(a.outdir, rnd)
        site_relay(a.outdir, rnd)
        site_bomb(a.outdir, rnd)
    else:
        tcpd_big(a.out, a.lines, rnd)


if __name__ == "__main__":
    main()
