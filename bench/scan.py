#!/usr/bin/env python3
"""todokede scan against its peers on 1,000,000-line logs, printing ratios.

    .venv/bin/python bench/scan.py [--lines 1000000] [--runs 1]

Makes (once) in bench/_work/: a Postfix log cut from the real lines in tests/logs/corpus
(bench/biglog.py), the same lines with the RFC 3339 stamps Debian's rsyslog writes
(``2024-03-01T00:00:01.000017+09:00``), a busy tcpd syslog (bench/genlogs.py) and a 1997
mail host's syslog (bench/mailhost.py: a quarter sendmail, tcpd-wrapped daemons, named,
cron, the kernel). Then runs, one after another:

  Postfix log, BSD and RFC 3339 stamps:
               todokede scan --json   vs  pflogsumm            (goal: <= 1/10 wall, <= 1/2 memory)
               grep -cE of the patterns todokede looks for      (the floor)
  tcpd log and mail host log:
               todokede scan --json   vs  fail2ban-regex --usedns=no with an equivalent filter
                                                                (goal: >= 30x lines per second)
               grep -cE 'connect from'                          (the floor)

On the mail host log the refused connections todokede reports and those fail2ban-regex
matches are both counted against the generator's count. The RFC 3339 run's findings are
compared with the BSD run's (all but the evidence lines, which are the lines as written).

The package's bytecode is compiled first, as pip compiles it when it installs the package
(and Debian compiles fail2ban's). Wall time is measured around the process, best of --runs
runs; peak memory is the largest sum of the proportional set sizes (PSS: pages a forked
child shares with its parent count once) of the process and all its children, sampled
every few milliseconds in one more run (sampling costs CPU, so it is not done while
timing); CPU is user+sys of the whole tree ("cores" = CPU/wall: above 1 means more than
one core was used). On a busy machine wall
times say more about the neighbours than about the programs: compare the CPU times too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work"
CORPUS = ROOT / "tests" / "logs" / "corpus"
TODOKEDE = [sys.executable, "-m", "todokede"]

TCPD_FILTER = """\
[INCLUDES]
before = common.conf
[Definition]
_daemon = \\S+
failregex = ^%(__prefix_line)srefused connect from \\S+(?: \\(<HOST>\\))?$
ignoreregex =
"""
POSTFIX_PATTERNS = r"client=|: from=<|: to=<|reject: RCPT|non-delivery notification"


@dataclass
class Run:
    wall: float
    cpu: float
    peak_kb: int


def _pss_kb(pid: int) -> int:
    """Proportional set size: a forked child's pages shared with its parent count once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def tree_rss_kb(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += _pss_kb(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def _run(cmd: list[str], sample: bool) -> tuple[float, float, int]:
    """One run: wall, CPU of the process tree, and (when ``sample``) its peak PSS in kB."""
    start = time.perf_counter()
    # a real file, not /dev/null: GNU grep stops at the first match when it sees /dev/null
    with open(WORK / "out.txt", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        peak = 0
        if sample:
            while True:
                done, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if done:
                    break
                peak = max(peak, tree_rss_kb(proc.pid))
                time.sleep(0.003)
        else:
            _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # grep -c says 1 for no match
        raise SystemExit(f"{cmd[0]} failed with {code}: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, peak or usage.ru_maxrss


def measure(cmd: list[str], runs: int) -> Run:
    """Time and CPU from runs left alone (the best of ``runs``), memory from one more run
    sampled every few milliseconds: reading /proc of a big process tree takes CPU of its
    own, which on a small machine would slow a program that uses every core more than one
    that uses one."""
    best: tuple[float, float, int] | None = None
    for _ in range(runs):
        run = _run(cmd, sample=False)
        if best is None or run[0] < best[0]:
            best = run
    assert best is not None
    return Run(best[0], best[1], _run(cmd, sample=True)[2])


def restamp(src: Path, dst: Path, year: int) -> None:
    """The same lines with RFC 3339 stamps for their BSD ones (as ``--year`` reads them),
    each with a fraction and the +09:00 offset the framer drops."""
    from todokede.detect import year_rule
    from todokede.logs.syslog import Framer

    framer = Framer(year_rule(src, year))
    with open(src, "rb") as fh, open(dst, "wb", buffering=1 << 20) as out:
        for n, line in enumerate(fh):
            ts = framer.bsd_time(line[:15])
            if ts is None:
                out.write(line)
                continue
            t = time.gmtime(ts)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{n % 1000000:06d}+09:00"
            out.write(stamp.encode() + line[15:])


def make_logs(lines: int) -> tuple[Path, Path, Path, Path, int]:
    WORK.mkdir(exist_ok=True)
    postfix = WORK / f"postfix-{lines}.maillog"
    iso = WORK / f"postfix-{lines}-rfc3339.maillog"
    tcpd = WORK / f"tcpd-{lines}.log"
    host = WORK / f"mailhost-{lines}.log"
    if not postfix.exists():
        print(f"making {postfix.name} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "biglog.py"),
                "--lines",
                str(lines),
                "--seed",
                "1997",
                "--out",
                str(postfix),
                str(CORPUS / "closed.maillog"),
                str(CORPUS / "open.maillog"),
            ],
            check=True,
        )
    if not tcpd.exists():
        print(f"making {tcpd.name} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(HERE / "genlogs.py"), "tcpd", "--lines", str(lines), str(tcpd)],
            check=True,
        )
    if not iso.exists():
        print(f"making {iso.name} ...", file=sys.stderr)
        restamp(postfix, iso, 2024)
    count = host.with_suffix(".refused")
    if not host.exists() or not count.exists():
        print(f"making {host.name} ...", file=sys.stderr)
        made = subprocess.run(
            [sys.executable, str(HERE / "mailhost.py"), "--lines", str(lines), str(host)],
            check=True,
            capture_output=True,
            text=True,
        )
        count.write_text(made.stdout.split()[0])
    return postfix, iso, tcpd, host, int(count.read_text())


def refused_reported() -> int:
    """Refused connections in todokede's last output (bench/_work/out.txt)."""
    total = 0
    for line in (WORK / "out.txt").read_text().splitlines():
        f = json.loads(line)
        if f["kind"] == "access-probe" and f["outcome"] == "refused":
            total += f["count"]
    return total


def findings_but_evidence() -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (WORK / "out.txt").read_text().splitlines()]
    for row in rows:
        row.pop("evidence")
    return rows


