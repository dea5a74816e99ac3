#include "core/opts.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int opts_next(const char **p, char *buf, size_t len, struct err *e)
{
    const char *s = *p;
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (;;) {
        if (*s == ',' && s[1] == ',') {
            s++;
        } else if (*s == ',' || !*s) {
            break;
        }
        if (n + 1 >= len) {
            return err_set(e, -ENAMETOOLONG, "option item too long: '%.40s...'", *p);
        }
        buf[n++] = *s++;
    }
    buf[n] = 0;
    *p = *s ? s + 1 : s;
    return 1;
}

void opts_split(char *item, char **val)
{
    char *eq = strchr(item, '=');
    *val = NULL;
    if (eq) {
        *eq = 0;
        *val = eq + 1;
    }
}

int opts_bool(const char *v)
{
    static const char *const on[] = { "on", "yes", "true", "1" };
    static const char *const off[] = { "off", "no", "false", "0" };
    if (!v)
        return -1;
    for (unsigned i = 0; i < 4; i++) {
        if (!strcmp(v, on[i]))
            return 1;
        if (!strcmp(v, off[i]))
            return 0;
    }
    return -1;
}

int opts_size(const char *s, unsigned bare_shift, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -ERANGE;
    unsigned shift = bare_shift;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -EINVAL;
        }
        end++;
        if (*end == 'i')
            end++;
        if (*end == 'B')
            end++;
        if (*end)
            return -EINVAL;
    }
    if (shift && v > (ULLONG_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}
