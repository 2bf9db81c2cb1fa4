/* The journal's export stream turned into syslog lines in one pass (todokede/logs/export.py:
 * ExportParser._text_lines). It does what ExportParser._text_entries and Texts.convert do
 * together for the common entry, without making a dict per entry: an entry whose line it
 * cannot make exactly as Texts.convert would (a field missing, a host or program the framer
 * would not read back, a PID that is not a number, a quarter hour in which the zone's
 * offset changes...) is handed back as the dict of its fields, for Texts.convert to decide. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define ZONE_SPAN 900 /* journal.ZONE_SPAN */
#define YEAR_MIN (-62135596800LL) /* journal._YEAR_MIN, 0001-01-01 */
#define YEAR_MAX 253402300800LL   /* journal._YEAR_MAX, 10000-01-01 */

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

typedef struct {
    const char *s;
    Py_ssize_t n; /* -1: the entry has no such field */
} Span;

enum { USEC, HOST, PROG, MSG, PID, SYSLOG_PID, CURSOR, PICKED };

/* the fields a line is made of; the last of a name wins, as in a dict */
static int
pick(const char *name, Py_ssize_t n)
{
#define IS(lit) (n == (Py_ssize_t)sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)
    if (IS("__REALTIME_TIMESTAMP"))
        return USEC;
    if (IS("_HOSTNAME"))
        return HOST;
    if (IS("SYSLOG_IDENTIFIER"))
        return PROG;
    if (IS("MESSAGE"))
        return MSG;
    if (IS("_PID"))
        return PID;
    if (IS("SYSLOG_PID"))
        return SYSLOG_PID;
    if (IS("__CURSOR"))
        return CURSOR;
#undef IS
    return -1;
}

