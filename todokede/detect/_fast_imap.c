/* IMAP and POP servers' lines (imap.parse, then State._imap): a login adds its client to
 * the logins set, other lines say nothing. What may be an exploit attempt (a long or
 * binary argument, Dovecot's full input buffer) or a failed login goes to the general
 * path, which keeps it with its evidence; so does a line whose reading would need the
 * regex to look further. */
#include "_fast.h"

static int
binary(const char *s, Py_ssize_t n) /* imap._BINARY: 4 bytes in a row outside text */
{
    int run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        run = c <= 0x08 || (c >= 0x0e && c <= 0x1f) || c >= 0x7f ? run + 1 : 0;
        if (run >= 4)
            return 1;
    }
    return 0;
}

static int
login(PyObject *logins, Span who)
{
    if (who.n == 0)
        return 1;
    PyObject *s = PyUnicode_DecodeASCII(who.s, who.n, "replace");
    int r = s ? PySet_Add(logins, s) : -1;
    Py_XDECREF(s);
    return r < 0 ? -1 : 1;
}

/* imap._dovecot */
static int
dovecot(PyObject *logins, const char *msg, Py_ssize_t mn)
{
    if (tk_starts(msg, mn, 0, LIT("imap-login: ")) ||
        tk_starts(msg, mn, 0, LIT("pop3-login: "))) {
        msg += 12;
        mn -= 12;
    }
    if (tk_starts(msg, mn, 0, LIT("Info: "))) {
        msg += 6;
        mn -= 6;
    }
    if (tk_starts(msg, mn, 0, LIT("auth")) || tk_find(msg, mn, 0, LIT("(auth failed, ")) >= 0)
        return 0; /* a failed login, maybe (auth.dovecot) */
    if (tk_find(msg, mn, 0, LIT("Input buffer full")) >= 0 ||
        tk_find(msg, mn, 0, LIT("Too long")) >= 0 || tk_find(msg, mn, 0, LIT("too long")) >= 0)
        return 0;
    if (!tk_starts(msg, mn, 0, LIT("Login: ")))
        return 1;
    Span addr = {"", 0};
    for (Py_ssize_t at = tk_find(msg, mn, 0, LIT("rip=")); at >= 0;
         at = tk_find(msg, mn, at + 1, LIT("rip="))) {
        Py_ssize_t e = at + 4; /* _RIP: rip=([0-9a-fA-F.:]+) */
        while (e < mn && (msg[e] == '.' || msg[e] == ':' || (msg[e] >= '0' && msg[e] <= '9') ||
                          ((msg[e] | 0x20) >= 'a' && (msg[e] | 0x20) <= 'f')))
            e++;
        if (e > at + 4) {
            addr = (Span){msg + at + 4, e - at - 4};
            break;
        }
    }
    return login(logins, addr);
}

#define SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))

/* UW imapd / ipop3d: _UW_USER, user=(.*?) (?:auth=.*? )?host=(\S*)(?: \[([^\]]*)\])? */
static int
uw(PyObject *logins, const char *msg, Py_ssize_t mn)
{
    if (mn > 2048)
        return 0; /* imap._UW_MAX: the regex looks at the first 2048 bytes only */
    if (tk_starts(msg, mn, 0, LIT("Login failed ")) ||
        tk_starts(msg, mn, 0, LIT("Login excessive ")))
        return 0; /* a failed login: counted by Python */
    Py_ssize_t u = tk_find(msg, mn, 0, LIT("user="));
    if (u < 0)
        return 0;
    Py_ssize_t h = tk_find(msg, mn, u + 5, LIT(" host="));
    Py_ssize_t a = tk_find(msg, mn, u + 5, LIT(" auth="));
    if (h < 0)
        return 1; /* no match at any "user=": nothing */
    Py_ssize_t user_end = a >= 0 && a < h ? a : h;
    Span user = {msg + u + 5, user_end - u - 5};
    if (user.n >= 64 || binary(user.s, user.n))
        return 0; /* an exploit attempt, maybe */
    if (!tk_starts(msg, mn, 0, LIT("Login user=")) &&
        !tk_starts(msg, mn, 0, LIT("Authenticated user=")))
        return 1;
    Py_ssize_t k = h + 6;
    while (k < mn && !SPACE(msg[k]))
        k++;
    Span host = {msg + h + 6, k - h - 6}, addr = {"", 0};
    if (k + 1 < mn && msg[k] == ' ' && msg[k + 1] == '[') {
        const char *close = memchr(msg + k + 2, ']', (size_t)(mn - k - 2));
        if (close != NULL)
            addr = (Span){msg + k + 2, close - msg - k - 2};
    }
    return login(logins, addr.n > 0 ? addr : host);
}

int
tk_imap(PyObject *logins, const Frame *f)
{
    const char *msg = f->msg.s;
    Py_ssize_t mn = f->msg.n;
    Span p = f->prog;
    if ((p.n == 7 && memcmp(p.s, "dovecot", 7) == 0) ||
        tk_find(p.s, p.n, 0, LIT("-login")) >= 0 || tk_starts(msg, mn, 0, LIT("imap-login: ")) ||
        tk_starts(msg, mn, 0, LIT("pop3-login: ")))
        return dovecot(logins, msg, mn);
    if (tk_starts(msg, mn, 0, LIT("Login")) || tk_starts(msg, mn, 0, LIT("Authenticat")) ||
        tk_find(msg, mn, 0, LIT(" user=")) >= 0)
        return uw(logins, msg, mn);
    return binary(msg, mn) ? 0 : 1;
}
