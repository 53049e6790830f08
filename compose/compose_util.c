#include "compose/compose_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int compose_util_decimal(const char *s, int64_t *ret)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!is_digit(*s))
            return -EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return -EINVAL;
    *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- Go durations ----------------------------------------------------------------------- */

static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
    {"ns", 1ULL},           {"us", 1000ULL},      {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ULL},                                               /* U+03BC Greek mu */
    {"ms", 1000000ULL},     {"s", 1000000000ULL}, {"m", 60000000000ULL},  {"h", 3600000000000ULL},
};

int compose_util_duration(const char *s, int64_t *ret_ns)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (streq(s, "0")) {
        *ret_ns = 0;
        return 0;
    }
    if (!*s)
        return -EINVAL;
    uint64_t total = 0;
    while (*s) {
        if (!(*s == '.' || is_digit(*s)))
            return -EINVAL;
        uint64_t v = 0;
        bool pre = false, post = false;
        for (; is_digit(*s); s++) {
            if (v > (UINT64_MAX / 2) / 10)
                return -EINVAL; /* overflow */
            v = v * 10 + (uint64_t)(*s - '0');
            pre = true;
        }
        uint64_t f = 0;
        double scale = 1;
        if (*s == '.') {
            s++;
            bool overflow = false;
            for (; is_digit(*s); s++) {
                post = true;
                if (overflow)
                    continue;
                if (f > ((uint64_t)INT64_MAX - 9) / 10) {
                    overflow = true; /* further digits cannot matter */
                    continue;
                }
                f = f * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
        if (!pre && !post)
            return -EINVAL;
        const char *u = s;
        while (*s && *s != '.' && !is_digit(*s))
            s++;
        size_t ulen = (size_t)(s - u);
        if (ulen == 0)
            return -EINVAL; /* missing unit */
        uint64_t unit = 0;
        for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++)
            if (strlen(duration_units[i].name) == ulen &&
                memcmp(duration_units[i].name, u, ulen) == 0)
                unit = duration_units[i].ns;
        if (!unit)
            return -EINVAL;
        if (v > (1ULL << 63) / unit)
            return -EINVAL;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > 1ULL << 63)
                return -EINVAL;
        }
        total += v;
        if (total > 1ULL << 63)
            return -EINVAL;
    }
    if (neg) {
        *ret_ns = total == 1ULL << 63 ? INT64_MIN : -(int64_t)total;
        return 0;
    }
    if (total > (uint64_t)INT64_MAX)
        return -EINVAL;
    *ret_ns = (int64_t)total;
    return 0;
}

/* ---- sizes and CPUs --------------------------------------------------------------------- */

int compose_util_ram_bytes(const char *s, int64_t *ret)
{
    /* ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$ */
    const char *p = s;
    if (!is_digit(*p))
        return -EINVAL;
    int dots = 0;
    while (is_digit(*p))
        p++;
    while (*p == '.' && is_digit(p[1])) {
        dots++;
        p++;
        while (is_digit(*p))
            p++;
    }
    size_t numlen = (size_t)(p - s);
    if (*p == ' ')
        p++;
    double mul = 1;
    switch (*p) {
    case 'k':
    case 'K':
        mul = 1024.0;
        p++;
        break;
    case 'm':
    case 'M':
        mul = 1024.0 * 1024;
        p++;
        break;
    case 'g':
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        p++;
        break;
    case 't':
    case 'T':
        mul = 1024.0 * 1024 * 1024 * 1024;
        p++;
        break;
    case 'p':
    case 'P':
        mul = 1024.0 * 1024 * 1024 * 1024 * 1024;
        p++;
        break;
    }
    if (*p == 'i' || *p == 'I')
        p++;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p || dots > 1 || numlen >= 64)
        return -EINVAL;
    char num[64];
    memcpy(num, s, numlen);
    num[numlen] = '\0';
    double v = strtod(num, NULL) * mul;
    if (!(v < 9.2e18))
        return -EINVAL;
    *ret = (int64_t)v;
    return 0;
}

