/* The local store: one SQLite file that holds desired state (stacks, overrides, swarm
 * membership), the intake bookkeeping (command dedupe log, Kafka offsets) and what the agent
 * has to say (applies, events, outbox, stack status, latest telemetry). The store is the only
 * place with SQL. See docs/internals/store.md for tables, invariants and transactions.
 *
 * Conventions: every function returns 0 (or a documented positive value) or a negative errno;
 * ret_* out-parameters are written only on success; rows come back as malloc'ed plain structs
 * with a *_free() destructor (accepts NULL, returns NULL) and arrays with *_array_free().
 * Timestamps are milliseconds since the Unix epoch. A struct store belongs to one thread;
 * another process (the CLI next to the daemon) opens its own. After fork() the child must
 * open its own store and never touch the parent's.
 *
 * Common errors: -EINVAL (bad argument), -EMSGSIZE (a size limit below), -ENOENT (no such
 * row), -ESTALE (generation not newer), -EEXIST (duplicate command id), -EBUSY (another
 * process held the write lock longer than the busy timeout), -ECANCELED (an earlier error
 * inside store_begin() rolled the transaction back), -EIO/-ENOSPC/-EBADMSG (the disk or the
 * file). store_errmsg() says what failed and why. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

struct store;

/* Size limits for what comes from outside; a larger value is refused with -EMSGSIZE. */
#define STORE_NAME_MAX          255u        /* stack, service, command id, topic, ... */
#define STORE_PATH_MAX          4096u       /* base_dir, home_dir of a stack */
#define STORE_COMPOSE_MAX       (4u << 20)  /* compose text of one stack */
#define STORE_FILES_MAX         (8u << 20)  /* bytes of one stack's attached files in all */
#define STORE_FILES_COUNT_MAX   1000u       /* attached files of one stack */
#define STORE_VARIABLES_MAX     (1u << 20)  /* variables JSON of one stack */
#define STORE_TEXT_MAX          (64u << 10) /* error texts, reasons, results, tokens */
#define STORE_JSON_MAX          (4u << 20)  /* plan_json, services_json */
#define STORE_EVENT_MESSAGE_MAX 4096u       /* one event message */
#define STORE_PAYLOAD_MAX       (1u << 20)  /* one outbox payload */
#define STORE_TELEMETRY_MAX     (4u << 20)  /* one telemetry sample */

/* Default bounds of the tables that grow by themselves (see store_set_limits()). */
#define STORE_COMMANDS_MAX_DEFAULT     10000u
#define STORE_APPLIES_MAX_DEFAULT      1000u
#define STORE_EVENTS_MAX_DEFAULT       5000u
#define STORE_OUTBOX_ROWS_MAX_DEFAULT  100000u
#define STORE_OUTBOX_BYTES_MAX_DEFAULT (64ull << 20)
#define STORE_BUSY_TIMEOUT_MS_DEFAULT  5000

/* ---- opening and closing --------------------------------------------------------------- */

enum store_open_flags {
    /* A corrupt file (not a database, or quick_check not ok) is renamed, together with its
     * -wal/-shm/-journal, to PATH.corrupt-<UTC timestamp>[-wal|-shm|-journal] (never deleted)
     * and a new empty store is created. Without this flag a corrupt file is an error and
     * nothing is moved. */
    STORE_OPEN_RESET_CORRUPT = 1u << 0,
    /* Do not create the file: -ENOENT when it does not exist (for read-only CLI commands,
     * so that they never create a store owned by the wrong user). */
    STORE_OPEN_EXISTING = 1u << 1,
};

/* Opens (creating it with mode 0600 unless STORE_OPEN_EXISTING) and migrates the store at
 * path. On failure writes a one-line reason into err ("PATH: schema version 7 is newer than
 * this agent knows (1); upgrade the agent"). A store of a newer schema, a corrupt store
 * (without STORE_OPEN_RESET_CORRUPT) and a SQLite file that is not an axion-agent store are
 * refused without writing to the file (-EPROTONOSUPPORT, -EBADMSG, -EMEDIUMTYPE).
 *
 * Beside the file lies the key that seals the stacks' attached files (AES-256-GCM): PATH
 * without ".db", plus ".key" (store.db → store.key), 32 random bytes, mode 0600, made when the
 * store may be created. A key readable by group or others is refused (-EPERM). Without the key
 * (a store copied to another host without it) the sealed files do not open: store_get_stack()
 * answers -EKEYREJECTED (or -ENOKEY when there is no key at all), naming the file.
 *
 * Run by root in a directory another user owns (the daemon's state dir), the files it creates
 * (the store, its key) are given to that user, as SQLite does with its -wal and -shm. */
