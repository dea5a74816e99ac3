#include "core/opts.h"

#include <errno.h>
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
