/* sendmail 8.x's from= and to= lines (mail.parse_sendmail, then State._mail): sliced in
 * place into the queue's records, with the choices the regexes of mail.py make. A line
 * whose reading would need the regexes to look further (a second "mailer=", a field
 * that is not where they first look), or that is not plain ASCII, goes to the general
 * path, which reads it as before. */
#include "_fast.h"

#define SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r')) /* \s of a bytes regex */

static int
alnum(const char *s, Py_ssize_t n) /* bytes.isalnum */
{
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

static int
blank(const char *s, Py_ssize_t n) /* not bytes.strip() */
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!SPACE(s[i]))
            return 0;
    return 1;
}

/* mail._strip: strip(), then the <> around an address */
static Span
strip(const char *s, Py_ssize_t n)
{
    while (n > 0 && SPACE(s[0]))
        s++, n--;
    while (n > 0 && SPACE(s[n - 1]))
        n--;
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
        s++, n -= 2;
    return (Span){s, n};
}

/* _SM_RELAY: "[user@]host [addr]", the host without its trailing dots */
static void
relay(const char *t, Py_ssize_t n, Span *host, Span *addr)
{
    Py_ssize_t i = 0, j = 0;
    while (j < n && t[j] != '@' && !SPACE(t[j]))
        j++;
    if (j < n && t[j] == '@')
        i = j + 1;
    Py_ssize_t k = i;
    while (k < n && !SPACE(t[k]) && t[k] != '[')
        k++;
    Py_ssize_t hn = k - i;
    while (hn > 0 && t[i + hn - 1] == '.')
        hn--;
    *host = (Span){t + i, hn};
    *addr = (Span){"", 0};
    while (k < n && SPACE(t[k]))
        k++;
    if (k < n && t[k] == '[') {
        const char *close = memchr(t + k + 1, ']', (size_t)(n - k - 1));
        if (close != NULL)
            *addr = (Span){t + k + 1, close - t - k - 1};
    }
}

static Msg **
find(Queue *q, const Frame *f, const char *qid, Py_ssize_t qn)
{
    uint64_t hash = tk_hash(f->host.s, f->host.n, qid, qn);
    return tk_lookup(q, f->host.s, f->host.n, qid, qn, hash);
}

/* the record of a key (slot: where find() saw it), taken out of the order to be put back
 * last, as State._mail's take and put do; a new one when there is none (new: the caller
 * knows the key is not in the queue) */
static Msg *
touch(Queue *q, Msg **slot, const Frame *f, const char *qid, Py_ssize_t qn, int new)
{
    if (slot != NULL) {
        (*slot)->seq = q->seq++;
        return *slot;
    }
    Msg *m = tk_msg_new(f->host.s, f->host.n, qid, qn, f->ts, f->prog);
    if (m != NULL && (new ? tk_insert(q, m) : tk_store(q, m)) < 0) {
        tk_msg_free(m);
        return NULL;
    }
    return m;
}

/* from=<sender>, size=N, ..., relay=host [addr] */
static int
sm_from(Queue *q, const Frame *f, const char *qid, Py_ssize_t qn, const char *rest,
        Py_ssize_t rn, const char *line, Py_ssize_t ln)
{
    Py_ssize_t at = 5, za = -1, zn = 0;
    while ((at = tk_find(rest, rn, at, LIT(", size="))) >= 0) { /* (.*?), size=(\d+) */
        za = at + 7;
        while (za + zn < rn && rest[za + zn] >= '0' && rest[za + zn] <= '9')
            zn++;
        if (zn > 0)
            break;
        at++;
    }
    if (at < 0 || zn > 18 || !tk_is_ascii(rest, rn))
        return 0;
    long long size = 0;
    for (Py_ssize_t i = 0; i < zn; i++)
        size = size * 10 + (rest[za + i] - '0');
    Span sender = strip(rest + 5, at - 5), host = {"", 0}, addr = {"", 0};
    Py_ssize_t r = tk_find(rest, rn, 0, LIT(", relay="));
    if (r >= 0)
        relay(rest + r + 8, rn - r - 8, &host, &addr);
    Msg **slot = find(q, f, qid, qn);
    int new = 1;
    if (slot != NULL && (*slot)->sent_from) {
        /* sendmail reuses queue ids: this is a new message */
        Msg *old = *slot;
        tk_unlink(q, slot);
        int done = tk_retire(q->done, old);
        tk_msg_free(old);
        if (done < 0)
            return -1;
        slot = NULL;
        new = 0; /* done() may have run Python code: store as a dict would */
    }
    Msg *m = touch(q, slot, f, qid, qn, new);
    if (m == NULL)
        return -1;
    View v;
    if (tk_view(m, &v) < 0)
        return -1;
    m->sent_from = 1;
    v.sender = sender;
    v.size = size;
    v.bigsize = (Span){"", 0};
    if (host.n > 0 || addr.n > 0) {
        v.host = host;
        v.addr = addr;
        v.service = f->prog;
    }
    int result =
        (v.nraw >= 2 || tk_view_add_raw(&v, (Span){line, ln}) == 0) && tk_pack(m, &v) == 0;
    tk_view_free(&v);
    return result ? 1 : -1;
}

