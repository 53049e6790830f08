#include "sources/grpc_identity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>

#include "lib/util.h"

#define KEY_PREFIX "agent-key-"
#define KEY_SUFFIX ".pem"

/* The last OpenSSL error as text (the queue is cleared). */
static const char *ssl_error(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return "unknown error";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

void grpc_identity_free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void grpc_identity_free(struct grpc_identity *id)
{
    if (!id)
        return;
    free(id->agent_id);
    grpc_identity_free_secret(id->key_pem);
    free(id->key_file);
    free(id->chain_pem);
    free(id->ca_pem);
    free(id);
}

static char *bio_take(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
    }
    /* The key's PEM passed through this buffer: wipe it. */
    if (p && n > 0)
        OPENSSL_cleanse(p, (size_t)n);
    BIO_free(b);
    return s;
}

int grpc_identity_keygen(char **ret_key_pem, char *err, size_t errlen)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    if (!pk)
        return fail(err, errlen, -EIO, "cannot generate an EC P-256 key: %s", ssl_error());
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(b);
        EVP_PKEY_free(pk);
        return fail(err, errlen, -EIO, "cannot encode the new key: %s", ssl_error());
    }
    EVP_PKEY_free(pk);
    char *s = bio_take(b);
    if (!s)
        return fail(err, errlen, -ENOMEM, "out of memory");
    *ret_key_pem = s;
    return 0;
}

static EVP_PKEY *load_key(const char *key_pem)
{
    BIO *b = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return pk;
}

static X509 *load_leaf(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

int grpc_identity_csr(const char *key_pem, const char *cn, char **ret_csr_pem, char *err,
                      size_t errlen)
{
    EVP_PKEY *pk = load_key(key_pem);
    if (!pk)
        return fail(err, errlen, -EINVAL, "the private key does not load: %s", ssl_error());
    X509_REQ *req = X509_REQ_new();
    BIO *b = BIO_new(BIO_s_mem());
    int r = 0;
    if (!req || !b ||
        !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)(cn && *cn ? cn : "axion-agent"), -1, -1,
                                    0) ||
        !X509_REQ_set_pubkey(req, pk) || !X509_REQ_sign(req, pk, EVP_sha256()) ||
        !PEM_write_bio_X509_REQ(b, req))
        r = fail(err, errlen, -EIO, "cannot make the CSR: %s", ssl_error());
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    if (r < 0) {
        BIO_free(b);
        return r;
    }
    char *s = bio_take(b);
    if (!s)
        return fail(err, errlen, -ENOMEM, "out of memory");
    *ret_csr_pem = s;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int grpc_identity_write_key(const char *dir, const char *key_pem, char **ret_path, char *err,
                            size_t errlen)
{
    _cleanup_free_ char *path = NULL;
    int fd = -1;
    /* A fresh name each time: a renewal never overwrites the key in use. */
    for (int i = 0; i < 100 && fd < 0; i++) {
        free(path);
        path = NULL;
        int k =
            i ? asprintf(&path, "%s/" KEY_PREFIX "%lld-%d" KEY_SUFFIX, dir, (long long)now_ms(), i)
              : asprintf(&path, "%s/" KEY_PREFIX "%lld" KEY_SUFFIX, dir, (long long)now_ms());
        if (k < 0) {
            path = NULL;
            return fail(err, errlen, -ENOMEM, "out of memory");
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST)
            return fail(err, errlen, -errno, "cannot create the key file %s: %s", path,
                        strerror(errno));
    }
    if (fd < 0)
        return fail(err, errlen, -EEXIST, "cannot find a free key file name in %s", dir);
    size_t n = strlen(key_pem), off = 0;
    int r = 0;
    /* The umask may have taken bits: say exactly 0600. */
    if (fchmod(fd, 0600) < 0)
        r = -errno;
    while (r == 0 && off < n) {
        ssize_t w = write(fd, key_pem + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            r = -errno;
        else
            off += (size_t)w;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0) {
        unlink(path);
        return fail(err, errlen, r, "cannot write the key file %s: %s", path, strerror(-r));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    *ret_path = TAKE_PTR(path);
    return 0;
}

void grpc_identity_prune_keys(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    const char *keep_base = keep ? strrchr(keep, '/') : NULL;
    keep_base = keep_base ? keep_base + 1 : keep;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, KEY_PREFIX, strlen(KEY_PREFIX)) != 0 || n < strlen(KEY_SUFFIX) ||
            strcmp(e->d_name + n - strlen(KEY_SUFFIX), KEY_SUFFIX) != 0)
            continue;
        if (keep_base && streq(e->d_name, keep_base))
            continue;
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static int64_t asn1_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

int grpc_identity_cert_info(const char *chain_pem, struct grpc_cert_info *ret, char *err,
                            size_t errlen)
{
    X509 *x = load_leaf(chain_pem);
    if (!x)
        return fail(err, errlen, -EINVAL, "no PEM certificate: %s", ssl_error());
    struct grpc_cert_info info = {0};
    X509_NAME *name = X509_get_subject_name(x);
    int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx >= 0) {
        ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, s);
        if (n > 0) {
            snprintf(info.cn, sizeof(info.cn), "%.*s", n, (const char *)utf8);
            if ((size_t)n >= sizeof(info.cn) || memchr(utf8, 0, (size_t)n))
                info.cn[0] = '\0';
        }
        OPENSSL_free(utf8);
    }
    info.not_before = asn1_ms(X509_get0_notBefore(x));
    info.not_after = asn1_ms(X509_get0_notAfter(x));
    X509_free(x);
    if (!info.not_after)
        return fail(err, errlen, -EINVAL, "the certificate has no readable validity");
    *ret = info;
    return 0;
}

