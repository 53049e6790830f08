/* intake: THE one door into desired state. Every channel turns what it received into a
 * struct intake_request and calls intake_submit(); nothing else writes stacks or overrides.
 * In one SQLite transaction it
 *   1. dedupes by command id (a repeat answers with the first one's stored outcome, nothing
 *      else happens),
 *   2. refuses a stale generation (recorded as superseded),
 *   3. compiles and checks a manifest once (compose/compile.h, with the config's policy),
 *   4. writes the stack or the override,
 *   5. stores the source's position (a Kafka topic/partition/next offset),
 *   6. records the outcome in the commands table.
 * A rejected or superseded request still stores its position and its record: a bad message
 * never blocks a partition. The caller wakes the daemon. docs/internals/intake.md has the rules.
 *
 * Who may call it: the sources (sources/: the local CLI through agent/, gRPC and Kafka next)
 * and nobody else, on the thread that owns the store. The reconciler only reads desired state.
 *
 *   struct intake_request rq = {.kind = INTAKE_SCALE, .source = "cli", .stack = "web",
 *                               .service = "api", .replicas = 3};
 *   struct intake_result res;
 *   int r = intake_submit(in, &rq, &res);
 *   if (r < 0)                          → store error (res.error): nothing written
 *   else if (res.outcome == INTAKE_REJECTED) → res.error names the place and the cause
 *   intake_result_release(&res); */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compose/compile.h"
#include "store/store.h"

/* Limits on what a request may carry (beyond the compiler's and the store's own). */
#define INTAKE_FILES_MAX    1000u      /* attached files of one deploy */
#define INTAKE_FILE_MAX     (1u << 20) /* bytes of one attached file */
#define INTAKE_VARS_MAX     4096u      /* variables of one deploy (each of vars and env) */
#define INTAKE_REPLICAS_MAX COMPOSE_MAX_REPLICAS /* scale: the cap deploy.replicas has */
#define INTAKE_ERROR_MAX    2048u
/* swarm-init, swarm-join (docs/PROTOCOL.md, Limits) */
#define INTAKE_SWARM_ADDR_MAX  255u /* bytes of one address, pool or the source */
#define INTAKE_SWARM_ADDRS_MAX 16u  /* remote addresses of a join; default address pools */
#define INTAKE_SWARM_TOKEN_MAX 512u /* bytes of a join token */

enum intake_kind {
    INTAKE_DEPLOY,        /* a manifest as the stack's next (or given) generation */
    INTAKE_REMOVE,        /* the stack marked removed: the loop prunes its objects */
    INTAKE_SCALE,         /* override replicas (and clear stopped) of one service */
    INTAKE_STOP,          /* override stopped on a service or the whole stack */
    INTAKE_START,         /* undo stop */
    INTAKE_RESTART,       /* bump restart_nonce (TaskTemplate.ForceUpdate) */
    INTAKE_RECONCILE_NOW, /* no desired-state change: the caller wakes the loop */
    /* Swarm membership (sources/intake_swarm.c): the node's wanted membership, which the loop
     * converges before the stacks. */
    INTAKE_SWARM_INIT,  /* manager of a swarm of its own (docker swarm init) */
    INTAKE_SWARM_JOIN,  /* worker or manager of the swarm at remote_addrs (docker swarm join) */
    INTAKE_SWARM_LEAVE, /* in no swarm; refused while the node holds stacks, unless forced */
    _INTAKE_KIND_MAX,
};
/* "deploy", "remove", "scale", "stop", "start", "restart", "reconcile-now", "swarm-init",
 * "swarm-join", "swarm-leave"; NULL when unknown. The commands table records kinds by these
 * names. */
const char *intake_kind_to_string(enum intake_kind kind);

enum intake_outcome {
    INTAKE_ACCEPTED,   /* written as desired state (reconcile-now: recorded) */
    INTAKE_DUPLICATE,  /* the command id was seen: first says what came of it then */
    INTAKE_SUPERSEDED, /* an older (or the same) generation than the stored one */
    INTAKE_REJECTED,   /* refused: bad manifest, policy, limit, unknown stack or service */
    _INTAKE_OUTCOME_MAX,
};
const char *intake_outcome_to_string(enum intake_outcome outcome);

