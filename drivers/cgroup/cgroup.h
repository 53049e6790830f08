/* Read-only access to the cgroups of containers, cgroup v2 (unified) and v1 (one hierarchy per
 * controller, optionally with the unified hierarchy beside them: "hybrid"). It only reads:
 *
 *   cgroup_fs_open()      looks at the mounted hierarchy once: v2, or v1 and which controllers
 *   cgroup_handle_open()  finds one container's cgroup from /proc/<pid>/cgroup
 *   cgroup_handle_read()  reads one file of it (kept open, re-read with pread) into stats
 *   cgroup_parse()        the pure parser behind it, for tests and fuzzing
 *
 * A file that does not exist (controller not enabled, old kernel) is normal: the read returns
 * -ENOENT and the stats keep no value for it. A cgroup that disappears (the container stopped)
 * gives -ENODEV from then on. See docs/internals/telemetry.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "drivers/cgroup/procfs.h"
#include "drivers/cgroup/readbuf.h"

enum cgroup_version {
    CGROUP_VERSION_NONE = 0,
    CGROUP_VERSION_1 = 1,
    CGROUP_VERSION_2 = 2,
};

/* Where a file lives: the unified hierarchy (v2, or PSI next to v1 in hybrid mode) or one v1
 * controller's hierarchy. */
enum cgroup_ctrl {
    CGROUP_CTRL_UNIFIED,
    CGROUP_CTRL_CPU,
    CGROUP_CTRL_CPUACCT,
    CGROUP_CTRL_MEMORY,
    CGROUP_CTRL_BLKIO,
    CGROUP_CTRL_PIDS,
    CGROUP_CTRL_MAX_
};

/* Every file the collector reads, one entry per file. */
enum cgroup_file {
    CGROUP_V2_CPU_STAT,
    CGROUP_V2_CPU_MAX,
    CGROUP_V2_MEMORY_CURRENT,
    CGROUP_V2_MEMORY_MAX,
    CGROUP_V2_MEMORY_PEAK,
    CGROUP_V2_MEMORY_STAT,
    CGROUP_V2_MEMORY_EVENTS,
    CGROUP_V2_IO_STAT,
    CGROUP_V2_PIDS_CURRENT,
    CGROUP_V2_PIDS_MAX,
    CGROUP_CPU_PRESSURE, /* v2, or the unified hierarchy of a hybrid v1 host */
    CGROUP_MEMORY_PRESSURE,
    CGROUP_IO_PRESSURE,
    CGROUP_V1_CPUACCT_USAGE,
    CGROUP_V1_CPUACCT_STAT,
    CGROUP_V1_CPU_STAT,
    CGROUP_V1_CPU_CFS_QUOTA,
    CGROUP_V1_CPU_CFS_PERIOD,
    CGROUP_V1_MEMORY_USAGE,
    CGROUP_V1_MEMORY_LIMIT,
    CGROUP_V1_MEMORY_MAX_USAGE,
    CGROUP_V1_MEMORY_STAT,
    CGROUP_V1_MEMORY_OOM_CONTROL,
    CGROUP_V1_BLKIO_BYTES,
    CGROUP_V1_BLKIO_IOS,
    CGROUP_V1_PIDS_CURRENT,
    CGROUP_V1_PIDS_MAX,
    CGROUP_FILE_MAX_
};

/* How often a file is worth reading. Reading memory.stat or a PSI file costs several µs of
 * kernel time each, so only the few files behind CPU %, memory usage and (read elsewhere) network
 * are FAST (every cycle). DETAIL files are read every few cycles: cumulative counters stay exact,
 * only their rates get coarser. LIMITS files change only when someone runs `docker update`: read
 * far more rarely. THROTTLE (cgroup v1 cpu.stat): every cycle when the cgroup has a CPU limit,
 * else with the limits (no limit, no throttling). MEMSTAT (memory.stat): with the detail files,
 * and whenever memory usage moved a lot since it was read, so the working set stays right. */
enum cgroup_tier {
    CGROUP_TIER_FAST,
    CGROUP_TIER_DETAIL,
    CGROUP_TIER_LIMITS,
    CGROUP_TIER_THROTTLE,
    CGROUP_TIER_MEMSTAT,
};

/* Values of one cgroup, in bytes, nanoseconds and microseconds; `have` says which are known. */
enum {
    CGROUP_HAVE_CPU_USAGE = 1u << 0,  /* cpu_usage_ns */
    CGROUP_HAVE_CPU_SPLIT = 1u << 1,  /* cpu_user_ns, cpu_system_ns */
    CGROUP_HAVE_THROTTLE = 1u << 2,   /* nr_periods, nr_throttled, throttled_ns */
    CGROUP_HAVE_CPU_QUOTA = 1u << 3,  /* cpu_quota_us (-1 none) */
    CGROUP_HAVE_CPU_PERIOD = 1u << 4, /* cpu_period_us */
    CGROUP_HAVE_MEM_CURRENT = 1u << 5,
    CGROUP_HAVE_MEM_LIMIT = 1u << 6,
    CGROUP_HAVE_MEM_PEAK = 1u << 7,
    CGROUP_HAVE_MEM_STAT = 1u << 8,      /* mem_anon … mem_inactive_file */
    CGROUP_HAVE_MEM_SLAB_SOCK = 1u << 9, /* mem_slab, mem_sock: v2 only */
    CGROUP_HAVE_MEM_OOM = 1u << 10,      /* mem_oom: v2 only */
    CGROUP_HAVE_MEM_OOM_KILL = 1u << 11,
    CGROUP_HAVE_IO_BYTES = 1u << 12,
    CGROUP_HAVE_IO_OPS = 1u << 13,
    CGROUP_HAVE_PIDS = 1u << 14,
    CGROUP_HAVE_PIDS_LIMIT = 1u << 15,
    CGROUP_HAVE_PSI_CPU = 1u << 16,
    CGROUP_HAVE_PSI_MEMORY = 1u << 17,
    CGROUP_HAVE_PSI_IO = 1u << 18,
};

