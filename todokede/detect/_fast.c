/* The scanner's hot loop in C: the same results as todokede/detect/state.py's fast path
 * (State._loop) and todokede/detect/queue.py's Queue, with one C pass over each block.
 *
 * Python reads a 150 MB mail log at about 3 microseconds a line, most of it making objects
 * for fields that only a few lines need. Here lines are sliced in place, the messages in
 * flight are kept as small C records (_fast_msg.c, _fast_queue.c) and folded into the mail
 * aggregates when complete (_fast_fold.c), granted tcpd connections are counted per block,
 * and Python objects are made only for what is kept or handed on: a line the fast path
 * does not take goes to the `general` callback, in file order, so that the Python parsers
 * see exactly what they would have seen.
 *
 * Whatever this file is unsure of goes to the general path: a timestamp in an unusual
 * spelling, a line the slicing does not understand. The tests run both implementations
 * on the same input and compare (tests/detect/test_fast.py).
 */
#include "_fast.h"

/* -- bytes.find with Python's meaning of the arguments ---------------------------------- */

Py_ssize_t
tk_find(const char *s, Py_ssize_t n, Py_ssize_t start, const char *sub, Py_ssize_t m)
{
    if (start < 0) {
        start += n;
        if (start < 0)
            start = 0;
    }
    if (start > n || m > n - start)
        return -1;
    if (m == 0)
        return start;
    /* the needles here are short and their first byte rare in a line: memchr and a
     * compare beat memmem's setup for each call */
    const char *p = s + start, *last = s + n - m;
    while (p <= last && (p = memchr(p, sub[0], (size_t)(last - p + 1))) != NULL) {
        if (memcmp(p + 1, sub + 1, (size_t)(m - 1)) == 0)
            return (Py_ssize_t)(p - s);
        p++;
    }
    return -1;
}

int
tk_starts(const char *s, Py_ssize_t n, Py_ssize_t at, const char *prefix, Py_ssize_t m)
{
    return at >= 0 && at <= n && n - at >= m && memcmp(s + at, prefix, (size_t)m) == 0;
}

/* s[start:stop] of Python for 0 <= start; stop may be negative (counted from the end) */
void
tk_slice(Py_ssize_t n, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t *a, Py_ssize_t *len)
{
    if (stop < 0) {
        stop += n;
        if (stop < 0)
            stop = 0;
    }
    if (stop > n)
        stop = n;
    if (start > n)
        start = n;
    *a = start;
    *len = stop > start ? stop - start : 0;
}

/* FNV-1a from a per-process start: the granted table is keyed by client names that
 * an attacker's DNS can choose, so colliding names must not be known in advance */
static uint64_t seed = 1469598103934665603ULL;

uint64_t
tk_hash(const char *h, Py_ssize_t hn, const char *q, Py_ssize_t qn)
{
    uint64_t x = seed;
    for (Py_ssize_t i = 0; i < hn; i++)
        x = (x ^ (unsigned char)h[i]) * 1099511628211ULL;
    x = (x ^ 0x1f) * 1099511628211ULL ^ (uint64_t)hn;
    for (Py_ssize_t i = 0; i < qn; i++)
        x = (x ^ (unsigned char)q[i]) * 1099511628211ULL;
    return x;
}

/* -- granted tcpd connections, counted per block ---------------------------------------- */

typedef struct {
    uint64_t hash;
    const char *prog, *client, *last;
    Py_ssize_t pn, cn, lastn;
    Py_ssize_t pending;
    PyObject *seen; /* the list [count, first line, source, last line, source] in granted */
} Grant;

typedef struct {
    Grant *slots;
    size_t cap, used;
    PyObject *granted, *source;
} Grants;

static uint64_t
hash_pair(const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn)
{
    return tk_hash(a, an, b, bn);
}

