/* encode and decode: the wire protocol's envelopes by hand (docs/PROTOCOL.md).
 *
 *   axion-agent encode deploy -f compose.yml -n web --generation 3 > cmd.bin
 *   kcat -P -b host:9092 -t runner.commands.node-1 < cmd.bin
 *   axion-agent decode < cmd.bin
 *
 * encode writes one Command (deploy.proto) to stdout, checked with the same limits the agent
 * applies when it receives one (sources/envelope.h); decode prints a Command, a StatusEvent or
 * a TelemetryBatch as JSON. Neither needs a config or a store. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "axion/agent/v1/deploy.pb-c.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "sources/envelope.h"
#include "telemetry.pb-c.h"

/* ---- reading -------------------------------------------------------------------------------- */

/* Reads all of f, at most max bytes: -EMSGSIZE beyond. */
static int read_all(FILE *f, size_t max, char **ret, size_t *ret_len)
{
    struct buf b = BUF_INIT(max);
    char chunk[65536];
    size_t n;
    int r = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((r = buf_append(&b, chunk, n)) < 0)
            return r;
    if (ferror(f)) {
        buf_release(&b);
        return -EIO;
    }
    *ret = buf_detach(&b, ret_len);
    return *ret ? 0 : -ENOMEM;
}

/* A regular file or a pipe (`--attach k=<(cmd)`); a directory, a device or a socket is refused
 * (-EISDIR, -ENODEV). Opened without blocking: a named FIFO nobody writes to reads as empty
 * instead of hanging. */
static int read_path(const char *path, size_t max, char **ret, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode)) {
        close(fd);
        return S_ISDIR(sb.st_mode) ? -EISDIR : -ENODEV;
    }
    if (S_ISFIFO(sb.st_mode))
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int r = -errno;
        close(fd);
        return r;
    }
    int r = read_all(f, max, ret, ret_len);
    fclose(f);
    return r;
}

static const char *read_error(int r, size_t max, char *buf, size_t len)
{
    if (r == -EMSGSIZE)
        snprintf(buf, len, "larger than %zu bytes", max);
    else if (r == -EISDIR)
        snprintf(buf, len, "a directory, not a file");
    else if (r == -ENODEV)
        snprintf(buf, len, "not a regular file or a pipe");
    else
        snprintf(buf, len, "%s", strerror(-r));
    return buf;
}

/* ---- encode -----------------------------------------------------------------------------------
 */

struct encode {
    const char *kind; /* deploy, remove, scale, stop, start, restart, reconcile-now */
    const char *file, *stack, *service, *command_id, *agent_id, *filename;
    uint64_t generation;
    long long replicas;
    Axion__Agent__V1__Variable **vars;
    size_t n_vars;
    Axion__Agent__V1__File **files;
    size_t n_files;
    char *compose;
};

static void encode_release(struct encode *e)
{
    for (size_t i = 0; i < e->n_vars; i++)
        free(e->vars[i]);
    for (size_t i = 0; i < e->n_files; i++) {
        free(e->files[i]->content.data);
        free(e->files[i]);
    }
    free(e->vars);
    free(e->files);
    free(e->compose);
}

static int add_var(struct encode *e, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "axion-agent encode: --var: expected NAME=VALUE, got \"%s\"\n", arg);
        return -EINVAL;
    }
    Axion__Agent__V1__Variable *v = malloc(sizeof(*v));
    void *n = realloc(e->vars, (e->n_vars + 1) * sizeof(*e->vars));
    if (!v || !n) {
        free(v);
        if (n)
            e->vars = n;
        return -ENOMEM;
    }
    e->vars = n;
    axion__agent__v1__variable__init(v);
    *eq = '\0'; /* argv is ours to cut */
    v->name = arg;
    v->value = eq + 1;
    e->vars[e->n_vars++] = v;
    return 0;
}