#define CGROUP_UNLIMITED UINT64_MAX

struct cgroup_stats {
    uint32_t have;
    uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
    uint64_t nr_periods, nr_throttled, throttled_ns;
    int64_t cpu_quota_us; /* -1: no limit */
    uint64_t cpu_period_us;
    uint64_t mem_current, mem_limit, mem_peak; /* mem_limit CGROUP_UNLIMITED: no limit */
    uint64_t mem_anon, mem_file, mem_shmem, mem_inactive_file, mem_active_file;
    uint64_t mem_slab, mem_sock;
    uint64_t mem_oom, mem_oom_kill;
    uint64_t io_read_bytes, io_write_bytes, io_read_ops, io_write_ops;
    uint64_t pids_current, pids_limit; /* pids_limit CGROUP_UNLIMITED: no limit */
    struct procfs_psi psi_cpu, psi_memory, psi_io;
};

/* The file's name in its cgroup directory, its hierarchy and its tier. */
const char *cgroup_file_name(enum cgroup_file f);
enum cgroup_ctrl cgroup_file_ctrl(enum cgroup_file f);
enum cgroup_tier cgroup_file_tier(enum cgroup_file f);

/* Parses the text of file f into st (only the fields that file carries; `have` gains their
 * bits). Returns 0 or -EINVAL / -ERANGE, leaving st untouched on error. */
int cgroup_parse(enum cgroup_file f, const char *text, size_t len, struct cgroup_stats *st);

/* Working set as docker stats and cAdvisor compute it: usage - inactive_file, or usage when
 * inactive_file is unknown or not smaller. */
uint64_t cgroup_working_set(const struct cgroup_stats *st);

struct cgroup_fs;

/* Looks at the hierarchy mounted at root (normally /sys/fs/cgroup): cgroup.controllers at the
 * top means v2; else the v1 controllers are per-controller directories (cpu, cpuacct, memory,
 * blkio, pids, or joined such as cpu,cpuacct), and root/unified, when it holds a cgroup2 tree,
 * gives PSI. Returns 0, -ENOENT when root holds neither, -ENOMEM. */
int cgroup_fs_open(const char *root, struct cgroup_fs **ret);
struct cgroup_fs *cgroup_fs_free(struct cgroup_fs *fs);
enum cgroup_version cgroup_fs_version(const struct cgroup_fs *fs);
/* The files a cycle reads on this host, in the order they are read: all containers' cpu files,
 * then all containers' memory files, and so on (the same kernel code path stays hot). */
size_t cgroup_fs_files(const struct cgroup_fs *fs, const enum cgroup_file **ret);

struct cgroup_handle;

/* Finds the cgroup of the container whose first process is pid, from the lines of
 * <proc_root>/<pid>/cgroup ("0::/system.slice/docker-<id>.scope" on v2, "4:memory:/docker/<id>"
 * per controller on v1). When pid is 0, or the listed path does not exist under root (the agent
 * runs in its own cgroup namespace), the layouts dockerd uses are tried with id:
 * system.slice/docker-<id>.scope and docker/<id>. The root cgroup itself is never taken (its
 * memory.stat is the expensive one, and it is not a container). Returns 0, -ENOENT when no
 * cgroup is found, -EINVAL for a bad id, -ENOMEM. */
int cgroup_handle_open(struct cgroup_fs *fs, const char *proc_root, pid_t pid, const char *id,
                       struct cgroup_handle **ret);
struct cgroup_handle *cgroup_handle_free(struct cgroup_handle *h);
/* The directory of ctrl for this cgroup, NULL when that controller is not there. */
const char *cgroup_handle_dir(const struct cgroup_handle *h, enum cgroup_ctrl ctrl);
/* Whether file f can be read for this cgroup (its controller is there and it was not found
 * missing before). */
bool cgroup_handle_has(const struct cgroup_handle *h, enum cgroup_file f);
/* Number of files the handle holds open. */
size_t cgroup_handle_open_files(const struct cgroup_handle *h);

/* Reads file f into st, using buf as scratch. The file is opened on first use and kept open;
 * later reads are a single pread. Returns 0; -ENOENT when the file does not exist (remembered:
 * it is not tried again); -ENODEV when the cgroup is gone (its directory was removed: every
 * open file is closed then); -EMSGSIZE, -EINVAL or -ERANGE for a file that could not be parsed;
 * other negative errno from open or pread. When the process is out of file descriptors the file
 * is opened, read and closed each time instead. */
int cgroup_handle_read(struct cgroup_handle *h, enum cgroup_file f, struct readbuf *buf,
                       struct cgroup_stats *st);
