/* A queued message as one record: its key and fields packed into one buffer, unpacked
 * into a View to be read or changed (and packed again), made into Python objects only
 * when Python asks for the message (see _fast.h). */
#include "_fast.h"

/* -- packing ----------------------------------------------------------------------------
 * blob: host, queue id, then service, host, addr, sender (u32 length and bytes; sender
 * 0xffffffff for None), size (i64), the size's digits when too big (u32 + bytes), the
 * recipients (u32 count; each: rcpt, via, status, orig as u32 + bytes, then ts as i64),
 * the raw lines (u32 count; each u32 + bytes). Lengths are native-endian: a blob only
 * travels between processes of one machine (Queue.dump). */

#define NONE_LEN 0xffffffffu

static char *
put_span(char *p, Span s)
{
    uint32_t n = s.n < 0 ? NONE_LEN : (uint32_t)s.n;
    memcpy(p, &n, 4);
    p += 4;
    if (s.n > 0) {
        memcpy(p, s.s, (size_t)s.n);
        p += s.n;
    }
    return p;
}

static char *
put_i64(char *p, long long v)
{
    int64_t x = v;
    memcpy(p, &x, 8);
    return p + 8;
}

static Py_ssize_t
span_size(Span s)
{
    return 4 + (s.n > 0 ? s.n : 0);
}

/* an empty view; the inline buffers are left as they are (a view is made for each line
 * of a message: clearing them costs more than the rest) */
static void
view_init(View *v)
{
    v->service = v->host = v->addr = v->sender = v->bigsize = (Span){"", 0};
    v->size = 0;
    v->nrcpt = v->nraw = v->caprcpt = v->capraw = 0;
    v->rcpts = NULL;
    v->raw = NULL;
}

int
tk_pack(Msg *m, const View *v)
{
    Py_ssize_t keylen = m->hostlen + m->qidlen;
    Py_ssize_t n = keylen + span_size(v->service) + span_size(v->host) + span_size(v->addr) +
                   span_size(v->sender) + 8 + span_size(v->bigsize) + 4 + 4;
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        const RcptV *r = &v->rcpts[i];
        n += span_size(r->rcpt) + span_size(r->via) + span_size(r->status) +
             span_size(r->orig) + 8;
    }
    for (Py_ssize_t i = 0; i < v->nraw; i++)
        n += span_size(v->raw[i]);
    if (n > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a queued message too big to keep");
        return -1;
    }
    char *blob = PyMem_Malloc((size_t)n), *p = blob;
    if (blob == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(p, m->blob, (size_t)keylen);
    p += keylen;
    p = put_span(p, v->service);
    p = put_span(p, v->host);
    p = put_span(p, v->addr);
    p = put_span(p, v->sender);
    p = put_i64(p, v->size);
    p = put_span(p, v->bigsize);
    uint32_t c = (uint32_t)v->nrcpt;
    memcpy(p, &c, 4);
    p += 4;
    for (Py_ssize_t i = 0; i < v->nrcpt; i++) {
        const RcptV *r = &v->rcpts[i];
        p = put_span(p, r->rcpt);
        p = put_span(p, r->via);
        p = put_span(p, r->status);
        p = put_span(p, r->orig);
        p = put_i64(p, r->ts);
    }
    c = (uint32_t)v->nraw;
    memcpy(p, &c, 4);
    p += 4;
    for (Py_ssize_t i = 0; i < v->nraw; i++)
        p = put_span(p, v->raw[i]);
    PyMem_Free(m->blob);
    m->blob = blob;
    m->bloblen = n;
    m->has_sender = v->sender.n >= 0;
    m->has_client = v->host.n > 0 || v->addr.n > 0;
    m->started = m->has_sender || m->has_client;
    return 0;
}

