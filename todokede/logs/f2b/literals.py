"""The text a regex cannot match without: literals taken from its parsed form.

A regex's *needles* are a few strings of which every text it matches contains at least
one (``Failed `` for ``^Failed \\S+ for``; ``Connection `` or ``Disconnected`` for
``(Connection closed|Disconnected) by``). A line containing none of them is passed over
without running the regex: the answer is the same, and finding strings is much cheaper.

Only what the regex requires counts: a literal in an optional part, in one branch of an
alternation only, or in a lookaround is left out, and so is any letter matched without
regard to case (Unicode folds ``k`` and ``s`` onto other letters), so the needles never
exclude a line the regex would match. A regex with nothing certain has no needles (None).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# the parser behind re (sre_parse, which warns that it is going away, is the same module)
_parser: Any = importlib.import_module("re._parser")
C: Any = importlib.import_module("re._constants")

Clause = frozenset[str]  # a text contains at least one of these


def needles(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """The best clause of ``pattern`` (the one whose shortest literal is longest), or None
    when nothing is certain (or the pattern does not parse)."""
    try:
        parsed = _parser.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError):
        return None
    clauses = _clauses(list(parsed), parsed.state.flags)
    return max(clauses, key=_score) if clauses else None


def prefix(pattern: str, flags: int = 0) -> str:
    """The text every match of ``pattern`` begins with at the start of the text, when it
    can match only there (it begins with ``^`` and reads one line: no MULTILINE), else "".
    A text that does not begin so cannot match: ``str.startswith`` says so at once."""
    if flags & (re.MULTILINE | re.IGNORECASE):
        return ""
    try:
        parsed = _parser.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError):
        return ""
    if parsed.state.flags & (re.MULTILINE | re.IGNORECASE):
        return ""
    items = list(parsed)
    if not items or items[0] != (C.AT, C.AT_BEGINNING):
        return ""
    out: list[str] = []
    _lead(items[1:], out)
    return "".join(out)


def firsts(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """The characters a text must begin with for ``pattern`` to match it, when it can
    match only at the start (as for :func:`prefix`) and its first item says (a literal, a
    set of literals and ranges, a group or alternatives of such); else None."""
    if flags & (re.MULTILINE | re.IGNORECASE):
        return None
    try:
        parsed = _parser.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError):
        return None
    if parsed.state.flags & (re.MULTILINE | re.IGNORECASE):
        return None
    items = list(parsed)
    if not items or items[0] != (C.AT, C.AT_BEGINNING):
        return None
    return _first(items[1:])


def _first(items: list[tuple[object, Any]]) -> frozenset[str] | None:
    if not items:
        return None
    op, av = items[0]
    if op is C.LITERAL:
        return frozenset(chr(av))
    if op is C.IN:
        out: set[str] = set()
        for kind, value in av:
            if kind is C.LITERAL:
                out.add(chr(value))
            elif kind is C.RANGE and value[1] - value[0] < 256:
                out.update(chr(c) for c in range(value[0], value[1] + 1))
            else:  # a negated set, a category (\d, \w): too many to list
                return None
        return frozenset(out)
    if op is C.SUBPATTERN and not int(av[1]) & re.IGNORECASE:
        return _first(list(av[3]))
    if op is C.BRANCH:
        found = [_first(list(alt)) for alt in av[1]]
        if all(f is not None for f in found):
            return frozenset().union(*found)  # type: ignore[arg-type]
    return None


def _lead(items: list[tuple[object, Any]], out: list[str]) -> bool:
    """Adds the literals ``items`` begin with to ``out``, into groups; True when the items
    are all literal (what follows them is then part of the prefix too)."""
    for op, av in items:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.SUBPATTERN and not int(av[1]) & re.IGNORECASE:
            if not _lead(list(av[3]), out):
                return False
        else:
            return False
    return True


def _score(clause: Clause) -> tuple[int, int]:
    # spaces are in most lines: " user " finds more lines than "nvalid" does
    return min(len(s.strip()) for s in clause), -len(clause)


def _clauses(items: list[tuple[object, Any]], flags: int) -> list[Clause]:
    out: list[Clause] = []
    run: list[str] = []

    def flush() -> None:
        # a newline is left out: the text matched ends with one the line does not have
        out.extend(frozenset({part}) for part in "".join(run).split("\n") if part)
        run.clear()

    for op, av in items:
        if op is C.LITERAL and not flags & re.IGNORECASE:
            run.append(chr(av))
            continue
        flush()
        out.extend(_inner(op, av, flags))
    flush()
    return out


def _inner(op: object, av: Any, flags: int) -> list[Clause]:
    """The clauses of one item other than a literal."""
    if op is C.SUBPATTERN:
        _, add, remove, sub = av
        return _clauses(list(sub), (flags | int(add)) & ~int(remove))
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        low, _, sub = av
        return _clauses(list(sub), flags) if int(low) >= 1 else []
    if op is C.ATOMIC_GROUP:
        return _clauses(list(av), flags)
    if op is C.BRANCH:
        best = [_clauses(list(alt), flags) for alt in av[1]]
        if all(best):
            return [frozenset().union(*(max(b, key=_score) for b in best))]
    return []
