/* tcpd's refused connections (tcpd.parse, then State.refused_connect): the fields sliced
 * here as tcpd.parse reads them, the aggregate kept by Python. Only plain ASCII lines:
 * the rest go to the general path, which decodes them. */
#include "_fast.h"

static int
hex_digit(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* tcpd.looks_like_address: [0-9a-fA-F.]*:[0-9a-fA-F:.]* or four dotted runs of digits */
static int
looks_like_address(Span s)
{
    int colon = 0, v6 = 1;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        colon |= s.s[i] == ':';
        v6 &= hex_digit(s.s[i]) || s.s[i] == '.' || s.s[i] == ':';
    }
    if (v6 && colon)
        return 1;
    int dots = 0, run = 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (s.s[i] >= '0' && s.s[i] <= '9')
            run++;
        else if (s.s[i] == '.' && run > 0 && dots < 3)
            dots++, run = 0;
        else
            return 0;
    }
    return dots == 3 && run > 0;
}

static int
same_lower(Span s, const char *word, Py_ssize_t n) /* s.lower() == word (ASCII) */
{
    return s.n == n && PyOS_strnicmp(s.s, word, (size_t)n) == 0;
}

/* 1: taken, 0: for the general path, -1: error */
int
tk_refused(PyObject *refused, const Frame *f, const char *line, Py_ssize_t len)
{
    const char *rest = f->msg.s + 21; /* after "refused connect from " */
    Py_ssize_t rn = f->msg.n - 21;
    if (!tk_is_ascii(f->msg.s, f->msg.n) || !tk_is_ascii(f->prog.s, f->prog.n) ||
        !tk_is_ascii(f->host.s, f->host.n))
        return 0;
    /* client, _, paren = rest.partition(b" ") */
    const char *sp = memchr(rest, ' ', (size_t)rn);
    Span client = {rest, sp ? sp - rest : rn}, paren = {"", 0}, user = {"", 0}, addr = {"", 0};
    if (sp != NULL)
        paren = (Span){sp + 1, rn - client.n - 1};
    if (client.n == 0)
        return 1; /* tcpd.parse: nothing */
    for (Py_ssize_t i = client.n - 1; i >= 0; i--)
        if (client.s[i] == '@') {
            user = (Span){client.s, i};
            client = (Span){client.s + i + 1, client.n - i - 1};
            break;
        }
    Span host = client;
    if (paren.n >= 2 && paren.s[0] == '(' && paren.s[paren.n - 1] == ')')
        addr = (Span){paren.s + 1, paren.n - 2};
    if (looks_like_address(host)) {
        if (addr.n == 0)
            addr = host;
        host = (Span){"", 0};
    }
    if (same_lower(host, LIT("unknown")) || same_lower(host, LIT("paranoid")))
        host = (Span){"", 0};
    Span service = f->prog.n > 0 ? f->prog : (Span){"unknown", 7};
    /* refused_connect(service, ts, host, addr, user, raw, target) */
    Span text[7] = {service, {"", 0}, host, addr, user, {line, len}, f->host};
    PyObject *a[7] = {NULL}, *r = NULL;
    int i = 0;
    for (; i < 7; i++) {
        a[i] = i == 1   ? PyLong_FromLongLong(f->ts)
               : i == 5 ? PyBytes_FromStringAndSize(text[i].s, text[i].n)
                        : PyUnicode_FromStringAndSize(text[i].s, text[i].n);
        if (a[i] == NULL)
            break;
    }
    if (i == 7)
        r = PyObject_Vectorcall(refused, a, 7, NULL);
    for (int j = 0; j < 7; j++)
        Py_XDECREF(a[j]);
    Py_XDECREF(r);
    return r != NULL ? 1 : -1;
}
