/* Fuzzes every cgroup and /proc parser: the first byte picks the parser (a cgroup file kind, or
 * one of the /proc files), the rest is the file's text. The parsers must accept or refuse any
 * text without reading out of bounds; the sanitizers judge. */
#include <stddef.h>
#include <stdint.h>

#include "drivers/cgroup/cgroup.h"
#include "drivers/cgroup/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int disk_cb(void *ud, const struct procfs_disk *d)
{
    *(size_t *)ud += procfs_disk_is_reported(d->name);
    return 0;
}

static int net_cb(void *ud, const struct procfs_netdev *d)
{
    *(size_t *)ud += d->rx_bytes & 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned which = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (which < CGROUP_FILE_MAX_) {
        struct cgroup_stats st = {0};
        if (cgroup_parse((enum cgroup_file)which, s, n, &st) == 0)
            (void)cgroup_working_set(&st);
        return 0;
    }
    size_t count = 0;
    union {
        struct procfs_stat stat;
        struct procfs_meminfo mem;
        struct procfs_loadavg load;
        struct procfs_psi psi;
        double up;
    } u;
    switch (which - CGROUP_FILE_MAX_) {
    case 0:
        procfs_parse_stat(s, n, &u.stat);
        break;
    case 1:
        procfs_parse_meminfo(s, n, &u.mem);
        break;
    case 2:
        procfs_parse_loadavg(s, n, &u.load);
        break;
    case 3:
        procfs_parse_uptime(s, n, &u.up);
        break;
    case 4:
        procfs_parse_psi(s, n, &u.psi);
        break;
    case 5:
        procfs_parse_diskstats(s, n, disk_cb, &count);
        break;
    case 6:
        procfs_parse_netdev(s, n, net_cb, &count);
        break;
    default:
        break;
    }
    return 0;
}
