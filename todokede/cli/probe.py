"""``todokede probe``: check your own servers for the holes the reports name."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from todokede.errors import ProbeError


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def _could_not_check(exc: ProbeError, as_json: bool) -> NoReturn:
    if as_json:
        _emit_json({"open": None, "verdict": "could not check", "error": str(exc)})
    click.echo(f"todokede: could not check: {exc}", err=True)
    sys.exit(2)


@click.group()
def probe() -> None:
    """Check a server for the holes the reports name: open mail relaying and old IMAP.

    Probe only servers you run or are allowed to test. Nothing is ever delivered: the
    relay battery stops at RCPT TO, the IMAP check at CAPABILITY and ID.

    \b
    Example:
      todokede probe relay mail.example.jp
      todokede probe relay --config /etc/postfix/main.cf
      todokede probe imap mail.example.jp --starttls
    """


@probe.command("relay", short_help="Test a mail server for open relaying.")
@click.argument("host", required=False)
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=25, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--to-domain",
    default="example.com",
    show_default=True,
    help="Outside domain the tests try to relay to (choose one the server can resolve "
    "if it checks recipient domains).",
)
@click.option("--from-domain", help="Outside sender domain (default: the --to-domain).")
@click.option("--starttls", is_flag=True, help="Run the battery inside STARTTLS.")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Do not connect: analyse a Postfix main.cf or `postconf -n` output instead.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds for connecting and for each reply.",
)
@click.option(
    "--total-timeout",
    type=click.FloatRange(0.1),
    default=120.0,
    show_default=True,
    help="Seconds for the whole battery.",
)
@click.option(
    "--connections",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Connections used at once.",
)
@click.option("--verbose", "-v", is_flag=True, help="List every test, not only accepted ones.")
def relay(
    host: str | None,
    port: int,
    as_json: bool,
    to_domain: str,
    from_domain: str | None,
    starttls: bool,
    config: Path | None,
    timeout: float,
    total_timeout: float,
    connections: int,
    verbose: bool,
) -> None:
    """Test whether HOST relays mail for outsiders (exit 0 closed, 1 open, 2 could not check).

    Runs nmap's 16 smtp-open-relay tests and the older testers' tricks (percent hack,
    bang paths, source routes, quoted local parts, spoofed and unqualified senders). It
    never sends DATA.

    \b
    Example:
      todokede probe relay 127.0.0.1 --port 2525 --json
      todokede probe relay mx.example.jp --to-domain my-other-domain.example
      todokede probe relay --config /etc/postfix/main.cf
    """
    if config is not None:
        if host is not None:
            raise click.UsageError("give either HOST or --config, not both")
        _relay_config(config, as_json)
        return
    if host is None:
        raise click.UsageError("give a HOST to test (or --config FILE)")
    from todokede.probes.relay import probe_relay
    from todokede.probes.wire import Limits

    try:
        result = probe_relay(
            host,
            port,
            to_domain=to_domain,
            from_domain=from_domain,
            starttls=starttls,
            limits=Limits(connect=timeout, reply=timeout),
            total=total_timeout,
            concurrency=connections,
        )
    except ProbeError as exc:
        _could_not_check(exc, as_json)
    if as_json:
        _emit_json(result.to_dict())
    else:
        _relay_text(result, verbose)
    sys.exit({"open": 1, "closed": 0}.get(result.verdict, 2))


def _relay_text(result: Any, verbose: bool) -> None:
    from todokede.probes.relay import advice_for

    d = result.to_dict()
    nmap = sum(t["id"].startswith("nmap-") for t in d["tests"])
    click.echo(f"{d['host']}:{d['port']}  {d['banner']}")
    if d["tls"]:
        click.echo(f"  over STARTTLS ({d['tls']['version']}, {d['tls']['cipher']})")
    summary = (
        f"{d['total']} tests ({nmap} of nmap's, {d['total'] - nmap} classic) in "
        f"{d['elapsed']:.2f} s over {d['connections']} connections"
    )
    if result.verdict == "open":
        click.echo(
            f"OPEN RELAY: accepted {d['accepted']} of {summary} "
            f"(nmap's battery: {d['nmap_accepted']}/{nmap})"
        )
    elif result.verdict == "closed":
        click.echo(f"closed: refused all {summary}")
    else:
        click.echo(f"inconclusive: nothing accepted, but {summary} did not all give an answer")
    for t in d["tests"]:
        if verbose or t["accepted"]:
            mark = {"accepted": "ACCEPTED", "refused": "refused ", "inconclusive": "unsure  "}
            click.echo(
                f"  {mark[t['outcome']]} MAIL FROM:{t['mail_from']} RCPT TO:{t['rcpt_to']}"
                f"  [{t['technique']}]  {t['reply']}"
            )
    for warning in d["warnings"]:
        click.echo(f"warning: {warning}")
    if result.verdict == "open":
        detected = f" ({d['software']} detected)" if d["software"] else ""
        click.echo(
            f"\nWhat to change{detected} — relay only for your own hosts and domains "
            "(JPCERT/CC 97-0001):"
        )
        for name, lines in advice_for(d["software"]):
            click.echo(f"  {name}:")
            for line in lines:
                click.echo(f"    {line}")


def _relay_config(path: Path, as_json: bool) -> None:
    from todokede.probes.postfixconf import check_postfix_config

    check = check_postfix_config(path)
    if as_json:
        _emit_json(check.to_dict())
    else:
        if check.open:
            click.echo(f"{path}: OPEN RELAY — these settings relay for anyone")
        elif check.relays_too_widely:
            click.echo(f"{path}: relays too widely")
        else:
            click.echo(f"{path}: no setting makes Postfix relay too widely")
        for f in check.findings:
            where = f"line {f.line}: " if f.line else "(default) "
            click.echo(f"  [{f.severity}] {f.setting}: {where}{f.message}")
    sys.exit(1 if check.relays_too_widely else 0)


@probe.command("imap", short_help="Check an IMAP server is IMAP4rev1 or later.")
@click.argument("host")
@click.option("--port", "-p", type=click.IntRange(1, 65535), help="Default 143, or 993 with --tls.")
@click.option("--tls", "mode", flag_value="tls", help="Connect with implicit TLS (imaps).")
@click.option(
    "--starttls",
    "mode",
    flag_value="starttls",
    help="Require STARTTLS (default: use it if offered).",
)
@click.option("--no-tls", "mode", flag_value="none", help="Never use TLS.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds for connecting and for each answer.",
)
def imap(host: str, port: int | None, mode: str | None, as_json: bool, timeout: float) -> None:
    """Check that HOST's IMAP server is IMAP4rev1 or later (exit 0 yes, 1 no, 2 could not check).

    Reads the greeting, CAPABILITY (again after STARTTLS where offered) and ID. It sends no
    LOGIN and nothing over-long: no exploit traffic.

    \b
    Example:
      todokede probe imap mail.example.jp
      todokede probe imap mail.example.jp --tls --json
    """
    from todokede.probes.imap import probe_imap
    from todokede.probes.wire import Limits

    try:
        result = probe_imap(
            host,
            port,
            tls=mode or "auto",
            limits=Limits(connect=timeout, reply=timeout),
            total=max(30.0, timeout * 6),
        )
    except ProbeError as exc:
        _could_not_check(exc, as_json)
    d = result.to_dict()
    if as_json:
        _emit_json(d)
    else:
        click.echo(f"{d['host']}:{d['port']}  {d['greeting']}")
        if d["server"]:
            click.echo(f"  server: {d['server']}")
        click.echo(f"  capabilities: {' '.join(d['capabilities']) or '(none)'}")
        if d["capabilities_after_starttls"] is not None:
            click.echo(
                f"  after STARTTLS ({d['tls']['version'] if d['tls'] else '?'}): "
                f"{' '.join(d['capabilities_after_starttls']) or '(none)'}"
            )
        elif d["tls"]:
            click.echo(f"  over TLS: {d['tls']['version']}, {d['tls']['cipher']}")
        click.echo(("ok: " if d["imap4rev1"] else "OLD: ") + d["verdict"])
        for finding in d["findings"]:
            click.echo(f"  - {finding}")
    sys.exit(0 if result.imap4rev1 else 1)
