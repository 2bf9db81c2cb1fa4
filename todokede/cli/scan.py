"""``todokede scan``: find incidents in logs."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from todokede.detect import DetectConfig, Finding, Scanner, ScanResult, scan_paths
from todokede.detect.findings import iso
from todokede.logs import files
from todokede.logs.journal import Reader, Source
from todokede.logs.window import Window

PROGRESS_MIN = 16 << 20  # show progress for inputs larger than this (on a terminal)


def _safe(text: str, limit: int = 80) -> str:
    """Attacker-controlled text for a terminal: no control characters, bounded length."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _config(ctx_values: dict[str, Any]) -> DetectConfig:
    base = DetectConfig.from_toml(ctx_values["config"]) if ctx_values["config"] else DetectConfig()
    overrides: dict[str, Any] = {
        "probe_min": ctx_values["probe_min"],
        "login_min": ctx_values["login_min"],
        "relay_min": ctx_values["relay_min"],
        "bounce_per_hour": ctx_values["bounce_per_hour"],
        "bomb_min": ctx_values["bomb_min"],
        "bomb_gap": ctx_values["bomb_gap"],
        "learn_days": ctx_values["learn_days"],
        "jobs": ctx_values["jobs"],
    }
    if ctx_values["local_net"]:
        overrides["local_nets"] = tuple(ctx_values["local_net"])
    if ctx_values["local_domain"]:
        overrides["local_domains"] = tuple(ctx_values["local_domain"])
    if ctx_values["admin"]:
        overrides["admins"] = tuple(ctx_values["admin"])
    if ctx_values["filter"]:
        overrides["filters"] = base.filters + tuple(ctx_values["filter"])
    if ctx_values["filter_dir"]:
        overrides["filter_dirs"] = base.filter_dirs + tuple(ctx_values["filter_dir"])
    if ctx_values["no_new_hosts"]:
        overrides["new_hosts"] = False
    return base.with_overrides(**overrides)


