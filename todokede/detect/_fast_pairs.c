/* The Pairs type: MailAgg.pairs ("service\0sender\0recipient" -> the time of its only
 * message, or a Pair) as one compact table. A spam run gives a pair per recipient, almost
 * all of one message: as a dict each costs a str, an int and a slot (about 200 bytes);
 * here an entry is the key's UTF-8 and a time in an arena (about 110). Entries keep their
 * order of insertion, as a dict does (the findings list mail bombs in that order). */
#include "_fast.h"

typedef struct {
    uint64_t hash;
    int64_t ts;     /* the only message's time, while pair is NULL */
    PyObject *pair; /* a Pair: two messages or more */
    uint32_t keylen;
    char key[];
} Entry;

typedef struct {
    PyObject_HEAD PyObject *pair_type;
    char *arena; /* the entries, each 8-aligned, in order of insertion */
    size_t len, cap, n;
    uint32_t *index; /* open addressing: an entry's offset / 8 + 1; 0 empty */
    size_t icap;
} Pairs;

#define ENTRY(p, off) ((Entry *)((p)->arena + (off)))
#define ESIZE(keylen) ((sizeof(Entry) + (keylen) + 7) & ~(size_t)7)

static Entry *
lookup(Pairs *p, const char *key, Py_ssize_t n, uint64_t hash, size_t *slot)
{
    size_t mask = p->icap - 1, i = (size_t)hash & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t at = p->index[i];
        if (at == 0) {
            *slot = i;
            return NULL;
        }
        Entry *e = ENTRY(p, (size_t)(at - 1) * 8);
        if (e->hash == hash && e->keylen == (uint32_t)n && memcmp(e->key, key, (size_t)n) == 0) {
            *slot = i;
            return e;
        }
    }
}

static int
grow_index(Pairs *p)
{
    size_t icap = p->icap ? p->icap * 2 : 1024;
    uint32_t *index = PyMem_Calloc(icap, sizeof(uint32_t));
    if (index == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen)) {
        size_t i = (size_t)ENTRY(p, off)->hash & (icap - 1);
        while (index[i] != 0)
            i = (i + 1) & (icap - 1);
        index[i] = (uint32_t)(off / 8 + 1);
    }
    PyMem_Free(p->index);
    p->index = index;
    p->icap = icap;
    return 0;
}

/* the entry for a key, added (with ts) when there is none; *added says which */
static Entry *
entry(Pairs *p, const char *key, Py_ssize_t n, int64_t ts, int *added)
{
    if ((p->n + 1) * 2 > p->icap && grow_index(p) < 0)
        return NULL;
    uint64_t hash = tk_hash(key, n, "", 0);
    size_t slot;
    Entry *e = lookup(p, key, n, hash, &slot);
    *added = e == NULL;
    if (e != NULL)
        return e;
    size_t size = ESIZE((size_t)n);
    if (n > (Py_ssize_t)UINT32_MAX || (p->len + size) / 8 >= UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many sender and recipient pairs");
        return NULL;
    }
    if (p->len + size > p->cap) {
        size_t cap = p->cap ? p->cap : 1 << 16;
        while (cap < p->len + size)
            cap *= 2;
        char *arena = PyMem_RawRealloc(p->arena, cap);
        if (arena == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        p->arena = arena;
        p->cap = cap;
    }
    e = ENTRY(p, p->len);
    e->hash = hash;
    e->ts = ts;
    e->pair = NULL;
    e->keylen = (uint32_t)n;
    memcpy(e->key, key, (size_t)n);
    p->index[slot] = (uint32_t)(p->len / 8 + 1);
    p->len += size;
    p->n++;
    return e;
}

static PyObject *
entry_key(const Entry *e)
{
    return PyUnicode_DecodeUTF8(e->key, e->keylen, "surrogatepass");
}

/* the service: the key up to its first NUL (pkey.partition("\0")[0]) */
static PyObject *
entry_service(const Entry *e)
{
    const char *nul = memchr(e->key, 0, e->keylen);
    return PyUnicode_DecodeUTF8(e->key, nul ? nul - e->key : e->keylen, "surrogatepass");
}

/* a second message for a pair of one: Pair(service, [first time]) */
static int
to_pair(Pairs *p, Entry *e, PyObject *service)
{
    PyObject *times = Py_BuildValue("[L]", (long long)e->ts);
    e->pair = times ? PyObject_CallFunctionObjArgs(p->pair_type, service, times, NULL) : NULL;
    Py_XDECREF(times);
    return e->pair ? 0 : -1;
}

/* MailAgg.add's step for one recipient (key: its UTF-8); raw: the message's first line */
int
tk_pairs_add(PyObject *pairs, const char *key, Py_ssize_t n, long long ts, PyObject *service,
             PyObject *(*raw)(void *), void *arg)
{
    Pairs *p = (Pairs *)pairs;
    int added;
    Entry *e = entry(p, key, n, ts, &added);
    if (e == NULL)
        return -1;
    if (added) /* most pairs are one message: a bare time */
        return 0;
    PyObject *line = raw(arg);
    if (line == NULL || (e->pair == NULL && to_pair(p, e, service) < 0))
        return -1;
    PyObject *t = PyLong_FromLongLong(ts);
    if (t == NULL)
        return -1;
    int r = tk_pair_add(p->pair_type, e->pair, t, line);
    Py_DECREF(t);
    return r;
}

/* -- the Python side: what MailAgg and the findings ask of a dict ----------------------- */

static int
key_bytes(PyObject *key, const char **s, Py_ssize_t *n, PyObject **keep)
{
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "pair keys are str");
        return -1;
    }
    *keep = PyUnicode_AsEncodedString(key, "utf-8", "surrogatepass");
    if (*keep == NULL)
        return -1;
    *s = PyBytes_AS_STRING(*keep);
    *n = PyBytes_GET_SIZE(*keep);
    return 0;
}

