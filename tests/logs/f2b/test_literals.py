"""Needles: what a regex cannot match without. Never a line the regex matches left out."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import need
from todokede.logs import f2b
from todokede.logs.f2b.literals import needles


@pytest.mark.parametrize(
    ("pattern", "want"),
    [
        (r"^Failed \S+ for", {"Failed "}),
        (r"^(Connection (?:closed|reset)|Disconnected) by", {"Connection ", "Disconnected"}),
        (r"^[iI](?:llegal|nvalid) user \S+", {"llegal", "nvalid"}),
        (r"(?P<user>root) LOGIN REFUSED", {" LOGIN REFUSED"}),
        (r"(?:abc)+def", {"abc"}),
        (r"\d+(?:abcdef)?", None),  # nothing certain: the optional part does not count
        (r"(?i)refused connect", None),  # any case: Unicode folds k and s onto others
        (r"ab(?i:refused)c", {"ab"}),
        (r"abc(?=defgh)", {"abc"}),
        (r"(?:abcdef|)cd", {"cd"}),
        (r"error\nnext line", {"next line"}),
        (r"(", None),
    ],
)
def test_needles(pattern: str, want: set[str] | None) -> None:
    assert needles(pattern) == (frozenset(want) if want is not None else None)


@pytest.mark.parametrize("spec", ["sshd", "sshd[mode=aggressive]", "postfix", "dovecot"])
def test_shipped_filters_have_needles_for_each_failregex(spec: str) -> None:
    need(str(f2b.FILTER_DIR / "sshd.conf"))
    flt = f2b.load(spec)
    assert all(rx.needles for rx in flt.failregex)


ATOMS = ["a", "b", "ab", "k", "K", "\\s", ".", "[ab]", "(?:a|b)", "(?:ab|ba)", "\n", "(?i:k)"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ATOMS), st.sampled_from(["", "?", "*", "+", "{2}", "{0,2}"])),
        min_size=1,
        max_size=6,
    ),
    st.text(alphabet="abkK\u212a \n", max_size=12),
)
def test_a_match_has_a_needle(parts: list[tuple[str, str]], text: str) -> None:
    pattern = "".join(atom + rep for atom, rep in parts)
    found = needles(pattern)
    m = re.search(pattern, text)
    if m is not None and found is not None:
        assert any(n in text for n in found), (pattern, text, found)
