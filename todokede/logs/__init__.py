"""Log lines in, events out: syslog framing (BSD, RFC 3339, RFC 5424), files (plain, .gz,
.bz2, .xz, rotated sets, stdin, ``tail -F``), and parsers for tcpd, sendmail, Postfix,
UW imapd / Dovecot and fail2ban filters. Nothing here decides what is an incident: that is
:mod:`todokede.detect`.
"""

from todokede.logs.events import Event
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Framer, YearRule

__all__ = ["Event", "Filter", "Framer", "YearRule", "parse_line"]


def parse_line(line: bytes, framer: Framer) -> Event | None:
    """Frame one line and hand it to the parser of its program (None: nothing to say).

    The scanner's hot loop does the same for the common lines by slicing; this is the
    reference path (tests check that both agree).
    """
    from todokede.logs import imap, mail, tcpd

    f = framer.frame(line)
    if f is None:
        return None
    ts, _host, prog, _pid, msg = f
    if prog.startswith(b"postfix/"):
        return mail.parse_postfix(ts, prog, msg)
    if prog in (b"sendmail", b"sm-mta"):
        return mail.parse_sendmail(ts, prog, msg)
    if msg.startswith((b"connect from ", b"refused connect from ")):
        return tcpd.parse(ts, prog, msg)
    if prog in imap.PROGRAMS:
        return imap.parse(ts, prog, msg)
    return None
