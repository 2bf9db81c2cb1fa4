"""``todokede export`` (IODEF v2, STIX 2.1, CSV) and ``todokede center ingest-mail``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from todokede import settings
from todokede.cli.options import db_option
from todokede.errors import ConfigError, InputError, StoreError

if TYPE_CHECKING:
    from todokede.center.intake.schema import StoredReport
    from todokede.center.store import Store

EX_TEMPFAIL = 75  # sysexits.h: the MTA defers and retries


def _month_range(month: str) -> tuple[date, date]:
    from todokede.center.months import Month

    return Month.parse(month, field="--month").days()


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["iodef", "stix", "csv"]),
    required=True,
    help="IODEF v2 (RFC 7970) XML, a STIX 2.1 bundle, or CSV.",
)
@click.option("--month", metavar="YYYY-MM", help="Only reports received in this month.")
@db_option
@click.option(
    "--personal",
    is_flag=True,
    help=(
        "Include personal data and the reporter's own text (TLP:RED). Recorded in the "
        "audit log. Without it the export is for partner centers (TLP:AMBER)."
    ),
)
@click.option(
    "--published",
    is_flag=True,
    help=(
        "Only the reports the month's publication lists (its current revision; needs "
        "--month): what the public page, the public API and the publication list."
    ),
)
@click.option("--actor", default="admin", show_default=True, help="Who exports (for the audit).")
@click.option("--lang", type=click.Choice(["ja", "en"]), help="CSV: headings and labels.")
@click.option("--bom", is_flag=True, help="CSV: start with a UTF-8 BOM (for Excel).")
@click.option("--domain", help="The center's domain for ids (default: TODOKEDE_DOMAIN).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
def export(
    fmt: str,
    month: str | None,
    db: str | None,
    personal: bool,
    published: bool,
    actor: str,
    lang: str | None,
    bom: bool,
    domain: str | None,
    output: Path | None,
) -> None:
    """Export reports as IODEF v2, STIX 2.1 or CSV.

    Without --personal the export is for partner centers, marked TLP:AMBER: codes, dates,
    counts, source addresses, target services as codes and the public text, nothing the
    reporter wrote. --personal adds the reporter's contact details, text and evidence
    (TLP:RED); such an export is written to the audit log.

    \b
    Example:
      todokede export --format iodef --month 1997-09 -o 1997-09.xml
      todokede export --format csv --lang ja --bom --month 1997-09 -o 1997-09.csv
      todokede export --format csv --published --month 1997-09 -o published.csv
      todokede export --format stix --db center.db > bundle.json
    """
    from todokede.center.store import Store

    if published and not month:
        raise InputError("--published needs --month YYYY-MM", field="--published")
    start, end = _month_range(month) if month else (None, None)
    with Store.open(settings.database_url(db)) as store:
        if personal:
            store.audit("export-personal", actor=actor, detail=f"{fmt} {month or 'all'}")
        reports: Iterable[StoredReport] = store.iter_reports(
            received_from=start, received_before=end
        )
        if published:
            reports = _published(store, month, reports)
        if fmt == "csv":
            from todokede.center.exchange.csvout import iter_csv

            # CSV streams: any number of reports in bounded memory.
            chunks: Iterable[bytes] = iter_csv(
                reports,
                lang=lang,  # type: ignore[arg-type]
                personal=personal,
                bom=bom,
            )
        elif fmt == "iodef":
            from todokede.center.exchange.iodef import to_iodef

            chunks = [to_iodef(list(reports), personal=personal, domain=domain)]
        else:
            from todokede.center.exchange.stix import to_stix

            chunks = [to_stix(list(reports), personal=personal, domain=domain)]
        _write(chunks, output)


def _published(
    store: Store, month: str | None, reports: Iterable[StoredReport]
) -> list[StoredReport]:
    """The reports the current revision of ``month`` lists, in its order (NotFound if the
    month is not published)."""
    from todokede.center.publication import snapshot

    listed = [r.id for r in snapshot.published(store, str(month)).snapshot.reports]
    by_id = {sr.id: sr for sr in reports if sr.id in set(listed)}
    return [by_id[id] for id in listed if id in by_id]


def _write(chunks: Iterable[bytes], output: Path | None) -> None:
    if output is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return
    try:
        with output.open("wb") as fh:
            size = sum(fh.write(chunk) for chunk in chunks)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"{size} bytes written to {output}", err=True)


@click.group()
def center() -> None:
    """Center operations: take in reports by e-mail.

    \b
    Example:
      todokede center ingest-mail ~/Maildir
      todokede center ingest-mail --smtp 127.0.0.1:2525
      # /etc/aliases:  reports: "|todokede center ingest-mail - --db /srv/center.db"
    """


@center.command("ingest-mail")
@click.argument("mailbox", required=False, type=click.Path(path_type=Path, allow_dash=True))
@click.option(
    "--smtp", "listen", metavar="HOST:PORT", help="Listen for SMTP (loopback if no host)."
)
@db_option
@click.option("--hostname", default="todokede.invalid", show_default=True, help="SMTP: our name.")
@click.option("--max-size", type=click.IntRange(1024), help="SMTP: largest message in bytes.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message read.")
def ingest_mail(
    mailbox: Path | None,
    listen: str | None,
    db: str | None,
    hostname: str,
    max_size: int | None,
    as_json: bool,
) -> None:
    """Turn reports sent by e-mail into reports awaiting triage.

    Reads a Maildir or an mbox file (which is not changed), one message on standard input
    ('-', for an MTA's pipe alias), or listens for SMTP. Each
    message becomes a report: IPA's text form (key: value lines, Japanese or English),
    free text, or an attached IODEF document; the original message is kept with it. A
    message that cannot be read becomes a report marked for manual triage. Reading the
    same mailbox again stores nothing twice.

    \b
    Example:
      todokede center ingest-mail /var/mail/todokede
      todokede center ingest-mail ~/Maildir --db center.db --json
      todokede center ingest-mail --smtp 127.0.0.1:2525
      # /etc/aliases:  reports: "|todokede center ingest-mail - --db /srv/center.db"
    """
    from todokede.center.intake import mailin
    from todokede.center.store import Store

    if (mailbox is None) == (listen is None):
        raise click.UsageError("give either a MAILDIR/MBOX or --smtp HOST:PORT")

    def show(result: mailin.Ingested) -> None:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "message": result.key,
                        "reports": list(result.report_ids),
                        "kind": result.kind,
                        "manual_triage": result.manual,
                    }
                )
            )
        else:
            ids = ", ".join(str(i) for i in result.report_ids)
            flag = " (manual triage)" if result.manual else ""
            click.echo(f"{result.key}: report {ids} [{result.kind}]{flag}")

    if mailbox == Path("-"):
        _ingest_stdin(db, show)
        return
    with Store.open(settings.database_url(db)) as store:
        if mailbox is not None:
            results = mailin.ingest(store, mailin.read_mailbox(mailbox), progress=show)
            manual = sum(r.manual for r in results)
            reports = sum(len(r.report_ids) for r in results)
            click.echo(
                f"{len(results)} messages, {reports} reports, {manual} for manual triage",
                err=True,
            )
            return
        _serve_smtp(store, listen or "", hostname, max_size, show)


def _ingest_stdin(db: str | None, show: Callable[[Any], None]) -> None:
    """One message from standard input, as an MTA's pipe delivery gives it. A store that
    cannot be reached exits with EX_TEMPFAIL (75), so the MTA keeps the mail and retries."""
    from todokede.center.intake import mailin
    from todokede.center.store import Store

    raw = sys.stdin.buffer.read(mailin.MAX_MESSAGE + 1)
    try:
        with Store.open(settings.database_url(db)) as store:
            show(mailin.ingest_message(store, raw, key="-"))
    except StoreError as exc:
        click.echo(f"todokede: error: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)


def _serve_smtp(
    store: Store,
    listen: str,
    hostname: str,
    max_size: int | None,
    show: object,
) -> None:
    from todokede.center.intake import mailin
    from todokede.center.intake.smtpin import Envelope, SMTPIntake, parse_listen

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise InputError(str(exc), field="--smtp") from None

    def deliver(raw: bytes, env: Envelope) -> str:
        result = mailin.ingest_message(store, raw, key=f"smtp:{env.peer}")
        if callable(show):
            show(result)
        return "report " + ", ".join(str(i) for i in result.report_ids)

    intake = SMTPIntake(
        deliver,
        host=host,
        port=port,
        hostname=hostname,
        max_size=max_size or mailin.MAX_MESSAGE,
    )

    async def main() -> None:
        try:
            await intake.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        click.echo(f"listening for reports by e-mail on {host}:{intake.port}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()  # the server accepts connections meanwhile
        finally:
            await intake.close()
        click.echo("stopped", err=True)

    asyncio.run(main())
