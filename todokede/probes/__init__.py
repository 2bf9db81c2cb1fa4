"""Probes of one's own servers for the holes the reports name.

    probe_relay(host, port=25, *, to_domain=..., from_domain=None, starttls=False,
                limits=Limits(), total=120.0, per_session=8, concurrency=4) -> RelayResult
    probe_imap(host, port=None, *, tls="auto"|"none"|"starttls"|"tls", limits=Limits(),
               total=60.0) -> ImapResult
    check_postfix_config(path) -> ConfigCheck

Async forms: ``relay_battery`` and ``imap_probe``. A probe returns a result for any answer
the server gives and raises ``ProbeError`` only when it could not check.
"""

from todokede.probes.imap import ImapResult, imap_probe, probe_imap
from todokede.probes.postfixconf import ConfigCheck, ConfigFinding, analyse, check_postfix_config
from todokede.probes.relay import (
    DEFAULT_TO_DOMAIN,
    RelayResult,
    RelayTest,
    TestResult,
    battery,
    probe_relay,
    relay_battery,
)
from todokede.probes.wire import Limits

__all__ = [
    "DEFAULT_TO_DOMAIN",
    "ConfigCheck",
    "ConfigFinding",
    "ImapResult",
    "Limits",
    "RelayResult",
    "RelayTest",
    "TestResult",
    "analyse",
    "battery",
    "check_postfix_config",
    "imap_probe",
    "probe_imap",
    "probe_relay",
    "relay_battery",
]
