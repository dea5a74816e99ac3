/* Firecracker's REST API: the model and vm->cfg.  The model is seeded from
 * the command line's vm->cfg; InstanceStart builds a fresh vm->cfg from
 * it; GET /vm/config shows it in the config-file layout (see fc.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fc_priv.h"
#include "core/opts.h"

/* ---- InstanceStart ------------------------------------------------------- */

/* Append s to the option string at *buf (",," for a comma). */
static int spec_add(char **buf, const char *key, const char *s)
{
    size_t old = *buf ? strlen(*buf) : 0, n = strlen(s), commas = 0;
    for (size_t i = 0; i < n; i++)
        commas += s[i] == ',';
    size_t klen = key ? strlen(key) + 1 : 0;
    char *nb = realloc(*buf, old + 1 + klen + n + commas + 1);
    if (!nb)
        return -ENOMEM;
    char *p = nb + old;
    if (old)
        *p++ = ',';
    if (key)
        p += sprintf(p, "%s=", key);
    for (size_t i = 0; i < n; i++) {
        *p++ = s[i];
        if (s[i] == ',')
            *p++ = ',';
    }
    *p = 0;
    *buf = nb;
    return 0;
}

/* Append the rate keys of c (",bps=..."; nothing when unlimited). */
static int spec_add_limit(char **buf, const struct rl_config *c, const char *prefix,
                          const char *ops_name)
{
    char keys[256] = "";
    if (rl_format(c, prefix, ops_name, keys, sizeof(keys)) < 0)
        return -ENOMEM;
    if (!keys[0])
        return 0;
    size_t old = *buf ? strlen(*buf) : 0;
    char *nb = realloc(*buf, old + strlen(keys) + 1);
    if (!nb)
        return -ENOMEM;
    strcpy(nb + old, keys + (old ? 0 : 1));
    *buf = nb;
    return 0;
}

