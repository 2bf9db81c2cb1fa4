"""``todokede access``: tcpdmatch and tcpdchk, with JSON."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from todokede.access import HostsFileResolver, Resolver, Rules, SystemResolver, check, predict
from todokede.access.compiled import Fixed, Rule
from todokede.access.patterns import UNKNOWN, fold
from todokede.access.query import plain_prediction, render, verdict_lines
from todokede.errors import InputError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def _safe(text: str) -> str:
    """Rule files may hold anything: show control characters escaped, never raw (a
    banner's CR LF line ends stay as they are, as tcpdmatch prints them)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _resolver(hosts_file: Path | None) -> Resolver:
    return HostsFileResolver(hosts_file) if hosts_file is not None else SystemResolver()


rules_dir_option = click.option(
    "--rules-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc"),
    show_default=True,
    help="Directory holding hosts.allow and hosts.deny.",
)
hosts_file_option = click.option(
    "--hosts-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Resolve names through this hosts(5) file only (offline, deterministic).",
)


@click.group()
def access() -> None:
    """tcp_wrappers rules (hosts.allow, hosts.deny): match and check.

    \b
    Example:
      todokede access match --rules-dir /etc imapd 192.0.2.7
      todokede access check --rules-dir /etc
    """


def _answer(rules: Rules, daemon: str, client: str) -> dict[str, object]:
    query = f"{daemon} {client}"
    try:
        results = [p.to_dict() for p in predict(rules, daemon, client)]
    except InputError as exc:
        return {"query": query, "results": [], "error": str(exc)}
    return {"query": query, "results": results}


_BAD_QUERY = "expected: DAEMON[@SERVER] [USER@]CLIENT"
_encode = json.encoder.encode_basestring  # json.dumps(ensure_ascii=False) for a str


class _JsonLines:
    """``json.dumps(_answer(...), ensure_ascii=False)``, line by line, without encoding
    the same result again for every query (most results are one of a few)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._done: dict[tuple[object, ...], str] = {}
        self._plain: dict[Fixed | None, str] = {}

    def __call__(self, words: list[str], raw: str) -> str:
        if len(words) != 2:
            return _dumps({"query": raw.strip(), "results": [], "error": _BAD_QUERY})
        query = f"{words[0]} {words[1]}"
        found = plain_prediction(self.rules, words[0], words[1])
        if found is not None:
            # The result is the deciding rule's (or no rule's): one encoding per rule.
            part = self._plain.get(found[1])
            if part is None:
                part = self._plain[found[1]] = _dumps(_plain_dict(*found))
            return f'{{"query": {_encode(query)}, "results": [{part}]}}'
        try:
            predictions = predict(self.rules, words[0], words[1])
        except InputError as exc:
            return _dumps({"query": query, "results": [], "error": str(exc)})
        parts = []
        done = self._done
        for p in predictions:
            d = p.decision
            key = (d.access, d.matched, *d.options, *p.warnings)
            part = done.get(key)
            if part is None:
                if len(done) >= 4096:
                    done.clear()  # expanded options make results many: stay bounded
                part = done[key] = _dumps(p.to_dict())
            parts.append(part)
        return f'{{"query": {_encode(query)}, "results": [{", ".join(parts)}]}}'


def _plain_dict(rule: Rule | None, fixed: Fixed | None) -> dict[str, object]:
    """Prediction.to_dict() of a plain prediction (see plain_prediction)."""
    if rule is None or fixed is None:
        return {"access": "granted", "matched": None, "options": [], "warnings": []}
    return {
        "access": fixed.access,
        "matched": {"file": rule.match.file, "line": rule.match.line},
        "options": [str(o) for o in fixed.options],
        "warnings": list(fixed.warnings),
    }


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class _TextBlocks:
    """One query in text: a ``query:`` line, tcpdmatch's lines (or ``error:``), a blank
    line; the end of a plain prediction (see plain_prediction) is formatted once per rule."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._plain: dict[Fixed | None, str] = {}

    def __call__(self, words: list[str], raw: str) -> str:
        if len(words) != 2:
            return f"query:    {_safe(raw.strip())}\nerror: {_BAD_QUERY}\n"
        daemon, client = words
        head = f"query:    {_safe(daemon)} {_safe(client)}\n"
        found = plain_prediction(self.rules, daemon, client)
        if found is not None:
            fixed = found[1]
            tail = self._plain.get(fixed)
            if tail is None:
                lines = verdict_lines(fixed.trace, fixed.access) if fixed else ["access:   granted"]
                tail = self._plain[fixed] = "".join(_safe(line) + "\n" for line in lines)
            shown = "" if fold(daemon) == UNKNOWN else f"server:   process  {_safe(daemon)}\n"
            return f"{head}client:   address  {_safe(client)}\n{shown}{tail}"
        try:
            lines = render(predict(self.rules, daemon, client))
        except InputError as exc:
            return f"{head}error: {_safe(str(exc))}\n"
        return head + "".join(_safe(line) + "\n" for line in lines)


