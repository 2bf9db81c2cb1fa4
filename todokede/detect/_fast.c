/* The scanner's hot loop in C: the same results as todokede/detect/state.py's fast path
 * (State._loop) and todokede/detect/queue.py's Queue, with one C pass over each block.
 *
 * Python reads a 150 MB mail log at about 3 microseconds a line, most of it making objects
 * for fields that only a few lines need. Here lines are sliced in place, the messages in
 * flight are kept as small C records, granted tcpd connections are counted per block, and
 * Python objects are made only for what is kept or handed on: a complete message (to the
 * `done` callback), a line the fast path does not take (to the `general` callback, in file
 * order, so that the Python parsers see exactly what they would have seen).
 *
 * Whatever this file is unsure of goes to the general path: a timestamp in an unusual
 * spelling, a line the slicing does not understand. The tests run both implementations
 * on the same input and compare (tests/detect/test_fast.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* -- bytes.find with Python's meaning of the arguments ---------------------------------- */

static Py_ssize_t
find(const char *s, Py_ssize_t n, Py_ssize_t start, const char *sub, Py_ssize_t m)
{
    if (start < 0) {
        start += n;
        if (start < 0)
            start = 0;
    }
    if (start > n || m > n - start)
        return -1;
    const char *p = memmem(s + start, (size_t)(n - start), sub, (size_t)m);
    return p ? (Py_ssize_t)(p - s) : -1;
}

static int
starts(const char *s, Py_ssize_t n, Py_ssize_t at, const char *prefix, Py_ssize_t m)
{
    return at >= 0 && at <= n && n - at >= m && memcmp(s + at, prefix, (size_t)m) == 0;
}

/* s[start:stop] of Python for 0 <= start; stop may be negative (counted from the end) */
static void
slice(Py_ssize_t n, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t *a, Py_ssize_t *len)
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

#define LIT(s) s, (Py_ssize_t)(sizeof(s) - 1)

/* -- the message records ---------------------------------------------------------------- */

typedef struct {
    PyObject *rcpt, *via, *status, *orig;
    long long ts;
} Rcpt;

typedef struct {
    uint64_t hash;
    unsigned long long seq; /* order of first sight, as a dict keeps it */
    char *key;              /* host bytes, then queue id bytes */
    Py_ssize_t hostlen, qidlen;
    long long ts;
    PyObject *service, *host, *addr, *sender; /* sender NULL: None */
    PyObject *size;
    Rcpt *rcpts;
    Py_ssize_t nrcpt, caprcpt;
    PyObject **raw;
    Py_ssize_t nraw, capraw;
    int sent_from;
} Msg;

#define TOMB ((Msg *)1)
#define NWORDS 128

typedef struct {
    char s[40];
    Py_ssize_t n;
    PyObject *obj;
    int local;
} Word;

typedef struct {
    PyObject_HEAD PyObject *done, *make, *local;
    Msg **slots;
    size_t cap, used, live;
    unsigned long long seq;
    Word words[NWORDS];
    int nwords;
    PyObject *empty, *zero;
} Queue;

static PyTypeObject QueueType;

/* FNV-1a from a per-process start: the granted table is keyed by client names that
 * an attacker's DNS can choose, so colliding names must not be known in advance */
static uint64_t seed = 1469598103934665603ULL;

static uint64_t
hash_key(const char *h, Py_ssize_t hn, const char *q, Py_ssize_t qn)
{
    uint64_t x = seed;
    for (Py_ssize_t i = 0; i < hn; i++)
        x = (x ^ (unsigned char)h[i]) * 1099511628211ULL;
    x = (x ^ 0x1f) * 1099511628211ULL ^ (uint64_t)hn;
    for (Py_ssize_t i = 0; i < qn; i++)
        x = (x ^ (unsigned char)q[i]) * 1099511628211ULL;
    return x;
}

static void
msg_clear_fields(Msg *m)
{
    Py_CLEAR(m->service);
    Py_CLEAR(m->host);
    Py_CLEAR(m->addr);
    Py_CLEAR(m->sender);
    Py_CLEAR(m->size);
    for (Py_ssize_t i = 0; i < m->nrcpt; i++) {
        Py_XDECREF(m->rcpts[i].rcpt);
        Py_XDECREF(m->rcpts[i].via);
        Py_XDECREF(m->rcpts[i].status);
        Py_XDECREF(m->rcpts[i].orig);
    }
    m->nrcpt = 0;
    for (Py_ssize_t i = 0; i < m->nraw; i++)
        Py_XDECREF(m->raw[i]);
    m->nraw = 0;
    m->sent_from = 0;
}

static void
msg_free(Msg *m)
{
    msg_clear_fields(m);
    PyMem_Free(m->rcpts);
    PyMem_Free(m->raw);
    PyMem_Free(m->key);
    PyMem_Free(m);
}

/* a fresh message, as Msg(key, ts, service) */
static void
msg_init(Queue *q, Msg *m, long long ts, PyObject *service)
{
    m->ts = ts;
    Py_INCREF(service);
    m->service = service;
    Py_INCREF(q->empty);
    m->host = q->empty;
    Py_INCREF(q->empty);
    m->addr = q->empty;
    m->sender = NULL;
    Py_INCREF(q->zero);
    m->size = q->zero;
}

static Msg *
msg_new(const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn, uint64_t hash)
{
    Msg *m = PyMem_Calloc(1, sizeof(Msg));
    if (m == NULL)
        return (Msg *)PyErr_NoMemory();
    m->key = PyMem_Malloc((size_t)(hn + qn + 1));
    if (m->key == NULL) {
        PyMem_Free(m);
        return (Msg *)PyErr_NoMemory();
    }
    memcpy(m->key, h, (size_t)hn);
    memcpy(m->key + hn, qid, (size_t)qn);
    m->hostlen = hn;
    m->qidlen = qn;
    m->hash = hash;
    return m;
}

static int
msg_started(Msg *m)
{
    return PyUnicode_GET_LENGTH(m->host) > 0 || PyUnicode_GET_LENGTH(m->addr) > 0 ||
           m->sender != NULL;
}