static char *disk_spec(const struct fc_drive *d)
{
    char *s = NULL;
    if (spec_add(&s, NULL, d->path) < 0 || (d->ro && spec_add(&s, "readonly", "on") < 0) ||
        (d->format && spec_add(&s, "format", d->format) < 0) ||
        (d->serial[0] && spec_add(&s, "serial", d->serial) < 0) ||
        spec_add_limit(&s, &d->limit, "", "iops") < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static char *net_spec(const struct fc_net *n)
{
    char *s = NULL;
    int ret = spec_add(&s, NULL, "virtio-net");
    if (ret == 0 && !strncmp(n->host_dev_name, FC_NET_PREFIX, strlen(FC_NET_PREFIX))) {
        /* already an option string: appended as it is */
        const char *opts = n->host_dev_name + strlen(FC_NET_PREFIX);
        char *nb = realloc(s, strlen(s) + 1 + strlen(opts) + 1);
        if (!nb)
            ret = -ENOMEM;
        else
            sprintf((s = nb) + strlen(nb), ",%s", opts);
    } else if (ret == 0) {
        if ((ret = spec_add(&s, "net", "tap")) == 0)
            ret = spec_add(&s, "ifname", n->host_dev_name);
    }
    if (ret == 0 && n->guest_mac)
        ret = spec_add(&s, "mac", n->guest_mac);
    if (ret == 0)
        ret = spec_add_limit(&s, &n->limit[VM_LIMIT_RX], "rx_", "pps");
    if (ret == 0)
        ret = spec_add_limit(&s, &n->limit[VM_LIMIT_TX], "tx_", "pps");
    if (ret < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* The drives in the guest's order: the root device first (vda). */
static unsigned drive_order(const struct fc_api *api, const struct fc_drive **out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < api->ndrives; i++)
        if (api->drives[i].root)
            out[n++] = &api->drives[i];
    for (unsigned i = 0; i < api->ndrives; i++)
        if (!api->drives[i].root)
            out[n++] = &api->drives[i];
    return n;
}

/* A fresh configuration from the model; arch, firmware and the watchdog
 * stay the command line's. */
static int build_config(struct fc_api *api, struct vm_config *nc, struct err *e)
{
    const struct vm_config *old = &api->vm->cfg;
    const struct fc_drive *order[VM_MAX_DISKS];
    unsigned n = drive_order(api, order);
    int ret = -ENOMEM;
    memset(nc, 0, sizeof(*nc));
    nc->timeout_s = old->timeout_s;
    nc->cpus = api->vcpu_count;
    nc->mem_size = (uint64_t)api->mem_size_mib << 20;
    if (vm_config_set(&nc->arch, old->arch) < 0 ||
        vm_config_set(&nc->firmware, old->firmware) < 0 ||
        vm_config_set(&nc->kernel, api->kernel) < 0 || vm_config_set(&nc->initrd, api->initrd) < 0)
        goto oom;
    /* Firecracker's root device arguments, appended to the command line */
    const char *base = api->boot_args ? api->boot_args : api->default_append;
    if (n && order[0]->root) {
        if (asprintf(&nc->append, "%s%sroot=%s%s %s", base, *base ? " " : "",
                     order[0]->partuuid ? "PARTUUID=" : "/dev/vda",
                     order[0]->partuuid ? order[0]->partuuid : "",
                     order[0]->ro ? "ro" : "rw") < 0) {
            nc->append = NULL;
            goto oom;
        }
    } else if (vm_config_set(&nc->append, base) < 0) {
        goto oom;
    }
    for (unsigned i = 0; i < n; i++) {
        char *spec = disk_spec(order[i]);
        if (!spec)
            goto oom;
        struct err de;
        ret = vm_config_set_disk(nc, -1, spec, &de);
        free(spec);
        if (ret < 0) {
            err_set(e, ret, "drive `%s`: %s", order[i]->id, de.msg);
            goto fail;
        }
    }
    for (unsigned i = 0; i < api->nnets; i++) {
        char *spec = net_spec(&api->nets[i]);
        if (!spec)
            goto oom;
        ret = vm_config_add_device(nc, spec, e);
        free(spec);
        if (ret < 0)
            goto fail;
    }
    if (api->entropy && (ret = vm_config_add_device(nc, "virtio-rng", e)) < 0)
        goto fail;
    for (unsigned i = 0; i < api->nextra; i++)
        if ((ret = vm_config_add_device(nc, api->extra[i], e)) < 0)
            goto fail;
    return 0;
oom:
    ret = err_set(e, -ENOMEM, "out of memory");
fail:
    vm_config_free(nc);
    return ret;
}

int fc_api_instance_start(struct fc_api *api, struct err *e)
{
    struct vm *vm = api->vm;
    if (fc_started(api))
        return err_set(e, -EINVAL, "%s", FC_MSG_POST_BOOT);
    struct vm_config nc;
    int ret = build_config(api, &nc, e);
    if (ret < 0)
        return ret;
    if ((ret = vm_config_defaults(&nc, e)) < 0) {
        vm_config_free(&nc);
        return ret;
    }
    struct vm_config old = vm->cfg;
    vm->cfg = nc;
    ret = api->ops->start(vm, e);
    if (ret < 0 && vm->state == VM_NOT_STARTED) {
        /* no machine was built: back to the configuration it had */
        vm_config_free(&vm->cfg);
        vm->cfg = old;
        return ret;
    }
    /* started, or failed with a machine built from nc (torn down with it) */
    vm_config_free(&old);
    return ret;
}

/* ---- rate limits while running ------------------------------------------- */

int fc_live_drive_limit(struct fc_api *api, const struct fc_drive *d, struct err *e)
{
    struct vm *vm = api->vm;
    const struct fc_drive *order[VM_MAX_DISKS];
    unsigned n = drive_order(api, order), i = 0;
    while (i < n && order[i] != d)
        i++;
    struct err de;
    int ret = i < n && i < vm->cfg.ndisks ? vm_set_limit(vm, VM_DEV_BLOCK, i, 0, &d->limit, &de)
                                          : err_set(&de, -ENODEV, "not attached");
    if (ret < 0)
        return err_set(e, ret == -ENOMEM ? ret : -EINVAL, "rate_limiter: drive `%s`: %s", d->id,
                       de.msg);
    /* what a snapshot of this VM records: the disk with its new limit */
    char *spec = disk_spec(d);
    if (!spec)
        return err_set(e, -ENOMEM, "out of memory");
    ret = vm_config_set_disk(&vm->cfg, (int)i, spec, &de);
    free(spec);
    return ret < 0 ? err_set(e, ret, "drive `%s`: %s", d->id, de.msg) : 0;
}

int fc_live_net_limit(struct fc_api *api, const struct fc_net *n, const struct rl_config *was,
                      struct err *e)
{
    struct vm *vm = api->vm;
    unsigned idx = (unsigned)(n - api->nets), k = 0, seen = 0;
    struct err de;
    for (unsigned w = VM_LIMIT_RX; w <= VM_LIMIT_TX; w++) {
        if (!memcmp(&was[w], &n->limit[w], sizeof(was[w])))
            continue;           /* unchanged: its buckets keep their tokens */
        int ret = vm_set_limit(vm, VM_DEV_NET, idx, w, &n->limit[w], &de);
        if (ret < 0)
            return err_set(e, ret == -ENOMEM ? ret : -EINVAL, "%s_rate_limiter: interface `%s`: "
                           "%s", w == VM_LIMIT_RX ? "rx" : "tx", n->id, de.msg);
    }
    /* the idx-th virtio-net of the configuration gets its new spec */
    for (; k < vm->cfg.ndevices; k++) {
        const char *s = vm->cfg.devices[k];
        if (!strncmp(s, "virtio-net", 10) && (!s[10] || s[10] == ',') && seen++ == idx)
            break;
    }
    if (k == vm->cfg.ndevices)
        return 0;
    char *spec = net_spec(n);
    int ret = spec ? vm_config_set(&vm->cfg.devices[k], spec) : -ENOMEM;
    free(spec);
    return ret < 0 ? err_set(e, ret, "out of memory") : 0;
}

/* ---- the model from the command line ------------------------------------- */

/* "virtio-net[,OPTS]" from the command line as a network interface: its
 * mac= becomes guest_mac, net=tap,ifname=X a TAP name, anything else a
 * "petrel:" name. */
static int import_net(struct fc_api *api, const char *spec, struct err *e)
{
    const char *p = spec + strlen("virtio-net");
    if (*p == ',')
        p++;
    char item[256], *rest = NULL, *mac = NULL, *ifname = NULL;
    bool tap = false;
    unsigned nitems = 0;
    int r;
    struct fc_net n = { 0 };
    while ((r = opts_next(&p, item, sizeof(item), e)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "mac") && val) {
            free(mac);
            if (!(mac = strdup(val)))
                goto oom;
            continue;
        }
        /* rate limits become rx_rate_limiter/tx_rate_limiter */
        struct err re;
        int rr = rl_parse_opt(&n.limit[VM_LIMIT_RX], "rx_", "pps", item, val, &re);
        if (rr == 0)
            rr = rl_parse_opt(&n.limit[VM_LIMIT_TX], "tx_", "pps", item, val, &re);
        if (rr > 0)
            continue;
        nitems++;
        tap |= !strcmp(item, "net") && val && !strcmp(val, "tap");
        if (!strcmp(item, "ifname") && val) {
            free(ifname);
            if (!(ifname = strdup(val)))
                goto oom;
        }
        if (val)
            val[-1] = '=';      /* the item again, re-escaped by spec_add */
        if (spec_add(&rest, NULL, item) < 0)
            goto oom;
    }
    if (r < 0)
        goto fail;
    if (tap && nitems == 2 && ifname && strlen(ifname) <= FC_TAP_NAME_MAX &&
        !strpbrk(ifname, "/:, \t\n")) {
        n.host_dev_name = ifname;
        ifname = NULL;
    } else if (asprintf(&n.host_dev_name, FC_NET_PREFIX "%s", rest ? rest : "net=user") < 0) {
        n.host_dev_name = NULL;
        goto oom;
    }
    if (asprintf(&n.id, "net%u", api->nnets) < 0) {
        n.id = NULL;
        goto oom;
    }
    n.guest_mac = mac;
    mac = NULL;
    api->nets[api->nnets++] = n;
    free(rest);
    free(ifname);
    return 0;
oom:
    err_set(e, -ENOMEM, "out of memory");
fail:
    fc_net_free(&n);
    free(rest);
    free(mac);
    free(ifname);
    return -ENOMEM;
}

int fc_import_cfg(struct fc_api *api, struct err *e)
{
    const struct vm_config *c = &api->vm->cfg;
    api->vcpu_count = c->cpus ? c->cpus : 1;
    api->mem_size_mib = c->mem_size ? (unsigned)(c->mem_size >> 20) : FC_DEFAULT_MEM_MIB;
    const char *def = c->append ? c->append
                    : fc_x86(api) ? "console=ttyS0" : "console=ttyS0 earlycon=sbi";
    if (vm_config_set(&api->default_append, def) < 0 ||
        vm_config_set(&api->kernel, c->kernel) < 0 || vm_config_set(&api->initrd, c->initrd) < 0 ||
        vm_config_set(&api->boot_args, c->kernel ? c->append : NULL) < 0)
        return err_set(e, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < c->ndisks && i < VM_MAX_DISKS; i++) {
        const struct disk_config *dc = &c->disks[i];
        struct fc_drive *d = &api->drives[api->ndrives];
        *d = (struct fc_drive){ .ro = dc->readonly, .cache_type = "Unsafe", .io_engine = "Sync",
                                .format = !dc->format ? NULL
                                        : !strcmp(dc->format, "qcow2") ? "qcow2" : "raw",
                                .limit = dc->limit };
        snprintf(d->serial, sizeof(d->serial), "%s", dc->serial);
        if (asprintf(&d->id, "disk%u", i) < 0 || !(d->path = strdup(dc->path ? dc->path : ""))) {
            if (d->id == NULL)
                memset(d, 0, sizeof(*d));
            fc_drive_free(d);
            return err_set(e, -ENOMEM, "out of memory");
        }
        api->ndrives++;
    }
    for (unsigned i = 0; i < c->ndevices; i++) {
        const char *s = c->devices[i];
        int ret = 0;
        if (!strcmp(s, "virtio-rng") && !api->entropy)
            api->entropy = true;
        else if (!strncmp(s, "virtio-net", 10) && (!s[10] || s[10] == ','))
            ret = import_net(api, s, e);
        else if (!(api->extra[api->nextra] = strdup(s)))
            ret = err_set(e, -ENOMEM, "out of memory");
        else
            api->nextra++;
        if (ret < 0)
            return ret;
    }
    return 0;
}

int fc_api_reimport(struct fc_api *api, struct err *e)
{
    for (unsigned i = 0; i < api->ndrives; i++)
        fc_drive_free(&api->drives[i]);
    for (unsigned i = 0; i < api->nnets; i++)
        fc_net_free(&api->nets[i]);
    for (unsigned i = 0; i < api->nextra; i++)
        free(api->extra[i]);
    api->ndrives = api->nnets = api->nextra = 0;
    api->entropy = false;
    return fc_import_cfg(api, e);
}

/* ---- GET /machine-config, GET /vm/config --------------------------------- */

json_t *fc_machine_json(const struct fc_api *api)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "vcpu_count", json_integer(api->vcpu_count)) &&
                       fc_jset(o, "mem_size_mib", json_integer(api->mem_size_mib)) &&
                       fc_jset(o, "smt", json_false()) &&
                       fc_jset(o, "track_dirty_pages", json_boolean(api->track_dirty_pages)) &&
                       fc_jset(o, "huge_pages", json_string("None")));
}