static int add_attach(struct encode *e, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        fprintf(stderr, "axion-agent encode: --attach: expected NAME=PATH, got \"%s\"\n", arg);
        return -EINVAL;
    }
    char *content = NULL, why[128];
    size_t len = 0;
    int r = read_path(eq + 1, ENVELOPE_FILES_BYTES_MAX, &content, &len);
    if (r < 0) {
        fprintf(stderr, "axion-agent encode: --attach %s: %s\n", eq + 1,
                read_error(r, ENVELOPE_FILES_BYTES_MAX, why, sizeof(why)));
        return r;
    }
    Axion__Agent__V1__File *f = malloc(sizeof(*f));
    void *n = realloc(e->files, (e->n_files + 1) * sizeof(*e->files));
    if (!f || !n) {
        free(f);
        free(content);
        if (n)
            e->files = n;
        return -ENOMEM;
    }
    e->files = n;
    axion__agent__v1__file__init(f);
    *eq = '\0';
    f->name = arg;
    f->content = (ProtobufCBinaryData){len, (uint8_t *)content};
    e->files[e->n_files++] = f;
    return 0;
}

/* A random UUID (version 4): the command id when none is given. */
static int random_id(char *out, size_t len)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -errno;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

static void encode_usage(FILE *f)
{
    fprintf(f, "Usage: axion-agent encode KIND [OPTIONS] > FILE\n\n"
               "Writes one Command envelope (proto/axion/agent/v1/deploy.proto) to stdout, for\n"
               "a Kafka command topic (kcat -P -t runner.commands.AGENT_ID < FILE) or a test.\n"
               "It is checked with the limits the agent applies; the command id goes to stderr.\n\n"
               "  deploy -f FILE -n STACK --generation G [--var K=V ...] [--attach NAME=PATH ...]\n"
               "         [--filename NAME]     a Compose manifest as generation G of STACK; files\n"
               "                               the manifest names must be given with --attach\n"
               "  remove -n STACK [--generation G]\n"
               "  scale -n STACK --service S --replicas N\n"
               "  stop | start | restart -n STACK [--service S]\n"
               "  reconcile-now [-n STACK]\n\n"
               "Every kind takes:\n"
               "  --command-id ID   the dedupe key (default: a random UUID)\n"
               "  --agent-id ID     the agent it is meant for (default: any)\n");
}

