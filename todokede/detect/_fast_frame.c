/* A line's syslog framing in C: what todokede/logs/syslog.py's Framer.frame makes of it,
 * for the lines it reads in their usual spelling. BSD stamps (with the file's table of
 * days: a BSD stamp has no year), RFC 3339 stamps with or without fractions and offsets
 * (the offset dropped, as the framer drops it), RFC 5424, each with or without a <PRI>.
 * Anything else (an unusual but valid spelling too) is left to the framer in Python:
 * tk_frame says 0 and the line takes the general path. */
#include "_fast.h"

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

#define D(c) ((c) >= '0' && (c) <= '9')
#define N2(s) (((s)[0] - '0') * 10 + ((s)[1] - '0'))

/* the time of a BSD stamp in its usual spelling; NO_TIME for anything else */
long long
tk_stamp(const char *s, const int64_t *days)
{
    int month = -1;
    for (int i = 0; i < 12; i++)
        if (s[0] == MONTHS[3 * i] && s[1] == MONTHS[3 * i + 1] && s[2] == MONTHS[3 * i + 2]) {
            month = i;
            break;
        }
    if (month < 0 || s[3] != ' ' || s[6] != ' ' || !(s[4] == ' ' || D(s[4])) || !D(s[5]) ||
        !D(s[7]) || !D(s[8]) || s[9] != ':' || !D(s[10]) || !D(s[11]) || s[12] != ':' ||
        !D(s[13]) || !D(s[14]))
        return NO_TIME;
    int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
    int hour = N2(s + 7), minute = N2(s + 10), sec = N2(s + 13);
    if (day > 31)
        return NO_TIME;
    int64_t base = days[month * 32 + day];
    if (base == NO_TIME || hour > 23 || minute > 59 || sec > 60)
        return NO_TIME;
    return base + hour * 3600 + minute * 60 + sec;
}

/* days since 1970-01-01 of a proleptic Gregorian date (as calendar.timegm counts) */
static long long
civil_days(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* an RFC 3339 stamp: Framer._iso_time reads its first 19 bytes and ignores the rest (a
 * fraction, an offset); n is the length up to the first space */
static long long
iso(const char *s, Py_ssize_t n)
{
    static const int MDAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n < 19 || s[4] != '-' || s[10] != 'T' || s[13] != ':')
        return NO_TIME;
    for (int i = 0; i < 19; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !D(s[i]))
            return NO_TIME;
    int year = N2(s) * 100 + N2(s + 2), month = N2(s + 5), day = N2(s + 8);
    int hour = N2(s + 11), minute = N2(s + 14), sec = N2(s + 17);
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 60)
        return NO_TIME;
    int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (day > MDAYS[month - 1] + (month == 2 && leap))
        return NO_TIME;
    return civil_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec;
}

static void
prog_of(Span tag, Frame *f)
{
    /* "prog[pid]" only when the tag ends with "]" */
    const char *b = memchr(tag.s, '[', (size_t)tag.n);
    if (b != NULL && tag.s[tag.n - 1] == ']')
        f->prog = (Span){tag.s, b - tag.s};
    else
        f->prog = tag;
}

/* syslog._tag: "host prog[pid]: msg", or "prog[pid]: msg" (a host that ends with ":") */
static int
tag(long long ts, const char *r, Py_ssize_t n, Frame *f)
{
    const char *sp = memchr(r, ' ', (size_t)n);
    if (sp == NULL)
        return 0;
    Py_ssize_t hn = sp - r, an = n - hn - 1;
    const char *a = sp + 1;
    f->ts = ts;
    if (hn > 0 && r[hn - 1] == ':' && r[0] != '[') {
        /* no host name: Dovecot's own log_path and other programs' log files */
        f->host = (Span){r, 0};
        prog_of((Span){r, hn - 1}, f);
        f->msg = (Span){a, an};
        return 1;
    }
    Py_ssize_t colon = tk_find(a, an, 0, LIT(": "));
    /* no ": " (e.g. "last message repeated"), or a tag with a space: no program */
    if (colon < 0 || memchr(a, ' ', (size_t)colon) != NULL)
        return 0;
    f->host = (Span){r, hn};
    prog_of((Span){a, colon}, f);
    f->msg = (Span){a + colon + 2, an - colon - 2};
    return 1;
}

/* Framer._rfc5424 after "<PRI>1 ": TS HOST APP PROCID MSGID SD MSG */
static int
rfc5424(const char *s, Py_ssize_t n, Frame *f)
{
    Span part[5];
    Py_ssize_t at = 0;
    for (int i = 0; i < 5; i++) {
        const char *sp = memchr(s + at, ' ', (size_t)(n - at));
        if (sp == NULL)
            return 0; /* no structured data: not RFC 5424 to the framer either */
        part[i] = (Span){s + at, sp - s - at};
        at = sp - s + 1;
    }
    long long ts = iso(part[0].s, part[0].n);
    if (ts == NO_TIME)
        return 0;
    const char *t = s + at;
    Py_ssize_t tn = n - at, i = 0;
    if (tn > 0 && t[0] == '-')
        i = 2 < tn ? 2 : tn;
    else if (tn > 0 && t[0] == '[') {
        while (i < tn && t[i] == '[') { /* _skip_structured_data */
            i++;
            int quoted = 0;
            while (i < tn) {
                if (t[i] == '\\' && quoted) {
                    i += 2;
                    continue;
                }
                if (t[i] == '"')
                    quoted = !quoted;
                else if (t[i] == ']' && !quoted)
                    break;
                i++;
            }
            if (i >= tn)
                return 0;
            i++;
        }
        if (i < tn && t[i] == ' ')
            i++;
    }
    else
        return 0;
    if (tn - i >= 3 && memcmp(t + i, "\xef\xbb\xbf", 3) == 0)
        i += 3;
    f->ts = ts;
    f->host = part[1].n == 1 && part[1].s[0] == '-' ? (Span){part[1].s, 0} : part[1];
    f->prog = part[2].n == 1 && part[2].s[0] == '-' ? (Span){part[2].s, 0} : part[2];
    f->msg = (Span){t + i, tn - i};
    return 1;
}

/* 1: framed into *f, as Framer.frame frames it; 0: for the framer in Python */
int
tk_frame(const char *s, Py_ssize_t n, const int64_t *days, Frame *f)
{
    if (n < 16)
        return 0;
    if (s[0] >= 'A' && s[0] <= 'Z' && s[15] == ' ') {
        long long ts = tk_stamp(s, days);
        return ts != NO_TIME && tag(ts, s + 16, n - 16, f);
    }
    if (D(s[0])) {
        const char *sp = memchr(s, ' ', (size_t)n);
        long long ts = sp ? iso(s, sp - s) : NO_TIME;
        return ts != NO_TIME && tag(ts, sp + 1, n - (sp - s) - 1, f);
    }
    if (s[0] != '<')
        return 0;
    Py_ssize_t end = 1;
    while (end < 6 && end < n && D(s[end]))
        end++;
    if (end == 1 || end >= 6 || end >= n || s[end] != '>')
        return 0;
    s += end + 1;
    n -= end + 1;
    if (n >= 2 && s[0] == '1' && s[1] == ' ')
        return rfc5424(s + 2, n - 2, f);
    if (n < 16 || s[0] == '<') /* a second <PRI>: the framer's own business */
        return 0;
    return tk_frame(s, n, days, f);
}
