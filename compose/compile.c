#include "compose/compile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

bool compile_file_matches(const char *ref, const char *attached)
{
    const struct spec_file f = {.name = attached};
    return spec_file_find(&f, 1, ref) != NULL;
}

int compile_files_from_array(void *ud, const char *name, struct spec_file *ret, char *why,
                             size_t whylen)
{
    const struct compile_file_array *a = ud;
    const struct spec_file *f = spec_file_find(a->files, a->n, name);
    if (!f)
        return -ENOENT;
    *ret = *f;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names the project asks files for, sorted, without repeats (borrowed from the project). */
static int referenced_files(const struct compose_project *p, const char ***ret, size_t *ret_n)
{
    size_t cap = p->n_configs + p->n_secrets, n = 0;
    for (size_t i = 0; i < p->n_services; i++)
        cap += p->services[i].env_file.n;
    const char **v = calloc(cap + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_configs; i++)
        if (p->configs[i].file && !p->configs[i].external)
            v[n++] = p->configs[i].file;
    for (size_t i = 0; i < p->n_secrets; i++)
        if (p->secrets[i].file && !p->secrets[i].external)
            v[n++] = p->secrets[i].file;
    for (size_t i = 0; i < p->n_services; i++)
        for (size_t j = 0; j < p->services[i].env_file.n; j++)
            v[n++] = p->services[i].env_file.v[j];
    qsort(v, n, sizeof(*v), cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || !streq(v[out - 1], v[i]))
            v[out++] = v[i];
    *ret = v;
    *ret_n = out;
    return 0;
}

/* The project's notes as the result's own strings. */
static int copy_notes(struct compile_result *res)
{
    const struct compose_strv *notes = &res->project->notes;
    if (!notes->n)
        return 0;
    res->notes = calloc(notes->n, sizeof(*res->notes));
    if (!res->notes)
        return -ENOMEM;
    for (size_t i = 0; i < notes->n; i++)
        if (!(res->notes[res->n_notes++] = strdup(notes->v[i])))
            return -ENOMEM;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

struct compile_result *compile_result_free(struct compile_result *r)
{
    if (!r)
        return NULL;
    compose_project_free(r->project);
    spec_stack_free(r->spec);
    free_strings(r->files_used, r->n_files_used);
    free_strings(r->notes, r->n_notes);
    free(r);
    return NULL;
}

int compile_stack(const struct compile_input *in, struct compile_result **ret,
                  struct compose_error *err)
{
    struct compile_result *res = calloc(1, sizeof(*res));
    if (!res)
        return -ENOMEM;
    struct compose_vars vars = {in->vars, in->n_vars};
    struct compose_options opts = {.base_dir = in->base_dir, .home_dir = in->home_dir};
    int r = compose_parse_opts(in->text, in->len, in->filename, &vars, &opts, &res->project, err);
    if (r == 0)
        r = copy_notes(res);
    if (r == 0 && in->policy)
        r = policy_check(res->project, in->policy, err);

    const char **refs = NULL;
    size_t n_refs = 0;
    struct spec_file *files = NULL;
    size_t n_files = 0;
    if (r == 0)
        r = referenced_files(res->project, &refs, &n_refs);
    if (r == 0 && n_refs) {
        files = calloc(n_refs, sizeof(*files));
        res->files_used = calloc(n_refs, sizeof(*res->files_used));
        if (!files || !res->files_used)
            r = -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < n_refs; i++) {
        char why[512] = "";
        struct spec_file f = {0};
        int g =
            in->files.get ? in->files.get(in->files.ud, refs[i], &f, why, sizeof(why)) : -ENOENT;
        if (g == -ENOENT)
            continue; /* the converter names the place that needs it */
        if (g < 0) {
            r = compose_error_set(err, in->filename, 0, 0, NULL, "file %s: %s", refs[i],
                                  *why ? why : strerror(-g));
            if (g == -ENOMEM)
                r = g;
            break;
        }
        f.name = refs[i];
        files[n_files++] = f;
        if (!(res->files_used[res->n_files_used++] = strdup(refs[i])))
            r = -ENOMEM;
    }
    struct spec_input si = {.stack = in->stack,
                            .agent_id = in->agent_id,
                            .files = files,
                            .n_files = n_files,
                            .no_hashes = in->no_hashes};
    if (r == 0)
        r = spec_convert(res->project, &si, &res->spec, err);
    free(files);
    free(refs);
    if (r < 0) {
        compile_result_free(res);
        return r;
    }
    if (in->spec_only)
        res->project = compose_project_free(res->project);
    *ret = res;
    return 0;
}