static Axion__Agent__V1__Command__BodyCase body_of(const char *kind)
{
    static const struct {
        const char *name;
        Axion__Agent__V1__Command__BodyCase body;
    } kinds[] = {
        {"deploy", AXION__AGENT__V1__COMMAND__BODY_DEPLOY},
        {"remove", AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK},
        {"scale", AXION__AGENT__V1__COMMAND__BODY_SCALE},
        {"stop", AXION__AGENT__V1__COMMAND__BODY_STOP},
        {"start", AXION__AGENT__V1__COMMAND__BODY_START},
        {"restart", AXION__AGENT__V1__COMMAND__BODY_RESTART},
        {"reconcile-now", AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW},
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        if (streq(kinds[i].name, kind))
            return kinds[i].body;
    return AXION__AGENT__V1__COMMAND__BODY__NOT_SET;
}

/* Builds the Command of e, checks it as the agent would, writes it. */
static int encode_write(struct encode *e, Axion__Agent__V1__Command__BodyCase body)
{
    char id[64];
    if (!e->command_id) {
        if (random_id(id, sizeof(id)) < 0) {
            fprintf(stderr, "axion-agent encode: no random bytes for a command id: %m\n");
            return 1;
        }
        e->command_id = id;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    Axion__Agent__V1__Command c = AXION__AGENT__V1__COMMAND__INIT;
    c.command_id = (char *)e->command_id;
    c.issued_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    c.agent_id = (char *)(e->agent_id ? e->agent_id : "");
    c.body_case = body;
    const char *stack = e->stack ? e->stack : "";
    const char *service = e->service ? e->service : "";
    Axion__Agent__V1__Deploy d = AXION__AGENT__V1__DEPLOY__INIT;
    Axion__Agent__V1__RemoveStack rm = AXION__AGENT__V1__REMOVE_STACK__INIT;
    Axion__Agent__V1__Scale sc = AXION__AGENT__V1__SCALE__INIT;
    Axion__Agent__V1__Stop stop = AXION__AGENT__V1__STOP__INIT;
    Axion__Agent__V1__Start start = AXION__AGENT__V1__START__INIT;
    Axion__Agent__V1__Restart restart = AXION__AGENT__V1__RESTART__INIT;
    Axion__Agent__V1__ReconcileNow now_ = AXION__AGENT__V1__RECONCILE_NOW__INIT;
    switch (body) {
    case AXION__AGENT__V1__COMMAND__BODY_DEPLOY:
        d.stack = (char *)stack;
        d.generation = e->generation;
        d.compose = e->compose;
        d.n_files = e->n_files;
        d.files = e->files;
        d.n_variables = e->n_vars;
        d.variables = e->vars;
        d.filename = (char *)(e->filename ? e->filename : "");
        c.deploy = &d;
        break;
    case AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK:
        rm.stack = (char *)stack;
        rm.generation = e->generation;
        c.remove_stack = &rm;
        break;
    case AXION__AGENT__V1__COMMAND__BODY_SCALE:
        sc.stack = (char *)stack;
        sc.service = (char *)service;
        sc.replicas = (uint32_t)e->replicas;
        c.scale = &sc;
        break;
    case AXION__AGENT__V1__COMMAND__BODY_STOP:
        stop.stack = (char *)stack;
        stop.service = (char *)service;
        c.stop = &stop;
        break;
    case AXION__AGENT__V1__COMMAND__BODY_START:
        start.stack = (char *)stack;
        start.service = (char *)service;
        c.start = &start;
        break;
    case AXION__AGENT__V1__COMMAND__BODY_RESTART:
        restart.stack = (char *)stack;
        restart.service = (char *)service;
        c.restart = &restart;
        break;
    default:
        now_.stack = (char *)stack;
        c.reconcile_now = &now_;
        break;
    }
    _cleanup_free_ uint8_t *out = NULL;
    size_t len = 0;
    int r = envelope_pack(&c.base, &out, &len);
    if (r < 0) {
        fprintf(stderr, "axion-agent encode: %s\n",
                r == -EMSGSIZE ? "the command is larger than the 16 MiB a command may have"
                               : strerror(-r));
        return 1;
    }
    /* The agent's own checks, so that what is written is what an agent takes. */
    struct envelope env;
    if (envelope_decode(out, len, ENVELOPE_KAFKA, NULL, &env) < 0) {
        fprintf(stderr, "axion-agent encode: out of memory\n");
        return 1;
    }
    bool refused = env.error_code != 0;
    if (refused)
        fprintf(stderr, "axion-agent encode: %s\n", env.error);
    envelope_release(&env);
    if (refused)
        return 1;
    if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
        fprintf(stderr, "axion-agent encode: writing to stdout: %m\n");
        return 1;
    }
    fprintf(stderr, "command id: %s\n", e->command_id);
    return 0;
}

int cli_encode(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"name", required_argument, NULL, 'n'},
        {"generation", required_argument, NULL, 'g'},
        {"var", required_argument, NULL, 'v'},
        {"attach", required_argument, NULL, 'a'},
        {"filename", required_argument, NULL, 'F'},
        {"service", required_argument, NULL, 's'},
        {"replicas", required_argument, NULL, 'r'},
        {"command-id", required_argument, NULL, 'i'},
        {"agent-id", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct encode e = {.replicas = -1};
    int c, rc = 1;
    if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
        encode_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    e.kind = argv[1];
    Axion__Agent__V1__Command__BodyCase body = body_of(e.kind);
    if (body == AXION__AGENT__V1__COMMAND__BODY__NOT_SET) {
        fprintf(stderr,
                "axion-agent encode: unknown kind '%s' (deploy, remove, scale, stop, start, "
                "restart, reconcile-now)\n",
                e.kind);
        return 1;
    }
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "f:n:g:v:a:s:r:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'f':
            e.file = optarg;
            break;
        case 'n':
            e.stack = optarg;
            break;
        case 'g':
            errno = 0;
            e.generation = strtoull(optarg, &end, 10);
            if (errno || !*optarg || *end || *optarg == '-' || e.generation > INT64_MAX) {
                fprintf(stderr,
                        "axion-agent encode: --generation: expected a number from 1 to %" PRId64
                        ", got \"%s\"\n",
                        INT64_MAX, optarg);
                goto out;
            }
            break;
        case 'v':
            if (add_var(&e, optarg) < 0)
                goto out;
            break;
        case 'a':
            if (add_attach(&e, optarg) < 0)
                goto out;
            break;
        case 'F':
            e.filename = optarg;
            break;
        case 's':
            e.service = optarg;
            break;
        case 'r':
            errno = 0;
            e.replicas = strtoll(optarg, &end, 10);
            if (errno || !*optarg || *end || e.replicas < 0 || e.replicas > ENVELOPE_REPLICAS_MAX) {
                fprintf(stderr,
                        "axion-agent encode: --replicas: expected a number from 0 to %u, got "
                        "\"%s\"\n",
                        ENVELOPE_REPLICAS_MAX, optarg);
                goto out;
            }
            break;
        case 'i':
            e.command_id = optarg;
            break;
        case 'A':
            e.agent_id = optarg;
            break;
        case 'h':
            encode_usage(stdout);
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axion-agent encode: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    const char *missing = NULL;
    if (body == AXION__AGENT__V1__COMMAND__BODY_DEPLOY && (!e.file || !e.generation))
        missing = "deploy needs -f FILE, -n STACK and --generation G";
    else if (body == AXION__AGENT__V1__COMMAND__BODY_SCALE && (!e.service || e.replicas < 0))
        missing = "scale needs -n STACK, --service S and --replicas N";
    else if (body != AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW && !e.stack)
        missing = "-n STACK is missing";
    else if (body != AXION__AGENT__V1__COMMAND__BODY_DEPLOY &&
             (e.file || e.n_vars || e.n_files || e.filename))
        missing = "-f, --var, --attach and --filename are for deploy only";
    else if (e.generation && body != AXION__AGENT__V1__COMMAND__BODY_DEPLOY &&
             body != AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK)
        missing = "--generation is for deploy and remove only";
    else if (e.replicas >= 0 && body != AXION__AGENT__V1__COMMAND__BODY_SCALE)
        missing = "--replicas is for scale only";
    else if (e.service && (body == AXION__AGENT__V1__COMMAND__BODY_DEPLOY ||
                           body == AXION__AGENT__V1__COMMAND__BODY_REMOVE_STACK ||
                           body == AXION__AGENT__V1__COMMAND__BODY_RECONCILE_NOW))
        missing = "--service is for scale, stop, start and restart only";
    if (missing) {
        fprintf(stderr, "axion-agent encode %s: %s (see --help)\n", e.kind, missing);
        goto out;
    }
    if (body == AXION__AGENT__V1__COMMAND__BODY_DEPLOY) {
        size_t len = 0;
        char why[128];
        int r = read_path(e.file, ENVELOPE_COMPOSE_MAX, &e.compose, &len);
        if (r < 0) {
            fprintf(stderr, "axion-agent encode: %s: %s\n", e.file,
                    read_error(r, ENVELOPE_COMPOSE_MAX, why, sizeof(why)));
            goto out;
        }
        if (len == 0) {
            fprintf(stderr, "axion-agent encode: %s: empty (a manifest is needed)\n", e.file);
            goto out;
        }
        if (strlen(e.compose) != len) {
            fprintf(stderr, "axion-agent encode: %s: holds a NUL byte (a manifest is text)\n",
                    e.file);
            goto out;
        }
        if (!e.filename) {
            const char *slash = strrchr(e.file, '/');
            e.filename = slash ? slash + 1 : e.file;
        }
    }
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr, "axion-agent encode: stdout is a terminal; redirect it to a file or a "
                        "pipe (the envelope is binary)\n");
        goto out;
    }
    rc = encode_write(&e, body);
