/* The systemd notification protocol, without libsystemd: one datagram to $NOTIFY_SOCKET. */
#pragma once

#include <stdint.h>

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=…"). Returns 1 when sent,
 * 0 when NOTIFY_SOCKET is not set, negative errno on failure. */
int sdnotify_send(const char *state);
/* The watchdog interval from $WATCHDOG_USEC (and $WATCHDOG_PID, when set, must be ours);
 * 0 when no watchdog is asked for. */
uint64_t sdnotify_watchdog_usec(void);
