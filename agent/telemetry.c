#include "agent/telemetry.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "drivers/cgroup/cgroup.h"
#include "drivers/cgroup/procfs.h"
#include "drivers/cgroup/readbuf.h"
#include "lib/log.h"
#include "lib/util.h"

typedef Axion__Agent__V1__TelemetryBatch PbBatch;
typedef Axion__Agent__V1__TelemetryHost PbHost;
typedef Axion__Agent__V1__TelemetryHostCpu PbHostCpu;
typedef Axion__Agent__V1__TelemetryHostMemory PbHostMemory;
typedef Axion__Agent__V1__TelemetryPressure PbPressure;
typedef Axion__Agent__V1__TelemetryPsi PbPsi;
typedef Axion__Agent__V1__TelemetryDisk PbDisk;
typedef Axion__Agent__V1__TelemetryNetInterface PbNetIf;
typedef Axion__Agent__V1__TelemetryFilesystem PbFs;
typedef Axion__Agent__V1__TelemetryContainer PbContainer;
typedef Axion__Agent__V1__TelemetryContainerCpu PbCpu;
typedef Axion__Agent__V1__TelemetryThrottling PbThrottling;
typedef Axion__Agent__V1__TelemetryContainerMemory PbMemory;
typedef Axion__Agent__V1__TelemetryContainerIo PbIo;
typedef Axion__Agent__V1__TelemetryContainerPids PbPids;
typedef Axion__Agent__V1__TelemetryContainerNet PbNet;

/* ---- state --------------------------------------------------------------------------------- */

struct net_counters {
    uint64_t rx_bytes, rx_packets, rx_errs, rx_drop;
    uint64_t tx_bytes, tx_packets, tx_errs, tx_drop;
};

#define WARNED_NET (1u << 31)

struct tcont {
    char *id, *name, *service, *task, *stack;
    pid_t pid;
    struct cgroup_handle *cg;
    int net_fd;
    unsigned phase;        /* detail files are read when (seq + phase) % detail_every == 0 */
    bool gone;             /* its cgroup was removed: skipped until re-added or removed */
    bool sampled;          /* st holds an earlier complete reading */
    bool skip;             /* this cycle */
    bool detail_now;       /* this cycle reads the detail files */
    bool limits_now;       /* ... and the limits */
    bool refresh;          /* read everything next cycle */
    uint64_t memstat_base; /* memory usage when memory.stat was last read */
    bool have_net, staged_have_net;
    uint32_t read_ok; /* files read this cycle, bit per enum cgroup_file */
    uint32_t warned;  /* files whose read error was logged once */
    struct cgroup_stats st, staged;
    struct net_counters net, staged_net;
    int64_t ts, ts_detail, ts_throttle;
    /* The container's part of the batch, rewritten in place every cycle. */
    PbContainer pb;
    PbCpu pb_cpu;
    PbThrottling pb_thr;
    PbMemory pb_mem;
    PbIo pb_io;
    PbPids pb_pids;
    PbPressure pb_pressure;
    PbPsi pb_psi[3];
    PbNet pb_net;
};

struct hdisk {
    struct procfs_disk cur, prev;
    bool seen, has_prev;
    PbDisk pb;
};

struct hnet {
    struct procfs_netdev cur, prev;
    bool seen, has_prev;
    PbNetIf pb;
};

enum host_file {
    H_STAT,
    H_MEMINFO,
    H_LOADAVG,
    H_UPTIME,
    H_VMSTAT,
    H_DISKSTATS,
    H_NETDEV,
    H_PSI_CPU,
    H_PSI_MEMORY,
    H_PSI_IO,
    H_MAX_
};

static const char *const host_files[H_MAX_] = {
    [H_STAT] = "stat",          [H_MEMINFO] = "meminfo",      [H_LOADAVG] = "loadavg",
    [H_UPTIME] = "uptime",      [H_VMSTAT] = "vmstat",        [H_DISKSTATS] = "diskstats",
    [H_NETDEV] = "net/dev",     [H_PSI_CPU] = "pressure/cpu", [H_PSI_MEMORY] = "pressure/memory",
    [H_PSI_IO] = "pressure/io",
};

struct telemetry {
    char *proc_root, *docker_root, *agent_id, *hostname;
    unsigned detail_every, limits_every;
    size_t max_containers;
    struct cgroup_fs *fs; /* NULL: no cgroup hierarchy found */
    struct readbuf rb;
    int hfd[H_MAX_];
    uint32_t host_warned;

    struct telemetry_sink sinks[TELEMETRY_MAX_SINKS];
    size_t n_sinks;

    struct tcont **c;
    size_t n_c, cap_c;
    PbContainer **pb_containers; /* cap_c entries */
    unsigned next_phase;

    uint64_t seq;
    int64_t last_now;
    bool has_last;

    /* host */
    struct procfs_stat hstat;
    bool hstat_ok;
    struct procfs_psi hpsi[3];
    bool hpsi_ok[3];
    int64_t hpsi_ts;
    uint64_t oom_kills;
    struct hdisk *disks;
    size_t n_disks, cap_disks;
    PbDisk **pb_disks;
    struct hnet *nets;
    size_t n_nets, cap_nets;
    PbNetIf **pb_nets;
    char *fs_path[2];
    size_t n_fs;
    PbFs pb_fs[2];
    PbFs *pb_fs_ptr[2];
    int64_t now; /* of the cycle being collected, for the parse callbacks */
    int64_t dt_ms;

    PbBatch batch;
    PbHost host;
    PbHostCpu hcpu;
    PbHostMemory hmem;
    PbPressure hpress;
    PbPsi hpsi_pb[3];

    uint8_t *pack;
    size_t pack_cap;
    struct telemetry_sample sample;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double rate_per_s(uint64_t cur, uint64_t prev, int64_t dt_ms)
{
    if (dt_ms <= 0 || cur < prev)
        return 0;
    return (double)(cur - prev) * 1000.0 / (double)dt_ms;
}

/* ---- containers ---------------------------------------------------------------------------- */

static void container_free(struct tcont *c)
{
    if (!c)
        return;
    cgroup_handle_free(c->cg);
    if (c->net_fd >= 0)
        close(c->net_fd);
    free(c->id);
    free(c->name);
    free(c->service);
    free(c->task);
    free(c->stack);
    free(c);
}

static struct tcont *container_find(const struct telemetry *t, const char *id, size_t *ret_idx)
{
    for (size_t i = 0; i < t->n_c; i++) {
        if (streq(t->c[i]->id, id)) {
            if (ret_idx)
                *ret_idx = i;
            return t->c[i];
        }
    }
    return NULL;
}

static int open_net(const struct telemetry *t, pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%d/net/dev", t->proc_root, (int)pid) >= (int)sizeof(path))
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC);
}

