#!/usr/bin/env python3
"""Generate a large synthetic Postfix maillog from real Postfix log lines.

Real lines (captured from loopback-only Postfix runs) are cut into
"templates": one smtpd session (connect .. disconnect) or one pickup
submission, together with the full queue life of every queue ID it created,
including bounce / double-bounce notifications it spawned.  Each emitted
instance of a template gets
  * new queue IDs (11 upper-case hex chars, as Postfix short IDs),
  * new PIDs (per daemon, recycled the way Postfix processes are),
  * a new client host/IP and new remote MX host/IP (documentation ranges),
  * new numbered local parts and remote domains (consistent inside the
    instance),
  * a new start time, keeping the template's relative line offsets.
Instances are interleaved by time (heap), so lines of concurrent sessions mix
as in a real log.  Output format: traditional syslog ("Mar  1 00:00:01 host
postfix/smtpd[123]: ...") or --ts iso (Debian 12 rsyslog RFC 3339 style).

The mix changes inside an optional "abuse window" (fraction of the time
span) to model an open-relay incident: relayed spam, bounces, double
bounces to postmaster, from a handful of client IPs.

usage:
  biglog.py --lines 1000000 --out bench/_work/big.maillog \
      tests/logs/corpus/closed.maillog tests/logs/corpus/open.maillog
"""

import argparse
import heapq
import random
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

LINE_RE = re.compile(
    r"^(?P<ts>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<prog>[\w.-]+(?:/[\w.-]+)*)\[(?P<pid>\d+)\]: (?P<msg>.*)$"
)
QID_RE = re.compile(r"^([0-9A-F]{8,12}): ")
NOTIF_RE = re.compile(r"notification: ([0-9A-F]{8,12})")
MSGID_TS_RE = re.compile(r"message-id=<\d{14}\.")
NUMBERED_LOCAL_RE = re.compile(
    r"\b(friend|victim|user|gone|slow|x|probe|nosuch|admin|bounceme)(\d+)@"
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# fake remote world: words for domains; documentation IP ranges (RFC 5737)
WORDS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "soylent",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "oscorp",
    "aperture",
    "gringotts",
    "monarch",
    "dundermifflin",
    "pied-piper",
    "prestige",
    "bluth",
]
TLDS = ["example", "example.com", "example.net", "example.org", "test"]
NETS = ["192.0.2.", "198.51.100.", "203.0.113."]
REMOTE_DOMS = [
    "remote.example",
    "other.example",
    "error.example",
    "defer.example",
    "down.example",
    "spam.example",
]


def parse_ts(s):
    return datetime.strptime("2000 " + s, "%Y %b %d %H:%M:%S")


def load_templates(paths):
    recs = []
    for p in paths:
        with open(p, errors="replace") as f:
            for ln in f:
                m = LINE_RE.match(ln.rstrip("\n"))
                if m:
                    recs.append(m.groupdict())
    for i, r in enumerate(recs):
        r["t"] = parse_ts(r["ts"])
        r["i"] = i
    by_qid = defaultdict(list)
    children = defaultdict(set)
    for r in recs:
        m = QID_RE.match(r["msg"])
        if m:
            by_qid[m.group(1)].append(r)
            n = NOTIF_RE.search(r["msg"])
            if n:
                children[m.group(1)].add(n.group(1))

    def closure(qids):
        out, todo = set(), list(qids)
        while todo:
            q = todo.pop()
            if q in out:
                continue
            out.add(q)
            todo.extend(children.get(q, ()))
        return out

    templates = []
    # smtpd sessions
    open_sess = {}
    for r in recs:
        if not r["prog"].endswith("/smtpd"):
            continue
        pid = r["pid"]
        if r["msg"].startswith("connect from "):
            open_sess[pid] = [r]
        elif pid in open_sess:
            open_sess[pid].append(r)
            if r["msg"].startswith("disconnect from "):
                sess = open_sess.pop(pid)
                qids = {QID_RE.match(x["msg"]).group(1) for x in sess if QID_RE.match(x["msg"])}
                lines = list(sess)
                for q in closure(qids):
                    lines.extend(by_qid.get(q, []))
                templates.append(finish(lines))
    # pickup (sendmail) submissions
    for r in recs:
        if r["prog"].endswith("/pickup"):
            q = QID_RE.match(r["msg"]).group(1)
            lines = []
            for q2 in closure({q}):
                lines.extend(by_qid.get(q2, []))
            templates.append(finish(lines))
    return [t for t in templates if t["lines"]]


