/* All the SQL of the agent: the forward migrations of the schema and the statements that
 * store_open() prepares once. Migration i takes PRAGMA user_version from i to i + 1; it runs
 * in one transaction together with the version bump. Never edit a migration that has been
 * released: add a new one. */
#include "store/store_internal.h"

#include "lib/util.h"

/* clang-format off */
static const char migration_1[] =
    "PRAGMA application_id = 1096306225;\n" /* STORE_APPLICATION_ID */

    /* Desired state. files and variables are JSON objects of strings. */
    "CREATE TABLE stacks (\n"
    "  name        TEXT PRIMARY KEY NOT NULL,\n"
    "  generation  INTEGER NOT NULL CHECK (generation > 0),\n"
    "  compose     BLOB NOT NULL,\n"
    "  files       TEXT NOT NULL DEFAULT '{}',\n"
    "  variables   TEXT NOT NULL DEFAULT '{}',\n"
    "  spec_hash   TEXT,\n"
    "  removed     INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),\n"
    "  source      TEXT,\n"
    "  updated_at  INTEGER NOT NULL\n"
    ") STRICT;\n"

    /* Imperative commands as desired state; service '' is the whole stack. */
    "CREATE TABLE overrides (\n"
    "  stack          TEXT NOT NULL REFERENCES stacks (name) ON DELETE CASCADE,\n"
    "  service        TEXT NOT NULL DEFAULT '',\n"
    "  replicas       INTEGER CHECK (replicas IS NULL OR replicas >= 0),\n"
    "  stopped        INTEGER NOT NULL DEFAULT 0 CHECK (stopped IN (0, 1)),\n"
    "  restart_nonce  INTEGER NOT NULL DEFAULT 0,\n"
    "  updated_at     INTEGER NOT NULL,\n"
    "  PRIMARY KEY (stack, service)\n"
    ") STRICT, WITHOUT ROWID;\n"

    /* The dedupe log. seq orders the records; the oldest beyond the bound are pruned. */
    "CREATE TABLE commands (\n"
    "  seq          INTEGER PRIMARY KEY,\n"
    "  command_id   TEXT NOT NULL UNIQUE,\n"
    "  source       TEXT NOT NULL,\n"
    "  kind         TEXT NOT NULL,\n"
    "  stack        TEXT,\n"
    "  received_at  INTEGER NOT NULL,\n"
    "  status       TEXT NOT NULL CHECK (status IN ('received', 'accepted', 'applied',\n"
    "                                    'failed', 'superseded', 'rejected')),\n"
    "  error        TEXT,\n"
    "  updated_at   INTEGER NOT NULL\n"
    ") STRICT;\n"

    "CREATE TABLE offsets (\n"
    "  topic        TEXT NOT NULL,\n"
    "  \"partition\"  INTEGER NOT NULL,\n"
    "  next_offset  INTEGER NOT NULL CHECK (next_offset >= 0),\n"
    "  updated_at   INTEGER NOT NULL,\n"
    "  PRIMARY KEY (topic, \"partition\")\n"
    ") STRICT, WITHOUT ROWID;\n"

    /* No row: never told, leave the membership alone. */
    "CREATE TABLE swarm (\n"
    "  id              INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  desired_role    TEXT NOT NULL CHECK (desired_role IN ('none', 'manager', 'worker')),\n"
    "  join_addrs      TEXT NOT NULL DEFAULT '[]',\n"
    "  join_token      TEXT,\n"
    "  advertise_addr  TEXT,\n"
    "  updated_at      INTEGER NOT NULL\n"
    ") STRICT;\n"

    /* AUTOINCREMENT: ids are never reused, so the bound can prune by id. */
    "CREATE TABLE applies (\n"
    "  id           INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  stack        TEXT NOT NULL,\n"
    "  generation   INTEGER NOT NULL,\n"
    "  started_at   INTEGER NOT NULL,\n"
    "  finished_at  INTEGER,\n"
    "  result       TEXT,\n"
    "  plan_json    TEXT\n"
    ") STRICT;\n"
    "CREATE INDEX applies_by_stack ON applies (stack, id);\n"

    "CREATE TABLE events (\n"
    "  id       INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  ts       INTEGER NOT NULL,\n"
    "  level    TEXT NOT NULL CHECK (level IN ('error', 'warn', 'info', 'debug')),\n"
    "  stack    TEXT,\n"
    "  object   TEXT,\n"
    "  message  TEXT NOT NULL\n"
    ") STRICT;\n"
    "CREATE INDEX events_by_stack ON events (stack, id);\n"

    "CREATE TABLE outbox (\n"
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  topic       TEXT NOT NULL,\n"
    "  key         TEXT,\n"
    "  payload     BLOB NOT NULL,\n"
    "  created_at  INTEGER NOT NULL\n"
    ") STRICT;\n"

    /* Running totals, kept by the triggers below in the same transaction as the change. */
    "CREATE TABLE counters (\n"
    "  name   TEXT PRIMARY KEY NOT NULL,\n"
    "  value  INTEGER NOT NULL\n"
    ") STRICT, WITHOUT ROWID;\n"
    "INSERT INTO counters (name, value) VALUES\n"
    "  ('outbox_rows', 0), ('outbox_bytes', 0), ('outbox_dropped', 0);\n"
    "CREATE TRIGGER outbox_counters_insert AFTER INSERT ON outbox BEGIN\n"
    "  UPDATE counters SET value = value + 1 WHERE name = 'outbox_rows';\n"
    "  UPDATE counters SET value = value + length(NEW.payload) WHERE name = 'outbox_bytes';\n"
    "END;\n"
    "CREATE TRIGGER outbox_counters_delete AFTER DELETE ON outbox BEGIN\n"
    "  UPDATE counters SET value = value - 1 WHERE name = 'outbox_rows';\n"
    "  UPDATE counters SET value = value - length(OLD.payload) WHERE name = 'outbox_bytes';\n"
    "END;\n"

    "CREATE TABLE stack_status (\n"
    "  stack          TEXT PRIMARY KEY NOT NULL,\n"
    "  state          TEXT NOT NULL CHECK (state IN ('pending', 'progressing', 'converged',\n"
    "                                      'degraded', 'failed', 'removed')),\n"
    "  reason         TEXT,\n"
    "  services_json  TEXT,\n"
    "  updated_at     INTEGER NOT NULL\n"
    ") STRICT;\n"

    "CREATE TABLE telemetry_latest (\n"
    "  id       INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  ts       INTEGER NOT NULL,\n"
    "  payload  BLOB NOT NULL\n"
    ") STRICT;\n";

