/* The local wake-up: the CLI writes desired state through the intake (sources/intake.h) into
 * the store, then wakes the daemon with a datagram on the local socket (local.socket). A daemon
 * that is not running picks the change up when it starts, so a lost wake-up loses nothing. */
#pragma once

#include <ev.h>
#include <stddef.h>

#define LOCAL_MSG_MAX 256

struct local_listener;

typedef void (*local_cb)(const char *msg, void *userdata);

/* Binds the datagram socket at path and calls cb for every message on the loop. Only a stale
 * socket at path is replaced: anything else there (a regular file, a directory, a symbolic
 * link, a FIFO, a device) is left alone (-EEXIST), and so is a socket another process still
 * listens on (-EADDRINUSE). Returns 0 or negative errno with the reason in err. */
int local_listen(struct ev_loop *loop, const char *path, local_cb cb, void *userdata,
                 struct local_listener **ret, char *err, size_t errlen);
/* Stops listening and removes the socket, if what is at the path is still the one it bound. */
struct local_listener *local_listener_free(struct local_listener *l);

/* Sends msg ("wake") to a daemon listening at path. Returns 1 when delivered, 0 when no daemon
 * listens there, negative errno on other failures. */
int local_send(const char *path, const char *msg);
