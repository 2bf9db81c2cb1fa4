/* The Queue type: queue.py's Queue with the messages kept as records (_fast_msg.c) in an
 * open-addressing table keyed by (host, queue id); the Postfix lines that fill it are read
 * in _fast_lines.c. */
#include "_fast.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define TOMB ((Msg *)1)

/* -- the table -------------------------------------------------------------------------- */

Msg **
tk_lookup(Queue *q, const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn, uint64_t hash)
{
    if (q->cap == 0)
        return NULL;
    size_t mask = q->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        Msg *m = q->slots[i];
        if (m == NULL)
            return NULL;
        if (m != TOMB && m->hash == hash && m->hostlen == hn && m->qidlen == qn &&
            memcmp(m->blob, h, (size_t)hn) == 0 && memcmp(m->blob + hn, qid, (size_t)qn) == 0)
            return &q->slots[i];
    }
}

static Msg **
q_find(Queue *q, const Msg *m)
{
    return tk_lookup(q, m->blob, m->hostlen, m->blob + m->hostlen, m->qidlen, m->hash);
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
int
tk_insert(Queue *q, Msg *m)
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

/* as dict assignment: a message already there is replaced, in its place */
int
tk_store(Queue *q, Msg *m)
{
    Msg **slot = q_find(q, m);
    if (slot != NULL) {
        m->seq = (*slot)->seq;
        tk_msg_free(*slot);
        *slot = m;
        return 0;
    }
    return tk_insert(q, m);
}

void
tk_unlink(Queue *q, Msg **slot)
{
    *slot = TOMB;
    q->live--;
}

/* every live message, in the given order (mode: see _fast.h) */
Msg **
tk_all(Queue *q, int (*order)(const void *, const void *), size_t *count, int mode)
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
    if (mode == ALL_TAKE) {
        PyMem_Free(q->slots);
        q->slots = NULL;
        q->cap = q->used = q->live = 0;
    }
    for (size_t i = 0; mode == ALL_COPY && i < n; i++) {
        Msg *c = PyMem_Malloc(sizeof(Msg));
        char *blob = c ? PyMem_Malloc((size_t)all[i]->bloblen + 1) : NULL;
        if (blob == NULL) {
            PyMem_Free(c);
            while (i > 0)
                tk_msg_free(all[--i]);
            PyMem_Free(all);
            PyErr_NoMemory();
            return NULL;
        }
        *c = *all[i];
        memcpy(blob, all[i]->blob, (size_t)all[i]->bloblen);
        c->blob = blob;
        all[i] = c;
    }
    return all;
}

static void
q_free_all(Queue *q)
{
    for (size_t i = 0; i < q->cap; i++)
        if (q->slots[i] != NULL && q->slots[i] != TOMB)
            tk_msg_free(q->slots[i]);
    PyMem_Free(q->slots);
    q->slots = NULL;
    q->cap = q->used = q->live = 0;
}

int
tk_by_seq(const void *a, const void *b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
cmp_bytes(const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn)
{
    int c = memcmp(a, b, (size_t)(an < bn ? an : bn));
    return c != 0 ? c : (an < bn ? -1 : an > bn);
}

/* (ts, key) order, as sorted() orders (ts, (host, qid)) */
static int
by_time(const void *a, const void *b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    int c = cmp_bytes(x->blob, x->hostlen, y->blob, y->hostlen);
    return c != 0 ? c
                  : cmp_bytes(x->blob + x->hostlen, x->qidlen, y->blob + y->hostlen, y->qidlen);
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
    q->done = Py_NewRef(done);
    q->make = Py_NewRef(make);
    q->local = Py_NewRef(local);
    return (PyObject *)q;
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
    tp->tp_free((PyObject *)q);
}

static Py_ssize_t
Queue_len(Queue *q)
{
    return (Py_ssize_t)q->live;
}

static PyObject *
Queue_messages(Queue *q, PyObject *Py_UNUSED(ignored))
{
    size_t n;
    /* copies: make() is Python code */
    Msg **all = tk_all(q, tk_by_seq, &n, ALL_COPY);
    if (all == NULL)
        return NULL;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; i < n; i++) {
        PyObject *m = list ? tk_msg_to_python(q->make, all[i]) : NULL;
        if (m == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, m);
        tk_msg_free(all[i]);
    }
    PyMem_Free(all);
    return list;
}

/* give the pages of many records just freed back (malloc keeps them otherwise, and the
 * Python objects that come next live elsewhere) */
