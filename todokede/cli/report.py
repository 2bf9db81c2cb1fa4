"""``todokede report``: draft a report from scan findings, submit a report to a center."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from todokede import settings
from todokede.errors import ConfigError, ReportError

if TYPE_CHECKING:
    from todokede.center.intake.schema import Report

# pydantic (the report extra) is imported by the commands that use it: without it `report
# --help` still works, and running one says what to install


@click.group()
def report() -> None:
    """Draft and submit reports of unauthorized access.

    \b
    Example:
      todokede scan --json /var/log/messages > findings.jsonl
      todokede report draft --from-scan findings.jsonl -o report.json
      TODOKEDE_TOKEN=... todokede report submit report.json --center https://center.example
    """


def read_findings(path: str) -> list[dict[str, Any]]:
    """The findings of a ``scan --json`` file ('-': stdin), one JSON object a line."""
    text = sys.stdin.read() if path == "-" else _read_text(path)
    return [finding for _, finding in _numbered(text, path)]


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", source=path) from None
    except UnicodeDecodeError:
        raise ReportError("not UTF-8 text", source=path) from None


def _numbered(text: str, path: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"not JSON: {exc.msg}", source=path, line=n) from None
        if not isinstance(value, dict):
            raise ReportError("a finding must be a JSON object", source=path, line=n)
        out.append((n, value))
    return out


@report.command()
@click.option(
    "--from-scan",
    "findings",
    required=True,
    metavar="FINDINGS.jsonl",
    help="Output of `todokede scan --json` ('-' for stdin).",
)
@click.option("-o", "--output", default="-", show_default=True, help="Report file ('-': stdout).")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
def draft(findings: str, output: str, lang: str) -> None:
    """Draft the report a site would file from its scan findings.

    The draft (JSON, the center's Report model) holds the methods, damage, target
    services, period, attempt counts and the findings as evidence; add the reporter's
    details (reporter.*) before submitting.

    \b
    Example:
      todokede report draft --from-scan findings.jsonl -o report.json
    """
    from todokede.center.intake.draft import draft_from_findings

    text = sys.stdin.read() if findings == "-" else _read_text(findings)
    numbered = _numbered(text, findings)
    try:
        drafted = draft_from_findings([f for _, f in numbered], lang=lang)  # type: ignore[arg-type]
    except ReportError as exc:
        # "finding 3" -> the line of the third finding in the file
        m = re.fullmatch(r"finding (\d+)", exc.source or "")
        line = numbered[int(m.group(1)) - 1][0] if m else None
        raise ReportError(exc.message, source=findings, line=line, field=exc.field) from None
    text = drafted.model_dump_json(indent=2, exclude_none=True) + "\n"
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(output, err=True)


def load_reports(path: str) -> list[Report]:
    """The reports in a JSON (one Report) or IODEF v2 file ('-': stdin)."""
    from pydantic import ValidationError

    from todokede.center.intake.schema import Report

    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", source=path) from None
    if data.lstrip().startswith(b"<"):
        # lxml comes with the center extra; without it the command line says what to install
        from todokede.center.exchange.iodef import from_iodef

        return from_iodef(data)
    try:
        return [Report.model_validate_json(data)]
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or None
        raise ReportError(str(err.get("msg", "invalid")), source=path, field=where) from None


@report.command()
@click.argument("file")
@click.option("--center", required=True, help="The center's base URL, e.g. http://127.0.0.1:8000")
@click.option("--idempotency-key", default=None, help="Makes a retry return the first report.")
def submit(file: str, center: str, idempotency_key: str | None) -> None:
    """Submit FILE (a report as JSON, or IODEF v2 XML) to a center.

    The API token comes from TODOKEDE_TOKEN (see `todokede user add`). Prints the id and
    URL the center gave each report. A received date in FILE (an IODEF ReportTime) is
    left out, with a note: the center dates a report by its arrival.

    \b
    Example:
      TODOKEDE_TOKEN=... todokede report submit report.json --center http://127.0.0.1:8000
    """
    from todokede.center.intake.submit import submit_report

    token = settings.api_token()
    if not token:
        raise ConfigError("set TODOKEDE_TOKEN to your API token (from `todokede user add`)")
    for n, one in enumerate(load_reports(file), 1):
        if one.received is not None:
            # The center dates a report by its arrival; it refuses a date sent along.
            click.echo(f"{file}: received {one.received} left out: the center sets it", err=True)
            one = one.model_copy(update={"received": None})
        key = f"{idempotency_key}#{n}" if idempotency_key else None
        answer = submit_report(center, token, one, idempotency_key=key)
        click.echo(f"report {answer.get('id')} {answer.get('status', '')} {answer.get('url', '')}")
