/* Secrets at rest: the stacks' attached files (secrets, configs, env files alike) are sealed
 * with AES-256-GCM (lib/seal.h) under a key kept beside the store: 32 random bytes in
 * <store without .db>.key, mode 0600, made the first time the store may be created. A file is
 * bound to its stack and name (the associated data), so a row copied elsewhere does not open.
 * A store copied to another host without its key cannot reveal them. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static char *key_path_of(const char *path)
{
    size_t n = strlen(path);
    if (n > 3 && streq(path + n - 3, ".db"))
        n -= 3;
    char *k = NULL;
    return asprintf(&k, "%.*s.key", (int)n, path) < 0 ? NULL : k;
}

static void fsync_dir_of(const char *path)
{
    _cleanup_free_ char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (!slash)
        return;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        (void)fsync(fd);
}

static int read_key(struct store *s, int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: the store's key is not a regular file", path);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s: the store's key is open to group or others (mode %04o); it seals the "
                 "stacks' secrets: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    uint8_t buf[SEAL_KEY_BYTES + 1];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n != SEAL_KEY_BYTES) {
        int r = n < 0 ? -errno : -EBADMSG;
        snprintf(err, errlen, "%s: %s", path,
                 n < 0 ? strerror(errno)
                       : "not a key of this agent (32 bytes); it is left as it is");
        seal_wipe(buf, sizeof(buf));
        return r;
    }
    memcpy(s->key, buf, SEAL_KEY_BYTES);
    seal_wipe(buf, sizeof(buf));
    s->has_key = true;
    return 0;
}

/* Writes a new key whole under a temporary name and links it into place, so that another
 * process making one at the same moment sees either none or a whole one: the first wins. */
static int make_key(struct store *s, const char *path, char *err, size_t errlen)
{
    _cleanup_free_ char *tmp = NULL;
    if (asprintf(&tmp, "%s.new-%ld", path, (long)getpid()) < 0)
        return -ENOMEM;
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, errlen, "%s: cannot create the store's key: %s", path, strerror(-r));
        return r;
    }
    uint8_t key[SEAL_KEY_BYTES];
    int r = seal_key_new(key);
    if (r == 0 && fchmod(fd, 0600) < 0)
        r = -errno;
    if (r == 0 && write(fd, key, sizeof(key)) != (ssize_t)sizeof(key))
        r = errno ? -errno : -EIO;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r == 0)
        store_give_to_dir_owner(fd, path);
    close(fd);
    seal_wipe(key, sizeof(key));
    if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
        r = -errno;
    (void)unlink(tmp);
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot create the store's key: %s", path, strerror(-r));
        return r;
    }
    fsync_dir_of(path);
    return 0;
}

int store_key_load(struct store *s, unsigned flags, char *err, size_t errlen)
{
    s->key_path = key_path_of(s->path);
    if (!s->key_path)
        return -ENOMEM;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(s->key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd >= 0) {
            int r = read_key(s, fd, s->key_path, err, errlen);
            close(fd);
            return r;
        }
        if (errno == ELOOP) {
            snprintf(err, errlen, "%s: the store's key is a symbolic link; it is not followed",
                     s->key_path);
            return -ELOOP;
        }
        if (errno != ENOENT) {
            int r = -errno;
            snprintf(err, errlen, "%s: cannot read the store's key: %s", s->key_path, strerror(-r));
            return r;
        }
        if (flags & STORE_OPEN_EXISTING)
            return 0; /* no key: sealed files will say so when they are asked for */
        int r = make_key(s, s->key_path, err, errlen);
        if (r < 0)
            return r;
    }
    snprintf(err, errlen, "%s: the store's key vanished as it was made", s->key_path);
    return -EIO;
}

/* "axion-agent stack file\0STACK\0NAME": what binds a sealed file to its place. */
static char *aad_of(const char *stack, const char *name, size_t *ret_len)
{
    static const char tag[] = "axion-agent stack file";
    size_t tl = sizeof(tag), sl = strlen(stack) + 1, nl = strlen(name);
    char *a = malloc(tl + sl + nl + 1);
    if (!a)
        return NULL;
    memcpy(a, tag, tl);
    memcpy(a + tl, stack, sl);
    memcpy(a + tl + sl, name, nl + 1);
    *ret_len = tl + sl + nl;
    return a;
}

