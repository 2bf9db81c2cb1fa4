"""Real servers on loopback, started and stopped by the tests themselves.

``postfix(tmp_path, "closed"|"open")`` builds a self-contained Postfix instance (its own
config dir, queue, data dir and ``maillog_file``; every transport is ``discard`` so nothing
leaves the machine; no chroot), ``dovecot(tmp_path)`` a self-contained Dovecot IMAP
server (own base dir, passwd-file user, plaintext auth allowed) and ``sshd(tmp_path)``
OpenSSH's sshd (own config, host key and port, a throwaway user, its syslog written to a
file by the test). Each listens on a free 127.0.0.1 port, waits a bounded time for it, and
always stops on exit, so several instances can run at once (pytest-xdist, parallel suites).

    from tests.realservers import postfix, dovecot

    def test_closed(tmp_path):
        with postfix(tmp_path, "closed") as pf:
            ...  # pf.host, pf.port, pf.maillog, pf.config_dir
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.conftest import need, need_root

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # seconds to wait for a server's port
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class PostfixServer:
    host: str
    port: int
    maillog: Path
    config_dir: Path
    mode: str = "closed"
    hostname: str = "mx.sandbox.example"
    domain: str = "sandbox.example"
    tls: bool = False


@dataclass(frozen=True)
class DovecotServer:
    host: str
    port: int
    user: str
    password: str
    tls_port: int | None = None  # implicit TLS (imaps) when started with tls=True
    cert: Path | None = None
    log: Path | None = None
    auth_socket: Path | None = None  # for Postfix's SASL (smtpd_sasl_type = dovecot)
    config: Path | None = None  # for doveadm -c (log reopen after a rotation)


def free_port(host: str = HOST) -> int:
    """A port the kernel just handed out on ``host`` (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


def wait_port(host: str, port: int, *, up: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port) == up:
            return True
        time.sleep(0.05)
    return False


def self_signed_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A throw-away certificate and key for ``name`` made with the openssl CLI."""
    need("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def _instance_dir(name: str) -> Path:
    """A fresh server root that the servers' unprivileged users can traverse.

    pytest's ``tmp_path`` sits below a mode-0700 directory, which Postfix's and Dovecot's
    unprivileged processes cannot enter, so the instance lives in its own 0755 directory in
    the system temp dir (removed on exit) and only its logs go to ``tmp_path``."""
    root = Path(tempfile.mkdtemp(prefix=f"todokede-{name}-"))
    root.chmod(0o755)
    return root


def _daemon(args: list[str], root: Path) -> tuple[int, str]:
    """Run a command that may leave a daemon behind: its output goes to a file, not to a
    pipe the daemon would keep open (which would make us wait for it forever)."""
    out = root / "command.out"
    with out.open("w") as f:
        proc = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, timeout=60
        )
    return proc.returncode, out.read_text(errors="replace")


def _tail(path: Path, size: int = 2000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(args)}\n{proc.stdout}{proc.stderr}"
        )
    return proc


# --- Postfix ---------------------------------------------------------------------------

# A complete master.cf, written here so the harness does not depend on /etc/postfix.
# No service is chrooted; one smtpd listens on the endpoint given.
_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
myhostname = {hostname}
mydomain = {domain}
myorigin = $mydomain
mydestination = $myhostname, $mydomain, localhost
queue_directory = {root}/spool
data_directory = {root}/data
mail_spool_directory = {root}/mail
mail_owner = postfix
setgid_group = postdrop
alias_maps = hash:{conf}/aliases
alias_database = hash:{conf}/aliases
inet_interfaces = {host}
inet_protocols = ipv4
smtp_dns_support_level = disabled
# nothing leaves this machine
default_transport = discard
relay_transport = discard
relayhost =
# logging without syslog (Postfix >= 3.4; the postlog service is in master.cf)
maillog_file = {maillog}
maillog_file_prefixes = {logdir}
biff = no
readme_directory = no
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
delay_warning_time = 0
# Test traffic opens many transactions that are never delivered (relay tests RSET after
# RCPT); with the default 1 s flow control each new one would wait for a delivery token.
in_flow_delay = 0
"""

_CLOSED = """\
# CLOSED relay: loopback is NOT trusted, so a client on 127.0.0.1 is treated as the Internet
mynetworks =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
"""

# smtpd_relay_restrictions = permit would make smtpd exit fatally: Postfix refuses a
# restriction-free relay, so the open relay trusts every network instead.
_OPEN = """\
# OPEN relay (deliberately broken, loopback-only test target): every client is trusted
mynetworks = 0.0.0.0/0
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
"""

_TLS = """\
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
"""


def _stop(command: list[str], pidfile: Path, port: int) -> None:
    """Stop a server with its own command; if its port stays open, kill its master by pid."""
    with contextlib.suppress(Exception):
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=STOP_TIMEOUT,
        )
    if wait_port(HOST, port, up=False, timeout=STOP_TIMEOUT):
        return
    with contextlib.suppress(Exception):
        os.kill(int(pidfile.read_text().split()[0]), 9)


