/* fileio: reading a whole file that comes from outside (a manifest, an attached file, the
 * config) the one safe way. Only a regular file is read: a FIFO, a directory, a socket or a
 * device is refused by name and never blocks us (the file is opened O_NONBLOCK and checked
 * with fstat before anything is read). A path longer than FILEIO_PATH_MAX is refused, not cut. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define FILEIO_PATH_MAX 4095 /* bytes of a path, without its NUL (PATH_MAX - 1) */

/* Reads path into a malloc'ed buffer (NUL-terminated one past the end). 0, or a negative errno
 * with err saying "PATH: cause": -ENAMETOOLONG (the path), -EISDIR, -EINVAL (not a regular
 * file: "is a FIFO, not a regular file"), -EFBIG (more than max bytes), or what open() or
 * read() said. */
int fileio_read(const char *path, size_t max, char **ret_data, size_t *ret_len, char *err,
                size_t errlen);

/* "a regular file", "a directory", "a FIFO", ... for the type bits of st_mode. */
const char *fileio_type(mode_t mode);
