#!/usr/bin/env python3
"""todokede scan with fail2ban filters against fail2ban-regex, printing ratios.

    .venv/bin/python bench/filters.py [--lines 200000] [--runs 1]

Makes (once) in bench/_work/ an sshd log in Debian's auth.log form (failed passwords,
invalid users, PAM failures, accepted keys and closed connections from 250 hosts), then
runs `todokede scan --json --filter sshd` and `fail2ban-regex --usedns=no` with the same
filter from /etc/fail2ban/filter.d, and the same with `sshd[mode=aggressive]`. Both find
the same failures (compare the counts printed); there is no speed goal beyond keeping up
with fail2ban: with a filter every line takes todokede's general path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan import TODOKEDE, WORK, measure, row

MESSAGES = (
    "Failed password for invalid user {u} from 198.51.100.{n} port 5{n} ssh2",
    "Accepted publickey for root from 192.0.2.{n} port 4{n} ssh2",
    "Connection closed by 203.0.113.{n} port 22 [preauth]",
    "Invalid user {u} from 198.51.100.{n} port 3{n}",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=198.51.100.{n}  user=root",
)
FILTERS = Path("/etc/fail2ban/filter.d")


def make_log(lines: int) -> Path:
    WORK.mkdir(exist_ok=True)
    path = WORK / f"sshd-{lines}.log"
    if not path.exists():
        rnd = random.Random(1997)
        with open(path, "w", encoding="ascii") as out:
            for i in range(lines):
                s, m, h = i % 60, (i // 60) % 60, (i // 3600) % 24
                msg = rnd.choice(MESSAGES).format(u=f"user{i % 50}", n=i % 250)
                out.write(f"Mar  1 {h:02d}:{m:02d}:{s:02d} host sshd[{1000 + i % 5000}]: {msg}\n")
    return path


def counts(spec: str, log: Path) -> tuple[int, int]:
    """Failures found by todokede and by fail2ban-regex (one more run of each)."""
    ours = subprocess.run(
        [*TODOKEDE, "scan", "--json", "--year", "2024", "--filter", spec, str(log)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mine = sum(json.loads(line)["count"] for line in ours.splitlines())
    peer = subprocess.run(
        [
            "fail2ban-regex",
            "--usedns=no",
            str(log),
            spec.replace("sshd", str(FILTERS / "sshd.conf"), 1),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", peer, re.MULTILINE)
    return mine, int(m.group(1)) if m else -1


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=1, help="best of N runs for each command")
    a = ap.parse_args()
    if not shutil.which("fail2ban-regex") or not (FILTERS / "sshd.conf").exists():
        raise SystemExit("fail2ban is not installed (run scripts/peers as root)")
    log = make_log(a.lines)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"\nsshd log: {log.name} ({log.stat().st_size / 1e6:.0f} MB, {a.lines} lines)")
    for spec in ("sshd", "sshd[mode=aggressive]"):
        ours = measure(
            [*TODOKEDE, "scan", "--json", "--year", "2024", "--filter", spec, str(log)], a.runs
        )
        row(f"todokede scan --filter {spec}", ours, a.lines)
        target = spec.replace("sshd", str(FILTERS / "sshd.conf"), 1)
        peer = measure(["fail2ban-regex", "--usedns=no", str(log), target], a.runs)
        row(f"fail2ban-regex {spec}", peer, a.lines)
        mine, theirs = counts(spec, log)
        print(
            f"  wall: todokede/fail2ban-regex = {ours.wall / peer.wall:.2f}"
            f"   cpu: {ours.cpu / peer.cpu:.2f}   failures: {mine} / {theirs}"
        )


if __name__ == "__main__":
    main()