out:
    encode_release(&e);
    return rc;
}

/* ---- decode: any message as JSON, by its descriptor ------------------------------------------ */

static json_t *message_json(const ProtobufCMessage *m);

/* decode --show-secrets: print what may be a secret as it is. */
static bool show_secrets;

/* Fields that may hold a secret: a variable's value, an attached file's content (a secret's
 * file:), a swarm join token. Shown as their size unless --show-secrets. */
static bool is_secret(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    return (d == &axion__agent__v1__variable__descriptor && streq(f->name, "value")) ||
           (d == &axion__agent__v1__file__descriptor && streq(f->name, "content")) ||
           (d == &axion__agent__v1__swarm_join__descriptor && streq(f->name, "join_token"));
}

static json_t *redacted_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    size_t n = f->type == PROTOBUF_C_TYPE_BYTES ? ((const ProtobufCBinaryData *)p)->len
                                                : strlen(*(char *const *)p);
    char s[96];
    snprintf(s, sizeof(s), "<redacted: %zu bytes; --show-secrets shows it>", n);
    return json_string(s);
}

/* Bytes as a JSON string when they are UTF-8 text without NUL, else {"base64": "..."}. */
static json_t *bytes_json(const uint8_t *data, size_t len)
{
    if (!memchr(data, '\0', len)) {
        json_t *s = json_stringn((const char *)(len ? data : (const uint8_t *)""), len);
        if (s)
            return s;
    }
    size_t out_len = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(out_len);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    json_t *o = json_pack("{s:s}", "base64", out);
    free(out);
    return o;
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        char s[32];
        snprintf(s, sizeof(s), "%" PRIu64, v);
        return json_string(s);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        json_t *j = json_string(s ? s : "");
        return j ? j : bytes_json((const uint8_t *)s, strlen(s));
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return bytes_json(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return message_json(*(ProtobufCMessage *const *)p);
    }
    return json_null();
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* Whether a singular proto3 field holds its default (left out, as proto3's JSON does). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, value_size(f)) == 0;
    }
    }
}