def row(name: str, r: Run, lines: int) -> None:
    print(
        f"  {name:<34} {r.wall:8.2f} s {r.cpu:7.2f} s cpu {r.cpu / r.wall:5.2f} cores "
        f"{r.peak_kb / 1024:8.1f} MB "
        f"{lines / r.wall / 1000:9.0f} k lines/s"
    )


def postfix_run(log: Path, runs: int, lines: int) -> list[dict[str, object]]:
    print(f"\nPostfix log: {log.name} ({log.stat().st_size / 1e6:.0f} MB, {lines} lines)")
    ours = measure([*TODOKEDE, "scan", "--json", "--year", "2024", str(log)], runs)
    found = findings_but_evidence()
    row("todokede scan --json", ours, lines)
    floor = measure(["grep", "-cE", POSTFIX_PATTERNS, str(log)], runs)
    row("grep -cE (patterns)", floor, lines)
    if shutil.which("pflogsumm"):
        peer = measure(["pflogsumm", str(log)], runs)
        row("pflogsumm", peer, lines)
        print(
            f"  wall: todokede/pflogsumm = {ours.wall / peer.wall:.3f} (goal <= 0.100)"
            f"   memory: {ours.peak_kb / peer.peak_kb:.3f} (goal <= 0.500)"
            f"   cpu time: {ours.cpu / peer.cpu:.3f}"
        )
    else:
        print("  pflogsumm not installed: skipped (run scripts/peers as root)")
    print(f"  todokede/grep wall = {ours.wall / floor.wall:.1f}x the floor")
    return found


def tcpd_run(log: Path, year: int, runs: int, lines: int, refused: int | None) -> None:
    print(f"\n{log.name} ({log.stat().st_size / 1e6:.0f} MB, {lines} lines)")
    ours = measure([*TODOKEDE, "scan", "--json", "--year", str(year), str(log)], runs)
    row("todokede scan --json", ours, lines)
    if refused is not None:
        print(f"  refused connections: {refused_reported()} reported of {refused} in the log")
    floor = measure(["grep", "-cE", "connect from", str(log)], runs)
    row("grep -cE 'connect from'", floor, lines)
    common = Path("/etc/fail2ban/filter.d/common.conf")
    if shutil.which("fail2ban-regex") and common.exists():
        shutil.copy(common, WORK / "common.conf")
        (WORK / "tcpd-refused.conf").write_text(TCPD_FILTER)
        peer = measure(
            ["fail2ban-regex", "--usedns=no", str(log), str(WORK / "tcpd-refused.conf")], runs
        )
        row("fail2ban-regex --usedns=no", peer, lines)
        if refused is not None:
            matched = re.search(r"Failregex: (\d+) total", (WORK / "out.txt").read_text())
            print(f"  fail2ban-regex matched {matched.group(1) if matched else '?'} of {refused}")
        print(
            f"  lines/s: todokede/fail2ban-regex = {peer.wall / ours.wall:.1f}x (goal >= 30)"
            f"   per cpu second: {peer.cpu / ours.cpu:.1f}x"
        )
    else:
        print("  fail2ban-regex not installed: skipped (run scripts/peers as root)")
    print(f"  todokede/grep wall = {ours.wall / floor.wall:.1f}x the floor")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1, help="best of N runs for each command")
    a = ap.parse_args()
    postfix, iso, tcpd, host, refused = make_logs(a.lines)
    # bytecode written once, as pip writes it when it installs the package (and Debian for
    # fail2ban): with PYTHONDONTWRITEBYTECODE set, every run would compile every module
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "todokede")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    bsd = postfix_run(postfix, a.runs, a.lines)
    same = postfix_run(iso, a.runs, a.lines) == bsd
    print(f"  findings of the RFC 3339 log (but the evidence) the BSD log's: {same}")
    tcpd_run(tcpd, 2024, a.runs, a.lines, None)
    tcpd_run(host, 1997, a.runs, a.lines, refused)


if __name__ == "__main__":
    main()