def finish(lines):
    seen, uniq = set(), []
    for r in sorted(lines, key=lambda x: x["i"]):
        if r["i"] not in seen:
            seen.add(r["i"])
            uniq.append(r)
    t0 = uniq[0]["t"]
    body = " ".join(r["msg"] for r in uniq)
    last = uniq[-1]["msg"]
    if (
        last.startswith("disconnect from ")
        and " rset=" in last
        and " data=" not in last
        and re.search(r" rcpt=[1-9]\d* ", last)
    ):
        kind = "relay_probe_accepted"  # open relay: RCPTs accepted, then RSET
    elif "Relay access denied" in body:
        kind = "relay_denied"
    elif "User unknown in local recipient table" in body:
        kind = "unknown_rcpt"
    elif "postmaster non-delivery notification" in body:
        kind = "relay_bounce_storm"
    elif "status=bounced" in body:
        kind = "bounce"
    elif "status=deferred" in body:
        kind = "deferred"
    elif re.search(r"relay=local,.*status=sent", body) and "client=" in body:
        kind = "inbound_local"
    elif "status=sent" in body:
        kind = "outbound" if "uid=" in body else "relay_sent"
    else:
        kind = "other"
    return {
        "kind": kind,
        "lines": [((r["t"] - t0).total_seconds(), r["prog"], r["pid"], r["msg"]) for r in uniq],
    }


NORMAL_MIX = {
    "inbound_local": 50,
    "outbound": 15,
    "unknown_rcpt": 12,
    "relay_denied": 10,
    "deferred": 5,
    "bounce": 5,
    "other": 1,
    "relay_sent": 0,
    "relay_bounce_storm": 0,
    "relay_probe_accepted": 0,
}
ABUSE_MIX = {
    "inbound_local": 5,
    "outbound": 2,
    "unknown_rcpt": 3,
    "relay_denied": 0,
    "deferred": 10,
    "bounce": 5,
    "other": 0,
    "relay_sent": 20,
    "relay_bounce_storm": 50,
    "relay_probe_accepted": 5,
}


class Gen:
    def __init__(self, a):
        self.rnd = random.Random(a.seed)
        self.a = a
        self.pids = {}
        self.base = datetime.fromisoformat(a.start).replace(tzinfo=UTC)
        self.spammers = [
            (
                f"{self.rnd.choice(['dsl', 'pool', 'ppp', 'dyn'])}-{i}."
                f"{self.rnd.choice(WORDS)}.{self.rnd.choice(TLDS)}",
                self.rnd.choice(NETS) + str(self.rnd.randint(1, 254)),
            )
            for i in range(5)
        ]

    def pid(self, prog):
        # singleton daemons (qmgr, pickup, anvil, ...) keep one pid for long;
        # others come from a pool of live processes, each recycled now and then
        single = prog.endswith(
            ("/qmgr", "/pickup", "/postlogd", "/anvil", "/tlsmgr", "/scache", "/master")
        )
        pool = self.pids.setdefault(prog, [])
        size, churn = (1, 0.0002) if single else (12, 0.01)
        if len(pool) < size:
            pool.append(self.rnd.randint(1000, 65000))
            return pool[-1]
        i = self.rnd.randrange(size)
        if self.rnd.random() < churn:
            pool[i] = self.rnd.randint(1000, 65000)
        return pool[i]

    def qid(self):
        # Postfix short queue ids are derived from time + inode; emulate shape only
        return f"{self.rnd.getrandbits(44):011X}"

    def host(self):
        r = self.rnd
        ip = r.choice(NETS) + str(r.randint(1, 254))
        if r.random() < 0.15:
            return "unknown", ip
        return f"mail{r.randint(1, 99)}.{r.choice(WORDS)}.{r.choice(TLDS)}", ip

    def domain(self):
        r = self.rnd
        return f"{r.choice(WORDS)}{r.randint(1, 999)}.{r.choice(TLDS)}"

    def instance(self, tpl, t0, abuse):
        r = self.rnd
        sub = {}
        for _, _, _, msg in tpl["lines"]:
            m = QID_RE.match(msg)
            if m and m.group(1) not in sub:
                sub[m.group(1)] = self.qid()
            n = NOTIF_RE.search(msg)
            if n and n.group(1) not in sub:
                sub[n.group(1)] = self.qid()
        cname, cip = (
            r.choice(self.spammers) if abuse and tpl["kind"].startswith("relay") else self.host()
        )
        mxname, mxip = self.host()
        dom = {d: self.domain() for d in REMOTE_DOMS}
        nums = {}
        pidmap = {}

        def renum(m):
            k = m.group(0)
            if k not in nums:
                nums[k] = f"{m.group(1)}{r.randint(0, 99999)}@"
            return nums[k]

        out = []
        scale = r.uniform(0.5, 2.0)  # one factor per instance keeps line order
        for dt, prog, pid, msg in tpl["lines"]:
            if (prog, pid) not in pidmap:
                pidmap[(prog, pid)] = self.pid(prog)
            for old, new in sub.items():
                if old in msg:
                    msg = msg.replace(old, new)
            msg = (
                msg.replace("localhost[127.0.0.1]", f"{cname}[{cip}]")
                .replace("127.0.0.1[127.0.0.1]:2526", f"{mxname}[{mxip}]:25")
                .replace("127.0.0.1[127.0.0.1]:2:", f"{mxname}[{mxip}]:25:")
                .replace("127.0.0.1[127.0.0.1]", f"{mxname}[{mxip}]")
            )
            msg = NUMBERED_LOCAL_RE.sub(renum, msg)
            if "message-id=<" in msg:  # Postfix-made ids: <YYYYmmddHHMMSS.QID@host>
                msg = MSGID_TS_RE.sub(
                    "message-id=<"
                    + (self.base + timedelta(seconds=t0 + dt * scale)).strftime("%Y%m%d%H%M%S")
                    + ".",
                    msg,
                )
            for d in REMOTE_DOMS:
                if d in msg:
                    msg = msg.replace(d, dom[d])
            out.append((t0 + dt * scale, prog, pidmap[(prog, pid)], msg))
        return out


