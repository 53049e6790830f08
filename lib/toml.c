#include "lib/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/buf.h"
#include "lib/fileio.h"
#include "lib/util.h"

const struct toml_limits toml_default_limits = {
    .max_input = 1024 * 1024,
    .max_depth = 16,
    .max_string = 64 * 1024,
    .max_array = 4096,
    .max_keys = 1024,
};

#define QUOTE_CHARS 40

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most avail bytes) and its code point; 0 when
 * the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *ret_cp)
{
    if (!avail)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *ret_cp = c;
        return 1;
    }
    size_t n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *ret_cp = cp;
    return n;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool toml_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static bool is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7F;
}

void toml_quote(const char *s, size_t len, char *out, size_t outlen)
{
    if (!outlen)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0, chars = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int _n = snprintf(out + o, outlen - o, __VA_ARGS__);                                       \
        if (_n < 0 || (size_t)_n >= outlen - o)                                                    \
            goto full;                                                                             \
        o += (size_t)_n;                                                                           \
    } while (0)
    PUT("\"");
    while (i < len) {
        if (chars == QUOTE_CHARS) {
            PUT("...");
            break;
        }
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (!n) {
            PUT("\\x%02X", p[i]);
            i++;
        } else if (cp == '"' || cp == '\\') {
            PUT("\\%c", (char)cp);
            i++;
        } else if (cp < 0x20 || cp == 0x7F) {
            PUT("\\u%04X", (unsigned)cp);
            i++;
        } else {
            PUT("%.*s", (int)n, (const char *)p + i);
            i += n;
        }
        chars++;
    }
    PUT("\"");
    return;
full:
    out[o] = '\0';
#undef PUT
}

int toml_put_string(struct buf *b, const char *s)
{
    int r = buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; r == 0 && *p; p++) {
        switch (*p) {
        case '"':
            r = buf_puts(b, "\\\"");
            break;
        case '\\':
            r = buf_puts(b, "\\\\");
            break;
        case '\b':
            r = buf_puts(b, "\\b");
            break;
        case '\t':
            r = buf_puts(b, "\\t");
            break;
        case '\n':
            r = buf_puts(b, "\\n");
            break;
        case '\f':
            r = buf_puts(b, "\\f");
            break;
        case '\r':
            r = buf_puts(b, "\\r");
            break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                r = buf_printf(b, "\\u%04X", *p);
            else
                r = buf_putc(b, (char)*p);
        }
    }
    return r < 0 ? r : buf_putc(b, '"');
}