/* _SM_TO: to=(.*?), (?:ctladdr|delay)=.*?mailer=([\w*]+)(?:, .*?)?, stat=(.*)$, as the
 * regex reads it when its first choices hold; -1 in *stat: they do not */
static Py_ssize_t
sm_to_fields(const char *rest, Py_ssize_t rn, Span *mailer, Py_ssize_t *stat)
{
    Py_ssize_t c = tk_find(rest, rn, 3, LIT(", ctladdr="));
    Py_ssize_t d = tk_find(rest, rn, 3, LIT(", delay="));
    Py_ssize_t e = c >= 0 && (d < 0 || c < d) ? c : d;
    *stat = -1;
    if (e < 0)
        return -1;
    Py_ssize_t mw = tk_find(rest, rn, e + (e == c ? 10 : 8), LIT("mailer="));
    if (mw < 0)
        return -1;
    Py_ssize_t w = mw + 7, we = w;
    while (we < rn && (rest[we] == '_' || rest[we] == '*' ||
                       (rest[we] >= '0' && rest[we] <= '9') ||
                       ((rest[we] | 0x20) >= 'a' && (rest[we] | 0x20) <= 'z')))
        we++;
    if (we == w)
        return -1;
    *mailer = (Span){rest + w, we - w};
    Py_ssize_t s = -1;
    if (tk_starts(rest, rn, we, LIT(", ")))
        s = tk_find(rest, rn, we + 2, LIT(", stat="));
    if (s < 0 && tk_starts(rest, rn, we, LIT(", stat=")))
        s = we;
    if (s >= 0)
        *stat = s + 7;
    return e;
}

static Span
sm_status(const char *s, Py_ssize_t n)
{
    if (tk_starts(s, n, 0, LIT("Sent")))
        return (Span){"sent", 4};
    if (tk_starts(s, n, 0, LIT("Deferred")) || tk_starts(s, n, 0, LIT("queued")))
        return (Span){"deferred", 8};
    return (Span){"bounced", 7};
}

/* to=<a>,<b>, delay=..., mailer=esmtp, relay=..., stat=Sent (...) */
static int
sm_to(Queue *q, const Frame *f, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
      const char *line, Py_ssize_t ln)
{
    Span mailer;
    Py_ssize_t stat, e = sm_to_fields(rest, rn, &mailer, &stat);
    if (stat < 0 || !tk_is_ascii(rest, e))
        return 0;
    int local = tk_local(q, mailer.s, mailer.n);
    if (local < 0)
        return -1;
    RcptV r = {.via = local ? (Span){"local", 5} : mailer,
               .status = sm_status(rest + stat, rn - stat),
               .orig = {"", 0},
               .ts = f->ts};
    Msg *m = touch(q, find(q, f, qid, qn), f, qid, qn, 1);
    if (m == NULL)
        return -1;
    View v;
    if (tk_view(m, &v) < 0)
        return -1;
    int ok = 1;
    for (Py_ssize_t a = 3; ok && a <= e;) { /* g1.split(b","), empty ones left out */
        const char *comma = memchr(rest + a, ',', (size_t)(e - a));
        Py_ssize_t b = comma ? comma - rest : e;
        r.rcpt = strip(rest + a, b - a);
        if (!blank(rest + a, b - a))
            ok = tk_view_put_rcpt(&v, r) == 0;
        a = b + 1;
    }
    ok = ok && (v.nraw >= 2 || tk_view_add_raw(&v, (Span){line, ln}) == 0) && tk_pack(m, &v) == 0;
    tk_view_free(&v);
    return ok ? 1 : -1;
}

int
tk_sendmail(Queue *q, const Frame *f, const char *line, Py_ssize_t ln)
{
    const char *msg = f->msg.s;
    Py_ssize_t mn = f->msg.n;
    if (memmem(msg, (size_t)mn, LIT("AUTH failure")) != NULL)
        return 0; /* a failed login, maybe (auth.sendmail, before any other reading) */
    if (tk_starts(msg, mn, 0, LIT("ruleset=")) ||
        tk_find(msg, mn < 20 ? mn : 20, 0, LIT(": ruleset=")) >= 0)
        return 0; /* a refused RCPT: kept with its evidence by Python */
    Py_ssize_t qe = tk_find(msg, mn, 0, LIT(": "));
    if (qe < 0 || !alnum(msg, qe))
        return 1; /* parse_sendmail: nothing */
    const char *rest = msg + qe + 2;
    Py_ssize_t rn = mn - qe - 2;
    if (tk_starts(rest, rn, 0, LIT("from=")))
        return sm_from(q, f, msg, qe, rest, rn, line, ln);
    if (tk_starts(rest, rn, 0, LIT("to=")))
        return sm_to(q, f, msg, qe, rest, rn, line, ln);
    /* "QID: NEWQID: return to sender", "DSN", "postmaster notify": a notice */
    Py_ssize_t ne = tk_find(rest, rn, 0, LIT(": "));
    return ne < 0 || !alnum(rest, ne);
}
