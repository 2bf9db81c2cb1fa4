"""The bridge to the access engine: a live connection as a :class:`Request`, and labels.

tcpd names a client in its log as ``eval_client()`` does: ``user@host`` when the ident user
is known, where host is the verified name if a rule made libwrap look it up and the
address otherwise.
"""

from __future__ import annotations

from todokede.access import Decision, Request, Rules, verify_name
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


def decide(
    rules: Rules, resolver: CachingResolver, request: Request, *, blocking: bool
) -> tuple[Decision, str] | None:
    """The engine's decision and the host label tcpd would log for it.

    Without ``blocking`` only cached name lookups are answered, and ``None`` says the
    decision needs a real lookup (the caller then repeats it where blocking is fine).
    """
    resolver.begin(blocking=blocking)
    decision = rules.decide(request)
    if not blocking and resolver.missed():
        return None
    addr = request.client_addr or "unknown"
    host = addr
    if resolver.asked_for_name(addr):
        # The engine looked the name up, so tcpd would log it: ask the same question of
        # the cache (every answer is there now) to learn whether the name was verified.
        resolver.begin(blocking=False)
        name, _ = verify_name(resolver, addr)
        if name.lower() not in ("unknown", "paranoid"):
            host = name
    return decision, host


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
