#include "drivers/cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

/* ---- the files ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum cgroup_ctrl ctrl;
    enum cgroup_tier tier;
} file_info[CGROUP_FILE_MAX_] = {
    [CGROUP_V2_CPU_STAT] = {"cpu.stat", CGROUP_CTRL_UNIFIED, CGROUP_TIER_FAST},
    [CGROUP_V2_CPU_MAX] = {"cpu.max", CGROUP_CTRL_UNIFIED, CGROUP_TIER_LIMITS},
    [CGROUP_V2_MEMORY_CURRENT] = {"memory.current", CGROUP_CTRL_UNIFIED, CGROUP_TIER_FAST},
    [CGROUP_V2_MEMORY_MAX] = {"memory.max", CGROUP_CTRL_UNIFIED, CGROUP_TIER_LIMITS},
    [CGROUP_V2_MEMORY_PEAK] = {"memory.peak", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_V2_MEMORY_STAT] = {"memory.stat", CGROUP_CTRL_UNIFIED, CGROUP_TIER_MEMSTAT},
    [CGROUP_V2_MEMORY_EVENTS] = {"memory.events", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_V2_IO_STAT] = {"io.stat", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_V2_PIDS_CURRENT] = {"pids.current", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_V2_PIDS_MAX] = {"pids.max", CGROUP_CTRL_UNIFIED, CGROUP_TIER_LIMITS},
    [CGROUP_CPU_PRESSURE] = {"cpu.pressure", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_MEMORY_PRESSURE] = {"memory.pressure", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_IO_PRESSURE] = {"io.pressure", CGROUP_CTRL_UNIFIED, CGROUP_TIER_DETAIL},
    [CGROUP_V1_CPUACCT_USAGE] = {"cpuacct.usage", CGROUP_CTRL_CPUACCT, CGROUP_TIER_FAST},
    [CGROUP_V1_CPUACCT_STAT] = {"cpuacct.stat", CGROUP_CTRL_CPUACCT, CGROUP_TIER_DETAIL},
    [CGROUP_V1_CPU_STAT] = {"cpu.stat", CGROUP_CTRL_CPU, CGROUP_TIER_THROTTLE},
    [CGROUP_V1_CPU_CFS_QUOTA] = {"cpu.cfs_quota_us", CGROUP_CTRL_CPU, CGROUP_TIER_LIMITS},
    [CGROUP_V1_CPU_CFS_PERIOD] = {"cpu.cfs_period_us", CGROUP_CTRL_CPU, CGROUP_TIER_LIMITS},
    [CGROUP_V1_MEMORY_USAGE] = {"memory.usage_in_bytes", CGROUP_CTRL_MEMORY, CGROUP_TIER_FAST},
    [CGROUP_V1_MEMORY_LIMIT] = {"memory.limit_in_bytes", CGROUP_CTRL_MEMORY, CGROUP_TIER_LIMITS},
    [CGROUP_V1_MEMORY_MAX_USAGE] = {"memory.max_usage_in_bytes", CGROUP_CTRL_MEMORY,
                                    CGROUP_TIER_DETAIL},
    [CGROUP_V1_MEMORY_STAT] = {"memory.stat", CGROUP_CTRL_MEMORY, CGROUP_TIER_MEMSTAT},
    [CGROUP_V1_MEMORY_OOM_CONTROL] = {"memory.oom_control", CGROUP_CTRL_MEMORY, CGROUP_TIER_DETAIL},
    /* The throttle layer sees every bio of the cgroup whatever the device's I/O scheduler (the
     * bfq files count only devices scheduled by bfq); dockerd falls back to the same files. */
    [CGROUP_V1_BLKIO_BYTES] = {"blkio.throttle.io_service_bytes_recursive", CGROUP_CTRL_BLKIO,
                               CGROUP_TIER_DETAIL},
    [CGROUP_V1_BLKIO_IOS] = {"blkio.throttle.io_serviced_recursive", CGROUP_CTRL_BLKIO,
                             CGROUP_TIER_DETAIL},
    [CGROUP_V1_PIDS_CURRENT] = {"pids.current", CGROUP_CTRL_PIDS, CGROUP_TIER_DETAIL},
    [CGROUP_V1_PIDS_MAX] = {"pids.max", CGROUP_CTRL_PIDS, CGROUP_TIER_LIMITS},
};