def _batch(answer: Callable[[list[str], str], str], separator: str) -> None:
    """Answer stdin's queries as they arrive: take what one read gives, answer every
    complete line of it, write the answers at once and flush once per read, not per
    line. A program that sends a query and waits gets its answer; a file is answered
    in large writes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # read1: what one read of the pipe gives, without waiting for a full buffer
    read: Callable[[int], bytes] = getattr(stdin, "read1", stdin.read)
    rest = b""
    while True:
        chunk = read(1 << 16)
        data = rest + chunk
        end = data.rfind(b"\n") + 1 if chunk else len(data)
        if end:
            out = []
            for raw in data[:end].decode("utf-8", "replace").split("\n"):
                words = raw.split()
                if words and not words[0].startswith("#"):
                    out.append(answer(words, raw))
            if out:
                out.append("")
                stdout.write(separator.join(out).encode("utf-8", "replace"))
                stdout.flush()
        rest = data[end:]
        if not chunk:
            return


@access.command()
@rules_dir_option
@hosts_file_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query.")
@click.option(
    "--batch",
    is_flag=True,
    help="Read queries (DAEMON[@SERVER] [USER@]CLIENT) from stdin, one per line, and "
    "answer each in order as it arrives: with --json one JSON line, else a 'query:' line, "
    "tcpdmatch's lines and a blank line.",
)
@click.argument("daemon", required=False, metavar="DAEMON[@SERVER]")
@click.argument("client", required=False, metavar="[USER@]CLIENT")
def match(
    rules_dir: Path,
    hosts_file: Path | None,
    as_json: bool,
    batch: bool,
    daemon: str | None,
    client: str | None,
) -> None:
    """Predict how the rules treat a connection, as tcpdmatch does.

    DAEMON is the process name (sshd, in.ftpd, imapd), optionally @SERVER (the address
    or name of the server end). CLIENT is an address ("name unknown": name patterns
    cannot match) or a name (resolved, one prediction per address, each after the
    reverse+forward PARANOID check); USER@ sets the ident user name.

    \b
    JSON (--json), one line per query:
      {"query": "imapd 192.0.2.7", "results": [{"access": "denied",
       "matched": {"file": "hosts.deny", "line": 3}, "options": [], "warnings": []}]}

    \b
    Example:
      todokede access match --rules-dir todokede/samples/access \\
          --hosts-file todokede/samples/access/hosts imapd 192.0.2.7
      printf 'imapd 192.0.2.7\\nsshd 10.0.0.1\\n' | todokede access match --batch --json
    """
    if not rules_dir.is_dir():
        raise InputError("no such directory", source=str(rules_dir))
    rules = Rules.load(rules_dir, resolver=_resolver(hosts_file), recheck=-1)
    if batch:
        if daemon is not None:
            raise click.UsageError("--batch reads its queries from stdin; give no arguments")
        if as_json:
            _batch(_JsonLines(rules), "\n")
        else:
            _batch(_TextBlocks(rules), "\n")
        return
    if daemon is None or client is None:
        raise click.UsageError("give DAEMON[@SERVER] and [USER@]CLIENT (or --batch)")
    if as_json:
        click.echo(json.dumps(_answer(rules, daemon, client), ensure_ascii=False))
        return
    for line in render(predict(rules, daemon, client)):
        click.echo(_safe(line))


@access.command("check")
@rules_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding.")
def check_command(rules_dir: Path, as_json: bool) -> None:
    """Check hosts.allow and hosts.deny, as tcpdchk does, and more.

    Reports, with file and line: syntax and option errors, lines libwrap ignores
    (no ":", no final newline, longer than 2047 bytes), patterns that can never match
    (10.0.5.7/24, /33, a bare IPv6 address, a missing /file), rules shadowed by an
    earlier rule, and daemon names unknown on this system. Exit status 1 when there
    is any error, 0 otherwise.

    \b
    JSON (--json), one line per finding:
      {"file": "hosts.allow", "line": 3, "severity": "error", "message": "..."}

    \b
    Example:
      todokede access check --rules-dir /etc
    """
    findings = check(rules_dir)
    for f in findings:
        click.echo(json.dumps(f.to_dict(), ensure_ascii=False) if as_json else _safe(str(f)))
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if not as_json:
        click.echo(f"{errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        sys.exit(1)
