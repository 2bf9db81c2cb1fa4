"""The tcpdmatch corpus: real verdicts of Debian's tcpdmatch (with a syslog shim), one
directory per case. Rule files that name ``/srv/<file>`` were run with the case
directory mounted on /srv; :func:`materialize` copies a case to a temporary directory and
rewrites ``/srv/`` to that directory, in the rules, in ``/file`` lists and in the
expected output, so the case runs anywhere."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


@dataclass
class Query:
    case: str
    daemon: str
    client: str
    expected: list[str]  # output lines, "[rc=N]" removed
    rc: int

    @property
    def id(self) -> str:
        return f"{self.case}:{self.daemon}:{self.client}"


def cases() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / "queries").exists())


def queries(case: Path) -> list[Query]:
    text = (case / "expected.txt").read_bytes().decode("latin-1")
    out: list[Query] = []
    for block in re.split(r"^\$ tcpdmatch -d ", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        daemon, client = head.split(" ", 1)
        lines = body.split("\n")
        rc_line = next(i for i, line in enumerate(lines) if line.startswith("[rc="))
        rc = int(lines[rc_line][4:-1])
        out.append(Query(case.name, daemon, client.strip(), lines[:rc_line], rc))
    return out


def materialize(case: Path, dest: Path) -> Path:
    """Copy the case to ``dest``, pointing ``/srv/`` at the copy."""
    target = dest / case.name
    shutil.copytree(case, target)
    for f in target.iterdir():
        if f.is_file():
            f.chmod(0o644)
            data = f.read_bytes()
            if b"/srv/" in data and f.name not in ("expected.txt", "tcpdchk.txt"):
                f.write_bytes(data.replace(b"/srv/", str(target).encode() + b"/"))
    return target


def expected_for(query: Query, target: Path) -> list[str]:
    return [line.replace("/srv/", f"{target}/") for line in query.expected]