def _postfix_stop(conf: Path, root: Path, port: int) -> None:
    _stop(["postfix", "-c", str(conf), "stop"], root / "spool" / "pid" / "master.pid", port)


@contextlib.contextmanager
def postfix(
    tmp_path: Path,
    mode: Literal["closed", "open"],
    *,
    tls: bool = False,
    extra_main_cf: str = "",
) -> Iterator[PostfixServer]:
    """A running Postfix on 127.0.0.1 configured as a closed or an open relay.

    Mail for local users (postmaster, abuse, MAILER-DAEMON -> root) is delivered into the
    instance's own spool; everything else is discarded. ``tls=True`` adds STARTTLS with a
    self-signed certificate; ``extra_main_cf`` is appended to main.cf."""
    need("postfix", "postconf", "postalias")
    need_root()  # the Postfix master starts as root and drops to mail_owner
    if mode not in ("closed", "open"):
        raise ValueError(f"mode must be 'closed' or 'open', not {mode!r}")
    root = _instance_dir(f"postfix-{mode}")
    conf = root / "etc"
    logdir = Path(tmp_path) / root.name  # kept after the server is gone
    maillog = logdir / "maillog"
    port = 0
    try:
        for d in (conf, logdir, root / "mail", root / "spool"):
            d.mkdir(parents=True)
        (root / "mail").chmod(0o1777)
        (conf / "aliases").write_text("postmaster: root\nabuse: root\nMAILER-DAEMON: postmaster\n")
        extra = ""
        if tls:
            cert, key = self_signed_cert(conf, "mx.sandbox.example")
            extra = _TLS.format(cert=cert, key=key)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken by someone else before we bind
            port = free_port()
            (conf / "master.cf").write_text(_MASTER_CF.format(listen=f"{HOST}:{port}"))
            (conf / "main.cf").write_text(
                _MAIN_CF.format(
                    hostname="mx.sandbox.example",
                    domain="sandbox.example",
                    root=root,
                    host=HOST,
                    maillog=maillog,
                    logdir=logdir,
                    conf=conf,
                )
                + (_CLOSED if mode == "closed" else _OPEN)
                + extra
                + extra_main_cf
            )
            # `postfix start` makes the queue directories itself; `postfix check` (slow)
            # only runs to explain a failure. Both report fatal errors to the maillog.
            if not (conf / "aliases.db").exists():
                _run(["postalias", "-c", str(conf), str(conf / "aliases")], "postalias")
            # Only the fatal checks (they create the queue directories); the warning checks
            # walk the whole installation and would triple the start-up time.
            _daemon(["postfix", "-c", str(conf), "check-fatal"], root)
            (root / "spool" / "quick-start").touch()
            rc, out = _daemon(["postfix", "-c", str(conf), "start"], root)
            if rc == 0 and wait_port(HOST, port, up=True, timeout=START_TIMEOUT):
                break
            _, check = _daemon(["postfix", "-c", str(conf), "check"], root)
            last_error = f"{out}{check}{_tail(maillog)}"
            _postfix_stop(conf, root, port)
        else:
            raise RuntimeError(f"postfix did not start on {HOST}:\n{last_error}")
        yield PostfixServer(HOST, port, maillog, conf, mode=mode, tls=tls)
    finally:
        if port:
            _postfix_stop(conf, root, port)
        shutil.rmtree(root, ignore_errors=True)


