"""``todokede serve`` and ``todokede user``: run the reporting center, manage its users."""

from __future__ import annotations

import os

import click

from todokede.settings import database_url

DB_HELP = "Database URL or SQLite file (default: $TODOKEDE_DB, else ./todokede.db)."


@click.command()
@click.option("--db", "db", metavar="URL", help=DB_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes (they share the database; use PostgreSQL for many).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(db: str | None, host: str, port: int, workers: int, log_level: str) -> None:
    """Run the reporting center: JSON API under /api (OpenAPI at /openapi.json) and the
    web pages. The schema is created or upgraded on start.

    \b
    Example:
      todokede user add ipa-analyst --role analyst
      todokede serve --db todokede.db --port 8000
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/reports
    """
    import uvicorn

    from todokede.center.store import Store

    url = database_url(db)
    store = Store.open(url)  # migrate once, in this process, before any worker starts
    click.echo(f"todokede center on http://{host}:{port}/ ({store.dialect})", err=True)
    if workers == 1:
        from todokede.center.web.app import create_app

        uvicorn.run(create_app(store), host=host, port=port, log_level=log_level)
        return
    store.close()
    os.environ["TODOKEDE_DB"] = url
    uvicorn.run(
        "todokede.center.web.app:from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


@click.group()
def user() -> None:
    """Manage the center's users (reporter, analyst, admin).

    \b
    Example:
      todokede user add alice --role reporter
    """


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["reporter", "analyst", "admin"]),
    help="reporter: submits, sees its own reports; analyst: triages all; admin: also users.",
)
@click.option(
    "--password",
    is_flag=True,
    help="Also set a password for the web pages (asked for, not echoed).",
)
@click.option("--db", "db", metavar="URL", help=DB_HELP)
def add(name: str, role: str, password: bool, db: str | None) -> None:
    """Create a user and print its API token (the last line; shown only this once).

    \b
    Example:
      TOKEN=$(todokede user add alice --role reporter | tail -n 1)
      todokede user add ana --role analyst --password
    """
    from todokede.center.store import Store

    secret = None
    if password:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    with Store.open(database_url(db)) as store:
        token = store.add_user(name, role, secret)
    click.echo(f"user {name} ({role}) created; API token:", err=True)
    click.echo(token)


@user.command("token")
@click.argument("name")
@click.option("--db", "db", metavar="URL", help=DB_HELP)
def token(name: str, db: str | None) -> None:
    """Print another API token for an existing user.

    \b
    Example:
      todokede user token alice
    """
    from todokede.center.store import Store

    with Store.open(database_url(db)) as store:
        click.echo(store.new_token(name))


@user.command("list")
@click.option("--db", "db", metavar="URL", help=DB_HELP)
def list_users(db: str | None) -> None:
    """List users and their roles.

    \b
    Example:
      todokede user list --db todokede.db
    """
    from todokede.center.store import Store

    with Store.open(database_url(db)) as store:
        for u in store.list_users():
            click.echo(f"{u.name}\t{u.role}")