static int
msg_add_raw(Msg *m, PyObject *raw)
{
    if (m->nraw == m->capraw) {
        Py_ssize_t cap = m->capraw ? m->capraw * 2 : 1;
        PyObject **r = PyMem_Realloc(m->raw, (size_t)cap * sizeof(PyObject *));
        if (r == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        m->raw = r;
        m->capraw = cap;
    }
    Py_INCREF(raw);
    m->raw[m->nraw++] = raw;
    return 0;
}

/* Msg.add_rcpt: a later attempt for the same recipient replaces the earlier one. Steals
 * the four references. */
static int
msg_add_rcpt(Msg *m, PyObject *rcpt, PyObject *via, PyObject *status, PyObject *orig,
             long long ts)
{
    for (Py_ssize_t i = m->nrcpt - 1; i >= 0; i--) {
        int eq = PyUnicode_Compare(m->rcpts[i].rcpt, rcpt) == 0;
        if (eq) {
            Rcpt *r = &m->rcpts[i];
            Py_SETREF(r->rcpt, rcpt);
            Py_SETREF(r->via, via);
            Py_SETREF(r->status, status);
            Py_SETREF(r->orig, orig);
            r->ts = ts;
            return 0;
        }
    }
    if (m->nrcpt == m->caprcpt) {
        Py_ssize_t cap = m->caprcpt ? m->caprcpt * 2 : 1;
        Rcpt *r = PyMem_Realloc(m->rcpts, (size_t)cap * sizeof(Rcpt));
        if (r == NULL) {
            Py_DECREF(rcpt);
            Py_DECREF(via);
            Py_DECREF(status);
            Py_DECREF(orig);
            PyErr_NoMemory();
            return -1;
        }
        m->rcpts = r;
        m->caprcpt = cap;
    }
    m->rcpts[m->nrcpt++] = (Rcpt){rcpt, via, status, orig, ts};
    return 0;
}

/* -- the table -------------------------------------------------------------------------- */

static Msg **
q_lookup(Queue *q, const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn, uint64_t hash)
{
    if (q->cap == 0)
        return NULL;
    size_t mask = q->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        Msg *m = q->slots[i];
        if (m == NULL)
            return NULL;
        if (m != TOMB && m->hash == hash && m->hostlen == hn && m->qidlen == qn &&
            memcmp(m->key, h, (size_t)hn) == 0 && memcmp(m->key + hn, qid, (size_t)qn) == 0)
            return &q->slots[i];
    }
}

static int
q_grow(Queue *q)
{
    size_t cap = 16;
    while (cap < (q->live + 1) * 3)
        cap *= 2;
    Msg **slots = PyMem_Calloc(cap, sizeof(Msg *));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < q->cap; i++) {
        Msg *m = q->slots[i];
        if (m == NULL || m == TOMB)
            continue;
        size_t j = (size_t)m->hash & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = m;
    }
    PyMem_Free(q->slots);
    q->slots = slots;
    q->cap = cap;
    q->used = q->live;
    return 0;
}

/* insert a message that is not in the table */
static int
q_insert(Queue *q, Msg *m)
{
    if ((q->used + 1) * 3 >= q->cap * 2 && q_grow(q) < 0)
        return -1;
    size_t mask = q->cap - 1;
    size_t i = (size_t)m->hash & mask;
    while (q->slots[i] != NULL && q->slots[i] != TOMB)
        i = (i + 1) & mask;
    if (q->slots[i] == NULL)
        q->used++;
    q->slots[i] = m;
    q->live++;
    m->seq = q->seq++;
    return 0;
}

static void
q_unlink(Queue *q, Msg **slot)
{
    *slot = TOMB;
    q->live--;
}

