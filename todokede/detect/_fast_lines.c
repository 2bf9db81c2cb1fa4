/* The Postfix lines of a message (Queue.postfix and Queue.removed in queue.py): sliced
 * in place, their fields stored in the message's record. */
#include "_fast.h"

/* -- the Postfix lines (Queue.postfix in queue.py) -------------------------------------- */

/* is this transport (prog[8:], a sendmail mailer) one of the local ones? remembered per
 * word */
int
tk_local(Queue *q, const char *s, Py_ssize_t n)
{
    for (int i = 0; i < q->nwords; i++)
        if (q->words[i].n == n && memcmp(q->words[i].s, s, (size_t)n) == 0)
            return q->words[i].local;
    PyObject *word = PyUnicode_DecodeASCII(s, n, "replace");
    if (word == NULL)
        return -1;
    int local = PySet_Contains(q->local, word);
    Py_DECREF(word);
    if (local >= 0 && q->nwords < NWORDS && n < (Py_ssize_t)sizeof(q->words[0].s)) {
        Word *w = &q->words[q->nwords++];
        memcpy(w->s, s, (size_t)n);
        w->n = n;
        w->local = local;
    }
    return local;
}

/* the record for a key, made (and put in the table) when there is none */
static Msg *
q_get(Queue *q, Msg *m, const char *host, Py_ssize_t hn, const char *qid, Py_ssize_t qn,
      long long ts, Span service)
{
    if (m != NULL)
        return m;
    if ((m = tk_msg_new(host, hn, qid, qn, ts, service)) == NULL)
        return NULL;
    if (tk_insert(q, m) < 0) {
        tk_msg_free(m);
        return NULL;
    }
    return m;
}

static int
q_to(Queue *q, Msg *m, long long ts, const char *host, Py_ssize_t hn, const char *prog,
     Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
     const char *line, Py_ssize_t ln)
{
    Py_ssize_t end = tk_find(rest, rn, 4, LIT(">"));
    if (end < 0 || rn < 4 || rest[3] != '<')
        return 0;
    Py_ssize_t pos = end + 3, oa = 0, on = 0;
    if (tk_starts(rest, rn, pos, LIT("orig_to=<"))) {
        Py_ssize_t oend = tk_find(rest, rn, pos + 9, LIT(">"));
        tk_slice(rn, pos + 9, oend, &oa, &on);
        pos = oend + 3;
    }
    Py_ssize_t st = tk_find(rest, rn, pos, LIT(" status="));
    if (st < 0)
        return 0;
    Py_ssize_t st_end = tk_find(rest, rn, st + 8, LIT(" ")), sa, sn;
    tk_slice(rn, st + 8, st_end > 0 ? st_end : rn, &sa, &sn);
    const char *tr = prog + (pn < 8 ? pn : 8);
    Py_ssize_t tn = pn < 8 ? 0 : pn - 8;
    int local = tk_local(q, tr, tn);
    if (local < 0)
        return -1;
    RcptV r;
    PyObject *keep[5] = {NULL, NULL, NULL, NULL, NULL};
    int result = -1;
    r.ts = ts;
    if (tk_ascii(rest + sa, sn, &r.status, &keep[0]) < 0 ||
        tk_utf8(rest + 4, end - 4, &r.rcpt, &keep[1]) < 0 ||
        tk_utf8(rest + oa, on, &r.orig, &keep[2]) < 0)
        goto done;
    if (local || tk_starts(rest, rn, pos, LIT("relay=local")))
        r.via = (Span){"local", 5};
    else if (tk_ascii(tr, tn, &r.via, &keep[3]) < 0)
        goto done;
    Span service;
    if (m == NULL && tk_ascii(prog, pn, &service, &keep[4]) < 0)
        goto done;
    if ((m = q_get(q, m, host, hn, qid, qn, ts, service)) == NULL)
        goto done;
    View v;
    if (tk_view(m, &v) < 0)
        goto done;
    if (tk_view_put_rcpt(&v, r) == 0 &&
        (v.nraw > 0 || tk_view_add_raw(&v, (Span){line, ln}) == 0) && tk_pack(m, &v) == 0)
        result = 1;
    tk_view_free(&v);
done:
    for (int k = 0; k < 5; k++)
        Py_XDECREF(keep[k]);
    return result;
}

