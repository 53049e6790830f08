/* What a hostile or buggy Control Plane sends, as classes: text with bytes that are not UTF-8
 * comes back (refusals, results, status) as valid UTF-8 whatever field carried it; an Enroll or
 * Renew answer is checked whole before anything is kept (sizes, every PEM block of the chain
 * and the bundle a certificate, the leaf for our key and our id, valid now) with an error that
 * names the field and the cause and never quotes a key. Certificates are made here with
 * OpenSSL, with the validity each case needs. */
#include "support/testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sources/grpc_command.h"
#include "lib/util.h"
#include "sources/grpc_identity.h"
#include "store/store.h"

#define CODE(x) AXION__AGENT__V1__ERROR_CODE__ERROR_CODE_##x

/* jansson refuses a string that is not UTF-8: an independent judge. */
static bool utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static void test_cut_text_utf8(void **state)
{
    static const char *const bad[] = {
        "a\xff b",
        "over\xc0\x80long",
        "surrogate \xed\xa0\x80",
        "cut \xe2\x82",
        "beyond \xf5\x80\x80\x80",
        "\x80\x80\x80",
        "ok \xf0\x9f\x98\x80 \xf4\x90\x80\x80",
    };
    char out[64];
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        grpc_command_cut_text(bad[i], out, sizeof(out));
        assert_true(utf8_ok(out));
        assert_non_null(strchr(out, '?'));
    }
    grpc_command_cut_text("h\xc3\xa9llo \xf0\x9f\x98\x80", out, sizeof(out));
    assert_string_equal(out, "h\xc3\xa9llo \xf0\x9f\x98\x80");
    /* Cut on a sequence boundary, "..." at the end, even among bad bytes. */
    char big[200];
    for (size_t i = 0; i + 1 < sizeof(big); i++)
        big[i] = i % 3 == 0 ? (char)0xff : (char)(i % 3 == 1 ? 0xc3 : 0xa9);
    big[sizeof(big) - 1] = '\0';
    for (size_t n = 5; n < 20; n++) {
        char o[20];
        grpc_command_cut_text(big, o, n);
        assert_true(strlen(o) < n);
        assert_true(utf8_ok(o));
        assert_string_equal(o + strlen(o) - 3, "...");
    }
}

/* Every place that quotes a field of a Command gives valid UTF-8, and the packed result too. */
static void test_refusals_utf8(void **state)
{
    struct grpc_command_refusal why;
    struct grpc_command_request req;
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = "c1";
    c.agent_id = "other-\xff\xfe-agent";
    assert_int_equal(grpc_command_check_envelope(&c, "a1", &why), -1);
    assert_int_equal(why.code, CODE(WRONG_AGENT));
    assert_true(utf8_ok(why.error));
    c.agent_id = NULL;

    Axion__Agent__V1__Stop stop = AXION__AGENT__V1__STOP__INIT;
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_STOP;
    c.stop = &stop;
    stop.stack = "\xe9tape";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_true(utf8_ok(why.error));
    stop.stack = "web";
    stop.service = "api\xc3";
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_true(utf8_ok(why.error));

    Axion__Agent__V1__Deploy d = AXION__AGENT__V1__DEPLOY__INIT;
    Axion__Agent__V1__File f1 = AXION__AGENT__V1__FILE__INIT, f2 = AXION__AGENT__V1__FILE__INIT;
    Axion__Agent__V1__File *files[] = {&f1, &f2};
    c.body_case = AXION__AGENT__V1__COMMAND__BODY_DEPLOY;
    c.deploy = &d;
    d.stack = "web";
    d.generation = 1;
    d.compose = "services: {}\n";
    /* 253 ASCII bytes, the lead byte of a sequence, a byte that does not continue it. */
    char name[256];
    memset(name, 'n', 253);
    name[253] = (char)0xc3;
    name[254] = (char)0xff;
    name[255] = '\0';
    f1.name = f2.name = name;
    d.files = files;
    d.n_files = 2;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_int_equal(why.code, CODE(MALFORMED));
    assert_true(utf8_ok(why.error));
    d.n_files = 0;
    Axion__Agent__V1__Variable v = AXION__AGENT__V1__VARIABLE__INIT;
    Axion__Agent__V1__Variable *vars[] = {&v};
    v.name = "X\xff";
    v.value = "secret-value";
    d.variables = vars;
    d.n_variables = 1;
    assert_int_equal(grpc_command_request(&c, &req, &why), -1);
    assert_true(utf8_ok(why.error));
    /* A variable's value (maybe a secret) is never quoted. */
    assert_null(strstr(why.error, "secret-value"));

    /* Whatever error text reaches a result, the peer gets valid UTF-8. */
    struct grpc_result r = {.command_id = "c1",
                            .outcome = AXION__AGENT__V1__OUTCOME__OUTCOME_FAILED,
                            .error = "the engine said \xff\xfe\xfd"};
    uint8_t *data;
    size_t len;
    assert_int_equal(grpc_command_result_pack(&r, &data, &len), 0);
    Axion__Agent__V1__AgentMessage *m = axion__agent__v1__agent_message__unpack(NULL, len, data);
    assert_non_null(m);
    assert_true(utf8_ok(m->result->error));
    axion__agent__v1__agent_message__free_unpacked(m, NULL);
    free(data);
}

