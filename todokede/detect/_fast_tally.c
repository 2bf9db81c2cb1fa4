/* The Tally type: Relay.by_status ((recipient domain, status) -> recipients) as one compact
 * table. A spam run through an open relay names tens of thousands of random domains: as a
 * dict each costs a tuple, a str and a slot (about 170 bytes), here the two texts and a
 * count in an arena (about 50). Entries keep their order of insertion, as a dict does: the
 * findings list statuses and domains in that order. */
#include "_fast.h"

typedef struct {
    uint64_t hash;
    long long count; /* 64 bits, as tk_add wants */
    uint32_t dn, sn; /* the key: the domain's UTF-8, then the status's */
    char key[];
} TEntry;

typedef struct {
    PyObject_HEAD char *arena; /* the entries, each 8-aligned, in order of insertion */
    size_t len, cap, n;
    uint32_t *index; /* open addressing: an entry's offset / 8 + 1; 0 empty */
    size_t icap;
} Tally;

#define TENTRY(t, off) ((TEntry *)((t)->arena + (off)))
#define TSIZE(e) ((sizeof(TEntry) + (e)->dn + (e)->sn + 7) & ~(size_t)7)
#define EACH(t, off, e)                                                                        \
    for (size_t off = 0; off < (t)->len; off += TSIZE(TENTRY(t, off)))                         \
        for (TEntry *e = TENTRY(t, off); e != NULL; e = NULL)

static int
grow_index(Tally *t)
{
    size_t icap = t->icap ? t->icap * 2 : 256;
    uint32_t *index = PyMem_Calloc(icap, sizeof(uint32_t));
    if (index == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    EACH(t, off, e)
    {
        size_t i = (size_t)e->hash & (icap - 1);
        while (index[i] != 0)
            i = (i + 1) & (icap - 1);
        index[i] = (uint32_t)(off / 8 + 1);
    }
    PyMem_Free(t->index);
    t->index = index;
    t->icap = icap;
    return 0;
}

/* the entry of (domain, status), added with count 0 when there is none */
static TEntry *
entry(Tally *t, Span d, Span s)
{
    if ((t->n + 1) * 2 > t->icap && grow_index(t) < 0)
        return NULL;
    uint64_t hash = tk_hash(d.s, d.n, s.s, s.n);
    size_t mask = t->icap - 1, i = (size_t)hash & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t at = t->index[i];
        if (at == 0)
            break;
        TEntry *e = TENTRY(t, (size_t)(at - 1) * 8);
        if (e->hash == hash && e->dn == (uint32_t)d.n && e->sn == (uint32_t)s.n &&
            memcmp(e->key, d.s, (size_t)d.n) == 0 && memcmp(e->key + d.n, s.s, (size_t)s.n) == 0)
            return e;
    }
    size_t size = (sizeof(TEntry) + (size_t)d.n + (size_t)s.n + 7) & ~(size_t)7;
    if (d.n + s.n > (Py_ssize_t)UINT32_MAX || (t->len + size) / 8 >= UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many recipient domains");
        return NULL;
    }
    if (t->len + size > t->cap) {
        size_t cap = t->cap ? t->cap : 1 << 12;
        while (cap < t->len + size)
            cap *= 2;
        char *arena = PyMem_RawRealloc(t->arena, cap);
        if (arena == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        t->arena = arena;
        t->cap = cap;
    }
    TEntry *e = TENTRY(t, t->len);
    *e = (TEntry){hash, 0, (uint32_t)d.n, (uint32_t)s.n};
    memcpy(e->key, d.s, (size_t)d.n);
    memcpy(e->key + d.n, s.s, (size_t)s.n);
    t->index[i] = (uint32_t)(t->len / 8 + 1);
    t->len += size;
    t->n++;
    return e;
}

/* by_status[(domain.lower(), status)] += 1, the domain as stored text */
int
tk_tally_add(PyObject *tally, Span domain, Span status)
{
    char stack[256];
    PyObject *keep = NULL;
    Span d = domain;
    Py_ssize_t i = 0;
    while (i < d.n && (unsigned char)d.s[i] < 0x80)
        i++;
    if (i == d.n && d.n <= (Py_ssize_t)sizeof stack) { /* ASCII: lowered here */
        for (i = 0; i < d.n; i++)
            stack[i] = (char)(d.s[i] >= 'A' && d.s[i] <= 'Z' ? d.s[i] + 32 : d.s[i]);
        d.s = stack;
    }
    else { /* str.lower() (of the non-ASCII, or of a long name) */
        PyObject *low = tk_lower(domain);
        keep = low ? PyUnicode_AsEncodedString(low, "utf-8", "surrogatepass") : NULL;
        Py_XDECREF(low);
        if (keep == NULL)
            return -1;
        d = (Span){PyBytes_AS_STRING(keep), PyBytes_GET_SIZE(keep)};
    }
    TEntry *e = entry((Tally *)tally, d, status);
    Py_XDECREF(keep);
    if (e == NULL)
        return -1;
    return tk_add(&e->count, 1);
}

/* -- the Python side: what Relay and the findings ask of a dict ------------------------- */

static PyObject *
domain_of(const TEntry *e)
{
    return tk_str((Span){e->key, e->dn});
}

static PyObject *
status_of(const TEntry *e)
{
    return tk_str((Span){e->key + e->dn, e->sn});
}

/* a (domain, status) tuple of str as the spans of its UTF-8 (kept alive in keep) */
static int
key_spans(PyObject *key, Span *d, Span *s, PyObject **keep)
{
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(key, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(key, 1))) {
        PyErr_SetString(PyExc_TypeError, "by_status keys are (domain, status) tuples of str");
        return -1;
    }
    keep[0] = PyUnicode_AsEncodedString(PyTuple_GET_ITEM(key, 0), "utf-8", "surrogatepass");
    keep[1] = keep[0] ? PyUnicode_AsEncodedString(PyTuple_GET_ITEM(key, 1), "utf-8",
                                                  "surrogatepass")
                      : NULL;
    if (keep[1] == NULL) {
        Py_XDECREF(keep[0]);
        return -1;
    }
    *d = (Span){PyBytes_AS_STRING(keep[0]), PyBytes_GET_SIZE(keep[0])};
    *s = (Span){PyBytes_AS_STRING(keep[1]), PyBytes_GET_SIZE(keep[1])};
    return 0;
}