/* journal._FIELD_NAME: [A-Z0-9_]+ */
static int
field_name(const char *s, Py_ssize_t n)
{
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* journal._HOST, and no ':' at the end: what the framer reads back as the host */
static int
host_ok(Span h)
{
    if (h.n <= 0 || (unsigned char)h.s[0] == '[' || h.s[h.n - 1] == ':')
        return 0;
    for (Py_ssize_t i = 0; i < h.n; i++) {
        unsigned char c = (unsigned char)h.s[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* journal._PROG: what the framer reads back as the program */
static int
prog_ok(Span p)
{
    if (p.n <= 0)
        return 0;
    for (Py_ssize_t i = 0; i < p.n; i++) {
        unsigned char c = (unsigned char)p.s[i];
        if (c <= 0x20 || c == 0x7f || c == ':' || c == '[' || c == ']')
            return 0;
    }
    return 1;
}

static int
digits(Span s, Py_ssize_t most)
{
    if (s.n <= 0 || s.n > most)
        return 0;
    for (Py_ssize_t i = 0; i < s.n; i++)
        if (s.s[i] < '0' || s.s[i] > '9')
            return 0;
    return 1;
}

static long long
floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* the proleptic Gregorian date of a day counted from 1970-01-01 (time.gmtime's) */
static void
civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = floor_div(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    long long year;
    Py_ssize_t count;
} Block;

static int
grow(Block *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more)
        cap *= 2;
    char *buf = PyMem_Realloc(b->buf, (size_t)cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->buf = buf;
    b->cap = cap;
    return 0;
}

/* the block so far as (year, lines, count), appended to out */
static int
flush(Block *b, PyObject *out)
{
    if (b->count == 0)
        return 0;
    PyObject *item = Py_BuildValue("(Ly#n)", b->year, b->buf, b->len, b->count);
    if (item == NULL)
        return -1;
    int rc = PyList_Append(out, item);
    Py_DECREF(item);
    b->len = 0;
    b->count = 0;
    return rc;
}

/* Texts.convert's line of an entry: 1 made, 0 not the common entry, -1 error */
static int
line(Block *b, PyObject *out, const Span *f, PyObject *zones, PyObject *zone)
{
    if (f[USEC].n < 0 || f[HOST].n < 0 || f[PROG].n < 0 || f[MSG].n < 0)
        return 0;
    if (!host_ok(f[HOST]) || !prog_ok(f[PROG]))
        return 0;
    if (f[PID].n < 0 ? f[SYSLOG_PID].n >= 0 : !digits(f[PID], PY_SSIZE_T_MAX))
        return 0;
    if (!digits(f[USEC], 18) || memchr(f[MSG].s, '\r', (size_t)f[MSG].n) != NULL)
        return 0;
    long long usec = 0;
    for (Py_ssize_t i = 0; i < f[USEC].n; i++)
        usec = usec * 10 + (f[USEC].s[i] - '0');
    long long sec = usec / 1000000;
    PyObject *key = PyLong_FromLongLong(floor_div(sec, ZONE_SPAN));
    if (key == NULL)
        return -1;
    PyObject *off = PyDict_GetItemWithError(zones, key); /* borrowed */
    if (off != NULL)
        Py_INCREF(off);
    else if (!PyErr_Occurred())
        off = PyObject_CallOneArg(zone, key); /* Texts.zone: looks it up, keeps it */
    Py_DECREF(key);
    if (off == NULL)
        return -1;
    long long o = off == Py_None ? 0 : PyLong_AsLongLong(off);
    int none = off == Py_None;
    Py_DECREF(off);
    if (o == -1 && PyErr_Occurred())
        return -1;
    if (none)
        return 0;
    long long t = sec + o;
    if (t < YEAR_MIN || t >= YEAR_MAX)
        return 0;
    long long days = floor_div(t, 86400), rest = t - days * 86400, year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    if (b->count && year != b->year && flush(b, out) < 0)
        return -1;
    b->year = year;
    /* "Sep  1 10:00:00 host prog[pid]: msg\n" */
    Py_ssize_t need = 16 + 1 + f[HOST].n + 1 + f[PROG].n + (f[PID].n > 0 ? f[PID].n + 2 : 0) +
                      2 + f[MSG].n + 1;
    if (grow(b, need) < 0)
        return -1;
    char *p = b->buf + b->len;
    p += sprintf(p, "%.3s %2d %02d:%02d:%02d ", MONTHS + 3 * (month - 1), day,
                 (int)(rest / 3600), (int)(rest / 60 % 60), (int)(rest % 60));
    memcpy(p, f[HOST].s, (size_t)f[HOST].n);
    p += f[HOST].n;
    *p++ = ' ';
    memcpy(p, f[PROG].s, (size_t)f[PROG].n);
    p += f[PROG].n;
    if (f[PID].n > 0) {
        *p++ = '[';
        memcpy(p, f[PID].s, (size_t)f[PID].n);
        p += f[PID].n;
        *p++ = ']';
    }
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, f[MSG].s, (size_t)f[MSG].n);
    p += f[MSG].n;
    *p++ = '\n';
    b->len = p - b->buf;
    b->count++;
    return 1;
}

/* the dict of an entry's fields (the last of a name wins), for Texts.convert */
static PyObject *
fields(const char *s, const char *end)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        PyObject *k = PyBytes_FromStringAndSize(s, eq - s);
        PyObject *v = k ? PyBytes_FromStringAndSize(eq + 1, e - eq - 1) : NULL;
        if (v == NULL || PyDict_SetItem(d, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
        s = e + 1;
    }
    return d;
}

PyDoc_STRVAR(text_lines_doc,
             "text_lines(buf, pos, stop, zones, zone) -> (items, end, entries, cursor)\n\n"
             "The entries of text fields in buf[pos:stop] (each ended by a blank line but the\n"
             "last, which stop ends) as items: (year, lines, count) for a run of syslog lines\n"
             "of one year, or the dict of an entry's fields where Texts.convert must decide.\n"
             "zones maps a quarter hour (seconds // 900) to the zone's offset then (None:\n"
             "it changes inside), zone(span) looks one up and keeps it in zones. end is\n"
             "stop when every entry was read; else where the first entry not as journalctl\n"
             "writes it begins (a line without '=', a bad field name, a stray blank line).\n"
             "cursor is the last entry's __CURSOR, or None.");

static PyObject *
text_lines(PyObject *mod, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, stop;
    PyObject *zones, *zone;
    if (!PyArg_ParseTuple(args, "y*nnO!O", &view, &pos, &stop, &PyDict_Type, &zones, &zone))
        return NULL;
    if (pos < 0 || stop < pos || stop > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos and stop out of the buffer");
        return NULL;
    }
    const char *base = view.buf, *p = base + pos, *end = base + stop;
    PyObject *out = PyList_New(0), *cursor = NULL;
    Block b = {0};
    Py_ssize_t entries = 0;
    if (out == NULL)
        goto fail;
    while (p < end) {
        const char *start = p;
        Span f[PICKED];
        for (int i = 0; i < PICKED; i++)
            f[i].n = -1;
        int good = 1;
        const char *last = end; /* where the entry's fields end */
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq == NULL || !field_name(p, eq - p)) {
                good = 0;
                break;
            }
            int which = pick(p, eq - p);
            if (which >= 0) {
                f[which].s = eq + 1;
                f[which].n = e - eq - 1;
            }
            if (nl == NULL) {
                p = end;
                break;
            }
            p = nl + 1;
            if (p < end && *p == '\n') {
                last = nl;
                /* a blank line that ends the region: an empty entry, not journalctl's */
                good = ++p < end;
                break;
            }
        }
        if (!good) {
            p = start;
            break;
        }
        entries++;
        int made = line(&b, out, f, zones, zone);
        if (made < 0)
            goto fail;
        if (!made) {
            PyObject *d = fields(start, last);
            if (d == NULL || flush(&b, out) < 0 || PyList_Append(out, d) < 0) {
                Py_XDECREF(d);
                goto fail;
            }
            Py_DECREF(d);
        }
        Py_XDECREF(cursor);
        cursor = f[CURSOR].n >= 0 ? PyBytes_FromStringAndSize(f[CURSOR].s, f[CURSOR].n)
                                  : Py_NewRef(Py_None);
        if (cursor == NULL)
            goto fail;
    }
    if (flush(&b, out) < 0)
        goto fail;
    PyMem_Free(b.buf);
    PyObject *r = Py_BuildValue("(NnnN)", out, (Py_ssize_t)(p - base), entries,
                                cursor ? cursor : Py_NewRef(Py_None));
    PyBuffer_Release(&view);
    return r;
fail:
    PyMem_Free(b.buf);
    Py_XDECREF(out);
    Py_XDECREF(cursor);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"text_lines", text_lines, METH_VARARGS, text_lines_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_export",
    "The journal's export stream as syslog lines in C (see todokede/logs/export.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__export(void)
{
    return PyModule_Create(&module);
}
