"""The demo: the September 1997 story from raw logs to the monthly publication.

1. a fresh SQLite center in the demo directory;
2. the bundled history (August 1996 to August 1997) loaded as published months;
3. the bundled logs of three sites scanned (``todokede.detect.scan_paths``);
4. each site's report drafted from its findings (``draft_from_findings``) and completed
   with the site's reporter data, received on 9/17, 9/19 and 9/21;
5. each classified by the analyst (the site's triage: codes and the edited narrative,
   whose numbers are filled in from the findings);
6. 1997-09 published, and written in Japanese and English as HTML, PDF and Markdown.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todokede.center.intake.draft import draft_from_findings
from todokede.center.intake.schema import Report, Reporter, StoredReport, Triage
from todokede.center.publication.monthly import FORMATS, LANGS
from todokede.errors import TodokedeError

if TYPE_CHECKING:
    from todokede.center.store import Store

MONTH = "1997-09"
SITES = ("site-imap", "site-relay", "site-bomb")
ANALYST = "analyst"


@dataclass
class DemoResult:
    directory: Path
    database: str
    reports: list[StoredReport]
    findings: dict[str, list[dict[str, Any]]]
    paths: list[Path] = field(default_factory=list)
    analyst_password: str = ""


def samples() -> Path:
    """The bundled sample data (inside the installed package)."""
    return Path(str(resources.files("todokede") / "samples"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_history(store: Store, path: Path | None = None) -> int:
    """Load the bundled history of published reports; returns how many were loaded."""
    doc = _load(path or samples() / "history.json")
    for item in doc["reports"]:
        report = Report(
            language="ja",
            title=item["title"],
            received=date.fromisoformat(item["received"]),
            reporter=Reporter(type=item.get("reporter_type")),
            methods=item["methods"],
            damage=item["damage"],
            causes=item.get("causes", []),
            actual_damage=item["actual_damage"],
            targets=item.get("targets", []),
            attempts=item.get("attempts"),
        )
        triage = Triage(
            status="published",
            is_test=bool(item.get("is_test", False)),
            published_title=item["title"],
            published_title_en=item.get("title_en"),
        )
        store.add_report(report, owner="history", triage=triage)
    for month in doc["published"]:
        store.publish_month(month, actor=ANALYST, today=date(1997, 10, 1))
    return len(doc["reports"])


def _log_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def scan_site(site: str) -> list[dict[str, Any]]:
    """Scan one site's bundled logs; the findings as ``scan --json`` objects."""
    from todokede.detect import scan_paths  # the scan engine; heavy imports stay lazy

    spec = _load(samples() / "sites" / f"{site}.json")
    logs = samples() / "logs" / MONTH / spec["logs"]
    files = _log_files(logs)
    if not files:
        raise TodokedeError(f"no bundled logs for {site} in {logs}")
    result = scan_paths(files, year=int(MONTH[:4]))
    return [f.to_dict() for f in result.findings]


def _values(report: Report, findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers the analyst's text refers to, taken from the data."""
    bounce = 0
    for f in findings:
        if f.get("kind") == "bounce-storm":
            details = f.get("details") or {}
            for key in ("bytes", "total_bytes", "size"):
                value = details.get(key)
                if isinstance(value, int):
                    bounce += value
                    break
    return {
        "attempts": report.attempts or 0,
        "sources": len(report.sources),
        "bounce_mb": round(bounce / 1_000_000),
    }


def _fill(template: str | None, values: Mapping[str, Any]) -> str | None:
    return template.format(**values) if template else template


def file_site(store: Store, site: str, findings: list[dict[str, Any]]) -> StoredReport:
    """Draft, complete, store and classify the report of one site."""
    spec = _load(samples() / "sites" / f"{site}.json")
    drafted = draft_from_findings(findings, lang="ja")
    extra = spec["report"]
    body = drafted.model_dump()
    body.update(
        received=spec["received"],
        reporter=extra["reporter"],
        systems=extra.get("systems", []),
        network=extra.get("network"),
        countermeasures=extra.get("countermeasures"),
    )
    report = Report.model_validate(body)
    stored: StoredReport = store.add_report(report, owner=site)
    values = _values(report, findings)
    raw = dict(spec["triage"])
    for key in (
        "published_title",
        "published_title_en",
        "published_narrative",
        "published_narrative_en",
    ):
        raw[key] = _fill(raw.get(key), values)
    classified: StoredReport = store.set_triage(
        stored.id, Triage.model_validate(raw), actor=ANALYST
    )
    return classified


def output_name(lang: str, fmt: str) -> str:
    return f"todokede-{MONTH}.{lang}.{fmt}"


def run(directory: Path, *, say: Callable[[str], None] = lambda _m: None) -> DemoResult:
    """The whole story into ``directory`` (its old center database is replaced)."""
    from todokede.center.publication.snapshot import document
    from todokede.center.store import Store

    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "center.db"
    for old in (db, db.with_name("center.db-wal"), db.with_name("center.db-shm")):
        old.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    store = Store.open(url)
    try:
        n = load_history(store)
        say(f"history: {n} reports, August 1996 to August 1997, published")
        result = DemoResult(directory, url, [], {})
        for site in SITES:
            findings = scan_site(site)
            result.findings[site] = findings
            kinds = ", ".join(sorted({str(f.get("kind")) for f in findings})) or "nothing"
            say(f"{site}: scanned, {len(findings)} finding(s): {kinds}")
            stored = file_site(store, site, findings)
            result.reports.append(stored)
            say(f"{site}: report #{stored.id} received {stored.report.received}, classified")
        revision = store.publish_month(MONTH, actor=ANALYST, today=date(1997, 10, 1))
        result.analyst_password = secrets.token_urlsafe(12)
        store.add_user(ANALYST, "analyst", result.analyst_password)
        for lang in LANGS:
            for fmt in FORMATS:
                path = directory / output_name(lang, fmt)
                # As published: the documents of the revision just frozen.
                path.write_bytes(document(store, revision, lang, fmt))  # type: ignore[arg-type]
                result.paths.append(path)
                say(f"wrote {path.name}")
        return result
    finally:
        store.close()
