"""The one value the parsers hand to the detectors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    """What one log line says, in the parsers' shared vocabulary.

    ``kind`` is one of:
      connect   tcpd/wrap: ``status`` "granted" or "refused"; host, addr, user
      client    mail: a client handed over a message (``qid``, host, addr)
      from      mail: envelope sender and ``size`` of ``qid`` (sendmail: with the client)
      to        mail: delivery of ``qid`` to ``rcpts`` via ``via`` (transport/mailer);
                ``status`` sent|deferred|bounced; ``detail`` the original recipient
      reject    mail: a refused RCPT (``status`` "relay-denied" or "rejected")
      notice    mail: ``qid`` caused a non-delivery notice, queued as ``via``
      login     imap/pop: a successful login (the host is then known)
      exploit   imap/pop/smtp: an over-long or binary command (``detail`` says which)
      failure   a fail2ban filter's failregex matched (``service`` is the filter)
    """

    kind: str
    service: str
    ts: int
    host: str = ""
    addr: str = ""
    qid: str = ""
    sender: str = ""
    rcpts: tuple[str, ...] = ()
    size: int = 0
    status: str = ""
    via: str = ""
    user: str = ""
    detail: str = ""
