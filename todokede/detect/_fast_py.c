/* Records and Python: the text as the Python path decodes it, a record's fields as
 * Python objects (to hand a message to Python), a queue.Msg made into a record. */
#include "_fast.h"

/* -- text as the Python path decodes it ------------------------------------------------ */

int
tk_is_ascii(const char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) { /* eight bytes at a time: a log line is mostly ASCII */
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL)
            return 0;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

static int
via_str(PyObject *str, Span *out, PyObject **keep)
{
    if (str == NULL)
        return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(str, &n);
    if (s == NULL) {
        Py_DECREF(str);
        return -1;
    }
    *out = (Span){s, n};
    *keep = str;
    return 0;
}

int
tk_utf8(const char *s, Py_ssize_t n, Span *out, PyObject **keep)
{
    *keep = NULL;
    if (tk_is_ascii(s, n)) {
        *out = (Span){s, n};
        return 0;
    }
    return via_str(PyUnicode_DecodeUTF8(s, n, "replace"), out, keep);
}

int
tk_ascii(const char *s, Py_ssize_t n, Span *out, PyObject **keep)
{
    *keep = NULL;
    if (tk_is_ascii(s, n)) {
        *out = (Span){s, n};
        return 0;
    }
    return via_str(PyUnicode_DecodeASCII(s, n, "replace"), out, keep);
}

/* -- to Python ---------------------------------------------------------------------------- */

PyObject *
tk_str(Span s)
{
    if (s.n < 0)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s.s, s.n, "surrogatepass");
}

PyObject *
tk_size(const View *v)
{
    if (v->bigsize.n <= 0)
        return PyLong_FromLongLong(v->size);
    char *digits = PyMem_Malloc((size_t)v->bigsize.n + 1);
    if (digits == NULL)
        return PyErr_NoMemory();
    memcpy(digits, v->bigsize.s, (size_t)v->bigsize.n);
    digits[v->bigsize.n] = 0;
    PyObject *size = PyLong_FromString(digits, NULL, 10);
    PyMem_Free(digits);
    return size;
}

PyObject *
tk_key(const Msg *m)
{
    return Py_BuildValue("(y#y#)", m->blob, m->hostlen, m->blob + m->hostlen, m->qidlen);
}

PyObject *
tk_rcpts(const View *v)
{
    PyObject *list = PyList_New(v->nrcpt);
    for (Py_ssize_t i = 0; list != NULL && i < v->nrcpt; i++) {
        const RcptV *r = &v->rcpts[i];
        /* each made only while the ones before were: no C API call with an exception
         * set (stored text that is not UTF-8 comes from a damaged dump) */
        PyObject *t = PyTuple_New(5), *f[5] = {NULL, NULL, NULL, NULL, NULL};
        int ok = t != NULL && (f[0] = tk_str(r->rcpt)) && (f[1] = tk_str(r->via)) &&
                 (f[2] = tk_str(r->status)) && (f[3] = tk_str(r->orig)) &&
                 (f[4] = PyLong_FromLongLong(r->ts));
        for (int j = 0; j < 5; j++) {
            if (t != NULL && f[j] != NULL)
                PyTuple_SET_ITEM(t, j, f[j]);
            else
                Py_XDECREF(f[j]);
        }
        if (!ok) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

PyObject *
tk_raw(const View *v)
{
    PyObject *list = PyList_New(v->nraw);
    for (Py_ssize_t i = 0; list != NULL && i < v->nraw; i++) {
        PyObject *b = PyBytes_FromStringAndSize(v->raw[i].s, v->raw[i].n);
        if (b == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, b);
    }
    return list;
}

/* the message's fields as Python objects: key, ts, service, host, addr, sender, size,
 * rcpts, raw (the order of a Done call) */
static int
fields(const Msg *m, PyObject *f[9])
{
    View v;
    memset(f, 0, 9 * sizeof(PyObject *));
    if (tk_view(m, &v) < 0)
        return -1;
    /* each made only while the ones before were: no C API call with an exception set */
    (void)((f[0] = tk_key(m)) && (f[1] = PyLong_FromLongLong(m->ts)) && (f[2] = tk_str(v.service)) &&
        (f[3] = tk_str(v.host)) && (f[4] = tk_str(v.addr)) && (f[5] = tk_str(v.sender)) &&
        (f[6] = tk_size(&v)) && (f[7] = tk_rcpts(&v)) && (f[8] = tk_raw(&v)));
    tk_view_free(&v);
    for (int i = 0; i < 9; i++)
        if (f[i] == NULL) {
            for (int j = 0; j < 9; j++)
                Py_CLEAR(f[j]);
            return -1;
        }
    return 0;
}

int
tk_call_done(PyObject *done, const Msg *m)
{
    PyObject *f[9];
    if (fields(m, f) < 0)
        return -1;
    PyObject *result = PyObject_Vectorcall(done, f, 9, NULL);
    for (int i = 0; i < 9; i++)
        Py_DECREF(f[i]);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* a queue.Msg, made by queue._msg(addr, host, key, raw, rcpts, sender, sent_from, service,
 * size, ts): the order of Msg.__slots__ */
PyObject *
tk_msg_to_python(PyObject *make, const Msg *m)
{
    PyObject *f[9];
    if (fields(m, f) < 0)
        return NULL;
    PyObject *args[10] = {f[4], f[3], f[0], f[8], f[7], f[5],
                          m->sent_from ? Py_True : Py_False, f[2], f[6], f[1]};
    PyObject *result = PyObject_Vectorcall(make, args, 10, NULL);
    for (int i = 0; i < 9; i++)
        Py_DECREF(f[i]);
    return result;
}

/* -- from Python ---------------------------------------------------------------------------- */

int
tk_split_key(PyObject *key, const char **h, Py_ssize_t *hn, const char **qid, Py_ssize_t *qn)
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

/* a str as stored (UTF-8, surrogates kept), or None; the bytes object backing the span
 * goes into keep */
static int
text(PyObject *o, Span *out, PyObject *keep, int none_ok)
{
    if (o == Py_None && none_ok) {
        *out = (Span){"", -1};
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "not a queue.Msg: a text field is not a str");
        return -1;
    }
    PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
    if (b == NULL)
        return -1;
    int r = PyList_Append(keep, b);
    Py_DECREF(b);
    *out = (Span){PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b)};
    return r;
}

static PyObject *
attr(PyObject *o, const char *name, PyObject *keep)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    if (v == NULL)
        return NULL;
    int r = PyList_Append(keep, v);
    Py_DECREF(v);
    return r < 0 ? NULL : v;
}

