/* The agent's identity at the Control Plane: one row (sources/grpc_identity.h owns what it
 * means; the store only keeps it). */
#include "store/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

struct store_identity *store_identity_free(struct store_identity *id)
{
    if (!id)
        return NULL;
    free(id->agent_id);
    free(id->key_file);
    free(id->cert_chain_pem);
    free(id->ca_bundle_pem);
    free(id);
    return NULL;
}

int store_get_identity(struct store *s, struct store_identity **ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_IDENTITY_GET);
    int r = store_step(s, st);
    if (r == 0)
        r = store_err(s, -ENOENT, "no identity");
    if (r < 0)
        return store_errctx(s, r, "get identity");
    struct store_identity *id = calloc(1, sizeof(*id));
    if (!id)
        return -ENOMEM;
    if ((r = store_col_text(st, 0, &id->agent_id)) < 0 ||
        (r = store_col_text(st, 1, &id->key_file)) < 0 ||
        (r = store_col_text(st, 2, &id->cert_chain_pem)) < 0 ||
        (r = store_col_text(st, 3, &id->ca_bundle_pem)) < 0) {
        store_identity_free(id);
        return r;
    }
    id->not_before = sqlite3_column_int64(st, 4);
    id->not_after = sqlite3_column_int64(st, 5);
    id->enrolled_at = sqlite3_column_int64(st, 6);
    id->renewed_at = sqlite3_column_int64(st, 7);
    id->updated_at = sqlite3_column_int64(st, 8);
    *ret = id;
    return 0;
}

static int put_identity(struct store *s, const struct store_identity *id)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_IDENTITY_PUT);
    int r;
    if ((r = store_bind_text(s, st, 1, id->agent_id)) < 0 ||
        (r = store_bind_text(s, st, 2, id->key_file)) < 0 ||
        (r = store_bind_text(s, st, 3, id->cert_chain_pem)) < 0 ||
        (r = store_bind_text(s, st, 4, id->ca_bundle_pem)) < 0 ||
        (r = store_bind_int(s, st, 5, id->not_before)) < 0 ||
        (r = store_bind_int(s, st, 6, id->not_after)) < 0 ||
        (r = store_bind_int(s, st, 7, id->enrolled_at)) < 0 ||
        (r = store_bind_int(s, st, 8, id->renewed_at)) < 0 ||
        (r = store_bind_int(s, st, 9, store_now_ms())) < 0)
        return r;
    return store_exec(s, st);
}

int store_put_identity(struct store *s, const struct store_identity *id)
{
    int r = id ? 0 : store_err(s, -EINVAL, "no identity given");
    if (r >= 0)
        r = store_check_name(s, "agent id", id->agent_id, false);
    if (r >= 0)
        r = store_check_text(s, "key file", id->key_file, STORE_PATH_MAX);
    if (r >= 0 && (!id->key_file || id->key_file[0] != '/'))
        r = store_err(s, -EINVAL, "key file: not an absolute path");
    if (r >= 0)
        r = store_check_text(s, "certificate chain", id->cert_chain_pem, STORE_PEM_MAX);
    if (r >= 0)
        r = store_check_text(s, "CA bundle", id->ca_bundle_pem, STORE_PEM_MAX);
    if (r >= 0 &&
        (!id->cert_chain_pem || !*id->cert_chain_pem || !id->ca_bundle_pem || !*id->ca_bundle_pem))
        r = store_err(s, -EINVAL, "an empty certificate chain or CA bundle");
    if (r < 0)
        return store_errctx(s, r, "put identity");
    struct store_txn t;
    r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, put_identity(s, id));
    return store_errctx(s, r, "put identity");
}

static int delete_identity(struct store *s)
{
    _cleanup_stmt_ sqlite3_stmt *st = store_stmt(s, STMT_IDENTITY_DELETE);
    int r = store_exec(s, st);
    if (r < 0)
        return r;
    return sqlite3_changes(s->db) ? 0 : store_err(s, -ENOENT, "no identity");
}

int store_delete_identity(struct store *s)
{
    struct store_txn t;
    int r = store_txn_begin(s, &t);
    if (r >= 0)
        r = store_txn_end(s, &t, delete_identity(s));
    return store_errctx(s, r, "delete identity");
}