static PyObject *
value(const Entry *e)
{
    return e->pair ? Py_NewRef(e->pair) : PyLong_FromLongLong(e->ts);
}

static PyObject *
Pairs_get(Pairs *p, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    const char *s;
    Py_ssize_t n;
    PyObject *keep;
    if (key_bytes(args[0], &s, &n, &keep) < 0)
        return NULL;
    size_t slot;
    Entry *e = p->icap ? lookup(p, s, n, tk_hash(s, n, "", 0), &slot) : NULL;
    Py_DECREF(keep);
    if (e != NULL)
        return value(e);
    return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

/* pairs[key] = time (an int) or a Pair */
static int
Pairs_setitem(Pairs *p, PyObject *key, PyObject *v)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_TypeError, "pairs are never deleted");
        return -1;
    }
    const char *s;
    Py_ssize_t n;
    PyObject *keep;
    if (key_bytes(key, &s, &n, &keep) < 0)
        return -1;
    long long ts = 0;
    if (PyLong_Check(v) && (ts = PyLong_AsLongLong(v)) == -1 && PyErr_Occurred()) {
        Py_DECREF(keep);
        return -1;
    }
    int added;
    Entry *e = entry(p, s, n, ts, &added);
    Py_DECREF(keep);
    if (e == NULL)
        return -1;
    e->ts = ts;
    Py_XSETREF(e->pair, PyLong_Check(v) ? NULL : Py_NewRef(v));
    return 0;
}

static Py_ssize_t
Pairs_len(Pairs *p)
{
    return (Py_ssize_t)p->n;
}

/* (key, value) of every entry, or (multi) of those that are a Pair */
static PyObject *
listing(Pairs *p, int multi)
{
    PyObject *list = PyList_New(0);
    for (size_t off = 0; list != NULL && off < p->len; off += ESIZE(ENTRY(p, off)->keylen)) {
        Entry *e = ENTRY(p, off);
        if (multi && e->pair == NULL)
            continue;
        PyObject *k = entry_key(e), *v = k ? value(e) : NULL;
        PyObject *t = v ? PyTuple_Pack(2, k, v) : NULL;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (t == NULL || PyList_Append(list, t) < 0)
            Py_CLEAR(list);
        Py_XDECREF(t);
    }
    return list;
}

static PyObject *
Pairs_items(Pairs *p, PyObject *Py_UNUSED(ignored))
{
    return listing(p, 0);
}

