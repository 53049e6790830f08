#include "drivers/cgroup/procfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p;
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

static bool is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

int procfs_parse_u64(const char **p, const char *end, uint64_t *ret)
{
    const char *q = skip_blanks(*p, end);
    if (q >= end || !is_digit(*q))
        return -EINVAL;
    /* Up to 19 digits cannot overflow: no check per digit (this loop is most of the parsing). */
    const char *safe = end - q > 19 ? q + 19 : end;
    uint64_t v = 0;
    for (; q < safe && is_digit(*q); q++)
        v = v * 10 + (uint64_t)(*q - '0');
    for (; q < end && is_digit(*q); q++) {
        uint64_t d = (uint64_t)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *p = q;
    *ret = v;
    return 0;
}

/* A decimal with an optional fraction ("0.15", "340.73"); enough for loadavg and uptime. */
static int parse_decimal(const char **p, const char *end, double *ret)
{
    uint64_t ip;
    int r = procfs_parse_u64(p, end, &ip);
    if (r < 0)
        return r;
    double v = (double)ip;
    const char *q = *p;
    if (q < end && *q == '.') {
        double scale = 0.1;
        for (q++; q < end && *q >= '0' && *q <= '9'; q++, scale /= 10)
            v += (*q - '0') * scale;
    }
    *p = q;
    *ret = v;
    return 0;
}

int procfs_parse_keyed(const char *s, size_t n, const struct procfs_key *keys, size_t nkeys,
                       uint32_t *ret_found)
{
    if (nkeys > 32)
        return -EINVAL;
    const char *end = s + n;
    uint32_t found = 0;
    uint64_t vals[32];
    size_t lens[32];
    for (size_t i = 0; i < nkeys; i++)
        lens[i] = strlen(keys[i].key);
    for (const char *p = s; p < end;) {
        const char *le = line_end(p, end);
        const char *k = p;
        while (p < le && !is_blank(*p) && *p != ':')
            p++;
        size_t klen = (size_t)(p - k);
        for (size_t i = 0; klen && i < nkeys; i++) {
            /* memcmp, not strncmp: the text may hold NUL bytes */
            if (lens[i] != klen || memcmp(keys[i].key, k, klen) != 0)
                continue;
            if (p < le && *p == ':')
                p++;
            int r = procfs_parse_u64(&p, le, &vals[i]);
            if (r < 0)
                return r;
            found |= 1u << i;
            break;
        }
        p = le + (le < end);
    }
    for (size_t i = 0; i < nkeys; i++)
        if (found & (1u << i))
            *keys[i].dst = vals[i];
    *ret_found = found;
    return 0;
}

int procfs_parse_stat(const char *s, size_t n, struct procfs_stat *ret)
{
    const char *end = s + n;
    if (n < 4 || memcmp(s, "cpu ", 4) != 0)
        return -EINVAL;
    struct procfs_stat st = {0};
    uint64_t *f[] = {&st.cpu.user,   &st.cpu.nice, &st.cpu.system,  &st.cpu.idle,
                     &st.cpu.iowait, &st.cpu.irq,  &st.cpu.softirq, &st.cpu.steal};
    const char *p = s + 4;
    const char *le = line_end(p, end);
    for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
        int r = procfs_parse_u64(&p, le, f[i]);
        if (r == -EINVAL && i >= 4 && skip_blanks(p, le) == le)
            break; /* older kernels: fewer columns */
        if (r < 0)
            return r;
    }
    for (p = le + (le < end); p < end;) {
        le = line_end(p, end);
        if (le - p > 3 && memcmp(p, "cpu", 3) == 0 && p[3] >= '0' && p[3] <= '9')
            st.ncpu++;
        else if (st.ncpu)
            break; /* the cpuN lines come first and together */
        p = le + (le < end);
    }
    *ret = st;
    return 0;
}