/* ---- integers --------------------------------------------------------------------------- */

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Scans a TOML integer; on -EINVAL *why says what is wrong. */
static int scan_integer(const char *s, size_t len, int64_t *ret, const char **why)
{
    size_t i = 0;
    bool neg = false, sign = false;
    unsigned base = 10;

    if (len && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        sign = true;
        i = 1;
    }
    if (i >= len || !is_digit(s[i])) {
        *why = "expected a digit";
        return -EINVAL;
    }
    if (s[i] == '0' && i + 1 < len && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
        if (sign) {
            *why = "0x, 0o and 0b integers take no sign";
            return -EINVAL;
        }
        base = s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : 2;
        i += 2;
        if (i >= len) {
            *why = "expected digits after the prefix";
            return -EINVAL;
        }
    } else if (s[i] == '0' && i + 1 < len) {
        *why = "leading zeros are not allowed";
        return -EINVAL;
    }

    uint64_t v = 0;
    bool prev_digit = false;
    for (; i < len; i++) {
        if (s[i] == '_') {
            if (!prev_digit || i + 1 >= len) {
                *why = "\"_\" must stand between two digits";
                return -EINVAL;
            }
            prev_digit = false;
            continue;
        }
        int d = digit_value(s[i]);
        if (d < 0 || (unsigned)d >= base) {
            *why = base == 16  ? "expected a hexadecimal digit"
                   : base == 8 ? "expected an octal digit"
                   : base == 2 ? "expected a binary digit"
                               : "expected a digit";
            return -EINVAL;
        }
        if (v > (UINT64_MAX - (unsigned)d) / base)
            return -ERANGE;
        v = v * base + (unsigned)d;
        prev_digit = true;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *ret = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

int toml_parse_integer(const char *s, size_t len, int64_t *ret)
{
    const char *why;
    int64_t v;
    int r = scan_integer(s, len, &v, &why);
    if (r < 0)
        return r;
    *ret = v;
    return 0;
}

/* ---- the parser ------------------------------------------------------------------------- */

struct parser {
    const char *p, *end;
    struct toml_pos pos;
    const char *name;
    const struct toml_limits *lim;
    char *err;
    size_t errlen;
    /* Set while the value of a secret key is parsed: errors do not show its text. */
    char secret[TOML_QUOTE_MAX];
};

static bool at_end(const struct parser *ps)
{
    return ps->p >= ps->end;
}

/* The byte off bytes ahead, or -1 past the end. */
static int peek(const struct parser *ps, size_t off)
{
    return (size_t)(ps->end - ps->p) > off ? (unsigned char)ps->p[off] : -1;
}

static void advance(struct parser *ps)
{
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '\n') {
        ps->pos.line++;
        ps->pos.col = 1;
    } else if ((c & 0xC0) != 0x80) {
        ps->pos.col++;
    }
}

static void advance_n(struct parser *ps, size_t n)
{
    while (n--)
        advance(ps);
}

static int fail_at(struct parser *ps, struct toml_pos at, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct parser *ps, struct toml_pos at, int r, const char *fmt, ...)
{
    if (!ps->errlen)
        return r;
    if (r == -ENOMEM) {
        snprintf(ps->err, ps->errlen, "%s: out of memory", ps->name);
        return r;
    }
    int n = snprintf(ps->err, ps->errlen, "%s:%u:%u: ", ps->name, at.line, at.col);
    if (ps->secret[0]) {
        if (n >= 0 && (size_t)n < ps->errlen)
            snprintf(ps->err + n, ps->errlen - (size_t)n,
                     "the value of %s is not valid TOML (not shown: the key holds a secret); "
                     "write it as a quoted string",
                     ps->secret);
        return r;
    }
    if (n >= 0 && (size_t)n < ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return r;
}

static bool is_stop(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ']' || c == '#';
}

/* Renders what stands at the current place, for "got …". */
static void describe(const struct parser *ps, char out[TOML_QUOTE_MAX])
{
    if (at_end(ps)) {
        snprintf(out, TOML_QUOTE_MAX, "end of file");
        return;
    }
    if (*ps->p == '\n' || (*ps->p == '\r' && peek(ps, 1) == '\n')) {
        snprintf(out, TOML_QUOTE_MAX, "end of line");
        return;
    }
    size_t n = 1;
    while (ps->p + n < ps->end && !is_stop((unsigned char)ps->p[n]) && n < 4 * QUOTE_CHARS)
        n++;
    toml_quote(ps->p, n, out, TOML_QUOTE_MAX);
}

static int fail_got(struct parser *ps, const char *expected)
{
    char got[TOML_QUOTE_MAX];
    describe(ps, got);
    return fail_at(ps, ps->pos, -EINVAL, "%s, got %s", expected, got);
}

static int check_utf8(struct parser *ps)
{
    const unsigned char *s = (const unsigned char *)ps->p;
    size_t len = (size_t)(ps->end - ps->p), i = 0;
    struct toml_pos at = ps->pos;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (!n)
            return fail_at(ps, at, -EINVAL,
                           "invalid UTF-8 (a byte that cannot start or continue a character)");
        if (cp == '\n') {
            at.line++;
            at.col = 1;
        } else {
            at.col++;
        }
        i += n;
    }
    return 0;
}

static void skip_ws(struct parser *ps)
{
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
        advance(ps);
}

/* Consumes "\n" or "\r\n": 1 when one was there, 0 when not, <0 for a lone "\r". */
static int eat_newline(struct parser *ps)
{
    int c = peek(ps, 0);
    if (c == '\n') {
        advance(ps);
        return 1;
    }
    if (c == '\r') {
        if (peek(ps, 1) != '\n')
            return fail_at(ps, ps->pos, -EINVAL, "a carriage return must be followed by a newline");
        advance_n(ps, 2);
        return 1;
    }
    return 0;
}

static int skip_comment(struct parser *ps)
{
    advance(ps); /* # */
    while (!at_end(ps) && *ps->p != '\n') {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '\r' && peek(ps, 1) == '\n')
            break;
        if (is_control(c))
            return fail_at(ps, ps->pos, -EINVAL,
                           "control character U+%04X is not allowed in a comment", c);
        advance(ps);
    }
    return 0;
}

