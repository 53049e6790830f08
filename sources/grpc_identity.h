/* grpc_identity: who this agent is at the Control Plane — its private key, its client
 * certificate chain, the CA bundle it trusts for the control endpoint — and the crypto that
 * makes one: an EC P-256 key generated on the host (written 0600 into the state dir; it never
 * leaves the host, and is never logged), a CSR over it, the facts of a certificate (CN,
 * validity, whether it belongs to the key).
 *
 * Where it lives: an enrolled identity in the store (store_get_identity: agent id, chain, CA
 * bundle, validity, and the path of the key file); or, when control_plane.cert_file and
 * key_file are set, in those files (provisioned by hand: never renewed by the agent).
 *
 * Who may call it: sources/grpc*.c (and its unit test). OpenSSL only; no gRPC here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define GRPC_IDENTITY_PEM_MAX (64u << 10) /* a key, a chain or a bundle read from a file */

struct grpc_identity {
    char *agent_id; /* the CN of the leaf certificate */
    char *key_pem;  /* secret: cleansed when freed */
    char *key_file;
    char *chain_pem;
    char *ca_pem;                  /* the roots that sign the Control Plane's server certificates */
    int64_t not_before, not_after; /* ms */
    int64_t enrolled_at, renewed_at;
    bool from_files; /* control_plane.cert_file/key_file: the agent does not renew it */
};
void grpc_identity_free(struct grpc_identity *id);

/* A new EC P-256 key as PKCS#8 PEM (malloc'ed; cleanse with grpc_identity_free_secret). */
int grpc_identity_keygen(char **ret_key_pem, char *err, size_t errlen);
/* A PEM CSR signed by key_pem, subject CN=cn (the Control Plane ignores it and names us). */
int grpc_identity_csr(const char *key_pem, const char *cn, char **ret_csr_pem, char *err,
                      size_t errlen);
/* Overwrites and frees a secret string. Accepts NULL. */
void grpc_identity_free_secret(char *s);

/* Writes key_pem into a new file "agent-key-<ms>.pem" in dir, mode 0600, synced (file and
 * directory). *ret_path is the file's path (malloc'ed). */
int grpc_identity_write_key(const char *dir, const char *key_pem, char **ret_path, char *err,
                            size_t errlen);
/* Removes the key files of dir that are not keep (left by a renewal cut short). */
void grpc_identity_prune_keys(const char *dir, const char *keep);

struct grpc_cert_info {
    char cn[256];
    int64_t not_before, not_after; /* ms */
};
/* The facts of the first certificate of a PEM chain. */
int grpc_identity_cert_info(const char *chain_pem, struct grpc_cert_info *ret, char *err,
                            size_t errlen);
/* 0 when the leaf of chain_pem certifies the public key of key_pem; -EKEYREJECTED when not. */
int grpc_identity_key_matches(const char *key_pem, const char *chain_pem, char *err, size_t errlen);

/* What the Control Plane issued (an Enroll or Renew answer), checked before anything of it is
 * kept: the chain and the bundle at most GRPC_IDENTITY_PEM_MAX bytes and
 * GRPC_IDENTITY_CERTS_MAX certificates, every PEM block of them a certificate that parses (a
 * bundle may be empty: the caller keeps what it trusted before); the leaf certifies key_pem,
 * names agent_id as its CN, and is valid at now_ms (not before it by more than
 * GRPC_IDENTITY_SKEW_MS). 0 with *ret; -EBADMSG with err naming the field and the cause (never
 * a secret: the key is not quoted, nor any block's contents). */
#define GRPC_IDENTITY_CERTS_MAX 100u
#define GRPC_IDENTITY_SKEW_MS   (5 * 60 * 1000)
int grpc_identity_check_issued(const char *agent_id, const char *chain_pem, const char *ca_pem,
                               const char *key_pem, int64_t now_ms, struct grpc_cert_info *ret,
                               char *err, size_t errlen);

/* Reads a whole PEM file of at most GRPC_IDENTITY_PEM_MAX bytes (malloc'ed, NUL-terminated). */
int grpc_identity_read_file(const char *path, char **ret, char *err, size_t errlen);

/* Loads the identity: from cert_file/key_file when both are given (ca_file then holds the
 * roots; NULL: the system's), else the enrolled one of the store (-ENOENT when none; its key
 * file must be a regular file, not a link, with no group or other bits: -EPERM). The key
 * must belong to the certificate. err names the file or the row and the cause. */
int grpc_identity_load(struct store *st, const char *cert_file, const char *key_file,
                       const char *ca_file, struct grpc_identity **ret, char *err, size_t errlen);

/* The time (ms) at which to renew: 2/3 of the way through the validity. */
int64_t grpc_identity_renew_at(const struct grpc_identity *id);
