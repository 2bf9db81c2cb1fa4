"""Real Postfix instances shared by the tests of one module (starting one takes ~1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.realservers import PostfixServer, postfix


@pytest.fixture(scope="module")
def closed_postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostfixServer]:
    with postfix(tmp_path_factory.mktemp("pf-closed"), "closed") as server:
        yield server


@pytest.fixture(scope="module")
def open_postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostfixServer]:
    with postfix(tmp_path_factory.mktemp("pf-open"), "open") as server:
        yield server