/* Blanks, newlines and comments, as between the items of an array. */
static int skip_blank(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        int c = peek(ps, 0), r;
        if (c == '#')
            r = skip_comment(ps);
        else if (c == '\n' || c == '\r')
            r = eat_newline(ps);
        else
            return 0;
        if (r < 0)
            return r;
    }
}

/* After a key-value pair or a table header: blanks, a comment, then the end of the line. */
static int end_of_line(struct parser *ps, const char *after)
{
    skip_ws(ps);
    if (peek(ps, 0) == '#') {
        int r = skip_comment(ps);
        if (r < 0)
            return r;
    }
    if (at_end(ps))
        return 0;
    int r = eat_newline(ps);
    if (r != 0)
        return r < 0 ? r : 0;
    char expected[64];
    snprintf(expected, sizeof(expected), "expected end of line after %s", after);
    return fail_got(ps, expected);
}

static int append(struct parser *ps, struct buf *b, struct toml_pos open, const char *s, size_t n)
{
    int r = buf_append(b, s, n);
    if (r == -EMSGSIZE)
        return fail_at(ps, open, -E2BIG, "string is longer than %zu bytes", ps->lim->max_string);
    if (r < 0)
        return fail_at(ps, open, r, "out of memory");
    return 0;
}

static int parse_escape(struct parser *ps, struct buf *b, struct toml_pos open)
{
    struct toml_pos at = ps->pos;
    advance(ps); /* \ */
    int c = peek(ps, 0);
    const char *simple = NULL;
    switch (c) {
    case 'b':
        simple = "\b";
        break;
    case 't':
        simple = "\t";
        break;
    case 'n':
        simple = "\n";
        break;
    case 'f':
        simple = "\f";
        break;
    case 'r':
        simple = "\r";
        break;
    case '"':
        simple = "\"";
        break;
    case '\\':
        simple = "\\";
        break;
    default:
        break;
    }
    if (simple) {
        advance(ps);
        return append(ps, b, open, simple, 1);
    }
    if (c == 'u' || c == 'U') {
        size_t digits = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t i = 1; i <= digits; i++) {
            int d = peek(ps, i);
            if (d < 0 || digit_value((char)d) < 0)
                return fail_at(ps, at, -EINVAL,
                               "\"\\%c\" must be followed by %zu hexadecimal digits", (char)c,
                               digits);
            cp = (cp << 4) | (uint32_t)digit_value((char)d);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail_at(ps, at, -EINVAL, "\"\\%c%.*s\" is not a Unicode scalar value", (char)c,
                           (int)digits, ps->p + 1);
        if (cp == 0)
            return fail_at(ps, at, -EINVAL, "\"\\%c%.*s\": NUL is not allowed in strings", (char)c,
                           (int)digits, ps->p + 1);
        advance_n(ps, digits + 1);
        char enc[4];
        return append(ps, b, open, enc, utf8_encode(cp, enc));
    }
    if (c < 0 || c == '\n' || c == '\r')
        return fail_at(ps, open, -EINVAL, "string is not closed before the end of the %s",
                       c < 0 ? "file" : "line");
    if (c > 0x20 && c < 0x7F)
        return fail_at(ps, at, -EINVAL,
                       "invalid escape \"\\%c\" (expected \\b \\t \\n \\f \\r \\\" \\\\ "
                       "\\uXXXX or \\UXXXXXXXX)",
                       (char)c);
    char got[TOML_QUOTE_MAX];
    uint32_t cp;
    size_t n = utf8_decode((const unsigned char *)ps->p, (size_t)(ps->end - ps->p), &cp);
    toml_quote(ps->p, n ? n : 1, got, sizeof(got));
    return fail_at(ps, at, -EINVAL, "invalid escape: \"\\\" followed by %s", got);
}