/* one str per status and transport word, and whether it is a local transport */
static PyObject *
q_word(Queue *q, const char *s, Py_ssize_t n, int *local)
{
    for (int i = 0; i < q->nwords; i++) {
        Word *w = &q->words[i];
        if (w->n == n && memcmp(w->s, s, (size_t)n) == 0) {
            if (local)
                *local = w->local;
            Py_INCREF(w->obj);
            return w->obj;
        }
    }
    PyObject *obj = PyUnicode_DecodeASCII(s, n, "replace");
    if (obj == NULL)
        return NULL;
    int is_local = PySet_Contains(q->local, obj);
    if (is_local < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    if (local)
        *local = is_local;
    if (q->nwords < NWORDS && n < (Py_ssize_t)sizeof(q->words[0].s)) {
        Word *w = &q->words[q->nwords++];
        memcpy(w->s, s, (size_t)n);
        w->n = n;
        w->local = is_local;
        Py_INCREF(obj);
        w->obj = obj;
    }
    return obj;
}

/* -- to Python -------------------------------------------------------------------------- */

static PyObject *
msg_key(Msg *m)
{
    return Py_BuildValue("(y#y#)", m->key, m->hostlen, m->key + m->hostlen, m->qidlen);
}

static PyObject *
msg_rcpts(Msg *m)
{
    PyObject *list = PyList_New(m->nrcpt);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < m->nrcpt; i++) {
        Rcpt *r = &m->rcpts[i];
        PyObject *t = Py_BuildValue("(OOOOL)", r->rcpt, r->via, r->status, r->orig, r->ts);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

static PyObject *
msg_raw(Msg *m)
{
    PyObject *list = PyList_New(m->nraw);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < m->nraw; i++) {
        Py_INCREF(m->raw[i]);
        PyList_SET_ITEM(list, i, m->raw[i]);
    }
    return list;
}

/* hand a message to done(key, ts, service, host, addr, sender, size, rcpts, raw) */
static int
call_done(PyObject *done, Msg *m)
{
    PyObject *key = msg_key(m), *ts = PyLong_FromLongLong(m->ts);
    PyObject *rcpts = msg_rcpts(m), *raw = msg_raw(m);
    PyObject *result = NULL;
    if (key && ts && rcpts && raw) {
        PyObject *args[9] = {key,    ts, m->service, m->host, m->addr, m->sender ? m->sender : Py_None,
                             m->size, rcpts, raw};
        result = PyObject_Vectorcall(done, args, 9, NULL);
    }
    Py_XDECREF(key);
    Py_XDECREF(ts);
    Py_XDECREF(rcpts);
    Py_XDECREF(raw);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static int
q_retire(Queue *q, Msg *m)
{
    return call_done(q->done, m);
}

/* a queue.Msg, made by queue._msg(addr, host, key, raw, rcpts, sender, sent_from, service,
 * size, ts): the order of Msg.__slots__ */
static PyObject *
msg_to_python(Queue *q, Msg *m)
{
    PyObject *key = msg_key(m), *ts = PyLong_FromLongLong(m->ts);
    PyObject *rcpts = msg_rcpts(m), *raw = msg_raw(m);
    PyObject *result = NULL;
    if (key && ts && rcpts && raw) {
        PyObject *args[10] = {m->addr,
                              m->host,
                              key,
                              raw,
                              rcpts,
                              m->sender ? m->sender : Py_None,
                              m->sent_from ? Py_True : Py_False,
                              m->service,
                              m->size,
                              ts};
        result = PyObject_Vectorcall(q->make, args, 10, NULL);
    }
    Py_XDECREF(key);
    Py_XDECREF(ts);
    Py_XDECREF(rcpts);
    Py_XDECREF(raw);
    return result;
}

static int
split_key(PyObject *key, const char **h, Py_ssize_t *hn, const char **qid, Py_ssize_t *qn)
{
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2 ||
        !PyBytes_Check(PyTuple_GET_ITEM(key, 0)) || !PyBytes_Check(PyTuple_GET_ITEM(key, 1))) {
        PyErr_SetString(PyExc_TypeError, "a message key is a (bytes, bytes) tuple");
        return -1;
    }
    *h = PyBytes_AS_STRING(PyTuple_GET_ITEM(key, 0));
    *hn = PyBytes_GET_SIZE(PyTuple_GET_ITEM(key, 0));
    *qid = PyBytes_AS_STRING(PyTuple_GET_ITEM(key, 1));
    *qn = PyBytes_GET_SIZE(PyTuple_GET_ITEM(key, 1));
    return 0;
}

/* -- the Postfix lines (Queue.postfix in queue.py) -------------------------------------- */

/* 1: taken, 0: not understood here, -1: error. line is the whole line (for raw), made into
 * bytes only when it is kept; lineobj may be given when the caller has it already. */
static int
q_postfix(Queue *q, long long ts, const char *host, Py_ssize_t hn, const char *prog,
          Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
          const char *line, Py_ssize_t ln, PyObject *lineobj)
{
    uint64_t hash = hash_key(host, hn, qid, qn);
    Msg **slot = q_lookup(q, host, hn, qid, qn, hash);
    Msg *m = slot ? *slot : NULL;
    if (rn >= 3 && memcmp(rest, "to=", 3) == 0) {
        Py_ssize_t end = find(rest, rn, 4, LIT(">"));
        if (end < 0 || rn < 4 || rest[3] != '<')
            return 0;
        Py_ssize_t pos = end + 3, oa = 0, on = 0;
        if (starts(rest, rn, pos, LIT("orig_to=<"))) {
            Py_ssize_t oend = find(rest, rn, pos + 9, LIT(">"));
            slice(rn, pos + 9, oend, &oa, &on);
            pos = oend + 3;
        }
        Py_ssize_t st = find(rest, rn, pos, LIT(" status="));
        if (st < 0)
            return 0;
        Py_ssize_t st_end = find(rest, rn, st + 8, LIT(" ")), sa, sn;
        slice(rn, st + 8, st_end > 0 ? st_end : rn, &sa, &sn);
        int local = 0;
        PyObject *status = q_word(q, rest + sa, sn, NULL);
        if (status == NULL)
            return -1;
        PyObject *via = q_word(q, prog + (pn < 8 ? pn : 8), pn < 8 ? 0 : pn - 8, &local);
        if (via == NULL) {
            Py_DECREF(status);
            return -1;
        }
        if (starts(rest, rn, pos, LIT("relay=local")) || local) {
            Py_DECREF(via);
            via = q_word(q, LIT("local"), NULL);
            if (via == NULL) {
                Py_DECREF(status);
                return -1;
            }
        }
        PyObject *rcpt = PyUnicode_DecodeUTF8(rest + 4, end - 4, "replace");
        PyObject *orig = rcpt ? PyUnicode_DecodeUTF8(rest + oa, on, "replace") : NULL;
        if (orig == NULL) {
            Py_XDECREF(rcpt);
            Py_DECREF(status);
            Py_DECREF(via);
            return -1;
        }
        if (m == NULL) {
            PyObject *service = q_word(q, prog, pn, NULL);
            if (service == NULL || (m = msg_new(host, hn, qid, qn, hash)) == NULL) {
                Py_XDECREF(service);
                Py_DECREF(rcpt);
                Py_DECREF(orig);
                Py_DECREF(status);
                Py_DECREF(via);
                return -1;
            }
            msg_init(q, m, ts, service);
            Py_DECREF(service);
            if (q_insert(q, m) < 0) {
                msg_free(m);
                Py_DECREF(rcpt);
                Py_DECREF(orig);
                Py_DECREF(status);
                Py_DECREF(via);
                return -1;
            }
        }
        if (msg_add_rcpt(m, rcpt, via, status, orig, ts) < 0)
            return -1;
        if (m->nraw == 0) {
            PyObject *raw = lineobj ? (Py_INCREF(lineobj), lineobj)
                                    : PyBytes_FromStringAndSize(line, ln);
            if (raw == NULL)
                return -1;
            int r = msg_add_raw(m, raw);
            Py_DECREF(raw);
            if (r < 0)
                return -1;
        }
        return 1;
    }
    if (rn >= 3 && memcmp(rest, "fro", 3) == 0) {
        Py_ssize_t end = find(rest, rn, 5, LIT(">, size="));
        if (end < 0 || rn < 6 || rest[5] != '<')
            return 0;
        Py_ssize_t comma = find(rest, rn, end + 8, LIT(",")), za, zn;
        slice(rn, end + 8, comma > 0 ? comma : rn, &za, &zn);
        if (zn == 0)
            return 0;
        for (Py_ssize_t i = 0; i < zn; i++)
            if (rest[za + i] < '0' || rest[za + i] > '9')
                return 0;
        PyObject *size;
        if (zn <= 18) {
            long long v = 0;
            for (Py_ssize_t i = 0; i < zn; i++)
                v = v * 10 + (rest[za + i] - '0');
            size = PyLong_FromLongLong(v);
        }
        else {
            char *digits = PyMem_Malloc((size_t)zn + 1);
            if (digits == NULL)
                return PyErr_NoMemory(), -1;
            memcpy(digits, rest + za, (size_t)zn);
            digits[zn] = 0;
            size = PyLong_FromString(digits, NULL, 10);
            PyMem_Free(digits);
        }
        Py_ssize_t sa, sn;
        slice(rn, 6, end, &sa, &sn);
        PyObject *sender = size ? PyUnicode_DecodeUTF8(rest + sa, sn, "replace") : NULL;
        if (sender == NULL) {
            Py_XDECREF(size);
            return -1;
        }
        if (m == NULL) {
            PyObject *service = q_word(q, prog, pn, NULL);
            if (service == NULL || (m = msg_new(host, hn, qid, qn, hash)) == NULL) {
                Py_XDECREF(service);
                Py_DECREF(size);
                Py_DECREF(sender);
                return -1;
            }
            msg_init(q, m, ts, service);
            Py_DECREF(service);
            if (q_insert(q, m) < 0) {
                msg_free(m);
                Py_DECREF(size);
                Py_DECREF(sender);
                return -1;
            }
        }
        Py_XSETREF(m->sender, sender);
        Py_XSETREF(m->size, size);
        return 1;
    }
    if (!starts(rest, rn, 0, LIT("client=")))
        return 0;
    Py_ssize_t bracket = find(rest, rn, 7, LIT("["));
    if (bracket < 0)
        return 0;
    Py_ssize_t close = find(rest, rn, bracket, LIT("]"));
    if (close < 0)
        return 0;
    PyObject *name = PyUnicode_DecodeUTF8(rest + 7, bracket - 7, "replace");
    PyObject *addr = name ? PyUnicode_DecodeASCII(rest + bracket + 1, close - bracket - 1,
                                                  "replace")
                          : NULL;
    PyObject *service = addr ? q_word(q, prog, pn, NULL) : NULL;
    PyObject *raw = service ? (lineobj ? (Py_INCREF(lineobj), lineobj)
                                       : PyBytes_FromStringAndSize(line, ln))
                            : NULL;
    if (raw == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(addr);
        Py_XDECREF(service);
        return -1;
    }
    int failed = 0;
    if (m != NULL && msg_started(m)) {
        /* the queue id was reused: a new message, in the old one's place */
        if (q_retire(q, m) < 0)
            failed = 1;
        else {
            /* done() ran Python code: look the slot up again */
            slot = q_lookup(q, host, hn, qid, qn, hash);
            m = slot ? *slot : NULL;
            if (m != NULL) {
                msg_clear_fields(m);
                msg_init(q, m, ts, q->empty);
            }
        }
    }
    if (!failed && m == NULL) {
        if ((m = msg_new(host, hn, qid, qn, hash)) == NULL)
            failed = 1;
        else {
            msg_init(q, m, ts, q->empty);
            if (q_insert(q, m) < 0) {
                msg_free(m);
                failed = 1;
            }
        }
    }
    if (failed) {
        Py_DECREF(name);
        Py_DECREF(addr);
        Py_DECREF(service);
        Py_DECREF(raw);
        return -1;
    }
    Py_SETREF(m->host, name);
    Py_SETREF(m->addr, addr);
    Py_SETREF(m->service, service);
    if (ts < m->ts)
        m->ts = ts;
    for (Py_ssize_t i = 0; i < m->nraw; i++)
        Py_XDECREF(m->raw[i]);
    m->nraw = 0;
    int r = msg_add_raw(m, raw);
    Py_DECREF(raw);
    return r < 0 ? -1 : 1;
}

/* Queue.removed: a started message is complete */
static int
q_removed(Queue *q, const char *host, Py_ssize_t hn, const char *qid, Py_ssize_t qn)
{
    uint64_t hash = hash_key(host, hn, qid, qn);
    Msg **slot = q_lookup(q, host, hn, qid, qn, hash);
    if (slot == NULL || !msg_started(*slot))
        return 0;
    Msg *m = *slot;
    q_unlink(q, slot);
    int r = q_retire(q, m);
    msg_free(m);
    return r;
}

/* -- Queue's Python methods ------------------------------------------------------------- */

static PyObject *
Queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *done, *make, *local;
    static char *kwlist[] = {"done", "make", "local_transports", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!:Queue", kwlist, &done, &make,
                                     &PyFrozenSet_Type, &local))
        return NULL;
    Queue *q = (Queue *)type->tp_alloc(type, 0);
    if (q == NULL)
        return NULL;
    Py_INCREF(done);
    q->done = done;
    Py_INCREF(make);
    q->make = make;
    Py_INCREF(local);
    q->local = local;
    q->empty = PyUnicode_FromStringAndSize("", 0);
    q->zero = PyLong_FromLong(0);
    if (q->empty == NULL || q->zero == NULL) {
        Py_DECREF(q);
        return NULL;
    }
    return (PyObject *)q;
}

