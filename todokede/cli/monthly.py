"""``todokede monthly`` (the monthly publication) and ``todokede demo`` (the whole story)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import click
from rich.console import Console

from todokede.errors import ConfigError
from todokede.settings import database_url


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
@click.option("--db", default=None, help="Database URL or SQLite file (default: TODOKEDE_DB).")
def monthly(month: str, lang: str, fmt: str, output: str | None, db: str | None) -> None:
    """Write the monthly publication of MONTH (YYYY-MM).

    The counts of the month's reports, a section for each report of a type different
    from past cases (narrative, figure, notes, countermeasures), the closing paragraph
    and contact, and the attachment: the month's table and the statistics with charts.
    HTML is one self-contained file; PDF uses the system's Japanese fonts; Markdown keeps
    the text and tables (figures as one-line flows, charts left out).

    \b
    Example:
      todokede monthly 1997-09 --lang en --format pdf -o sept.pdf --db todokede-demo/center.db
      todokede monthly 1997-09 --format md -o -
    """
    from todokede.center.monthly import render
    from todokede.center.store import Store

    url = database_url(db)
    # Opening a missing SQLite file would create an empty center and publish "0 reports".
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ConfigError(f"no center database at {url.removeprefix('sqlite:///')}")
    store = Store.open(url)
    try:
        data = render(store, month, lang=lang, fmt=fmt)  # type: ignore[arg-type]
    finally:
        store.close()
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
    from todokede.center.monthly import demo as story

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
