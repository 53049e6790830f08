/* grpc_identity and the store's identity row: an EC P-256 key made here, written 0600 under a
 * fresh name; a CSR over it; the facts of a certificate (CN, validity) and whether it belongs
 * to the key; an identity loaded from the store or from cert_file/key_file with an error that
 * names the file and the cause. The certificates are signed by `openssl` (the CLI) here. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sources/grpc_identity.h"
#include "store/store.h"

struct fx {
    char *dir;
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_mkdtemp();
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/store.db", f->dir);
    assert_int_equal(store_open(path, 0, &f->st, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Signs csr with a throw-away CA (made once per dir) for cn, days of validity. */
static char *sign(const char *dir, const char *csr, const char *cn)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/req.csr", dir);
    assert_int_equal(tu_write_file(path, csr), 0);
    assert_int_equal(tu_sh("cd '%s' && [ -f ca.pem ] || openssl req -x509 -newkey ec -pkeyopt "
                           "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 "
                           "-subj /CN=test-ca 2>/dev/null",
                           dir),
                     0);
    assert_int_equal(tu_sh("cd '%s' && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key "
                           "-CAcreateserial -days 1 -subj /CN=%s -out leaf.pem 2>/dev/null",
                           dir, cn),
                     0);
    return tu_sh_out("cat '%s/leaf.pem'", dir);
}

static void test_key_csr_cert(void **state)
{
    struct fx *f = *state;
    char err[512];
    char *key = NULL, *csr = NULL, *file = NULL, *file2 = NULL;
    assert_int_equal(grpc_identity_keygen(&key, err, sizeof(err)), 0);
    assert_non_null(strstr(key, "BEGIN PRIVATE KEY"));
    assert_int_equal(grpc_identity_csr(key, "node-1", &csr, err, sizeof(err)), 0);
    assert_non_null(strstr(csr, "BEGIN CERTIFICATE REQUEST"));
    assert_int_equal(grpc_identity_write_key(f->dir, key, &file, err, sizeof(err)), 0);
    assert_int_equal(grpc_identity_write_key(f->dir, key, &file2, err, sizeof(err)), 0);
    assert_string_not_equal(file, file2);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *leaf = sign(f->dir, csr, "node-1");
    struct grpc_cert_info info;
    assert_int_equal(grpc_identity_cert_info(leaf, &info, err, sizeof(err)), 0);
    assert_string_equal(info.cn, "node-1");
    assert_true(info.not_after > info.not_before);
    assert_int_equal(grpc_identity_key_matches(key, leaf, err, sizeof(err)), 0);
    char *other = NULL;
    assert_int_equal(grpc_identity_keygen(&other, err, sizeof(err)), 0);
    assert_int_equal(grpc_identity_key_matches(other, leaf, err, sizeof(err)), -EKEYREJECTED);
    assert_string_equal(err, "the certificate is not for this private key");
    assert_int_equal(grpc_identity_cert_info("junk", &info, err, sizeof(err)), -EINVAL);

    /* Stored, loaded back; the other key file is pruned. */
    char *ca = tu_sh_out("cat '%s/ca.pem'", f->dir);
    struct store_identity row = {.agent_id = "node-1",
                                 .key_file = file,
                                 .cert_chain_pem = leaf,
                                 .ca_bundle_pem = ca,
                                 .not_before = info.not_before,
                                 .not_after = info.not_after,
                                 .enrolled_at = 1};
    assert_int_equal(store_put_identity(f->st, &row), 0);
    struct grpc_identity *id = NULL;
    assert_int_equal(grpc_identity_load(f->st, NULL, NULL, NULL, &id, err, sizeof(err)), 0);
    assert_string_equal(id->agent_id, "node-1");
    assert_false(id->from_files);
    assert_int_equal(grpc_identity_renew_at(id),
                     id->not_before + (id->not_after - id->not_before) * 2 / 3);
    grpc_identity_free(id);
    grpc_identity_prune_keys(f->dir, file);
    assert_int_equal(stat(file, &st), 0);
    assert_int_not_equal(stat(file2, &st), 0);

    /* From files: the key must belong to the certificate, and the error names the files. */
    char kpath[600], cpath[600];
    snprintf(kpath, sizeof(kpath), "%s/other.key", f->dir);
    snprintf(cpath, sizeof(cpath), "%s/leaf.pem", f->dir);
    assert_int_equal(tu_write_file(kpath, other), 0);
    assert_int_equal(grpc_identity_load(f->st, cpath, kpath, NULL, &id, err, sizeof(err)),
                     -EKEYREJECTED);
    assert_non_null(strstr(err, "control_plane.cert_file and control_plane.key_file"));
    assert_int_equal(
        grpc_identity_load(f->st, cpath, "/nonexistent/k", NULL, &id, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "control_plane.key_file: /nonexistent/k"));
    assert_int_equal(grpc_identity_load(f->st, cpath, file, NULL, &id, err, sizeof(err)), 0);
    assert_true(id->from_files);
    grpc_identity_free(id);

    assert_int_equal(store_delete_identity(f->st), 0);
    assert_int_equal(grpc_identity_load(f->st, NULL, NULL, NULL, &id, err, sizeof(err)), -ENOENT);
    assert_int_equal(store_delete_identity(f->st), -ENOENT);
    free(ca);
    free(leaf);
    grpc_identity_free_secret(key);
    grpc_identity_free_secret(other);
    free(csr);
    free(file);
    free(file2);
}

static void test_store_row_checks(void **state)
{
    struct fx *f = *state;
    struct store_identity row = {
        .agent_id = "a", .key_file = "relative", .cert_chain_pem = "x", .ca_bundle_pem = "y"};
    assert_int_equal(store_put_identity(f->st, &row), -EINVAL);
    assert_non_null(strstr(store_errmsg(f->st), "key file: not an absolute path"));
    row.key_file = "/k";
    row.cert_chain_pem = "";
    assert_int_equal(store_put_identity(f->st, &row), -EINVAL);
    row.cert_chain_pem = "x";
    assert_int_equal(store_put_identity(f->st, &row), 0);
    struct store_identity *got = NULL;
    assert_int_equal(store_get_identity(f->st, &got), 0);
    assert_string_equal(got->key_file, "/k");
    store_identity_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_csr_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_row_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