/* Where the request came from in its channel: stored with the outcome, in the same transaction,
 * so that a consumer restarts right after the last message it handled. */
struct intake_position {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
};

struct intake_request {
    enum intake_kind kind;
    const char *source;     /* "cli", "kafka", "grpc" */
    const char *command_id; /* NULL: no dedupe and no record (the CLI) */
    const char *stack;      /* NULL or "" only for reconcile-now (every stack) */
    const char *service;    /* NULL or "": the whole stack (scale needs one) */
    int64_t generation;     /* deploy, remove: 0 = the next one; else it must be newer */
    int64_t replicas;       /* scale: 0 .. INTAKE_REPLICAS_MAX */

    /* deploy */
    const char *filename; /* names the manifest in messages; NULL: "compose.yml" */
    const char *compose;
    size_t compose_len;
    const struct compose_var *vars; /* ${VAR} interpolation; a later pair wins */
    size_t n_vars;
    /* The caller's environment (`apply --env`): below vars; of these, only the variables the
     * manifest or a file it uses names are stored with the stack. */
    const struct compose_var *env;
    size_t n_env;
    /* Files the manifest names (configs'/secrets' file:, env_file), by name, matched by the
     * converter's rule (compile_file_matches()); an attached file wins over the lookup. Every
     * one must be used by the manifest. Any bytes (a DER key, a keystore): the store keeps them
     * as bytes, sealed. An env_file must still be UTF-8 text without NUL bytes (the converter
     * reads it as lines of text). */
    const struct spec_file *files;
    size_t n_files;
    /* Files not in files above, on demand (the CLI reads them from beside the manifest); the
     * bytes must stay valid until intake_submit() returns. get NULL: none. */
    struct compile_files lookup;
    /* The CLI's directory and home for relative bind sources ("./data", "~/data"); stored with
     * the stack for the loop. NULL (remote sources): such sources are refused. */
    const char *base_dir;
    const char *home_dir;

    const struct intake_position *position; /* NULL: none */

    /* swarm-init, swarm-join, swarm-leave: the fields of SwarmInit, SwarmJoin and SwarmLeave
     * (proto/axion/agent/v1/commands.proto); NULL or "" and 0 are "not given" (the Engine's
     * default). A field the kind does not take is refused. stack and service stay NULL. */
    struct intake_swarm {
        const char *advertise_addr; /* init, join: "ip|interface[:port]" */
        const char *listen_addr;    /* init, join: "ip|interface[:port]" (0.0.0.0:2377) */
        const char *data_path_addr; /* init, join: "ip|interface" */
        const char *const *default_addr_pools; /* init: CIDRs for overlay networks */
        size_t n_default_addr_pools;
        uint32_t subnet_size;            /* init: 0, or the pools' subnet prefix length */
        uint32_t data_path_port;         /* init: 0, or 1024..49151 (4789) */
        const char *const *remote_addrs; /* join: managers, "host[:port]", at least one */
        size_t n_remote_addrs;
        const char *join_token;     /* join: "SWMTKN-..."; a secret, never in any message */
        enum store_swarm_role role; /* join: STORE_SWARM_WORKER or STORE_SWARM_MANAGER */
        bool force; /* leave: also as a manager, and removing the stacks the node holds first */
    } swarm;

    /* The channel refused the request itself (a record that does not decode, a channel's own
     * limit, a command it does not carry): not NULL makes the outcome REJECTED with this text
     * (cause INTAKE_CAUSE_REFUSED), after the dedupe by command id, with its record and its
     * position stored like any other rejection. kind need not be valid then (it is recorded as
     * "unknown"). */
    const char *refused;

    /* deploy: the compile intake_compile() made of this very request ahead (a batch's
     * manifests compile on several cores before its transaction); NULL: intake_submit()
     * compiles it. It stays the caller's. */
    const struct intake_compiled *compiled;
};