def _print_table(findings: list[Finding]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # a pipe gets the whole table, not one wrapped to 80 columns
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if not findings:
        console.print("no findings")
        return
    table = Table(show_lines=False)
    for col in (
        "kind",
        "service",
        "sources",
        "count",
        "first seen",
        "last seen",
        "outcome",
        "targets",
    ):
        table.add_column(col, justify="right" if col == "count" else "left")
    for f in findings:
        table.add_row(
            Text(f.kind),
            Text(_safe(f.service, 24)),
            Text(_safe(", ".join(f.sources), 48)),
            Text(str(f.count)),
            Text(iso(f.first_seen)),
            Text(iso(f.last_seen)),
            Text(f.outcome),
            Text(_safe(", ".join(f.targets), 40)),
        )
    console.print(table)


def _summary(
    result_lines: int, unparsed: int, examples: list[tuple[str, int, str]], nfiles: int
) -> None:
    msg = f"scan: {result_lines} lines in {nfiles} file(s), {unparsed} unparsed"
    if examples:
        src, line, text = examples[0]
        msg += f" (first: {src}, line {line}: {_safe(text, 60)})"
    click.echo(msg, err=True)


def _progress_total(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if not files.is_stdin(p) and p.is_file():
            total += p.stat().st_size
    return total


def _run_once(
    paths: list[Path],
    year: int | None,
    config: DetectConfig,
    source: Source | None,
    window: Window | None,
) -> ScanResult:
    total = _progress_total(paths)
    if not (sys.stderr.isatty() and total >= PROGRESS_MIN):
        return scan_paths(paths, year=year, config=config, journal=source, window=window)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("scanning", total=total)
        return scan_paths(
            paths,
            year=year,
            config=config,
            progress=lambda n: bar.advance(task, n),
            journal=source,
            window=window,
        )


def _follow(
    paths: list[Path],
    year: int | None,
    config: DetectConfig,
    as_json: bool,
    source: Source | None,
    window: Window | None,
) -> None:
    scanner = Scanner(config, year=year, window=window)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    reported: dict[tuple[str, str, tuple[str, ...], str], int] = {}
    dirty = False

    def on_lines(path: Path, data: bytes) -> None:
        nonlocal dirty
        scanner.feed(path, data)
        dirty = True

    def report() -> None:
        nonlocal dirty
        if not dirty:
            return
        dirty = False
        for f in scanner.findings():
            if reported.get(f.key()) == f.count:
                continue
            reported[f.key()] = f.count
            if as_json:
                click.echo(json.dumps(f.to_dict(), ensure_ascii=False))
            else:
                click.echo(
                    f"{iso(f.last_seen)} {f.kind} {_safe(f.service, 24)} "
                    f"{_safe(', '.join(f.sources), 60)} count={f.count} {f.outcome}"
                )
            sys.stdout.flush()

    try:
        if source is None:
            files.follow(paths, on_lines, lambda: stopping, on_idle=report)
        else:
            reader = Reader(source, follow=True)

            def journal(seconds: float) -> bool:
                nonlocal dirty
                entries = reader.poll(seconds)
                if entries:
                    scanner.feed_entries(entries, source.name)
                    dirty = True
                return bool(entries)

            try:
                files.follow(
                    paths, on_lines, lambda: stopping or reader.done, on_idle=report, wait=journal
                )
            finally:
                reader.close()
        report()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    state = scanner.state
    _summary(state.lines, state.unparsed, state.unparsed_examples, len(paths) + bool(source))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one finding per line.")
@click.option(
    "--year",
    type=click.IntRange(1970, 9999),
    help="Year of the first line of BSD-timestamped logs.",
)
@click.option(
    "--follow", "-f", is_flag=True, help="Keep reading as the logs (and the journal) grow."
)
@click.option("--journal", "local_journal", is_flag=True, help="Read this machine's journal.")
@click.option(
    "--journal-file",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read a systemd journal file (repeatable), e.g. one copied from another host.",
)
@click.option(
    "--journal-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read the journal files of a directory (journalctl --directory).",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Lines and entries from this time ('2026-12-01 10:00', yesterday, -2h).",
)
@click.option("--until", metavar="TIME", help="Lines and entries up to this time.")
@click.option(
    "--rotated", is_flag=True, help="Also read each file's rotated siblings (FILE.1, FILE.2.gz)."
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TOML file with [scan] settings.",
)
@click.option(
    "--filter",
    "filter",
    multiple=True,
    metavar="FILTER",
    help="A fail2ban filter, applied as fail2ban applies it: a name in the filter "
    "directories (sshd), a file (./sshd.conf), with options as jail.conf writes them "
    "(sshd[mode=aggressive]). Repeatable.",
)
@click.option(
    "--filter-dir",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Where --filter names are looked up (repeatable; default /etc/fail2ban/filter.d).",
)
@click.option(
    "--local-net", multiple=True, metavar="CIDR", help="The site's own network (repeatable)."
)
@click.option(
    "--local-domain",
    multiple=True,
    metavar="DOMAIN",
    help="The site's own mail domain (repeatable).",
)
@click.option(
    "--admin",
    multiple=True,
    metavar="USER",
    help="Administrator mailbox for bounce storms (default root, postmaster).",
)
@click.option("--probe-min", type=int, help="Refused attempts from one host to report (default 1).")
@click.option(
    "--login-min",
    type=int,
    help="Failed login tries from one client to report (default 1).",
)
@click.option(
    "--relay-min", type=int, help="Relayed messages from one client to report (default 1)."
)
@click.option(
    "--bounce-per-hour",
    type=int,
    help="Notices to an administrator per hour that make a storm (default 20).",
)
@click.option(
    "--bomb-min",
    type=int,
    help="Messages from one sender to one recipient that make a bomb (default 100).",
)
@click.option(
    "--bomb-gap", type=int, help="Longest pause inside a mail bomb, seconds (default 900)."
)
@click.option(
    "--learn-days", type=float, help="Days of log that define the known hosts (default 7)."
)
@click.option(
    "--no-new-hosts", is_flag=True, help="Do not report hosts first seen after the learning days."
)
@click.option(
    "--jobs", "-j", type=int, help="Worker processes for large files (default: one per core)."
)
def scan(
    paths: tuple[Path, ...],
    as_json: bool,
    year: int | None,
    follow: bool,
    rotated: bool,
    local_journal: bool,
    journal_file: tuple[Path, ...],
    journal_dir: Path | None,
    since: str | None,
    until: str | None,
    **opts: Any,
) -> None:
    """Find incidents in logs: access probes, relay abuse, bounce storms, mail bombs,
    exploit attempts.

    Reads syslog files (BSD, RFC 3339 or RFC 5424 timestamps; plain, .gz, .bz2, .xz; '-' for
    standard input) and the systemd journal (through journalctl) written by tcpd, sendmail,
    Postfix, sshd, UW imapd and Dovecot; with --filter, what a fail2ban filter finds, applied
    as fail2ban applies it, in any log it reads (exim, Apache, nginx...) and in journal
    entries (with its journalmatch). Prints a table, or JSON Lines with --json; a summary of
    unparsed lines goes to standard error.

    \b
    Example:
      todokede scan --year 1997 /var/log/messages
      todokede scan --json --local-domain example.co.jp /var/log/maillog*
      todokede scan --follow --json /var/log/maillog
      todokede scan /var/log/auth.log
      todokede scan --journal --since yesterday
      todokede scan --journal-file host2/system.journal --json
      todokede scan --journal --filter sshd --since -2h
      todokede scan --filter /etc/fail2ban/filter.d/sshd.conf /var/log/auth.log
      todokede scan --filter 'sshd[mode=aggressive]' --filter exim /var/log/exim4/mainlog
    """
    config = _config(opts)
    window = Window.parse(since, until)
    source = None
    if local_journal or journal_file or journal_dir is not None:
        source = Source(tuple(journal_file), journal_dir, local_journal, window)
    if not paths and source is None:
        raise click.UsageError(
            "name log files, or a journal (--journal, --journal-file, --journal-dir)"
        )
    plist = list(paths)
    if rotated:
        plist = [q for p in plist for q in (files.rotated_set(p) if not files.is_stdin(p) else [p])]
    if follow:
        if any(files.is_stdin(p) for p in plist):
            raise click.UsageError("--follow needs files, not standard input")
        _follow(plist, year, config, as_json, source, window)
        return
    result = _run_once(plist, year, config, source, window)
    for w in result.warnings:
        click.echo(f"scan: warning: {w}", err=True)
    if as_json:
        # one write: with PYTHONUNBUFFERED set, a write a line costs a system call each
        sys.stdout.write(
            "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in result.findings)
        )
    else:
        _print_table(result.findings)
    _summary(result.lines, result.unparsed, result.unparsed_examples, len(plist) + bool(source))
