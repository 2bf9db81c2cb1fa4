"""Relay battery benchmark: todokede's full battery beside nmap's smtp-open-relay script,
against the same real Postfix on loopback (closed relay by default), in one run.

    .venv/bin/python bench/probe.py            # closed Postfix
    .venv/bin/python bench/probe.py --mode open --runs 3

Needs postfix (and nmap for the comparison); runs as root like the test suite.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realservers import postfix
from todokede.probes.relay import probe_relay


def run_nmap(host: str, port: int, domain: str) -> tuple[float, int, str]:
    started = time.monotonic()
    out = subprocess.run(
        ["nmap", "-n", "-Pn", "-p", str(port), "--script", "+smtp-open-relay",
         "--script-args", f"smtp-open-relay.domain={domain}", host],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    elapsed = time.monotonic() - started
    m = re.search(r"smtp-open-relay: (.*)", out)
    verdict = m.group(1).strip() if m else "no verdict"
    return elapsed, 16, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--domain", default="example.com")
    args = parser.parse_args()
    console = Console()
    if not shutil.which("postfix"):
        sys.exit("postfix is not installed (scripts/peers)")
    have_nmap = shutil.which("nmap") is not None
    table = Table(title=f"relay battery vs {args.mode} Postfix")
    for column in ("tool", "run", "tests", "seconds", "tests/s", "verdict"):
        table.add_column(column)
    ours_t: list[float] = []
    nmap_t: list[float] = []
    tests = 0
    with tempfile.TemporaryDirectory() as tmp, postfix(Path(tmp), args.mode) as server:
        for run in range(1, args.runs + 1):
            with console.status(f"todokede, run {run}"):
                started = time.monotonic()
                result = probe_relay(server.host, server.port, to_domain=args.domain)
                elapsed = time.monotonic() - started
            tests = len(result.tests)
            ours_t.append(elapsed)
            table.add_row("todokede", str(run), str(tests), f"{elapsed:.3f}",
                          f"{tests / elapsed:.0f}", result.verdict)  # fmt: skip
            if have_nmap:
                with console.status(f"nmap smtp-open-relay, run {run}"):
                    n_elapsed, n_tests, verdict = run_nmap(server.host, server.port, args.domain)
                nmap_t.append(n_elapsed)
                table.add_row("nmap", str(run), str(n_tests), f"{n_elapsed:.3f}",
                              f"{n_tests / n_elapsed:.1f}", verdict)  # fmt: skip
    console.print(table)
    best_ours = min(ours_t)
    console.print(f"todokede: {tests} tests, best {best_ours:.3f} s")
    if nmap_t:
        best_nmap = min(nmap_t)
        console.print(f"nmap:     16 tests, best {best_nmap:.3f} s")
        console.print(
            f"ratios: {tests / 16:.2f}x the tests in {best_ours / best_nmap:.4f}x the time "
            f"({best_nmap / best_ours:.0f}x faster; "
            f"{(tests / best_ours) / (16 / best_nmap):.0f}x the tests per second)"
        )
    else:
        console.print("nmap is not installed: no comparison")


if __name__ == "__main__":
    main()
