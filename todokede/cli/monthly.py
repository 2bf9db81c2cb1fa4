"""``todokede monthly`` (the monthly publication), ``todokede publish`` (preview, publish
and withdraw a month) and ``todokede demo`` (the whole story)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from todokede.cli.options import db_option
from todokede.errors import ConfigError
from todokede.settings import database_url

if TYPE_CHECKING:
    from todokede.center.store import Store


@contextmanager
def _open(db: str | None) -> Iterator[Store]:
    """The center's store; a missing SQLite file is an error, not a new empty center."""
    from todokede.center.store import Store

    url = database_url(db)
    # Opening a missing SQLite file would create an empty center and publish "0 reports".
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ConfigError(f"no center database at {url.removeprefix('sqlite:///')}")
    with Store.open(url) as store:
        yield store


@click.command()
@click.argument("month")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "pdf", "md"]), default="html", show_default=True
)
@click.option(
    "-o",
    "--output",
    default=None,
    help="File to write; '-' for stdout. Default: todokede-YYYY-MM.LANG.FORMAT here.",
)
@click.option(
    "--draft",
    is_flag=True,
    help="Write it from the reports as they are now (marked as a draft if not published).",
)
@db_option
def monthly(
    month: str, lang: str, fmt: str, output: str | None, draft: bool, db: str | None
) -> None:
    """Write the monthly publication of MONTH (YYYY-MM).

    A published month is written as it was published (its current revision: late
    changes do not show until it is published again; the PDF is rendered once and
    kept). Any other month, or with --draft, is written from the reports as they are
    now, marked as a draft unless published.

    The counts of the month's reports, a section for each report of a type different
    from past cases (narrative, figure, notes, countermeasures), the closing paragraph
    and contact, and the attachment: the month's table and the statistics with charts.
    HTML is one self-contained file; PDF uses the system's Japanese fonts; Markdown keeps
    the text and tables (figures as one-line flows, charts left out).

    \b
    Example:
      todokede monthly 1997-09 --lang en --format pdf -o sept.pdf --db todokede-demo/center.db
      todokede monthly 1997-09 --format md -o -
      todokede monthly 1997-10 --draft --format md -o -
    """
    from todokede.center.publication import snapshot
    from todokede.center.publication.monthly import render

    with _open(db) as store:
        frozen = snapshot.current(store, month)
        if frozen is not None and not frozen.revision.withdrawn and not draft:
            data = snapshot.document(store, frozen.revision, lang, fmt)  # type: ignore[arg-type]
        else:
            data = render(store, month, lang=lang, fmt=fmt)  # type: ignore[arg-type]
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(output or f"todokede-{month}.{lang}.{fmt}")
    path.write_bytes(data)
    click.echo(str(path))


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("todokede-demo"),
    show_default=True,
    help="Where the center database and the publications go (its database is replaced).",
)
@click.option("--serve", is_flag=True, help="Then run the center on that data.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve.")
@click.option("--port", default=8000, show_default=True, type=int, help="With --serve.")
def demo(directory: Path, serve: bool, host: str, port: int) -> None:
    """The September 1997 story on bundled data, from raw logs to the publication.

    Creates a fresh SQLite center in DIR, loads the published history (August 1996 to
    August 1997), scans the bundled logs of three sites (refused IMAP attempts in
    tcp_wrapper's log; a mail server relaying SPAM with bounces to root; a 3,200-message
    mail bomb), files and classifies their reports (received 9/17, 9/19, 9/21), publishes
    1997-09 and writes the publication in Japanese and English, HTML, PDF and Markdown.

    \b
    Example:
      todokede demo
      todokede demo --dir /tmp/demo --serve --port 8080
    """
    from todokede import demo as story

    console = Console(stderr=True)
    with console.status("running the demo...") as status:

        def say(message: str) -> None:
            console.print(f"  {message}", highlight=False)
            status.update(message)

        result = story.run(directory, say=say)
    out = Console()
    for path in result.paths:
        out.print(str(path), highlight=False)
    console.print(f"center database: {result.database}", highlight=False)
    if not serve:
        console.print(
            f"next: todokede demo --dir {directory} --serve   (or open the .html file above)",
            highlight=False,
            soft_wrap=True,
        )
        return
    import uvicorn

    from todokede.center.store import Store
    from todokede.center.web.app import create_app

    console.print(
        f"center: http://{host}:{port}/  analyst login: {story.ANALYST} / "
        f"{result.analyst_password}",
        highlight=False,
    )
    store = Store.open(result.database)
    try:
        # stdout holds the publication paths only: the server logs go to stderr.
        logging = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
        logging["handlers"]["access"]["stream"] = "ext://sys.stderr"
        uvicorn.run(create_app(store), host=host, port=port, log_level="info", log_config=logging)
    finally:
        store.close()


