/* The local wake-up: the CLI writes desired state through the intake (sources/intake.h) into
 * the store, then wakes the daemon with a datagram on the local socket (local.socket). A daemon
 * that is not running picks the change up when it starts, so a lost wake-up loses nothing. */
#pragma once

#include <ev.h>

#define LOCAL_MSG_MAX 256

struct local_listener;

typedef void (*local_cb)(const char *msg, void *userdata);

/* Binds the datagram socket at path (a stale socket file is replaced) and calls cb for every
 * message on the loop. Returns 0 or negative errno. */
int local_listen(struct ev_loop *loop, const char *path, local_cb cb, void *userdata,
                 struct local_listener **ret);
struct local_listener *local_listener_free(struct local_listener *l);

/* Sends msg ("wake") to a daemon listening at path. Returns 1 when delivered, 0 when no daemon
 * listens there, negative errno on other failures. */
int local_send(const char *path, const char *msg);