static PyObject *
Pairs_multi(Pairs *p, PyObject *Py_UNUSED(ignored))
{
    return listing(p, 1);
}

/* MailAgg.merge's loop over the pairs of the next byte range */
static PyObject *
Pairs_merge(Pairs *p, PyObject *arg)
{
    if (!Py_IS_TYPE(arg, Py_TYPE(p))) {
        PyErr_SetString(PyExc_TypeError, "merge(other: Pairs)");
        return NULL;
    }
    Pairs *o = (Pairs *)arg;
    for (size_t off = 0; off < o->len; off += ESIZE(ENTRY(o, off)->keylen)) {
        Entry *theirs = ENTRY(o, off);
        int added;
        Entry *mine = entry(p, theirs->key, theirs->keylen, theirs->ts, &added);
        if (mine == NULL)
            return NULL;
        PyObject *r = NULL;
        if (added) {
            mine->pair = Py_XNewRef(theirs->pair);
            continue;
        }
        if (mine->pair == NULL && theirs->pair == NULL) {
            PyObject *service = entry_service(mine);
            PyObject *times = service ? Py_BuildValue("[LL]", (long long)mine->ts,
                                                      (long long)theirs->ts)
                                      : NULL;
            mine->pair = times ? PyObject_CallFunctionObjArgs(p->pair_type, service, times,
                                                              NULL)
                               : NULL;
            Py_XDECREF(service);
            Py_XDECREF(times);
            r = mine->pair ? Py_NewRef(Py_None) : NULL;
        }
        else if (mine->pair == NULL) { /* pair.times.insert(0, mine); pairs[key] = pair */
            PyObject *times = PyObject_GetAttrString(theirs->pair, "times");
            PyObject *t = times ? PyLong_FromLongLong(mine->ts) : NULL;
            if (t != NULL && PyList_Check(times) && PyList_Insert(times, 0, t) == 0) {
                mine->pair = Py_NewRef(theirs->pair);
                r = Py_NewRef(Py_None);
            }
            else if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "Pair.times is a list");
            Py_XDECREF(t);
            Py_XDECREF(times);
        }
        else if (theirs->pair == NULL) { /* mine.times.append(pair) */
            PyObject *times = PyObject_GetAttrString(mine->pair, "times");
            PyObject *t = times ? PyLong_FromLongLong(theirs->ts) : NULL;
            if (t != NULL && PyList_Check(times) && PyList_Append(times, t) == 0)
                r = Py_NewRef(Py_None);
            else if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "Pair.times is a list");
            Py_XDECREF(t);
            Py_XDECREF(times);
        }
        else
            r = PyObject_CallMethod(mine->pair, "merge", "O", theirs->pair);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

/* -- pickling (a byte range's pairs go to the parent process) and copying ---------------
 * Pairs(pair_type, packed, pairs): packed is each entry's time (i64), key length (u32),
 * whether it is a Pair (u8) and key; pairs holds those Pairs in order */

static PyObject *
Pairs_reduce(Pairs *p, PyObject *Py_UNUSED(ignored))
{
    size_t size = 0;
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen))
        size += 13 + ENTRY(p, off)->keylen;
    PyObject *packed = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    PyObject *objs = packed ? PyList_New(0) : NULL;
    if (objs == NULL) {
        Py_XDECREF(packed);
        return NULL;
    }
    char *w = PyBytes_AS_STRING(packed);
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen)) {
        Entry *e = ENTRY(p, off);
        memcpy(w, &e->ts, 8);
        memcpy(w + 8, &e->keylen, 4);
        w[12] = e->pair != NULL;
        memcpy(w + 13, e->key, e->keylen);
        w += 13 + e->keylen;
        if (e->pair != NULL && PyList_Append(objs, e->pair) < 0) {
            Py_DECREF(packed);
            Py_DECREF(objs);
            return NULL;
        }
    }
    return Py_BuildValue("(O(ONN))", Py_TYPE(p), p->pair_type, packed, objs);
}

