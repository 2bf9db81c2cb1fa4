/* Queue.dump and Queue.load: the messages still queued at the end of a byte range go to
 * the parent process as their records' bytes, copied, not rebuilt. */
#include "_fast.h"

/* -- dump and load: the messages of a byte range, to the parent process ----------------
 * a count, then for each message ts, sent_from, host length, queue id length and blob
 * length (i64 each) and the blob itself: the records are copied, not rebuilt */

PyObject *
tk_queue_dump(Queue *q, PyObject *Py_UNUSED(ignored))
{
    size_t n;
    Msg **all = tk_all(q, tk_by_seq, &n, ALL_BORROW);
    if (all == NULL)
        return NULL;
    Py_ssize_t size = 8;
    for (size_t i = 0; i < n; i++)
        size += 5 * 8 + all[i]->bloblen;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out != NULL) {
        char *p = PyBytes_AS_STRING(out);
        int64_t head[5] = {(int64_t)n};
        memcpy(p, head, 8);
        p += 8;
        for (size_t i = 0; i < n; i++) {
            Msg *m = all[i];
            int64_t h[5] = {m->ts, m->sent_from, m->hostlen, m->qidlen, m->bloblen};
            memcpy(p, h, sizeof h);
            p += sizeof h;
            memcpy(p, m->blob, (size_t)m->bloblen);
            p += m->bloblen;
        }
    }
    PyMem_Free(all);
    return out;
}

PyObject *
tk_queue_load(Queue *q, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "load(data: bytes)");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(arg), *end = p + PyBytes_GET_SIZE(arg);
    int64_t count;
    if (end - p < 8)
        goto short_dump;
    memcpy(&count, p, 8);
    p += 8;
    for (int64_t i = 0; i < count; i++) {
        int64_t h[5];
        if (end - p < (Py_ssize_t)sizeof h)
            goto short_dump;
        memcpy(h, p, sizeof h);
        p += sizeof h;
        /* lengths compared one at a time: h[2] + h[3] of a damaged dump may overflow */
        if (h[2] < 0 || h[3] < 0 || h[4] > end - p || h[2] > h[4] || h[3] > h[4] - h[2])
            goto short_dump;
        Msg *m = PyMem_Calloc(1, sizeof(Msg));
        char *blob = m ? PyMem_Malloc((size_t)h[4] + 1) : NULL;
        if (blob == NULL) {
            PyMem_Free(m);
            PyErr_NoMemory();
            return NULL;
        }
        memcpy(blob, p, (size_t)h[4]);
        p += h[4];
        *m = (Msg){tk_hash(blob, h[2], blob + h[2], h[3]), 0, h[0], blob, h[4], h[2], h[3],
                   h[1] != 0};
        /* read back and packed again: a damaged record is found here, not later */
        View v;
        if (tk_view(m, &v) < 0) {
            tk_msg_free(m);
            return NULL;
        }
        int r = tk_pack(m, &v);
        tk_view_free(&v);
        if (r < 0 || tk_store(q, m) < 0) {
            tk_msg_free(m);
            return NULL;
        }
    }
    if (count < 0 || p != end) /* what dump() writes ends with its last message */
        goto short_dump;
    Py_RETURN_NONE;
short_dump:
    PyErr_SetString(PyExc_ValueError, "a queue dump cut short");
    return NULL;
}

