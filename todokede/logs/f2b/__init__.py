"""fail2ban filters, applied as fail2ban applies them.

:func:`load` reads a filter (``sshd``, ``sshd[mode=aggressive]``, ``/path/to/NAME.conf``)
into a :class:`Compiled` filter; a :class:`Matcher` runs it over lines, keeping what fail2ban
keeps between lines (the date detector's choices, the multi-line buffer, connections by
``<F-MLFID>``), and returns :class:`Failure` values.
"""

from __future__ import annotations

from pathlib import Path

from todokede.logs.f2b.filters import FILTER_DIR, compile_definition, locate, read
from todokede.logs.f2b.matcher import Compiled, Failure, Matcher, canonical_host

__all__ = ["FILTER_DIR", "Compiled", "Failure", "Matcher", "canonical_host", "load"]


def load(
    spec: str | Path, dirs: list[Path] | None = None, logtype: str | None = "file"
) -> Compiled:
    """A filter by name or path, with options in brackets (ConfigError when fail2ban
    would not take it). ``logtype``: "file" for log files, "journal" for journal entries,
    as a jail's backend sets it; None leaves the filter's own default."""
    base, opts = locate(str(spec), dirs)
    return compile_definition(read(base, opts, logtype))
