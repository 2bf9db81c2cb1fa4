"""Log lines in, events out: syslog framing (BSD, RFC 3339, RFC 5424), files (plain, .gz,
.bz2, .xz, rotated sets, stdin, ``tail -F``), and parsers for tcpd, sendmail, Postfix,
UW imapd / Dovecot, failed logins (sshd and the rest: :mod:`todokede.logs.auth`) and
fail2ban filters; the systemd journal (:mod:`todokede.logs.journal`). Nothing here decides
what is an incident: that is :mod:`todokede.detect`.
"""

from todokede.logs import auth, imap, mail, tcpd
from todokede.logs.events import Event
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Frame, Framer, YearRule

__all__ = ["Event", "Filter", "Framer", "YearRule", "parse_frame", "parse_line"]


def parse_line(line: bytes, framer: Framer) -> Event | None:
    """Frame one line and hand it to the parser of its program (None: nothing to say).

    The scanner's hot loop does the same for the common lines by slicing; this is the
    reference path (tests check that both agree).
    """
    f = framer.frame(line)
    return None if f is None else parse_frame(f)


def parse_frame(f: Frame) -> Event | None:
    """The event of a framed line (a syslog line's or a journal entry's), as
    :func:`parse_line` gives it."""
    ts, _host, prog, _pid, msg = f
    if prog.startswith(b"postfix/"):
        failed = auth.postfix_sasl(ts, prog, msg) if b"authentication failed" in msg else None
        return failed or mail.parse_postfix(ts, prog, msg)
    if prog in (b"sendmail", b"sm-mta"):
        failed = auth.sendmail(ts, prog, msg) if b"AUTH failure" in msg else None
        return failed or mail.parse_sendmail(ts, prog, msg)
    if msg.startswith((b"connect from ", b"refused connect from ")):
        return tcpd.parse(ts, prog, msg)
    if prog in auth.SSHD:
        return auth.sshd(ts, prog, msg)
    if prog in imap.PROGRAMS:
        return imap.parse(ts, prog, msg)
    return None