int store_seal_file(struct store *s, const char *stack, const char *name, const void *data,
                    size_t len, void **ret, size_t *ret_len)
{
    if (!s->has_key)
        return store_err(s, -ENOKEY, "file %s: no key to seal it with (%s)", name,
                         s->key_path ? s->key_path : "none");
    size_t alen;
    _cleanup_free_ char *aad = aad_of(stack, name, &alen);
    uint8_t *out = len <= SEAL_MAX ? malloc(len + SEAL_OVERHEAD) : NULL;
    if (!aad || !out) {
        free(out);
        return len > SEAL_MAX ? store_err(s, -EMSGSIZE, "file %s is too large", name) : -ENOMEM;
    }
    int r = seal_encrypt(s->key, aad, alen, data, len, out);
    if (r < 0) {
        free(out);
        return store_err(s, r, "file %s: sealing failed", name);
    }
    *ret = out;
    *ret_len = len + SEAL_OVERHEAD;
    return 0;
}

int store_unseal_file(struct store *s, const char *stack, const char *name, const void *blob,
                      size_t len, void **ret, size_t *ret_len)
{
    if (!s->has_key)
        return store_err(s, -ENOKEY,
                         "file %s is sealed and this store has no key (%s is missing): a store "
                         "copied without its key cannot open its secrets; deploy the stack again",
                         name, s->key_path ? s->key_path : "?");
    size_t alen;
    _cleanup_free_ char *aad = aad_of(stack, name, &alen);
    char *out = malloc(len + 1);
    if (!aad || !out) {
        free(out);
        return -ENOMEM;
    }
    size_t n = 0;
    int r = seal_decrypt(s->key, aad, alen, blob, len, out, &n);
    if (r == -EBADMSG) {
        free(out);
        return store_err(s, -EKEYREJECTED,
                         "file %s does not open with the key %s (sealed with another key, or "
                         "changed): a store copied without its key cannot open its secrets; "
                         "deploy the stack again",
                         name, s->key_path);
    }
    if (r < 0) {
        free(out);
        return store_err(s, r, "file %s: opening failed", name);
    }
    out[n] = '\0';
    *ret = out;
    *ret_len = n;
    return 0;
}

/* Seals one plain row; 1 when there was one, 0 when none is left. */
static int seal_one(struct store *s)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_FILES_PLAIN);
    int r = store_step(s, st);
    if (r <= 0)
        return r;
    _cleanup_free_ char *stack = NULL, *name = NULL;
    _cleanup_free_ void *data = NULL, *sealed = NULL;
    size_t len = 0, slen = 0;
    if ((r = store_col_text(st, 0, &stack)) < 0 || (r = store_col_text(st, 1, &name)) < 0 ||
        (r = store_col_blob(st, 2, &data, &len)) < 0)
        return r;
    store_stmt_resetp(&st);
    if (!stack || !name)
        return -EBADMSG;
    r = store_seal_file(s, stack, name, data ? data : "", len, &sealed, &slen);
    seal_wipe(data, len);
    if (r < 0)
        return r;
    _cleanup_stmt_ sqlite3_stmt *up = store_stmt(s, STMT_FILES_RESEAL);
    if ((r = store_bind_text(s, up, 1, stack)) < 0 || (r = store_bind_text(s, up, 2, name)) < 0 ||
        (r = store_bind_blob(s, up, 3, sealed, slen)) < 0 || (r = store_exec(s, up)) < 0)
        return r;
    return 1;
}

void store_seal_plain_files(struct store *s)
{
    if (!s->has_key)
        return;
    /* A read first: the usual store has none, and a read-only command takes no write lock. */
    _cleanup_stmt_ sqlite3_stmt *probe = store_stmt(s, STMT_FILES_PLAIN);
    int any = store_step(s, probe);
    store_stmt_resetp(&probe);
    if (any <= 0)
        return;
    struct store_txn t;
    int r = store_txn_begin(s, &t);
    int n = 0;
    while (r >= 0 && (r = seal_one(s)) > 0)
        n++;
    r = store_txn_end(s, &t, r);
    if (r < 0)
        log_warnx("store %s: the files an older version kept plain stay plain for now: %s", s->path,
                  store_errmsg(s));
    else if (n)
        log_info("store %s: %d attached files sealed with %s", s->path, n, s->key_path);
}

