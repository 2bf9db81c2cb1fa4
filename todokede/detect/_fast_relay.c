/* MailAgg.add's relay step in C: mail from an outside client that went out again through a
 * non-local transport, kept per client in a mailagg.Relay (its sets and dicts, as the
 * Python fold leaves them). */
#include "_fast.h"

static PyObject *
get(PyObject *o, PyObject *name)
{
    return PyObject_GetAttr(o, name);
}

/* relay.senders: a sample that does not depend on the order of reading, the first names */
static int
add_sender(PyObject *relay, PyObject *sender)
{
    PyObject *senders = get(relay, tk_s_senders);
    if (senders == NULL)
        return -1;
    int r = PySet_Contains(senders, sender);
    if (r == 0 && (r = PySet_Add(senders, sender)) == 0 && PySet_GET_SIZE(senders) > 10) {
        PyObject *it = PyObject_GetIter(senders), *x, *best = NULL;
        while (it != NULL && (x = PyIter_Next(it)) != NULL) {
            int gt = best == NULL ? 1 : PyObject_RichCompareBool(x, best, Py_GT);
            if (gt < 0) {
                Py_DECREF(x);
                break;
            }
            if (gt)
                Py_XSETREF(best, x);
            else
                Py_DECREF(x);
        }
        Py_XDECREF(it);
        r = PyErr_Occurred() || best == NULL ? -1 : PySet_Discard(senders, best);
        Py_XDECREF(best);
        r = r < 0 ? -1 : 0;
    }
    Py_DECREF(senders);
    return r < 0 ? -1 : 0;
}

static int
add_to_set(PyObject *relay, PyObject *name, PyObject *value)
{
    PyObject *set = get(relay, name);
    int r = set ? PySet_Add(set, value) : -1;
    Py_XDECREF(set);
    return r;
}

/* relay.by_sender[sender domain]: [messages, first, last, up to 4 raw lines] */
static int
add_by_sender(PyObject *relay, const View *v, long long ts, long long last)
{
    PyObject *sdom = tk_lower(tk_after_at(v->sender)), *table = get(relay, tk_s_by_sender);
    PyObject *entry = NULL, *raw = NULL;
    int r = -1;
    if (sdom == NULL || table == NULL)
        goto done;
    entry = PyDict_GetItemWithError(table, sdom);
    if (entry == NULL) {
        if (PyErr_Occurred() || (raw = tk_raw(v)) == NULL)
            goto done;
        if (PyList_GET_SIZE(raw) > 4 && PyList_SetSlice(raw, 4, PyList_GET_SIZE(raw), NULL) < 0)
            goto done;
        PyObject *made = Py_BuildValue("[iLLO]", 1, ts, last, raw);
        r = made ? PyDict_SetItem(table, sdom, made) : -1;
        Py_XDECREF(made);
        goto done;
    }
    if (!PyList_Check(entry) || PyList_GET_SIZE(entry) != 4 ||
        !PyList_Check(PyList_GET_ITEM(entry, 3))) {
        PyErr_SetString(PyExc_TypeError, "by_sender entries are [n, first, last, raw]");
        goto done;
    }
    long long n = PyLong_AsLongLong(PyList_GET_ITEM(entry, 0));
    long long first = PyLong_AsLongLong(PyList_GET_ITEM(entry, 1));
    long long end = PyLong_AsLongLong(PyList_GET_ITEM(entry, 2));
    if (PyErr_Occurred())
        goto done;
    PyObject *nn = PyLong_FromLongLong(n + 1);
    PyObject *nf = nn ? PyLong_FromLongLong(first < ts ? first : ts) : NULL;
    PyObject *nl = nf ? PyLong_FromLongLong(end > last ? end : last) : NULL;
    if (nl == NULL) {
        Py_XDECREF(nn);
        Py_XDECREF(nf);
        goto done;
    }
    PyList_SetItem(entry, 0, nn);
    PyList_SetItem(entry, 1, nf);
    PyList_SetItem(entry, 2, nl);
    PyObject *have = PyList_GET_ITEM(entry, 3);
    r = 0;
    for (Py_ssize_t i = 0; r == 0 && i < v->nraw && PyList_GET_SIZE(have) < 4; i++) {
        PyObject *b = PyBytes_FromStringAndSize(v->raw[i].s, v->raw[i].n);
        r = b ? PyList_Append(have, b) : -1;
        Py_XDECREF(b);
    }
done:
    Py_XDECREF(sdom);
    Py_XDECREF(table);
    Py_XDECREF(raw);
    return r;
}