static const enum cgroup_file v2_files[] = {
    CGROUP_V2_CPU_STAT,     CGROUP_V2_CPU_MAX,     CGROUP_V2_MEMORY_CURRENT, CGROUP_V2_MEMORY_MAX,
    CGROUP_V2_MEMORY_PEAK,  CGROUP_V2_MEMORY_STAT, CGROUP_V2_MEMORY_EVENTS,  CGROUP_V2_IO_STAT,
    CGROUP_V2_PIDS_CURRENT, CGROUP_V2_PIDS_MAX,    CGROUP_CPU_PRESSURE,      CGROUP_MEMORY_PRESSURE,
    CGROUP_IO_PRESSURE,
};

static const enum cgroup_file v1_files[] = {
    CGROUP_V1_CPUACCT_USAGE,      CGROUP_V1_CPUACCT_STAT,     CGROUP_V1_CPU_STAT,
    CGROUP_V1_CPU_CFS_QUOTA,      CGROUP_V1_CPU_CFS_PERIOD,   CGROUP_V1_MEMORY_USAGE,
    CGROUP_V1_MEMORY_LIMIT,       CGROUP_V1_MEMORY_MAX_USAGE, CGROUP_V1_MEMORY_STAT,
    CGROUP_V1_MEMORY_OOM_CONTROL, CGROUP_V1_BLKIO_BYTES,      CGROUP_V1_BLKIO_IOS,
    CGROUP_V1_PIDS_CURRENT,       CGROUP_V1_PIDS_MAX,         CGROUP_CPU_PRESSURE,
    CGROUP_MEMORY_PRESSURE,       CGROUP_IO_PRESSURE,
};

static const char *const ctrl_names[CGROUP_CTRL_MAX_] = {
    [CGROUP_CTRL_UNIFIED] = "",        [CGROUP_CTRL_CPU] = "cpu",
    [CGROUP_CTRL_CPUACCT] = "cpuacct", [CGROUP_CTRL_MEMORY] = "memory",
    [CGROUP_CTRL_BLKIO] = "blkio",     [CGROUP_CTRL_PIDS] = "pids",
};

const char *cgroup_file_name(enum cgroup_file f)
{
    return f < CGROUP_FILE_MAX_ ? file_info[f].name : "?";
}

enum cgroup_ctrl cgroup_file_ctrl(enum cgroup_file f)
{
    return file_info[f].ctrl;
}

enum cgroup_tier cgroup_file_tier(enum cgroup_file f)
{
    return file_info[f].tier;
}

/* ---- parsers ------------------------------------------------------------------------------- */

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
        p++;
    return p;
}

