/* compile: the manifest compiler's one public door. Compose text + variables + attached files
 * → model → policy check → Engine API specs with their hashes. Pure: no store, no driver, no
 * loop, no I/O of its own (files come through the caller's lookup). The intake calls it once
 * per manifest it accepts; the reconciler calls it when a stack's input changed.
 *
 *   struct compile_input in = {.stack = "web", .text = yaml, .len = n, ...};
 *   struct compile_result *res;
 *   struct compose_error err;
 *   if (compile_stack(&in, &res, &err) < 0) → err.text says where and why
 *   ... res->spec->objects ...
 *   compile_result_free(res);
 *
 * Errors name the file, the line and column, the path and the cause, as compose.h describes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "compose/compose.h"
#include "compose/policy.h"
#include "compose/spec.h"

/* Where the files a manifest names (configs'/secrets' `file:`, services' `env_file`) come from.
 * get() is called once per distinct name, as the manifest writes it; it fills *ret (the bytes
 * stay the caller's and must stay valid until compile_stack() returns) and returns 0,
 * -ENOENT when the source has no such file, or another negative errno with a reason in why. */
struct compile_files {
    int (*get)(void *ud, const char *name, struct spec_file *ret, char *why, size_t whylen);
    void *ud;
};

/* The usual source: an array of attached files, matched by the converter's rule (the name as
 * written, a leading "./" does not matter). ud is a struct compile_file_array. */
struct compile_file_array {
    const struct spec_file *files;
    size_t n;
};
int compile_files_from_array(void *ud, const char *name, struct spec_file *ret, char *why,
                             size_t whylen);
/* Whether an attached file named attached answers the manifest's reference ref (the rule
 * above). */
bool compile_file_matches(const char *ref, const char *attached);

struct compile_input {
    const char *stack;    /* the stack name: the namespace of every object */
    const char *filename; /* names the manifest in messages; NULL: "compose.yml" */
    const char *text;
    size_t len;
    const struct compose_var *vars; /* for ${VAR} interpolation; may be NULL */
    size_t n_vars;
    struct compile_files files; /* get NULL: the manifest may name no file */
    /* A source with a directory on this node (the CLI) resolves relative bind sources
     * ("./data:/data", a long-syntax `type: bind` with `source: data`) against base_dir (the
     * compose file's directory, absolute) and "~/x" against home_dir (the variable HOME wins
     * when the manifest's variables have one), as `docker stack deploy` does; the policy sees
     * the absolute path and the result's notes say what was resolved. NULL (remote sources):
     * such sources are refused, saying why. See struct compose_options. */
    const char *base_dir;
    const char *home_dir;
    const char *agent_id;              /* io.axion.agent; NULL leaves the label out */
    const struct policy_rules *policy; /* NULL: no policy check */
    /* Only check: the specs come without their hashes (spec_input.no_hashes). */
    bool no_hashes;
    /* The caller keeps the specs, not the compose model: the result's project is freed before
     * compile_stack() returns (NULL). The specs own all they hold; a kept stack then costs
     * about half (the model's arena is most of the rest). */
    bool spec_only;
};

struct compile_result {
    struct compose_project *project; /* NULL with compile_input.spec_only */
    struct spec_stack *spec;         /* objects in creation order, each with its hash; warnings */
    /* The names the manifest used to ask for files (as written), sorted, no repeats. */
    char **files_used;
    size_t n_files_used;
    /* What was resolved with base_dir/home_dir, one line each, for the caller to show:
     * "m.yml:3:9: services.prom.volumes[0]: ./prometheus resolved against /home/u/p:
     * /home/u/p/prometheus". */
    char **notes;
    size_t n_notes;
};

/* Parses, checks the policy and converts. 0 with *ret; or a negative errno with err set
 * (-EINVAL bad manifest, -EPERM the policy, -E2BIG a limit, -ENOENT a named file the source
 * does not have, -ENOMEM). */
int compile_stack(const struct compile_input *in, struct compile_result **ret,
                  struct compose_error *err);

struct compile_result *compile_result_free(struct compile_result *r);