int store_open(const char *path, unsigned flags, struct store **ret, char *err, size_t errlen);
/* Rolls back an open transaction, finalizes every statement and closes. Accepts NULL. */
struct store *store_close(struct store *s);

/* The schema version this build writes (PRAGMA user_version after migrations). */
int store_schema_version(void);
const char *store_path(const struct store *s);
/* What the last failing call said ("put stack web: generation 3 is not newer than 5"). */
const char *store_errmsg(const struct store *s);
/* How long a writer waits for another process's write lock before -EBUSY. */
int store_set_busy_timeout(struct store *s, int ms);

struct store_limits {
    uint32_t commands_max;     /* newest command records kept */
    uint32_t applies_max;      /* newest apply records kept */
    uint32_t events_max;       /* size of the event ring */
    uint32_t outbox_rows_max;  /* outbox rows kept ... */
    uint64_t outbox_bytes_max; /* ... and payload bytes kept; the oldest are dropped */
};
/* Replaces the bounds (a 0 field keeps the default). Applied on the next insert. */
void store_set_limits(struct store *s, const struct store_limits *limits);
void store_get_limits(const struct store *s, struct store_limits *ret);

/* PRAGMA data_version: changes whenever another connection (e.g. the CLI) committed, never
 * for this connection's own commits. The daemon compares it to see that it must reload. */
int store_data_version(struct store *s, uint64_t *ret_version);
/* PRAGMA quick_check; -EBADMSG with the first problem in err when it is not "ok". */
int store_check(struct store *s, char *err, size_t errlen);

/* ---- transactions ----------------------------------------------------------------------- */

/* BEGIN IMMEDIATE: takes the write lock now (waiting up to the busy timeout), so that a
 * source can write desired state + offset + command record atomically. Every store function
 * works inside; each one is itself atomic (a savepoint), so a refused call (-ESTALE, -EEXIST,
 * -EMSGSIZE, ...) leaves the rest of the transaction intact. Nesting is refused (-EALREADY).
 * Outside store_begin() every writing function is its own transaction. */
int store_begin(struct store *s);
/* Commits; on failure the transaction is rolled back and the error returned. */
int store_commit(struct store *s);
/* Rolls back; 0 when no transaction is open (so it can be called on any error path). */
int store_rollback(struct store *s);
bool store_in_transaction(const struct store *s);
/* Inside store_begin(): groups several calls so that they happen all or none while the
 * transaction goes on (the intake's part of a batch). Savepoints nest. -EINVAL outside
 * store_begin(). store_savepoint_end() releases the innermost savepoint when r >= 0 and rolls
 * back to it otherwise; it returns r (or the release's error). */
int store_savepoint(struct store *s);
int store_savepoint_end(struct store *s, int r);

/* ---- stacks: desired state ------------------------------------------------------------- */

/* A file that came with a manifest (a config's or secret's file:, an env_file), as bytes: any
 * byte, NUL too. Sealed at rest; store_get_stack() hands it out opened. */
struct store_file {
    char *name; /* as the manifest names it; at most STORE_PATH_MAX bytes */
    void *data; /* len bytes, NUL-terminated one past the end */
    size_t len;
};

struct store_stack {
    char *name;
    int64_t generation;
    char *compose; /* compose text (NUL-terminated for convenience), compose_len bytes */
    size_t compose_len;
    /* The attached files by name; written by store_put_stack() (replacing the stored ones), read
     * by store_get_stack() only (NULL/0 from the summaries and lists). */
    struct store_file *files;
    size_t n_files;
    char *variables_json; /* JSON object: variable → value (string); "{}" when none */
    char *spec_hash;      /* may be NULL */
    bool removed;         /* marked removed: the reconciler prunes its objects */
    char *source;         /* who wrote it: "kafka", "grpc", "cli"...; may be NULL */
    int64_t updated_at;
    /* Where relative bind sources ("./data", "~/data") resolve: the manifest's directory and
     * the caller's home, both absolute. Only a source with a directory on this node (the CLI)
     * has them; NULL for remote sources. */
    char *base_dir;
    char *home_dir;
};