/* A file holding one number, or "max" when max_ok (→ CGROUP_UNLIMITED). */
static int parse_single(const char *s, size_t n, bool max_ok, uint64_t *ret)
{
    const char *p = s, *end = s + n;
    uint64_t v;
    p = skip_space(p, end);
    if (max_ok && end - p >= 3 && memcmp(p, "max", 3) == 0) {
        v = CGROUP_UNLIMITED;
        p += 3;
    } else {
        int r = procfs_parse_u64(&p, end, &v);
        if (r < 0)
            return r;
    }
    if (skip_space(p, end) != end)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_signed(const char *s, size_t n, int64_t *ret)
{
    const char *p = skip_space(s, s + n), *end = s + n;
    bool neg = p < end && *p == '-';
    uint64_t v;
    int r = procfs_parse_u64((p += neg, &p), end, &v);
    if (r < 0)
        return r;
    if (skip_space(p, end) != end)
        return -EINVAL;
    if (v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *ret = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *ret)
{
    if (b && a > UINT64_MAX / b)
        return -ERANGE;
    *ret = a * b;
    return 0;
}

static int parse_v2_cpu_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t usage = 0, user = 0, sys = 0, periods = 0, throttled = 0, throttled_us = 0;
    const struct procfs_key keys[] = {
        {"usage_usec", &usage},   {"user_usec", &user},         {"system_usec", &sys},
        {"nr_periods", &periods}, {"nr_throttled", &throttled}, {"throttled_usec", &throttled_us},
    };
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (!(found & 1u))
        return -EINVAL;
    uint64_t usage_ns, user_ns, sys_ns, thr_ns;
    if (mul_checked(usage, 1000, &usage_ns) < 0 || mul_checked(user, 1000, &user_ns) < 0 ||
        mul_checked(sys, 1000, &sys_ns) < 0 || mul_checked(throttled_us, 1000, &thr_ns) < 0)
        return -ERANGE;
    st->cpu_usage_ns = usage_ns;
    st->have |= CGROUP_HAVE_CPU_USAGE;
    if ((found & 6u) == 6u) {
        st->cpu_user_ns = user_ns;
        st->cpu_system_ns = sys_ns;
        st->have |= CGROUP_HAVE_CPU_SPLIT;
    }
    /* The throttling keys are there only when the cpu controller is enabled for the cgroup. */
    if ((found & 0x38u) == 0x38u) {
        st->nr_periods = periods;
        st->nr_throttled = throttled;
        st->throttled_ns = thr_ns;
        st->have |= CGROUP_HAVE_THROTTLE;
    }
    return 0;
}

/* cpu.max: "$MAX $PERIOD", $MAX "max" for no limit. */
static int parse_v2_cpu_max(const char *s, size_t n, struct cgroup_stats *st)
{
    const char *p = skip_space(s, s + n), *end = s + n;
    int64_t quota;
    uint64_t q, period;
    int r;
    if (end - p >= 3 && memcmp(p, "max", 3) == 0) {
        quota = -1;
        p += 3;
    } else {
        if ((r = procfs_parse_u64(&p, end, &q)) < 0)
            return r;
        if (q > (uint64_t)INT64_MAX)
            return -ERANGE;
        quota = (int64_t)q;
    }
    if ((r = procfs_parse_u64(&p, end, &period)) < 0)
        return r;
    if (skip_space(p, end) != end)
        return -EINVAL;
    st->cpu_quota_us = quota;
    st->cpu_period_us = period;
    st->have |= CGROUP_HAVE_CPU_QUOTA | CGROUP_HAVE_CPU_PERIOD;
    return 0;
}

static int parse_v2_memory_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t anon = 0, file = 0, shmem = 0, inact = 0, act = 0, slab = 0, sock = 0, srec = 0,
             sunrec = 0;
    const struct procfs_key keys[] = {
        {"anon", &anon},
        {"file", &file},
        {"inactive_file", &inact},
        {"active_file", &act},
        {"shmem", &shmem},
        {"sock", &sock},
        {"slab", &slab},
        {"slab_reclaimable", &srec},
        {"slab_unreclaimable", &sunrec},
    };
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if ((found & 7u) != 7u)
        return -EINVAL;
    st->mem_anon = anon;
    st->mem_file = file;
    st->mem_inactive_file = inact;
    st->mem_active_file = act;
    st->mem_shmem = shmem;
    st->have |= CGROUP_HAVE_MEM_STAT;
    /* "slab" is the sum of the two slab_* keys; kernels before 5.9 print only those. */
    if (found & (1u << 5) && found & ((1u << 6) | (1u << 7) | (1u << 8))) {
        st->mem_sock = sock;
        st->mem_slab = (found & (1u << 6)) ? slab : srec + sunrec;
        st->have |= CGROUP_HAVE_MEM_SLAB_SOCK;
    }
    return 0;
}

static int parse_v2_memory_events(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t oom = 0, oom_kill = 0;
    const struct procfs_key keys[] = {{"oom", &oom}, {"oom_kill", &oom_kill}};
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (found & 1u) {
        st->mem_oom = oom;
        st->have |= CGROUP_HAVE_MEM_OOM;
    }
    if (found & 2u) {
        st->mem_oom_kill = oom_kill;
        st->have |= CGROUP_HAVE_MEM_OOM_KILL;
    }
    return 0;
}

static int add_checked(uint64_t *acc, uint64_t v)
{
    if (*acc > UINT64_MAX - v)
        return -ERANGE;
    *acc += v;
    return 0;
}

/* io.stat: one line per device, "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0
 * dios=0"; an empty file when the cgroup did no I/O. */
static int parse_v2_io_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    static const char *const keys[] = {"rbytes=", "wbytes=", "rios=", "wios="};
    uint64_t sum[4] = {0};
    const char *end = s + n;
    for (const char *p = s; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le)
            le = end;
        const char *q = skip_space(p, le);
        if (q < le) {
            uint64_t major, minor;
            int r;
            if ((r = procfs_parse_u64(&q, le, &major)) < 0)
                return r;
            if (q >= le || *q++ != ':')
                return -EINVAL;
            if ((r = procfs_parse_u64(&q, le, &minor)) < 0)
                return r;
            while ((q = skip_space(q, le)) < le) {
                const char *w = q;
                while (q < le && *q != ' ')
                    q++;
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                    size_t kl = strlen(keys[i]);
                    if ((size_t)(q - w) > kl && memcmp(w, keys[i], kl) == 0) {
                        const char *v = w + kl;
                        uint64_t x;
                        if ((r = procfs_parse_u64(&v, q, &x)) < 0)
                            return r;
                        if (v != q)
                            return -EINVAL;
                        if ((r = add_checked(&sum[i], x)) < 0)
                            return r;
                    }
                }
            }
        }
        p = le + (le < end);
    }
    st->io_read_bytes = sum[0];
    st->io_write_bytes = sum[1];
    st->io_read_ops = sum[2];
    st->io_write_ops = sum[3];
    st->have |= CGROUP_HAVE_IO_BYTES | CGROUP_HAVE_IO_OPS;
    return 0;
}