/* Multiplies v by 10^e exactly; false on overflow. */
static bool mul_pow10(uint64_t *v, int e)
{
    for (; e > 0; e--) {
        if (*v > UINT64_MAX / 10)
            return false;
        *v *= 10;
    }
    return true;
}

/* [+]?digits[.digits][e[+-]digits] → an exact nano count. */
static int nano_decimal(const char *s, uint64_t *ret)
{
    if (*s == '+')
        s++;
    uint64_t m = 0;
    int frac = 0, digits = 0;
    bool dot = false;
    for (; is_digit(*s) || (*s == '.' && !dot); s++) {
        if (*s == '.') {
            dot = true;
            continue;
        }
        digits++;
        if (m > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        m = m * 10 + (uint64_t)(*s - '0');
        if (dot)
            frac++;
    }
    if (!digits)
        return -EINVAL;
    int64_t e = 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (compose_util_decimal(s, &e) < 0 || e > 100 || e < -100)
            return -EINVAL;
        s += strlen(s);
    }
    if (*s)
        return -EINVAL;
    int shift = 9 + (int)e - frac;
    if (shift >= 0) {
        if (!mul_pow10(&m, shift))
            return -EINVAL;
    } else {
        for (; shift < 0; shift++) {
            if (m % 10)
                return -ERANGE; /* finer than a nano CPU */
            m /= 10;
        }
    }
    *ret = m;
    return 0;
}

int compose_util_nano_cpus(const char *s, int64_t *ret)
{
    uint64_t v;
    const char *slash = strchr(s, '/');
    if (slash) {
        int64_t num, den;
        char head[32];
        size_t hl = (size_t)(slash - s);
        if (hl >= sizeof(head))
            return -EINVAL;
        memcpy(head, s, hl);
        head[hl] = '\0';
        if (compose_util_decimal(head, &num) < 0 || compose_util_decimal(slash + 1, &den) < 0 ||
            num < 0 || den <= 0)
            return -EINVAL;
        uint64_t n = (uint64_t)num;
        if (!mul_pow10(&n, 9))
            return -EINVAL;
        if (n % (uint64_t)den)
            return -ERANGE;
        v = n / (uint64_t)den;
    } else {
        int r = nano_decimal(s, &v);
        if (r < 0)
            return r;
    }
    if (v > (uint64_t)INT64_MAX)
        return -EINVAL;
    *ret = (int64_t)v;
    return 0;
}

/* ---- shlex ------------------------------------------------------------------------------ */