def fmt_time(t, base, iso):
    dt = base + timedelta(seconds=t)
    if iso:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
    return f"{MONTHS[dt.month - 1]} {dt.day:2d} {dt:%H:%M:%S}"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("inputs", nargs="+", help="real Postfix maillog files")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--out", default="-")
    ap.add_argument("--seed", type=int, default=1997)
    ap.add_argument("--start", default="2024-03-01T00:00:00")
    ap.add_argument("--span-hours", type=float, default=24.0)
    ap.add_argument("--host", default="mail")
    ap.add_argument("--ts", choices=["syslog", "iso"], default="syslog")
    ap.add_argument(
        "--abuse-window",
        default="0.60:0.75",
        help="fraction start:end of the span with open-relay abuse; '' = none",
    )
    a = ap.parse_args()

    tpls = load_templates(a.inputs)
    by_kind = defaultdict(list)
    for t in tpls:
        by_kind[t["kind"]].append(t)
    print(
        "templates: " + ", ".join(f"{k}={len(v)}" for k, v in sorted(by_kind.items())),
        file=sys.stderr,
    )
    g = Gen(a)
    rnd = g.rnd

    def mean_len(mix):
        ks = [k for k in mix if by_kind.get(k) and mix[k] > 0]
        return sum(
            mix[k] * sum(len(t["lines"]) for t in by_kind[k]) / len(by_kind[k]) for k in ks
        ) / sum(mix[k] for k in ks)

    span = a.span_hours * 3600
    aw, f = None, 0.0
    if a.abuse_window:
        s, e = (float(x) for x in a.abuse_window.split(":"))
        aw, f = (s * span, e * span), e - s
    # calibrate the mean gap between sessions so that --lines fill --span-hours
    ABUSE_RATE = 4.0
    per_gap = (1 - f) * mean_len(NORMAL_MIX) + f * ABUSE_RATE * mean_len(ABUSE_MIX)
    mean_gap = span * per_gap / a.lines
    base = datetime.fromisoformat(a.start).replace(tzinfo=UTC)

    def pick(mix):
        kinds = [k for k in mix if by_kind.get(k) and mix[k] > 0]
        k = rnd.choices(kinds, weights=[mix[k] for k in kinds])[0]
        return rnd.choice(by_kind[k])

    out = sys.stdout if a.out == "-" else open(a.out, "w", buffering=1 << 20)  # noqa: SIM115
    heap, seq, written, t = [], 0, 0, 0.0
    host = a.host
    iso = a.ts == "iso"
    while written < a.lines:
        abuse = aw is not None and aw[0] <= t < aw[1]
        gap = mean_gap / (ABUSE_RATE if abuse else 1.0)
        t += rnd.expovariate(1.0 / gap)
        while heap and heap[0][0] <= t and written < a.lines:
            lt, _, prog, pid, msg = heapq.heappop(heap)
            out.write(f"{fmt_time(lt, base, iso)} {host} {prog}[{pid}]: {msg}\n")
            written += 1
        tpl = pick(ABUSE_MIX if abuse else NORMAL_MIX)
        for lt, prog, pid, msg in g.instance(tpl, t, abuse):
            heapq.heappush(heap, (lt, seq, prog, pid, msg))
            seq += 1
    if out is not sys.stdout:
        out.close()
    print(f"wrote {written} lines, simulated {t / 3600:.2f} h", file=sys.stderr)


if __name__ == "__main__":
    main()