static int parse_psi(enum cgroup_file f, const char *s, size_t n, struct cgroup_stats *st)
{
    struct procfs_psi psi;
    int r = procfs_parse_psi(s, n, &psi);
    if (r < 0)
        return r;
    if (f == CGROUP_CPU_PRESSURE) {
        st->psi_cpu = psi;
        st->have |= CGROUP_HAVE_PSI_CPU;
    } else if (f == CGROUP_MEMORY_PRESSURE) {
        st->psi_memory = psi;
        st->have |= CGROUP_HAVE_PSI_MEMORY;
    } else {
        st->psi_io = psi;
        st->have |= CGROUP_HAVE_PSI_IO;
    }
    return 0;
}

static uint64_t user_hz_ns(void)
{
    static uint64_t ns;
    if (!ns) {
        long hz = sysconf(_SC_CLK_TCK);
        ns = 1000000000ull / (uint64_t)(hz > 0 ? hz : 100);
    }
    return ns;
}

/* cpuacct.stat: "user 123\nsystem 45\n" in USER_HZ ticks. */
static int parse_v1_cpuacct_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t user, sys;
    const struct procfs_key keys[] = {{"user", &user}, {"system", &sys}};
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (found != 3u)
        return -EINVAL;
    uint64_t user_ns, sys_ns;
    if (mul_checked(user, user_hz_ns(), &user_ns) < 0 || mul_checked(sys, user_hz_ns(), &sys_ns))
        return -ERANGE;
    st->cpu_user_ns = user_ns;
    st->cpu_system_ns = sys_ns;
    st->have |= CGROUP_HAVE_CPU_SPLIT;
    return 0;
}

static int parse_v1_cpu_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t periods, throttled, throttled_ns;
    const struct procfs_key keys[] = {
        {"nr_periods", &periods},
        {"nr_throttled", &throttled},
        {"throttled_time", &throttled_ns},
    };
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (found != 7u)
        return -EINVAL;
    st->nr_periods = periods;
    st->nr_throttled = throttled;
    st->throttled_ns = throttled_ns;
    st->have |= CGROUP_HAVE_THROTTLE;
    return 0;
}

static int parse_v1_memory_stat(const char *s, size_t n, struct cgroup_stats *st)
{
    /* The total_* keys count the whole subtree, as docker stats does. */
    uint64_t rss, cache, shmem = 0, inact, act = 0;
    const struct procfs_key keys[] = {
        {"total_rss", &rss},         {"total_cache", &cache}, {"total_inactive_file", &inact},
        {"total_active_file", &act}, {"total_shmem", &shmem},
    };
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if ((found & 7u) != 7u)
        return -EINVAL;
    st->mem_anon = rss;
    st->mem_file = cache;
    st->mem_inactive_file = inact;
    st->mem_active_file = act;
    st->mem_shmem = shmem;
    st->have |= CGROUP_HAVE_MEM_STAT;
    return 0;
}

/* memory.oom_control: "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" (oom_kill since 4.13). */
static int parse_v1_oom_control(const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t kills;
    const struct procfs_key keys[] = {{"oom_kill", &kills}};
    uint32_t found;
    int r = procfs_parse_keyed(s, n, keys, ARRAY_SIZE(keys), &found);
    if (r < 0)
        return r;
    if (found) {
        st->mem_oom_kill = kills;
        st->have |= CGROUP_HAVE_MEM_OOM_KILL;
    }
    return 0;
}