/* Why a request was rejected, for programs (error says it for people). */
enum intake_cause {
    INTAKE_CAUSE_NONE,
    INTAKE_CAUSE_INVALID,   /* the request itself: a missing, bad or unknown field */
    INTAKE_CAUSE_LIMIT,     /* a size or count over its limit */
    INTAKE_CAUSE_MANIFEST,  /* the manifest does not compile (file:line:column: ...) */
    INTAKE_CAUSE_POLICY,    /* the manifest asks for what the policy refuses */
    INTAKE_CAUSE_NOT_FOUND, /* no such stack or service */
    INTAKE_CAUSE_REFUSED,   /* the channel's own refusal (intake_request.refused) */
};

struct intake_result {
    enum intake_outcome outcome;
    /* DUPLICATE: the first one's outcome (ACCEPTED, SUPERSEDED or REJECTED; one the
     * reconciler has applied or failed since counts as ACCEPTED). */
    enum intake_outcome first;
    /* DUPLICATE: the first one's record as it stands now (applied, failed, still converging,
     * ... once the loop or its source has given the final result). */
    enum store_command_status first_status;
    /* deploy, remove: the generation written (a duplicate's: the first one's); swarm-init,
     * swarm-join, swarm-leave: the revision of the wanted membership written (the tracker's
     * mark: store_swarm.revision); else 0. */
    int64_t generation;
    /* SUPERSEDED by the generation check: the stored generation that won; else 0. */
    int64_t stored_generation;
    /* REJECTED, SUPERSEDED (and a duplicate of one): the place and the cause. When
     * intake_submit() fails: the store's message. */
    char error[INTAKE_ERROR_MAX];
    /* REJECTED: why, for programs; else INTAKE_CAUSE_NONE. */
    enum intake_cause cause;
    /* deploy: what the compiler has to say about an accepted manifest, one line each:
     * "note: ..." (a bind source resolved against the caller's directory) and "warning: ..."
     * (keys Swarm ignores, ...). */
    char **notes;
    size_t n_notes;
};
void intake_result_release(struct intake_result *res);

struct intake;
struct intake_compiled;

struct intake_opts {
    const char *agent_id;              /* io.axion.agent on every object; copied */
    const struct policy_rules *policy; /* copied, but its lists (bind_allow, drivers, ...) are
                                        * borrowed and must outlive the intake; NULL: no policy
                                        * check */
};

/* The store is borrowed: it must outlive the intake. */
int intake_new(struct store *st, const struct intake_opts *o, struct intake **ret);
struct intake *intake_free(struct intake *in);

/* Handles one request. Outside a transaction it opens and commits its own (BEGIN IMMEDIATE:
 * -EBUSY when another process holds the write lock past the busy timeout). Inside one the
 * caller opened with store_begin() (a Kafka poll's batch) it does its part in a savepoint and
 * does not commit: a rejected request leaves the others of the batch alone.
 * 0: handled, res->outcome says how (res is always set; release it). Negative errno: a store
 * error or -ENOMEM, res->error says what, and nothing of this request is written; inside a
 * caller's transaction the caller should roll back the batch (a disk error may have lost it:
 * its commit then fails with -ECANCELED). */
int intake_submit(struct intake *in, const struct intake_request *req, struct intake_result *res);

/* A deploy's compile and checks, made ahead of intake_submit() (which then only reads the
 * stored generation and writes). It reads nothing of the store and changes nothing of the
 * intake, so it may run on any thread, for several requests at once (lib/parallel.h), while
 * the loop thread owns the store; rq->lookup is called on that thread. The outcome it comes to
 * (rejected with the place and the cause, or what the store takes) is the one intake_submit()
 * would have come to compiling the request itself. 0 with *ret (NULL when the request is no
 * deploy to compile: another kind, refused by its channel, or failing the request's own
 * checks), or -ENOMEM. The request must stay as it is until the result is freed. */
int intake_compile(const struct intake *in, const struct intake_request *rq,
                   struct intake_compiled **ret);
struct intake_compiled *intake_compiled_free(struct intake_compiled *c);