static PyObject *
Pairs_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *pair_type, *objs = NULL;
    const char *packed = NULL;
    Py_ssize_t size = 0;
    if (!PyArg_ParseTuple(args, "O|y#O!:Pairs", &pair_type, &packed, &size, &PyList_Type, &objs))
        return NULL;
    Pairs *p = (Pairs *)type->tp_alloc(type, 0);
    if (p == NULL)
        return NULL;
    p->pair_type = Py_NewRef(pair_type);
    Py_ssize_t used = 0;
    for (const char *r = packed, *end = packed + size; r != NULL && r < end;) {
        int64_t ts;
        uint32_t n;
        if (end - r < 13 || (memcpy(&ts, r, 8), memcpy(&n, r + 8, 4), (size_t)(end - r - 13) < n))
            goto damaged;
        int added, multi = r[12] != 0;
        Entry *e = entry(p, r + 13, n, ts, &added);
        if (e == NULL)
            goto failed;
        if (multi) {
            if (objs == NULL || used >= PyList_GET_SIZE(objs))
                goto damaged;
            PyObject *pair = PyList_GET_ITEM(objs, used++);
            int ok = PyObject_IsInstance(pair, pair_type); /* what merge and add call on */
            if (ok < 0)
                goto failed;
            if (!ok)
                goto damaged;
            Py_XSETREF(e->pair, Py_NewRef(pair));
        }
        r += 13 + n;
    }
    return (PyObject *)p;
damaged:
    PyErr_SetString(PyExc_ValueError, "damaged pairs");
failed:
    Py_DECREF(p);
    return NULL;
}

static int
Pairs_traverse(Pairs *p, visitproc visit, void *arg)
{
    Py_VISIT(p->pair_type);
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen))
        Py_VISIT(ENTRY(p, off)->pair);
    return 0;
}

static int
Pairs_clear(Pairs *p)
{
    Py_CLEAR(p->pair_type);
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen))
        Py_CLEAR(ENTRY(p, off)->pair);
    return 0;
}

static void
free_entries(Pairs *p)
{
    for (size_t off = 0; off < p->len; off += ESIZE(ENTRY(p, off)->keylen))
        Py_CLEAR(ENTRY(p, off)->pair);
    PyMem_RawFree(p->arena);
    PyMem_Free(p->index);
    p->arena = NULL;
    p->index = NULL;
    p->len = p->cap = p->n = p->icap = 0;
}

static void
Pairs_dealloc(Pairs *p)
{
    PyTypeObject *tp = Py_TYPE(p);
    PyObject_GC_UnTrack(p);
    Pairs_clear(p);
    free_entries(p);
    tp->tp_free((PyObject *)p);
}

static PyObject *
Pairs_clear_method(Pairs *p, PyObject *Py_UNUSED(ignored))
{
    free_entries(p);
    Py_RETURN_NONE;
}

static PyMethodDef Pairs_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Pairs_get, METH_FASTCALL,
     "The time of the pair's only message, its Pair, or default."},
    {"items", (PyCFunction)Pairs_items, METH_NOARGS, "Every (key, time or Pair), in order."},
    {"multi", (PyCFunction)Pairs_multi, METH_NOARGS,
     "The (key, Pair) of pairs with two messages or more, in order."},
    {"merge", (PyCFunction)Pairs_merge, METH_O, "MailAgg.merge for the pairs."},
    {"clear", (PyCFunction)Pairs_clear_method, METH_NOARGS, "Forget every pair."},
    {"__reduce__", (PyCFunction)Pairs_reduce, METH_NOARGS, "Pickled packed."},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods Pairs_as_mapping = {
    .mp_length = (lenfunc)Pairs_len,
    .mp_ass_subscript = (objobjargproc)Pairs_setitem,
};

PyTypeObject tk_PairsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "todokede.detect._fast.Pairs",
    .tp_basicsize = sizeof(Pairs),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Pairs(pair_type): MailAgg.pairs as a compact table (see mailagg.py).",
    .tp_new = Pairs_new,
    .tp_dealloc = (destructor)Pairs_dealloc,
    .tp_traverse = (traverseproc)Pairs_traverse,
    .tp_clear = (inquiry)Pairs_clear,
    .tp_methods = Pairs_methods,
    .tp_as_mapping = &Pairs_as_mapping,
};
