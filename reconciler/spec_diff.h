/* Which fields of a live service spec (GET /services/{id} → .Spec) differ from the desired one
 * (the spec_convert() body): the paths of drift, like "TaskTemplate.ContainerSpec.Env" or
 * "Mode.Replicated.Replicas".
 *
 * The comparison ignores what the Engine fills in by itself: fields absent from the desired
 * spec whose live value is zero or Docker's default (StopGracePeriod 10s, RestartPolicy any/5s,
 * UpdateConfig parallelism 1/pause/5s/stop-first, one replica, vip, tcp, ingress,
 * Isolation default, Runtime container, ...), SecretID and ConfigID, a digest the Engine
 * pinned to the image, and a network target the Engine turned into an ID (unless a resolver
 * maps IDs back to names). Numbers compare by value. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct spec_diff_opts {
    /* Maps a live network ID to its name (NULL when unknown). Without it, a live target that
     * looks like an ID is not compared. */
    const char *(*network_name)(void *ud, const char *id);
    void *ud;
};

/* Returns 0 with *ret_paths (sorted, malloc'ed, NULL when equal) and *ret_n, or -ENOMEM.
 * opts may be NULL. */
int spec_diff_fields(const json_t *desired, const json_t *live, const struct spec_diff_opts *opts,
                     char ***ret_paths, size_t *ret_n);

void spec_diff_free(char **paths, size_t n);
