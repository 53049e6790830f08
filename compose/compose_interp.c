#include "compose/compose_interp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

bool compose_interp_needed(const char *s, size_t len)
{
    return memchr(s, '$', len) != NULL;
}

enum op { OP_NONE, OP_SOFT_DEFAULT, OP_HARD_DEFAULT, OP_REQUIRED_NONEMPTY, OP_REQUIRED };

/* Reads an operator at s[*i]; advances past it. */
static enum op read_op(const char *s, size_t len, size_t *i)
{
    size_t j = *i;
    bool colon = false;
    if (j < len && s[j] == ':') {
        colon = true;
        j++;
    }
    if (j < len && (s[j] == '-' || s[j] == '?')) {
        enum op op = s[j] == '-' ? (colon ? OP_SOFT_DEFAULT : OP_HARD_DEFAULT)
                                 : (colon ? OP_REQUIRED_NONEMPTY : OP_REQUIRED);
        *i = j + 1;
        return op;
    }
    return OP_NONE;
}

static int invalid(const char *s, size_t len, char *msg, size_t msglen)
{
    snprintf(msg, msglen,
             "invalid interpolation format in \"%.*s\": a $ starts $VAR, ${VAR}, "
             "${VAR:-default}, ${VAR:?message} or $$ (write $$ for a literal $)",
             (int)(len > 200 ? 200 : len), s);
    return -EINVAL;
}

int compose_interp_expand(const char *s, size_t len, const struct compose_vars *vars, size_t max,
                          char **ret, size_t *ret_len, char *msg, size_t msglen)
{
    struct buf out = BUF_INIT(max);
    int r = 0;
    size_t i = 0;
    while (i < len && r == 0) {
        const char *dollar = memchr(s + i, '$', len - i);
        if (!dollar) {
            r = buf_append(&out, s + i, len - i);
            break;
        }
        size_t at = (size_t)(dollar - s);
        r = buf_append(&out, s + i, at - i);
        if (r < 0)
            break;
        i = at + 1;
        if (i < len && s[i] == '$') {
            r = buf_putc(&out, '$');
            i++;
            continue;
        }
        bool braced = i < len && s[i] == '{';
        if (braced)
            i++;
        if (i >= len || !name_start(s[i])) {
            r = invalid(s, len, msg, msglen);
            break;
        }
        size_t name_at = i;
        while (i < len && name_char(s[i]))
            i++;
        size_t name_len = i - name_at;
        enum op op = read_op(s, len, &i);
        size_t word_at = i;
        if (op != OP_NONE)
            while (i < len && s[i] != '}')
                i++;
        size_t word_len = i - word_at;
        if (braced) {
            if (i >= len || s[i] != '}') {
                r = invalid(s, len, msg, msglen);
                break;
            }
            i++;
        }
        if (name_len > COMPOSE_MAX_VAR_NAME) {
            snprintf(msg, msglen, "variable name longer than %d characters", COMPOSE_MAX_VAR_NAME);
            r = -EINVAL;
            break;
        }
        char name[COMPOSE_MAX_VAR_NAME + 1];
        memcpy(name, s + name_at, name_len);
        name[name_len] = '\0';
        const char *value = compose_vars_get(vars, name);
        bool empty = !value || !*value;
        switch (op) {
        case OP_NONE:
            r = buf_puts(&out, value ? value : "");
            break;
        case OP_SOFT_DEFAULT:
            r = empty ? buf_append(&out, s + word_at, word_len) : buf_puts(&out, value);
            break;
        case OP_HARD_DEFAULT:
            r = !value ? buf_append(&out, s + word_at, word_len) : buf_puts(&out, value);
            break;
        case OP_REQUIRED_NONEMPTY:
        case OP_REQUIRED:
            if (op == OP_REQUIRED_NONEMPTY ? empty : !value) {
                snprintf(msg, msglen, "required variable %s is missing a value: %.*s", name,
                         (int)(word_len > 200 ? 200 : word_len), s + word_at);
                r = -EINVAL;
            } else {
                r = buf_puts(&out, value);
            }
            break;
        }
    }
    if (r == -EMSGSIZE) {
        snprintf(msg, msglen, "interpolation makes the value longer than %zu bytes", max);
        r = -E2BIG;
    }
    if (r < 0) {
        buf_release(&out);
        return r;
    }
    size_t n;
    char *res = buf_detach(&out, &n);
    if (!res)
        return -ENOMEM;
    *ret = res;
    if (ret_len)
        *ret_len = n;
    return 0;
}
