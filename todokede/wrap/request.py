"""The bridge to the access engine: a live connection as a :class:`Request`, and labels.

tcpd names a client in its log as ``eval_client()`` does: ``user@host`` when the ident user
is known, where host is the verified name if a rule made libwrap look it up and the
address otherwise. The engine gives that label as ``Decision.client``.
"""

from __future__ import annotations

from collections.abc import Iterator

from todokede.access import AclExec, Decision, Ident, Request, Rules
from todokede.errors import ConfigError
from todokede.wrap.lookup import CachingResolver


def make_request(
    daemon: str,
    client: tuple[str, int],
    server: tuple[str, int],
    pid: int,
    user: str | None = None,
) -> Request:
    return Request(
        daemon=daemon,
        client_addr=client[0],
        client_user=user,
        server_addr=server[0],
        pid=pid,
        client_port=client[1],
        server_port=server[1],
    )


def unmap(addr: str) -> str:
    """An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; tcpd logs a.b.c.d."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def client_label(host: str, user: str | None) -> str:
    return f"{user}@{host}" if user else host


class _Deferred:
    """Stands in for the blocking callbacks on the event loop: notes that one was needed
    (the decision is then made again in a worker thread, with the real ones)."""

    needed = False

    def aclexec(self, command: str) -> bool:
        self.needed = True
        return True

    def ident(self, timeout: float) -> str | None:
        self.needed = True
        return None


def decide(
    rules: Rules,
    resolver: CachingResolver,
    request: Request,
    *,
    blocking: bool,
    aclexec: AclExec | None = None,
    ident: Ident | None = None,
) -> Decision | None:
    """The engine's decision for a live connection.

    Without ``blocking`` only cached name lookups are answered and neither ``aclexec``
    nor ``ident`` is called: ``None`` says the decision needs one of them (the caller then
    repeats it where blocking is fine).
    """
    resolver.begin(blocking=blocking)
    if blocking:
        return rules.decide(request, aclexec=aclexec, ident=ident)
    deferred = _Deferred()
    decision = rules.decide(
        request,
        aclexec=deferred.aclexec if aclexec is not None else None,
        ident=deferred.ident if ident is not None else None,
    )
    if deferred.needed or resolver.missed():
        return None
    return decision


def steps(decision: Decision) -> Iterator[tuple[str, str]]:
    """What tcpd does while it decides, in its order: log lines (``warning``, ``error``,
    ``info``, the text without its prefix) and the ``spawn`` commands to run."""
    options = iter(decision.options)
    for kind, text in decision.trace:
        if kind == "option":
            option = next(options)
            if option.name == "spawn" and option.value is not None:
                yield "spawn", option.value
        elif kind in ("warning", "error", "info"):
            yield kind, text


def banners(decision: Decision) -> bytes:
    """The banner text the matched rule's ``banners`` option produced (CR LF, expanded)."""
    return b"".join(
        text.encode("latin-1", "replace") for kind, text in decision.trace if kind == "banner"
    )


def parse_address(text: str, *, default_host: str = "") -> tuple[str, int]:
    """``HOST:PORT``, ``[V6ADDR]:PORT``, ``:PORT`` or ``PORT`` -> ``(host, port)``."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"bad address {text!r}: put an IPv6 address in brackets, [::1]:143")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"bad address {text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"bad address {text!r}: port out of range")
    return host or default_host, number