int compose_util_shlex(struct compose_arena *a, const char *s, struct compose_strv *ret,
                       const char **ret_msg)
{
    enum { START, WORD, ESCAPING, ESCAPING_QUOTED, QUOTING_ESCAPING, QUOTING, COMMENT } st = START;
    struct buf word = BUF_INIT(SIZE_MAX / 2);
    char **v = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    for (const char *p = s;; p++) {
        char c = *p;
        bool eof = c == '\0';
        bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        bool emit = false;
        switch (st) {
        case START:
            if (eof)
                goto done;
            if (space)
                break;
            if (c == '"')
                st = QUOTING_ESCAPING;
            else if (c == '\'')
                st = QUOTING;
            else if (c == '\\')
                st = ESCAPING;
            else if (c == '#')
                st = COMMENT;
            else {
                r = buf_putc(&word, c);
                st = WORD;
            }
            break;
        case WORD:
            if (eof || space)
                emit = true;
            else if (c == '"')
                st = QUOTING_ESCAPING;
            else if (c == '\'')
                st = QUOTING;
            else if (c == '\\')
                st = ESCAPING;
            else
                r = buf_putc(&word, c);
            break;
        case ESCAPING:
            if (eof) {
                *ret_msg = "EOF found after escape character";
                r = -EINVAL;
                break;
            }
            r = buf_putc(&word, c);
            st = WORD;
            break;
        case ESCAPING_QUOTED:
            if (eof) {
                *ret_msg = "EOF found after escape character";
                r = -EINVAL;
                break;
            }
            r = buf_putc(&word, c);
            st = QUOTING_ESCAPING;
            break;
        case QUOTING_ESCAPING:
            if (eof) {
                *ret_msg = "EOF found when expecting closing quote";
                r = -EINVAL;
            } else if (c == '"')
                st = WORD;
            else if (c == '\\')
                st = ESCAPING_QUOTED;
            else
                r = buf_putc(&word, c);
            break;
        case QUOTING:
            if (eof) {
                *ret_msg = "EOF found when expecting closing quote";
                r = -EINVAL;
            } else if (c == '\'')
                st = WORD;
            else
                r = buf_putc(&word, c);
            break;
        case COMMENT:
            if (eof)
                goto done;
            if (c == '\n')
                st = START;
            break;
        }
        if (r < 0)
            goto out;
        if (emit) {
            if (n == cap) {
                size_t ncap = cap * 2 + 4;
                char **nv = compose_arena_grow(a, v, n, ncap, sizeof(*nv));
                if (!nv) {
                    r = -ENOMEM;
                    goto out;
                }
                v = nv;
                cap = ncap;
            }
            v[n] = compose_arena_strndup(a, word.data, word.len);
            if (!v[n++]) {
                r = -ENOMEM;
                goto out;
            }
            buf_reset(&word);
            st = START;
            if (eof)
                goto done;
        }
    }
done:
    *ret = (struct compose_strv){.v = v, .n = n};
out:
    buf_release(&word);
    return r;
}

/* ---- floats as Go prints them ----------------------------------------------------------- */

void compose_util_format_float(double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, len, signbit(v) ? "-0" : "0");
        return;
    }
    /* The shortest %e that reads back to v. */
    char e[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e[+-]xx */
    bool neg = e[0] == '-';
    const char *p = e + (neg ? 1 : 0);
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (is_digit(*p) && nd + 1 < sizeof(digits))
            digits[nd++] = *p;
    digits[nd] = '\0';
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = '\0';
    int exp = atoi(p + 1);
    char res[64];
    size_t k = 0;
    if (neg)
        res[k++] = '-';
    if (exp < -4 || exp >= 6) {
        res[k++] = digits[0];
        if (nd > 1) {
            res[k++] = '.';
            for (size_t i = 1; i < nd; i++)
                res[k++] = digits[i];
        }
        snprintf(res + k, sizeof(res) - k, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        res[k++] = '0';
        res[k++] = '.';
        for (int i = -1; i > exp; i--)
            res[k++] = '0';
        for (size_t i = 0; i < nd; i++)
            res[k++] = digits[i];
        res[k] = '\0';
    } else {
        for (int i = 0; i <= exp; i++)
            res[k++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp + 1) {
            res[k++] = '.';
            for (size_t i = (size_t)exp + 1; i < nd; i++)
                res[k++] = digits[i];
        }
        res[k] = '\0';
    }
    snprintf(out, len, "%s", res);
}

/* ---- image references ------------------------------------------------------------------- */

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool alnum(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
static bool valid_path_component(const char *s, size_t len)
{
    size_t i = 0;
    if (!len || !lower_alnum(s[0]))
        return false;
    while (i < len) {
        while (i < len && lower_alnum(s[i]))
            i++;
        if (i == len)
            return true;
        size_t sep = i;
        if (s[i] == '.')
            i++;
        else if (s[i] == '_')
            i += (i + 1 < len && s[i + 1] == '_') ? 2 : 1;
        else
            while (i < len && s[i] == '-')
                i++;
        if (i == sep || i == len || !lower_alnum(s[i]))
            return false;
    }
    return true;
}

/* domain-component(.domain-component)*(:port)? */
static bool valid_domain(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t host = colon ? (size_t)(colon - s) : len;
    if (colon) {
        if (colon + 1 == s + len)
            return false;
        for (const char *p = colon + 1; p < s + len; p++)
            if (!is_digit(*p))
                return false;
    }
    size_t i = 0;
    while (i < host) {
        size_t start = i;
        while (i < host && (alnum(s[i]) || s[i] == '-'))
            i++;
        if (i == start || !alnum(s[start]) || !alnum(s[i - 1]))
            return false;
        if (i < host) {
            if (s[i] != '.')
                return false;
            i++;
            if (i == host)
                return false;
        }
    }
    return host > 0;
}

static bool valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool w = alnum(c) || c == '_';
        if (!(w || (i > 0 && (c == '.' || c == '-'))))
            return false;
    }
    return true;
}

