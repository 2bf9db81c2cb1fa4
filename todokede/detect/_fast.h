/* Shared by the C files of todokede.detect._fast (one extension, several sources):
 *   _fast.c        the module, granted connections and the block loop (State._loop)
 *   _fast_frame.c  a line's syslog framing (Framer.frame): BSD, RFC 3339, RFC 5424
 *   _fast_sendmail.c  sendmail's from= and to= lines into the queue (State._mail)
 *   _fast_imap.c   UW imapd/ipop3d and Dovecot lines (imap.parse, State._imap)
 *   _fast_tcpd.c   tcpd's refused connections (tcpd.parse, State.refused_connect)
 *   _fast_auth.c   which lines of sshd may be failed logins; the lists of login programs
 *   _fast_msg.c    a message record: its fields packed into one buffer, and to/from Python
 *   _fast_py.c     a record to and from Python objects (queue.Msg, the fields of a Done call)
 *   _fast_queue.c  the Queue type: the table of records, merge and fold
 *   _fast_dump.c   Queue.dump and Queue.load (to the parent process)
 *   _fast_lines.c  the Postfix lines that fill the queue (Queue.postfix, Queue.removed)
 *   _fast_fold.c   the Fold type: MailAgg.add in C, straight from a record (and Pair.add)
 *   _fast_relay.c  its relay step (MailAgg.add's last part)
 *   _fast_pairs.c  the Pairs type: MailAgg.pairs as one compact table
 *   _fast_tally.c  the Tally type: Relay.by_status as one compact table
 * Names shared between the files start with tk_ (the rest are static).
 */
#ifndef TODOKEDE_FAST_H
#define TODOKEDE_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LIT(s) s, (Py_ssize_t)(sizeof(s) - 1)

/* -- bytes.find and friends, with Python's meaning of the arguments (_fast.c) ---------- */

Py_ssize_t tk_find(const char *s, Py_ssize_t n, Py_ssize_t start, const char *sub,
                   Py_ssize_t m);
int tk_starts(const char *s, Py_ssize_t n, Py_ssize_t at, const char *prefix, Py_ssize_t m);
void tk_slice(Py_ssize_t n, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t *a, Py_ssize_t *len);
uint64_t tk_hash(const char *h, Py_ssize_t hn, const char *q, Py_ssize_t qn);

/* *acc += x, or -1 with OverflowError: counts and sizes that come back from a pickle or a
 * dump are any 64-bit values, and signed overflow is undefined in C */
static inline int
tk_add(long long *acc, long long x)
{
    long long sum; /* *acc unchanged on overflow (the builtin stores the wrapped sum) */
    if (__builtin_add_overflow(*acc, x, &sum)) {
        PyErr_SetString(PyExc_OverflowError, "a count too big to keep");
        return -1;
    }
    *acc = sum;
    return 0;
}

/* a size= of more digits is not read by the queue (queue.py's _SIZE_DIGITS): int() may
 * refuse it (sys.set_int_max_str_digits, 640 at least), parse_postfix reads it instead */
#define SIZE_DIGITS 640

/* -- message records (_fast_msg.c) ------------------------------------------------------
 *
 * A queued message is one small struct and one buffer (the "blob") holding its key and
 * every field as UTF-8 bytes: the text that queue.py's Msg holds as str, encoded (with
 * surrogatepass, so that any str comes back the same). Bytes decoded with "replace" by
 * the Python path are stored as the UTF-8 of what it decoded, so equal bytes here mean
 * equal str there, and byte order is code point order. A record costs a few hundred bytes
 * where Python objects cost about a kilobyte; Python objects are made only when a
 * message is handed to Python.
 */

typedef struct {
    const char *s;
    Py_ssize_t n; /* -1: None (the sender only) */
} Span;

/* -- framing (_fast_frame.c) ---------------------------------------------------------- */

#define NO_TIME INT64_MIN

typedef struct {
    long long ts;
    Span host, prog, msg; /* spans into the line */
} Frame;

/* a BSD stamp's time from the table of days (12 x 32, NO_TIME where there is no such
 * day); NO_TIME when it is not one in the usual spelling */
long long tk_stamp(const char *s, const int64_t *days);
/* 1: the line framed as Framer.frame frames it; 0: leave it to the framer in Python */
int tk_frame(const char *s, Py_ssize_t n, const int64_t *days, Frame *f);