/* The CLI's way of resolving relative bind sources (base_dir: the manifest's directory,
 * home_dir: the caller's home; NULL for remote sources), and the generation a command wrote,
 * so that a repeated command id answers with the first one's outcome. */
static const char migration_2[] =
    "ALTER TABLE stacks ADD COLUMN base_dir TEXT;\n"
    "ALTER TABLE stacks ADD COLUMN home_dir TEXT;\n"

    /* The command log gets the generation a command wrote, and the final results a source
     * owes (still converging at its deadline, a Logs stream cancelled): a new table, since a
     * CHECK cannot be altered. */
    "CREATE TABLE commands_2 (\n"
    "  seq          INTEGER PRIMARY KEY,\n"
    "  command_id   TEXT NOT NULL UNIQUE,\n"
    "  source       TEXT NOT NULL,\n"
    "  kind         TEXT NOT NULL,\n"
    "  stack        TEXT,\n"
    "  received_at  INTEGER NOT NULL,\n"
    "  status       TEXT NOT NULL CHECK (status IN ('received', 'accepted', 'applied',\n"
    "                                    'failed', 'superseded', 'rejected',\n"
    "                                    'still_converging', 'cancelled')),\n"
    "  error        TEXT,\n"
    "  updated_at   INTEGER NOT NULL,\n"
    "  generation   INTEGER\n"
    ") STRICT;\n"
    "INSERT INTO commands_2 (seq, command_id, source, kind, stack, received_at, status, error,\n"
    "                        updated_at)\n"
    "  SELECT seq, command_id, source, kind, stack, received_at, status, error, updated_at\n"
    "  FROM commands;\n"
    "DROP TABLE commands;\n"
    "ALTER TABLE commands_2 RENAME TO commands;\n"

    /* What the daemon's parts say of themselves (a channel's connection, the swarm), as JSON
     * by key, for `axion-agent status`. */
    "CREATE TABLE agent_state (\n"
    "  key         TEXT PRIMARY KEY NOT NULL,\n"
    "  value       TEXT NOT NULL,\n"
    "  updated_at  INTEGER NOT NULL\n"
    ") STRICT, WITHOUT ROWID;\n";

