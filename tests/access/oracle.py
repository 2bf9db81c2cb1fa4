"""Debian's real tcpdmatch as a test oracle.

Debian builds libwrap with _FORTIFY_SOURCE, so its syslog() calls become __syslog_chk()
and tcpdmatch's own redirect to stdout misses them: plain tcpdmatch prints no
``matched:``, ``option:`` or ``warning:`` lines. ``fakesyslog.c`` (compiled here with gcc,
loaded with LD_PRELOAD) prints them. tcpdmatch runs in a private mount namespace
(``unshare -m``, needs root) with the case's ``etc-hosts`` bind-mounted over /etc/hosts --
the only name source offline -- and with the case directory as its working directory
(tcpdmatch -d reads ./hosts.allow and ./hosts.deny).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import need, need_root

HERE = Path(__file__).parent
SEP = "@@@ query done rc="

_SCRIPT = r"""
set -e
shim=$1 dir=$2; shift 2
if [ -f "$dir/etc-hosts" ]; then mount --bind "$dir/etc-hosts" /etc/hosts; fi
cd "$dir"
set +e
while [ $# -gt 0 ]; do
  LD_PRELOAD="$shim" timeout 20 tcpdmatch -d "$1" "$2" 2>&1 |
    grep -v "no such process name in (null)$"
  echo "@@@ query done rc=${PIPESTATUS[0]}"
  shift 2
done
"""


class Oracle:
    def __init__(self, workdir: Path) -> None:
        need("tcpdmatch", "gcc", "unshare", "mount", "timeout")
        need_root()
        workdir.mkdir(parents=True, exist_ok=True)
        self.shim = workdir / "fakesyslog.so"
        if not self.shim.exists():
            subprocess.run(
                [
                    "gcc",
                    "-shared",
                    "-fPIC",
                    "-O2",
                    "-o",
                    str(self.shim),
                    str(HERE / "fakesyslog.c"),
                ],
                check=True,
                timeout=60,
            )
        self.bash = shutil.which("bash") or "/bin/bash"

    def run(self, case_dir: Path, queries: list[tuple[str, str]]) -> list[tuple[list[str], int]]:
        """tcpdmatch's output lines and exit status for each (daemon, client) query."""
        args: list[str] = []
        for daemon, client in queries:
            args += [daemon, client]
        proc = subprocess.run(
            ["unshare", "-m", self.bash, "-c", _SCRIPT, "x", str(self.shim), str(case_dir), *args],
            capture_output=True,
            timeout=30 + 5 * len(queries),
        )
        text = proc.stdout.decode("latin-1")
        if proc.returncode != 0 and SEP not in text:
            raise RuntimeError(f"oracle failed: {proc.stderr.decode(errors='replace')}")
        results: list[tuple[list[str], int]] = []
        rest = text
        for _ in queries:
            body, _, rest = rest.partition(SEP)
            rc_text, _, rest = rest.partition("\n")
            lines = body.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if lines and lines[0] == "":
                lines.pop(0)
            results.append((lines, int(rc_text or "-1")))
        return results