Msg *
tk_msg_new(const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn, long long ts,
           Span service)
{
    Msg *m = PyMem_Calloc(1, sizeof(Msg));
    if (m == NULL)
        return (Msg *)PyErr_NoMemory();
    m->blob = PyMem_Malloc((size_t)(hn + qn + 1));
    if (m->blob == NULL) {
        PyMem_Free(m);
        return (Msg *)PyErr_NoMemory();
    }
    memcpy(m->blob, h, (size_t)hn);
    memcpy(m->blob + hn, qid, (size_t)qn);
    m->hostlen = hn;
    m->qidlen = qn;
    m->hash = tk_hash(h, hn, qid, qn);
    m->ts = ts;
    View v;
    view_init(&v);
    v.service = service;
    v.sender = (Span){"", -1};
    if (tk_pack(m, &v) < 0) {
        tk_msg_free(m);
        return NULL;
    }
    return m;
}

void
tk_msg_free(Msg *m)
{
    if (m == NULL)
        return;
    PyMem_Free(m->blob);
    PyMem_Free(m);
}

/* -- unpacking --------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} Cursor;

static int
get_span(Cursor *c, Span *s, int may_be_none)
{
    uint32_t n;
    if (c->end - c->p < 4)
        return -1;
    memcpy(&n, c->p, 4);
    c->p += 4;
    if (n == NONE_LEN && may_be_none) {
        *s = (Span){"", -1};
        return 0;
    }
    if ((size_t)(c->end - c->p) < n)
        return -1;
    *s = (Span){c->p, (Py_ssize_t)n};
    c->p += n;
    return 0;
}

static int
get_i64(Cursor *c, long long *v)
{
    int64_t x;
    if (c->end - c->p < 8)
        return -1;
    memcpy(&x, c->p, 8);
    c->p += 8;
    *v = x;
    return 0;
}

static int
get_count(Cursor *c, Py_ssize_t *n)
{
    uint32_t x;
    if (c->end - c->p < 4)
        return -1;
    memcpy(&x, c->p, 4);
    c->p += 4;
    *n = x;
    return 0;
}

int
tk_view_add_rcpt(View *v, RcptV r)
{
    if (v->rcpts == NULL) {
        v->rcpts = v->rbuf;
        v->caprcpt = VIEW_INLINE;
    }
    if (v->nrcpt == v->caprcpt) {
        Py_ssize_t cap = v->caprcpt * 2;
        RcptV *a = PyMem_Malloc((size_t)cap * sizeof(RcptV));
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(a, v->rcpts, (size_t)v->nrcpt * sizeof(RcptV));
        if (v->rcpts != v->rbuf)
            PyMem_Free(v->rcpts);
        v->rcpts = a;
        v->caprcpt = cap;
    }
    v->rcpts[v->nrcpt++] = r;
    return 0;
}

/* Msg.add_rcpt: a later attempt for a recipient (a deferred message retried) replaces the
 * earlier one */
int
tk_view_put_rcpt(View *v, RcptV r)
{
    for (Py_ssize_t i = v->nrcpt - 1; i >= 0; i--)
        if (v->rcpts[i].rcpt.n == r.rcpt.n &&
            memcmp(v->rcpts[i].rcpt.s, r.rcpt.s, (size_t)r.rcpt.n) == 0) {
            v->rcpts[i] = r;
            return 0;
        }
    return tk_view_add_rcpt(v, r);
}

int
tk_view_add_raw(View *v, Span raw)
{
    if (v->raw == NULL) {
        v->raw = v->wbuf;
        v->capraw = VIEW_INLINE;
    }
    if (v->nraw == v->capraw) {
        Py_ssize_t cap = v->capraw * 2;
        Span *a = PyMem_Malloc((size_t)cap * sizeof(Span));
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(a, v->raw, (size_t)v->nraw * sizeof(Span));
        if (v->raw != v->wbuf)
            PyMem_Free(v->raw);
        v->raw = a;
        v->capraw = cap;
    }
    v->raw[v->nraw++] = raw;
    return 0;
}

void
tk_view_free(View *v)
{
    if (v->rcpts != NULL && v->rcpts != v->rbuf)
        PyMem_Free(v->rcpts);
    if (v->raw != NULL && v->raw != v->wbuf)
        PyMem_Free(v->raw);
    v->rcpts = NULL;
    v->raw = NULL;
    v->nrcpt = v->nraw = 0;
}

