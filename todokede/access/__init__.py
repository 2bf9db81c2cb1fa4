"""tcp_wrappers-compatible access control: hosts.allow / hosts.deny decided exactly as
libwrap decides them.

    from todokede.access import Request, Rules, HostsFileResolver
    rules = Rules.load(Path("/etc"))
    decision = rules.decide(Request("imapd", "192.0.2.7"))
    decision.access, decision.matched, decision.options

Load once, decide many: patterns are compiled at load and ``decide`` re-reads the files
only when one of them changed.
"""

from todokede.access.check import Finding, check
from todokede.access.compiled import Rule
from todokede.access.engine import (
    AclExec,
    Decision,
    Ident,
    Match,
    Request,
    Rules,
    expand_percent,
)
from todokede.access.options import Option
from todokede.access.query import Prediction, predict
from todokede.access.resolve import (
    HostEntry,
    HostsFileResolver,
    Resolver,
    SystemResolver,
    verify_name,
)

__all__ = [
    "AclExec",
    "Decision",
    "Finding",
    "HostEntry",
    "HostsFileResolver",
    "Ident",
    "Match",
    "Option",
    "Prediction",
    "Request",
    "Resolver",
    "Rule",
    "Rules",
    "SystemResolver",
    "check",
    "expand_percent",
    "predict",
    "verify_name",
]