/* blkio.throttle.*: "8:0 Read 4096\n8:0 Write 0\n8:0 Sync …\n…\nTotal 4096\n". */
static int parse_v1_blkio(enum cgroup_file f, const char *s, size_t n, struct cgroup_stats *st)
{
    uint64_t rd = 0, wr = 0;
    const char *end = s + n;
    for (const char *p = s; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le)
            le = end;
        const char *q = skip_space(p, le);
        if (q < le && *q >= '0' && *q <= '9') {
            uint64_t major, minor, v;
            int r;
            if ((r = procfs_parse_u64(&q, le, &major)) < 0)
                return r;
            if (q >= le || *q++ != ':')
                return -EINVAL;
            if ((r = procfs_parse_u64(&q, le, &minor)) < 0)
                return r;
            q = skip_space(q, le);
            const char *op = q;
            while (q < le && *q != ' ')
                q++;
            size_t oplen = (size_t)(q - op);
            if ((r = procfs_parse_u64(&q, le, &v)) < 0)
                return r;
            if (oplen == 4 && memcmp(op, "Read", 4) == 0)
                r = add_checked(&rd, v);
            else if (oplen == 5 && memcmp(op, "Write", 5) == 0)
                r = add_checked(&wr, v);
            if (r < 0)
                return r;
        } else if (q < le && (le - q < 6 || memcmp(q, "Total ", 6) != 0)) {
            return -EINVAL;
        }
        p = le + (le < end);
    }
    if (f == CGROUP_V1_BLKIO_BYTES) {
        st->io_read_bytes = rd;
        st->io_write_bytes = wr;
        st->have |= CGROUP_HAVE_IO_BYTES;
    } else {
        st->io_read_ops = rd;
        st->io_write_ops = wr;
        st->have |= CGROUP_HAVE_IO_OPS;
    }
    return 0;
}

/* memory.limit_in_bytes of a cgroup without a limit is PAGE_COUNTER_MAX pages:
 * 9223372036854771712 with 4 KiB pages. Anything from 2^62 up is "no limit". */
#define V1_UNLIMITED_FROM (UINT64_C(1) << 62)

/* A file of one number: into *field, and its bit into st->have. */
static int take_single(const char *text, size_t len, bool max_ok, uint64_t *field, uint32_t bit,
                       struct cgroup_stats *st)
{
    uint64_t v;
    int r = parse_single(text, len, max_ok, &v);
    if (r < 0)
        return r;
    *field = v;
    st->have |= bit;
    return 0;
}

int cgroup_parse(enum cgroup_file f, const char *text, size_t len, struct cgroup_stats *st)
{
    uint64_t v;
    int64_t sv;
    int r;
    switch (f) {
    case CGROUP_V2_CPU_STAT:
        return parse_v2_cpu_stat(text, len, st);
    case CGROUP_V2_CPU_MAX:
        return parse_v2_cpu_max(text, len, st);
    case CGROUP_V2_MEMORY_CURRENT:
    case CGROUP_V1_MEMORY_USAGE:
        return take_single(text, len, false, &st->mem_current, CGROUP_HAVE_MEM_CURRENT, st);
    case CGROUP_V2_MEMORY_MAX:
    case CGROUP_V1_MEMORY_LIMIT:
        if ((r = parse_single(text, len, f == CGROUP_V2_MEMORY_MAX, &v)) < 0)
            return r;
        st->mem_limit = v >= V1_UNLIMITED_FROM ? CGROUP_UNLIMITED : v;
        st->have |= CGROUP_HAVE_MEM_LIMIT;
        return 0;
    case CGROUP_V2_MEMORY_PEAK:
    case CGROUP_V1_MEMORY_MAX_USAGE:
        return take_single(text, len, false, &st->mem_peak, CGROUP_HAVE_MEM_PEAK, st);
    case CGROUP_V2_MEMORY_STAT:
        return parse_v2_memory_stat(text, len, st);
    case CGROUP_V2_MEMORY_EVENTS:
        return parse_v2_memory_events(text, len, st);
    case CGROUP_V2_IO_STAT:
        return parse_v2_io_stat(text, len, st);
    case CGROUP_V2_PIDS_CURRENT:
    case CGROUP_V1_PIDS_CURRENT:
        return take_single(text, len, false, &st->pids_current, CGROUP_HAVE_PIDS, st);
    case CGROUP_V2_PIDS_MAX:
    case CGROUP_V1_PIDS_MAX:
        return take_single(text, len, true, &st->pids_limit, CGROUP_HAVE_PIDS_LIMIT, st);
    case CGROUP_CPU_PRESSURE:
    case CGROUP_MEMORY_PRESSURE:
    case CGROUP_IO_PRESSURE:
        return parse_psi(f, text, len, st);
    case CGROUP_V1_CPUACCT_USAGE:
        return take_single(text, len, false, &st->cpu_usage_ns, CGROUP_HAVE_CPU_USAGE, st);
    case CGROUP_V1_CPUACCT_STAT:
        return parse_v1_cpuacct_stat(text, len, st);
    case CGROUP_V1_CPU_STAT:
        return parse_v1_cpu_stat(text, len, st);
    case CGROUP_V1_CPU_CFS_QUOTA:
        if ((r = parse_signed(text, len, &sv)) < 0)
            return r;
        st->cpu_quota_us = sv < 0 ? -1 : sv;
        st->have |= CGROUP_HAVE_CPU_QUOTA;
        return 0;
    case CGROUP_V1_CPU_CFS_PERIOD:
        return take_single(text, len, false, &st->cpu_period_us, CGROUP_HAVE_CPU_PERIOD, st);
    case CGROUP_V1_MEMORY_STAT:
        return parse_v1_memory_stat(text, len, st);
    case CGROUP_V1_MEMORY_OOM_CONTROL:
        return parse_v1_oom_control(text, len, st);
    case CGROUP_V1_BLKIO_BYTES:
    case CGROUP_V1_BLKIO_IOS:
        return parse_v1_blkio(f, text, len, st);
    case CGROUP_FILE_MAX_:
        break;
    }
    return -EINVAL;
}