/* One-line basic ("…") or literal ('…') string. */
static int parse_string_line(struct parser *ps, char quote, char **ret)
{
    struct toml_pos open = ps->pos;
    struct buf b = BUF_INIT(ps->lim->max_string);
    int r;
    advance(ps);
    for (;;) {
        if (at_end(ps) || *ps->p == '\n' || *ps->p == '\r') {
            r = fail_at(ps, open, -EINVAL, "string is not closed before the end of the %s",
                        at_end(ps) ? "file" : "line");
            goto fail;
        }
        char c = *ps->p;
        if (c == quote) {
            advance(ps);
            break;
        }
        if (c == '\\' && quote == '"') {
            r = parse_escape(ps, &b, open);
        } else if (is_control((unsigned char)c)) {
            r = fail_at(ps, ps->pos, -EINVAL,
                        "control character U+%04X must be escaped in a string", c);
        } else {
            r = append(ps, &b, open, &c, 1);
            advance(ps);
        }
        if (r < 0)
            goto fail;
    }
    *ret = buf_detach(&b, NULL);
    return *ret ? 0 : fail_at(ps, open, -ENOMEM, "out of memory");
fail:
    buf_release(&b);
    return r;
}

/* Multi-line basic ("""…""") or literal ('''…''') string. */
static int parse_string_multi(struct parser *ps, char quote, char **ret)
{
    struct toml_pos open = ps->pos;
    struct buf b = BUF_INIT(ps->lim->max_string);
    int r = 0;
    advance_n(ps, 3);
    /* A newline right after the opening delimiter is trimmed. */
    if (peek(ps, 0) == '\n')
        advance(ps);
    else if (peek(ps, 0) == '\r' && peek(ps, 1) == '\n')
        advance_n(ps, 2);
    for (;;) {
        if (at_end(ps)) {
            r = fail_at(ps, open, -EINVAL,
                        "multi-line string is not closed before the end of the file");
            goto fail;
        }
        char c = *ps->p;
        if (c == quote) {
            size_t q = 0;
            while (peek(ps, q) == quote)
                q++;
            if (q > 5) {
                r = fail_at(ps, ps->pos, -EINVAL,
                            "at most two quotes may stand before the closing %c%c%c", quote, quote,
                            quote);
                goto fail;
            }
            /* Up to two quotes just before the closing delimiter belong to the string. */
            size_t keep = q >= 3 ? q - 3 : q;
            for (size_t i = 0; i < keep && r >= 0; i++)
                r = append(ps, &b, open, &quote, 1);
            if (r < 0)
                goto fail;
            advance_n(ps, q);
            if (q >= 3)
                break;
            continue;
        }
        if (c == '\\' && quote == '"') {
            size_t j = 1;
            while (peek(ps, j) == ' ' || peek(ps, j) == '\t')
                j++;
            if (peek(ps, j) == '\n' || (peek(ps, j) == '\r' && peek(ps, j + 1) == '\n')) {
                /* A line-ending backslash eats all blanks and newlines that follow. */
                advance_n(ps, j);
                for (;;) {
                    skip_ws(ps);
                    r = eat_newline(ps);
                    if (r < 0)
                        goto fail;
                    if (r == 0)
                        break;
                }
                continue;
            }
            r = parse_escape(ps, &b, open);
        } else if (c == '\n') {
            r = append(ps, &b, open, "\n", 1);
            advance(ps);
        } else if (c == '\r') {
            r = eat_newline(ps);
            if (r >= 0)
                r = append(ps, &b, open, "\n", 1);
        } else if (is_control((unsigned char)c)) {
            r = fail_at(ps, ps->pos, -EINVAL,
                        "control character U+%04X must be escaped in a string", c);
        } else {
            r = append(ps, &b, open, &c, 1);
            advance(ps);
        }
        if (r < 0)
            goto fail;
    }
    *ret = buf_detach(&b, NULL);
    return *ret ? 0 : fail_at(ps, open, -ENOMEM, "out of memory");
fail:
    buf_release(&b);
    return r;
}

static int parse_string(struct parser *ps, char **ret)
{
    char q = *ps->p;
    if (peek(ps, 1) == q && peek(ps, 2) == q)
        return parse_string_multi(ps, q, ret);
    return parse_string_line(ps, q, ret);
}

static bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}

static int parse_key(struct parser *ps, const char *what, char **ret, struct toml_pos *ret_pos)
{
    struct toml_pos at = ps->pos;
    int c = peek(ps, 0);
    char *key = NULL;
    if (c == '"' || c == '\'') {
        if (peek(ps, 1) == c && peek(ps, 2) == c)
            return fail_at(ps, at, -EINVAL, "a %s cannot be a multi-line string", what);
        int r = parse_string_line(ps, (char)c, &key);
        if (r < 0)
            return r;
    } else if (is_bare(c)) {
        size_t n = 0;
        while (is_bare(peek(ps, n)))
            n++;
        if (n > ps->lim->max_string)
            return fail_at(ps, at, -E2BIG, "%s is longer than %zu bytes", what,
                           ps->lim->max_string);
        key = strndup(ps->p, n);
        if (!key)
            return fail_at(ps, at, -ENOMEM, "out of memory");
        advance_n(ps, n);
    } else {
        char expected[64];
        snprintf(expected, sizeof(expected), "expected a %s", what);
        return fail_got(ps, expected);
    }
    *ret = key;
    *ret_pos = at;
    return 0;
}

