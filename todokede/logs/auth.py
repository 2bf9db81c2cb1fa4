"""Password guessing: the failed logins of sshd, Dovecot, Postfix and sendmail (UW imapd's
``Login failed`` is read with its other lines, in :mod:`todokede.logs.imap`).

Each line that says a client failed to authenticate becomes a ``failure`` event: ``addr``
or ``host`` the client, ``user`` the name it tried, ``size`` the number of tries the line
stands for. A line that is itself a rejected try (sshd's ``Failed password``, Postfix's
``SASL LOGIN authentication failed``, Dovecot's ``auth failed, 3 attempts``) counts them; a
line that only goes with tries logged elsewhere (``Invalid user``, PAM's ``authentication
failure``, a pre-authentication disconnect of an invalid user) counts 0, so that one guess
is not counted three times; the findings count such lines only for a client with no try.

sshd (OpenSSH 7 to 9.x; ``sshd-session`` since 9.8)::

    Failed password for invalid user admin from 203.0.113.5 port 41234 ssh2
    message repeated 2 times: [ Failed password for root from 203.0.113.5 port 41234 ssh2]
    Invalid user admin from 203.0.113.5 port 41234
    pam_unix(sshd:auth): authentication failure; logname= ... rhost=203.0.113.5  user=root
    error: PAM: Authentication failure for root from 203.0.113.5
    error: maximum authentication attempts exceeded for root from 203.0.113.5 port 41234 ssh2
    Connection closed by invalid user admin 203.0.113.5 port 41234 [preauth]
    Disconnected from authenticating user root 203.0.113.5 port 41234 [preauth]
    Disconnecting invalid user admin 203.0.113.5 port 41234: Too many authentication ...
    User root from 203.0.113.5 not allowed because not listed in AllowUsers

The user name is the client's own text: sshd writes it before the address, so the address
is the last ``from ADDR port N`` of the line.
"""

from __future__ import annotations

import re

from todokede.logs.events import Event
from todokede.logs.tcpd import looks_like_address
from todokede.logs.text import field

SSHD = frozenset({b"sshd", b"sshd-session", b"sshd-auth", b"in.sshd"})
# what sshd() unwraps first: Solaris's "[ID 800047 auth.info] ", "message repeated"
SSHD_WRAPPED = (b"[ID ", b"message ")
# the beginnings of every message sshd() reads, unwrapped: the C scanner skips the other
# lines of sshd and keeps a copy of these (tests/detect/test_fast.py compares the two)
SSHD_STARTS = (
    b"Failed ",
    b"pam_unix(",
    b"Invalid user ",
    b"Illegal user ",
    b"maximum authentication attempts exceeded for ",
    b"error: maximum authentication attempts exceeded for ",
    *(
        closed + b" " + who + b" user "
        for closed in (
            b"Connection closed by",
            b"Disconnected from",
            b"Connection reset by",
            b"Disconnecting",
        )
        for who in (b"invalid", b"authenticating")
    ),
    b"User ",
    b"PAM: ",
    b"error: PAM: ",
)

_SOLARIS = re.compile(rb"\[ID \d+ [a-z0-9.]+\] ")
_REPEATED = re.compile(rb"message repeated (\d+) times: \[ ?(.*?)\]?$", re.S)
# with the port (OpenSSH since 3.x), else without; only a key's or ruser's text may
# follow, so the client is the first "from ADDR port N" the end of the line or ": " follows
# (as fail2ban reads it); guard reads whole lines with it (todokede.guard.detectors)
FAILED = re.compile(
    rb"Failed (\S+) for (?:(?:invalid|illegal) user )?(.*?) from (\S+) port \d+"
    rb"(?: ssh\d?)?(?:: .*)?$",
    re.S,
)
_FAILED_BARE = re.compile(
    rb"Failed (\S+) for (?:(?:invalid|illegal) user )?(.*) from (\S+?)\s*$", re.S
)
_NOTED = (
    re.compile(rb"(?:Invalid|Illegal) user (.*) from (\S+?)(?: port \d+)?\s*$", re.S),
    re.compile(
        rb"(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?(.*) "
        rb"from (\S+) port \d+",
        re.S,
    ),
    re.compile(
        rb"(?:Connection closed by|Disconnected from|Connection reset by|Disconnecting) "
        rb"(?:invalid|authenticating) user (.*) (\S+) port \d+(?::.*)? \[preauth\]$",
        re.S,
    ),
    re.compile(rb"User (\S+) from (\S+) not allowed because", re.S),
    re.compile(
        rb"(?:error: )?PAM: [Aa]uthentication (?:failure|error) for (?:illegal user )?(.*) "
        rb"from (\S+?)(?: via \S+)?$",
        re.S,
    ),
)
_PAM = re.compile(rb"pam_unix\([a-z0-9_-]+:auth\): authentication failure;.* rhost=(\S*)")
_PAM_USER = re.compile(rb" user=(\S+)\s*$")
_DOVECOT = re.compile(rb"\(auth failed, (\d+) attempts")
_DOVECOT_USER = re.compile(rb"user=<([^>]*)>")
_RIP = re.compile(rb"rip=([0-9a-fA-F.:]+)")
# auth_verbose: "auth-worker(304): pam(kenji,192.0.2.4): unknown user" and the like: the
# passdb lookup (user, client) before one of the verdicts
_DOVECOT_AUTH = re.compile(
    rb"\b(?:passwd-file|pam|sql|ldap|passwd|shadow|checkpassword|bsdauth)"
    rb"\(([^,)]*),([0-9a-fA-F.:]+)[,)]"
)
DOVECOT_VERDICTS = (
    b"unknown user",
    b"assword mismatch",
    b"pam_authenticate() failed",
    b"invalid credentials",
)
_SASL = re.compile(
    rb"warning: (\S*)\[([^\]]*)\]: SASL (\S+) authentication failed(?:.*sasl_username=(\S+))?"
)
# the server's trouble, or a client that spoke a mechanism not offered: no password tried
_SASL_NOT_GUESSING = (
    b": Connection lost to authentication server",
    b": Invalid authentication mechanism",
)
_SENDMAIL = re.compile(
    rb"AUTH failure \(([^)]*)\):.*?(?:user=(\S*?),? )?relay=(\S*?) ?\[([^\]]*)\]"
)


