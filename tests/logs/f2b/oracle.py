"""fail2ban itself as the oracle: a script run by the system's Python, which has
Debian's fail2ban package, with JSON arguments in and JSON out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

SYSTEM_PYTHON = Path("/usr/bin/python3")
PACKAGE = Path("/usr/lib/python3/dist-packages/fail2ban")


def fail2ban(script: str, *args: object) -> Any:
    """What ``script`` prints (JSON), given ``args`` as JSON in ``sys.argv[1:]``; the test
    is skipped when fail2ban is not installed."""
    if not (SYSTEM_PYTHON.exists() and PACKAGE.is_dir()):
        pytest.skip("fail2ban is not installed (run scripts/peers as root)")
    out = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", script, *(json.dumps(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)