static void
q_free_all(Queue *q)
{
    for (size_t i = 0; i < q->cap; i++)
        if (q->slots[i] != NULL && q->slots[i] != TOMB)
            msg_free(q->slots[i]);
    PyMem_Free(q->slots);
    q->slots = NULL;
    q->cap = q->used = q->live = 0;
}

static int
Queue_traverse(Queue *q, visitproc visit, void *arg)
{
    Py_VISIT(q->done);
    Py_VISIT(q->make);
    return 0;
}

static int
Queue_clear(Queue *q)
{
    Py_CLEAR(q->done);
    Py_CLEAR(q->make);
    return 0;
}

static void
Queue_dealloc(Queue *q)
{
    PyTypeObject *tp = Py_TYPE(q);
    PyObject_GC_UnTrack(q);
    Queue_clear(q);
    q_free_all(q);
    Py_CLEAR(q->local);
    for (int i = 0; i < q->nwords; i++)
        Py_CLEAR(q->words[i].obj);
    Py_CLEAR(q->empty);
    Py_CLEAR(q->zero);
    tp->tp_free((PyObject *)q);
}

static Py_ssize_t
Queue_len(Queue *q)
{
    return (Py_ssize_t)q->live;
}

static int
by_seq(const void *a, const void *b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static PyObject *
Queue_messages(Queue *q, PyObject *Py_UNUSED(ignored))
{
    Msg **all = PyMem_Malloc((q->live + 1) * sizeof(Msg *));
    if (all == NULL)
        return PyErr_NoMemory();
    size_t n = 0;
    for (size_t i = 0; i < q->cap; i++)
        if (q->slots[i] != NULL && q->slots[i] != TOMB)
            all[n++] = q->slots[i];
    qsort(all, n, sizeof(Msg *), by_seq);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *m = msg_to_python(q, all[i]);
        if (m == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, m);
    }
    PyMem_Free(all);
    return list;
}

static PyObject *
Queue_clear_method(Queue *q, PyObject *Py_UNUSED(ignored))
{
    q_free_all(q);
    Py_RETURN_NONE;
}

static PyObject *
Queue_take(Queue *q, PyObject *key)
{
    const char *h, *qid;
    Py_ssize_t hn, qn;
    if (split_key(key, &h, &hn, &qid, &qn) < 0)
        return NULL;
    Msg **slot = q_lookup(q, h, hn, qid, qn, hash_key(h, hn, qid, qn));
    if (slot == NULL)
        Py_RETURN_NONE;
    Msg *m = *slot;
    PyObject *result = msg_to_python(q, m);
    if (result != NULL) {
        q_unlink(q, slot);
        msg_free(m);
    }
    return result;
}

static int
attr(PyObject *o, const char *name, PyObject **out)
{
    *out = PyObject_GetAttrString(o, name);
    return *out == NULL ? -1 : 0;
}