static struct toml_kv *find(const struct toml_table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (streq(t->kvs[i].key, key))
            return &t->kvs[i];
    return NULL;
}

const struct toml_kv *toml_table_peek(const struct toml_table *t, const char *key)
{
    return t ? find(t, key) : NULL;
}

static void value_release(struct toml_value *v)
{
    switch (v->type) {
    case TOML_STRING:
        free(v->str);
        v->str = NULL;
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->array.n; i++)
            value_release(&v->array.items[i]);
        free(v->array.items);
        v->array.items = NULL;
        v->array.n = 0;
        break;
    case TOML_TABLE:
        toml_table_release(&v->table);
        break;
    case TOML_INTEGER:
    case TOML_BOOLEAN:
        break;
    }
}

void toml_table_release(struct toml_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->kvs[i].key);
        value_release(&t->kvs[i].value);
    }
    free(t->kvs);
    t->kvs = NULL;
    t->n = t->cap = 0;
}

static int parse_value(struct parser *ps, size_t depth, struct toml_value *ret);

static int parse_array(struct parser *ps, size_t depth, struct toml_value *ret)
{
    struct toml_pos open = ps->pos;
    if (depth > ps->lim->max_depth)
        return fail_at(ps, open, -E2BIG, "arrays are nested deeper than %zu levels",
                       ps->lim->max_depth);
    advance(ps); /* [ */
    struct toml_value *items = NULL;
    size_t n = 0, cap = 0;
    int r;
    for (;;) {
        r = skip_blank(ps);
        if (r < 0)
            goto fail;
        if (peek(ps, 0) == ']') {
            advance(ps);
            break;
        }
        if (at_end(ps)) {
            r = fail_at(ps, open, -EINVAL, "array is not closed before the end of the file");
            goto fail;
        }
        if (n == ps->lim->max_array) {
            r = fail_at(ps, ps->pos, -E2BIG, "array has more than %zu items", ps->lim->max_array);
            goto fail;
        }
        if (ARRAY_RESERVE(&items, n, &cap, 1) < 0) {
            r = fail_at(ps, open, -ENOMEM, "out of memory");
            goto fail;
        }
        r = parse_value(ps, depth, &items[n]);
        if (r < 0)
            goto fail;
        n++;
        r = skip_blank(ps);
        if (r < 0)
            goto fail;
        if (peek(ps, 0) == ',') {
            advance(ps);
            continue;
        }
        if (peek(ps, 0) == ']') {
            advance(ps);
            break;
        }
        if (at_end(ps)) {
            r = fail_at(ps, open, -EINVAL, "array is not closed before the end of the file");
            goto fail;
        }
        r = fail_got(ps, "expected \",\" or \"]\" after an array item");
        goto fail;
    }
    *ret = (struct toml_value){.type = TOML_ARRAY, .pos = open, .array = {items, n}};
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        value_release(&items[i]);
    free(items);
    return r;
}

/* Does the document continue with word, followed by something that cannot extend it? */
static bool match_word(const struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    return !is_bare(peek(ps, n));
}

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