# --- Dovecot ---------------------------------------------------------------------------

_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
info_log_path = {log}
protocols = imap
listen = {host}
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
login_greeting = Dovecot ready.
{haproxy_trusted}mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
{haproxy}  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{sasl}"""

# Postfix asks this socket whether a SASL login is right; failures are answered at once
_DOVECOT_SASL = """\
auth_failure_delay = 0
service auth {
  unix_listener auth-sasl {
    mode = 0666
  }
}
"""


def _dovecot_stop(conf: Path, root: Path, port: int) -> None:
    _stop(["doveadm", "-c", str(conf), "stop"], root / "run" / "master.pid", port)


@contextlib.contextmanager
def dovecot(
    tmp_path: Path, *, tls: bool = False, sasl: bool = False, haproxy: bool = False
) -> Iterator[DovecotServer]:
    """A running Dovecot IMAP server on 127.0.0.1 with user ``tester``/``secret``.

    With ``tls=True`` it offers STARTTLS on ``port`` and implicit TLS on ``tls_port`` with a
    self-signed certificate (``cert``); with ``sasl=True`` its auth service also listens on
    ``auth_socket`` for Postfix; with ``haproxy=True`` its IMAP listener takes only
    connections that begin with a PROXY protocol header, from 127.0.0.0/8."""
    need("dovecot", "doveadm")
    need_root()  # Dovecot drops to its own users (dovenull, nobody) for logins and mail
    root = _instance_dir("dovecot")
    conf = root / "dovecot.conf"
    logdir = Path(tmp_path) / root.name  # kept after the server is gone
    log = logdir / "dovecot.log"
    user, password = "tester", "secret"
    port = 0
    try:
        for d in (root / "run", root / "state", root / "mail", logdir):
            d.mkdir(parents=True)
        (root / "mail").chmod(0o1777)  # the mail user (nobody) makes its own maildir
        (root / "users").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
        cert: Path | None = None
        ssl_files = ""
        if tls:
            cert, key = self_signed_cert(root, "localhost")
            ssl_files = f"ssl_cert = <{cert}\nssl_key = <{key}\n"
        last_error = ""
        for _attempt in range(3):  # a free port can be taken by someone else before we bind
            port = free_port()
            tls_port = free_port() if tls else 0
            conf.write_text(
                _DOVECOT_CONF.format(
                    root=root,
                    log=log,
                    host=HOST,
                    port=port,
                    tls_port=tls_port,
                    ssl="yes" if tls else "no",
                    ssl_files=ssl_files,
                    sasl=_DOVECOT_SASL if sasl else "",
                    haproxy_trusted="haproxy_trusted_networks = 127.0.0.0/8\n" if haproxy else "",
                    haproxy="    haproxy = yes\n" if haproxy else "",
                )
            )
            rc, out = _daemon(["dovecot", "-c", str(conf)], root)
            if rc == 0 and wait_port(HOST, port, up=True, timeout=START_TIMEOUT):
                break
            last_error = f"{out}{_tail(log)}"
            _dovecot_stop(conf, root, port)
        else:
            raise RuntimeError(f"dovecot did not start on {HOST}:\n{last_error}")
        yield DovecotServer(
            HOST,
            port,
            user,
            password,
            tls_port=tls_port or None,
            cert=cert,
            log=log,
            auth_socket=root / "run" / "auth-sasl" if sasl else None,
            config=conf,
        )
    finally:
        if port:
            _dovecot_stop(conf, root, port)
        shutil.rmtree(root, ignore_errors=True)


# --- OpenSSH ---------------------------------------------------------------------------

_SSHD_CONFIG = """\
Port {port}
ListenAddress {host}
HostKey {root}/host_key
PidFile {root}/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
MaxAuthTries 3
StrictModes no
SyslogFacility AUTH
LogLevel INFO
"""

# sshd logs through syslog(3), to /dev/log, which this machine may not have: it runs in a
# mount namespace of its own whose /dev/log is the test's socket, and whose /etc/passwd and
# /etc/shadow add the throwaway user (nothing changes outside the namespace)
_SSHD_NAMESPACE = """\
set -e
mkdir -p /run/sshd
mount --rbind /dev {root}/dev
mount -t tmpfs tmpfs /dev
for n in null zero random urandom tty; do
    touch /dev/$n
    mount --bind {root}/dev/$n /dev/$n
