"""The address index on its own: ranges found by bisection agree with a plain scan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.access.index import NetIndex, canonical4, chain_match, key_nets, plain6
from todokede.access.patterns import Key

_FULL = 0xFFFFFFFF


@st.composite
def networks(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(lo, hi, position) of CIDR networks around a few bases, so that they nest."""
    out = []
    for pos in range(draw(st.integers(0, 40))):
        base = draw(st.sampled_from([0x0A000000, 0x0A010200, 0xC0A80000, 0x7F000001]))
        bits = draw(st.integers(0, 32))
        free = (1 << (32 - bits)) - 1
        lo = (base + draw(st.integers(0, 600))) & (_FULL ^ free)
        out.append((lo, lo | free, pos))
    return out


@settings(max_examples=300)
@given(ranges=networks(), final=st.sets(st.integers(0, 40)), points=st.lists(st.integers()))
def test_find_is_a_scan_cut_at_the_first_final(
    ranges: list[tuple[int, int, int]], final: set[int], points: list[int]
) -> None:
    index = NetIndex(ranges, final)
    probes = [p & _FULL for p in points] + [r[0] for r in ranges] + [r[1] for r in ranges]
    probes += [r[1] + 1 for r in ranges] + [r[0] - 1 for r in ranges]
    for point in probes:
        every = sorted({pos for lo, hi, pos in ranges if lo <= point <= hi})
        for i, pos in enumerate(every):
            if pos in final:
                every = every[: i + 1]
                break
        assert list(index.find(point)) == every, point


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10.1.2.3", 0x0A010203),
        ("0.0.0.0", 0),
        ("255.255.255.255", None),  # inet_addr() cannot tell it from an error
        ("010.1.2.3", None),  # not plain: libwrap's string and octal views differ
        ("10.1.2", None),
        ("::ffff:10.1.2.3", None),
        (" 10.1.2.3", None),
        ("10.1.2.3\0", None),
    ],
)
def test_canonical4(text: str, value: int | None) -> None:
    assert canonical4(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("::1", 1),
        ("2001:db8::5", 0x20010DB8 << 96 | 5),
        ("::ffff:1.2.3.4", None),
        ("fe80::1%lo", None),
    ],
)
def test_plain6(text: str, value: int | None) -> None:
    assert plain6(text) == value


@pytest.mark.parametrize(
    ("segments", "addr", "matches"),
    [
        ([[("p", "10.1.")], [("p", "10.1.2.")]], "10.1.2.3", False),
        ([[("p", "10.1.")], [("p", "10.1.2.")]], "10.1.3.3", True),
        ([[("*",)], [("m", 0xFF000000, 0x0A000000)], [("a", "10.0.0.1")]], "10.0.0.1", True),
        ([[("*",)], [("m", 0xFF000000, 0x0A000000)], [("a", "10.0.0.1")]], "10.0.0.2", False),
        ([[("a", "010.0.0.1")]], "8.0.0.1", False),  # compared as text, not as a value
        ([[("x",)], [("*",)]], "10.0.0.1", False),
    ],
)
def test_chain_match(segments: list[list[Key]], addr: str, matches: bool) -> None:
    chain = []
    for seg in segments:
        nets = key_nets(seg, six=False)
        assert nets is not None
        chain.append(nets)
    value = canonical4(addr)
    assert value is not None
    assert chain_match(chain, 0, value) == matches


def test_key_nets_refuses_what_it_cannot_decide() -> None:
    assert key_nets([("s", ".7")], six=False) is None
    assert key_nets([("n", "host.example")], six=False) is None
    assert key_nets([None], six=False) is None
    assert key_nets([("m", 0xFF000000, 0x0A000000)], six=True) == []