uint64_t cgroup_working_set(const struct cgroup_stats *st)
{
    if ((st->have & CGROUP_HAVE_MEM_STAT) && st->mem_inactive_file < st->mem_current)
        return st->mem_current - st->mem_inactive_file;
    return st->mem_current;
}

/* ---- the hierarchy ------------------------------------------------------------------------- */

struct cgroup_fs {
    enum cgroup_version version;
    /* Mount directory of each hierarchy; NULL when absent. */
    char *mount[CGROUP_CTRL_MAX_];
    /* File descriptors handles keep open, and how many they may: past the budget files are
     * opened for each read instead, so the agent never runs out of descriptors. */
    size_t fds_held;
    size_t fd_budget;
    enum cgroup_file files[CGROUP_FILE_MAX_];
    size_t n_files;
};

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool file_exists(const char *dir, const char *name)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
        return false;
    return access(p, F_OK) == 0;
}

static char *path_join(const char *a, const char *b)
{
    char *s;
    if (asprintf(&s, "%s/%s", a, b) < 0)
        return NULL;
    return s;
}

/* Whether name, a comma-separated list such as "cpu,cpuacct", holds ctrl. */
static bool list_has(const char *list, size_t len, const char *ctrl)
{
    size_t cl = strlen(ctrl);
    for (const char *p = list, *end = list + len; p < end;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t wl = c ? (size_t)(c - p) : (size_t)(end - p);
        if (wl == cl && memcmp(p, ctrl, cl) == 0)
            return true;
        p += wl + 1;
    }
    return false;
}

static int fs_find_v1(struct cgroup_fs *fs, const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return -errno;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        for (int c = CGROUP_CTRL_CPU; c < CGROUP_CTRL_MAX_; c++) {
            if (!list_has(de->d_name, strlen(de->d_name), ctrl_names[c]))
                continue;
            /* "cpu" (often a symlink to cpu,cpuacct) wins over the joined name. */
            bool exact = streq(de->d_name, ctrl_names[c]);
            if (fs->mount[c] && !exact)
                continue;
            char *m = path_join(root, de->d_name);
            if (!m) {
                r = -ENOMEM;
                goto out;
            }
            if (!is_dir(m)) {
                free(m);
                continue;
            }
            free(fs->mount[c]);
            fs->mount[c] = m;
        }
    }
out:
    closedir(d);
    return r;
}

