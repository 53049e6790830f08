#include "support/testutil.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

#include "sources/local.h"

struct got {
    char msg[LOCAL_MSG_MAX + 1];
    int count;
};

static void on_msg(const char *msg, void *ud)
{
    struct got *g = ud;
    snprintf(g->msg, sizeof(g->msg), "%s", msg);
    g->count++;
    ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void test_wake_roundtrip(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/agent.sock", dir);

    /* nobody listens yet: not an error, just not delivered */
    assert_int_equal(local_send(path, "wake"), 0);

    struct got g = {0};
    struct local_listener *l;
    char err[256];
    assert_int_equal(local_listen(EV_DEFAULT, path, on_msg, &g, &l, err, sizeof(err)), 0);
    assert_int_equal(local_send(path, "wake web"), 1);
    ev_run(EV_DEFAULT, 0);
    assert_int_equal(g.count, 1);
    assert_string_equal(g.msg, "wake web");

    /* oversize messages are dropped, the next one still arrives */
    char big[LOCAL_MSG_MAX + 50];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(local_send(path, big), 1);
    assert_int_equal(local_send(path, "wake"), 1);
    ev_run(EV_DEFAULT, 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(g.msg, "wake");

    l = local_listener_free(l);
    assert_int_equal(local_send(path, "wake"), 0);
    tu_rm_rf(dir);
    free(dir);
}

static void noop(const char *msg, void *ud)
{
}

/* Only a stale socket is replaced. Whatever else is at the path stays, untouched, with a
 * message that says what it is (the review put local.socket on the store and lost it). */
static void test_only_a_socket_is_replaced(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512], target[512], err[512];
    snprintf(path, sizeof(path), "%s/agent.sock", dir);
    snprintf(target, sizeof(target), "%s/store.db", dir);
    assert_int_equal(tu_write_file(target, "precious"), 0);
    struct local_listener *l = NULL;
    const struct {
        const char *make, *what;
    } cases[] = {
        {"printf precious > %s", "a regular file"},
        {"mkdir %s && touch %s/inside", "a directory"},
        {"ln -s store.db %s", "a symbolic link"},
        {"ln -s /nonexistent %s", "a symbolic link"},
        {"mkfifo %s", "a FIFO"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(tu_sh(cases[i].make, path, path), 0);
        struct stat before;
        assert_int_equal(lstat(path, &before), 0);
        err[0] = '\0';
        assert_int_equal(local_listen(EV_DEFAULT, path, noop, NULL, &l, err, sizeof(err)), -EEXIST);
        if (!strstr(err, cases[i].what) || !strstr(err, "not a socket: it is left alone"))
            fail_msg("%s: %s", cases[i].what, err);
        struct stat after;
        assert_int_equal(lstat(path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino);
        assert_int_equal(before.st_mode, after.st_mode);
        assert_int_equal(tu_sh("rm -rf %s", path), 0);
    }
    /* a character device, where root can make one */
    if (geteuid() == 0 && tu_sh("mknod %s c 1 3", path) == 0) {
        assert_int_equal(local_listen(EV_DEFAULT, path, noop, NULL, &l, err, sizeof(err)), -EEXIST);
        assert_non_null(strstr(err, "a character device"));
        assert_int_equal(unlink(path), 0);
    }
    _cleanup_free_ char *kept = tu_sh_out("cat %s", target);
    assert_string_equal(kept, "precious");

    /* A socket someone listens on is not taken over. */
    struct local_listener *first = NULL;
    assert_int_equal(local_listen(EV_DEFAULT, path, noop, NULL, &first, err, sizeof(err)), 0);
    assert_int_equal(local_listen(EV_DEFAULT, path, noop, NULL, &l, err, sizeof(err)), -EADDRINUSE);
    assert_non_null(strstr(err, "another process listens on"));
    assert_int_equal(local_send(path, "wake"), 1); /* still the first one's */
    /* A stale one (its listener gone without removing it) is replaced. */
    struct stat st;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stale.sock", dir);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(lstat(sa.sun_path, &st), 0);
    struct local_listener *fresh = NULL;
    assert_int_equal(local_listen(EV_DEFAULT, sa.sun_path, noop, NULL, &fresh, err, sizeof(err)),
                     0);
    assert_int_equal(local_send(sa.sun_path, "wake"), 1);

    /* At the end, a listener removes only its own socket: a file put there since stays. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(tu_write_file(path, "someone else's"), 0);
    first = local_listener_free(first);
    assert_int_equal(access(path, F_OK), 0);
    fresh = local_listener_free(fresh);
    assert_int_equal(access(sa.sun_path, F_OK), -1);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_roundtrip),
        cmocka_unit_test(test_only_a_socket_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