int procfs_parse_meminfo(const char *s, size_t n, struct procfs_meminfo *ret)
{
    struct procfs_meminfo m = {0};
    const struct procfs_key keys[] = {
        {"MemTotal", &m.total},     {"MemFree", &m.free},  {"MemAvailable", &m.available},
        {"Buffers", &m.buffers},    {"Cached", &m.cached}, {"SwapTotal", &m.swap_total},
        {"SwapFree", &m.swap_free},
    };
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (!(found & 1u))
        return -EINVAL; /* MemTotal is always there */
    /* Every one of these is in kB. MemAvailable is missing before Linux 3.14: free + cached
     * is the usual stand-in. */
    if (!(found & 4u))
        m.available = m.free + m.cached;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (*keys[i].dst > UINT64_MAX / 1024)
            return -ERANGE;
        *keys[i].dst *= 1024;
    }
    *ret = m;
    return 0;
}

int procfs_parse_loadavg(const char *s, size_t n, struct procfs_loadavg *ret)
{
    const char *p = s, *end = s + n;
    struct procfs_loadavg l;
    int r;
    if ((r = parse_decimal(&p, end, &l.load1)) < 0 || (r = parse_decimal(&p, end, &l.load5)) < 0 ||
        (r = parse_decimal(&p, end, &l.load15)) < 0)
        return r;
    *ret = l;
    return 0;
}