/* Swarm membership as the intake writes it (issue 12): what `swarm init` and `swarm join` may
 * say beyond the role, the join addresses and the advertise address, whether a leave is forced,
 * who asked, and a revision that moves with every write (the loop starts its retries over when
 * the wanted membership changes). */
static const char migration_3[] =
    "ALTER TABLE swarm ADD COLUMN listen_addr TEXT;\n"
    "ALTER TABLE swarm ADD COLUMN data_path_addr TEXT;\n"
    "ALTER TABLE swarm ADD COLUMN default_addr_pools TEXT NOT NULL DEFAULT '[]';\n"
    "ALTER TABLE swarm ADD COLUMN subnet_size INTEGER NOT NULL DEFAULT 0\n"
    "  CHECK (subnet_size BETWEEN 0 AND 32);\n"
    "ALTER TABLE swarm ADD COLUMN data_path_port INTEGER NOT NULL DEFAULT 0\n"
    "  CHECK (data_path_port BETWEEN 0 AND 65535);\n"
    "ALTER TABLE swarm ADD COLUMN leave_force INTEGER NOT NULL DEFAULT 0\n"
    "  CHECK (leave_force IN (0, 1));\n"
    "ALTER TABLE swarm ADD COLUMN source TEXT;\n"
    "ALTER TABLE swarm ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;\n";

/* A stack's attached files as bytes, one row each (secrets are often DER or keystores: any
 * byte, NUL too), sealed with the key beside the store (store_seal.c, AES-256-GCM) when sealed
 * is 1. The files of the earlier JSON column come over as their UTF-8 bytes, not sealed yet:
 * the first open with the key seals them. */
static const char migration_4[] =
    "CREATE TABLE stack_files (\n"
    "  stack    TEXT NOT NULL REFERENCES stacks (name) ON DELETE CASCADE,\n"
    "  name     TEXT NOT NULL,\n"
    "  content  BLOB NOT NULL,\n"
    "  sealed   INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1)),\n"
    "  PRIMARY KEY (stack, name)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "INSERT INTO stack_files (stack, name, content, sealed)\n"
    "  SELECT s.name, f.key, CAST(f.value AS BLOB), 0\n"
    "  FROM stacks AS s, json_each(s.files) AS f WHERE f.type = 'text';\n"
    "ALTER TABLE stacks DROP COLUMN files;\n";

/* The agent's identity at the Control Plane (sources/grpc_identity.h): the id and client
 * certificate it was enrolled with (or last renewed), the CA bundle it trusts for the control
 * endpoint, and the file name of its private key (the key itself stays in that 0600 file in
 * the state dir). One row. */
static const char migration_5[] =
    "CREATE TABLE identity (\n"
    "  id              INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  agent_id        TEXT NOT NULL,\n"
    "  key_file        TEXT NOT NULL,\n"
    "  cert_chain_pem  TEXT NOT NULL,\n"
    "  ca_bundle_pem   TEXT NOT NULL,\n"
    "  not_before      INTEGER NOT NULL,\n"
    "  not_after       INTEGER NOT NULL,\n"
    "  enrolled_at     INTEGER NOT NULL,\n"
    "  renewed_at      INTEGER NOT NULL DEFAULT 0,\n"
    "  updated_at      INTEGER NOT NULL\n"
    ") STRICT;\n";

