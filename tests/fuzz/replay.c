/* Replays a fuzz corpus without libFuzzer: every regular file under the directories given on
 * the command line goes through LLVMFuzzerTestOneInput once. Sanitizers do the judging. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *n = realloc(data, cap);
            if (!n) {
                free(data);
                fclose(f);
                return -1;
            }
            data = n;
        }
        size_t r = fread(data + len, 1, cap - len, f);
        if (r == 0)
            break;
        len += r;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            r |= replay_dir(path, count);
        else if (S_ISREG(st.st_mode)) {
            r |= replay_file(path);
            (*count)++;
        }
    }
    closedir(d);
    return r;
}

int main(int argc, char **argv)
{
    int count = 0, r = 0;
    for (int i = 1; i < argc; i++)
        r |= replay_dir(argv[i], &count);
    printf("replayed %d inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    return r ? 1 : 0;
}
