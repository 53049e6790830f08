/* The small value grammars docker's compose loader borrows from Go and docker libraries,
 * written again for C: Go's strconv.Atoi and time.ParseDuration, go-units' RAMInBytes,
 * docker's ParseCPUs, google/shlex's Split, Go's fmt.Sprint of a float64, and the image
 * reference normalisation the docker client applies before it creates a service. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compose.h"
#include "compose/compose_arena.h"

/* [+-]?[0-9]+ → *ret; -EINVAL otherwise (also on overflow). */
int compose_util_decimal(const char *s, int64_t *ret);

/* A Go duration ("1h2m3.5s", "300ms", "0", units ns us µs ms s m h) → nanoseconds. */
int compose_util_duration(const char *s, int64_t *ret_ns);

/* A size in bytes, binary units: "512", "512k", "1.5G", "64MiB", "2 gb" (go-units RAMInBytes). */
int compose_util_ram_bytes(const char *s, int64_t *ret);

/* A number of CPUs ("0.5", "2", "1.25", "1e-3", "3/2") → nano CPUs; -EINVAL when it is not a
 * number, is negative or is finer than one nano CPU. */
int compose_util_nano_cpus(const char *s, int64_t *ret);

/* Splits a command line the way google/shlex does (quotes, backslashes, # comments) into
 * words allocated in a. -EINVAL with *ret_msg on an unterminated quote or escape. */
int compose_util_shlex(struct compose_arena *a, const char *s, struct compose_strv *ret,
                       const char **ret_msg);

/* Go's fmt.Sprint(float64): the shortest digits that read back to the same value, in
 * exponent form below 1e-4 and from 1e6 ("1e+06", "1.5e-05"), "+Inf", "-Inf", "NaN". */
void compose_util_format_float(double v, char *out, size_t len);

/* The image name the docker client sends when it creates a service: a valid reference in its
 * familiar form with ":latest" added when it has neither tag nor digest ("busybox" →
 * "busybox:latest", "docker.io/library/redis" → "redis:latest"). Returns 0 and a malloc'ed
 * string, -EINVAL when image is not a valid reference (the client then sends it unchanged), or
 * -ENOMEM. */
int compose_util_image_with_tag(const char *image, char **ret);

/* A hash map from strings to uintptr_t (an index, a pointer), for duplicate checks and keyed
 * inserts that must stay linear on a large manifest. Keys are not copied: they must outlive the
 * map. A zeroed struct is an empty map. */
struct compose_util_map {
    struct compose_util_map_entry {
        const char *key;
        size_t len;
        uintptr_t value;
    } * v;
    size_t n, cap;
};

/* true and *ret_value (may be NULL) when key is in the map. */
bool compose_util_map_get(const struct compose_util_map *m, const char *key, size_t len,
                          uintptr_t *ret_value);
/* Sets key → value, replacing. 0 or -ENOMEM. */
int compose_util_map_put(struct compose_util_map *m, const char *key, size_t len, uintptr_t value);
void compose_util_map_release(struct compose_util_map *m);

/* Go's filepath.Join(dir, rel) on Linux: the two joined by "/" and cleaned lexically (no ".",
 * "..", "//" or trailing "/"; ".." at the root stays at the root). Allocated in a; NULL when out
 * of memory. */
char *compose_util_path_join(struct compose_arena *a, const char *dir, const char *rel);

/* Whether s is an absolute Windows path by docker's rule (cli/compose/loader isAbs): a drive
 * letter and a slash ("C:\data", "c:/x") or a UNC path ("\\server\share\x"). */
bool compose_util_windows_abs(const char *s);