/* Firecracker's RateLimiter object (NULL: unlimited, left out). */
static json_t *bucket_json(const struct rl_bucket_cfg *b)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "size", json_integer((json_int_t)b->size)) &&
                       fc_jset(o, "one_time_burst", json_integer((json_int_t)b->one_time_burst)) &&
                       fc_jset(o, "refill_time", json_integer((json_int_t)b->refill_ms)));
}

static bool jset_limit(json_t *o, const char *k, const struct rl_config *c)
{
    if (!rl_config_on(c))
        return true;
    json_t *x = json_object();
    return x && fc_jset(o, k, x) &&
           (!rl_bucket_on(&c->bw) || fc_jset(x, "bandwidth", bucket_json(&c->bw))) &&
           (!rl_bucket_on(&c->ops) || fc_jset(x, "ops", bucket_json(&c->ops)));
}

static json_t *drive_json(const struct fc_drive *d)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "drive_id", fc_jstring(d->id)) &&
                       fc_jset(o, "path_on_host", fc_jstring(d->path)) &&
                       fc_jset(o, "is_root_device", json_boolean(d->root)) &&
                       fc_jset(o, "is_read_only", json_boolean(d->ro)) &&
                       (!d->partuuid || fc_jset(o, "partuuid", fc_jstring(d->partuuid))) &&
                       fc_jset(o, "cache_type", json_string(d->cache_type)) &&
                       fc_jset(o, "io_engine", json_string(d->io_engine)) &&
                       jset_limit(o, "rate_limiter", &d->limit));
}

