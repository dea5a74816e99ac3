/* `petrel run --jail DIR`: hand every path of the command line to the
 * jailer (src/sandbox/jail.h), rewriting each to the path the jailed VMM
 * must use, and enter the jail. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "cli/run_jail.h"
#include "core/opts.h"
#include "core/vm.h"

/* A string field of cfg (kernel, initrd, firmware) as an input. */
static int add_cfg_file(struct jail *j, char **field, const char *what, struct err *e)
{
    if (!*field)
        return 0;
    const char *p = *field;
    int r = jail_add_file(j, &p, false, what, e);
    if (r < 0)
        return r;
    return vm_config_set(field, p) < 0 ? err_set(e, -ENOMEM, "out of memory") : 0;
}

/* Append s to out (at *n, of len), doubling commas (opts.h escaping). */
static int append_escaped(char *out, size_t len, size_t *n, const char *s)
{
    for (; *s; s++) {
        if (*n + 2 >= len)
            return -1;
        out[(*n)++] = *s;
        if (*s == ',')
            out[(*n)++] = ',';
    }
    out[*n] = 0;
    return 0;
}

/* A --device spec: path options (socket=, file=, uds=) are files Petrel
 * creates (in DIR); net=tap needs /dev/net/tun; the private network's
 * switch lives outside any jail. */
static int add_device(struct jail *j, char **spec, struct err *e)
{
    char item[PATH_MAX + 16], out[PATH_MAX * 2 + 64];
    size_t n = 0;
    const char *p = *spec;
    int r, first = 1;
    out[0] = 0;
    while ((r = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!first)
            out[n++] = ',';
        if (append_escaped(out, sizeof(out), &n, item) < 0)
            return err_set(e, -ENAMETOOLONG, "--device %s: too long", *spec);
        if (val) {
            const char *v = val;
            if (!first && (!strcmp(item, "socket") || !strcmp(item, "file") ||
                           !strcmp(item, "uds"))) {
                const char *what = !strcmp(item, "socket") ? "--device ...,socket=" :
                                   !strcmp(item, "file") ? "--device ...,file=" :
                                   "--device ...,uds=";
                if ((r = jail_add_output(j, &v, what, e)) < 0)
                    return r;
            }
            if (!first && !strcmp(item, "net") && !strcmp(val, "tap") &&
                (r = jail_add_device(j, "/dev/net/tun", e)) < 0)
                return r;
            if (!first && !strcmp(item, "net") && !strcmp(val, "private"))
                return err_set(e, -EINVAL, "--device %s: net=private does not work in a jail "
                               "yet (its switch's socket is outside it)", *spec);
            out[n++] = '=';
            out[n] = 0;
            if (append_escaped(out, sizeof(out), &n, v) < 0)
                return err_set(e, -ENAMETOOLONG, "--device %s: too long", *spec);
        }
        first = 0;
    }
    if (r < 0)
        return r;
    return vm_config_set(spec, out) < 0 ? err_set(e, -ENOMEM, "out of memory") : 0;
}

int run_jail_enter(struct run_jail *rj, struct vm_config *cfg, struct jail **out, int *status,
                   struct err *e)
{
    int r;
    /* "none" becomes NULL: put it back after, for the VMM's own call */
    bool fw_none = cfg->firmware && !strcmp(cfg->firmware, "none");
    if (rj->boot_now && (r = vm_config_defaults(cfg, e)) < 0)
        return r;
    /* loaded before the host's libraries go out of sight */
    if (rj->api && (r = http_preload(e)) < 0)
        return r;
    struct jail *j = jail_new(&rj->jc, e);
    if (!j)
        return -EINVAL;
    if ((r = add_cfg_file(j, &cfg->kernel, "--kernel", e)) < 0 ||
        (r = add_cfg_file(j, &cfg->initrd, "--initrd", e)) < 0 ||
        (!fw_none && (r = add_cfg_file(j, &cfg->firmware, "--firmware", e)) < 0))
        goto fail;
    if (fw_none && vm_config_set(&cfg->firmware, "none") < 0) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < cfg->ndisks; i++)
        if ((r = jail_add_disk(j, &cfg->disks[i], e)) < 0)
            goto fail;
    for (unsigned i = 0; i < cfg->ndevices; i++)
        if ((r = add_device(j, &cfg->devices[i], e)) < 0)
            goto fail;
    if (cfg->arch && !strcmp(cfg->arch, "x86_64") && (r = jail_add_device(j, "/dev/kvm", e)) < 0)
        goto fail;
    for (unsigned i = 0; i < rj->nout; i++)
        if (*rj->outputs[i] && (r = jail_add_output(j, rj->outputs[i], rj->output_what[i], e)) < 0)
            goto fail;
    if (rj->config_file && *rj->config_file &&
        (r = jail_add_file(j, rj->config_file, false, "--config-file", e)) < 0)
        goto fail;
    if (rj->restore && *rj->restore && (r = jail_add_dir(j, rj->restore, "--restore", e)) < 0)
        goto fail;
    r = jail_enter(j, status, e);
    if (r == 0) {
        *out = j;       /* the jailed VMM: the paths live in j */
        return 0;
    }
fail:
    jail_free(j);
    return r;
}