def _client(text: bytes) -> tuple[str, str]:
    """(host name, address) of a client sshd names by either."""
    s = field(text)
    if s.startswith("::ffff:") and "." in s:
        s = s[7:]
    return ("", s) if looks_like_address(s) else (s, "")


def sshd(ts: int, prog: bytes, msg: bytes) -> Event | None:
    """A failed login in an sshd message (None: something else)."""
    if msg[:4] == b"[ID ":
        m = _SOLARIS.match(msg)
        if m:
            msg = msg[m.end() :]
    tries = 1
    if msg[:8] == b"message ":
        rep = _REPEATED.match(msg)
        if rep is None:
            return None
        tries, msg = int(rep.group(1)), rep.group(2)
    if not msg.startswith(SSHD_STARTS):
        return None
    service = field(prog)
    if msg[:7] == b"Failed ":
        m = FAILED.match(msg) or _FAILED_BARE.match(msg)
        if m is None or m.group(1) == b"publickey":
            return None  # a client offers each of its keys in turn: not guessing
        host, addr = _client(m.group(3))
        # "Failed none": the client asked what it may try, which is not a try
        size = 0 if m.group(1) == b"none" else tries
        return Event(
            "failure", service, ts, host=host, addr=addr, user=field(m.group(2)), size=size
        )
    if msg[:9] == b"pam_unix(":
        m = _PAM.match(msg)
        if m is None or not m.group(1):
            return None
        host, addr = _client(m.group(1))
        u = _PAM_USER.search(msg)
        return Event(
            "failure", service, ts, host=host, addr=addr, user=field(u.group(1)) if u else ""
        )
    for pattern in _NOTED:
        m = pattern.match(msg)
        if m is not None:
            host, addr = _client(m.group(2))
            return Event("failure", service, ts, host=host, addr=addr, user=field(m.group(1)))
    return None


def dovecot(ts: int, service: str, msg: bytes) -> Event | None:
    """A Dovecot login process's ``auth failed`` or an auth process's failed passdb lookup."""
    m = _DOVECOT.search(msg)
    if m is not None:
        rip = _RIP.search(msg)
        user = _DOVECOT_USER.search(msg)
        return Event(
            "failure",
            service,
            ts,
            addr=field(rip.group(1)) if rip else "",
            user=field(user.group(1)) if user else "",
            size=int(m.group(1)[:6]),
        )
    if msg[:4] != b"auth":
        return None
    # the lookup is searched before the last verdict only: one pass, however long the line
    verdict = max(msg.rfind(v) for v in DOVECOT_VERDICTS)
    a = _DOVECOT_AUTH.search(msg, 0, verdict) if verdict > 0 else None
    if a is not None:
        return Event("failure", "dovecot", ts, addr=field(a.group(2)), user=field(a.group(1)))
    return None


def postfix_sasl(ts: int, prog: bytes, msg: bytes) -> Event | None:
    """Postfix smtpd: ``warning: host[addr]: SASL LOGIN authentication failed: ...``."""
    m = _SASL.search(msg)
    if m is None or msg[msg.find(b" authentication failed") + 22 :].startswith(_SASL_NOT_GUESSING):
        return None
    name = field(m.group(1))
    return Event(
        "failure",
        field(prog),
        ts,
        host="" if name == "unknown" else name,
        addr=field(m.group(2)),
        user=field(m.group(4) or b"").rstrip(","),
        size=1,
    )


def sendmail(ts: int, prog: bytes, msg: bytes) -> Event | None:
    """sendmail: ``AUTH failure (LOGIN): ... user=taro, relay=host [addr]``."""
    m = _SENDMAIL.search(msg)
    if m is None:
        return None
    return Event(
        "failure",
        field(prog),
        ts,
        host=field(m.group(3)),
        addr=field(m.group(4)),
        user=field(m.group(2) or b""),
        size=1,
    )