/* a queue.Msg into a record (borrowing nothing from it) */
static Msg *
msg_from_python(Queue *q, PyObject *o)
{
    PyObject *key = NULL, *ts = NULL, *rcpts = NULL, *raw = NULL, *sent = NULL;
    PyObject *service = NULL, *host = NULL, *addr = NULL, *sender = NULL, *size = NULL;
    Msg *m = NULL;
    const char *h, *qid;
    Py_ssize_t hn, qn;
    if (attr(o, "key", &key) || attr(o, "ts", &ts) || attr(o, "rcpts", &rcpts) ||
        attr(o, "raw", &raw) || attr(o, "sent_from", &sent) || attr(o, "service", &service) ||
        attr(o, "host", &host) || attr(o, "addr", &addr) || attr(o, "sender", &sender) ||
        attr(o, "size", &size) || split_key(key, &h, &hn, &qid, &qn) < 0)
        goto done;
    if (!PyUnicode_Check(service) || !PyUnicode_Check(host) || !PyUnicode_Check(addr) ||
        !(sender == Py_None || PyUnicode_Check(sender)) || !PyList_Check(rcpts) ||
        !PyList_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "not a queue.Msg");
        goto done;
    }
    long long t = PyLong_AsLongLong(ts);
    int sent_from = PyObject_IsTrue(sent);
    if ((t == -1 && PyErr_Occurred()) || sent_from < 0)
        goto done;
    if ((m = msg_new(h, hn, qid, qn, hash_key(h, hn, qid, qn))) == NULL)
        goto done;
    msg_init(q, m, t, service);
    Py_SETREF(m->host, Py_NewRef(host));
    Py_SETREF(m->addr, Py_NewRef(addr));
    m->sender = sender == Py_None ? NULL : Py_NewRef(sender);
    Py_SETREF(m->size, Py_NewRef(size));
    m->sent_from = sent_from;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(raw); i++)
        if (msg_add_raw(m, PyList_GET_ITEM(raw, i)) < 0)
            goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rcpts); i++) {
        PyObject *r = PyList_GET_ITEM(rcpts, i);
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 5) {
            PyErr_SetString(PyExc_TypeError, "a recipient is a 5-tuple");
            goto fail;
        }
        long long rts = PyLong_AsLongLong(PyTuple_GET_ITEM(r, 4));
        if (rts == -1 && PyErr_Occurred())
            goto fail;
        if (!PyUnicode_Check(PyTuple_GET_ITEM(r, 0))) {
            PyErr_SetString(PyExc_TypeError, "a recipient is a str");
            goto fail;
        }
        /* appended as they are: the list has had add_rcpt's replacements already */
        if (m->nrcpt == m->caprcpt) {
            Py_ssize_t cap = m->caprcpt ? m->caprcpt * 2 : 1;
            Rcpt *rr = PyMem_Realloc(m->rcpts, (size_t)cap * sizeof(Rcpt));
            if (rr == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            m->rcpts = rr;
            m->caprcpt = cap;
        }
        m->rcpts[m->nrcpt++] = (Rcpt){Py_NewRef(PyTuple_GET_ITEM(r, 0)),
                                      Py_NewRef(PyTuple_GET_ITEM(r, 1)),
                                      Py_NewRef(PyTuple_GET_ITEM(r, 2)),
                                      Py_NewRef(PyTuple_GET_ITEM(r, 3)), rts};
    }
    goto done;
fail:
    msg_free(m);
    m = NULL;
done:
    Py_XDECREF(key);
    Py_XDECREF(ts);
    Py_XDECREF(rcpts);
    Py_XDECREF(raw);
    Py_XDECREF(sent);
    Py_XDECREF(service);
    Py_XDECREF(host);
    Py_XDECREF(addr);
    Py_XDECREF(sender);
    Py_XDECREF(size);
    return m;
}

static PyObject *
Queue_put(Queue *q, PyObject *o)
{
    Msg *m = msg_from_python(q, o);
    if (m == NULL)
        return NULL;
    Msg **slot = q_lookup(q, m->key, m->hostlen, m->key + m->hostlen, m->qidlen, m->hash);
    if (slot != NULL) { /* as dict assignment: the new value, in the old place */
        m->seq = (*slot)->seq;
        msg_free(*slot);
        *slot = m;
        Py_RETURN_NONE;
    }
    if (q_insert(q, m) < 0) {
        msg_free(m);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Queue_retire(Queue *q, PyObject *o)
{
    Msg *m = msg_from_python(q, o);
    if (m == NULL)
        return NULL;
    int r = q_retire(q, m);
    msg_free(m);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Queue_removed(Queue *q, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "removed(host: bytes, qid: bytes)");
        return NULL;
    }
    if (q_removed(q, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                  PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1])) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Queue_postfix(Queue *q, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "postfix(ts: int, host, prog, qid, head, rest, line: bytes)");
        return NULL;
    }
    for (int i = 1; i < 7; i++)
        if (!PyBytes_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError,
                            "postfix(ts: int, host, prog, qid, head, rest, line: bytes)");
            return NULL;
        }
    long long ts = PyLong_AsLongLong(args[0]);
    if (ts == -1 && PyErr_Occurred())
        return NULL;
    PyObject *head = args[4], *rest = args[5], *line = args[6];
    /* the head was cut from rest by the caller; it picks the kind of line */
    const char *hd = PyBytes_AS_STRING(head);
    Py_ssize_t hl = PyBytes_GET_SIZE(head);
    if (!((hl == 3 && (memcmp(hd, "to=", 3) == 0 || memcmp(hd, "fro", 3) == 0 ||
                       memcmp(hd, "cli", 3) == 0))))
        Py_RETURN_FALSE;
    int r = q_postfix(q, ts, PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]),
                      PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]),
                      PyBytes_AS_STRING(args[3]), PyBytes_GET_SIZE(args[3]),
                      PyBytes_AS_STRING(rest), PyBytes_GET_SIZE(rest), PyBytes_AS_STRING(line),
                      PyBytes_GET_SIZE(line), line);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}


/* (ts, key) order, as sorted() orders (ts, (host, qid)) */
static int
by_time(const void *a, const void *b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    Py_ssize_t n = x->hostlen < y->hostlen ? x->hostlen : y->hostlen;
    int c = memcmp(x->key, y->key, (size_t)n);
    if (c != 0 || x->hostlen != y->hostlen)
        return c != 0 ? c : (x->hostlen < y->hostlen ? -1 : 1);
    n = x->qidlen < y->qidlen ? x->qidlen : y->qidlen;
    c = memcmp(x->key + x->hostlen, y->key + y->hostlen, (size_t)n);
    if (c != 0 || x->qidlen != y->qidlen)
        return c != 0 ? c : (x->qidlen < y->qidlen ? -1 : 1);
    return 0;
}

/* every live message, in the given order; the caller frees the array */
static Msg **
q_all(Queue *q, int (*order)(const void *, const void *), size_t *count)
{
    Msg **all = PyMem_Malloc((q->live + 1) * sizeof(Msg *));
    if (all == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < q->cap; i++)
        if (q->slots[i] != NULL && q->slots[i] != TOMB)
            all[n++] = q->slots[i];
    qsort(all, n, sizeof(Msg *), order);
    *count = n;
    return all;
}

static PyObject *
Queue_fold(Queue *q, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "fold(done: callable, consume: bool)");
        return NULL;
    }
    int consume = PyObject_IsTrue(args[1]);
    if (consume < 0)
        return NULL;
    size_t n;
    Msg **all = q_all(q, by_time, &n);
    if (all == NULL)
        return NULL;
    if (consume) { /* the table lets go of them; each is freed once handed on */
        PyMem_Free(q->slots);
        q->slots = NULL;
        q->cap = q->used = q->live = 0;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!failed && call_done(args[0], all[i]) < 0)
            failed = 1;
        if (consume)
            msg_free(all[i]);
    }
    PyMem_Free(all);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* Msg.merge: the same message, continued in the next byte range */
