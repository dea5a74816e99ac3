#include "core/vm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vm_config_set(char **field, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int vm_config_add_device(struct vm_config *c, const char *spec, struct err *e)
{
    if (c->ndevices >= VM_MAX_DEVICES)
        return err_set(e, -ENOSPC, "too many devices (at most %d)", VM_MAX_DEVICES);
    char *copy = strdup(spec);
    if (!copy)
        return err_set(e, -ENOMEM, "out of memory");
    c->devices[c->ndevices++] = copy;
    return 0;
}

void vm_config_del_device(struct vm_config *c, unsigned i)
{
    if (i >= c->ndevices)
        return;
    free(c->devices[i]);
    memmove(&c->devices[i], &c->devices[i + 1], (c->ndevices - i - 1) * sizeof(c->devices[0]));
    c->devices[--c->ndevices] = NULL;
}

int vm_config_set_disk(struct vm_config *c, int index, const char *spec, struct err *e)
{
    if (index < 0 && c->ndisks >= VM_MAX_DISKS)
        return err_set(e, -ENOSPC, "too many disks (at most %d)", VM_MAX_DISKS);
    if (index >= 0 && (unsigned)index >= c->ndisks)
        return err_set(e, -EINVAL, "no disk %d", index);
    char *copy = strdup(spec), *arg = strdup(spec);
    if (!copy || !arg) {
        free(copy);
        free(arg);
        return err_set(e, -ENOMEM, "out of memory");
    }
    struct disk_config d;
    int ret = disk_config_parse(&d, copy, e);
    if (ret < 0) {
        free(copy);
        free(arg);
        return ret;
    }
    unsigned i = index < 0 ? c->ndisks++ : (unsigned)index;
    free(c->disk_specs[i]);
    free(c->disk_args[i]);
    c->disk_specs[i] = copy;
    c->disk_args[i] = arg;
    c->disks[i] = d;
    return 0;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src, struct err *e)
{
    memset(dst, 0, sizeof(*dst));
    dst->mem_size = src->mem_size;
    dst->cpus = src->cpus;
    dst->timeout_s = src->timeout_s;
    if (vm_config_set(&dst->arch, src->arch) < 0 || vm_config_set(&dst->kernel, src->kernel) < 0 ||
        vm_config_set(&dst->initrd, src->initrd) < 0 ||
        vm_config_set(&dst->append, src->append) < 0 ||
        vm_config_set(&dst->firmware, src->firmware) < 0)
        goto oom;
    for (unsigned i = 0; i < src->ndevices; i++)
        if (vm_config_add_device(dst, src->devices[i], e) < 0)
            goto fail;
    for (unsigned i = 0; i < src->ndisks; i++)
        if (vm_config_set_disk(dst, -1, src->disk_args[i], e) < 0)
            goto fail;
    return 0;
oom:
    err_set(e, -ENOMEM, "out of memory");
fail:
    vm_config_free(dst);
    return -ENOMEM;
}

void vm_config_free(struct vm_config *c)
{
    free(c->arch);
    free(c->kernel);
    free(c->initrd);
    free(c->append);
    free(c->firmware);
    for (unsigned i = 0; i < c->ndevices; i++)
        free(c->devices[i]);
    for (unsigned i = 0; i < c->ndisks; i++) {
        free(c->disk_specs[i]);
        free(c->disk_args[i]);
    }
    memset(c, 0, sizeof(*c));
}
