"""``todokede guard``: follow logs, ban the addresses that keep failing, report them."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from todokede import settings
from todokede.errors import InputError, TodokedeError

DEFAULT_CONFIG = "/etc/todokede/guard.toml"
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=settings.GUARD_CONFIG_VAR,
    help=f"The guard's TOML file (default {DEFAULT_CONFIG}, or $TODOKEDE_GUARD_CONFIG).",
)


def _load(ctx: click.Context, path: Path | None) -> Any:
    from todokede.guard.config import load

    chosen = path or (ctx.obj or {}).get("config") or Path(DEFAULT_CONFIG)
    return load(chosen)


@click.group(invoke_without_command=True)
@_config_option
@click.option("--center", default=None, help="Center base URL for jails with report = submit.")
@click.pass_context
def guard(ctx: click.Context, config_path: Path | None, center: str | None) -> None:
    """Watch logs, refuse the addresses that keep failing, and report them (fail2ban's job,
    with todokede's detectors, hosts.deny, nftables and the center).

    Without a subcommand, runs in the foreground for a service manager: SIGTERM stops it,
    SIGHUP re-reads the configuration. Bans are kept in SQLite, re-applied on start and
    lifted when their time is up. The center's API token comes from TODOKEDE_TOKEN.

    \b
    Example:
      todokede guard --config /etc/todokede/guard.toml
      todokede guard status sshd --json
      todokede guard ban 192.0.2.7 --jail sshd
      todokede guard unban 192.0.2.7
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path
    if ctx.invoked_subcommand is None:
        _run(_load(ctx, config_path), center)


def _reloaded(current: Any, center: str | None, token: str) -> Any:
    """A guard on the re-read configuration; the running one if the file is now wrong."""
    from dataclasses import replace

    from todokede.guard.config import load
    from todokede.guard.watch import Guard

    try:
        fresh = load(Path(current.config.source))
    except InputError as exc:
        current.log(f"reload refused, keeping the running configuration: {exc}")
        return current
    if center:
        fresh = replace(fresh, center=center)
    current.close()
    started = Guard(fresh, token=token)
    try:
        started.start()
    except TodokedeError as exc:
        started.log(f"reload failed, back to the running configuration: {exc}")
        started.close()
        started = Guard(current.config, token=token)
        started.start()
    return started


def _run(config: Any, center: str | None) -> None:
    from dataclasses import replace

    from todokede.guard.watch import Guard

    if center:
        config = replace(config, center=center)
    if any(j.report == "submit" for j in config.jails.values()) and not config.center:
        raise InputError(
            "report = submit needs --center URL (or center in [guard])",
            source=config.source,
            field="report",
        )
    token = settings.api_token()
    if any(j.report == "submit" for j in config.jails.values()) and not token:
        raise InputError(
            "report = submit needs TODOKEDE_TOKEN (an API token from `todokede user add`)",
            source=config.source,
            field="report",
        )
    flags = {"stop": False, "reload": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        flags["reload" if signum == signal.SIGHUP else "stop"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    current = Guard(config, token=token)
    try:
        current.start()

        while not flags["stop"]:
            if flags["reload"]:
                flags["reload"] = False
                current = _reloaded(current, center, token)
            elif not current.poll():
                current.idle()
    finally:
        current.log(f"stopping: {current.lines} line(s) read, {current.bans} ban(s)")
        current.close()
        for s, handler in old.items():
            signal.signal(s, handler)


def _jail_status(j: Any, state: Any, detail: bool, now: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "banned": state.count(j.name) if state is not None else 0,
        "filters": list(j.filters),
        "logpath": [str(p) for p in j.logpath],
        "journal": list(j.journal),
        "maxretry": j.maxretry,
        "findtime": j.findtime,
        "bantime": j.bantime,
        "actions": list(j.actions),
    }
    if detail:
        bans = state.active(j.name) if state is not None else []
        entry["bans"] = [
            {"ip": b.addr, "failures": b.failures, "banned_at": b.banned_at, "left": b.left(now)}
            for b in bans
            if b.expires is None or b.expires > now
        ]
    return entry


@guard.command()
@click.argument("jail", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_config_option
@click.pass_context
def status(ctx: click.Context, jail: str | None, as_json: bool, config_path: Path | None) -> None:
    """The jails and their bans (as fail2ban-client status [JAIL]).

    \b
    Example:
      todokede guard status
      todokede guard status dovecot --json
    """
    from todokede.guard.state import State

    config = _load(ctx, config_path)
    if jail is not None and jail not in config.jails:
        raise InputError(
            f"no jail {jail!r} (jails: {', '.join(config.jails)})", source=config.source
        )
    names = [jail] if jail else list(config.jails)
    # no state file yet: nothing banned (and status does not make one)
    state = State(config.state) if config.state.exists() else None
    try:
        out = {n: _jail_status(config.jails[n], state, bool(jail), time.time()) for n in names}
    finally:
        if state is not None:
            state.close()
    if as_json:
        click.echo(json.dumps({"jails": out}, ensure_ascii=True))
        return
    for name, entry in out.items():
        click.echo(
            f"{name}: {entry['banned']} banned; filters {', '.join(entry['filters'])}; "
            f"maxretry {entry['maxretry']} in {entry['findtime']:.0f}s"
        )
        for b in entry.get("bans", []):
            left = "for ever" if b["left"] is None else f"{b['left']:.0f}s left"
            click.echo(f"  {b['ip']}  {b['failures']} failure(s)  {left}")


def _jail_for(config: Any, jail: str | None) -> str:
    if jail is None:
        if len(config.jails) != 1:
            raise InputError(f"give --jail (jails: {', '.join(config.jails)})", field="--jail")
        return str(next(iter(config.jails)))
    if jail not in config.jails:
        raise InputError(f"no jail {jail!r} (jails: {', '.join(config.jails)})", field="--jail")
    return jail


@guard.command()
@click.argument("address")
@click.option("--jail", default=None, help="The jail (needed when there are several).")
@click.option("--bantime", default=None, help="How long: 600, 10m, 1h, 2d, 1w; -1 for ever.")
@_config_option
@click.pass_context
def ban(
    ctx: click.Context,
    address: str,
    jail: str | None,
    bantime: str | None,
    config_path: Path | None,
) -> None:
    """Ban ADDRESS now, through the jail's actions, as if it had failed.

    Refuses an address the jail's ignoreip names, and the address this session is typed
    from (SSH_CLIENT): nobody locks themselves out by a typo.

    \b
    Example:
      todokede guard ban 192.0.2.7 --jail sshd --bantime 1d
    """
    from todokede.guard.config import duration
    from todokede.guard.networks import Ignore, normalize
    from todokede.guard.watch import Guard, typed_from

    config = _load(ctx, config_path)
    name = _jail_for(config, jail)
    addr = normalize(address)
    if addr is None:
        raise InputError(f"not an IP address: {address!r}", field="ADDRESS")
    if addr in Ignore(config.jails[name].ignoreip):
        raise InputError(f"{addr} is in the ignoreip of jail {name}: not banned", field="ADDRESS")
    if addr == typed_from():
        raise InputError(
            f"{addr} is where this session comes from (SSH_CLIENT): not banned", field="ADDRESS"
        )
    seconds = None
    if bantime is not None:
        try:
            seconds = duration(bantime)
        except ValueError as exc:
            raise InputError(str(exc), field="--bantime") from None
    g = Guard(config, log=lambda m: click.echo(m, err=True))
    try:
        b = g.ban(name, addr, seconds=seconds)
    finally:
        g.close()
    left = b.left(b.banned_at)
    click.echo(f"{name}: banned {addr} " + ("for ever" if left is None else f"for {left:.0f}s"))


@guard.command()
@click.argument("address")
@click.option("--jail", default=None, help="Only in this jail (default: in every jail).")
@_config_option
@click.pass_context
def unban(ctx: click.Context, address: str, jail: str | None, config_path: Path | None) -> None:
    """Lift the bans of ADDRESS (in every jail, or in --jail).

    \b
    Example:
      todokede guard unban 192.0.2.7
    """
    from todokede.guard.networks import normalize
    from todokede.guard.watch import Guard

    config = _load(ctx, config_path)
    name = _jail_for(config, jail) if jail else None
    addr = normalize(address)
    if addr is None:
        raise InputError(f"not an IP address: {address!r}", field="ADDRESS")
    g = Guard(config, log=lambda m: click.echo(m, err=True))
    try:
        removed = g.unban(name, addr)
    finally:
        g.close()
    if not removed:
        raise InputError(
            f"{addr} is not banned" + (f" in jail {name}" if name else ""), field="ADDRESS"
        )
    for b in removed:
        click.echo(f"{b.jail}: unbanned {addr}")
