"""Needles: what a regex cannot match without. Never a line the regex matches left out."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import need
from todokede.logs import f2b
from todokede.logs.f2b.literals import firsts, needles, prefix


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


@pytest.mark.parametrize(
    ("pattern", "flags", "want"),
    [
        (r"^Failed \S+ for", 0, "Failed "),
        (r"^(?P<nofail>Received (?P<mlfforget>disconnect)) from", 0, "Received disconnect from"),
        (r"^(?P<user>ROOT) LOGIN", 0, "ROOT LOGIN"),
        (r"^pam_[a-z]+\(", 0, "pam_"),
        (r"^(?:ab)?c", 0, ""),  # an optional part ends it
        (r"^a(?:b|c)d", 0, "a"),
        (r"^(?i:ab)c", 0, ""),  # any case: no literal
        (r"(?i)^abc", 0, ""),
        (r"^abc", re.MULTILINE, ""),  # a later line may start the match
        (r"(?m)^abc", 0, ""),
        (r"abc", 0, ""),  # not anchored: anywhere
        (r"^ab|cd", 0, ""),  # a branch without the anchor
        (r"^ab|^ac", 0, "a"),  # the anchor and "a" shared by both branches
        (r"(", 0, ""),
    ],
)
def test_prefix(pattern: str, flags: int, want: str) -> None:
    assert prefix(pattern, flags) == want


@pytest.mark.parametrize(
    ("pattern", "want"),
    [
        (r"^[aA]uthentication", "aA"),
        (r"^(?P<n>(?P<f>(Connection (?:closed|reset)|Disconnected)))", "CD"),
        (r"^[a-c]x", "abc"),
        (r"^Failed", "F"),
        (r"^(?:x)?y", None),  # the first item may match nothing
        (r"^[^a]", None),
        (r"^\d", None),
        (r"^(?:a|)b", None),
        (r"^(?i:a)", None),
        (r"a", None),  # not anchored
        (r"^$", None),
    ],
)
def test_firsts(pattern: str, want: str | None) -> None:
    assert firsts(pattern) == (frozenset(want) if want is not None else None)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [*ATOMS, "^", "$", "(?P<g>ab)", "(?:ab|ac)", "[a-c]", "(?:a|kb)", "()", "(?:a|)"]
            ),
            st.sampled_from(["", "?", "*", "+", "{2}", "{0,2}"]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.text(alphabet="abckK\u212a \n", max_size=12),
)
def test_a_match_begins_with_the_prefix_and_one_of_the_firsts(
    parts: list[tuple[str, str]], text: str
) -> None:
    # a text not beginning so is one the regex cannot match
    pattern = "^" + "".join(atom + rep for atom, rep in parts)
    try:
        compiled = re.compile(pattern)
    except re.error:
        return
    if compiled.search(text) is not None:
        assert text.startswith(prefix(pattern)), (pattern, text)
        found = firsts(pattern)
        assert found is None or text[:1] in found, (pattern, text, found)