static int set_label(char **dst, const char *v)
{
    char *n = strdup(v ? v : "");
    if (!n)
        return -ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

static int container_set_labels(struct tcont *c, const struct telemetry_container_info *info)
{
    if (set_label(&c->name, info->name) < 0 || set_label(&c->service, info->service) < 0 ||
        set_label(&c->task, info->task) < 0 || set_label(&c->stack, info->stack) < 0)
        return -ENOMEM;
    /* docker inspect names start with '/' */
    if (c->name[0] == '/')
        memmove(c->name, c->name + 1, strlen(c->name));
    return 0;
}

static void container_init_pb(struct tcont *c)
{
    c->pb = (PbContainer)AXION__AGENT__V1__TELEMETRY_CONTAINER__INIT;
    c->pb_cpu = (PbCpu)AXION__AGENT__V1__TELEMETRY_CONTAINER_CPU__INIT;
    c->pb_thr = (PbThrottling)AXION__AGENT__V1__TELEMETRY_THROTTLING__INIT;
    c->pb_mem = (PbMemory)AXION__AGENT__V1__TELEMETRY_CONTAINER_MEMORY__INIT;
    c->pb_io = (PbIo)AXION__AGENT__V1__TELEMETRY_CONTAINER_IO__INIT;
    c->pb_pids = (PbPids)AXION__AGENT__V1__TELEMETRY_CONTAINER_PIDS__INIT;
    c->pb_pressure = (PbPressure)AXION__AGENT__V1__TELEMETRY_PRESSURE__INIT;
    for (int i = 0; i < 3; i++)
        c->pb_psi[i] = (PbPsi)AXION__AGENT__V1__TELEMETRY_PSI__INIT;
    c->pb_net = (PbNet)AXION__AGENT__V1__TELEMETRY_CONTAINER_NET__INIT;
}

/* Points c at the cgroup and network namespace of pid (a new container, or a restart). */
static int container_attach(struct telemetry *t, struct tcont *c, pid_t pid)
{
    if (!t->fs)
        return -ENOENT;
    struct cgroup_handle *h;
    int r = cgroup_handle_open(t->fs, t->proc_root, pid, c->id, &h);
    if (r < 0)
        return r;
    cgroup_handle_free(c->cg);
    c->cg = h;
    if (c->net_fd >= 0)
        close(c->net_fd);
    c->net_fd = open_net(t, pid);
    c->pid = pid;
    c->gone = false;
    c->sampled = false;
    c->have_net = false;
    c->warned = 0;
    memset(&c->st, 0, sizeof(c->st));
    container_init_pb(c);
    return 0;
}

/* Adds or updates; refresh: an existing container with the same pid has everything read at the
 * next cycle (an explicit add), or keeps its tiers (a resync through set_containers). */
static int container_upsert(struct telemetry *t, const struct telemetry_container_info *info,
                            bool refresh)
{
    if (!info || !info->id)
        return -EINVAL;
    struct tcont *c = container_find(t, info->id, NULL);
    if (c) {
        if (info->pid != c->pid || c->gone) {
            int r = container_attach(t, c, info->pid);
            if (r < 0)
                return r;
        } else if (refresh) {
            c->refresh = true;
        }
        return container_set_labels(c, info);
    }
    if (t->n_c >= t->max_containers)
        return -ENOSPC;
    if (t->n_c == t->cap_c) {
        size_t cap = t->cap_c ? t->cap_c * 2 : 16;
        struct tcont **v = realloc(t->c, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        t->c = v;
        PbContainer **p = realloc(t->pb_containers, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        t->pb_containers = p;
        t->cap_c = cap;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->net_fd = -1;
    c->id = strdup(info->id);
    int r = c->id ? container_set_labels(c, info) : -ENOMEM;
    if (r == 0)
        r = container_attach(t, c, info->pid);
    if (r < 0) {
        container_free(c);
        return r;
    }
    /* Spread the detail and limits reads of the containers over the cycles. */
    c->phase = t->next_phase++;
    t->c[t->n_c++] = c;
    if (c->net_fd < 0)
        log_msg(LOG_LEVEL_DEBUG, NULL, "telemetry: container %.12s: no network figures (pid %d)",
                c->id, (int)c->pid);
    return 0;
}

int telemetry_add_container(struct telemetry *t, const struct telemetry_container_info *info)
{
    return container_upsert(t, info, true);
}

int telemetry_remove_container(struct telemetry *t, const char *id)
{
    size_t i;
    struct tcont *c = container_find(t, id, &i);
    if (!c)
        return -ENOENT;
    container_free(c);
    memmove(&t->c[i], &t->c[i + 1], (t->n_c - i - 1) * sizeof(t->c[0]));
    t->n_c--;
    return 0;
}

int telemetry_set_containers(struct telemetry *t, const struct telemetry_container_info *v,
                             size_t n)
{
    for (size_t i = 0; i < t->n_c;) {
        bool keep = false;
        for (size_t j = 0; j < n && !keep; j++)
            keep = v[j].id && streq(v[j].id, t->c[i]->id);
        if (keep) {
            i++;
            continue;
        }
        container_free(t->c[i]);
        memmove(&t->c[i], &t->c[i + 1], (t->n_c - i - 1) * sizeof(t->c[0]));
        t->n_c--;
    }
    int missing = 0;
    for (size_t j = 0; j < n; j++) {
        int r = container_upsert(t, &v[j], false);
        if (r == -ENOENT)
            missing++;
        else if (r < 0)
            return r;
    }
    return missing;
}

size_t telemetry_container_count(const struct telemetry *t)
{
    return t->n_c;
}

/* ---- setup --------------------------------------------------------------------------------- */

static int dup_opt(char **dst, const char *v, const char *dflt)
{
    *dst = strdup(v ? v : dflt);
    return *dst ? 0 : -ENOMEM;
}

int telemetry_new(const struct telemetry_options *o, struct telemetry **ret)
{
    static const struct telemetry_options none = {0};
    if (!o)
        o = &none;
    struct telemetry *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (int i = 0; i < H_MAX_; i++)
        t->hfd[i] = -1;
    int r = 0;
    char host[HOST_NAME_MAX + 1] = "";
    if (!o->hostname && gethostname(host, sizeof(host)) < 0)
        host[0] = '\0';
    host[HOST_NAME_MAX] = '\0';
    if ((r = dup_opt(&t->proc_root, o->proc_root, "/proc")) < 0 ||
        (r = dup_opt(&t->docker_root, o->docker_root, "/var/lib/docker")) < 0 ||
        (r = dup_opt(&t->agent_id, o->agent_id, "")) < 0 ||
        (r = dup_opt(&t->hostname, o->hostname, host)) < 0)
        goto fail;
    t->detail_every = o->detail_every ? o->detail_every : TELEMETRY_DEFAULT_DETAIL_EVERY;
    t->limits_every =
        o->limits_every ? o->limits_every : t->detail_every * TELEMETRY_DEFAULT_LIMITS_FACTOR;
    t->max_containers = o->max_containers ? o->max_containers : TELEMETRY_DEFAULT_MAX_CONTAINERS;
    if ((r = readbuf_init(&t->rb, 64 << 10, READBUF_DEFAULT_MAX)) < 0)
        goto fail;

    const char *cg_root = o->cgroup_root ? o->cgroup_root : "/sys/fs/cgroup";
    r = cgroup_fs_open(cg_root, &t->fs);
    if (r == -ENOMEM)
        goto fail;
    if (r < 0)
        log_msg(LOG_LEVEL_WARN, NULL, "telemetry: %s: no cgroup hierarchy (%s); host metrics only",
                cg_root, strerror(-r));

    for (int i = 0; i < H_MAX_; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", t->proc_root, host_files[i]) >=
            (int)sizeof(path)) {
            r = -EINVAL;
            goto fail;
        }
        t->hfd[i] = open(path, O_RDONLY | O_CLOEXEC);
        /* PSI is missing on kernels without CONFIG_PSI (or psi=0): normal. */
        if (t->hfd[i] < 0 && i < H_PSI_CPU)
            log_msg(LOG_LEVEL_WARN, NULL, "telemetry: %s: %s", path, strerror(errno));
    }

    if (!(t->fs_path[t->n_fs++] = strdup("/"))) {
        r = -ENOMEM;
        goto fail;
    }
    if (t->docker_root[0] && !streq(t->docker_root, "/")) {
        if (!(t->fs_path[t->n_fs++] = strdup(t->docker_root))) {
            r = -ENOMEM;
            goto fail;
        }
    }

    t->batch = (PbBatch)AXION__AGENT__V1__TELEMETRY_BATCH__INIT;
    t->host = (PbHost)AXION__AGENT__V1__TELEMETRY_HOST__INIT;
    t->hcpu = (PbHostCpu)AXION__AGENT__V1__TELEMETRY_HOST_CPU__INIT;
    t->hmem = (PbHostMemory)AXION__AGENT__V1__TELEMETRY_HOST_MEMORY__INIT;
    t->hpress = (PbPressure)AXION__AGENT__V1__TELEMETRY_PRESSURE__INIT;
    for (int i = 0; i < 3; i++)
        t->hpsi_pb[i] = (PbPsi)AXION__AGENT__V1__TELEMETRY_PSI__INIT;
    for (size_t i = 0; i < 2; i++) {
        t->pb_fs[i] = (PbFs)AXION__AGENT__V1__TELEMETRY_FILESYSTEM__INIT;
        t->pb_fs_ptr[i] = &t->pb_fs[i];
    }
    *ret = t;
    return 0;
fail:
    telemetry_free(t);
    return r;
}

struct telemetry *telemetry_free(struct telemetry *t)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->n_c; i++)
        container_free(t->c[i]);
    free(t->c);
    free(t->pb_containers);
    for (int i = 0; i < H_MAX_; i++)
        if (t->hfd[i] >= 0)
            close(t->hfd[i]);
    cgroup_fs_free(t->fs);
    readbuf_release(&t->rb);
    free(t->disks);
    free(t->pb_disks);
    free(t->nets);
    free(t->pb_nets);
    for (size_t i = 0; i < t->n_fs; i++)
        free(t->fs_path[i]);
    free(t->pack);
    free(t->proc_root);
    free(t->docker_root);
    free(t->agent_id);
    free(t->hostname);
    free(t);
    return NULL;
}

int telemetry_add_sink(struct telemetry *t, const struct telemetry_sink *s)
{
    if (!s || !s->emit)
        return -EINVAL;
    if (t->n_sinks == TELEMETRY_MAX_SINKS)
        return -ENOSPC;
    t->sinks[t->n_sinks++] = *s;
    return 0;
}

/* ---- host ---------------------------------------------------------------------------------- */

static int read_host_file(struct telemetry *t, enum host_file f, size_t *ret_len)
{
    if (t->hfd[f] < 0)
        return -ENOENT;
    int r = readbuf_pread(&t->rb, t->hfd[f], ret_len);
    if (r < 0 && !(t->host_warned & (1u << f))) {
        t->host_warned |= 1u << f;
        log_msg(LOG_LEVEL_WARN, NULL, "telemetry: %s/%s: %s", t->proc_root, host_files[f],
                strerror(-r));
    }
    return r;
}

static void warn_parse(struct telemetry *t, enum host_file f, int r)
{
    if (t->host_warned & (1u << f))
        return;
    t->host_warned |= 1u << f;
    log_msg(LOG_LEVEL_WARN, NULL, "telemetry: %s/%s: unexpected format (%s)", t->proc_root,
            host_files[f], strerror(-r));
}

static uint64_t ticks_ms(uint64_t ticks)
{
    static long hz;
    if (!hz) {
        hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
            hz = 100;
    }
    return ticks * 1000u / (uint64_t)hz;
}

static uint64_t cpu_total(const struct procfs_cpu *c)
{
    return c->user + c->nice + c->system + c->idle + c->iowait + c->irq + c->softirq + c->steal;
}

static void host_cpu(struct telemetry *t, const struct procfs_stat *s)
{
    PbHostCpu *p = &t->hcpu;
    p->user_ms = ticks_ms(s->cpu.user);
    p->nice_ms = ticks_ms(s->cpu.nice);
    p->system_ms = ticks_ms(s->cpu.system);
    p->idle_ms = ticks_ms(s->cpu.idle);
    p->iowait_ms = ticks_ms(s->cpu.iowait);
    p->irq_ms = ticks_ms(s->cpu.irq);
    p->softirq_ms = ticks_ms(s->cpu.softirq);
    p->steal_ms = ticks_ms(s->cpu.steal);
    p->busy_pct = p->user_pct = p->system_pct = p->iowait_pct = p->steal_pct = 0;
    if (t->hstat_ok) {
        const struct procfs_cpu *a = &t->hstat.cpu, *b = &s->cpu;
        uint64_t ta = cpu_total(a), tb = cpu_total(b);
        if (tb > ta) {
            double d = (double)(tb - ta);
#define PCT(x) (b->x >= a->x ? (double)(b->x - a->x) * 100.0 / d : 0)
            p->user_pct = PCT(user) + PCT(nice);
            p->system_pct = PCT(system) + PCT(irq) + PCT(softirq);
            p->iowait_pct = PCT(iowait);
            p->steal_pct = PCT(steal);
            p->busy_pct = 100.0 - PCT(idle) - PCT(iowait);
#undef PCT
            if (p->busy_pct < 0)
                p->busy_pct = 0;
        }
    }
    t->hstat = *s;
    t->hstat_ok = true;
    t->host.ncpu = s->ncpu;
    t->host.cpu = p;
}

static void psi_pb(PbPsi *pb, const struct procfs_psi *cur, const struct procfs_psi *prev,
                   bool has_prev, int64_t dt_ms)
{
    pb->some_total_us = cur->some_total;
    pb->full_total_us = cur->full_total;
    if (has_prev && dt_ms > 0) {
        /* µs stalled per µs of wall time, in percent */
        pb->some_pct = rate_per_s(cur->some_total, prev->some_total, dt_ms) / 1e4;
        pb->full_pct = rate_per_s(cur->full_total, prev->full_total, dt_ms) / 1e4;
    } else if (!has_prev) {
        pb->some_pct = pb->full_pct = 0;
    }
}

static int disk_cb(void *ud, const struct procfs_disk *d)
{
    struct telemetry *t = ud;
    if (!procfs_disk_is_reported(d->name))
        return 0;
    struct hdisk *e = NULL;
    for (size_t i = 0; i < t->n_disks && !e; i++)
        if (streq(t->disks[i].cur.name, d->name))
            e = &t->disks[i];
    if (!e) {
        if (t->n_disks == TELEMETRY_MAX_DEVICES)
            return 0;
        if (t->n_disks == t->cap_disks) {
            size_t cap = t->cap_disks ? t->cap_disks * 2 : 8;
            struct hdisk *v = realloc(t->disks, cap * sizeof(*v));
            if (!v)
                return -ENOMEM;
            t->disks = v;
            PbDisk **p = realloc(t->pb_disks, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            t->pb_disks = p;
            t->cap_disks = cap;
        }
        e = &t->disks[t->n_disks++];
        memset(e, 0, sizeof(*e));
        e->pb = (PbDisk)AXION__AGENT__V1__TELEMETRY_DISK__INIT;
    }
    e->cur = *d;
    e->seen = true;
    return 0;
}

static void host_disks(struct telemetry *t, const char *s, size_t n)
{
    for (size_t i = 0; i < t->n_disks; i++)
        t->disks[i].seen = false;
    int r = procfs_parse_diskstats(s, n, disk_cb, t);
    if (r < 0 && r != -ENOMEM)
        warn_parse(t, H_DISKSTATS, r);
    size_t k = 0;
    for (size_t i = 0; i < t->n_disks; i++) {
        if (!t->disks[i].seen)
            continue;
        if (k != i)
            t->disks[k] = t->disks[i];
        struct hdisk *e = &t->disks[k++];
        PbDisk *p = &e->pb;
        p->name = e->cur.name;
        p->read_bytes = e->cur.read_sectors * 512;
        p->write_bytes = e->cur.write_sectors * 512;
        p->reads = e->cur.reads;
        p->writes = e->cur.writes;
        p->io_time_ms = e->cur.io_ms;
        p->read_bytes_per_s = p->write_bytes_per_s = p->util_pct = 0;
        if (e->has_prev) {
            p->read_bytes_per_s =
                rate_per_s(e->cur.read_sectors, e->prev.read_sectors, t->dt_ms) * 512;
            p->write_bytes_per_s =
                rate_per_s(e->cur.write_sectors, e->prev.write_sectors, t->dt_ms) * 512;
            p->util_pct = rate_per_s(e->cur.io_ms, e->prev.io_ms, t->dt_ms) / 10.0;
            if (p->util_pct > 100)
                p->util_pct = 100;
        }
        e->prev = e->cur;
        e->has_prev = true;
    }
    t->n_disks = k;
    for (size_t i = 0; i < k; i++)
        t->pb_disks[i] = &t->disks[i].pb;
    t->host.n_disks = k;
    t->host.disks = t->pb_disks;
}

/* The host side of containers' veth pairs: counted in the containers' namespaces. */
static bool is_veth(const char *name)
{
    return strncmp(name, "veth", 4) == 0;
}

static int net_cb(void *ud, const struct procfs_netdev *d)
{
    struct telemetry *t = ud;
    struct hnet *e = NULL;
    for (size_t i = 0; i < t->n_nets && !e; i++)
        if (streq(t->nets[i].cur.name, d->name))
            e = &t->nets[i];
    if (!e) {
        if (t->n_nets == TELEMETRY_MAX_DEVICES)
            return 0;
        if (t->n_nets == t->cap_nets) {
            size_t cap = t->cap_nets ? t->cap_nets * 2 : 8;
            struct hnet *v = realloc(t->nets, cap * sizeof(*v));
            if (!v)
                return -ENOMEM;
            t->nets = v;
            PbNetIf **p = realloc(t->pb_nets, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            t->pb_nets = p;
            t->cap_nets = cap;
        }
        e = &t->nets[t->n_nets++];
        memset(e, 0, sizeof(*e));
        e->pb = (PbNetIf)AXION__AGENT__V1__TELEMETRY_NET_INTERFACE__INIT;
    }
    e->cur = *d;
    e->seen = true;
    return 0;
}

static void host_nets(struct telemetry *t, const char *s, size_t n)
{
    for (size_t i = 0; i < t->n_nets; i++)
        t->nets[i].seen = false;
    int r = procfs_parse_netdev_skip(s, n, is_veth, net_cb, t);
    if (r < 0 && r != -ENOMEM)
        warn_parse(t, H_NETDEV, r);
    size_t k = 0;
    for (size_t i = 0; i < t->n_nets; i++) {
        if (!t->nets[i].seen)
            continue;
        if (k != i)
            t->nets[k] = t->nets[i];
        struct hnet *e = &t->nets[k++];
        PbNetIf *p = &e->pb;
        p->name = e->cur.name;
        p->rx_bytes = e->cur.rx_bytes;
        p->rx_packets = e->cur.rx_packets;
        p->rx_errors = e->cur.rx_errs;
        p->rx_drops = e->cur.rx_drop;
        p->tx_bytes = e->cur.tx_bytes;
        p->tx_packets = e->cur.tx_packets;
        p->tx_errors = e->cur.tx_errs;
        p->tx_drops = e->cur.tx_drop;
        p->rx_bytes_per_s = p->tx_bytes_per_s = 0;
        if (e->has_prev) {
            p->rx_bytes_per_s = rate_per_s(e->cur.rx_bytes, e->prev.rx_bytes, t->dt_ms);
            p->tx_bytes_per_s = rate_per_s(e->cur.tx_bytes, e->prev.tx_bytes, t->dt_ms);
        }
        e->prev = e->cur;
        e->has_prev = true;
    }
    t->n_nets = k;
    for (size_t i = 0; i < k; i++)
        t->pb_nets[i] = &t->nets[i].pb;
    t->host.n_interfaces = k;
    t->host.interfaces = t->pb_nets;
}

static void host_filesystems(struct telemetry *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n_fs; i++) {
        struct statvfs sv;
        if (statvfs(t->fs_path[i], &sv) < 0)
            continue;
        PbFs *p = &t->pb_fs[k];
        p->path = t->fs_path[i];
        p->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
        p->free_bytes = (uint64_t)sv.f_bfree * sv.f_frsize;
        p->available_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
        p->files = sv.f_files;
        p->files_free = sv.f_ffree;
        t->pb_fs_ptr[k++] = p;
    }
    t->host.n_filesystems = k;
    t->host.filesystems = t->pb_fs_ptr;
}

static void collect_host(struct telemetry *t, bool detail)
{
    size_t n;
    int r;
    if (read_host_file(t, H_STAT, &n) == 0) {
        struct procfs_stat st;
        if ((r = procfs_parse_stat(t->rb.data, n, &st)) == 0)
            host_cpu(t, &st);
        else
            warn_parse(t, H_STAT, r);
    }
    if (read_host_file(t, H_LOADAVG, &n) == 0) {
        struct procfs_loadavg l;
        if ((r = procfs_parse_loadavg(t->rb.data, n, &l)) == 0) {
            t->host.load1 = l.load1;
            t->host.load5 = l.load5;
            t->host.load15 = l.load15;
        } else {
            warn_parse(t, H_LOADAVG, r);
        }
    }
    if (read_host_file(t, H_MEMINFO, &n) == 0) {
        struct procfs_meminfo m;
        if ((r = procfs_parse_meminfo(t->rb.data, n, &m)) == 0) {
            t->hmem.total_bytes = m.total;
            t->hmem.free_bytes = m.free;
            t->hmem.available_bytes = m.available;
            t->hmem.buffers_bytes = m.buffers;
            t->hmem.cached_bytes = m.cached;
            t->hmem.swap_total_bytes = m.swap_total;
            t->hmem.swap_free_bytes = m.swap_free;
            t->host.memory = &t->hmem;
        } else {
            warn_parse(t, H_MEMINFO, r);
        }
    }
    if (read_host_file(t, H_UPTIME, &n) == 0) {
        double up;
        if ((r = procfs_parse_uptime(t->rb.data, n, &up)) == 0)
            t->host.uptime_s = up;
        else
            warn_parse(t, H_UPTIME, r);
    }
    /* /proc/vmstat is long (~20 µs to read) for the one counter we want. */
    if (detail && read_host_file(t, H_VMSTAT, &n) == 0) {
        uint64_t kills;
        uint32_t found;
        const struct procfs_key key = {"oom_kill", &kills};
        if ((r = procfs_parse_keyed(t->rb.data, n, &key, 1, &found)) == 0 && found)
            t->oom_kills = kills;
        else if (r < 0)
            warn_parse(t, H_VMSTAT, r);
    }
    t->host.oom_kills = t->oom_kills;
    if (read_host_file(t, H_DISKSTATS, &n) == 0)
        host_disks(t, t->rb.data, n);
    if (read_host_file(t, H_NETDEV, &n) == 0)
        host_nets(t, t->rb.data, n);

    bool any_psi = false;
    PbPsi **slot[3] = {&t->hpress.cpu, &t->hpress.memory, &t->hpress.io};
    int64_t psi_dt = t->hpsi_ts && t->now > t->hpsi_ts ? t->now - t->hpsi_ts : 0;
    for (int i = 0; i < 3; i++) {
        *slot[i] = NULL;
        struct procfs_psi p;
        if (read_host_file(t, H_PSI_CPU + i, &n) < 0)
            continue;
        if ((r = procfs_parse_psi(t->rb.data, n, &p)) < 0) {
            warn_parse(t, H_PSI_CPU + i, r);
            continue;
        }
        psi_pb(&t->hpsi_pb[i], &p, &t->hpsi[i], t->hpsi_ok[i], psi_dt);
        t->hpsi[i] = p;
        t->hpsi_ok[i] = true;
        *slot[i] = &t->hpsi_pb[i];
        any_psi = true;
    }
    t->hpsi_ts = t->now;
    t->host.pressure = any_psi ? &t->hpress : NULL;
    /* Filesystem usage moves slowly: with the detail files. */
    if (detail)
        host_filesystems(t);
}

/* ---- one cycle ----------------------------------------------------------------------------- */

static void warn_container(struct tcont *c, uint32_t bit, const char *what, int r)
{
    if (c->warned & bit)
        return;
    c->warned |= bit;
    log_msg(LOG_LEVEL_WARN, NULL, "telemetry: container %.12s: %s: %s", c->id, what, strerror(-r));
}

/* memory.stat is read again before its turn when memory usage (read earlier in the same cycle)
 * moved by more than an eighth, or 8 MiB, since: the working set then stays right. */
static bool memory_moved(const struct tcont *c)
{
    if (!(c->staged.have & CGROUP_HAVE_MEM_CURRENT))
        return false;
    uint64_t cur = c->staged.mem_current, base = c->memstat_base;
    uint64_t d = cur > base ? cur - base : base - cur;
    uint64_t limit = base / 8 > (8u << 20) ? base / 8 : (8u << 20);
    return d > limit;
}

static bool wants(const struct tcont *c, enum cgroup_file f)
{
    switch (cgroup_file_tier(f)) {
    case CGROUP_TIER_FAST:
        return true;
    case CGROUP_TIER_DETAIL:
        return c->detail_now;
    case CGROUP_TIER_LIMITS:
        return c->limits_now;
    case CGROUP_TIER_THROTTLE:
        return c->limits_now || ((c->st.have & CGROUP_HAVE_CPU_QUOTA) && c->st.cpu_quota_us > 0);
    case CGROUP_TIER_MEMSTAT:
        return c->detail_now || memory_moved(c);
    }
    return true;
}

static void read_cgroups(struct telemetry *t)
{
    if (!t->fs)
        return;
    const enum cgroup_file *files;
    size_t nf = cgroup_fs_files(t->fs, &files);
    /* One file kind at a time over every container. */
    for (size_t k = 0; k < nf; k++) {
        enum cgroup_file f = files[k];
        for (size_t i = 0; i < t->n_c; i++) {
            struct tcont *c = t->c[i];
            if (c->skip || !wants(c, f) || !cgroup_handle_has(c->cg, f))
                continue;
            int r = cgroup_handle_read(c->cg, f, &t->rb, &c->staged);
            if (r == 0) {
                c->read_ok |= 1u << f;
                if (cgroup_file_tier(f) == CGROUP_TIER_MEMSTAT)
                    c->memstat_base = c->staged.mem_current;
            } else if (r == -ENODEV) {
                c->gone = c->skip = true;
                log_msg(LOG_LEVEL_DEBUG, NULL, "telemetry: container %.12s: cgroup gone", c->id);
            } else if (r != -ENOENT) {
                warn_container(c, 1u << f, cgroup_file_name(f), r);
            }
        }
    }
}

static bool is_lo(const char *name)
{
    return streq(name, "lo");
}

static int netns_cb(void *ud, const struct procfs_netdev *d)
{
    struct net_counters *n = ud;
    n->rx_bytes += d->rx_bytes;
    n->rx_packets += d->rx_packets;
    n->rx_errs += d->rx_errs;
    n->rx_drop += d->rx_drop;
    n->tx_bytes += d->tx_bytes;
    n->tx_packets += d->tx_packets;
    n->tx_errs += d->tx_errs;
    n->tx_drop += d->tx_drop;
    return 0;
}

static void read_netns(struct telemetry *t)
{
    for (size_t i = 0; i < t->n_c; i++) {
        struct tcont *c = t->c[i];
        c->staged_have_net = false;
        if (c->skip || c->net_fd < 0)
            continue;
        size_t n;
        int r = readbuf_pread(&t->rb, c->net_fd, &n);
        struct net_counters sum = {0};
        if (r == 0)
            r = procfs_parse_netdev_skip(t->rb.data, n, is_lo, netns_cb, &sum);
        if (r < 0) {
            warn_container(c, WARNED_NET, "net/dev", r);
            continue;
        }
        c->staged_net = sum;
        c->staged_have_net = true;
    }
}

static void build_container(struct telemetry *t, struct tcont *c, int64_t now)
{
    const struct cgroup_stats *o = &c->st, *s = &c->staged;
    int64_t dt = c->sampled && now > c->ts ? now - c->ts : 0;
    bool prev = c->sampled;

    PbContainer *p = &c->pb;
    p->id = c->id;
    p->name = c->name;
    p->pid = (uint32_t)c->pid;
    p->service = c->service;
    p->task = c->task;
    p->stack = c->stack;

    PbCpu *cpu = &c->pb_cpu;
    cpu->usage_ns = s->cpu_usage_ns;
    cpu->user_ns = s->cpu_user_ns;
    cpu->system_ns = s->cpu_system_ns;
    cpu->percent = prev && (o->have & CGROUP_HAVE_CPU_USAGE)
                       ? rate_per_s(s->cpu_usage_ns, o->cpu_usage_ns, dt) / 1e7
                       : 0;
    cpu->limit_cpus = s->cpu_quota_us > 0 && s->cpu_period_us
                          ? (double)s->cpu_quota_us / (double)s->cpu_period_us
                          : 0;
    cpu->throttling = NULL;
    if (s->have & CGROUP_HAVE_THROTTLE) {
        PbThrottling *th = &c->pb_thr;
        bool fresh = c->read_ok & ((1u << CGROUP_V2_CPU_STAT) | (1u << CGROUP_V1_CPU_STAT));
        if (fresh) {
            th->throttled_pct = 0;
            if (prev && (o->have & CGROUP_HAVE_THROTTLE) && s->nr_periods > o->nr_periods &&
                s->nr_throttled >= o->nr_throttled)
                th->throttled_pct = (double)(s->nr_throttled - o->nr_throttled) * 100.0 /
                                    (double)(s->nr_periods - o->nr_periods);
            c->ts_throttle = now;
        }
        th->periods = s->nr_periods;
        th->throttled_periods = s->nr_throttled;
        th->throttled_ns = s->throttled_ns;
        cpu->throttling = th;
    }
    p->cpu = (s->have & CGROUP_HAVE_CPU_USAGE) ? cpu : NULL;

    PbMemory *m = &c->pb_mem;
    m->current_bytes = s->mem_current;
    m->limit_bytes =
        (s->have & CGROUP_HAVE_MEM_LIMIT) && s->mem_limit != CGROUP_UNLIMITED ? s->mem_limit : 0;
    m->peak_bytes = (s->have & CGROUP_HAVE_MEM_PEAK) ? s->mem_peak : 0;
    m->working_set_bytes = cgroup_working_set(s);
    m->anon_bytes = s->mem_anon;
    m->file_bytes = s->mem_file;
    m->slab_bytes = s->mem_slab;
    m->sock_bytes = s->mem_sock;
    m->shmem_bytes = s->mem_shmem;
    m->inactive_file_bytes = s->mem_inactive_file;
    m->oom_events = s->mem_oom;
    m->oom_kill_events = s->mem_oom_kill;
    p->memory = (s->have & CGROUP_HAVE_MEM_CURRENT) ? m : NULL;

    /* Detail counters: rates over the time since they were last read. */
    int64_t ddt = c->detail_now && c->sampled && now > c->ts_detail ? now - c->ts_detail : 0;
    PbIo *io = &c->pb_io;
    io->read_bytes = s->io_read_bytes;
    io->write_bytes = s->io_write_bytes;
    io->read_ops = s->io_read_ops;
    io->write_ops = s->io_write_ops;
    if (c->detail_now) {
        bool ok = (o->have & CGROUP_HAVE_IO_BYTES) && ddt > 0;
        io->read_bytes_per_s = ok ? rate_per_s(s->io_read_bytes, o->io_read_bytes, ddt) : 0;
        io->write_bytes_per_s = ok ? rate_per_s(s->io_write_bytes, o->io_write_bytes, ddt) : 0;
    }
    p->io = (s->have & (CGROUP_HAVE_IO_BYTES | CGROUP_HAVE_IO_OPS)) ? io : NULL;

    c->pb_pids.current = s->pids_current;
    c->pb_pids.limit =
        (s->have & CGROUP_HAVE_PIDS_LIMIT) && s->pids_limit != CGROUP_UNLIMITED ? s->pids_limit : 0;
    p->pids = (s->have & CGROUP_HAVE_PIDS) ? &c->pb_pids : NULL;

    static const uint32_t psi_bits[3] = {CGROUP_HAVE_PSI_CPU, CGROUP_HAVE_PSI_MEMORY,
                                         CGROUP_HAVE_PSI_IO};
    const struct procfs_psi *cur[3] = {&s->psi_cpu, &s->psi_memory, &s->psi_io};
    const struct procfs_psi *old[3] = {&o->psi_cpu, &o->psi_memory, &o->psi_io};
    PbPsi **slot[3] = {&c->pb_pressure.cpu, &c->pb_pressure.memory, &c->pb_pressure.io};
    bool any_psi = false;
    for (int i = 0; i < 3; i++) {
        *slot[i] = NULL;
        if (!(s->have & psi_bits[i]))
            continue;
        if (c->detail_now)
            psi_pb(&c->pb_psi[i], cur[i], old[i], (o->have & psi_bits[i]) && ddt > 0, ddt);
        *slot[i] = &c->pb_psi[i];
        any_psi = true;
    }
    p->pressure = any_psi ? &c->pb_pressure : NULL;

    p->net = NULL;
    if (c->staged_have_net) {
        PbNet *n = &c->pb_net;
        const struct net_counters *a = &c->net, *b = &c->staged_net;
        n->rx_bytes = b->rx_bytes;
        n->rx_packets = b->rx_packets;
        n->rx_errors = b->rx_errs;
        n->rx_drops = b->rx_drop;
        n->tx_bytes = b->tx_bytes;
        n->tx_packets = b->tx_packets;
        n->tx_errors = b->tx_errs;
        n->tx_drops = b->tx_drop;
        bool ok = prev && c->have_net;
        n->rx_bytes_per_s = ok ? rate_per_s(b->rx_bytes, a->rx_bytes, dt) : 0;
        n->tx_bytes_per_s = ok ? rate_per_s(b->tx_bytes, a->tx_bytes, dt) : 0;
        p->net = n;
    }

    if (c->detail_now)
        c->ts_detail = now;
    p->detail_timestamp_ms = c->ts_detail;

    /* Commit: this reading is the base of the next cycle's rates. */
    c->st = c->staged;
    c->net = c->staged_net;
    c->have_net = c->staged_have_net;
    c->ts = now;
    c->sampled = true;
}

int telemetry_collect(struct telemetry *t, int64_t now, const struct telemetry_sample **ret)
{
    uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_ns(CLOCK_MONOTONIC);
    t->seq++;
    t->now = now;
    t->dt_ms = t->has_last && now > t->last_now ? now - t->last_now : 0;
    unsigned every = t->detail_every;

    for (size_t i = 0; i < t->n_c; i++) {
        struct tcont *c = t->c[i];
        c->skip = c->gone;
        c->read_ok = 0;
        if (c->skip)
            continue;
        c->staged = c->st;
        c->staged_net = c->net;
        bool all = !c->sampled || c->refresh;
        c->detail_now = all || every <= 1 || (t->seq + c->phase) % every == 0;
        c->limits_now = all || t->limits_every <= 1 || (t->seq + c->phase) % t->limits_every == 0;
        c->refresh = false;
    }
    read_cgroups(t);
    read_netns(t);
    collect_host(t, every <= 1 || (t->seq - 1) % every == 0);

    size_t n = 0, skipped = 0;
    for (size_t i = 0; i < t->n_c; i++) {
        struct tcont *c = t->c[i];
        if (c->skip) {
            skipped++;
            continue;
        }
        build_container(t, c, now);
        t->pb_containers[n++] = &c->pb;
    }

    PbBatch *b = &t->batch;
    b->agent_id = t->agent_id;
    b->hostname = t->hostname;
    b->timestamp_ms = now;
    b->seq = t->seq;
    b->interval_ms = (uint64_t)t->dt_ms;
    b->cgroup_version = t->fs ? (uint32_t)cgroup_fs_version(t->fs) : 0;
    b->host = &t->host;
    b->n_containers = n;
    b->containers = t->pb_containers;
    b->containers_skipped = (uint32_t)skipped;
    uint64_t cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall1 = clock_ns(CLOCK_MONOTONIC);
    b->collect_cpu_us = (cpu1 - cpu0) / 1000;

    size_t len = axion__agent__v1__telemetry_batch__get_packed_size(b);
    if (len > t->pack_cap) {
        size_t cap = t->pack_cap ? t->pack_cap : 4096;
        while (cap < len)
            cap *= 2;
        uint8_t *p = realloc(t->pack, cap);
        if (!p)
            return -ENOMEM;
        t->pack = p;
        t->pack_cap = cap;
    }
    axion__agent__v1__telemetry_batch__pack(b, t->pack);

    t->sample = (struct telemetry_sample){
        .timestamp_ms = now,
        .seq = t->seq,
        .n_containers = n,
        .n_skipped = skipped,
        .cpu_ns = cpu1 - cpu0,
        .wall_ns = wall1 - wall0,
        .batch = b,
    };
    t->last_now = now;
    t->has_last = true;
    for (size_t i = 0; i < t->n_sinks; i++)
        t->sinks[i].emit(t->sinks[i].ud, t->pack, len, &t->sample);
    if (ret)
        *ret = &t->sample;
    return 0;
}

/* ---- printing ------------------------------------------------------------------------------ */

/* Sizes the way docker stats prints them: binary units with 4 significant digits for memory
 * (units.BytesSize), decimal units with 3 for traffic (units.HumanSizeWithPrecision). */
static void fmt_size(char *out, size_t cap, double v, bool binary)
{
    static const char *const bin[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    static const char *const dec[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    double base = binary ? 1024.0 : 1000.0;
    size_t i = 0;
    while (v >= base && i + 1 < ARRAY_SIZE(bin)) {
        v /= base;
        i++;
    }
    snprintf(out, cap, "%.*g%s", binary ? 4 : 3, v, binary ? bin[i] : dec[i]);
}

static void fmt_pair(char *out, size_t cap, double a, double b, bool binary)
{
    char x[32], y[32];
    fmt_size(x, sizeof(x), a, binary);
    fmt_size(y, sizeof(y), b, binary);
    snprintf(out, cap, "%s / %s", x, y);
}

static void fmt_rate(char *out, size_t cap, double v)
{
    fmt_size(out, cap, v, false);
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "/s");
}

static void fmt_duration(char *out, size_t cap, double s)
{
    /* from a stored message: any double, NaN included */
    uint64_t t = s > 0 && s < 1e15 ? (uint64_t)s : 0;
    if (t >= 86400)
        snprintf(out, cap, "%llud%lluh", (unsigned long long)(t / 86400),
                 (unsigned long long)(t % 86400 / 3600));
    else if (t >= 3600)
        snprintf(out, cap, "%lluh%02llum", (unsigned long long)(t / 3600),
                 (unsigned long long)(t % 3600 / 60));
    else
        snprintf(out, cap, "%llum%02llus", (unsigned long long)(t / 60),
                 (unsigned long long)(t % 60));
}

/* What docker stats shows for one container. */
struct stats_row {
    double cpu_pct, mem_pct;
    uint64_t mem_usage, mem_limit, net_rx, net_tx, blk_read, blk_write, pids;
};

static struct stats_row stats_row(const PbBatch *b, const PbContainer *c)
{
    struct stats_row r = {0};
    uint64_t host_mem = b->host && b->host->memory ? b->host->memory->total_bytes : 0;
    r.cpu_pct = c->cpu ? c->cpu->percent : 0;
    if (c->memory) {
        r.mem_usage = c->memory->working_set_bytes;
        /* docker stats shows the host's memory for a container without a limit */
        uint64_t lim = c->memory->limit_bytes;
        if (!lim || (host_mem && lim > host_mem))
            lim = host_mem;
        r.mem_limit = lim;
        r.mem_pct = lim ? (double)r.mem_usage * 100.0 / (double)lim : 0;
    }
    if (c->net) {
        r.net_rx = c->net->rx_bytes;
        r.net_tx = c->net->tx_bytes;
    }
    if (c->io) {
        r.blk_read = c->io->read_bytes;
        r.blk_write = c->io->write_bytes;
    }
    r.pids = c->pids ? c->pids->current : 0;
    return r;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

#define COLS 8

static void print_text(const PbBatch *b, FILE *out)
{
    const PbHost *h = b->host;
    char x[64], y[64], z[64];
    fprintf(out, "HOST %s  cgroup v%u", b->hostname[0] ? b->hostname : "-", b->cgroup_version);
    if (h) {
        fmt_duration(x, sizeof(x), h->uptime_s);
        fprintf(out, "  %u CPUs  up %s  load %.2f %.2f %.2f", h->ncpu, x, h->load1, h->load5,
                h->load15);
    }
    fputc('\n', out);
    if (h && h->cpu)
        fprintf(out, "CPU   %.2f%%  (user %.2f%%  system %.2f%%  iowait %.2f%%  steal %.2f%%)\n",
                h->cpu->busy_pct, h->cpu->user_pct, h->cpu->system_pct, h->cpu->iowait_pct,
                h->cpu->steal_pct);
    if (h && h->memory) {
        const PbHostMemory *m = h->memory;
        uint64_t used =
            m->total_bytes > m->available_bytes ? m->total_bytes - m->available_bytes : 0;
        fmt_pair(x, sizeof(x), (double)used, (double)m->total_bytes, true);
        fmt_pair(y, sizeof(y), (double)sub0(m->swap_total_bytes, m->swap_free_bytes),
                 (double)m->swap_total_bytes, true);
        fmt_size(z, sizeof(z), (double)m->cached_bytes, true);
        fprintf(out, "MEM   %s (%.2f%%)  cached %s  swap %s  oom kills %llu\n", x,
                m->total_bytes ? (double)used * 100.0 / (double)m->total_bytes : 0, z, y,
                (unsigned long long)h->oom_kills);
    }
    if (h && h->pressure) {
        const PbPsi *p[3] = {h->pressure->cpu, h->pressure->memory, h->pressure->io};
        static const char *const names[3] = {"cpu", "memory", "io"};
        fprintf(out, "PSI  ");
        for (int i = 0; i < 3; i++)
            if (p[i])
                fprintf(out, " %s %.2f%% (full %.2f%%)", names[i], p[i]->some_pct, p[i]->full_pct);
        fputc('\n', out);
    }
    for (size_t i = 0; h && i < h->n_disks; i++) {
        const PbDisk *d = h->disks[i];
        fmt_rate(x, sizeof(x), d->read_bytes_per_s);
        fmt_rate(y, sizeof(y), d->write_bytes_per_s);
        fprintf(out, "DISK  %-15s read %-10s write %-10s util %.1f%%\n", d->name, x, y,
                d->util_pct);
    }
    for (size_t i = 0; h && i < h->n_interfaces; i++) {
        const PbNetIf *n = h->interfaces[i];
        fmt_rate(x, sizeof(x), n->rx_bytes_per_s);
        fmt_rate(y, sizeof(y), n->tx_bytes_per_s);
        fprintf(out, "NET   %-15s rx %-10s tx %s\n", n->name, x, y);
    }
    for (size_t i = 0; h && i < h->n_filesystems; i++) {
        const PbFs *f = h->filesystems[i];
        uint64_t used = sub0(f->total_bytes, f->free_bytes);
        fmt_pair(x, sizeof(x), (double)used, (double)f->total_bytes, true);
        fprintf(out, "FS    %-15s %s (%.1f%%)\n", f->path, x,
                f->total_bytes ? (double)used * 100.0 / (double)f->total_bytes : 0);
    }
    fputc('\n', out);

    /* The table, with columns as wide as their widest cell and 3 blanks between. */
    static const char *const head[COLS] = {"CONTAINER ID",      "NAME",  "CPU %",
                                           "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                                           "BLOCK I/O",         "PIDS"};
    size_t w[COLS];
    for (int k = 0; k < COLS; k++)
        w[k] = strlen(head[k]);
    char(*cells)[COLS][96] = calloc(b->n_containers ? b->n_containers : 1, sizeof(*cells));
    for (size_t i = 0; cells && i < b->n_containers; i++) {
        const PbContainer *c = b->containers[i];
        struct stats_row r = stats_row(b, c);
        snprintf(cells[i][0], 96, "%.12s", c->id);
        snprintf(cells[i][1], 96, "%.80s", c->name[0] ? c->name : "-");
        snprintf(cells[i][2], 96, "%.2f%%", r.cpu_pct);
        fmt_pair(cells[i][3], 96, (double)r.mem_usage, (double)r.mem_limit, true);
        snprintf(cells[i][4], 96, "%.2f%%", r.mem_pct);
        fmt_pair(cells[i][5], 96, (double)r.net_rx, (double)r.net_tx, false);
        fmt_pair(cells[i][6], 96, (double)r.blk_read, (double)r.blk_write, false);
        snprintf(cells[i][7], 96, "%llu", (unsigned long long)r.pids);
        for (int k = 0; k < COLS; k++)
            if (strlen(cells[i][k]) > w[k])
                w[k] = strlen(cells[i][k]);
    }
    for (int k = 0; k < COLS; k++)
        fprintf(out, "%-*s%s", k + 1 < COLS ? (int)w[k] : 0, head[k], k + 1 < COLS ? "   " : "\n");
    for (size_t i = 0; cells && i < b->n_containers; i++)
        for (int k = 0; k < COLS; k++)
            fprintf(out, "%-*s%s", k + 1 < COLS ? (int)w[k] : 0, cells[i][k],
                    k + 1 < COLS ? "   " : "\n");
    free(cells);
}

/* uint64 → JSON integer (int64), saturating */
static json_int_t jint(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

/* A JSON string; bytes that are not ASCII become '?' when the text is not valid UTF-8. */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *c = strdup(s);
    if (!c)
        return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(c);
    free(c);
    return v;
}

static json_t *psi_json(const PbPsi *p)
{
    if (!p)
        return json_null();
    return json_pack("{s:f,s:f,s:I,s:I}", "some_pct", p->some_pct, "full_pct", p->full_pct,
                     "some_total_us", jint(p->some_total_us), "full_total_us",
                     jint(p->full_total_us));
}

static json_t *pressure_json(const PbPressure *p)
{
    if (!p)
        return json_null();
    return json_pack("{s:o,s:o,s:o}", "cpu", psi_json(p->cpu), "memory", psi_json(p->memory), "io",
                     psi_json(p->io));
}

static json_t *host_json(const PbBatch *b)
{
    const PbHost *h = b->host;
    if (!h)
        return json_null();
    json_t *o = json_pack("{s:I,s:f,s:[f,f,f],s:I,s:o}", "ncpu", (json_int_t)h->ncpu, "uptime_s",
                          h->uptime_s, "load", h->load1, h->load5, h->load15, "oom_kills",
                          jint(h->oom_kills), "pressure", pressure_json(h->pressure));
    if (!o)
        return NULL;
    if (h->cpu)
        json_object_set_new(o, "cpu",
                            json_pack("{s:f,s:f,s:f,s:f,s:f}", "busy_pct", h->cpu->busy_pct,
                                      "user_pct", h->cpu->user_pct, "system_pct",
                                      h->cpu->system_pct, "iowait_pct", h->cpu->iowait_pct,
                                      "steal_pct", h->cpu->steal_pct));
    if (h->memory)
        json_object_set_new(
            o, "memory",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "total_bytes", jint(h->memory->total_bytes),
                      "available_bytes", jint(h->memory->available_bytes), "free_bytes",
                      jint(h->memory->free_bytes), "cached_bytes", jint(h->memory->cached_bytes),
                      "swap_total_bytes", jint(h->memory->swap_total_bytes), "swap_free_bytes",
                      jint(h->memory->swap_free_bytes)));
    json_t *disks = json_array(), *nets = json_array(), *fss = json_array();
    for (size_t i = 0; disks && i < h->n_disks; i++) {
        const PbDisk *d = h->disks[i];
        json_array_append_new(disks, json_pack("{s:o,s:I,s:I,s:f,s:f,s:f}", "name", jstr(d->name),
                                               "read_bytes", jint(d->read_bytes), "write_bytes",
                                               jint(d->write_bytes), "read_bytes_per_s",
                                               d->read_bytes_per_s, "write_bytes_per_s",
                                               d->write_bytes_per_s, "util_pct", d->util_pct));
    }
    for (size_t i = 0; nets && i < h->n_interfaces; i++) {
        const PbNetIf *n = h->interfaces[i];
        json_array_append_new(
            nets, json_pack("{s:o,s:I,s:I,s:f,s:f}", "name", jstr(n->name), "rx_bytes",
                            jint(n->rx_bytes), "tx_bytes", jint(n->tx_bytes), "rx_bytes_per_s",
                            n->rx_bytes_per_s, "tx_bytes_per_s", n->tx_bytes_per_s));
    }
    for (size_t i = 0; fss && i < h->n_filesystems; i++) {
        const PbFs *f = h->filesystems[i];
        json_array_append_new(fss,
                              json_pack("{s:o,s:I,s:I,s:I}", "path", jstr(f->path), "total_bytes",
                                        jint(f->total_bytes), "free_bytes", jint(f->free_bytes),
                                        "available_bytes", jint(f->available_bytes)));
    }
    json_object_set_new(o, "disks", disks ? disks : json_null());
    json_object_set_new(o, "interfaces", nets ? nets : json_null());
    json_object_set_new(o, "filesystems", fss ? fss : json_null());
    return o;
}

static json_t *container_json(const PbBatch *b, const PbContainer *c)
{
    struct stats_row r = stats_row(b, c);
    json_t *o = json_pack(
        "{s:o,s:o,s:I,s:o,s:o,s:o,s:f,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:o,s:I}", "id", jstr(c->id),
        "name", jstr(c->name), "pid", (json_int_t)c->pid, "service", jstr(c->service), "task",
        jstr(c->task), "stack", jstr(c->stack), "cpu_percent", r.cpu_pct, "mem_usage_bytes",
        jint(r.mem_usage), "mem_limit_bytes", jint(r.mem_limit), "mem_percent", r.mem_pct,
        "net_rx_bytes", jint(r.net_rx), "net_tx_bytes", jint(r.net_tx), "block_read_bytes",
        jint(r.blk_read), "block_write_bytes", jint(r.blk_write), "pids", jint(r.pids), "pressure",
        pressure_json(c->pressure), "detail_timestamp_ms", (json_int_t)c->detail_timestamp_ms);
    if (!o)
        return NULL;
    if (c->cpu) {
        json_t *cpu = json_pack("{s:I,s:I,s:I,s:f}", "usage_ns", jint(c->cpu->usage_ns), "user_ns",
                                jint(c->cpu->user_ns), "system_ns", jint(c->cpu->system_ns),
                                "limit_cpus", c->cpu->limit_cpus);
        if (cpu && c->cpu->throttling)
            json_object_set_new(cpu, "throttling",
                                json_pack("{s:I,s:I,s:I,s:f}", "periods",
                                          jint(c->cpu->throttling->periods), "throttled_periods",
                                          jint(c->cpu->throttling->throttled_periods),
                                          "throttled_ns", jint(c->cpu->throttling->throttled_ns),
                                          "throttled_pct", c->cpu->throttling->throttled_pct));
        json_object_set_new(o, "cpu", cpu ? cpu : json_null());
    }
    if (c->memory) {
        const PbMemory *m = c->memory;
        json_object_set_new(
            o, "memory",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "current_bytes",
                      jint(m->current_bytes), "limit_bytes", jint(m->limit_bytes), "peak_bytes",
                      jint(m->peak_bytes), "working_set_bytes", jint(m->working_set_bytes),
                      "anon_bytes", jint(m->anon_bytes), "file_bytes", jint(m->file_bytes),
                      "slab_bytes", jint(m->slab_bytes), "sock_bytes", jint(m->sock_bytes),
                      "shmem_bytes", jint(m->shmem_bytes), "oom_events", jint(m->oom_events),
                      "oom_kill_events", jint(m->oom_kill_events)));
    }
    if (c->net)
        json_object_set_new(
            o, "net",
            json_pack("{s:I,s:I,s:I,s:I,s:f,s:f}", "rx_packets", jint(c->net->rx_packets),
                      "tx_packets", jint(c->net->tx_packets), "rx_drops", jint(c->net->rx_drops),
                      "tx_drops", jint(c->net->tx_drops), "rx_bytes_per_s", c->net->rx_bytes_per_s,
                      "tx_bytes_per_s", c->net->tx_bytes_per_s));
    if (c->io)
        json_object_set_new(o, "io",
                            json_pack("{s:I,s:I,s:f,s:f}", "read_ops", jint(c->io->read_ops),
                                      "write_ops", jint(c->io->write_ops), "read_bytes_per_s",
                                      c->io->read_bytes_per_s, "write_bytes_per_s",
                                      c->io->write_bytes_per_s));
    if (c->pids)
        json_object_set_new(o, "pids_limit", json_integer(jint(c->pids->limit)));
    return o;
}

static int print_json(const PbBatch *b, FILE *out)
{
    json_t *cs = json_array();
    for (size_t i = 0; cs && i < b->n_containers; i++) {
        json_t *c = container_json(b, b->containers[i]);
        if (!c || json_array_append_new(cs, c) < 0) {
            json_decref(cs);
            return -ENOMEM;
        }
    }
    json_t *host = cs ? host_json(b) : NULL;
    json_t *o =
        host ? json_pack("{s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "agent_id", jstr(b->agent_id),
                         "hostname", jstr(b->hostname), "timestamp_ms", (json_int_t)b->timestamp_ms,
                         "seq", jint(b->seq), "interval_ms", jint(b->interval_ms), "cgroup_version",
                         (json_int_t)b->cgroup_version, "containers_skipped",
                         jint(b->containers_skipped), "host", host, "containers", cs)
             : NULL;
    if (!o) {
        if (!host)
            json_decref(cs);
        return -ENOMEM;
    }
    int r = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -EIO : 0;
    json_decref(o);
    if (r == 0 && fputc('\n', out) == EOF)
        r = -EIO;
    return r;
}

int telemetry_print(const uint8_t *pb, size_t len, FILE *out, bool json)
{
    if (len > TELEMETRY_MAX_PRINT_BYTES)
        return -EMSGSIZE;
    PbBatch *b = axion__agent__v1__telemetry_batch__unpack(NULL, len, pb);
    if (!b)
        return -EBADMSG;
    int r = 0;
    if (json)
        r = print_json(b, out);
    else
        print_text(b, out);
    axion__agent__v1__telemetry_batch__free_unpacked(b, NULL);
    if (r == 0 && (fflush(out) == EOF || ferror(out)))
        r = -EIO;
    return r;
}