int cgroup_fs_open(const char *root, struct cgroup_fs **ret)
{
    struct cgroup_fs *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    int r;
    if (file_exists(root, "cgroup.controllers")) {
        fs->version = CGROUP_VERSION_2;
        if (!(fs->mount[CGROUP_CTRL_UNIFIED] = strdup(root))) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(fs->files, v2_files, sizeof(v2_files));
        fs->n_files = ARRAY_SIZE(v2_files);
    } else {
        if ((r = fs_find_v1(fs, root)) < 0)
            goto fail;
        bool any = false;
        for (int c = CGROUP_CTRL_CPU; c < CGROUP_CTRL_MAX_; c++)
            any |= fs->mount[c] != NULL;
        if (!any) {
            r = -ENOENT;
            goto fail;
        }
        fs->version = CGROUP_VERSION_1;
        /* Hybrid: systemd mounts the cgroup2 tree at <root>/unified, which has PSI. */
        char *u = path_join(root, "unified");
        if (!u) {
            r = -ENOMEM;
            goto fail;
        }
        if (file_exists(u, "cgroup.controllers"))
            fs->mount[CGROUP_CTRL_UNIFIED] = u;
        else
            free(u);
        for (size_t i = 0; i < ARRAY_SIZE(v1_files); i++) {
            enum cgroup_file f = v1_files[i];
            if (fs->mount[file_info[f].ctrl])
                fs->files[fs->n_files++] = f;
        }
    }
    struct rlimit rl;
    size_t limit = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        limit = (size_t)rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        limit = 1u << 20;
    /* Leave a quarter (at least 256) to the rest of the agent. */
    size_t reserve = limit / 4 > 256 ? limit / 4 : 256;
    fs->fd_budget = limit > reserve ? limit - reserve : 0;
    *ret = fs;
    return 0;
fail:
    cgroup_fs_free(fs);
    return r;
}

struct cgroup_fs *cgroup_fs_free(struct cgroup_fs *fs)
{
    if (!fs)
        return NULL;
    for (int c = 0; c < CGROUP_CTRL_MAX_; c++)
        free(fs->mount[c]);
    free(fs);
    return NULL;
}

enum cgroup_version cgroup_fs_version(const struct cgroup_fs *fs)
{
    return fs->version;
}

size_t cgroup_fs_files(const struct cgroup_fs *fs, const enum cgroup_file **ret)
{
    *ret = fs->files;
    return fs->n_files;
}

/* ---- one cgroup ---------------------------------------------------------------------------- */

#define FD_NOT_OPEN (-1)
#define FD_MISSING  (-2)

struct cgroup_handle {
    struct cgroup_fs *fs;
    char *dir[CGROUP_CTRL_MAX_];
    int fd[CGROUP_FILE_MAX_];
    size_t n_open;
    bool gone;
};

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || streq(id, ".") || streq(id, ".."))
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* A cgroup path from /proc/<pid>/cgroup that we accept: absolute, not the root, no "..". */
static bool usable_path(const char *p, size_t len)
{
    if (len < 2 || p[0] != '/')
        return false;
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '/' && p[i + 1] == '.' && (i + 2 == len || p[i + 2] == '/' || p[i + 2] == '.'))
            return false;
    return true;
}

static int set_dir(struct cgroup_handle *h, enum cgroup_ctrl c, const char *path, size_t len)
{
    char *d;
    if (asprintf(&d, "%s%.*s", h->fs->mount[c], (int)len, path) < 0)
        return -ENOMEM;
    if (!is_dir(d)) {
        free(d);
        return 0;
    }
    free(h->dir[c]);
    h->dir[c] = d;
    return 1;
}

/* Reads <proc_root>/<pid>/cgroup and sets the directories it names. */
static int locate_from_proc(struct cgroup_handle *h, const char *proc_root, pid_t pid)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root, (int)pid) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct readbuf b;
    int r = readbuf_init(&b, 4096, 1 << 20);
    if (r < 0) {
        close(fd);
        return r;
    }
    size_t n;
    r = readbuf_pread(&b, fd, &n);
    close(fd);
    if (r < 0)
        goto out;
    const char *end = b.data + n;
    for (const char *p = b.data; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le)
            le = end;
        /* hierarchy-ID:controller-list:cgroup-path */
        const char *c1 = memchr(p, ':', (size_t)(le - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
        if (c2) {
            const char *list = c1 + 1, *cg = c2 + 1;
            size_t list_len = (size_t)(c2 - list), cg_len = (size_t)(le - cg);
            bool unified = (c1 - p == 1 && p[0] == '0' && list_len == 0);
            if (usable_path(cg, cg_len)) {
                for (int c = 0; c < CGROUP_CTRL_MAX_; c++) {
                    if (!h->fs->mount[c] || h->dir[c])
                        continue;
                    if (c == CGROUP_CTRL_UNIFIED
                            ? !unified
                            : unified || !list_has(list, list_len, ctrl_names[c]))
                        continue;
                    if ((r = set_dir(h, (enum cgroup_ctrl)c, cg, cg_len)) < 0)
                        goto out;
                }
            }
        }
        p = le + (le < end);
    }
    r = 0;
out:
    readbuf_release(&b);
    return r;
}

