"""tcpdmatch's job: predict how the rules treat a query ``DAEMON[@SERVER] [USER@]CLIENT``.

A CLIENT given as an address is taken as "name unknown" (name patterns cannot match it);
a CLIENT given as a name is resolved, and every address it has gets its own prediction,
each after libwrap's reverse+forward check -- exactly what tcpdmatch prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from todokede.access.compiled import Fixed, Rule
from todokede.access.engine import Decision, Request, Rules
from todokede.access.patterns import UNKNOWN, fold, known
from todokede.access.resolve import Resolver, ip_key, verify_name
from todokede.access.table import split_at
from todokede.errors import InputError


@dataclass
class Prediction:
    """One prediction: what tcpdmatch shows for one client address."""

    request: Request
    decision: Decision
    preamble: list[str] = field(default_factory=list)  # "warning: ..." lines before it

    @property
    def warnings(self) -> list[str]:
        return self.preamble + self.decision.warnings

    def to_dict(self) -> dict[str, object]:
        d = self.decision
        return {
            "access": d.access,
            "matched": None
            if d.matched is None
            else {"file": d.matched.file, "line": d.matched.line},
            "options": [str(o) for o in d.options],
            "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        """The prediction as tcpdmatch prints it."""
        r, d = self.request, self.decision
        out = list(self.preamble)
        name = r.client_name or UNKNOWN
        if fold(name) != UNKNOWN:
            out.append(f"client:   hostname {name}")
        if r.client_addr is not None:
            out.append(f"client:   address  {r.client_addr}")
        if r.client_user is not None and fold(r.client_user) != UNKNOWN:
            out.append(f"client:   username {r.client_user}")
        if r.server_name is not None and fold(r.server_name) != UNKNOWN:
            out.append(f"server:   hostname {r.server_name}")
        if r.server_addr is not None:
            out.append(f"server:   address  {r.server_addr}")
        if fold(r.daemon) != UNKNOWN:
            out.append(f"server:   process  {r.daemon}")
        return out + verdict_lines(d.trace, d.access)


def verdict_lines(trace: Iterable[tuple[str, str]], access: str) -> list[str]:
    """The end of a prediction as tcpdmatch prints it: the decision's trace, the verdict."""
    out: list[str] = []
    for kind, text in trace:
        if kind == "matched":
            out.append(f"matched:  {text}")
        elif kind == "option":
            out.append(f"option:   {text}")
        elif kind == "banner":
            out.extend(text.removesuffix("\n").split("\n"))
        else:
            out.append(f"{kind}: {text}")
    out.append(f"access:   {access}")
    return out


def _lookup(resolver: Resolver, name: str, warnings: list[str]) -> list[str]:
    """find_inet_addr(): the addresses of a name, warning when it is an alias."""
    entry = resolver.lookup(name)
    if entry is None or not entry.addresses:
        raise InputError(f"{name}: host not found")
    if fold(entry.name) != fold(name):
        warnings.append(f"warning: {name}: hostname alias")
        warnings.append(f"warning: (official name: {entry.name})")
    return list(entry.addresses)


def _stale_prefix(rules: Rules, decision: Decision) -> str:
    """libwrap leaves its file/line context set when an option ends the scan with a
    longjmp (allow, deny, an error); tcpdmatch's next warnings then carry it."""
    if decision.matched is None:
        return ""
    ended = any(k == "error" for k, _ in decision.trace) or any(
        o.name in ("allow", "deny") for o in decision.options
    )
    if not ended:
        return ""
    table = rules.tables[0] if decision.matched.file == "hosts.allow" else rules.tables[1]
    return f"{table.label}, line {decision.matched.line}: "


def predict(rules: Rules, daemon_arg: str, client_arg: str) -> list[Prediction]:
    """All predictions for one query, in tcpdmatch's order (raises InputError when
    tcpdmatch would exit 1: a name that does not resolve, a server with two addresses)."""
    resolver = rules.resolver
    first: list[str] = []
    parts = split_at(daemon_arg, "@")
    daemon, server = (daemon_arg, None) if parts is None else parts
    if not daemon:
        raise InputError(f"{daemon_arg}: no daemon name")
    if "/" in daemon:
        base = daemon.rsplit("/", 1)[1]
        first.append(f"warning: {daemon}: daemon name normalized to: {base}")
        daemon = base
    if fold(daemon) in ("portmap", "rpcbind"):
        first.append(f"warning: {daemon}: service possibly not wrapped")

    server_addr = server_name = None
    server_port = None
    if server is not None and server != "":
        if ip_key(server) is not None:
            server_addr = server
        elif known(server):
            addrs = _lookup(resolver, server, first)
            if len(addrs) > 1:
                raise InputError(f"{server} has more than one address; give an address")
            server_addr = addrs[0]
        else:
            server_name = server
        if server_addr is not None:
            server_port = 0  # tcpdmatch fakes the server endpoint with port 0
            server_name, warns = verify_name(resolver, server_addr)
            first.extend(f"warning: {w}" for w in warns)
            if fold(server_name) == UNKNOWN:
                first.append(f"warning: host address {server_addr}->name lookup failed")

    parts = split_at(client_arg, "@")
    user, client = (None, client_arg) if parts is None else parts
    if not client:
        raise InputError(f"{client_arg}: no client")

    def request(addr: str | None, name: str | None) -> Request:
        return Request(
            daemon,
            addr,
            client_name=name,
            client_user=user,
            server_addr=server_addr,
            server_name=server_name,
            server_port=server_port,
        )

    if ip_key(client) is not None:
        req = request(client, UNKNOWN)
        return [Prediction(req, rules.decide(req, dry_run=True), first)]
    if not known(client):
        req = request(None, client)
        return [Prediction(req, rules.decide(req, dry_run=True), first)]

    out: list[Prediction] = []
    for addr in _lookup(resolver, client, first):
        preamble = first if not out else []
        prefix = _stale_prefix(rules, out[-1].decision) if out else ""
        name, warns = verify_name(resolver, addr)
        more = [f"warning: {prefix}{w}" for w in warns]
        if fold(name) == UNKNOWN:
            more.append(f"warning: {prefix}host address {addr}->name lookup failed")
        req = request(addr, name)
        out.append(Prediction(req, rules.decide(req, dry_run=True), preamble + more))
        first = []
    return out


def plain_prediction(
    rules: Rules, daemon_arg: str, client_arg: str
) -> tuple[Rule, Fixed] | tuple[None, None] | None:
    """predict()'s one prediction as the deciding rule and its outcome, or (None, None)
    for no match (see Rules.plain), for the plainest query: a daemon name alone and a
    client address, nothing to warn about. None: only predict() can say."""
    if "@" in daemon_arg or "/" in daemon_arg or "@" in client_arg or not daemon_arg:
        return None
    if fold(daemon_arg) in ("portmap", "rpcbind") or ip_key(client_arg) is None:
        return None
    return rules.plain(daemon_arg, client_arg, UNKNOWN)


def render(predictions: list[Prediction]) -> list[str]:
    """Predictions as tcpdmatch prints them, a blank line between addresses."""
    out: list[str] = []
    for i, p in enumerate(predictions):
        if i:
            out.append("")
        out.extend(p.lines())
    return out