/* Writes stack->name at stack->generation, which must be newer than the stored one (else
 * -ESTALE, nothing written); generation 0 means "the next one" (stored + 1, or 1). files (named,
 * distinct, at most STORE_FILES_COUNT_MAX and STORE_FILES_MAX bytes in all) replace the stored
 * ones, sealed with the store's key (-ENOKEY without one). variables_json may be NULL ("{}")
 * and must be a JSON object of strings (-EINVAL).
 * base_dir and home_dir may be NULL, else absolute paths of at most STORE_PATH_MAX bytes.
 * removed is written as given (a deploy normally passes false). updated_at is ignored.
 * ret_generation (may be NULL) gets the generation written. */
int store_put_stack(struct store *s, const struct store_stack *stack, int64_t *ret_generation);
/* The stack, also when marked removed, with its files opened; -ENOENT when there is none,
 * -EKEYREJECTED/-ENOKEY when a file does not open with this store's key (the message names it:
 * "get stack web: file pw.txt: ..."). */
int store_get_stack(struct store *s, const char *name, struct store_stack **ret);
/* The stack without its compose text, variables and files (nothing to open); -ENOENT when
 * there is none. */
int store_get_stack_summary(struct store *s, const char *name, struct store_stack **ret);

enum store_list_flags {
    STORE_LIST_REMOVED = 1u << 0, /* include stacks marked removed */
    STORE_LIST_SUMMARY = 1u << 1, /* leave compose and variables_json NULL */
};
/* All stacks by name, without their files. *ret is NULL when there are none. */
int store_list_stacks(struct store *s, unsigned flags, struct store_stack **ret, size_t *ret_n);
/* Marks the stack removed at generation (0 = the next one; must be newer, else -ESTALE).
 * A stack the store does not know gets a tombstone (empty compose, removed) so that the
 * reconciler still prunes objects left with that name and an older deploy stays refused. */
int store_mark_stack_removed(struct store *s, const char *name, int64_t generation,
                             const char *source);
/* Deletes the stack and its overrides once its objects are pruned: only when it is still
 * marked removed at exactly generation (-ESTALE when it changed since, e.g. a redeploy by the
 * CLI), -ENOENT when it is gone. Its status row is left to store_delete_stack_status(). */
int store_delete_stack(struct store *s, const char *name, int64_t generation);

struct store_stack *store_stack_free(struct store_stack *stack);
void store_stack_array_free(struct store_stack *stacks, size_t n);

/* ---- overrides: imperative commands as desired state ----------------------------------- */

#define STORE_REPLICAS_UNSET (-1)

struct store_override {
    char *stack;
    char *service;    /* "" = the whole stack */
    int64_t replicas; /* STORE_REPLICAS_UNSET or >= 0 */
    bool stopped;
    int64_t restart_nonce;
    int64_t updated_at;
};

/* Each needs the stack to exist and not be marked removed (-ENOENT). They change only their
 * own field: whether a scale also clears "stopped" is the caller's policy (call both in one
 * store_begin()). */
int store_set_replicas(struct store *s, const char *stack, const char *service,
                       int64_t replicas); /* service must not be ""; replicas -1 clears */
int store_set_stopped(struct store *s, const char *stack, const char *service, bool stopped);
int store_bump_restart(struct store *s, const char *stack, const char *service, int64_t *ret_nonce);
/* -ENOENT when the service (or "" for the stack) has no override. */
int store_get_overrides(struct store *s, const char *stack, const char *service,
                        struct store_override **ret);
/* The overrides of one stack, by service ("" first). */
int store_list_overrides(struct store *s, const char *stack, struct store_override **ret,
                         size_t *ret_n);
/* Forgets every override of a stack (e.g. when a new deploy should reset scale/stop). */
int store_clear_overrides(struct store *s, const char *stack);

/* What a reader that keeps compiled stacks needs to see which of them changed, for every stack
 * (also those marked removed), by name, in one query: no compose text, files or variables.
 * overrides_rev is the stack's overrides written out as one text (NULL when it has none): two
 * reads give the same text exactly when the overrides are the same, so it serves as their
 * revision (a deploy changes the generation; a scale, stop, start or restart the text). */