/* A command id sent again with another body is told apart from a plain repeat. */
static void test_duplicate_other_body(void **state)
{
    char out[512];
    struct store_command rec = {.command_id = "c1", .kind = "deploy", .stack = "web"};
    assert_true(grpc_command_same_as_recorded(&rec, "deploy", "web", out, sizeof(out)));
    assert_false(grpc_command_same_as_recorded(&rec, "scale", "web", out, sizeof(out)));
    assert_string_equal(out, "the command id c1 was used before for deploy of stack \"web\" (this "
                             "scale of stack \"web\" was not run: a command id names one command)");
    assert_false(grpc_command_same_as_recorded(&rec, "deploy", "db", out, sizeof(out)));
    assert_non_null(strstr(out, "this deploy of stack \"db\" was not run"));
    assert_false(grpc_command_same_as_recorded(&rec, "logs", "web", out, sizeof(out)));
    rec.kind = "reconcile_now";
    rec.stack = NULL;
    assert_true(grpc_command_same_as_recorded(&rec, "reconcile_now", NULL, out, sizeof(out)));
    assert_false(grpc_command_same_as_recorded(&rec, "swarm_leave", NULL, out, sizeof(out)));
    assert_true(utf8_ok(out));
}

/* ---- issued identities ------------------------------------------------------------------ */

static EVP_PKEY *pem_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}

/* A certificate for key's public half, CN=cn, valid [now+from_s, now+to_s], signed by ca_key
 * (self-signed when NULL). PEM, malloc'ed. */