int procfs_parse_uptime(const char *s, size_t n, double *ret)
{
    const char *p = s;
    return parse_decimal(&p, s + n, ret);
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=12345" */
static int psi_line_total(const char *p, const char *le, uint64_t *ret)
{
    static const char key[] = " total=";
    for (; le - p >= (ptrdiff_t)(sizeof(key) - 1); p++) {
        if (memcmp(p, key, sizeof(key) - 1) == 0) {
            p += sizeof(key) - 1;
            return procfs_parse_u64(&p, le, ret);
        }
    }
    return -EINVAL;
}

int procfs_parse_psi(const char *s, size_t n, struct procfs_psi *ret)
{
    const char *end = s + n;
    struct procfs_psi psi = {0};
    bool some = false;
    for (const char *p = s; p < end;) {
        const char *le = line_end(p, end);
        int r = 0;
        if (le - p > 5 && memcmp(p, "some ", 5) == 0) {
            r = psi_line_total(p + 4, le, &psi.some_total);
            some = true;
        } else if (le - p > 5 && memcmp(p, "full ", 5) == 0) {
            r = psi_line_total(p + 4, le, &psi.full_total);
            psi.has_full = true;
        } else if (le > p) {
            return -EINVAL;
        }
        if (r < 0)
            return r;
        p = le + (le < end);
    }
    if (!some)
        return -EINVAL;
    *ret = psi;
    return 0;
}

/* Copies the blank-delimited word at *p (ended by a blank or stop) into name. Returns 1, 0 when
 * it does not fit (the caller skips the line), or -EINVAL when there is no word. */
static int take_name(const char **p, const char *end, char stop, char name[PROCFS_NAME_MAX])
{
    const char *q = skip_blanks(*p, end);
    const char *w = q;
    while (q < end && !is_blank(*q) && *q != stop && *q != '\n')
        q++;
    size_t len = (size_t)(q - w);
    *p = q;
    if (len == 0)
        return -EINVAL;
    if (len >= PROCFS_NAME_MAX)
        return 0;
    memcpy(name, w, len);
    name[len] = '\0';
    return 1;
}

int procfs_parse_diskstats(const char *s, size_t n,
                           int (*fn)(void *ud, const struct procfs_disk *d), void *ud)
{
    const char *end = s + n;
    for (const char *p = s; p < end;) {
        const char *le = line_end(p, end);
        if (skip_blanks(p, le) == le) {
            p = le + (le < end);
            continue;
        }
        struct procfs_disk d = {0};
        uint64_t major, minor, v[10];
        int r;
        if ((r = procfs_parse_u64(&p, le, &major)) < 0 ||
            (r = procfs_parse_u64(&p, le, &minor)) < 0)
            return r;
        if (major > UINT32_MAX || minor > UINT32_MAX)
            return -ERANGE;
        int named = take_name(&p, le, '\0', d.name);
        if (named < 0)
            return named;
        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
            if ((r = procfs_parse_u64(&p, le, &v[i])) < 0)
                return r;
        if (named > 0) {
            d.major = (uint32_t)major;
            d.minor = (uint32_t)minor;
            d.reads = v[0];
            d.read_sectors = v[2];
            d.writes = v[4];
            d.write_sectors = v[6];
            d.io_ms = v[9];
            if ((r = fn(ud, &d)) != 0)
                return r;
        }
        p = le + (le < end);
    }
    return 0;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool procfs_disk_is_reported(const char *name)
{
    static const char *const skip[] = {"loop", "ram", "zram", "fd", "sr"};
    for (size_t i = 0; i < ARRAY_SIZE(skip); i++)
        if (has_prefix(name, skip[i]) && (all_digits(name + strlen(skip[i]))))
            return false;
    /* sda1, vdb2, xvda1, hda3: a letter-named disk followed by a partition number. */
    const char *p = name;
    if (has_prefix(p, "xvd"))
        p += 3;
    else if ((p[0] == 's' || p[0] == 'v' || p[0] == 'h') && p[1] == 'd')
        p += 2;
    else
        p = NULL;
    if (p) {
        const char *q = p;
        while (*q >= 'a' && *q <= 'z')
            q++;
        return !(q > p && all_digits(q));
    }
    /* nvme0n1p1, mmcblk0p1: "p" and a number after a name that ends in a digit. */
    if (has_prefix(name, "nvme") || has_prefix(name, "mmcblk")) {
        const char *pp = strrchr(name, 'p');
        return !(pp && pp > name && pp[-1] >= '0' && pp[-1] <= '9' && all_digits(pp + 1));
    }
    return true;
}

int procfs_parse_netdev(const char *s, size_t n, int (*fn)(void *ud, const struct procfs_netdev *d),
                        void *ud)
{
    return procfs_parse_netdev_skip(s, n, NULL, fn, ud);
}

int procfs_parse_netdev_skip(const char *s, size_t n, bool (*skip)(const char *name),
                             int (*fn)(void *ud, const struct procfs_netdev *d), void *ud)
{
    const char *end = s + n;
    for (const char *p = s; p < end;) {
        const char *le = line_end(p, end);
        const char *colon = memchr(p, ':', (size_t)(le - p));
        /* The two header lines have '|' and no ':'. */
        if (!colon) {
            if (memchr(p, '|', (size_t)(le - p)) || skip_blanks(p, le) == le) {
                p = le + (le < end);
                continue;
            }
            return -EINVAL;
        }
        struct procfs_netdev d = {0};
        const char *q = p;
        int named = take_name(&q, colon, ':', d.name);
        if (named < 0)
            return named;
        if (skip_blanks(q, colon) != colon)
            return -EINVAL; /* interface names have no blanks */
        if (named > 0 && skip && skip(d.name)) {
            p = le + (le < end);
            continue;
        }
        q = colon + 1;
        uint64_t v[16];
        for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
            int r = procfs_parse_u64(&q, le, &v[i]);
            if (r < 0)
                return r;
        }
        if (named > 0) {
            d.rx_bytes = v[0];
            d.rx_packets = v[1];
            d.rx_errs = v[2];
            d.rx_drop = v[3];
            d.tx_bytes = v[8];
            d.tx_packets = v[9];
            d.tx_errs = v[10];
            d.tx_drop = v[11];
            int r = fn(ud, &d);
            if (r != 0)
                return r;
        }
        p = le + (le < end);
    }
    return 0;
}
