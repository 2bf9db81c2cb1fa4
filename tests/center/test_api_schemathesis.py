"""Schemathesis reads /openapi.json and throws generated requests (valid and invalid) at
every API operation: in process (none may get a 5xx), and as its command line does
against the running center with every check it has (``--checks all``: no 5xx, answers
that match the schema, valid data accepted, invalid data refused, ...) as an analyst, a
reporter and with no token."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis import GenerationMode

from tests.web.server import serve
from todokede.center.intake.schema import Report, Triage
from todokede.center.store import Store
from todokede.center.web.app import create_app


def seed(store: Store) -> dict[str, str]:
    """A few reports (ids 1-3) of alice's, an incident, a published month; the tokens of
    an admin, an analyst and alice."""
    tokens = {
        "admin": store.add_user("root", "admin"),
        "analyst": store.add_user("ana", "analyst"),
        "reporter": store.add_user("alice", "reporter"),
    }
    inc = store.add_incident("incident", actor="root")
    for i in range(3):
        sr = store.add_report(Report(methods=["mail_relay"], received="1997-09-19"),
                              owner="alice")  # fmt: skip
        if i == 2:
            store.set_triage(sr.id, Triage(status="triaged", incident_id=inc.id), actor="root")
    store.publish_month("1997-09", actor="root")
    return tokens


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """An SQLite center, seeded, and an admin token (admins may call everything, so
    generated requests reach the deepest code)."""
    store = Store.open(f"sqlite:///{tmp_path / 'center.db'}")
    token = seed(store)["admin"]
    yield store, token
    store.close()


# Enough examples to reach every operation in each of schemathesis' phases (coverage,
# fuzzing, stateful), few enough that the three runs take a couple of minutes; a fixed
# seed, so a failure here is a failure on the next run too.
MAX_EXAMPLES = 10
SEED = 19960808


# The rule the schema cannot state (``st_hooks.py``), for the command line's runs.
ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
HOOKS = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.center.st_hooks", "PYTHONPATH": PYTHONPATH}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["analyst", "reporter", "anonymous"])
def test_every_check_against_the_running_center(tmp_path: Path, role: str) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'center.db'}")
    try:
        tokens = seed(store)
        auth = ["-H", f"Authorization: Bearer {tokens[role]}"] if role in tokens else []
        with serve(create_app(store)) as url:
            run = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                 "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
                 "--request-timeout", "30", "--no-color", *auth],
                cwd=tmp_path, capture_output=True, text=True, timeout=400, env=HOOKS,
            )  # fmt: skip
    finally:
        store.close()
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert " passed" in summary and f"Tested: {len(OPERATIONS)}" in summary, summary


# The operations, read from the app's own OpenAPI document (the store does not matter).
with Store.open("sqlite://") as _probe:
    OPERATIONS = sorted(
        (op.ok().path, op.ok().method.upper())  # type: ignore[union-attr]  # an Err raises
        for op in schemathesis.openapi.from_asgi("/openapi.json", create_app(_probe))
        .include(path_regex="^/api/")
        .get_all_operations()
    )


@pytest.mark.slow
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_server_errors(seeded: tuple[Store, str], path: str, method: str) -> None:
    store, token = seeded
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store))
    operation = schema[path][method]

    # Valid requests and deliberately invalid ones (wrong types, missing fields...).
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        for headers in ({"Authorization": f"Bearer {token}"}, None):
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:500]}"
            )
            if response.status_code >= 400:
                body = response.json()
                assert "error" in body and "field" in body, body

    check()
