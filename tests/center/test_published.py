"""What a published month contains, read through every public channel: the public month
page (its JSON twin), the public API, the Markdown publication and the CSV export list
the same reports, for each of the demo's months (the bundled history and September 1997),
and none lists a report no analyst has accepted."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from todokede import demo
from todokede.center.intake.schema import Report, Triage
from todokede.center.publication import published
from todokede.center.publication.monthly.formats import _md_cell
from todokede.center.store import Store
from todokede.cli import cli

pytestmark = pytest.mark.slow

# Reports of September 1997 that no publication may list: nobody has reviewed the first,
# the analyst rejected the second.
UNACCEPTED = (
    (Report(received=date(1997, 9, 25), methods=["dos"], title="UNREVIEWED"), Triage()),
    (
        Report(received=date(1997, 9, 26), methods=["dos"], title="REJECTED"),
        Triage(status="rejected"),
    ),
)


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str, Any]]:
    """The demo's center (history, the three sites' reports, 1997-09 published), built
    in-process, with two reports of 1997-09 no analyst accepted."""
    url = f"sqlite:///{tmp_path_factory.mktemp('published') / 'center.db'}"
    store = Store.open(url)
    demo.load_history(store)
    for site in demo.SITES:
        demo.file_site(store, site, demo.scan_site(site))
    for report, triage in UNACCEPTED:
        store.add_report(report, owner="late", triage=triage)
    store.publish_month(demo.MONTH, actor=demo.ANALYST, today=date(1997, 10, 1))
    from todokede.center.web.app import create_app

    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield store, url, client
    store.close()


def demo_months() -> list[str]:
    import json

    history = json.loads((demo.samples() / "history.json").read_text(encoding="utf-8"))
    return [*history["published"], demo.MONTH]


def md_rows(text: str) -> list[tuple[str, str]]:
    """(day, summary) of each row of the Markdown publication's table of the month."""
    head = re.search(
        r"^\| [^|]+ \| [^|]+ \| [^|]+ \| [^|]+ \|\n\|---\|---\|---\|---\|\n", text, re.M
    )
    assert head is not None
    rows = []
    for line in text[head.end() :].splitlines():
        if not line.startswith("| "):
            break
        day, summary = line.split(" | ")[:2]
        rows.append((day[2:], summary.removesuffix(r" \*")))
    return rows


def csv_ids(url: str, month: str) -> list[int]:
    args = ["export", "--format", "csv", "--published", "--month", month, "--db", url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout_bytes.decode())))
    return [int(row["id"]) for row in table]


@pytest.mark.parametrize("month", demo_months())
def test_every_public_channel_lists_the_same_reports(
    center: tuple[Store, str, Any], month: str
) -> None:
    store, url, client = center
    api = client.get(f"/api/public/months/{month}")
    assert api.status_code == 200
    reports = api.json()["reports"]
    ids = [r["id"] for r in reports]
    assert ids, "every month of the demo lists reports"
    # The one definition, asked directly: what the month's publication lists.
    assert ids == [r.id for r in published.contents(store, month)]

    page = client.get(f"/published/{month}.json")
    assert page.status_code == 200 and page.headers["content-type"] == "application/json"
    assert [r["id"] for r in page.json()["reports"]] == ids
    assert [c["title"] for c in page.json()["cases"]] == [r["title"] for r in reports]
    by_accept = client.get(f"/published/{month}", headers={"Accept": "application/json"})
    assert by_accept.json() == page.json()

    md = client.get(f"/published/{month}/report.md?lang=ja")
    assert md.status_code == 200
    expected = []
    for r in reports:
        received = date.fromisoformat(r["received"])
        expected.append((f"{received.month}/{received.day}", _md_cell(r["title"])))
    assert md_rows(md.text) == expected

    assert csv_ids(url, month) == ids


def test_reports_no_analyst_accepted_are_in_no_channel(center: tuple[Store, str, Any]) -> None:
    store, url, client = center
    month = demo.MONTH
    stored = {sr.report.title: sr.id for sr in store.iter_reports() if sr.owner == "late"}
    assert set(stored) == {"UNREVIEWED", "REJECTED"}
    listed = [r["id"] for r in client.get(f"/api/public/months/{month}").json()["reports"]]
    assert not set(stored.values()) & set(listed)
    assert not set(stored.values()) & set(csv_ids(url, month))
    # The statistics count the unreviewed one (a count says nothing of a report); the
    # publication says so under its table.
    md = client.get(f"/published/{month}/report.md?lang=en").text
    assert "1 more reports are not listed" in md


def test_export_published_needs_a_published_month(center: tuple[Store, str, Any]) -> None:
    _, url, _ = center
    result = CliRunner().invoke(cli, ["export", "--format", "csv", "--published", "--db", url])
    assert result.exit_code != 0 and "--published needs --month" in result.output
    args = ["export", "--format", "csv", "--published", "--month", "1997-10", "--db", url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "1997-10 is not published" in result.output