/* ---- secrets in text columns (the swarm's join token) -------------------------------------- */

#define SEALED_TEXT_PREFIX "axion-sealed:1:"

static char *text_aad(const char *what, size_t *ret_len)
{
    char *a = NULL;
    int n = asprintf(&a, "axion-agent text%c%s", '\0', what);
    if (n < 0)
        return NULL;
    *ret_len = (size_t)n;
    return a;
}

int store_seal_text(struct store *s, const char *what, const char *plain, char **ret)
{
    if (!plain) {
        *ret = NULL;
        return 0;
    }
    if (!s->has_key)
        return store_err(s, -ENOKEY, "%s: no key to seal it with (%s)", what,
                         s->key_path ? s->key_path : "none");
    size_t len = strlen(plain), alen = 0;
    _cleanup_free_ char *aad = text_aad(what, &alen);
    _cleanup_free_ uint8_t *sealed = len <= SEAL_MAX ? malloc(len + SEAL_OVERHEAD) : NULL;
    size_t slen = len + SEAL_OVERHEAD;
    char *out = sealed ? malloc(sizeof(SEALED_TEXT_PREFIX) + 4 * ((slen + 2) / 3) + 1) : NULL;
    if (!aad || !sealed || !out) {
        free(out);
        return -ENOMEM;
    }
    int r = seal_encrypt(s->key, aad, alen, plain, len, sealed);
    if (r < 0) {
        free(out);
        return store_err(s, r, "%s: sealing failed", what);
    }
    memcpy(out, SEALED_TEXT_PREFIX, sizeof(SEALED_TEXT_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof(SEALED_TEXT_PREFIX) - 1, sealed, (int)slen);
    *ret = out;
    return 0;
}

int store_unseal_text(struct store *s, const char *what, const char *stored, char **ret)
{
    size_t pl = sizeof(SEALED_TEXT_PREFIX) - 1;
    if (!stored || strncmp(stored, SEALED_TEXT_PREFIX, pl) != 0) {
        /* NULL, or what an agent before sealing wrote: as it is */
        *ret = stored ? strdup(stored) : NULL;
        return stored && !*ret ? -ENOMEM : 0;
    }
    const char *b64 = stored + pl;
    size_t blen = strlen(b64);
    if (blen % 4 || blen > 4 * ((size_t)SEAL_MAX / 3))
        return store_err(s, -EBADMSG, "%s: not a sealed value", what);
    _cleanup_free_ uint8_t *sealed = malloc(blen / 4 * 3 + 1);
    if (!sealed)
        return -ENOMEM;
    int n = EVP_DecodeBlock(sealed, (const unsigned char *)b64, (int)blen);
    if (n < 0)
        return store_err(s, -EBADMSG, "%s: not a sealed value", what);
    for (size_t i = blen; i > 0 && b64[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding */
    if (!s->has_key)
        return store_err(s, -ENOKEY,
                         "%s is sealed and this store has no key (%s is missing): a store "
                         "copied without its key cannot open its secrets",
                         what, s->key_path ? s->key_path : "?");
    size_t alen = 0, len = 0;
    _cleanup_free_ char *aad = text_aad(what, &alen);
    char *out = n >= SEAL_OVERHEAD ? malloc((size_t)n - SEAL_OVERHEAD + 1) : NULL;
    if (!aad || (n >= SEAL_OVERHEAD && !out)) {
        free(out);
        return -ENOMEM;
    }
    int r = out ? seal_decrypt(s->key, aad, alen, sealed, (size_t)n, out, &len) : -EBADMSG;
    if (r < 0) {
        free(out);
        if (r != -EBADMSG)
            return store_err(s, r, "%s: opening failed", what);
        return store_err(s, -EKEYREJECTED,
                         "%s does not open with the key %s (sealed with another key, or "
                         "changed): a store copied without its key cannot open its secrets",
                         what, s->key_path);
    }
    out[len] = '\0';
    *ret = out;
    return 0;
}
