"""100% agreement with Debian's tcpdmatch on the hand-made corpus: every query's full
output (client/server lines, warnings, matched file:line, options, banners, verdict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.access.corpus import Query, cases, expected_for, materialize, queries
from todokede.access import HostsFileResolver, Rules, predict
from todokede.access.query import render
from todokede.errors import InputError

ALL = [q for case in cases() for q in queries(case)]


def test_corpus_is_complete() -> None:
    assert len(cases()) == 22
    assert len(ALL) >= 200


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Rules]]:
    root = tmp_path_factory.mktemp("corpus")
    out = {}
    for case in cases():
        target = materialize(case, root)
        out[case.name] = (
            target,
            Rules.load(target, resolver=HostsFileResolver(target / "etc-hosts")),
        )
    return out


@pytest.mark.parametrize("query", ALL, ids=[q.id for q in ALL])
def test_query_matches_tcpdmatch(query: Query, loaded: dict[str, tuple[Path, Rules]]) -> None:
    target, rules = loaded[query.case]
    expected = expected_for(query, target)
    if query.rc != 0:
        with pytest.raises(InputError):
            predict(rules, query.daemon, query.client)
        return
    predictions = predict(rules, query.daemon, query.client)
    assert render(predictions) == expected
    # the structured view says the same
    shown = [
        line.rstrip() for line in expected if line.startswith(("matched:", "option:", "access:"))
    ]
    structured = []
    for p in predictions:
        d = p.decision
        if d.matched:
            structured.append(f"matched:  {d.matched.file} line {d.matched.line}")
        structured += [f"option:   {o}" for o in d.options]
        structured.append(f"access:   {d.access}")
    assert structured == shown
