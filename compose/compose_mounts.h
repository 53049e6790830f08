/* compose_mounts: a service's `volumes`, in the short syntax ([source:]target[:options], as
 * docker's volumespec.Parse reads it) and the long one (type, source, target, read_only,
 * consistency, bind, volume, tmpfs), with the checks docker's convert makes on a mount.
 *
 * A bind mount's source is made absolute the way `docker stack deploy` does it, when the caller
 * says where the manifest lives (struct compose_options): "~" at the start becomes HOME (the
 * variable, else home_dir), and a source that is still not absolute is joined to base_dir and
 * cleaned ("./data" → "/home/u/p/data"); each resolution is a line in the project's notes.
 * Without a directory such a source is refused, saying why. Windows paths ("C:\data") are kept
 * by docker and refused by a Linux Engine; they are refused here. */
#pragma once

#include "compose/compose_keys.h"

/* A KEY_READ reader: the list at v into the struct compose_service at field. */
compose_key_read_fn compose_mounts_read;