/* mail from an outside client that went out again through a non-local transport */
int
tk_add_relay(Fold *f, const View *v, long long ts, PyObject *service, PyObject *host,
          PyObject *addr)
{
    char isremote[64], *remote = v->nrcpt <= 64 ? isremote : PyMem_Malloc((size_t)v->nrcpt);
    if (remote == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int r = -1, any = 0, o;
    long long last = 0;
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        remote[i] = 0;
        if (tk_eq(v->rcpts[i].via, LIT("local")))
            continue;
        if ((o = tk_own(f, v->rcpts[i].rcpt)) < 0)
            goto done;
        if (!o) {
            remote[i] = 1;
            last = any ? (v->rcpts[i].ts > last ? v->rcpts[i].ts : last) : v->rcpts[i].ts;
            any = 1;
        }
    }
    if (!any || !tk_has_at(v->sender) || (o = tk_own(f, v->sender)) != 0) {
        r = any && tk_has_at(v->sender) && o < 0 ? -1 : 0;
        goto done;
    }
    PyObject *src = v->addr.n > 0 ? addr : host;
    PyObject *relay = PyDict_GetItemWithError(f->relays, src), *sender = NULL, *table = NULL;
    if (relay != NULL)
        Py_INCREF(relay);
    else if (PyErr_Occurred() ||
             (relay = PyObject_CallOneArg(f->relay_type, service)) == NULL ||
             PyDict_SetItem(f->relays, src, relay) < 0)
        goto relay_done;
    if ((v->host.n > 0 && add_to_set(relay, tk_s_names, host) < 0) ||
        (v->addr.n > 0 && add_to_set(relay, tk_s_addrs, addr) < 0) ||
        (sender = tk_str(v->sender)) == NULL || add_sender(relay, sender) < 0 ||
        add_by_sender(relay, v, ts, last) < 0 || (table = get(relay, tk_s_by_status)) == NULL)
        goto relay_done;
    int compact = Py_IS_TYPE(table, &tk_TallyType);
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        if (!remote[i])
            continue;
        if (compact) {
            if (tk_tally_add(table, tk_after_at(v->rcpts[i].rcpt), v->rcpts[i].status) < 0)
                goto relay_done;
            continue;
        }
        PyObject *dom = tk_lower(tk_after_at(v->rcpts[i].rcpt));
        PyObject *st = dom ? tk_status_str(f, v->rcpts[i].status) : NULL;
        PyObject *key = st ? PyTuple_Pack(2, dom, st) : NULL;
        Py_XDECREF(dom);
        Py_XDECREF(st);
        if (key == NULL)
            goto relay_done;
        PyObject *n = PyDict_GetItemWithError(table, key), *n1 = NULL;
        if (n != NULL || !PyErr_Occurred()) {
            PyObject *one = PyLong_FromLong(1);
            n1 = one && n ? PyNumber_Add(n, one) : Py_XNewRef(one);
            Py_XDECREF(one);
        }
        int rc = n1 ? PyDict_SetItem(table, key, n1) : -1;
        Py_XDECREF(n1);
        Py_DECREF(key);
        if (rc < 0)
            goto relay_done;
    }
    r = 0;
relay_done:
    Py_XDECREF(relay);
    Py_XDECREF(sender);
    Py_XDECREF(table);
done:
    if (remote != isremote)
        PyMem_Free(remote);
    return r;
}

