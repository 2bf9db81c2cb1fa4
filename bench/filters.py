#!/usr/bin/env python3
"""todokede scan with fail2ban filters against fail2ban-regex, printing ratios.

    .venv/bin/python bench/filters.py [--lines 1000000] [--runs 1] [--aggressive]

Makes (once) in bench/_work/ a Debian auth.log with bench/authlog.py (OpenSSH 7 to 9,
cron, systemd-logind, sudo; most lines no failure; a few thousand attacking addresses),
then runs `todokede scan --json --filter sshd` and `fail2ban-regex --usedns=no` with the
same filter from /etc/fail2ban/filter.d (and `sshd[mode=aggressive]` with --aggressive),
and prints each one's lines per second, by wall time and by CPU second, the ratios, and
the failures each found (they must be the same).
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import authlog  # noqa: E402

WORK = HERE / "_work"
TODOKEDE = [sys.executable, "-m", "todokede"]
FILTERS = Path("/etc/fail2ban/filter.d")
F2B_MATCHED = re.compile(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", re.MULTILINE)


def timed(cmd: list[str], runs: int) -> tuple[float, float, str]:
    """The best wall time of ``runs`` runs, its CPU seconds (the command and its
    children), and what it printed."""
    best: tuple[float, float, str] | None = None
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wall = time.perf_counter() - start
        after = os.times()
        if done.returncode:
            raise SystemExit(f"{cmd[0]} failed with {done.returncode}: {' '.join(cmd)}")
        cpu = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        if best is None or wall < best[0]:
            best = (wall, cpu, done.stdout)
    assert best is not None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1, help="best of N runs for each command")
    ap.add_argument("--aggressive", action="store_true", help="also sshd[mode=aggressive]")
    a = ap.parse_args()
    if not shutil.which("fail2ban-regex") or not (FILTERS / "sshd.conf").exists():
        raise SystemExit("fail2ban is not installed (run scripts/peers as root)")
    WORK.mkdir(exist_ok=True)
    log = WORK / f"auth-{a.lines}.log"
    if not log.exists():
        print(f"making {log.name} ...", file=sys.stderr)
        authlog.write(log, a.lines)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"auth.log: {log.name} ({log.stat().st_size / 1e6:.0f} MB, {a.lines} lines)")
    for spec in ("sshd", "sshd[mode=aggressive]") if a.aggressive else ("sshd",):
        ours = timed(
            [*TODOKEDE, "scan", "--json", "--year", "2024", "--filter", spec, str(log)], a.runs
        )
        target = spec.replace("sshd", str(FILTERS / "sshd.conf"), 1)
        peer = timed(["fail2ban-regex", "--usedns=no", str(log), target], a.runs)
        # the filter's findings (the built-in parsers' own findings of failed logins
        # are there too)
        found = [json.loads(line) for line in ours[2].splitlines()]
        mine = sum(f["count"] for f in found if f["details"].get("filter"))
        m = F2B_MATCHED.search(peer[2])
        theirs = int(m.group(1)) if m else -1
        note = ""
        if mine != theirs:
            # the summary's "matched" counts lines (in aggressive mode a failure without
            # its address yet is one too); --out fid prints each failure
            fids = subprocess.run(
                ["fail2ban-regex", "--usedns=no", "--out", "fid", str(log), target],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            note = f" (--out fid; its summary says {theirs} matched lines)"
            theirs = len(fids.splitlines())
        for name, (wall, cpu, _) in (("todokede scan", ours), ("fail2ban-regex", peer)):
            print(
                f"  {name:15} --filter {spec}: {wall:7.1f} s wall {cpu:7.1f} s CPU"
                f"  {a.lines / wall:9.0f} lines/s  {a.lines / cpu:9.0f} lines per CPU second"
            )
        print(
            f"  todokede's lines per second, times fail2ban-regex's: wall {peer[0] / ours[0]:.1f}"
            f"   CPU {peer[1] / ours[1]:.1f}   failures: {mine} / {theirs}{note}"
        )


if __name__ == "__main__":
    main()
