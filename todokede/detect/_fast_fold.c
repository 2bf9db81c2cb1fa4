/* The Fold type: MailAgg.add (mailagg.py) in C, reading a message straight from its
 * record, so that a complete message costs no Python objects of its own. It writes into
 * the MailAgg's own dicts and sets, which stay the reference's, and into its compact
 * tables when it has them (the pairs: _fast_pairs.c; a relay's by_status: _fast_tally.c):
 * merging, pickling and the findings read them as they read the Python fold's. What is rare and subtle (non-delivery notices, the site's own
 * domains when the user named them) is handed to MailAgg's Python methods. */
#include "_fast.h"

PyObject *tk_s_names, *tk_s_addrs, *tk_s_senders, *tk_s_by_sender, *tk_s_by_status;
static PyObject *s_add, *s_lower, *s_own, *s_bounce, *s_empty_bytes;

/* str.lower() of stored text (ASCII in C, the rest by Python) */
PyObject *
tk_lower(Span s)
{
    Py_ssize_t i = 0;
    while (i < s.n && (unsigned char)s.s[i] < 0x80)
        i++;
    if (i < s.n) {
        PyObject *str = tk_str(s);
        if (str == NULL)
            return NULL;
        PyObject *low = PyObject_CallMethodNoArgs(str, s_lower);
        Py_DECREF(str);
        return low;
    }
    PyObject *low = PyUnicode_New(s.n, 127);
    if (low == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(low);
    for (i = 0; i < s.n; i++) {
        char c = s.s[i];
        d[i] = (Py_UCS1)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return low;
}

Span
tk_after_at(Span s)
{
    for (Py_ssize_t i = s.n - 1; i >= 0; i--)
        if (s.s[i] == '@')
            return (Span){s.s + i + 1, s.n - i - 1};
    return s;
}

int
tk_has_at(Span s)
{
    return s.n > 0 && memchr(s.s, '@', (size_t)s.n) != NULL;
}

int
tk_eq(Span a, const char *lit, Py_ssize_t n)
{
    return a.n == n && memcmp(a.s, lit, (size_t)n) == 0;
}

/* is_null_sender: ASCII case folding is exact here, no other letter lowers into these */
static int
null_sender(Span s)
{
    static const char *const exact[] = {"<>", "mailer-daemon"}, *const prefix[] = {
                                                                   "mailer-daemon@",
                                                                   "double-bounce@"};
    if (s.n <= 0)
        return 1;
    for (int k = 0; k < 2; k++) {
        Py_ssize_t n = (Py_ssize_t)strlen(exact[k]);
        if (s.n == n && PyOS_strnicmp(s.s, exact[k], (size_t)n) == 0)
            return 1;
        n = (Py_ssize_t)strlen(prefix[k]);
        if (s.n >= n && PyOS_strnicmp(s.s, prefix[k], (size_t)n) == 0)
            return 1;
    }
    return 0;
}

PyObject *
tk_status_str(Fold *f, Span s)
{
    for (int i = 0; i < f->nwords; i++)
        if (f->words[i].n == s.n && memcmp(f->words[i].s, s.s, (size_t)s.n) == 0)
            return Py_NewRef(f->wordobj[i]);
    PyObject *str = tk_str(s);
    if (str != NULL && f->nwords < 8 && s.n <= 32) {
        char *copy = PyMem_Malloc((size_t)s.n + 1);
        if (copy != NULL) {
            memcpy(copy, s.s, (size_t)s.n);
            f->words[f->nwords] = (Span){copy, s.n};
            f->wordobj[f->nwords++] = Py_NewRef(str);
        }
    }
    return str;
}

/* MailAgg._own(address) (False without --local-domain) */
int
tk_own(Fold *f, Span address)
{
    if (!f->own)
        return 0;
    PyObject *str = tk_str(address);
    PyObject *r = str ? PyObject_CallMethodOneArg(f->agg, s_own, str) : NULL;
    Py_XDECREF(str);
    if (r == NULL)
        return -1;
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

static int
in_nets(Fold *f, PyObject *addr)
{
    PyObject *known = PyDict_GetItemWithError(f->memo, addr);
    if (known != NULL)
        return PyObject_IsTrue(known);
    return PyErr_Occurred() ? -1 : PySequence_Contains(f->nets, addr);
}

static int
add_local_domains(Fold *f, const View *v)
{
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        const RcptV *r = &v->rcpts[i];
        if (!tk_eq(r->via, LIT("local")) || !tk_eq(r->status, LIT("sent")) || !tk_has_at(r->rcpt))
            continue;
        Span d = tk_after_at(r->rcpt);
        if (d.n == f->lastdomn && memcmp(d.s, f->lastdom, (size_t)d.n) == 0)
            continue;
        PyObject *low = tk_lower(d);
        int rc = low ? PySet_Add(f->local_domains, low) : -1;
        Py_XDECREF(low);
        if (rc < 0)
            return -1;
        if (d.n <= (Py_ssize_t)sizeof f->lastdom) {
            memcpy(f->lastdom, d.s, (size_t)d.n);
            f->lastdomn = d.n;
        }
    }
    return 0;
}

/* MailAgg._bounce, in Python: notices are few, and their test lowercases any text */
static int
bounce(Fold *f, const View *v, PyObject *service)
{
    PyObject *size = tk_size(v), *rcpts = size ? tk_rcpts(v) : NULL;
    PyObject *raw = rcpts ? tk_raw(v) : NULL, *r = NULL; /* none with an exception set */
    if (size && rcpts && raw) {
        PyObject *args[6] = {f->agg, service, size, rcpts, raw, f->admins};
        r = PyObject_VectorcallMethod(s_bounce, args, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(size);
    Py_XDECREF(rcpts);
    Py_XDECREF(raw);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

typedef struct {
    const View *v;
    PyObject **raw0;
} RawArg;

/* the message's first raw line (b"" without one), made once */
static PyObject *
first_raw(void *arg)
{
    RawArg *a = arg;
    if (*a->raw0 == NULL)
        *a->raw0 = a->v->nraw ? PyBytes_FromStringAndSize(a->v->raw[0].s, a->v->raw[0].n)
                              : Py_NewRef(s_empty_bytes);
    return *a->raw0;
}

/* Pair.add(ts, raw), its slots set from here when it is a Pair (a spam run adds a message
 * to a pair for each of its recipients: a Python call each costs more than the rest of
 * the fold); RAW_PER_KEY is mailagg.RAW_PER_KEY */
#define RAW_PER_KEY 4
int
tk_pair_add(PyObject *pair_type, PyObject *pair, PyObject *t, PyObject *line)
{
    static PyObject *s_times, *s_raw, *s_last_raw;
    if (s_times == NULL && ((s_times = PyUnicode_InternFromString("times")) == NULL ||
                            (s_raw = PyUnicode_InternFromString("raw")) == NULL ||
                            (s_last_raw = PyUnicode_InternFromString("last_raw")) == NULL)) {
        Py_CLEAR(s_times);
        return -1;
    }
    if ((PyObject *)Py_TYPE(pair) != pair_type) {
        PyObject *r = PyObject_CallMethod(pair, "add", "OO", t, line);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    PyObject *times = PyObject_GetAttr(pair, s_times);
    PyObject *raw = times ? PyObject_GetAttr(pair, s_raw) : NULL;
    int r = -1;
    if (raw != NULL && PyList_Check(times) && PyList_Check(raw) && PyList_Append(times, t) == 0)
        r = PyList_GET_SIZE(raw) < RAW_PER_KEY ? PyList_Append(raw, line)
                                                : PyObject_SetAttr(pair, s_last_raw, line);
    else if (raw != NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "Pair.times and Pair.raw are lists");
    Py_XDECREF(times);
    Py_XDECREF(raw);
    return r;
}

/* the (service, sender, recipient) pairs, for mail bombs */
static int
add_pairs(Fold *f, const View *v, long long ts, PyObject *service, PyObject **raw0)
{
    RawArg arg = {v, raw0};
    int table = Py_IS_TYPE(f->pairs, &tk_PairsType);
    char stack[512];
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        Span rc = v->rcpts[i].rcpt;
        Py_ssize_t j = 0; /* each recipient once, in their order */
        while (j < i && !(v->rcpts[j].rcpt.n == rc.n &&
                          memcmp(v->rcpts[j].rcpt.s, rc.s, (size_t)rc.n) == 0))
            j++;
        if (j < i)
            continue;
        Py_ssize_t n = v->service.n + 1 + v->sender.n + 1 + rc.n;
        char *buf = n <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)n);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        char *p = buf;
        memcpy(p, v->service.s, (size_t)v->service.n);
        p += v->service.n;
        *p++ = 0;
        memcpy(p, v->sender.s, (size_t)v->sender.n);
        p += v->sender.n;
        *p++ = 0;
        memcpy(p, rc.s, (size_t)rc.n);
        if (table) {
            int rc2 = tk_pairs_add(f->pairs, buf, n, ts, service, first_raw, &arg);
            if (buf != stack)
                PyMem_Free(buf);
            if (rc2 < 0)
                return -1;
            continue;
        }
        PyObject *key = PyUnicode_DecodeUTF8(buf, n, "surrogatepass");
        if (buf != stack)
            PyMem_Free(buf);
        if (key == NULL)
            return -1;
        int rcode = -1;
        PyObject *pair = PyDict_GetItemWithError(f->pairs, key), *t = NULL, *r = NULL;
        if (pair == NULL && PyErr_Occurred())
            goto next;
        if ((t = PyLong_FromLongLong(ts)) == NULL)
            goto next;
        if (pair == NULL) { /* most pairs are one message: a bare time */
            rcode = PyDict_SetItem(f->pairs, key, t);
            goto next;
        }
        if (first_raw(&arg) == NULL)
            goto next;
        if (PyLong_Check(pair)) {
            PyObject *times = Py_BuildValue("[O]", pair);
            PyObject *made = times ? PyObject_CallFunctionObjArgs(f->pair_type, service, times,
                                                                  NULL)
                                   : NULL;
            Py_XDECREF(times);
            if (made == NULL || PyDict_SetItem(f->pairs, key, made) < 0) {
                Py_XDECREF(made);
                goto next;
            }
            pair = made;
            Py_DECREF(made); /* the dict holds it */
        }
        PyObject *args[3] = {pair, t, *raw0};
        r = PyObject_VectorcallMethod(s_add, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        rcode = r ? 0 : -1;
    next:
        Py_XDECREF(r);
        Py_XDECREF(t);
        Py_DECREF(key);
        if (rcode < 0)
            return -1;
    }
    return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* the hashes of the notices' keys, sorted: taken again when the set has grown (it only
 * grows); a key that is not (bytes, bytes) cannot be a record's: left out */
static int
notice_hashes(Fold *f)
{
    Py_ssize_t size = PySet_GET_SIZE(f->notices), n = 0;
    uint64_t *hashes = PyMem_Malloc((size_t)(size + 1) * sizeof(uint64_t));
    if (hashes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *it = PyObject_GetIter(f->notices), *key;
    if (it == NULL) {
        PyMem_Free(hashes);
        return -1;
    }
    while (n < size && (key = PyIter_Next(it)) != NULL) {
        const char *h, *qid;
        Py_ssize_t hn, qn;
        if (tk_split_key(key, &h, &hn, &qid, &qn) == 0)
            hashes[n++] = tk_hash(h, hn, qid, qn);
        else
            PyErr_Clear();
        Py_DECREF(key);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(hashes);
        return -1;
    }
    qsort(hashes, (size_t)n, sizeof(uint64_t), cmp_u64);
    PyMem_Free(f->notice_hashes);
    f->notice_hashes = hashes;
    f->nnotices = size;
    f->nhashes = n;
    return 0;
}

/* is the record's key in notices? Most are ruled out by their hash, without a key object */
static int
is_notice(Fold *f, const Msg *m)
{
    if (PySet_GET_SIZE(f->notices) == 0)
        return 0;
    if (PySet_GET_SIZE(f->notices) != f->nnotices && notice_hashes(f) < 0)
        return -1;
    if (bsearch(&m->hash, f->notice_hashes, (size_t)f->nhashes, sizeof(uint64_t), cmp_u64) ==
        NULL)
        return 0;
    PyObject *key = tk_key(m);
    int notice = key ? PySet_Contains(f->notices, key) : -1;
    Py_XDECREF(key);
    return notice;
}

/* a client's name and address as str, and whether the address is inside the site: a log
 * repeats its clients, and the fold asks for them for each message */
#define CLIENTS 64 /* entries, one per hash: a client that collides is made again */
struct Client {
    char *text; /* name, NUL, address (NULL: an empty entry) */
    Py_ssize_t hn, an;
    PyObject *host, *addr;
    int inside;
};

static void
clients_free(Fold *f)
{
    for (int i = 0; f->clients != NULL && i < CLIENTS; i++) {
        PyMem_Free(f->clients[i].text);
        Py_XDECREF(f->clients[i].host);
        Py_XDECREF(f->clients[i].addr);
    }
    PyMem_Free(f->clients);
    f->clients = NULL;
}

/* the client of a view (new references); -1: error */
static int
client(Fold *f, const View *v, PyObject **host, PyObject **addr, int *inside)
{
    if (f->clients == NULL && (f->clients = PyMem_Calloc(CLIENTS, sizeof(struct Client))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    struct Client *c = &f->clients[tk_hash(v->host.s, v->host.n, v->addr.s, v->addr.n) % CLIENTS];
    if (c->text == NULL || c->hn != v->host.n || c->an != v->addr.n ||
        memcmp(c->text, v->host.s, (size_t)c->hn) != 0 ||
        memcmp(c->text + c->hn + 1, v->addr.s, (size_t)c->an) != 0) {
        PyObject *h = tk_str(v->host), *a = h ? tk_str(v->addr) : NULL;
        int in = a == NULL ? -1 : v->addr.n > 0 ? in_nets(f, a) : 0;
        char *text = in < 0 ? NULL : PyMem_Malloc((size_t)(v->host.n + v->addr.n + 1));
        if (text == NULL) {
            if (in >= 0)
                PyErr_NoMemory();
            Py_XDECREF(h);
            Py_XDECREF(a);
            return -1;
        }
        memcpy(text, v->host.s, (size_t)v->host.n);
        text[v->host.n] = 0;
        memcpy(text + v->host.n + 1, v->addr.s, (size_t)v->addr.n);
        PyMem_Free(c->text);
        Py_XDECREF(c->host);
        Py_XDECREF(c->addr);
        *c = (struct Client){text, v->host.n, v->addr.n, h, a, in};
    }
    *host = Py_NewRef(c->host);
    *addr = Py_NewRef(c->addr);
    *inside = c->inside;
    return 0;
}

/* MailAgg.add for one record */
static int
fold_msg(Fold *f, const Msg *m)
{
    View v;
    if (tk_view(m, &v) < 0)
        return -1;
    int r = -1;
    PyObject *service = NULL, *host = NULL, *addr = NULL, *raw0 = NULL;
    if (v.sender.n < 0 && v.nrcpt == 0) {
        r = 0;
        goto done;
    }
    if (add_local_domains(f, &v) < 0 || (service = tk_status_str(f, v.service)) == NULL)
        goto done;
    int notice = is_notice(f, m);
    if (notice < 0)
        goto done;
    if (notice || v.sender.n <= 0 || (strchr("dDmM<", v.sender.s[0]) && null_sender(v.sender))) {
        r = bounce(f, &v, service);
        goto done;
    }
    /* mail bombs come over the network: mail submitted on the host itself has no client */
    if (!m->has_client) {
        r = 0;
        goto done;
    }
    int inside;
    if (add_pairs(f, &v, m->ts, service, &raw0) < 0 || client(f, &v, &host, &addr, &inside) < 0)
        goto done;
    r = inside ? 0 : tk_add_relay(f, &v, m->ts, service, host, addr);
done:
    Py_XDECREF(service);
    Py_XDECREF(host);
    Py_XDECREF(addr);
    Py_XDECREF(raw0);
    tk_view_free(&v);
    return r;
}

int
tk_retire(PyObject *done, const Msg *m)
{
    if (Py_IS_TYPE(done, &tk_FoldType))
        return fold_msg((Fold *)done, m);
    return tk_call_done(done, m);
}

/* -- the type ------------------------------------------------------------------------- */

static PyObject *
Fold_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *agg, *notices, *nets, *admins, *pair_type, *relay_type;
    static char *kwlist[] = {"agg", "notices", "nets", "admins", "pair", "relay", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!OOOO:Fold", kwlist, &agg, &PySet_Type,
                                     &notices, &nets, &admins, &pair_type, &relay_type))
        return NULL;
    Fold *f = (Fold *)type->tp_alloc(type, 0);
    if (f == NULL)
        return NULL;
    f->lastdomn = -1;
    f->nnotices = -1;
    f->agg = Py_NewRef(agg);
    f->notices = Py_NewRef(notices);
    f->nets = Py_NewRef(nets);
    f->admins = Py_NewRef(admins);
    f->pair_type = Py_NewRef(pair_type);
    f->relay_type = Py_NewRef(relay_type);
    /* MailAgg keeps these objects for its life (merge changes them in place) */
    PyObject *own = NULL;
    f->pairs = PyObject_GetAttrString(agg, "pairs");
    f->relays = f->pairs ? PyObject_GetAttrString(agg, "relays") : NULL;
    f->local_domains = f->relays ? PyObject_GetAttrString(agg, "local_domains") : NULL;
    f->memo = f->local_domains ? PyObject_GetAttrString(nets, "_memo") : NULL;
    own = f->memo ? PyObject_GetAttrString(agg, "own_domains") : NULL;
    f->own = own ? PyObject_IsTrue(own) : -1;
    Py_XDECREF(own);
    if (f->own < 0 || !(PyDict_Check(f->pairs) || Py_IS_TYPE(f->pairs, &tk_PairsType)) || !PyDict_Check(f->relays) ||
        !PySet_Check(f->local_domains) || !PyDict_Check(f->memo)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Fold(agg: MailAgg, notices, nets: Nets, ...)");
        Py_DECREF(f);
        return NULL;
    }
    return (PyObject *)f;
}

/* the Python form of a Done call: MailAgg.add, the reference */
static PyObject *
Fold_call(Fold *f, PyObject *args, PyObject *kwds)
{
    PyObject *key, *ts, *service, *host, *addr, *sender, *size, *rcpts, *raw;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO:Fold", &key, &ts, &service, &host, &addr, &sender,
                          &size, &rcpts, &raw))
        return NULL;
    int notice = PySet_Contains(f->notices, key);
    if (notice < 0)
        return NULL;
    return PyObject_CallMethod(f->agg, "add", "OOOOOOOOOOO", service, ts, host, addr, sender,
                               size, rcpts, raw, notice ? Py_True : Py_False, f->nets, f->admins);
}

static int
Fold_traverse(Fold *f, visitproc visit, void *arg)
{
    Py_VISIT(f->agg);
    Py_VISIT(f->pairs);
    Py_VISIT(f->relays);
    Py_VISIT(f->local_domains);
    Py_VISIT(f->notices);
    Py_VISIT(f->nets);
    Py_VISIT(f->memo);
    Py_VISIT(f->admins);
    Py_VISIT(f->pair_type);
    Py_VISIT(f->relay_type);
    return 0;
}

static int
Fold_clear(Fold *f)
{
    Py_CLEAR(f->agg);
    Py_CLEAR(f->pairs);
    Py_CLEAR(f->relays);
    Py_CLEAR(f->local_domains);
    Py_CLEAR(f->notices);
    Py_CLEAR(f->nets);
    Py_CLEAR(f->memo);
    Py_CLEAR(f->admins);
    Py_CLEAR(f->pair_type);
    Py_CLEAR(f->relay_type);
    return 0;
}

static void
Fold_dealloc(Fold *f)
{
    PyTypeObject *tp = Py_TYPE(f);
    PyObject_GC_UnTrack(f);
    Fold_clear(f);
    for (int i = 0; i < f->nwords; i++) {
        PyMem_Free((char *)f->words[i].s);
        Py_CLEAR(f->wordobj[i]);
    }
    PyMem_Free(f->notice_hashes);
    clients_free(f);
    tp->tp_free((PyObject *)f);
}

PyTypeObject tk_FoldType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "todokede.detect._fast.Fold",
    .tp_basicsize = sizeof(Fold),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Fold(agg, notices, nets, admins, pair, relay): folds complete messages "
              "into a MailAgg (as State.folder's callback does, without Python objects "
              "for each message).",
    .tp_new = Fold_new,
    .tp_call = (ternaryfunc)Fold_call,
    .tp_dealloc = (destructor)Fold_dealloc,
    .tp_traverse = (traverseproc)Fold_traverse,
    .tp_clear = (inquiry)Fold_clear,
};

int
tk_fold_init(void)
{
#define INTERN(var, text)                                                                      \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                      \
        return -1;
    INTERN(tk_s_names, "names");
    INTERN(tk_s_addrs, "addrs");
    INTERN(tk_s_senders, "senders");
    INTERN(tk_s_by_sender, "by_sender");
    INTERN(tk_s_by_status, "by_status");
    INTERN(s_add, "add");
    INTERN(s_lower, "lower");
    INTERN(s_own, "_own");
    INTERN(s_bounce, "_bounce");
#undef INTERN
    s_empty_bytes = PyBytes_FromStringAndSize("", 0);
    if (s_empty_bytes == NULL || PyType_Ready(&tk_PairsType) < 0 ||
        PyType_Ready(&tk_TallyType) < 0)
        return -1;
    return PyType_Ready(&tk_FoldType);
}