typedef struct {
    Span rcpt, via, status, orig;
    long long ts;
} RcptV;

typedef struct {
    uint64_t hash;
    unsigned long long seq; /* order of first sight, as a dict keeps it */
    long long ts;
    char *blob; /* host, queue id, then the fields (see tk_pack) */
    Py_ssize_t bloblen, hostlen, qidlen;
    unsigned char sent_from;
    unsigned char started, has_sender, has_client; /* set by tk_pack */
} Msg;

/* the fields of a record, unpacked; spans point into the blob (or wherever an edit put
 * them) until the next tk_pack */
#define VIEW_INLINE 8
typedef struct {
    Span service, host, addr, sender;
    long long size;
    Span bigsize; /* n > 0: the size's decimal digits (too big for size) */
    Py_ssize_t nrcpt, nraw, caprcpt, capraw;
    RcptV *rcpts;
    Span *raw;
    RcptV rbuf[VIEW_INLINE];
    Span wbuf[VIEW_INLINE];
} View;

Msg *tk_msg_new(const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn, long long ts,
                Span service);
void tk_msg_free(Msg *m);
int tk_view(const Msg *m, View *v); /* -1 with ValueError: a damaged record */
void tk_view_free(View *v);
int tk_pack(Msg *m, const View *v); /* a new blob from the view (the old one freed) */
int tk_view_add_rcpt(View *v, RcptV r);
int tk_view_put_rcpt(View *v, RcptV r); /* Msg.add_rcpt */
int tk_view_add_raw(View *v, Span raw);
int tk_merge(Msg *m, const Msg *o);

/* text as stored: UTF-8 of bytes decoded with "replace" / of ASCII with "replace"; *keep
 * holds a Python object backing the span, when one was needed (the caller drops it) */
int tk_is_ascii(const char *s, Py_ssize_t n);
int tk_utf8(const char *s, Py_ssize_t n, Span *out, PyObject **keep);
int tk_ascii(const char *s, Py_ssize_t n, Span *out, PyObject **keep);

PyObject *tk_str(Span s); /* str of stored text; None for n < 0 */
PyObject *tk_size(const View *v);
PyObject *tk_key(const Msg *m);
PyObject *tk_rcpts(const View *v);
PyObject *tk_raw(const View *v);
int tk_split_key(PyObject *key, const char **h, Py_ssize_t *hn, const char **qid,
                 Py_ssize_t *qn);
Msg *tk_msg_from_python(PyObject *o);
PyObject *tk_msg_to_python(PyObject *make, const Msg *m);
int tk_call_done(PyObject *done, const Msg *m);

/* -- the queue (_fast_queue.c) ---------------------------------------------------------- */

#define NWORDS 64

typedef struct {
    char s[40];
    Py_ssize_t n;
    int local;
} Word;

typedef struct {
    PyObject_HEAD PyObject *done, *make, *local;
    Msg **slots;
    size_t cap, used, live;
    unsigned long long seq;
    Word words[NWORDS]; /* transports seen, and whether each is a local one */
    int nwords;
} Queue;

extern PyTypeObject tk_QueueType;

/* the table (_fast_queue.c) */
Msg **tk_lookup(Queue *q, const char *h, Py_ssize_t hn, const char *qid, Py_ssize_t qn,
                uint64_t hash);
int tk_insert(Queue *q, Msg *m); /* a message that is not in the table */
int tk_store(Queue *q, Msg *m);  /* as dict assignment: in the old one's place, if any */
void tk_unlink(Queue *q, Msg **slot);
int tk_by_seq(const void *a, const void *b);
/* every live message, in the given order: ALL_BORROW (no Python code may run while they
 * are used), ALL_TAKE (the table lets go of them) or ALL_COPY (copies, the caller's: Python
 * code that runs meanwhile may change the queue, as it may a dict under a list of values) */
enum { ALL_BORROW, ALL_TAKE, ALL_COPY };
Msg **tk_all(Queue *q, int (*order)(const void *, const void *), size_t *count, int mode);

/* dump and load (_fast_dump.c) */
PyObject *tk_queue_dump(Queue *q, PyObject *ignored);
PyObject *tk_queue_load(Queue *q, PyObject *arg);

/* the Postfix lines (_fast_lines.c) */

