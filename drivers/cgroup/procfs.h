/* Parsers for the host's /proc files that telemetry reads every cycle, and the small text
 * helpers that the cgroup parsers share. Pure functions over a text buffer: no I/O, no heap.
 * Every parser writes its result only on success and returns 0, -EINVAL for text that is not in
 * the kernel's format, or -ERANGE for a number that does not fit 64 bits. Keys and columns that
 * later kernels add are ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "key value" lines (cpu.stat, memory.stat, /proc/vmstat, "Key:  value kB" in /proc/meminfo).
 * Every key found in keys[] has its value stored in *dst and its bit (1 << index) set in
 * *ret_found. Lines with other keys are skipped without being parsed. At most 32 keys. */
struct procfs_key {
    const char *key;
    uint64_t *dst;
};
int procfs_parse_keyed(const char *s, size_t n, const struct procfs_key *keys, size_t nkeys,
                       uint32_t *ret_found);

/* Parses one unsigned decimal number after optional blanks; *p moves past it. */
int procfs_parse_u64(const char **p, const char *end, uint64_t *ret);

/* The aggregate "cpu" line of /proc/stat in USER_HZ ticks, and the number of "cpuN" lines. */
struct procfs_cpu {
    uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
};
struct procfs_stat {
    struct procfs_cpu cpu;
    uint32_t ncpu;
};
int procfs_parse_stat(const char *s, size_t n, struct procfs_stat *ret);

/* /proc/meminfo, converted to bytes. */
struct procfs_meminfo {
    uint64_t total, free, available, buffers, cached, swap_total, swap_free;
};
int procfs_parse_meminfo(const char *s, size_t n, struct procfs_meminfo *ret);

struct procfs_loadavg {
    double load1, load5, load15;
};
int procfs_parse_loadavg(const char *s, size_t n, struct procfs_loadavg *ret);
/* /proc/uptime: seconds since boot. */
int procfs_parse_uptime(const char *s, size_t n, double *ret);

/* PSI (/proc/pressure/<res>, and <cgroup>/<res>.pressure): the cumulative stall time in µs of
 * the "some" and "full" lines. A file without a "full" line (cpu before Linux 5.13) has
 * has_full false and full_total 0. */
struct procfs_psi {
    uint64_t some_total;
    uint64_t full_total;
    bool has_full;
};
int procfs_parse_psi(const char *s, size_t n, struct procfs_psi *ret);

/* One line of /proc/diskstats. Sectors are 512 bytes whatever the device's block size. */
#define PROCFS_NAME_MAX 32
struct procfs_disk {
    char name[PROCFS_NAME_MAX];
    uint32_t major, minor;
    uint64_t reads, read_sectors, writes, write_sectors, io_ms;
};
/* Calls fn for every device line (fn returning non-zero stops and is returned). Devices whose
 * name does not fit PROCFS_NAME_MAX are skipped. */
int procfs_parse_diskstats(const char *s, size_t n,
                           int (*fn)(void *ud, const struct procfs_disk *d), void *ud);
/* Whether telemetry reports the device: whole disks (sda, vda, xvda, nvme0n1, mmcblk0, dm-0,
 * md0), not their partitions (sda1, nvme0n1p1, mmcblk0p1) nor loop, ram, zram or fd devices,
 * whose I/O is counted again on the disk below them. */
bool procfs_disk_is_reported(const char *name);

/* One interface of /proc/net/dev (the host's, or /proc/<pid>/net/dev of a namespace). */
struct procfs_netdev {
    char name[PROCFS_NAME_MAX];
    uint64_t rx_bytes, rx_packets, rx_errs, rx_drop;
    uint64_t tx_bytes, tx_packets, tx_errs, tx_drop;
};
int procfs_parse_netdev(const char *s, size_t n, int (*fn)(void *ud, const struct procfs_netdev *d),
                        void *ud);
/* The same, but the lines of interfaces for which skip(name) is true are passed over without
 * parsing their 16 numbers (the collector drops lo and the host's veth lines: most of the text). */
int procfs_parse_netdev_skip(const char *s, size_t n, bool (*skip)(const char *name),
                             int (*fn)(void *ud, const struct procfs_netdev *d), void *ud);