static PyObject *
Tally_get(Tally *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    Span d, s;
    PyObject *keep[2];
    if (key_spans(args[0], &d, &s, keep) < 0)
        return NULL;
    PyObject *r = NULL;
    EACH(t, off, e) /* rare (the Python fold): a walk is enough */
    if (r == NULL && e->dn == (uint32_t)d.n && e->sn == (uint32_t)s.n &&
        memcmp(e->key, d.s, (size_t)d.n) == 0 && memcmp(e->key + d.n, s.s, (size_t)s.n) == 0)
        r = PyLong_FromLongLong(e->count);
    Py_DECREF(keep[0]);
    Py_DECREF(keep[1]);
    return r ? r : Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static int
Tally_setitem(Tally *t, PyObject *key, PyObject *v)
{
    if (v == NULL || !PyLong_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "by_status counts are set, never deleted");
        return -1;
    }
    Span d, s;
    PyObject *keep[2];
    if (key_spans(key, &d, &s, keep) < 0)
        return -1;
    long long n = PyLong_AsLongLong(v);
    TEntry *e = n == -1 && PyErr_Occurred() ? NULL : entry(t, d, s);
    Py_DECREF(keep[0]);
    Py_DECREF(keep[1]);
    if (e == NULL)
        return -1;
    e->count = n;
    return 0;
}

static Py_ssize_t
Tally_len(Tally *t)
{
    return (Py_ssize_t)t->n;
}