int tk_local(Queue *q, const char *s, Py_ssize_t n); /* a local transport? -1: error */

int tk_postfix(Queue *q, long long ts, const char *host, Py_ssize_t hn, const char *prog,
               Py_ssize_t pn, const char *qid, Py_ssize_t qn, const char *rest, Py_ssize_t rn,
               const char *line, Py_ssize_t ln);
int tk_removed(Queue *q, const char *host, Py_ssize_t hn, const char *qid, Py_ssize_t qn);

/* sendmail's from= and to= lines (_fast_sendmail.c): 1 taken, 0 general path, -1 error */
int tk_sendmail(Queue *q, const Frame *f, const char *line, Py_ssize_t ln);

/* -- IMAP and POP servers (_fast_imap.c) ------------------------------------------------ */

/* 1: taken (a login added to logins, or nothing to note), 0: general path, -1: error */
int tk_imap(PyObject *logins, const Frame *f);

/* -- refused connections (_fast_tcpd.c) ------------------------------------------------ */

/* 1: handed to refused(service, ts, host, addr, user, raw, target), 0: general path,
 * -1: error */
int tk_refused(PyObject *refused, const Frame *f, const char *line, Py_ssize_t len);

/* -- failed logins (_fast_auth.c) ------------------------------------------------------ */

int tk_sshd_program(Span prog); /* one of auth.SSHD */
int tk_imap_program(Span prog); /* one of imap.PROGRAMS */
/* an sshd line: 1 skipped (not a failure to auth.sshd), 0 general path */
int tk_sshd(const Frame *f);
int tk_auth_names(PyObject *module); /* the lists above, as tuples of bytes */

/* -- the pairs table (_fast_pairs.c) ---------------------------------------------------- */

extern PyTypeObject tk_PairsType;

/* a message of a (service, sender, recipient) pair, keyed by their UTF-8 joined by NULs;
 * raw(arg) makes its first raw line, asked for only when the pair has had a message */
int tk_pairs_add(PyObject *pairs, const char *key, Py_ssize_t n, long long ts, PyObject *service,
                 PyObject *(*raw)(void *), void *arg);

/* Pair.add (_fast_fold.c): pair a Pair (of pair_type) or anything with an add method */
int tk_pair_add(PyObject *pair_type, PyObject *pair, PyObject *t, PyObject *line);

/* -- the relay tally (_fast_tally.c) ---------------------------------------------------- */

extern PyTypeObject tk_TallyType;

/* by_status[(domain.lower(), status)] += 1 (domain and status as stored text) */
int tk_tally_add(PyObject *tally, Span domain, Span status);

/* -- the fold (_fast_fold.c) ------------------------------------------------------------ */

extern PyTypeObject tk_FoldType;

typedef struct {
    PyObject_HEAD PyObject *agg, *pairs, *relays, *local_domains, *notices, *nets, *memo,
        *admins, *pair_type, *relay_type;
    int own; /* the user named the site's domains: MailAgg._own decides */
    char lastdom[64]; /* the last local domain added (a log repeats it); -1: none yet */
    Py_ssize_t lastdomn;
    Span words[8]; /* statuses and services seen, and their str */
    PyObject *wordobj[8];
    int nwords;
    struct Client *clients;  /* clients seen: their name and address as str (see client) */
    uint64_t *notice_hashes; /* the notices' keys' hashes, sorted (see is_notice) */
    Py_ssize_t nnotices, nhashes; /* the set's size when they were taken (-1: not yet),
                                     and how many hashes */
} Fold;

/* attribute names of mailagg.Relay */
extern PyObject *tk_s_names, *tk_s_addrs, *tk_s_senders, *tk_s_by_sender, *tk_s_by_status;

PyObject *tk_lower(Span s); /* str.lower() of stored text */
Span tk_after_at(Span s);   /* address.rpartition("@")[2] */
int tk_has_at(Span s);
int tk_eq(Span a, const char *lit, Py_ssize_t n);
int tk_own(Fold *f, Span address); /* MailAgg._own */
PyObject *tk_status_str(Fold *f, Span s);
int tk_add_relay(Fold *f, const View *v, long long ts, PyObject *service, PyObject *host,
                 PyObject *addr);

/* hand a complete message on: to the C fold when done is a Fold, else to done(...) */
int tk_retire(PyObject *done, const Msg *m);
int tk_fold_init(void);

#endif
