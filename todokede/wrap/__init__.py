"""``todokede wrap``: a tcpd for today, in front of any TCP service.

Listener mode accepts connections itself (or takes sockets from systemd), decides each one
with the hosts.allow/hosts.deny engine of :mod:`todokede.access`, logs exactly as tcpd
does, and then proxies to the backend or refuses. Inetd mode does what tcpd does under
inetd: the connection on standard input, decide, log, exec the daemon.

    from todokede.wrap import WrapConfig, Wrapper, TcpdLog, SyslogSink

Modules: ``listener`` (admission: limits, decision, options, log), ``accept`` (the
listening sockets), ``connect`` (the backend connect), ``splice`` (the client and backend
halves of a connection, on plain sockets in one epoll set that the event loop watches),
``inetd`` (inetd mode, socket activation), ``options``
(hosts_options(5) on live connections), ``lookup`` (cached, time-limited name lookups and
RFC 1413 ident), ``tcpdlog`` (tcpd's log lines), ``request`` (the bridge to the access
engine), ``commands`` (spawn/twist/aclexec children).
Names are imported on first use so that ``todokede wrap --inetd`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "WrapConfig": "listener",
    "Wrapper": "listener",
    "Stats": "listener",
    "run_inetd": "inetd",
    "activated_sockets": "inetd",
    "CachingResolver": "lookup",
    "ident_user": "lookup",
    "parse_address": "request",
    "TcpdLog": "tcpdlog",
    "SyslogSink": "tcpdlog",
    "FileSink": "tcpdlog",
    "MemorySink": "tcpdlog",
    "open_sink": "tcpdlog",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'todokede.wrap' has no attribute {name!r}")
    return getattr(importlib.import_module(f"todokede.wrap.{module}"), name)