int grpc_identity_key_matches(const char *key_pem, const char *chain_pem, char *err, size_t errlen)
{
    EVP_PKEY *pk = load_key(key_pem);
    if (!pk)
        return fail(err, errlen, -EINVAL, "the private key does not load: %s", ssl_error());
    X509 *x = load_leaf(chain_pem);
    if (!x) {
        EVP_PKEY_free(pk);
        return fail(err, errlen, -EINVAL, "no PEM certificate: %s", ssl_error());
    }
    int ok = X509_check_private_key(x, pk);
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok == 1
               ? 0
               : fail(err, errlen, -EKEYREJECTED, "the certificate is not for this private key");
}

/* Every PEM block of pem is a certificate that parses; 1 to GRPC_IDENTITY_CERTS_MAX of them
 * (0 allowed when may_be_empty and pem is empty). */
static int check_certs(const char *field, const char *pem, bool may_be_empty, char *err,
                       size_t errlen)
{
    size_t len = pem ? strlen(pem) : 0;
    if (len == 0 && may_be_empty)
        return 0;
    if (len > GRPC_IDENTITY_PEM_MAX)
        return fail(err, errlen, -EBADMSG, "%s: %zu bytes, more than %u", field, len,
                    GRPC_IDENTITY_PEM_MAX);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return fail(err, errlen, -ENOMEM, "out of memory");
    unsigned n = 0;
    int r = 0;
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dlen = 0;
        if (!PEM_read_bio(b, &name, &header, &data, &dlen)) {
            unsigned long e = ERR_peek_last_error();
            bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
            ERR_clear_error();
            if (!end)
                r = fail(err, errlen, -EBADMSG,
                         "%s: PEM block %u is cut short or its base64 does not decode", field,
                         n + 1);
            break;
        }
        bool cert = streq(name, PEM_STRING_X509) || streq(name, PEM_STRING_X509_OLD) ||
                    streq(name, PEM_STRING_X509_TRUSTED);
        X509 *x = NULL;
        if (cert) {
            const unsigned char *p = data;
            x = d2i_X509(NULL, &p, dlen);
            ERR_clear_error();
        }
        if (!cert)
            /* Only the block's type: a PRIVATE KEY block is not quoted. */
            r = fail(err, errlen, -EBADMSG, "%s: PEM block %u is a \"%.40s\", not a certificate",
                     field, n + 1, name);
        else if (!x)
            r = fail(err, errlen, -EBADMSG, "%s: PEM block %u is not a valid X.509 certificate",
                     field, n + 1);
        X509_free(x);
        if (data && dlen > 0)
            OPENSSL_cleanse(data, (size_t)dlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (r < 0)
            break;
        if (++n > GRPC_IDENTITY_CERTS_MAX) {
            r = fail(err, errlen, -EBADMSG, "%s: more than %u certificates", field,
                     GRPC_IDENTITY_CERTS_MAX);
            break;
        }
    }
    BIO_free(b);
    if (r == 0 && n == 0)
        r = fail(err, errlen, -EBADMSG, "%s: no PEM certificate in its %zu bytes", field, len);
    return r;
}