static int
q_from(Queue *q, Msg *m, long long ts, const char *host, Py_ssize_t hn, const char *prog,
       Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn)
{
    Py_ssize_t end = tk_find(rest, rn, 5, LIT(">, size="));
    if (end < 0 || rn < 6 || rest[5] != '<')
        return 0;
    Py_ssize_t comma = tk_find(rest, rn, end + 8, LIT(",")), za, zn;
    tk_slice(rn, end + 8, comma > 0 ? comma : rn, &za, &zn);
    if (zn == 0 || zn > SIZE_DIGITS)
        return 0;
    long long size = 0;
    for (Py_ssize_t i = 0; i < zn; i++) {
        char c = rest[za + i];
        if (c < '0' || c > '9')
            return 0;
        if (zn <= 18)
            size = size * 10 + (c - '0');
    }
    Py_ssize_t sa, sn;
    tk_slice(rn, 6, end, &sa, &sn);
    PyObject *keep[2] = {NULL, NULL};
    int result = -1;
    Span sender, service;
    if (tk_utf8(rest + sa, sn, &sender, &keep[0]) < 0 ||
        (m == NULL && tk_ascii(prog, pn, &service, &keep[1]) < 0))
        goto done;
    /* qmgr logs from= again at each retry of a deferred message: same message */
    if ((m = q_get(q, m, host, hn, qid, qn, ts, service)) == NULL)
        goto done;
    View v;
    if (tk_view(m, &v) < 0)
        goto done;
    v.sender = sender;
    v.size = zn <= 18 ? size : 0;
    v.bigsize = zn <= 18 ? (Span){"", 0} : (Span){rest + za, zn};
    if (tk_pack(m, &v) == 0)
        result = 1;
    tk_view_free(&v);
done:
    Py_XDECREF(keep[0]);
    Py_XDECREF(keep[1]);
    return result;
}

static int
q_client(Queue *q, Msg **slot, long long ts, const char *host, Py_ssize_t hn, const char *prog,
         Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
         const char *line, Py_ssize_t ln)
{
    Py_ssize_t bracket = tk_find(rest, rn, 7, LIT("["));
    if (bracket < 0)
        return 0;
    Py_ssize_t close = tk_find(rest, rn, bracket, LIT("]"));
    if (close < 0)
        return 0;
    Msg *m = slot ? *slot : NULL;
    PyObject *keep[3] = {NULL, NULL, NULL};
    int result = -1;
    View v;
    Span name, addr, service;
    if (tk_utf8(rest + 7, bracket - 7, &name, &keep[0]) < 0 ||
        tk_ascii(rest + bracket + 1, close - bracket - 1, &addr, &keep[1]) < 0 ||
        tk_ascii(prog, pn, &service, &keep[2]) < 0)
        goto done;
    if (m != NULL && m->started) {
        /* the queue id was reused: a new message, in the old one's place */
        if (tk_retire(q->done, m) < 0)
            goto done;
        /* done() may have run Python code: look the slot up again */
        uint64_t hash = tk_hash(host, hn, qid, qn);
        slot = tk_lookup(q, host, hn, qid, qn, hash);
        m = slot ? *slot : NULL;
        if (m != NULL) {
            Msg *fresh = tk_msg_new(host, hn, qid, qn, ts, (Span){"", 0});
            if (fresh == NULL)
                goto done;
            fresh->seq = m->seq;
            tk_msg_free(m);
            *slot = m = fresh;
        }
    }
    if ((m = q_get(q, m, host, hn, qid, qn, ts, (Span){"", 0})) == NULL)
        goto done;
    if (tk_view(m, &v) < 0)
        goto done;
    v.host = name;
    v.addr = addr;
    v.service = service;
    if (ts < m->ts)
        m->ts = ts;
    v.nraw = 0;
    if (tk_view_add_raw(&v, (Span){line, ln}) == 0 && tk_pack(m, &v) == 0)
        result = 1;
    tk_view_free(&v);
done:
    for (int k = 0; k < 3; k++)
        Py_XDECREF(keep[k]);
    return result;
}

/* 1: taken, 0: not understood here, -1: error (line: the whole line, for raw) */
int
tk_postfix(Queue *q, long long ts, const char *host, Py_ssize_t hn, const char *prog,
           Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
           const char *line, Py_ssize_t ln)
{
    Msg **slot = tk_lookup(q, host, hn, qid, qn, tk_hash(host, hn, qid, qn));
    Msg *m = slot ? *slot : NULL;
    if (rn >= 3 && memcmp(rest, "to=", 3) == 0)
        return q_to(q, m, ts, host, hn, prog, pn, qid, qn, rest, rn, line, ln);
    if (rn >= 3 && memcmp(rest, "fro", 3) == 0)
        return q_from(q, m, ts, host, hn, prog, pn, qid, qn, rest, rn);
    if (!tk_starts(rest, rn, 0, LIT("client=")))
        return 0;
    return q_client(q, slot, ts, host, hn, prog, pn, qid, qn, rest, rn, line, ln);
}

/* Queue.removed: a started message is complete */
int
tk_removed(Queue *q, const char *host, Py_ssize_t hn, const char *qid, Py_ssize_t qn)
{
    Msg **slot = tk_lookup(q, host, hn, qid, qn, tk_hash(host, hn, qid, qn));
    if (slot == NULL || !(*slot)->started)
        return 0;
    Msg *m = *slot;
    tk_unlink(q, slot);
    int r = tk_retire(q->done, m);
    tk_msg_free(m);
    return r;
}

