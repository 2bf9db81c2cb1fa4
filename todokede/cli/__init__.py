"""The ``todokede`` command: a click group whose subcommands live one module per area.

Subcommands are imported only when invoked, so ``todokede access match`` does not pay
for the web stack or matplotlib at start-up. The center's commands import its libraries
inside their bodies: without the ``center`` extra they are still listed and their
``--help`` works, and running one says what to install.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from todokede import __version__
from todokede.errors import REPORT_MODULES, MissingExtra, TodokedeError

# command name -> (module, attribute, one-line help shown in `todokede --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "access": ("todokede.cli.access", "access", "tcp_wrappers rules: match and check."),
    "wrap": ("todokede.cli.wrap", "wrap", "Guard a TCP service with hosts.allow/deny."),
    "scan": ("todokede.cli.scan", "scan", "Find incidents in logs."),
    "probe": ("todokede.cli.probe", "probe", "Check a server for known holes."),
    "guard": ("todokede.cli.guard", "guard", "Ban addresses that keep failing; report them."),
    "report": ("todokede.cli.report", "report", "Draft and submit reports."),
    "serve": ("todokede.cli.center", "serve", "Run the reporting center."),
    "user": ("todokede.cli.center", "user", "Manage center users."),
    "center": ("todokede.cli.exchange", "center", "Center operations (mail intake)."),
    "export": ("todokede.cli.exchange", "export", "Export reports (IODEF, STIX, CSV)."),
    "monthly": ("todokede.cli.monthly", "monthly", "Write the monthly publication."),
    "publish": ("todokede.cli.monthly", "publish", "Preview, publish and withdraw a month."),
    "demo": ("todokede.cli.monthly", "demo", "The September 1997 story on bundled data."),
}

# Top-level modules of the ``center`` extra in pyproject.toml (import names, not
# distribution names): a command that fails to import one of them needs the extra.
CENTER_MODULES = frozenset(
    {
        "alembic",
        "argon2",
        "fastapi",
        "fastapi_offline",
        "jinja2",
        "lxml",
        "matplotlib",
        "multipart",
        "psycopg",
        "python_multipart",
        "sqlalchemy",
        "starlette",
        "stix2",
        "uvicorn",
        "weasyprint",
    }
)


# the commands of the center: whatever library they miss, the center's extra brings it
CENTER_COMMANDS = frozenset({"serve", "user", "center", "export", "monthly", "publish", "demo"})


def missing_extra(exc: ModuleNotFoundError, command: str = "") -> MissingExtra | None:
    """The error to show when ``exc`` is an extra's library absent from a core install."""
    root = (exc.name or "").partition(".")[0]
    if root in CENTER_MODULES or (root in REPORT_MODULES and command in CENTER_COMMANDS):
        return MissingExtra(root)
    return MissingExtra(root, "report") if root in REPORT_MODULES else None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        ctx.meta["todokede.command"] = cmd_name  # for the install hint (invoke)
        module = importlib.import_module(spec[0])
        command = getattr(module, spec[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help for the group must not import every area: use the registered one-liners.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except ModuleNotFoundError as exc:
                missing = missing_extra(exc, ctx.meta.get("todokede.command", ""))
                if missing is None:
                    raise
                raise missing from None
        except TodokedeError as exc:
            click.echo(f"todokede: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="todokede")
def cli() -> None:
    """todokede (届出): unauthorized-access reporting, end to end.

    \b
    Example:
      todokede demo
      todokede access match --rules-dir /etc imapd 192.0.2.7
    """


def main() -> None:
    cli()