done
ln -s {root}/log.sock /dev/log
mount --bind {root}/passwd /etc/passwd
mount --bind {root}/shadow /etc/shadow
exec {sshd} -D -f {root}/sshd_config
"""


@dataclass(frozen=True)
class SshdServer:
    host: str
    port: int
    user: str  # exists in sshd's namespace only, with password ``password``
    password: str
    log: Path  # what sshd sent to syslog, as rsyslog writes it (auth.log)
    hostname: str = "gw"


class _Syslog:
    """A syslog daemon's receiving end: datagrams on a Unix socket written as auth.log
    lines (the PRI removed, the host name inserted after the time, as rsyslog does)."""

    def __init__(self, sock_path: Path, log: Path, hostname: str) -> None:
        import threading

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(sock_path))
        sock_path.chmod(0o666)
        self.sock.settimeout(0.2)
        self.log, self.hostname = log, hostname.encode()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.log.open("ab") as out:
            while not self.stopping:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                if data[:1] == b"<":
                    data = data[data.find(b">") + 1 :]
                out.write(data[:15] + b" " + self.hostname + data[15:].rstrip(b"\n") + b"\n")
                out.flush()

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def sshd(tmp_path: Path) -> Iterator[SshdServer]:
    """A running OpenSSH sshd on 127.0.0.1 with its own config, host key and port, password
    logins only, a throwaway user, and its syslog written to ``log``."""
    program = "/usr/sbin/sshd"
    need(program, "ssh-keygen", "unshare", "openssl")
    need_root()  # a mount namespace, and sshd itself
    root = _instance_dir("sshd")
    logdir = Path(tmp_path) / root.name
    logdir.mkdir(parents=True)
    user, password = "tkguest", "right-horse-battery"
    proc: subprocess.Popen[bytes] | None = None
    syslog: _Syslog | None = None
    try:
        (root / "dev").mkdir()
        _run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")],
            "ssh-keygen",
        )
        crypted = _run(["openssl", "passwd", "-6", password], "openssl passwd").stdout.strip()
        (root / "passwd").write_text(
            Path("/etc/passwd").read_text() + f"{user}:x:64999:64999::/nonexistent:/bin/false\n"
        )
        (root / "shadow").write_text(
            Path("/etc/shadow").read_text() + f"{user}:{crypted}:19000:0:99999:7:::\n"
        )
        (root / "shadow").chmod(0o600)
        syslog = _Syslog(root / "log.sock", logdir / "auth.log", "gw")
        (root / "start.sh").write_text(_SSHD_NAMESPACE.format(root=root, sshd=program))
        last_error = ""
        for _attempt in range(3):  # a free port can be taken by someone else before we bind
            port = free_port()
            (root / "sshd_config").write_text(_SSHD_CONFIG.format(port=port, host=HOST, root=root))
            out = (root / "sshd.out").open("wb")
            proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", str(root / "start.sh")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            out.close()
            if wait_port(HOST, port, up=True, timeout=START_TIMEOUT):
                break
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
            last_error = _tail(root / "sshd.out")
        else:
            raise RuntimeError(f"sshd did not start on {HOST}:\n{last_error}")
        yield SshdServer(HOST, port, user, password, logdir / "auth.log")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        if syslog is not None:
            syslog.close()
        shutil.rmtree(root, ignore_errors=True)