static void utc(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, outlen, "%lld ms", (long long)ms);
}

int grpc_identity_check_issued(const char *agent_id, const char *chain_pem, const char *ca_pem,
                               const char *key_pem, int64_t now_ms, struct grpc_cert_info *ret,
                               char *err, size_t errlen)
{
    int r = check_certs("cert_chain_pem", chain_pem, false, err, errlen);
    if (r == 0)
        r = check_certs("ca_bundle_pem", ca_pem, true, err, errlen);
    if (r < 0)
        return r == -ENOMEM ? r : -EBADMSG;
    char why[512];
    struct grpc_cert_info info;
    if (grpc_identity_cert_info(chain_pem, &info, why, sizeof(why)) < 0)
        return fail(err, errlen, -EBADMSG, "cert_chain_pem: %s", why);
    if (grpc_identity_key_matches(key_pem, chain_pem, why, sizeof(why)) < 0)
        return fail(err, errlen, -EBADMSG, "cert_chain_pem: %s (the CSR's key)", why);
    if (!agent_id || !*agent_id || !streq(info.cn, agent_id))
        return fail(err, errlen, -EBADMSG,
                    "cert_chain_pem: the certificate names agent \"%.64s\", the answer \"%.64s\"",
                    info.cn, agent_id ? agent_id : "");
    char a[40], b[40];
    if (info.not_after <= info.not_before) {
        utc(info.not_before, a, sizeof(a));
        utc(info.not_after, b, sizeof(b));
        return fail(err, errlen, -EBADMSG,
                    "cert_chain_pem: the certificate is valid from %s to %s: never", a, b);
    }
    if (info.not_after <= now_ms) {
        utc(info.not_after, a, sizeof(a));
        utc(now_ms, b, sizeof(b));
        return fail(err, errlen, -EBADMSG,
                    "cert_chain_pem: the certificate expired at %s (now %s; is a clock wrong?)", a,
                    b);
    }
    if (info.not_before > now_ms + GRPC_IDENTITY_SKEW_MS) {
        utc(info.not_before, a, sizeof(a));
        utc(now_ms, b, sizeof(b));
        return fail(err, errlen, -EBADMSG,
                    "cert_chain_pem: the certificate is not valid before %s (now %s; is a clock "
                    "wrong?)",
                    a, b);
    }
    *ret = info;
    return 0;
}

int grpc_identity_read_file(const char *path, char **ret, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) < 0) {
        int r = -errno;
        close(fd);
        return fail(err, errlen, r, "%s: %s", path, strerror(-r));
    }
    if (!S_ISREG(stt.st_mode) || stt.st_size > GRPC_IDENTITY_PEM_MAX) {
        int r = S_ISREG(stt.st_mode) ? -EFBIG : -EINVAL;
        close(fd);
        return fail(err, errlen, r, "%s: %s", path,
                    r == -EFBIG ? "larger than 64 KiB" : "not a regular file");
    }
    char *buf = malloc((size_t)stt.st_size + 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    size_t off = 0;
    while (off < (size_t)stt.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)stt.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    buf[off] = '\0';
    *ret = buf;
    return 0;
}

static int dup_into(char **dst, const char *src)
{
    *dst = strdup(src ? src : "");
    return *dst ? 0 : -ENOMEM;
}