static int parse_number(struct parser *ps, struct toml_value *ret)
{
    const char *s = ps->p;
    size_t n = 0;
    while (s + n < ps->end && s[n] && (is_bare((unsigned char)s[n]) || strchr("+.:", s[n]) != NULL))
        n++;
    char got[TOML_QUOTE_MAX];
    toml_quote(s, n, got, sizeof(got));

    size_t b = (n && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    const char *body = s + b;
    size_t bn = n - b;
    if ((bn >= 5 && all_of(body, 4, "0123456789") && body[4] == '-') ||
        (bn >= 3 && all_of(body, 2, "0123456789") && body[2] == ':'))
        return fail_at(ps, ps->pos, -EINVAL, "dates and times are not supported, got %s", got);
    if ((bn == 3 && (memcmp(body, "inf", 3) == 0 || memcmp(body, "nan", 3) == 0)) ||
        (bn > 0 && is_digit(body[0]) && all_of(body, bn, "0123456789_.eE+-") &&
         (memchr(body, '.', bn) || memchr(body, 'e', bn) || memchr(body, 'E', bn))))
        return fail_at(ps, ps->pos, -EINVAL, "floats are not supported, got %s", got);
    if (bn > 1 && is_digit(body[0]) && all_of(body, bn, "0123456789msh") && !is_digit(body[bn - 1]))
        return fail_at(ps, ps->pos, -EINVAL,
                       "expected a value (string, integer, boolean or array), got %s (a "
                       "duration is a string: \"%.*s\")",
                       got, (int)bn, body);
    if (bn == 0 || !is_digit(body[0]) || !all_of(body, bn, "0123456789abcdefABCDEF_xo+-"))
        return fail_got(ps, "expected a value (string, integer, boolean or array)");

    const char *why = NULL;
    int64_t v;
    int r = scan_integer(s, n, &v, &why);
    if (r == -ERANGE)
        return fail_at(ps, ps->pos, -EINVAL, "integer %s does not fit in 64 bits", got);
    if (r < 0)
        return fail_at(ps, ps->pos, -EINVAL, "invalid integer %s: %s", got, why);
    *ret = (struct toml_value){.type = TOML_INTEGER, .pos = ps->pos, .integer = v};
    advance_n(ps, n);
    return 0;
}

static int parse_value(struct parser *ps, size_t depth, struct toml_value *ret)
{
    struct toml_pos at = ps->pos;
    int c = peek(ps, 0);
    if (c == '"' || c == '\'') {
        char *s;
        int r = parse_string(ps, &s);
        if (r < 0)
            return r;
        *ret = (struct toml_value){.type = TOML_STRING, .pos = at, .str = s};
        return 0;
    }
    if (c == '[')
        return parse_array(ps, depth + 1, ret);
    if (c == '{')
        return fail_at(ps, at, -EINVAL, "inline tables ({...}) are not supported");
    if (match_word(ps, "true") || match_word(ps, "false")) {
        bool v = c == 't';
        advance_n(ps, v ? 4 : 5);
        *ret = (struct toml_value){.type = TOML_BOOLEAN, .pos = at, .boolean = v};
        return 0;
    }
    if (c == '+' || c == '-' || is_digit(c) || c == 'i' || c == 'n')
        return parse_number(ps, ret);
    return fail_got(ps, "expected a value (string, integer, boolean or array)");
}

static int parse_table_header(struct parser *ps, struct toml_table *root, size_t *ret_cur)
{
    struct toml_pos at = ps->pos;
    advance(ps); /* [ */
    if (peek(ps, 0) == '[')
        return fail_at(ps, at, -EINVAL, "arrays of tables ([[...]]) are not supported");
    skip_ws(ps);
    _cleanup_free_ char *name = NULL;
    struct toml_pos npos;
    int r = parse_key(ps, "table name", &name, &npos);
    if (r < 0)
        return r;
    skip_ws(ps);
    if (peek(ps, 0) == '.')
        return fail_at(ps, ps->pos, -EINVAL,
                       "dotted table names are not supported: the config has one level of "
                       "tables, like [agent]");
    if (peek(ps, 0) != ']')
        return fail_got(ps, "expected \"]\" after the table name");
    advance(ps);

    char qname[TOML_QUOTE_MAX];
    toml_quote(name, strlen(name), qname, sizeof(qname));
    const struct toml_kv *old = find(root, name);
    if (old && old->value.type == TOML_TABLE)
        return fail_at(ps, npos, -EINVAL, "table %s is defined twice (first at line %u)", qname,
                       old->pos.line);
    if (old)
        return fail_at(ps, npos, -EINVAL, "%s is already a key (line %u), it cannot be a table",
                       qname, old->pos.line);
    if (root->n >= ps->lim->max_keys)
        return fail_at(ps, npos, -E2BIG, "more than %zu tables and keys at the top level",
                       ps->lim->max_keys);
    if (ARRAY_RESERVE(&root->kvs, root->n, &root->cap, 1) < 0)
        return fail_at(ps, at, -ENOMEM, "out of memory");
    root->kvs[root->n] = (struct toml_kv){
        .key = TAKE_PTR(name),
        .pos = npos,
        .value = {.type = TOML_TABLE, .pos = at},
    };
    *ret_cur = root->n++;
    return 0;
}

static int parse_keyval(struct parser *ps, struct toml_table *t, const char *tname)
{
    _cleanup_free_ char *key = NULL;
    struct toml_pos kpos;
    int r = parse_key(ps, "key", &key, &kpos);
    if (r < 0)
        return r;
    skip_ws(ps);
    if (peek(ps, 0) == '.')
        return fail_at(ps, ps->pos, -EINVAL,
                       "dotted keys are not supported: write the key under its [table]");
    if (peek(ps, 0) != '=')
        return fail_got(ps, "expected \"=\" after the key");
    advance(ps);
    skip_ws(ps);

    char qkey[TOML_QUOTE_MAX], qtab[TOML_QUOTE_MAX];
    toml_quote(key, strlen(key), qkey, sizeof(qkey));
    if (tname)
        toml_quote(tname, strlen(tname), qtab, sizeof(qtab));
    const struct toml_kv *old = find(t, key);
    if (old)
        return fail_at(ps, kpos, -EINVAL, "duplicate key %s%s%s (first at line %u)", qkey,
                       tname ? " in table " : "", tname ? qtab : "", old->pos.line);
    if (t->n >= ps->lim->max_keys)
        return fail_at(ps, kpos, -E2BIG, "more than %zu keys in %s%s", ps->lim->max_keys,
                       tname ? "table " : "the top level", tname ? qtab : "");

    if (ps->lim->secret_key && ps->lim->secret_key(tname, key))
        snprintf(ps->secret, sizeof(ps->secret), "%s%s%s", tname ? tname : "", tname ? "." : "",
                 key);
    struct toml_value v;
    r = parse_value(ps, 0, &v);
    if (r < 0)
        return r;
    if (ARRAY_RESERVE(&t->kvs, t->n, &t->cap, 1) < 0) {
        value_release(&v);
        return fail_at(ps, kpos, -ENOMEM, "out of memory");
    }
    t->kvs[t->n++] = (struct toml_kv){.key = TAKE_PTR(key), .pos = kpos, .value = v};
    return 0;
}

int toml_parse(const char *data, size_t len, const char *name, const struct toml_limits *limits,
               struct toml_table *ret, char *err, size_t errlen)
{
    struct parser ps = {
        .p = data,
        .end = data + len,
        .pos = {1, 1},
        .name = name ? name : "(toml)",
        .lim = limits ? limits : &toml_default_limits,
        .err = err,
        .errlen = errlen,
    };
    struct toml_table root = {0};
    size_t cur = SIZE_MAX;
    int r;

    if (errlen)
        err[0] = '\0';
    if (!data)
        ps.p = ps.end = "";
    if (len > ps.lim->max_input) {
        if (errlen)
            snprintf(err, errlen, "%s: larger than %zu bytes", ps.name, ps.lim->max_input);
        return -E2BIG;
    }
    r = check_utf8(&ps);
    if (r < 0)
        return r;
    if (len >= 3 && memcmp(ps.p, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3; /* a byte order mark is not a character of the first line */

    while (!at_end(&ps)) {
        skip_ws(&ps);
        if (at_end(&ps))
            break;
        const char *after = "the value";
        char c = *ps.p;
        r = 0;
        if (c == '[') {
            r = parse_table_header(&ps, &root, &cur);
            after = "the table header";
        } else if (c != '#' && c != '\n' && c != '\r') {
            struct toml_kv *tkv = cur == SIZE_MAX ? NULL : &root.kvs[cur];
            r = parse_keyval(&ps, tkv ? &tkv->value.table : &root, tkv ? tkv->key : NULL);
        }
        if (r < 0)
            goto fail;
        r = end_of_line(&ps, after);
        if (r < 0)
            goto fail;
        ps.secret[0] = '\0';
    }
    *ret = root;
    return 0;
fail:
    toml_table_release(&root);
    return r;
}

const char *toml_type_name(enum toml_type type)
{
    switch (type) {
    case TOML_STRING:
        return "string";
    case TOML_INTEGER:
        return "integer";
    case TOML_BOOLEAN:
        return "boolean";
    case TOML_ARRAY:
        return "array";
    case TOML_TABLE:
        return "table";
    }
    return "?";
}

int toml_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, char *err,
                   size_t errlen)
{
    return fileio_read(path, max, ret_data, ret_len, err, errlen);
}