static bool valid_digest(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return false;
    /* algorithm: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* */
    bool comp_start = true;
    for (const char *p = s; p < colon; p++) {
        if (comp_start) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                return false;
            comp_start = false;
        } else if (*p == '-' || *p == '_' || *p == '+' || *p == '.') {
            comp_start = true;
        } else if (!alnum(*p)) {
            return false;
        }
    }
    if (comp_start)
        return false;
    size_t hex = 0;
    for (const char *p = colon + 1; *p; p++, hex++)
        if (!(is_digit(*p) || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return false;
    return hex >= 32;
}

int compose_util_image_with_tag(const char *image, char **ret)
{
    size_t len = strlen(image);
    if (len == 0 || len > 1024)
        return -EINVAL;
    /* A bare 64-hex identifier is not a repository name. */
    if (len == 64) {
        bool hex = true;
        for (size_t i = 0; i < len; i++)
            hex = hex && (is_digit(image[i]) || (image[i] >= 'a' && image[i] <= 'f'));
        if (hex)
            return -EINVAL;
    }
    _cleanup_free_ char *s = strdup(image);
    if (!s)
        return -ENOMEM;
    char *digest = strchr(s, '@');
    if (digest) {
        *digest++ = '\0';
        if (!valid_digest(digest))
            return -EINVAL;
    }
    char *tag = NULL;
    char *last_slash = strrchr(s, '/');
    char *colon = strrchr(last_slash ? last_slash : s, ':');
    if (colon) {
        *colon = '\0';
        tag = colon + 1;
        if (!valid_tag(tag))
            return -EINVAL;
    }
    /* Split the domain off the name. */
    const char *domain = "docker.io";
    char *remainder = s;
    char *slash = strchr(s, '/');
    if (slash) {
        size_t dl = (size_t)(slash - s);
        bool has_dot_colon = memchr(s, '.', dl) || memchr(s, ':', dl);
        bool localhost = dl == 9 && memcmp(s, "localhost", 9) == 0;
        bool upper = false;
        for (size_t i = 0; i < dl; i++)
            upper = upper || (s[i] >= 'A' && s[i] <= 'Z');
        if (has_dot_colon || localhost || upper) {
            *slash = '\0';
            domain = s;
            remainder = slash + 1;
            if (!valid_domain(domain, strlen(domain)))
                return -EINVAL;
            if (streq(domain, "index.docker.io"))
                domain = "docker.io";
        }
    }
    if (!*remainder)
        return -EINVAL;
    /* Path components. */
    size_t plen = strlen(remainder);
    for (size_t i = 0, start = 0; i <= plen; i++) {
        if (i == plen || remainder[i] == '/') {
            if (!valid_path_component(remainder + start, i - start))
                return -EINVAL;
            start = i + 1;
        }
    }
    bool docker_io = streq(domain, "docker.io");
    struct buf out = BUF_INIT(4096);
    int r = 0;
    if (!docker_io)
        r = buf_printf(&out, "%s/", domain);
    /* Familiar form: docker.io/library/x is x. */
    bool library =
        docker_io && strncmp(remainder, "library/", 8) == 0 && !strchr(remainder + 8, '/');
    if (r == 0)
        r = buf_puts(&out, library ? remainder + 8 : remainder);
    size_t full = strlen(domain) + 1 + plen + (docker_io && !strchr(remainder, '/') ? 8 : 0);
    if (full > 255)
        r = -EINVAL;
    if (r == 0 && tag)
        r = buf_printf(&out, ":%s", tag);
    if (r == 0 && !tag && !digest)
        r = buf_puts(&out, ":latest");
    if (r == 0 && digest)
        r = buf_printf(&out, "@%s", digest);
    if (r < 0) {
        buf_release(&out);
        return r == -EMSGSIZE ? -EINVAL : r;
    }
    *ret = buf_detach(&out, NULL);
    return *ret ? 0 : -ENOMEM;
}

/* ---- a string map ----------------------------------------------------------------------- */

static uint64_t map_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct compose_util_map_entry *map_find(const struct compose_util_map *m, const char *key,
                                               size_t len)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = map_hash(key, len) & mask;; i = (i + 1) & mask) {
        struct compose_util_map_entry *e = &m->v[i];
        if (!e->key)
            return NULL;
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

bool compose_util_map_get(const struct compose_util_map *m, const char *key, size_t len,
                          uintptr_t *ret_value)
{
    const struct compose_util_map_entry *e = map_find(m, key, len);
    if (e && ret_value)
        *ret_value = e->value;
    return e != NULL;
}

int compose_util_map_put(struct compose_util_map *m, const char *key, size_t len, uintptr_t value)
{
    struct compose_util_map_entry *e = map_find(m, key, len);
    if (e) {
        e->value = value;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct compose_util_map_entry *nv = calloc(ncap, sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->v[i].key)
                continue;
            size_t j = map_hash(m->v[i].key, m->v[i].len) & (ncap - 1);
            while (nv[j].key)
                j = (j + 1) & (ncap - 1);
            nv[j] = m->v[i];
        }
        free(m->v);
        m->v = nv;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1;
    size_t i = map_hash(key, len) & mask;
    while (m->v[i].key)
        i = (i + 1) & mask;
    m->v[i] = (struct compose_util_map_entry){.key = key, .len = len, .value = value};
    m->n++;
    return 0;
}

void compose_util_map_release(struct compose_util_map *m)
{
    free(m->v);
    *m = (struct compose_util_map){0};
}

/* ---- paths ------------------------------------------------------------------------------ */

char *compose_util_path_join(struct compose_arena *a, const char *dir, const char *rel)
{
    size_t dl = strlen(dir), rl = strlen(rel), n = dl + 1 + rl;
    char *p = compose_arena_printf(a, "%s%s%s", dir, dl && rl ? "/" : "", rel);
    char *out = compose_arena_alloc(a, n + 2);
    if (!p || !out)
        return NULL;
    n = strlen(p);
    bool rooted = p[0] == '/';
    size_t r = 0, w = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        r = dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            for (; r < n && p[r] != '/'; r++)
                out[w++] = p[r];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

static bool is_slash(char c)
{
    return c == '/' || c == '\\';
}

/* Go's volumeNameLen as docker's windows_path.go has it. */
static size_t windows_volume_len(const char *p)
{
    size_t l = strlen(p);
    if (l < 2)
        return 0;
    if (p[1] == ':' && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
        return 2;
    if (l >= 5 && is_slash(p[0]) && is_slash(p[1]) && !is_slash(p[2]) && p[2] != '.') {
        for (size_t n = 3; n < l - 1; n++) {
            if (!is_slash(p[n]))
                continue;
            n++;
            if (is_slash(p[n]) || p[n] == '.')
                break;
            for (; n < l; n++)
                if (is_slash(p[n]))
                    break;
            return n;
        }
    }
    return 0;
}

bool compose_util_windows_abs(const char *s)
{
    size_t l = windows_volume_len(s);
    return l > 0 && s[l] && is_slash(s[l]);
}
