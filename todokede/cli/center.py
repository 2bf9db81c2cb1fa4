"""``todokede serve`` and ``todokede user``: run the reporting center, manage its users."""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

import click

from todokede import settings
from todokede.cli.options import db_option
from todokede.settings import database_url


@click.command()
@db_option
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
    settings.share_database_url(url)
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
    """Manage the center's users (reporter, analyst, admin) and cut off access: every
    change takes effect on the user's next request and is audited.

    \b
    Example:
      todokede user add alice --role reporter
      todokede user revoke-token alice
      todokede user disable alice
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
@db_option
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
@db_option
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
@db_option
def list_users(db: str | None) -> None:
    """List users, their roles and whether they are enabled.

    \b
    Example:
      todokede user list --db todokede.db
    """
    from todokede.center.store import Store

    with Store.open(database_url(db)) as store:
        for u in store.list_users():
            click.echo(f"{u.name}\t{u.role}\t{'enabled' if u.enabled else 'disabled'}")


def operator() -> str:
    """Who the audit log names for a change made here: the system account running it."""
    try:
        return "cli:" + getpass.getuser()
    except (OSError, KeyError):
        return "cli"


@user.command("revoke-token")
@click.argument("name")
@click.option(
    "--token-from",
    "token_file",
    type=click.File("r"),
    metavar="FILE",
    help="Revoke only the token in FILE ('-': standard input), not all of the user's.",
)
@db_option
def revoke_token(name: str, token_file: TextIO | None, db: str | None) -> None:
    """Revoke a user's API tokens: every one, or the one given with --token-from.
    A request with a revoked token gets 401 at once, in every web process. Audited.

    \b
    Example:
      todokede user revoke-token alice
      echo "$LEAKED" | todokede user revoke-token alice --token-from -
    """
    from todokede.center.store import Store

    token = token_file.read().strip() if token_file is not None else None
    if token_file is not None and not token:
        raise click.BadParameter("no token in the file", param_hint="--token-from")
    with Store.open(database_url(db)) as store:
        n = store.revoke_tokens(name, token, actor=operator())
    click.echo(f"{n} token{'s' if n != 1 else ''} of {name} revoked")


@user.command("disable")
@click.argument("name")
@db_option
def disable(name: str, db: str | None) -> None:
    """Disable a user: its tokens and passwords are refused and its web sessions end,
    from its next request on. Audited; `enable` undoes it.

    \b
    Example:
      todokede user disable alice
    """
    _switch(name, False, db)


@user.command("enable")
@click.argument("name")
@db_option
def enable(name: str, db: str | None) -> None:
    """Enable a disabled user again (its tokens that were not revoked work again).
    Audited.

    \b
    Example:
      todokede user enable alice
    """
    _switch(name, True, db)


def _switch(name: str, enabled: bool, db: str | None) -> None:
    from todokede.center.store import Store

    with Store.open(database_url(db)) as store:
        store.set_enabled(name, enabled, actor=operator())
    click.echo(f"user {name} {'enabled' if enabled else 'disabled'}")


@user.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(["reporter", "analyst", "admin"]))
@db_option
def set_role(name: str, role: str, db: str | None) -> None:
    """Give a user another role; its next request, by token or web session, has it.
    Audited.

    \b
    Example:
      todokede user set-role ana reporter
    """
    from todokede.center.store import Store

    with Store.open(database_url(db)) as store:
        old = store.set_role(name, role, actor=operator())
    click.echo(f"user {name}: {old} -> {role}")


@user.command("set-password")
@click.argument("name")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
@db_option
def set_password(name: str, from_stdin: bool, db: str | None) -> None:
    """Set a user's password for the web pages (at least 8 characters; asked for, not
    echoed). The user's open web sessions end. Audited.

    \b
    Example:
      todokede user set-password alice
      printf '%s\\n' "$NEW_PASSWORD" | todokede user set-password alice --stdin
    """
    from todokede.center.store import Store

    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    with Store.open(database_url(db)) as store:
        store.set_password(name, secret, actor=operator())
    click.echo(f"password of {name} set; its web sessions ended")