static int
grants_flush(Grants *g)
{
    for (size_t i = 0; i < g->cap; i++) {
        Grant *e = &g->slots[i];
        if (e->seen == NULL || e->pending == 0)
            continue;
        PyObject *n = PyLong_FromSsize_t(e->pending);
        PyObject *sum = n ? PyNumber_Add(PyList_GET_ITEM(e->seen, 0), n) : NULL;
        Py_XDECREF(n);
        PyObject *last = sum ? PyBytes_FromStringAndSize(e->last, e->lastn) : NULL;
        if (last == NULL) {
            Py_XDECREF(sum);
            return -1;
        }
        PyList_SetItem(e->seen, 0, sum);
        PyList_SetItem(e->seen, 3, last);
        Py_INCREF(g->source);
        PyList_SetItem(e->seen, 4, g->source);
        e->pending = 0;
    }
    return 0;
}

static void
grants_free(Grants *g)
{
    for (size_t i = 0; i < g->cap; i++)
        Py_XDECREF(g->slots[i].seen);
    PyMem_Free(g->slots);
}

static int
grants_grow(Grants *g)
{
    size_t cap = g->cap ? g->cap * 2 : 256;
    Grant *slots = PyMem_Calloc(cap, sizeof(Grant));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < g->cap; i++) {
        Grant *e = &g->slots[i];
        if (e->seen == NULL)
            continue;
        size_t j = (size_t)e->hash & (cap - 1);
        while (slots[j].seen != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    PyMem_Free(g->slots);
    g->slots = slots;
    g->cap = cap;
    return 0;
}

static int
grants_add(Grants *g, const char *prog, Py_ssize_t pn, const char *client, Py_ssize_t cn,
           const char *line, Py_ssize_t ln)
{
    if ((g->used + 1) * 2 >= g->cap && grants_grow(g) < 0)
        return -1;
    uint64_t hash = hash_pair(prog, pn, client, cn);
    size_t mask = g->cap - 1, i = (size_t)hash & mask;
    for (;; i = (i + 1) & mask) {
        Grant *e = &g->slots[i];
        if (e->seen == NULL)
            break;
        if (e->hash == hash && e->pn == pn && e->cn == cn &&
            memcmp(e->prog, prog, (size_t)pn) == 0 && memcmp(e->client, client, (size_t)cn) == 0) {
            e->pending++;
            e->last = line;
            e->lastn = ln;
            return 0;
        }
    }
    PyObject *key = Py_BuildValue("(y#y#)", prog, pn, client, cn);
    if (key == NULL)
        return -1;
    PyObject *seen = PyDict_GetItemWithError(g->granted, key);
    if (seen != NULL)
        Py_INCREF(seen);
    else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    else {
        /* as granted[key] = [1, line, source, line, source], the count added at the flush */
        PyObject *first = PyBytes_FromStringAndSize(line, ln);
        seen = first ? Py_BuildValue("[iOOOO]", 0, first, g->source, first, g->source) : NULL;
        Py_XDECREF(first);
        if (seen == NULL || PyDict_SetItem(g->granted, key, seen) < 0) {
            Py_XDECREF(seen);
            Py_DECREF(key);
            return -1;
        }
    }
    Py_DECREF(key);
    if (!PyList_Check(seen) || PyList_GET_SIZE(seen) != 5) {
        Py_DECREF(seen);
        PyErr_SetString(PyExc_TypeError, "granted values are 5-item lists");
        return -1;
    }
    g->slots[i] = (Grant){hash, prog, client, line, pn, cn, ln, 1, seen};
    g->used++;
    return 0;
}

/* -- the block loop (State._loop's fast path, State._general's dispatch) ---------------- */

typedef struct {
    Queue *q;
    Grants g;
    PyObject *logins, *refused;
    const char *sasl, *end; /* the block's next "authentication failed", and its end */
    int64_t days[12 * 32];
} Scan;

#define SASL_FAILED "authentication failed" /* state.SASL_FAILED */

/* does the line hold a Postfix SASL failure's words? One search of the block for them, as
 * the general path would find them in the line's message (auth.postfix_sasl) */
static int
sasl_failed(Scan *s, const char *line, Py_ssize_t len)
{
    if (s->sasl != NULL && s->sasl < line)
        s->sasl = memmem(line, (size_t)(s->end - line), LIT(SASL_FAILED));
    return s->sasl != NULL && s->sasl < line + len;
}

static int
is_word(Span s, const char *w, Py_ssize_t n)
{
    return s.n == n && memcmp(s.s, w, (size_t)n) == 0;
}

/* a Postfix line: qid, ": ", then what the queue reads; the rest matters only when it
 * refuses relaying (notices: bounces are known by their null sender) */
static int
postfix_line(Scan *s, const Frame *f, const char *line, Py_ssize_t len)
{
    if (sasl_failed(s, line, len))
        return 0; /* a failed login, maybe: read with the rest of the line by Python */
    const char *msg = f->msg.s;
    Py_ssize_t mn = f->msg.n, qe = tk_find(msg, mn, 0, LIT(": "));
    if (qe < 0)
        return 1; /* parse_postfix: no queue id, nothing to say */
    const char *rest = msg + qe + 2;
    Py_ssize_t rn = mn - qe - 2;
    if (is_word((Span){rest, rn}, LIT("removed")))
        return tk_removed(s->q, f->host.s, f->host.n, msg, qe) < 0 ? -1 : 1;
    if (rn >= 3 && (memcmp(rest, "to=", 3) == 0 || memcmp(rest, "fro", 3) == 0 ||
                    memcmp(rest, "cli", 3) == 0))
        return tk_postfix(s->q, f->ts, f->host.s, f->host.n, f->prog.s, f->prog.n, msg, qe, rest,
                          rn, line, len);
    return tk_find(msg, mn, 0, LIT("Relay access denied")) < 0;
}

/* 1: taken, 0: for the general path, -1: error. The same choices as State._general makes
 * on the framed line, in the same order. */
static int
fast_line(Scan *s, const char *line, Py_ssize_t len)
{
    Frame f;
    if (!tk_frame(line, len, s->days, &f))
        return 0;
    if (f.prog.n >= 8 && memcmp(f.prog.s, "postfix/", 8) == 0)
        return postfix_line(s, &f, line, len);
    const char *msg = f.msg.s;
    Py_ssize_t mn = f.msg.n;
    if (tk_starts(msg, mn, 0, LIT("connect from ")))
        return grants_add(&s->g, f.prog.s, f.prog.n, msg + 13, mn - 13, line, len) < 0 ? -1 : 1;
    if (tk_starts(msg, mn, 0, LIT("refused connect from ")))
        return tk_refused(s->refused, &f, line, len);
    if (is_word(f.prog, LIT("sendmail")) || is_word(f.prog, LIT("sm-mta")))
        return tk_sendmail(s->q, &f, line, len);
    if (tk_imap_program(f.prog))
        return tk_imap(s->logins, &f);
    if (tk_sshd_program(f.prog))
        return tk_sshd(&f);
    return 1; /* a program no detector reads (named, cron, the kernel...) */
}

/* could the general path count this line as a granted connection? ("connect from "
 * other than in "refused connect from ", wherever the framing puts the message) */
static int
may_grant(const char *line, Py_ssize_t len)
{
    for (Py_ssize_t at = tk_find(line, len, 0, LIT("connect from ")); at >= 0;
         at = tk_find(line, len, at + 1, LIT("connect from ")))
        if (at < 8 || memcmp(line + at - 8, "refused ", 8) != 0)
            return 1;
    return 0;
}

PyDoc_STRVAR(scan_block_doc,
             "scan_block(block, days, queue, granted, logins, source, general, refused)\n\n"
             "Read a block of whole lines as State._general reads them: Postfix and "
             "sendmail queue lines into queue, granted tcpd connections into granted, "
             "refused ones to refused(service, ts, host, addr, user, line, target), "
             "IMAP and POP logins into logins, lines of other programs skipped (and those "
             "of sshd that are no failed login); every line that may be a failed login "
             "or that it is unsure of "
             "goes to general(line, n) in file order (n: its number in the block, from 1). "
             "Returns the number of lines. "
             "days: 12 x 32 native int64, the epoch second of each month and day's "
             "midnight, INT64_MIN for no such day.");

static PyObject *
scan_block(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        PyBytes_GET_SIZE(args[1]) != 12 * 32 * 8 || !PyObject_TypeCheck(args[2], &tk_QueueType) ||
        !PyDict_Check(args[3]) || !PySet_Check(args[4]) || !PyUnicode_Check(args[5]) ||
        !PyCallable_Check(args[6]) || !PyCallable_Check(args[7])) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_block(block: bytes, days: bytes, queue: Queue, granted: dict, "
                        "logins: set, source: str, general: callable, refused: callable)");
        return NULL;
    }
    PyObject *block = args[0], *general = args[6];
    const char *buf = PyBytes_AS_STRING(block);
    Py_ssize_t n = PyBytes_GET_SIZE(block), pos = 0, lineno = 0, newlines = 0, tail = 0;
    Scan sc = {(Queue *)args[2], {NULL, 0, 0, args[3], args[5]}, args[4], args[7], buf, buf + n,
               {0}};
    sc.sasl = memmem(buf, (size_t)n, LIT(SASL_FAILED));
    memcpy(sc.days, PyBytes_AS_STRING(args[1]), sizeof(sc.days));
    int failed = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(n - pos));
        Py_ssize_t end = nl ? nl - buf : n, len = end - pos;
        const char *line = buf + pos;
        lineno++;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > 0) {
            int r = fast_line(&sc, line, len);
            if (r < 0) {
                failed = 1;
                break;
            }
            if (r == 0) {
                /* the general path may count a granted connection itself: bring the
                 * counts up to date first */
                if (may_grant(line, len) && grants_flush(&sc.g) < 0) {
                    failed = 1;
                    break;
                }
                PyObject *lo = PyBytes_FromStringAndSize(line, len);
                PyObject *no = lo ? PyLong_FromSsize_t(lineno) : NULL;
                PyObject *res = NULL;
                if (no != NULL) {
                    PyObject *cargs[2] = {lo, no};
                    res = PyObject_Vectorcall(general, cargs, 2, NULL);
                }
                Py_XDECREF(lo);
                Py_XDECREF(no);
                if (res == NULL) {
                    failed = 1;
                    break;
                }
                Py_DECREF(res);
            }
        }
        if (nl == NULL) {
            tail = end > pos ? 1 : 0;
            break;
        }
        newlines++;
        pos = end + 1;
    }
    if (!failed && grants_flush(&sc.g) < 0)
        failed = 1;
    grants_free(&sc.g);
    if (failed)
        return NULL;
    return PyLong_FromSsize_t(newlines + tail); /* as block.count(b"\n") + unterminated */
}

static PyMethodDef module_methods[] = {
    {"scan_block", (PyCFunction)(void (*)(void))scan_block, METH_FASTCALL, scan_block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fast",
    "The scanner's hot loop in C (see todokede/detect/queue.py and state.py).", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__fast(void)
{
    if (PyType_Ready(&tk_QueueType) < 0 || tk_fold_init() < 0)
        return NULL;
    if (_PyOS_URandomNonblock(&seed, sizeof seed) < 0)
        PyErr_Clear(); /* the fixed start: slower only against a crafted log */
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Queue", (PyObject *)&tk_QueueType) < 0 ||
        PyModule_AddObjectRef(m, "Fold", (PyObject *)&tk_FoldType) < 0 ||
        PyModule_AddObjectRef(m, "Pairs", (PyObject *)&tk_PairsType) < 0 ||
        PyModule_AddObjectRef(m, "Tally", (PyObject *)&tk_TallyType) < 0 ||
        tk_auth_names(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