static char *make_cert(const char *key_pem, const char *ca_key_pem, const char *cn, long from_s,
                       long to_s)
{
    EVP_PKEY *k = pem_key(key_pem);
    EVP_PKEY *ca = ca_key_pem ? pem_key(ca_key_pem) : NULL;
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, ca ? ca : k, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t)len);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(ca);
    return out;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_issued(void **state)
{
    char err[1024];
    char *key = NULL, *ca_key = NULL, *other = NULL;
    assert_int_equal(grpc_identity_keygen(&key, err, sizeof(err)), 0);
    assert_int_equal(grpc_identity_keygen(&ca_key, err, sizeof(err)), 0);
    assert_int_equal(grpc_identity_keygen(&other, err, sizeof(err)), 0);
    char *ca = make_cert(ca_key, NULL, "test-ca", -60, 86400);
    char *good = make_cert(key, ca_key, "node-1", -60, 3600);
    struct grpc_cert_info info;
    int64_t now = now_ms();

    assert_int_equal(
        grpc_identity_check_issued("node-1", good, ca, key, now, &info, err, sizeof(err)), 0);
    assert_string_equal(info.cn, "node-1");
    /* An empty bundle: the caller keeps what it trusted. */
    assert_int_equal(
        grpc_identity_check_issued("node-1", good, "", key, now, &info, err, sizeof(err)), 0);

    /* Each bad answer: -EBADMSG, the field and the cause. */
    struct {
        const char *agent_id, *chain, *bundle, *key, *says;
    } bad[] = {
        {"node-2", good, ca, key, "names agent \"node-1\", the answer \"node-2\""},
        {"", good, ca, key, "the answer \"\""},
        {"node-1", good, ca, other, "not for this private key"},
        {"node-1", "", ca, key, "cert_chain_pem: no PEM certificate"},
        {"node-1", "junk", ca, key, "cert_chain_pem: no PEM certificate"},
        {"node-1", good, "garbage\n", key, "ca_bundle_pem: no PEM certificate"},
        {"node-1", good, key, key, "ca_bundle_pem: PEM block 1 is a \"PRIVATE KEY\""},
        {"node-1", good, "-----BEGIN CERTIFICATE-----\nnot base64 @@@\n-----END CERTIFICATE-----\n",
         key, "ca_bundle_pem: PEM block 1"},
        {"node-1", good, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key,
         "ca_bundle_pem: PEM block 1 is not a valid X.509 certificate"},
        {"node-1", good, "-----BEGIN CERTIFICATE-----\nMIIB\n", key,
         "ca_bundle_pem: PEM block 1 is cut short"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        assert_int_equal(grpc_identity_check_issued(bad[i].agent_id, bad[i].chain, bad[i].bundle,
                                                    bad[i].key, now, &info, err, sizeof(err)),
                         -EBADMSG);
        if (!strstr(err, bad[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].says);
        /* Never a key's contents. */
        assert_null(strstr(err, "PRIVATE KEY-----"));
        assert_null(strstr(err, key + 28));
    }
    /* A chain with a key block after the leaf. */
    char *chain_key = NULL;
    assert_true(asprintf(&chain_key, "%s%s", good, other) > 0);
    assert_int_equal(
        grpc_identity_check_issued("node-1", chain_key, ca, key, now, &info, err, sizeof(err)),
        -EBADMSG);
    assert_non_null(strstr(err, "cert_chain_pem: PEM block 2 is a \"PRIVATE KEY\""));
    free(chain_key);

    /* Validity: expired, not yet valid, within the clock skew allowed. */
    char *expired = make_cert(key, ca_key, "node-1", -7200, -3600);
    assert_int_equal(
        grpc_identity_check_issued("node-1", expired, ca, key, now, &info, err, sizeof(err)),
        -EBADMSG);
    assert_non_null(strstr(err, "cert_chain_pem: the certificate expired at"));
    char *later = make_cert(key, ca_key, "node-1", 3600, 7200);
    assert_int_equal(
        grpc_identity_check_issued("node-1", later, ca, key, now, &info, err, sizeof(err)),
        -EBADMSG);
    assert_non_null(strstr(err, "the certificate is not valid before"));
    char *soon = make_cert(key, ca_key, "node-1", 60, 7200);
    assert_int_equal(
        grpc_identity_check_issued("node-1", soon, ca, key, now, &info, err, sizeof(err)), 0);

    /* Sizes: more than 64 KiB, more than 100 certificates. */
    size_t n_ca = strlen(ca);
    size_t copies = GRPC_IDENTITY_PEM_MAX / n_ca + 2;
    char *huge = calloc(copies, n_ca + 1);
    for (size_t i = 0; i < copies; i++)
        memcpy(huge + i * n_ca, ca, n_ca);
    assert_int_equal(
        grpc_identity_check_issued("node-1", good, huge, key, now, &info, err, sizeof(err)),
        -EBADMSG);
    assert_non_null(strstr(err, "ca_bundle_pem:"));
    assert_non_null(strstr(err, "bytes, more than 65536"));
    /* 101 small certificates fit 64 KiB only if short: check the count on a chain of copies. */
    if (n_ca * (GRPC_IDENTITY_CERTS_MAX + 1) <= GRPC_IDENTITY_PEM_MAX) {
        huge[n_ca * (GRPC_IDENTITY_CERTS_MAX + 1)] = '\0';
        assert_int_equal(
            grpc_identity_check_issued("node-1", good, huge, key, now, &info, err, sizeof(err)),
            -EBADMSG);
        assert_non_null(strstr(err, "more than 100 certificates"));
    }
    free(huge);
    free(soon);
    free(later);
    free(expired);
    free(good);
    free(ca);
    grpc_identity_free_secret(key);
    grpc_identity_free_secret(ca_key);
    grpc_identity_free_secret(other);
}

/* The key file: 0600 whatever the umask; a stored identity whose key file others may read, or
 * that is a link, does not load. */
static void test_key_file(void **state)
{
    char *dir = tu_mkdtemp();
    char path[600], err[1024];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct store *st = NULL;
    assert_int_equal(store_open(path, 0, &st, err, sizeof(err)), 0);
    char *key = NULL, *ca_key = NULL, *file = NULL;
    assert_int_equal(grpc_identity_keygen(&key, err, sizeof(err)), 0);
    assert_int_equal(grpc_identity_keygen(&ca_key, err, sizeof(err)), 0);
    mode_t old = umask(0);
    assert_int_equal(grpc_identity_write_key(dir, key, &file, err, sizeof(err)), 0);
    umask(old);
    struct stat kst;
    assert_int_equal(lstat(file, &kst), 0);
    assert_int_equal(kst.st_mode & 07777, 0600);

    char *ca = make_cert(ca_key, NULL, "test-ca", -60, 86400);
    char *leaf = make_cert(key, ca_key, "node-1", -60, 3600);
    struct store_identity row = {.agent_id = "node-1",
                                 .key_file = file,
                                 .cert_chain_pem = leaf,
                                 .ca_bundle_pem = ca,
                                 .not_after = 1,
                                 .enrolled_at = 1};
    assert_int_equal(store_put_identity(st, &row), 0);
    struct grpc_identity *id = NULL;
    assert_int_equal(grpc_identity_load(st, NULL, NULL, NULL, &id, err, sizeof(err)), 0);
    grpc_identity_free(id);
    id = NULL;
    assert_int_equal(chmod(file, 0644), 0);
    assert_int_equal(grpc_identity_load(st, NULL, NULL, NULL, &id, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "readable by others (mode 0644)"));
    assert_null(id);

    /* A link in the key's place. */
    char real[700];
    snprintf(real, sizeof(real), "%s.real", file);
    assert_int_equal(rename(file, real), 0);
    assert_int_equal(chmod(real, 0600), 0);
    assert_int_equal(symlink(real, file), 0);
    assert_int_equal(grpc_identity_load(st, NULL, NULL, NULL, &id, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "not a file"));

    store_close(st);
    free(ca);
    free(leaf);
    free(file);
    grpc_identity_free_secret(key);
    grpc_identity_free_secret(ca_key);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_text_utf8),
        cmocka_unit_test(test_refusals_utf8),
        cmocka_unit_test(test_duplicate_other_body),
        cmocka_unit_test(test_issued),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