/* The places dockerd puts a container's cgroup: the systemd driver's scope, the cgroupfs
 * driver's docker/<id>. */
static int locate_by_id(struct cgroup_handle *h, const char *id)
{
    char guess[2][256];
    snprintf(guess[0], sizeof(guess[0]), "/system.slice/docker-%s.scope", id);
    snprintf(guess[1], sizeof(guess[1]), "/docker/%s", id);
    for (int c = 0; c < CGROUP_CTRL_MAX_; c++) {
        if (!h->fs->mount[c] || h->dir[c])
            continue;
        for (size_t g = 0; g < ARRAY_SIZE(guess); g++) {
            int r = set_dir(h, (enum cgroup_ctrl)c, guess[g], strlen(guess[g]));
            if (r < 0)
                return r;
            if (r > 0)
                break;
        }
    }
    return 0;
}

int cgroup_handle_open(struct cgroup_fs *fs, const char *proc_root, pid_t pid, const char *id,
                       struct cgroup_handle **ret)
{
    if (!id || !valid_id(id))
        return -EINVAL;
    struct cgroup_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->fs = fs;
    for (int f = 0; f < CGROUP_FILE_MAX_; f++)
        h->fd[f] = FD_NOT_OPEN;
    int r;
    if (pid > 0 && (r = locate_from_proc(h, proc_root, pid)) == -ENOMEM)
        goto fail;
    if ((r = locate_by_id(h, id)) < 0)
        goto fail;
    bool any = false;
    for (int c = 0; c < CGROUP_CTRL_MAX_; c++)
        any |= h->dir[c] != NULL && (c != CGROUP_CTRL_UNIFIED || fs->version == CGROUP_VERSION_2);
    if (!any) {
        r = -ENOENT;
        goto fail;
    }
    *ret = h;
    return 0;
fail:
    cgroup_handle_free(h);
    return r;
}

static void handle_close_files(struct cgroup_handle *h)
{
    for (int f = 0; f < CGROUP_FILE_MAX_; f++) {
        if (h->fd[f] >= 0) {
            close(h->fd[f]);
            h->fd[f] = FD_NOT_OPEN;
            h->fs->fds_held--;
        }
    }
    h->n_open = 0;
}

struct cgroup_handle *cgroup_handle_free(struct cgroup_handle *h)
{
    if (!h)
        return NULL;
    handle_close_files(h);
    for (int c = 0; c < CGROUP_CTRL_MAX_; c++)
        free(h->dir[c]);
    free(h);
    return NULL;
}

const char *cgroup_handle_dir(const struct cgroup_handle *h, enum cgroup_ctrl ctrl)
{
    return h->dir[ctrl];
}

bool cgroup_handle_has(const struct cgroup_handle *h, enum cgroup_file f)
{
    return !h->gone && h->dir[file_info[f].ctrl] && h->fd[f] != FD_MISSING;
}

size_t cgroup_handle_open_files(const struct cgroup_handle *h)
{
    return h->n_open;
}

static int handle_gone(struct cgroup_handle *h)
{
    h->gone = true;
    handle_close_files(h);
    return -ENODEV;
}

int cgroup_handle_read(struct cgroup_handle *h, enum cgroup_file f, struct readbuf *buf,
                       struct cgroup_stats *st)
{
    if (h->gone)
        return -ENODEV;
    const char *dir = h->dir[file_info[f].ctrl];
    if (!dir || h->fd[f] == FD_MISSING)
        return -ENOENT;
    int fd = h->fd[f];
    bool keep = true;
    if (fd < 0) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, file_info[f].name) >= (int)sizeof(path))
            return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e != ENOENT)
                return -e;
            if (!is_dir(dir))
                return handle_gone(h);
            h->fd[f] = FD_MISSING;
            return -ENOENT;
        }
        keep = h->fs->fds_held < h->fs->fd_budget;
        if (keep) {
            h->fd[f] = fd;
            h->n_open++;
            h->fs->fds_held++;
        }
    }
    size_t n;
    int r = readbuf_pread(buf, fd, &n);
    if (!keep)
        close(fd);
    /* kernfs answers ENODEV on a file of a removed cgroup. */
    if (r == -ENODEV)
        return handle_gone(h);
    if (r < 0)
        return r;
    return cgroup_parse(f, buf->data, n, st);
}