static json_t *net_json(const struct fc_net *n)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "iface_id", fc_jstring(n->id)) &&
                       fc_jset(o, "host_dev_name", fc_jstring(n->host_dev_name)) &&
                       (!n->guest_mac || fc_jset(o, "guest_mac", fc_jstring(n->guest_mac))) &&
                       jset_limit(o, "rx_rate_limiter", &n->limit[VM_LIMIT_RX]) &&
                       jset_limit(o, "tx_rate_limiter", &n->limit[VM_LIMIT_TX]));
}

/* o[k] = a new object, in *x; false when out of memory. */
static bool jset_obj(json_t *o, const char *k, json_t **x)
{
    return (*x = json_object()) && fc_jset(o, k, *x);
}

json_t *fc_config_json(const struct fc_api *api)
{
    json_t *o = json_object(), *drives = json_array(), *nets = json_array(), *x;
    const struct fc_drive *order[VM_MAX_DISKS];
    unsigned n = drive_order(api, order);
    bool ok = o && drives && nets;
    for (unsigned i = 0; ok && i < n; i++)
        ok = json_array_append_new(drives, drive_json(order[i])) == 0;
    for (unsigned i = 0; ok && i < api->nnets; i++)
        ok = json_array_append_new(nets, net_json(&api->nets[i])) == 0;
    if (ok && api->kernel)
        ok = jset_obj(o, "boot-source", &x) &&
             fc_jset(x, "kernel_image_path", fc_jstring(api->kernel)) &&
             (!api->initrd || fc_jset(x, "initrd_path", fc_jstring(api->initrd))) &&
             (!api->boot_args || fc_jset(x, "boot_args", fc_jstring(api->boot_args)));
    ok = ok && json_object_set(o, "drives", drives) == 0 &&
         fc_jset(o, "machine-config", fc_machine_json(api)) &&
         json_object_set(o, "network-interfaces", nets) == 0;
    if (ok && api->logger_set)
        ok = jset_obj(o, "logger", &x) &&
             (!api->log_path || fc_jset(x, "log_path", fc_jstring(api->log_path))) &&
             fc_jset(x, "level", json_string(api->log_level ? api->log_level
                                                            : fc_level_name(log_verbose()))) &&
             fc_jset(x, "show_level", json_boolean(api->show_level)) &&
             fc_jset(x, "show_log_origin", json_boolean(api->show_log_origin));
    if (ok && api->metrics_path)
        ok = jset_obj(o, "metrics", &x) &&
             fc_jset(x, "metrics_path", fc_jstring(api->metrics_path));
    if (ok && api->entropy)
        ok = fc_jset(o, "entropy", json_object());
    ok = ok && fc_balloon_config_json(api, o);
    json_decref(drives);
    json_decref(nets);
    return fc_jdone(o, ok);
}