int grpc_identity_load(struct store *st, const char *cert_file, const char *key_file,
                       const char *ca_file, struct grpc_identity **ret, char *err, size_t errlen)
{
    struct grpc_identity *id = calloc(1, sizeof(*id));
    if (!id)
        return fail(err, errlen, -ENOMEM, "out of memory");
    int r = 0;
    char why[512] = "";
    if (cert_file && key_file) {
        id->from_files = true;
        r = grpc_identity_read_file(cert_file, &id->chain_pem, why, sizeof(why));
        if (r < 0) {
            fail(err, errlen, r, "control_plane.cert_file: %s", why);
            goto out;
        }
        r = grpc_identity_read_file(key_file, &id->key_pem, why, sizeof(why));
        if (r < 0) {
            fail(err, errlen, r, "control_plane.key_file: %s", why);
            goto out;
        }
        if (ca_file) {
            r = grpc_identity_read_file(ca_file, &id->ca_pem, why, sizeof(why));
            if (r < 0) {
                fail(err, errlen, r, "control_plane.ca_file: %s", why);
                goto out;
            }
        }
        if ((r = dup_into(&id->key_file, key_file)) < 0)
            goto out;
    } else {
        _cleanup_(store_identity_freep) struct store_identity *row = NULL;
        r = store_get_identity(st, &row);
        if (r < 0) {
            fail(err, errlen, r, "%s", store_errmsg(st));
            goto out;
        }
        if ((r = dup_into(&id->chain_pem, row->cert_chain_pem)) < 0 ||
            (r = dup_into(&id->ca_pem, row->ca_bundle_pem)) < 0 ||
            (r = dup_into(&id->key_file, row->key_file)) < 0)
            goto out;
        id->enrolled_at = row->enrolled_at;
        id->renewed_at = row->renewed_at;
        /* The key the agent wrote: its own file (not a link to another), 0600. */
        struct stat kst;
        if (lstat(row->key_file, &kst) == 0 && (!S_ISREG(kst.st_mode) || (kst.st_mode & 077))) {
            r = fail(err, errlen, -EPERM,
                     "the agent's private key: %s: %s (mode %04o): it must be a file of its own "
                     "that only this user reads (chmod 600)",
                     row->key_file, S_ISREG(kst.st_mode) ? "readable by others" : "not a file",
                     (unsigned)(kst.st_mode & 07777));
            goto out;
        }
        r = grpc_identity_read_file(row->key_file, &id->key_pem, why, sizeof(why));
        if (r < 0) {
            fail(err, errlen, r, "the agent's private key: %s", why);
            goto out;
        }
    }
    struct grpc_cert_info info;
    r = grpc_identity_cert_info(id->chain_pem, &info, why, sizeof(why));
    if (r < 0) {
        fail(err, errlen, r, "%s: %s",
             id->from_files ? "control_plane.cert_file" : "the stored certificate", why);
        goto out;
    }
    if (!info.cn[0]) {
        r = fail(err, errlen, -EINVAL, "%s: the certificate names no agent (no common name)",
                 id->from_files ? "control_plane.cert_file" : "the stored certificate");
        goto out;
    }
    r = grpc_identity_key_matches(id->key_pem, id->chain_pem, why, sizeof(why));
    if (r < 0) {
        fail(err, errlen, r, "%s and %s: %s",
             id->from_files ? "control_plane.cert_file" : "the stored certificate",
             id->from_files ? "control_plane.key_file" : id->key_file, why);
        goto out;
    }
    if ((r = dup_into(&id->agent_id, info.cn)) < 0)
        goto out;
    id->not_before = info.not_before;
    id->not_after = info.not_after;
    *ret = id;
    return 0;
out:
    if (r == -ENOMEM && err && !*err)
        fail(err, errlen, r, "out of memory");
    grpc_identity_free(id);
    return r;
}

int64_t grpc_identity_renew_at(const struct grpc_identity *id)
{
    int64_t life = id->not_after - id->not_before;
    if (life <= 0)
        return id->not_after;
    return id->not_before + life * 2 / 3;
}
