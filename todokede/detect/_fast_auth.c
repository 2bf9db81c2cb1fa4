/* Which lines of the login programs may be failed logins (todokede/logs/auth.py): those go
 * to the general path, where auth.sshd and the others read them; the rest of sshd's lines
 * (sessions opened and closed, keys accepted...) are skipped here. The lists are auth.py's
 * SSHD, SSHD_WRAPPED and SSHD_STARTS and imap.PROGRAMS, kept here as C arrays and given to
 * Python as tuples, so that a test compares them with the Python ones. */
#include "_fast.h"

static const char *const SSHD_PROGRAMS[] = {"sshd", "sshd-session", "sshd-auth", "in.sshd"};

/* a message sshd() unwraps before it looks: Solaris's "[ID n facility] ", and
 * "message repeated N times: [ ... ]" */
static const char *const SSHD_WRAPPED[] = {"[ID ", "message "};

/* the beginnings of every message auth.sshd reads */
static const char *const SSHD_STARTS[] = {
    "Failed ",
    "pam_unix(",
    "Invalid user ",
    "Illegal user ",
    "maximum authentication attempts exceeded for ",
    "error: maximum authentication attempts exceeded for ",
    "Connection closed by invalid user ",
    "Connection closed by authenticating user ",
    "Disconnected from invalid user ",
    "Disconnected from authenticating user ",
    "Connection reset by invalid user ",
    "Connection reset by authenticating user ",
    "Disconnecting invalid user ",
    "Disconnecting authenticating user ",
    "User ",
    "PAM: ",
    "error: PAM: ",
};

static const char *const IMAP_PROGRAMS[] = {
    "imapd",  "ipop3d",  "ipop2d",     "in.imapd",   "in.ipop3d", "popper",
    "dovecot", "imap-login", "pop3-login", "imap",    "pop3",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int
one_of(Span s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if ((size_t)s.n == len && memcmp(s.s, names[i], len) == 0)
            return 1;
    }
    return 0;
}

static int
starts_one_of(Span s, const char *const *prefixes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(prefixes[i]);
        if ((size_t)s.n >= len && memcmp(s.s, prefixes[i], len) == 0)
            return 1;
    }
    return 0;
}

int
tk_sshd_program(Span prog)
{
    return one_of(prog, SSHD_PROGRAMS, COUNT(SSHD_PROGRAMS));
}

int
tk_imap_program(Span prog)
{
    return one_of(prog, IMAP_PROGRAMS, COUNT(IMAP_PROGRAMS));
}

int
tk_sshd(const Frame *f)
{
    return starts_one_of(f->msg, SSHD_WRAPPED, COUNT(SSHD_WRAPPED)) ||
                   starts_one_of(f->msg, SSHD_STARTS, COUNT(SSHD_STARTS))
               ? 0
               : 1;
}

static PyObject *
names(const char *const *list, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        PyObject *b = PyBytes_FromString(list[i]);
        if (b == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, b);
    }
    return t;
}

int
tk_auth_names(PyObject *module)
{
    struct {
        const char *name;
        const char *const *list;
        size_t n;
    } lists[] = {
        {"SSHD_PROGRAMS", SSHD_PROGRAMS, COUNT(SSHD_PROGRAMS)},
        {"SSHD_WRAPPED", SSHD_WRAPPED, COUNT(SSHD_WRAPPED)},
        {"SSHD_STARTS", SSHD_STARTS, COUNT(SSHD_STARTS)},
        {"IMAP_PROGRAMS", IMAP_PROGRAMS, COUNT(IMAP_PROGRAMS)},
    };
    for (size_t i = 0; i < COUNT(lists); i++) {
        PyObject *t = names(lists[i].list, lists[i].n);
        if (t == NULL || PyModule_AddObject(module, lists[i].name, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
    }
    return 0;
}