struct store_stack_rev {
    char *name;
    int64_t generation;
    bool removed;
    char *overrides_rev;
};
int store_list_stack_revisions(struct store *s, struct store_stack_rev **ret, size_t *ret_n);
void store_stack_rev_array_free(struct store_stack_rev *revs, size_t n);

struct store_override *store_override_free(struct store_override *o);
void store_override_array_free(struct store_override *o, size_t n);

/* ---- commands: the dedupe log ----------------------------------------------------------- */

enum store_command_status {
    STORE_COMMAND_RECEIVED,         /* seen, not yet acted on */
    STORE_COMMAND_ACCEPTED,         /* written as desired state */
    STORE_COMMAND_APPLIED,          /* the reconciler applied it */
    STORE_COMMAND_FAILED,           /* applying it failed (error says why) */
    STORE_COMMAND_SUPERSEDED,       /* an older generation than the stored one */
    STORE_COMMAND_REJECTED,         /* refused: bad message, policy (error says why) */
    STORE_COMMAND_STILL_CONVERGING, /* accepted, not converged by its source's deadline */
    STORE_COMMAND_CANCELLED,        /* a stream (Logs) the asker cancelled */
    _STORE_COMMAND_STATUS_MAX,
};
const char *store_command_status_to_string(enum store_command_status status);
/* The status for its name, or -EINVAL. */
int store_command_status_from_string(const char *s);

struct store_command {
    char *command_id;
    char *source; /* "kafka", "grpc", "cli" */
    char *kind;   /* "deploy", "remove", "scale", ... */
    char *stack;  /* may be NULL */
    int64_t received_at;
    enum store_command_status status;
    char *error; /* may be NULL */
    int64_t updated_at;
    int64_t generation; /* the generation the command wrote; 0 when none */
};

/* Records a command (received_at 0 = now). -EEXIST when the id is already recorded: the
 * duplicate is to be skipped. Keeps the newest commands_max records. */
int store_record_command(struct store *s, const struct store_command *command);
int store_get_command(struct store *s, const char *command_id, struct store_command **ret);
int store_command_status(struct store *s, const char *command_id,
                         enum store_command_status *ret_status);
/* error may be NULL. -ENOENT when the id is unknown (or pruned). */
int store_update_command(struct store *s, const char *command_id, enum store_command_status status,
                         const char *error);
/* The newest commands first (limit 0 = all kept). */
int store_list_commands(struct store *s, size_t limit, struct store_command **ret, size_t *ret_n);

struct store_command *store_command_free(struct store_command *c);
void store_command_array_free(struct store_command *c, size_t n);

/* ---- offsets ---------------------------------------------------------------------------- */

/* The next offset to consume; -ENOENT when none is stored. */
int store_get_offset(struct store *s, const char *topic, int32_t partition,
                     int64_t *ret_next_offset);
/* Meant to be called inside store_begin() together with the desired-state change. */
int store_put_offset(struct store *s, const char *topic, int32_t partition, int64_t next_offset);

/* ---- swarm membership -------------------------------------------------------------------- */

enum store_swarm_role {
    STORE_SWARM_NONE,    /* not in a swarm: leave it */
    STORE_SWARM_MANAGER, /* init, or join as manager */
    STORE_SWARM_WORKER,  /* join as worker */
    _STORE_SWARM_ROLE_MAX,
};
const char *store_swarm_role_to_string(enum store_swarm_role role);
int store_swarm_role_from_string(const char *s);

/* The node's wanted membership, written only through the intake (sources/intake.h):
 *   none                            leave any swarm (a manager only with force)
 *   manager, no join addresses      init a swarm of its own (advertise, listen, data-path
 *                                   address, default address pools, subnet size, data port)
 *   manager or worker, join addrs   join the swarm at those managers with join_token
 * Text fields may be NULL ("not given": the Engine's default). */
struct store_swarm {
    enum store_swarm_role desired_role;
    char *join_addrs_json; /* JSON array of "host[:port]" strings; "[]" when none */
    char *join_token; /* may be NULL; a secret: sealed at rest with the store's key (store_open());
                       * never log or print it */
    char *advertise_addr; /* may be NULL */
    char *listen_addr;
    char *data_path_addr;
    char *default_addr_pools_json; /* JSON array of CIDR strings; "[]" when none */
    uint32_t subnet_size;          /* 0: the Engine's default; else 1..32 */
    uint32_t data_path_port;       /* 0: the Engine's default */
    bool force;                    /* none: leave even as a manager */
    char *source;                  /* who asked: "cli", "grpc", "kafka"; may be NULL */
    int64_t revision;              /* 1, 2, ...: moves with every store_set_swarm() */
    int64_t updated_at;
};