static int
msg_merge(Msg *m, Msg *o)
{
    if (o->ts < m->ts)
        m->ts = o->ts;
    if (PyUnicode_GET_LENGTH(o->service) > 0) {
        PyObject *a = PyUnicode_FromString("smtpd"), *b = PyUnicode_FromString("sendmail");
        int has_a = a ? PyUnicode_Contains(m->service, a) : -1;
        int has_b = b ? PyUnicode_Contains(m->service, b) : -1;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (has_a < 0 || has_b < 0)
            return -1;
        if (!has_a && !has_b)
            Py_SETREF(m->service, Py_NewRef(o->service));
    }
    if (PyUnicode_GET_LENGTH(m->host) == 0)
        Py_SETREF(m->host, Py_NewRef(o->host));
    if (PyUnicode_GET_LENGTH(m->addr) == 0)
        Py_SETREF(m->addr, Py_NewRef(o->addr));
    if (m->sender == NULL) {
        Py_XSETREF(m->sender, Py_XNewRef(o->sender));
        Py_SETREF(m->size, Py_NewRef(o->size));
    }
    for (Py_ssize_t i = 0; i < o->nrcpt; i++) {
        Rcpt *r = &o->rcpts[i];
        if (msg_add_rcpt(m, Py_NewRef(r->rcpt), Py_NewRef(r->via), Py_NewRef(r->status),
                         Py_NewRef(r->orig), r->ts) < 0)
            return -1;
    }
    /* self.raw.extend(other.raw[: 2 - len(self.raw)]), negative bounds and all */
    Py_ssize_t k = 2 - m->nraw, take = k >= 0 ? (k < o->nraw ? k : o->nraw)
                                               : (o->nraw + k > 0 ? o->nraw + k : 0);
    for (Py_ssize_t i = 0; i < take; i++)
        if (msg_add_raw(m, o->raw[i]) < 0)
            return -1;
    return 0;
}

static PyObject *
Queue_merge(Queue *q, PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &QueueType)) {
        PyErr_SetString(PyExc_TypeError, "merge(other: Queue)");
        return NULL;
    }
    Queue *other = (Queue *)arg;
    if (other == q)
        Py_RETURN_NONE;
    size_t n;
    Msg **all = q_all(other, by_seq, &n);
    if (all == NULL)
        return NULL;
    /* the other queue lets go of its messages: each is moved here or freed */
    PyMem_Free(other->slots);
    other->slots = NULL;
    other->cap = other->used = other->live = 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        Msg *o = all[i];
        if (failed) {
            msg_free(o);
            continue;
        }
        Msg **slot = q_lookup(q, o->key, o->hostlen, o->key + o->hostlen, o->qidlen, o->hash);
        Msg *mine = slot ? *slot : NULL;
        if (mine != NULL && !(mine->sender != NULL &&
                              (PyUnicode_GET_LENGTH(o->host) || PyUnicode_GET_LENGTH(o->addr)))) {
            /* continued: merged, and last in order, as take() and put() leave it */
            if (msg_merge(mine, o) < 0)
                failed = 1;
            mine->seq = q->seq++;
            msg_free(o);
            continue;
        }
        if (mine != NULL) { /* started again there: this one is complete */
            q_unlink(q, slot);
            if (q_retire(q, mine) < 0)
                failed = 1;
            msg_free(mine);
        }
        if (q_insert(q, o) < 0) {
            msg_free(o);
            failed = 1;
        }
    }
    PyMem_Free(all);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* -- dump and load: the messages of a byte range, to the parent process ---------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} Out;