static void
q_trim(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static PyObject *
Queue_clear_method(Queue *q, PyObject *Py_UNUSED(ignored))
{
    q_free_all(q);
    q_trim();
    Py_RETURN_NONE;
}

static PyObject *
Queue_take(Queue *q, PyObject *key)
{
    const char *h, *qid;
    Py_ssize_t hn, qn;
    if (tk_split_key(key, &h, &hn, &qid, &qn) < 0)
        return NULL;
    Msg **slot = tk_lookup(q, h, hn, qid, qn, tk_hash(h, hn, qid, qn));
    if (slot == NULL)
        Py_RETURN_NONE;
    Msg *m = *slot;
    PyObject *result = tk_msg_to_python(q->make, m);
    if (result != NULL) {
        /* make() is Python code: it may have changed the table */
        slot = tk_lookup(q, h, hn, qid, qn, tk_hash(h, hn, qid, qn));
        if (slot != NULL) {
            m = *slot;
            tk_unlink(q, slot);
            tk_msg_free(m);
        }
    }
    return result;
}

static PyObject *
Queue_put(Queue *q, PyObject *o)
{
    Msg *m = tk_msg_from_python(o);
    if (m == NULL)
        return NULL;
    if (tk_store(q, m) < 0) {
        tk_msg_free(m);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Queue_retire(Queue *q, PyObject *o)
{
    Msg *m = tk_msg_from_python(o);
    if (m == NULL)
        return NULL;
    int r = tk_retire(q->done, m);
    tk_msg_free(m);
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
    if (tk_removed(q, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                   PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1])) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Queue_postfix(Queue *q, PyObject *const *args, Py_ssize_t nargs)
{
    int ok = nargs == 7 && PyLong_Check(args[0]);
    for (int i = 1; ok && i < 7; i++)
        ok = PyBytes_Check(args[i]);
    if (!ok) {
        PyErr_SetString(PyExc_TypeError,
                        "postfix(ts: int, host, prog, qid, head, rest, line: bytes)");
        return NULL;
    }
    long long ts = PyLong_AsLongLong(args[0]);
    if (ts == -1 && PyErr_Occurred())
        return NULL;
    /* the head was cut from rest by the caller; it picks the kind of line */
    const char *hd = PyBytes_AS_STRING(args[4]);
    if (!(PyBytes_GET_SIZE(args[4]) == 3 && (memcmp(hd, "to=", 3) == 0 ||
                                              memcmp(hd, "fro", 3) == 0 ||
                                              memcmp(hd, "cli", 3) == 0)))
        Py_RETURN_FALSE;
#define B(i) PyBytes_AS_STRING(args[i]), PyBytes_GET_SIZE(args[i])
    int r = tk_postfix(q, ts, B(1), B(2), B(3), B(5), B(6));
#undef B
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

/* is the message's tag (its key's hash) in keep (a set of ints; -1: error)? No Python code
 * runs */
static int
q_kept(PyObject *keep, const Msg *m)
{
    if (keep == NULL || PySet_GET_SIZE(keep) == 0)
        return 0;
    PyObject *tag = PyLong_FromUnsignedLongLong(m->hash);
    int r = tag ? PySet_Contains(keep, tag) : -1;
    Py_XDECREF(tag);
    return r;
}

/* the messages of all whose tag is not in keep, moved to its front (*n: how many); with
 * ALL_TAKE the others go back into the (emptied) table, in their order of first sight */
static int
q_but(Queue *q, Msg **all, size_t *n, PyObject *keep, int mode)
{
    size_t out = 0;
    int failed = 0;
    for (size_t i = 0; i < *n; i++) {
        Msg *m = all[i];
        int kept = failed ? 1 : q_kept(keep, m);
        if (kept < 0)
            failed = kept = 1;
        if (!kept) {
            all[out++] = m;
            continue;
        }
        if (mode != ALL_TAKE) {
            tk_msg_free(m);
            continue;
        }
        unsigned long long seq = m->seq;
        if (tk_insert(q, m) < 0) {
            tk_msg_free(m);
            failed = 1;
            continue;
        }
        m->seq = seq;
    }
    *n = out;
    return failed ? -1 : 0;
}

static PyObject *
Queue_fold(Queue *q, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyCallable_Check(args[0]) ||
        (nargs == 3 && !PyAnySet_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "fold(done: callable, consume: bool, keep: set = ...)");
        return NULL;
    }
    int consume = PyObject_IsTrue(args[1]);
    if (consume < 0)
        return NULL;
    PyObject *keep = nargs == 3 ? args[2] : NULL;
    size_t n;
    /* consume: the table lets go of them, each is freed once handed on, so that the
     * aggregates grow into the memory the messages leave; else copies, since done() may
     * change the queue (Python's fold goes over a list of the messages) */
    int mode = consume ? ALL_TAKE : ALL_COPY;
    Msg **all = tk_all(q, by_time, &n, mode);
    if (all == NULL)
        return NULL;
    int failed = q_but(q, all, &n, keep, mode) < 0;
    for (size_t i = 0; i < n; i++) {
        if (!failed && tk_retire(args[0], all[i]) < 0)
            failed = 1;
        tk_msg_free(all[i]);
        /* the aggregates grow in Python's arenas, not in the pages the records leave:
         * give those back as the fold goes */
        if (consume && i % 4096 == 4095)
            q_trim();
    }
    PyMem_Free(all);
    if (consume)
        q_trim();
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* Queue.tags: the tags of every message, of those without a sender, of those without a
 * client (what Queue.merge asks of them), in no order */
static PyObject *
Queue_tags(Queue *q, PyObject *Py_UNUSED(ignored))
{
    PyObject *out[3] = {NULL, NULL, NULL}, *result = NULL;
    Py_ssize_t len[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        if ((out[k] = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(q->live * 8))) == NULL)
            goto done;
    for (size_t i = 0; i < q->cap; i++) {
        const Msg *m = q->slots[i];
        if (m == NULL || m == TOMB)
            continue;
        int in[3] = {1, !m->has_sender, !m->has_client};
        for (int k = 0; k < 3; k++)
            if (in[k]) {
                memcpy(PyBytes_AS_STRING(out[k]) + len[k], &m->hash, 8);
                len[k] += 8;
            }
    }
    for (int k = 1; k < 3; k++)
        if (_PyBytes_Resize(&out[k], len[k]) < 0)
            goto done;
    result = PyTuple_Pack(3, out[0], out[1], out[2]);
done:
    for (int k = 0; k < 3; k++)
        Py_XDECREF(out[k]);
    return result;
}

/* Queue.tag: the tag of a key */
static PyObject *
Queue_tag(Queue *q, PyObject *key)
{
    const char *h, *qid;
    Py_ssize_t hn, qn;
    if (tk_split_key(key, &h, &hn, &qid, &qn) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(tk_hash(h, hn, qid, qn));
}

static PyObject *
Queue_merge(Queue *q, PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &tk_QueueType)) {
        PyErr_SetString(PyExc_TypeError, "merge(other: Queue)");
        return NULL;
    }
    Queue *other = (Queue *)arg;
    if (other == q)
        Py_RETURN_NONE;
    size_t n;
    /* the other queue lets go of its messages: each is moved here or freed */
    Msg **all = tk_all(other, tk_by_seq, &n, ALL_TAKE);
    if (all == NULL)
        return NULL;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        Msg *o = all[i];
        if (failed) {
            tk_msg_free(o);
            continue;
        }
        Msg **slot = q_find(q, o);
        Msg *mine = slot ? *slot : NULL;
        if (mine != NULL && !(mine->has_sender && o->has_client)) {
            /* continued: merged, and last in order, as take() and put() leave it */
            if (tk_merge(mine, o) < 0)
                failed = 1;
            mine->seq = q->seq++;
            tk_msg_free(o);
            continue;
        }
        if (mine != NULL) { /* started again there: this one is complete */
            tk_unlink(q, slot);
            if (tk_retire(q->done, mine) < 0)
                failed = 1;
            tk_msg_free(mine);
        }
        if (tk_insert(q, o) < 0) {
            tk_msg_free(o);
            failed = 1;
        }
    }
    PyMem_Free(all);
    if (failed)
        return NULL;
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
     "Hand every message to done() in time order; consume: empty the queue; keep: tags "
     "of messages neither handed on nor taken out."},
    {"tags", (PyCFunction)Queue_tags, METH_NOARGS,
     "The tags (64-bit hashes of the key, packed) of the queued messages, of those without "
     "a sender and of those without a client, in no order."},
    {"tag", (PyCFunction)Queue_tag, METH_O, "The tag of a key."},
    {"merge", (PyCFunction)Queue_merge, METH_O,
     "Take in the messages of the next byte range (the other queue is emptied)."},
    {"dump", (PyCFunction)tk_queue_dump, METH_NOARGS, "The messages, packed into bytes."},
    {"load", (PyCFunction)tk_queue_load, METH_O, "Add the messages of a dump()."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Queue_as_sequence = {.sq_length = (lenfunc)Queue_len};

PyTypeObject tk_QueueType = {
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