const char *const store_migrations[] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
};
const size_t store_n_migrations = ARRAY_SIZE(store_migrations);

#define STACK_COLUMNS "name, generation, compose, variables, spec_hash, removed, source, " \
                      "updated_at, base_dir, home_dir"
#define OVR_COLUMNS   "stack, service, replicas, stopped, restart_nonce, updated_at"
#define CMD_COLUMNS   "command_id, source, kind, stack, received_at, status, error, updated_at, " \
                      "generation"
#define APPLY_COLUMNS "id, stack, generation, started_at, finished_at, result, plan_json"
#define EVENT_COLUMNS "id, ts, level, stack, object, message"
#define SWARM_COLUMNS "desired_role, join_addrs, join_token, advertise_addr, updated_at, " \
                      "listen_addr, data_path_addr, default_addr_pools, subnet_size, " \
                      "data_path_port, leave_force, source, revision"

const char *const store_sql[_STMT_MAX] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT store_op",
    [STMT_RELEASE] = "RELEASE store_op",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO store_op",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_QUICK_CHECK] = "PRAGMA quick_check(1)",

    [STMT_STACK_GEN] = "SELECT generation, removed FROM stacks WHERE name = ?1",
    [STMT_STACK_UPSERT] =
        "INSERT INTO stacks (" STACK_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10) ON CONFLICT (name) DO UPDATE SET generation = excluded.generation,"
        " compose = excluded.compose, variables = excluded.variables,"
        " spec_hash = excluded.spec_hash, removed = excluded.removed, source = excluded.source,"
        " updated_at = excluded.updated_at, base_dir = excluded.base_dir,"
        " home_dir = excluded.home_dir",
    [STMT_STACK_MARK_REMOVED] =
        "UPDATE stacks SET generation = ?2, removed = 1, source = ?3, updated_at = ?4"
        " WHERE name = ?1",
    [STMT_STACK_GET] = "SELECT " STACK_COLUMNS " FROM stacks WHERE name = ?1",
    [STMT_STACK_LIST] = "SELECT " STACK_COLUMNS " FROM stacks WHERE removed = 0 OR ?1"
                        " ORDER BY name",
    [STMT_STACK_LIST_SUMMARY] =
        "SELECT name, generation, NULL, NULL, spec_hash, removed, source, updated_at,"
        " base_dir, home_dir FROM stacks WHERE removed = 0 OR ?1 ORDER BY name",
    [STMT_STACK_GET_SUMMARY] =
        "SELECT name, generation, NULL, NULL, spec_hash, removed, source, updated_at,"
        " base_dir, home_dir FROM stacks WHERE name = ?1",
    [STMT_STACK_DELETE] = "DELETE FROM stacks WHERE name = ?1",
    [STMT_FILES_CLEAR] = "DELETE FROM stack_files WHERE stack = ?1",
    [STMT_FILES_INSERT] = "INSERT INTO stack_files (stack, name, content, sealed)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [STMT_FILES_LIST] = "SELECT name, content, sealed FROM stack_files WHERE stack = ?1"
                        " ORDER BY name",
    [STMT_FILES_PLAIN] = "SELECT stack, name, content FROM stack_files WHERE sealed = 0"
                         " ORDER BY stack, name LIMIT 1",
    [STMT_FILES_RESEAL] = "UPDATE stack_files SET content = ?3, sealed = 1"
                          " WHERE stack = ?1 AND name = ?2 AND sealed = 0",

    [STMT_OVR_SET_REPLICAS] =
        "INSERT INTO overrides (stack, service, replicas, updated_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (stack, service) DO UPDATE SET replicas = excluded.replicas,"
        " updated_at = excluded.updated_at",
    [STMT_OVR_SET_STOPPED] =
        "INSERT INTO overrides (stack, service, stopped, updated_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (stack, service) DO UPDATE SET stopped = excluded.stopped,"
        " updated_at = excluded.updated_at",
    [STMT_OVR_BUMP_RESTART] =
        "INSERT INTO overrides (stack, service, restart_nonce, updated_at)"
        " VALUES (?1, ?2, 1, ?3) ON CONFLICT (stack, service) DO UPDATE SET"
        " restart_nonce = restart_nonce + 1, updated_at = excluded.updated_at"
        " RETURNING restart_nonce",
    [STMT_OVR_GET] = "SELECT " OVR_COLUMNS " FROM overrides WHERE stack = ?1 AND service = ?2",
    [STMT_OVR_LIST] = "SELECT " OVR_COLUMNS " FROM overrides WHERE stack = ?1 ORDER BY service",
    [STMT_OVR_CLEAR] = "DELETE FROM overrides WHERE stack = ?1",
    /* Each override as "<length of service>:<service>=<replicas or ->,<stopped>,<nonce>",
     * joined by ';': unambiguous, so equal texts are equal overrides. */
    [STMT_STACK_REVISIONS] =
        "SELECT s.name, s.generation, s.removed, (SELECT group_concat(length(o.service) || ':'"
        " || o.service || '=' || ifnull(o.replicas, '-') || ',' || o.stopped || ','"
        " || o.restart_nonce, ';') FROM (SELECT * FROM overrides WHERE stack = s.name"
        " ORDER BY service) AS o) FROM stacks AS s ORDER BY s.name",

    [STMT_CMD_INSERT] =
        "INSERT INTO commands (" CMD_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (command_id) DO NOTHING",
    [STMT_CMD_PRUNE] = "DELETE FROM commands WHERE seq <= (SELECT max(seq) FROM commands) - ?1",
    [STMT_CMD_GET] = "SELECT " CMD_COLUMNS " FROM commands WHERE command_id = ?1",
    [STMT_CMD_UPDATE] = "UPDATE commands SET status = ?2, error = ?3, updated_at = ?4"
                        " WHERE command_id = ?1",
    [STMT_CMD_LIST] = "SELECT " CMD_COLUMNS " FROM commands ORDER BY seq DESC LIMIT ?1",

    [STMT_OFFSET_GET] = "SELECT next_offset FROM offsets WHERE topic = ?1 AND \"partition\" = ?2",
    [STMT_OFFSET_PUT] =
        "INSERT INTO offsets (topic, \"partition\", next_offset, updated_at)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (topic, \"partition\") DO UPDATE SET"
        " next_offset = excluded.next_offset, updated_at = excluded.updated_at",

    [STMT_SWARM_GET] = "SELECT " SWARM_COLUMNS " FROM swarm WHERE id = 1",
    [STMT_SWARM_SET] =
        "INSERT INTO swarm (id, " SWARM_COLUMNS ") VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
        " ?9, ?10, ?11, ?12, 1) ON CONFLICT (id) DO UPDATE SET"
        " desired_role = excluded.desired_role, join_addrs = excluded.join_addrs,"
        " join_token = excluded.join_token, advertise_addr = excluded.advertise_addr,"
        " updated_at = excluded.updated_at, listen_addr = excluded.listen_addr,"
        " data_path_addr = excluded.data_path_addr,"
        " default_addr_pools = excluded.default_addr_pools,"
        " subnet_size = excluded.subnet_size, data_path_port = excluded.data_path_port,"
        " leave_force = excluded.leave_force, source = excluded.source,"
        " revision = swarm.revision + 1",

    [STMT_APPLY_INSERT] = "INSERT INTO applies (stack, generation, started_at)"
                          " VALUES (?1, ?2, ?3) RETURNING id",
    [STMT_APPLY_PRUNE] = "DELETE FROM applies WHERE id <= ?1",
    [STMT_APPLY_FINISH] = "UPDATE applies SET finished_at = ?2, result = ?3, plan_json = ?4"
                          " WHERE id = ?1",
    [STMT_APPLY_LAST] = "SELECT " APPLY_COLUMNS " FROM applies WHERE stack = ?1"
                        " ORDER BY id DESC LIMIT 1",

    [STMT_EVENT_INSERT] = "INSERT INTO events (ts, level, stack, object, message)"
                          " VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    [STMT_EVENT_PRUNE] = "DELETE FROM events WHERE id <= ?1",
    [STMT_EVENT_LIST] = "SELECT " EVENT_COLUMNS " FROM events"
                        " WHERE id > ?1 AND (?2 IS NULL OR stack = ?2) ORDER BY id LIMIT ?3",
    [STMT_EVENT_TAIL] = "SELECT * FROM (SELECT " EVENT_COLUMNS " FROM events"
                        " WHERE ?1 IS NULL OR stack = ?1 ORDER BY id DESC LIMIT ?2)"
                        " ORDER BY id",

    [STMT_OUTBOX_INSERT] = "INSERT INTO outbox (topic, key, payload, created_at)"
                           " VALUES (?1, ?2, ?3, ?4) RETURNING id",
    [STMT_OUTBOX_OLDEST] = "SELECT id, length(payload) FROM outbox ORDER BY id LIMIT 1",
    [STMT_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ?1",
    [STMT_OUTBOX_PEEK] = "SELECT id, topic, key, payload, created_at FROM outbox"
                         " WHERE id > ?2 AND (?3 IS NULL OR topic = ?3) ORDER BY id LIMIT ?1",
    [STMT_OUTBOX_STATS] =
        "SELECT (SELECT value FROM counters WHERE name = 'outbox_rows'),"
        " (SELECT value FROM counters WHERE name = 'outbox_bytes'),"
        " (SELECT value FROM counters WHERE name = 'outbox_dropped')",
    [STMT_COUNTER_ADD] = "UPDATE counters SET value = value + ?2 WHERE name = ?1",

    [STMT_STATUS_SET] =
        "INSERT INTO stack_status (stack, state, reason, services_json, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (stack) DO UPDATE SET"
        " state = excluded.state, reason = excluded.reason,"
        " services_json = excluded.services_json, updated_at = excluded.updated_at",
    [STMT_STATUS_GET] = "SELECT stack, state, reason, services_json, updated_at"
                        " FROM stack_status WHERE stack = ?1",
    [STMT_STATUS_LIST] = "SELECT stack, state, reason, services_json, updated_at"
                         " FROM stack_status ORDER BY stack",
    [STMT_STATUS_DELETE] = "DELETE FROM stack_status WHERE stack = ?1",

    [STMT_TELEMETRY_PUT] = "INSERT INTO telemetry_latest (id, ts, payload) VALUES (1, ?1, ?2)"
                           " ON CONFLICT (id) DO UPDATE SET ts = excluded.ts,"
                           " payload = excluded.payload",
    [STMT_TELEMETRY_GET] = "SELECT ts, payload FROM telemetry_latest WHERE id = 1",

    [STMT_STATE_PUT] = "INSERT INTO agent_state (key, value, updated_at) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                       " updated_at = excluded.updated_at",
    [STMT_STATE_LIST] = "SELECT key, value, updated_at FROM agent_state"
                        " WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
    [STMT_STATE_DELETE] = "DELETE FROM agent_state WHERE key = ?1",

    [STMT_IDENTITY_GET] = "SELECT agent_id, key_file, cert_chain_pem, ca_bundle_pem, not_before,"
                          " not_after, enrolled_at, renewed_at, updated_at FROM identity"
                          " WHERE id = 1",
    [STMT_IDENTITY_PUT] =
        "INSERT INTO identity (id, agent_id, key_file, cert_chain_pem, ca_bundle_pem,"
        " not_before, not_after, enrolled_at, renewed_at, updated_at)"
        " VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO UPDATE SET"
        " agent_id = excluded.agent_id, key_file = excluded.key_file,"
        " cert_chain_pem = excluded.cert_chain_pem, ca_bundle_pem = excluded.ca_bundle_pem,"
        " not_before = excluded.not_before, not_after = excluded.not_after,"
        " enrolled_at = excluded.enrolled_at, renewed_at = excluded.renewed_at,"
        " updated_at = excluded.updated_at",
    [STMT_IDENTITY_DELETE] = "DELETE FROM identity WHERE id = 1",
};
/* clang-format on */