static int
out_put(Out *o, const void *data, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1 << 16;
        while (cap < o->len + n)
            cap *= 2;
        char *b = PyMem_Realloc(o->buf, cap);
        if (b == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    return 0;
}

static int
out_i64(Out *o, int64_t v)
{
    return out_put(o, &v, sizeof v);
}

static int
out_bytes(Out *o, const char *s, Py_ssize_t n)
{
    return out_i64(o, n) < 0 ? -1 : out_put(o, s, (size_t)n);
}

/* a str (surrogates kept), bytes, or None (length -1) */
static int
out_obj(Out *o, PyObject *v)
{
    if (v == NULL || v == Py_None)
        return out_i64(o, -1);
    if (PyBytes_Check(v))
        return out_bytes(o, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s != NULL)
        return out_bytes(o, s, n);
    PyErr_Clear();
    PyObject *b = PyUnicode_AsEncodedString(v, "utf-8", "surrogatepass");
    if (b == NULL)
        return -1;
    int r = out_bytes(o, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return r;
}

static PyObject *
Queue_dump(Queue *q, PyObject *Py_UNUSED(ignored))
{
    size_t n;
    Msg **all = q_all(q, by_seq, &n);
    if (all == NULL)
        return NULL;
    Out o = {NULL, 0, 0};
    int failed = out_i64(&o, (int64_t)n) < 0;
    for (size_t i = 0; !failed && i < n; i++) {
        Msg *m = all[i];
        PyObject *size = PyObject_Str(m->size);
        failed = size == NULL || out_bytes(&o, m->key, m->hostlen) < 0 ||
                 out_bytes(&o, m->key + m->hostlen, m->qidlen) < 0 || out_i64(&o, m->ts) < 0 ||
                 out_i64(&o, m->sent_from) < 0 || out_obj(&o, m->service) < 0 ||
                 out_obj(&o, m->host) < 0 || out_obj(&o, m->addr) < 0 ||
                 out_obj(&o, m->sender) < 0 || out_obj(&o, size) < 0 ||
                 out_i64(&o, m->nrcpt) < 0 || out_i64(&o, m->nraw) < 0;
        Py_XDECREF(size);
        for (Py_ssize_t j = 0; !failed && j < m->nrcpt; j++) {
            Rcpt *r = &m->rcpts[j];
            failed = out_obj(&o, r->rcpt) < 0 || out_obj(&o, r->via) < 0 ||
                     out_obj(&o, r->status) < 0 || out_obj(&o, r->orig) < 0 ||
                     out_i64(&o, r->ts) < 0;
        }
        for (Py_ssize_t j = 0; !failed && j < m->nraw; j++) {
            if (!PyBytes_Check(m->raw[j])) {
                PyErr_SetString(PyExc_TypeError, "raw lines are bytes");
                failed = 1;
            }
            else
                failed = out_obj(&o, m->raw[j]) < 0;
        }
    }
    PyMem_Free(all);
    PyObject *result = failed ? NULL : PyBytes_FromStringAndSize(o.buf, (Py_ssize_t)o.len);
    PyMem_Free(o.buf);
    return result;
}

typedef struct {
    const char *p, *end;
} In;

static int
in_i64(In *in, int64_t *v)
{
    if (in->end - in->p < (Py_ssize_t)sizeof *v) {
        PyErr_SetString(PyExc_ValueError, "a queue dump cut short");
        return -1;
    }
    memcpy(v, in->p, sizeof *v);
    in->p += sizeof *v;
    return 0;
}

static int
in_span(In *in, const char **s, int64_t *n)
{
    if (in_i64(in, n) < 0)
        return -1;
    if (*n < -1 || *n > in->end - in->p) {
        PyErr_SetString(PyExc_ValueError, "a queue dump cut short");
        return -1;
    }
    *s = in->p;
    if (*n > 0)
        in->p += *n;
    return 0;
}

/* kind: 's' str, 'b' bytes; NULL with no error for None */
static PyObject *
in_obj(In *in, char kind, int *failed)
{
    const char *s;
    int64_t n;
    if (in_span(in, &s, &n) < 0) {
        *failed = 1;
        return NULL;
    }
    if (n < 0)
        return NULL;
    PyObject *v = kind == 'b' ? PyBytes_FromStringAndSize(s, (Py_ssize_t)n)
                              : PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "surrogatepass");
    if (v == NULL)
        *failed = 1;
    return v;
}

static PyObject *
Queue_load(Queue *q, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "load(data: bytes)");
        return NULL;
    }
    In in = {PyBytes_AS_STRING(arg), PyBytes_AS_STRING(arg) + PyBytes_GET_SIZE(arg)};
    int64_t count;
    if (in_i64(&in, &count) < 0)
        return NULL;
    for (int64_t i = 0; i < count; i++) {
        const char *h, *qid;
        int64_t hn, qn, ts, sent, nrcpt, nraw;
        int failed = 0;
        if (in_span(&in, &h, &hn) < 0 || in_span(&in, &qid, &qn) < 0)
            return NULL;
        if (hn < 0 || qn < 0) {
            PyErr_SetString(PyExc_ValueError, "a queue dump with a key missing");
            return NULL;
        }
        if (in_i64(&in, &ts) < 0 || in_i64(&in, &sent) < 0)
            return NULL;
        Msg *m = msg_new(h, (Py_ssize_t)hn, qid, (Py_ssize_t)qn,
                         hash_key(h, (Py_ssize_t)hn, qid, (Py_ssize_t)qn));
        if (m == NULL)
            return NULL;
        m->ts = ts;
        m->sent_from = (int)sent;
        m->service = in_obj(&in, 's', &failed);
        m->host = failed ? NULL : in_obj(&in, 's', &failed);
        m->addr = failed ? NULL : in_obj(&in, 's', &failed);
        m->sender = failed ? NULL : in_obj(&in, 's', &failed);
        PyObject *size = failed ? NULL : in_obj(&in, 's', &failed);
        if (!failed) {
            m->size = size ? PyLong_FromUnicodeObject(size, 10) : NULL;
            Py_XDECREF(size);
            failed = m->size == NULL || m->service == NULL || m->host == NULL || m->addr == NULL;
            if (failed && !PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a queue dump with a field missing");
        }
        if (!failed)
            failed = in_i64(&in, &nrcpt) < 0 || in_i64(&in, &nraw) < 0 || nrcpt < 0 || nraw < 0;
        for (int64_t j = 0; !failed && j < nrcpt; j++) {
            PyObject *r = in_obj(&in, 's', &failed);
            PyObject *via = failed ? NULL : in_obj(&in, 's', &failed);
            PyObject *st = failed ? NULL : in_obj(&in, 's', &failed);
            PyObject *orig = failed ? NULL : in_obj(&in, 's', &failed);
            int64_t rts = 0;
            if (!failed && (r == NULL || via == NULL || st == NULL || orig == NULL ||
                            in_i64(&in, &rts) < 0)) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "a queue dump with a field missing");
                failed = 1;
            }
            if (failed) {
                Py_XDECREF(r);
                Py_XDECREF(via);
                Py_XDECREF(st);
                Py_XDECREF(orig);
                break;
            }
            if (m->nrcpt == m->caprcpt) {
                Py_ssize_t cap = m->caprcpt ? m->caprcpt * 2 : 1;
                Rcpt *rr = PyMem_Realloc(m->rcpts, (size_t)cap * sizeof(Rcpt));
                if (rr == NULL) {
                    PyErr_NoMemory();
                    Py_DECREF(r);
                    Py_DECREF(via);
                    Py_DECREF(st);
                    Py_DECREF(orig);
                    failed = 1;
                    break;
                }
                m->rcpts = rr;
                m->caprcpt = cap;
            }
            m->rcpts[m->nrcpt++] = (Rcpt){r, via, st, orig, rts};
        }
        for (int64_t j = 0; !failed && j < nraw; j++) {
            PyObject *raw = in_obj(&in, 'b', &failed);
            if (!failed && raw == NULL) {
                PyErr_SetString(PyExc_ValueError, "a queue dump with a field missing");
                failed = 1;
            }
            if (!failed) {
                failed = msg_add_raw(m, raw) < 0;
                Py_DECREF(raw);
            }
        }
        if (!failed) {
            Msg **slot = q_lookup(q, m->key, m->hostlen, m->key + m->hostlen, m->qidlen, m->hash);
            if (slot != NULL) {
                m->seq = (*slot)->seq;
                msg_free(*slot);
                *slot = m;
                continue;
            }
            failed = q_insert(q, m) < 0;
        }
        if (failed) {
            msg_free(m);
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef Queue_methods[] = {
    {"postfix", (PyCFunction)(void (*)(void))Queue_postfix, METH_FASTCALL,
     "A Postfix client=, from= or to= line; False: not understood here."},
    {"removed", (PyCFunction)(void (*)(void))Queue_removed, METH_FASTCALL,
     "Postfix is done with a message: hand it to done() and forget it."},
    {"take", (PyCFunction)Queue_take, METH_O, "Remove and return a message (or None)."},
    {"put", (PyCFunction)Queue_put, METH_O, "Store a message under its key."},
    {"retire", (PyCFunction)Queue_retire, METH_O, "Hand a message to done()."},
    {"messages", (PyCFunction)Queue_messages, METH_NOARGS,
     "The messages in flight, in the order they were first seen."},
    {"clear", (PyCFunction)Queue_clear_method, METH_NOARGS, "Forget every message."},
    {"fold", (PyCFunction)(void (*)(void))Queue_fold, METH_FASTCALL,
     "Hand every message to done() in time order; consume: empty the queue."},
    {"merge", (PyCFunction)Queue_merge, METH_O,
     "Take in the messages of the next byte range (the other queue is emptied)."},
    {"dump", (PyCFunction)Queue_dump, METH_NOARGS, "The messages, packed into bytes."},
    {"load", (PyCFunction)Queue_load, METH_O, "Add the messages of a dump()."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Queue_as_sequence = {.sq_length = (lenfunc)Queue_len};

static PyTypeObject QueueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "todokede.detect._fast.Queue",
    .tp_basicsize = sizeof(Queue),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Queue(done, make, local_transports): mail messages in flight (see queue.py).",
    .tp_new = Queue_new,
    .tp_dealloc = (destructor)Queue_dealloc,
    .tp_traverse = (traverseproc)Queue_traverse,
    .tp_clear = (inquiry)Queue_clear,
    .tp_methods = Queue_methods,
    .tp_as_sequence = &Queue_as_sequence,
};

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
    return hash_key(a, an, b, bn);
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

/* -- the block loop (State._loop's fast path) ------------------------------------------- */

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
#define NO_TIME INT64_MIN

/* the time of a BSD stamp in its usual spelling; NO_TIME for anything else, which the
 * general path then reads (and finds wrong, or right in an unusual spelling) */
static long long
stamp(const char *s, const int64_t *days)
{
    int month = -1;
    for (int i = 0; i < 12; i++)
        if (s[0] == MONTHS[3 * i] && s[1] == MONTHS[3 * i + 1] && s[2] == MONTHS[3 * i + 2]) {
            month = i;
            break;
        }
#define D(c) ((c) >= '0' && (c) <= '9')
    if (month < 0 || s[3] != ' ' || s[6] != ' ' || !(s[4] == ' ' || D(s[4])) || !D(s[5]) ||
        !D(s[7]) || !D(s[8]) || s[9] != ':' || !D(s[10]) || !D(s[11]) || s[12] != ':' ||
        !D(s[13]) || !D(s[14]))
        return NO_TIME;
#undef D
    int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
    int hour = (s[7] - '0') * 10 + (s[8] - '0'), minute = (s[10] - '0') * 10 + (s[11] - '0');
    int sec = (s[13] - '0') * 10 + (s[14] - '0');
    if (day > 31)
        return NO_TIME;
    int64_t base = days[month * 32 + day];
    if (base == NO_TIME || hour > 23 || minute > 59 || sec > 60)
        return NO_TIME;
    return base + hour * 3600 + minute * 60 + sec;
}

/* 1: taken, 0: for the general path, -1: error */
static int
fast_line(Queue *q, Grants *g, const int64_t *days, const char *line, Py_ssize_t len)
{
    if (len < 16 || line[15] != ' ' || line[0] < 'A' || line[0] > 'Z')
        return 0;
    Py_ssize_t sp = find(line, len, 16, LIT(" "));
    if (sp < 0)
        return 0;
    Py_ssize_t colon = find(line, len, sp, LIT(": "));
    if (colon < 0)
        return 0;
    if (starts(line, len, sp + 1, LIT("postfix/"))) {
        Py_ssize_t qs = colon + 2, qe = find(line, len, qs, LIT(": ")), ha = 0, hl = 0;
        if (qe > 0)
            slice(len, qe + 2, qe + 5, &ha, &hl);
        const char *head = line + ha;
        if (hl == 3 && (memcmp(head, "to=", 3) == 0 || memcmp(head, "fro", 3) == 0 ||
                        memcmp(head, "cli", 3) == 0)) {
            long long ts = stamp(line, days);
            if (ts == NO_TIME)
                return 0;
            Py_ssize_t bracket = find(line, colon, sp, LIT("["));
            Py_ssize_t pend = bracket > 0 ? bracket : colon;
            return q_postfix(q, ts, line + 16, sp - 16, line + sp + 1, pend - sp - 1, line + qs,
                             qe - qs, line + qe + 2, len - qe - 2, line, len, NULL);
        }
        if (hl == 3 && memcmp(head, "rem", 3) == 0 && len >= 9 &&
            memcmp(line + len - 9, ": removed", 9) == 0) {
            if (stamp(line, days) == NO_TIME)
                return 0;
            return q_removed(q, line + 16, sp - 16, line + qs, qe - qs) < 0 ? -1 : 1;
        }
        /* a Postfix line no detector needs (notices: bounces are known by their null
         * sender; rejects other than relaying) */
        if (find(line, len, 0, LIT("Relay access denied")) < 0 && stamp(line, days) != NO_TIME)
            return 1;
        return 0;
    }
    if (starts(line, len, colon + 2, LIT("connect from "))) {
        const char *tag = line + sp + 1;
        Py_ssize_t tn = colon - sp - 1;
        if (memchr(tag, ' ', (size_t)tn) != NULL)
            return 0;
        Py_ssize_t bracket = find(tag, tn, 0, LIT("["));
        if (stamp(line, days) == NO_TIME)
            return 0;
        return grants_add(g, tag, bracket > 0 ? bracket : tn, line + colon + 15,
                          len - colon - 15, line, len) < 0
                   ? -1
                   : 1;
    }
    return 0;
}

/* could the general path count this line as a granted connection? ("connect from "
 * other than in "refused connect from ", wherever the framing puts the message) */
static int
may_grant(const char *line, Py_ssize_t len)
{
    for (Py_ssize_t at = find(line, len, 0, LIT("connect from ")); at >= 0;
         at = find(line, len, at + 1, LIT("connect from ")))
        if (at < 8 || memcmp(line + at - 8, "refused ", 8) != 0)
            return 1;
    return 0;
}

PyDoc_STRVAR(scan_block_doc,
             "scan_block(block, days, queue, granted, source, general)\n\n"
             "Read a block of whole lines as State._loop's fast path does: Postfix queue "
             "lines into queue, granted tcpd connections into granted; every other line "
             "goes to general(line, n) in file order (n: its number in the block, from 1). "
             "Returns the number of lines. "
             "days: 12 x 32 native int64, the epoch second of each month and day's "
             "midnight, INT64_MIN for no such day.");

static PyObject *
scan_block(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        PyBytes_GET_SIZE(args[1]) != 12 * 32 * 8 || !PyObject_TypeCheck(args[2], &QueueType) ||
        !PyDict_Check(args[3]) || !PyUnicode_Check(args[4]) || !PyCallable_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_block(block: bytes, days: bytes, queue: Queue, granted: dict, "
                        "source: str, general: callable)");
        return NULL;
    }
    PyObject *block = args[0], *general = args[5];
    int64_t days[12 * 32];
    memcpy(days, PyBytes_AS_STRING(args[1]), sizeof(days));
    Queue *q = (Queue *)args[2];
    Grants g = {NULL, 0, 0, args[3], args[4]};
    const char *buf = PyBytes_AS_STRING(block);
    Py_ssize_t n = PyBytes_GET_SIZE(block), pos = 0, lineno = 0, newlines = 0, tail = 0;
    int failed = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(n - pos));
        Py_ssize_t end = nl ? nl - buf : n, len = end - pos;
        const char *line = buf + pos;
        lineno++;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > 0) {
            int r = fast_line(q, &g, days, line, len);
            if (r < 0) {
                failed = 1;
                break;
            }
            if (r == 0) {
                /* the general path may count a granted connection itself: bring the
                 * counts up to date first */
                if (may_grant(line, len) && grants_flush(&g) < 0) {
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
    if (!failed && grants_flush(&g) < 0)
        failed = 1;
    grants_free(&g);
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
    if (PyType_Ready(&QueueType) < 0)
        return NULL;
    if (_PyOS_URandomNonblock(&seed, sizeof seed) < 0)
        PyErr_Clear(); /* the fixed start: slower only against a crafted log */
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&QueueType);
    if (PyModule_AddObject(m, "Queue", (PyObject *)&QueueType) < 0) {
        Py_DECREF(&QueueType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