/* -ENOENT when the agent was never told: leave the node's membership as it is. */
int store_get_swarm(struct store *s, struct store_swarm **ret);
/* Replaces the wanted membership. join_addrs_json and default_addr_pools_json may be NULL
 * ("[]"), else JSON arrays of strings; addresses at most STORE_NAME_MAX bytes, the token at most
 * STORE_TEXT_MAX; subnet_size 0..32, data_path_port 0..65535 (-EINVAL, -EMSGSIZE). revision
 * and updated_at are ignored: the store counts the revision up. */
int store_set_swarm(struct store *s, const struct store_swarm *swarm);
struct store_swarm *store_swarm_free(struct store_swarm *sw);

/* ---- applies: what the reconciler did ---------------------------------------------------- */

struct store_apply {
    int64_t id;
    char *stack;
    int64_t generation;
    int64_t started_at;
    int64_t finished_at; /* 0 while running (or when the agent died during it) */
    char *result;        /* NULL while running; "ok", "failed: ..." */
    char *plan_json;     /* may be NULL */
};

/* Records the start of an apply; keeps the newest applies_max records. */
int store_apply_begin(struct store *s, const char *stack, int64_t generation, int64_t *ret_id);
/* -ENOENT when id is unknown (or pruned). plan_json may be NULL. */
int store_apply_finish(struct store *s, int64_t id, const char *result, const char *plan_json);
/* The newest apply of the stack; -ENOENT when there is none. */
int store_last_apply(struct store *s, const char *stack, struct store_apply **ret);

struct store_apply *store_apply_free(struct store_apply *a);

/* ---- events: a bounded ring --------------------------------------------------------------- */

struct store_event {
    int64_t id; /* increasing, never reused */
    int64_t ts;
    enum log_level level;
    char *stack;  /* may be NULL */
    char *object; /* may be NULL */
    char *message;
};

/* Adds an event and drops the oldest beyond events_max. ret_id may be NULL. */
int store_add_event(struct store *s, enum log_level level, const char *stack, const char *object,
                    const char *message, int64_t *ret_id);

#define STORE_EVENTS_TAIL (-1)
/* Events with id > since_id, oldest first, at most limit (0 = events_max); only those of stack
 * when it is not NULL. since_id STORE_EVENTS_TAIL gives the newest limit events instead (still
 * oldest first). */
int store_list_events(struct store *s, int64_t since_id, size_t limit, const char *stack,
                      struct store_event **ret, size_t *ret_n);

struct store_event *store_event_free(struct store_event *e);
void store_event_array_free(struct store_event *e, size_t n);

/* ---- outbox: what must reach the Control Plane, across restarts -------------------------- */

struct store_outbox_msg {
    int64_t id; /* increasing, never reused */
    char *topic;
    char *key; /* may be NULL */
    void *payload;
    size_t payload_len;
    int64_t created_at;
};

/* Appends a message. When the outbox holds more than outbox_rows_max rows or
 * outbox_bytes_max payload bytes, the oldest are dropped and counted. */
int store_outbox_add(struct store *s, const char *topic, const char *key, const void *payload,
                     size_t payload_len, int64_t *ret_id);
/* The oldest messages first, at most limit (0 = 1000). */
int store_outbox_peek(struct store *s, size_t limit, struct store_outbox_msg **ret, size_t *ret_n);
/* The same from the message after after_id on, only of topic (NULL: every topic): what a
 * producer has not handed on yet. */
int store_outbox_peek_after(struct store *s, int64_t after_id, const char *topic, size_t limit,
                            struct store_outbox_msg **ret, size_t *ret_n);
/* Removes a delivered message; -ENOENT when it is not there (acked or dropped). */
int store_outbox_ack(struct store *s, int64_t id);

struct store_outbox_stats {
    uint64_t rows;
    uint64_t bytes;
    uint64_t dropped; /* dropped because the outbox was full, since the store was created */
};
int store_outbox_stats(struct store *s, struct store_outbox_stats *ret);