static json_t *message_json(const ProtobufCMessage *m)
{
    if (!m)
        return json_null();
    json_t *o = json_object();
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        const void *p = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (!n)
                continue;
            v = json_array();
            const char *arr = *(char *const *)p;
            for (size_t k = 0; v && k < n; k++)
                json_array_append_new(v, value_json(f, arr + k * value_size(f)));
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            v = value_json(f, p);
        } else {
            if (is_default(f, p))
                continue;
            v = !show_secrets && is_secret(d, f) ? redacted_json(f, p) : value_json(f, p);
        }
        json_object_set_new(o, f->name, v ? v : json_null());
    }
    if (o && m->n_unknown_fields) {
        json_t *u = json_array();
        for (unsigned i = 0; u && i < m->n_unknown_fields; i++)
            json_array_append_new(u, json_integer(m->unknown_fields[i].tag));
        json_object_set_new(o, "unknown_fields", u ? u : json_null());
    }
    return o;
}

int cli_decode(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"show-secrets", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    static const struct {
        const char *name;
        const ProtobufCMessageDescriptor *d;
    } types[] = {
        {"command", &axion__agent__v1__command__descriptor},
        {"status", &axion__agent__v1__status_event__descriptor},
        {"telemetry", &axion__agent__v1__telemetry_batch__descriptor},
    };
    const ProtobufCMessageDescriptor *d = types[0].d;
    int c;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            d = NULL;
            for (size_t i = 0; i < ARRAY_SIZE(types); i++)
                if (streq(types[i].name, optarg))
                    d = types[i].d;
            if (!d) {
                fprintf(stderr,
                        "axion-agent decode: --type: expected command, status or telemetry, "
                        "got \"%s\"\n",
                        optarg);
                return 1;
            }
            break;
        case 'S':
            show_secrets = true;
            break;
        case 'h':
            printf("Usage: axion-agent decode [--type command|status|telemetry] [--show-secrets]"
                   " < FILE\n\n"
                   "Prints one protobuf message from stdin as JSON: a Command envelope (the\n"
                   "value of a {prefix}.commands.AGENT_ID record, the default), a StatusEvent\n"
                   "(a {prefix}.status record) or a TelemetryBatch. Field names are the\n"
                   "proto's, enums by name, fields at their default left out; bytes that are\n"
                   "not UTF-8 text are given as {\"base64\": \"...\"}. What may be a secret\n"
                   "(variable values, attached files' contents, a swarm join token) is shown\n"
                   "as its size unless --show-secrets is given. Exit 1 when the input does not\n"
                   "decode.\n");
            return 0;
        default:
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "axion-agent decode: unexpected argument '%s' (the message comes on "
                "stdin)\n",
                argv[optind]);
        return 1;
    }
    _cleanup_free_ char *in = NULL;
    size_t len = 0;
    char why[128];
    int r = read_all(stdin, ENVELOPE_MAX, &in, &len);
    if (r < 0) {
        fprintf(stderr, "axion-agent decode: stdin: %s\n",
                read_error(r, ENVELOPE_MAX, why, sizeof(why)));
        return 1;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)in);
    if (!m) {
        fprintf(stderr, "axion-agent decode: %zu bytes on stdin do not decode as %s\n", len,
                d->name);
        return 1;
    }
    json_t *j = message_json(m);
    protobuf_c_message_free_unpacked(m, NULL);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s) {
        fprintf(stderr, "axion-agent decode: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}