static PyObject *
Tally_items(Tally *t, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    EACH(t, off, e)
    {
        if (list == NULL)
            break;
        /* one after the other: no C API call with an exception set (damaged UTF-8) */
        PyObject *dom = domain_of(e), *st = dom ? status_of(e) : NULL, *item = NULL;
        if (st != NULL)
            item = Py_BuildValue("((OO)L)", dom, st, (long long)e->count);
        Py_XDECREF(dom);
        Py_XDECREF(st);
        if (item == NULL || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

/* Relay.merge: the next byte range's counts added, its new keys after ours */
static PyObject *
Tally_merge(Tally *t, PyObject *arg)
{
    if (!Py_IS_TYPE(arg, Py_TYPE(t))) {
        PyErr_SetString(PyExc_TypeError, "merge(other: Tally)");
        return NULL;
    }
    Tally *o = (Tally *)arg;
    EACH(o, off, e)
    {
        TEntry *mine = entry(t, (Span){e->key, e->dn}, (Span){e->key + e->dn, e->sn});
        if (mine == NULL)
            return NULL;
        e = TENTRY(o, off); /* o may be t: its arena may have moved */
        if (tk_add(&mine->count, e->count) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* the findings' pass over a relay (findings._mail): the recipients, statuses and domains
 * of the domains that are not the site's; memo (domain -> local?) is read first, local(domain)
 * asked when it has no answer */
static PyObject *
Tally_tally(Tally *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "tally(memo: dict, local: callable)");
        return NULL;
    }
    PyObject *memo = args[0], *local = args[1];
    PyObject *status = PyDict_New(), *domains = PyDict_New();
    long long rcpts = 0;
    int failed = status == NULL || domains == NULL;
    EACH(t, off, e)
    {
        if (failed)
            break;
        PyObject *dom = domain_of(e), *st = NULL;
        PyObject *known = dom ? PyDict_GetItemWithError(memo, dom) : NULL;
        int is_local = -1;
        if (known != NULL)
            is_local = PyObject_IsTrue(known);
        else if (dom != NULL && !PyErr_Occurred()) {
            PyObject *r = PyObject_CallOneArg(local, dom);
            is_local = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
        }
        e = TENTRY(t, off); /* local() ran Python code */
        if (is_local == 0) {
            st = tk_add(&rcpts, e->count) < 0 ? NULL : status_of(e);
            failed = st == NULL;
            PyObject *pairs[2][2] = {{status, st}, {domains, dom}};
            for (int k = 0; !failed && k < 2; k++) {
                PyObject *have = PyDict_GetItemWithError(pairs[k][0], pairs[k][1]);
                long long n = have ? PyLong_AsLongLong(have) : 0;
                PyObject *sum = PyErr_Occurred() || tk_add(&n, e->count) < 0
                                    ? NULL
                                    : PyLong_FromLongLong(n);
                failed = sum == NULL || PyDict_SetItem(pairs[k][0], pairs[k][1], sum) < 0;
                Py_XDECREF(sum);
            }
        }
        else if (is_local < 0)
            failed = 1;
        Py_XDECREF(dom);
        Py_XDECREF(st);
    }
    if (failed) {
        Py_XDECREF(status);
        Py_XDECREF(domains);
        return NULL;
    }
    return Py_BuildValue("(LNN)", rcpts, status, domains);
}

/* -- pickling (a byte range's relays go to the parent process) and copying --------------
 * Tally(packed): each entry's count (i64), domain and status lengths (u32) and key */

static PyObject *
Tally_reduce(Tally *t, PyObject *Py_UNUSED(ignored))
{
    size_t size = 0;
    EACH(t, off, e)
    size += 16 + e->dn + e->sn;
    PyObject *packed = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (packed == NULL)
        return NULL;
    char *w = PyBytes_AS_STRING(packed);
    EACH(t, off, e)
    {
        memcpy(w, &e->count, 8);
        memcpy(w + 8, &e->dn, 4);
        memcpy(w + 12, &e->sn, 4);
        memcpy(w + 16, e->key, e->dn + e->sn);
        w += 16 + e->dn + e->sn;
    }
    return Py_BuildValue("(O(N))", Py_TYPE(t), packed);
}

static PyObject *
Tally_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    const char *packed = NULL;
    Py_ssize_t size = 0;
    if (!PyArg_ParseTuple(args, "|y#:Tally", &packed, &size))
        return NULL;
    Tally *t = (Tally *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    for (const char *r = packed, *end = packed + size; r != NULL && r < end;) {
        long long count;
        uint32_t dn, sn;
        if (end - r < 16)
            goto damaged;
        memcpy(&count, r, 8);
        memcpy(&dn, r + 8, 4);
        memcpy(&sn, r + 12, 4);
        if ((size_t)(end - r - 16) < (size_t)dn + sn)
            goto damaged;
        TEntry *e = entry(t, (Span){r + 16, dn}, (Span){r + 16 + dn, sn});
        if (e == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        if (tk_add(&e->count, count) < 0) { /* a key twice, with huge counts */
            Py_DECREF(t);
            return NULL;
        }
        r += 16 + (size_t)dn + sn;
    }
    return (PyObject *)t;
damaged:
    PyErr_SetString(PyExc_ValueError, "a damaged tally");
    Py_DECREF(t);
    return NULL;
}

static void
Tally_dealloc(Tally *t)
{
    PyMem_RawFree(t->arena);
    PyMem_Free(t->index);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef Tally_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Tally_get, METH_FASTCALL,
     "The count of a (domain, status), or default."},
    {"items", (PyCFunction)Tally_items, METH_NOARGS, "Every ((domain, status), count), in order."},
    {"merge", (PyCFunction)Tally_merge, METH_O, "Relay.merge for by_status."},
    {"tally", (PyCFunction)(void (*)(void))Tally_tally, METH_FASTCALL,
     "(recipients, {status: n}, {domain: n}) of the domains that are not the site's."},
    {"__reduce__", (PyCFunction)Tally_reduce, METH_NOARGS, "Pickled packed."},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods Tally_as_mapping = {
    .mp_length = (lenfunc)Tally_len,
    .mp_ass_subscript = (objobjargproc)Tally_setitem,
};

PyTypeObject tk_TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "todokede.detect._fast.Tally",
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tally(): Relay.by_status as a compact table (see mailagg.py).",
    .tp_new = Tally_new,
    .tp_dealloc = (destructor)Tally_dealloc,
    .tp_methods = Tally_methods,
    .tp_as_mapping = &Tally_as_mapping,
};