/* a queue.Msg into a record */
Msg *
tk_msg_from_python(PyObject *o)
{
    PyObject *keep = PyList_New(0), *key, *ts, *rcpts, *raw, *sent, *size;
    if (keep == NULL)
        return NULL;
    Msg *m = NULL;
    View v;
    memset(&v, 0, sizeof v);
    const char *h, *qid;
    Py_ssize_t hn, qn;
    if (!(key = attr(o, "key", keep)) || !(ts = attr(o, "ts", keep)) ||
        !(rcpts = attr(o, "rcpts", keep)) || !(raw = attr(o, "raw", keep)) ||
        !(sent = attr(o, "sent_from", keep)) || !(size = attr(o, "size", keep)) ||
        tk_split_key(key, &h, &hn, &qid, &qn) < 0)
        goto fail;
    PyObject *service, *host, *addr, *sender;
    if (!(service = attr(o, "service", keep)) || !(host = attr(o, "host", keep)) ||
        !(addr = attr(o, "addr", keep)) || !(sender = attr(o, "sender", keep)) ||
        text(service, &v.service, keep, 0) || text(host, &v.host, keep, 0) ||
        text(addr, &v.addr, keep, 0) || text(sender, &v.sender, keep, 1))
        goto fail;
    if (!PyLong_Check(size) || !PyList_Check(rcpts) || !PyList_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "not a queue.Msg");
        goto fail;
    }
    int overflow;
    v.bigsize.s = "";
    v.size = PyLong_AsLongLongAndOverflow(size, &overflow);
    if (v.size == -1 && PyErr_Occurred())
        goto fail;
    if (overflow) {
        PyObject *digits = PyObject_Str(size);
        if (digits == NULL || PyList_Append(keep, digits) < 0) {
            Py_XDECREF(digits);
            goto fail;
        }
        Py_DECREF(digits);
        v.bigsize.s = PyUnicode_AsUTF8AndSize(digits, &v.bigsize.n);
        v.size = 0;
        if (v.bigsize.s == NULL)
            goto fail;
    }
    long long t = PyLong_AsLongLong(ts);
    int sent_from = PyObject_IsTrue(sent);
    if ((t == -1 && PyErr_Occurred()) || sent_from < 0)
        goto fail;
    /* appended as they are: the list has had add_rcpt's replacements already */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rcpts); i++) {
        PyObject *r = PyList_GET_ITEM(rcpts, i);
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 5) {
            PyErr_SetString(PyExc_TypeError, "a recipient is a 5-tuple");
            goto fail;
        }
        RcptV rv;
        rv.ts = PyLong_AsLongLong(PyTuple_GET_ITEM(r, 4));
        if ((rv.ts == -1 && PyErr_Occurred()) || text(PyTuple_GET_ITEM(r, 0), &rv.rcpt, keep, 0) ||
            text(PyTuple_GET_ITEM(r, 1), &rv.via, keep, 0) ||
            text(PyTuple_GET_ITEM(r, 2), &rv.status, keep, 0) ||
            text(PyTuple_GET_ITEM(r, 3), &rv.orig, keep, 0) || tk_view_add_rcpt(&v, rv) < 0)
            goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(raw); i++) {
        PyObject *b = PyList_GET_ITEM(raw, i);
        if (!PyBytes_Check(b)) {
            PyErr_SetString(PyExc_TypeError, "raw lines are bytes");
            goto fail;
        }
        if (tk_view_add_raw(&v, (Span){PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b)}) < 0)
            goto fail;
    }
    if ((m = tk_msg_new(h, hn, qid, qn, t, v.service)) == NULL || tk_pack(m, &v) < 0)
        goto fail;
    m->sent_from = (unsigned char)sent_from;
    tk_view_free(&v);
    Py_DECREF(keep);
    return m;
fail:
    tk_msg_free(m);
    tk_view_free(&v);
    Py_DECREF(keep);
    return NULL;
}
