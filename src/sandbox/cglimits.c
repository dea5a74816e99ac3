/* The limits' syntax: parsers and canonical text (cgroup.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/opts.h"
#include "sandbox/cgroup.h"

/* A decimal number without sign: 0, or -EINVAL / -ERANGE. */
static int parse_ull(const char *s, const char **end, unsigned long long *out)
{
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno)
        return -ERANGE;
    *end = e;
    *out = v;
    return 0;
}

int cg_parse_quota(const char *opt, const char *s, unsigned *pct, struct err *e)
{
    const char *end;
    unsigned long long v;
    if (parse_ull(s, &end, &v) < 0 || (*end && strcmp(end, "%")) || v < 1 ||
        v > CG_MAX_QUOTA_PCT)
        return err_set(e, -EINVAL, "invalid %s '%s' (a percentage of one host CPU, 1%% to "
                       "%u%%, e.g. 50%% or 150%%)", opt, s, CG_MAX_QUOTA_PCT);
    *pct = (unsigned)v;
    return 0;
}

int cg_parse_cpus(const char *opt, const char *s, struct cpu_pin *p, struct err *e)
{
    p->n = 0;
    const char *q = s;
    for (;;) {
        unsigned long long a, b;
        const char *end;
        if (parse_ull(q, &end, &a) < 0 || a > CPU_PIN_MAX_CPU)
            goto bad;
        b = a;
        q = end;
        if (*q == '-') {
            if (parse_ull(q + 1, &end, &b) < 0 || b > CPU_PIN_MAX_CPU || b < a)
                goto bad;
            q = end;
        }
        for (unsigned long long c = a; c <= b; c++) {
            if (p->n >= CPU_PIN_MAX)
                return err_set(e, -EINVAL, "%s '%s': more than %u CPUs", opt, s, CPU_PIN_MAX);
            p->cpu[p->n++] = (unsigned short)c;
        }
        if (!*q)
            return 0;
        if (*q != ',')
            goto bad;
        q++;
    }
bad:
    p->n = 0;
    return err_set(e, -EINVAL, "invalid %s '%s' (host CPU numbers 0..%u and ranges, e.g. "
                   "0-3,6)", opt, s, CPU_PIN_MAX_CPU);
}

int cg_check_cpus(const char *opt, const struct cpu_pin *p, struct err *e)
{
    for (unsigned i = 0; i < p->n; i++) {
        char path[96], online = '1';
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u", p->cpu[i]);
        if (access(path, F_OK) < 0)
            return err_set(e, -EINVAL, "%s: host CPU %u does not exist (this host has CPUs "
                           "0-%ld)", opt, p->cpu[i], sysconf(_SC_NPROCESSORS_CONF) - 1);
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online", p->cpu[i]);
        FILE *f = fopen(path, "re");
        if (f) {        /* CPU 0 often has no such file: always online */
            if (fread(&online, 1, 1, f) != 1)
                online = '1';
            fclose(f);
        }
        if (online != '1')
            return err_set(e, -EINVAL, "%s: host CPU %u is offline", opt, p->cpu[i]);
    }
    return 0;
}

int cg_parse_memory(const char *opt, const char *s, uint64_t *bytes, struct err *e)
{
    uint64_t v;
    if (opts_size(s, 20, &v) < 0 || v < CG_MIN_MEMORY || v > CG_MAX_MEMORY || v & 0xfff)
        return err_set(e, -EINVAL, "invalid %s '%s' (16M to 1T, a multiple of 4K, e.g. 768M "
                       "or 2G; a bare number is MiB)", opt, s);
    *bytes = v;
    return 0;
}

int cg_parse_pids(const char *opt, const char *s, unsigned *n, struct err *e)
{
    const char *end;
    unsigned long long v;
    if (parse_ull(s, &end, &v) < 0 || *end || v < 1 || v > CG_MAX_PIDS)
        return err_set(e, -EINVAL, "invalid %s '%s' (a number of threads, 1..%u)", opt, s,
                       CG_MAX_PIDS);
    *n = (unsigned)v;
    return 0;
}

int cg_parse_io(const char *opt, const char *s, struct cg_io_limit *io, struct err *e)
{
    memset(io, 0, sizeof(*io));
    io->disk = -1;
    const char *p = s;
    char item[128];
    int r;
    bool any = false;
    while ((r = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        const char *end;
        unsigned long long v;
        uint64_t sz;
        if (!val || !*val)
            return err_set(e, -EINVAL, "%s '%s': '%s' needs a value", opt, s, item);
        if (!strcmp(item, "disk")) {
            if (parse_ull(val, &end, &v) < 0 || *end || v >= 16)
                return err_set(e, -EINVAL, "%s '%s': disk=%s: expected a disk index 0..15 "
                               "(the --disk order: vda is 0)", opt, s, val);
            io->disk = (int)v;
            continue;
        }
        uint64_t *f = !strcmp(item, "rbps") ? &io->rbps : !strcmp(item, "wbps") ? &io->wbps :
                      !strcmp(item, "riops") ? &io->riops : !strcmp(item, "wiops") ? &io->wiops
                                                                                    : NULL;
        if (!f)
            return err_set(e, -EINVAL, "%s '%s': unknown key '%s' (disk, rbps, wbps, riops, "
                           "wiops)", opt, s, item);
        if (item[1] == 'b') {
            if (opts_size(val, 0, &sz) < 0 || sz < 1 || sz > CG_MAX_IO_RATE)
                return err_set(e, -EINVAL, "%s '%s': %s=%s: expected bytes per second, 1 to "
                               "1P (e.g. 10M)", opt, s, item, val);
        } else if (parse_ull(val, &end, &v) < 0 || *end || v < 1 || v > CG_MAX_IO_RATE) {
            return err_set(e, -EINVAL, "%s '%s': %s=%s: expected operations per second, a "
                           "number from 1", opt, s, item, val);
        } else {
            sz = v;
        }
        *f = sz;
        any = true;
    }
    if (r < 0)
        return r;
    if (!any)
        return err_set(e, -EINVAL, "%s '%s': no limit (give rbps=, wbps=, riops= or wiops=)",
                       opt, s);
    return 0;
}

void cg_fmt_cpus(const struct cpu_pin *p, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < p->n && n < len; i++) {
        unsigned j = i;
        while (j + 1 < p->n && p->cpu[j + 1] == p->cpu[j] + 1)
            j++;
        int w = j > i + 1 ? snprintf(buf + n, len - n, "%s%u-%u", i ? "," : "", p->cpu[i],
                                     p->cpu[j])
                          : snprintf(buf + n, len - n, "%s%u", i ? "," : "", p->cpu[i]);
        if (j == i + 1)     /* two in a row: keep them apart (same meaning, simpler) */
            j = i;
        n += w > 0 ? (size_t)w : 0;
        i = j;
    }
}

void cg_fmt_io(const struct cg_io_limit *io, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    if (io->disk >= 0)
        n += (size_t)snprintf(buf, len, "disk=%d", io->disk);
    const char *names[] = { "rbps", "wbps", "riops", "wiops" };
    const uint64_t vals[] = { io->rbps, io->wbps, io->riops, io->wiops };
    for (unsigned i = 0; i < 4 && n < len; i++)
        if (vals[i])
            n += (size_t)snprintf(buf + n, len - n, "%s%s=%llu", n ? "," : "", names[i],
                                  (unsigned long long)vals[i]);
}

bool cg_limits_any(const struct cg_limits *l)
{
    return l->cpu_quota_pct || l->pin.n || l->memory_max || l->pids_max || l->nio;
}