struct store_outbox_msg *store_outbox_msg_free(struct store_outbox_msg *m);
void store_outbox_msg_array_free(struct store_outbox_msg *m, size_t n);

/* ---- stack status: the reconciler's latest verdict per stack ----------------------------- */

enum store_stack_state {
    STORE_STATE_PENDING,
    STORE_STATE_PROGRESSING,
    STORE_STATE_CONVERGED,
    STORE_STATE_DEGRADED,
    STORE_STATE_FAILED,
    STORE_STATE_REMOVED,
    _STORE_STATE_MAX,
};
const char *store_stack_state_to_string(enum store_stack_state state);
int store_stack_state_from_string(const char *s);

struct store_stack_status {
    char *stack;
    enum store_stack_state state;
    char *reason;        /* may be NULL */
    char *services_json; /* any JSON; may be NULL */
    int64_t updated_at;
};

/* Replaces the status of status->stack. updated_at is ignored. */
int store_set_stack_status(struct store *s, const struct store_stack_status *status);
int store_get_stack_status(struct store *s, const char *stack, struct store_stack_status **ret);
/* Every stack's status, by stack name. */
int store_list_stack_status(struct store *s, struct store_stack_status **ret, size_t *ret_n);
/* -ENOENT when there is none. */
int store_delete_stack_status(struct store *s, const char *stack);

struct store_stack_status *store_stack_status_free(struct store_stack_status *st);
void store_stack_status_array_free(struct store_stack_status *st, size_t n);

/* ---- telemetry: the latest encoded sample ------------------------------------------------- */

int store_put_telemetry(struct store *s, int64_t ts, const void *payload, size_t payload_len);
/* -ENOENT when no sample was stored; *ret_payload is malloc'ed (never NULL on success). */
int store_get_telemetry(struct store *s, int64_t *ret_ts, void **ret_payload, size_t *ret_len);

/* ---- agent state: what the daemon's parts say of themselves ------------------------------ */

#define STORE_STATE_VALUE_MAX (64u << 10)

/* A JSON document by key ("channel.grpc", "channel.kafka", "swarm"), for `axion-agent
 * status`: replaced whole by each put. */
struct store_state {
    char *key;
    char *value; /* JSON */
    int64_t updated_at;
};
int store_put_state(struct store *s, const char *key, const char *json);
/* -ENOENT when the key was never put (or was deleted). */
int store_delete_state(struct store *s, const char *key);
/* The entries whose key starts with prefix ("" for all), by key. *ret is NULL when none. */
int store_list_state(struct store *s, const char *prefix, struct store_state **ret, size_t *ret_n);
void store_state_array_free(struct store_state *v, size_t n);

/* ---- identity: who this agent is at the Control Plane -------------------------------------- */

#define STORE_PEM_MAX (64u << 10) /* a certificate chain or a CA bundle */

/* The identity the gRPC channel enrolled (sources/grpc_identity.h). The private key is not
 * here: key_file names the 0600 file in the state dir that holds it. */
struct store_identity {
    char *agent_id;
    char *key_file; /* absolute path */
    char *cert_chain_pem;
    char *ca_bundle_pem;
    int64_t not_before, not_after; /* the leaf certificate's validity, ms */
    int64_t enrolled_at;
    int64_t renewed_at; /* 0: never renewed */
    int64_t updated_at; /* ignored by store_put_identity */
};
/* -ENOENT when the agent has no identity (never enrolled). */
int store_get_identity(struct store *s, struct store_identity **ret);
/* Replaces the identity (one row). */
int store_put_identity(struct store *s, const struct store_identity *id);
/* -ENOENT when there is none. */
int store_delete_identity(struct store *s);
struct store_identity *store_identity_free(struct store_identity *id);

/* ---- cleanup helpers ---------------------------------------------------------------------- */

static inline void store_closep(struct store **s)
{
    store_close(*s);
}
static inline void store_stack_freep(struct store_stack **p)
{
    store_stack_free(*p);
}
static inline void store_command_freep(struct store_command **p)
{
    store_command_free(*p);
}
static inline void store_swarm_freep(struct store_swarm **p)
{
    store_swarm_free(*p);
}
static inline void store_identity_freep(struct store_identity **p)
{
    store_identity_free(*p);
}
