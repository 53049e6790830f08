/* Fuzzes the TOML reader and the config built on it: the bytes are parsed as a TOML document,
 * then loaded as the agent's config file (no environment, no flags). A config that loads is
 * printed, and what `config check` prints must load again: the printer must only write valid
 * TOML that passes the same checks. Everything is freed; sanitizers judge the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/config.h"
#include "lib/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *const no_env[] = {NULL};
    char err[1024];
    struct toml_table doc;

    if (toml_parse((const char *)data, size, "fuzz.toml", NULL, &doc, err, sizeof(err)) == 0)
        toml_table_release(&doc);

    struct config_source src = {
        .path = "fuzz.toml",
        .env = no_env,
        .data = (const char *)data,
        .len = size,
    };
    struct config c;
    if (config_load(&src, &c, err, sizeof(err)) < 0)
        return 0;

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        config_print(&c, f);
        fclose(f);
        struct config again;
        struct config_source src2 = {
            .path = "printed.toml", .env = no_env, .data = text, .len = len};
        if (config_load(&src2, &again, err, sizeof(err)) < 0) {
            fprintf(stderr, "config check output does not load: %s\n%s", err, text);
            abort();
        }
        config_free(&again);
        free(text);
    }
    config_free(&c);
    return 0;
}