@click.group()
def publish() -> None:
    """Publish a closed month: preview it, then confirm; withdraw it; list revisions.

    Publishing freezes what the public sees of the month (its cases, their public text,
    the statistics and the documents) as a new revision; it stays so until the month is
    published again. Only closed months since 1996-08 can be published.

    \b
    Example:
      todokede publish preview 1997-09 --db center.db
      todokede publish confirm 1997-09 3f1c...e9 --actor ana --db center.db
    """


@publish.command("preview")
@click.argument("month")
@db_option
def preview(month: str, db: str | None) -> None:
    """Show what publishing MONTH now would publish, and the digest to confirm it with.

    \b
    Example:
      todokede publish preview 1997-09 --db center.db
    """
    from todokede.center.publication import snapshot

    with _open(db) as store:
        snapshot.check_month(month)
        taken = snapshot.take(store, month)
        now = store.revision(month)
    snap = taken.snapshot
    counted = snap.stats.this.reports
    click.echo(f"{month}: {len(snap.reports)} public cases, {counted.n} counted reports "
               f"(actual damage: {counted.actual} yes, {counted.no} no, "
               f"{counted.unknown} unknown)")  # fmt: skip
    for case in snap.cases:
        click.echo(f"  {case.received}  {case.title}")
    if now is not None:
        state = "withdrawn" if now.withdrawn else "published"
        same = " (the same content)" if now.digest == taken.digest else ""
        click.echo(f"now: revision {now.revision}, {state}{same}")
    number = (now.revision if now else 0) + 1
    click.echo(f"publish it as revision {number}: todokede publish confirm {month} {taken.digest}")


@publish.command("confirm")
@click.argument("month")
@click.argument("digest")
@click.option("--actor", default="admin", show_default=True, help="Who publishes (for the audit).")
@db_option
def confirm(month: str, digest: str, actor: str, db: str | None) -> None:
    """Publish MONTH as its next revision, if it is still what the preview (DIGEST) showed.

    \b
    Example:
      todokede publish confirm 1997-09 3f1c...e9 --actor ana
    """
    with _open(db) as store:
        rev = store.publish_month(month, actor=actor, digest=digest)
    click.echo(f"{month}: revision {rev.revision} published")


@publish.command("withdraw")
@click.argument("month")
@click.option("--reason", default=None, help="Shown publicly with the withdrawal notice.")
@click.option("--actor", default="admin", show_default=True, help="Who withdraws (for the audit).")
@db_option
def withdraw(month: str, reason: str | None, actor: str, db: str | None) -> None:
    """Withdraw the publication of MONTH: its public pages show a withdrawal notice.

    \b
    Example:
      todokede publish withdraw 1997-09 --reason "counted twice; a corrected edition follows"
    """
    with _open(db) as store:
        rev = store.withdraw_month(month, actor=actor, reason=reason)
    click.echo(f"{month}: revision {rev.revision} withdrawn")


@publish.command("list")
@db_option
def list_revisions(db: str | None) -> None:
    """List every revision of every published month (tab-separated).

    \b
    Example:
      todokede publish list --db center.db
    """
    with _open(db) as store:
        for r in store.revisions():
            state = f"withdrawn {r.withdrawn_at:%Y-%m-%d}" if r.withdrawn_at else "published"
            click.echo(f"{r.month}\t{r.revision}\t{r.published_at:%Y-%m-%d}\t"
                       f"{r.published_by}\t{state}")  # fmt: skip