int
tk_view(const Msg *m, View *v)
{
    view_init(v);
    Cursor c = {m->blob + m->hostlen + m->qidlen, m->blob + m->bloblen};
    Py_ssize_t nrcpt, nraw;
    if (get_span(&c, &v->service, 0) || get_span(&c, &v->host, 0) ||
        get_span(&c, &v->addr, 0) || get_span(&c, &v->sender, 1) || get_i64(&c, &v->size) ||
        get_span(&c, &v->bigsize, 0) || get_count(&c, &nrcpt))
        goto damaged;
    for (Py_ssize_t i = 0; i < nrcpt; i++) {
        RcptV r;
        if (get_span(&c, &r.rcpt, 0) || get_span(&c, &r.via, 0) || get_span(&c, &r.status, 0) ||
            get_span(&c, &r.orig, 0) || get_i64(&c, &r.ts))
            goto damaged;
        if (tk_view_add_rcpt(v, r) < 0)
            goto failed;
    }
    if (get_count(&c, &nraw))
        goto damaged;
    for (Py_ssize_t i = 0; i < nraw; i++) {
        Span s;
        if (get_span(&c, &s, 0))
            goto damaged;
        if (tk_view_add_raw(v, s) < 0)
            goto failed;
    }
    if (c.p != c.end)
        goto damaged;
    if (v->bigsize.n > 0) /* digits, an optional sign: what str(int) writes */
        for (Py_ssize_t i = 0; i < v->bigsize.n; i++) {
            char ch = v->bigsize.s[i];
            if (!((ch >= '0' && ch <= '9') || (i == 0 && ch == '-')))
                goto damaged;
        }
    return 0;
damaged:
    PyErr_SetString(PyExc_ValueError, "a queue dump with a damaged message");
failed:
    tk_view_free(v);
    return -1;
}

/* Msg.merge: the same message, continued in the next byte range */
int
tk_merge(Msg *m, const Msg *o)
{
    View v, w;
    if (tk_view(m, &v) < 0)
        return -1;
    if (tk_view(o, &w) < 0) {
        tk_view_free(&v);
        return -1;
    }
    int r = -1;
    if (o->ts < m->ts)
        m->ts = o->ts;
    if (w.service.n > 0 && tk_find(v.service.s, v.service.n, 0, LIT("smtpd")) < 0 &&
        tk_find(v.service.s, v.service.n, 0, LIT("sendmail")) < 0)
        v.service = w.service;
    if (v.host.n == 0)
        v.host = w.host;
    if (v.addr.n == 0)
        v.addr = w.addr;
    if (v.sender.n < 0) {
        v.sender = w.sender;
        v.size = w.size;
        v.bigsize = w.bigsize;
    }
    for (Py_ssize_t i = 0; i < w.nrcpt; i++) { /* add_rcpt: a later attempt replaces */
        Py_ssize_t j = v.nrcpt - 1;
        for (; j >= 0; j--)
            if (v.rcpts[j].rcpt.n == w.rcpts[i].rcpt.n &&
                memcmp(v.rcpts[j].rcpt.s, w.rcpts[i].rcpt.s, (size_t)w.rcpts[i].rcpt.n) == 0)
                break;
        if (j >= 0)
            v.rcpts[j] = w.rcpts[i];
        else if (tk_view_add_rcpt(&v, w.rcpts[i]) < 0)
            goto done;
    }
    /* self.raw.extend(other.raw[: 2 - len(self.raw)]), negative bounds and all */
    Py_ssize_t k = 2 - v.nraw, take = k >= 0 ? (k < w.nraw ? k : w.nraw)
                                              : (w.nraw + k > 0 ? w.nraw + k : 0);
    for (Py_ssize_t i = 0; i < take; i++)
        if (tk_view_add_raw(&v, w.raw[i]) < 0)
            goto done;
    r = tk_pack(m, &v);
done:
    tk_view_free(&v);
    tk_view_free(&w);
    return r;
}

