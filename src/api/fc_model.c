/* Firecracker's REST API: the model of the VM being configured.  Each
 * resource is a table of fields with the rules of their values, and what a
 * valid body does to the model; the config-file loader (fc_config.c)
 * applies the same resources (see fc.h for the design, fc_priv.h for the
 * files). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fc_priv.h"
#include "core/opts.h"

static const char MSG_ID_MISMATCH[] = "The id from the path does not match the id from the body!";
static const char MSG_RATE_LIMIT[] =
    "rate limiting of the entropy device is not supported by Petrel (omit it or set it to null)";

/* ---- value checks -------------------------------------------------------- */

int fc_check_id(struct fc_req *q, const char *field, const char *id)
{
    if (!*id)
        return fc_fail_field(q, field, "The ID cannot be empty.");
    size_t n = strlen(id);
    for (size_t i = 0; i < n; i++)
        if (!isascii((unsigned char)id[i]) || (!isalnum((unsigned char)id[i]) && id[i] != '_'))
            return fc_fail_field(q, field, "API Resource IDs can only contain alphanumeric "
                                 "characters and underscores.");
    if (n > FC_ID_MAX)
        return fc_fail_field(q, field, "IDs are at most %d characters", FC_ID_MAX);
    return 0;
}

/* A resource's id field: a checked id, the one in the path if there is one. */
static int check_res_id(struct fc_req *q, const char *field, json_t *v)
{
    const char *id = json_string_value(v);
    int ret = fc_check_id(q, field, id);
    if (ret == 0 && q->path_id && strcmp(q->path_id, id))
        ret = fc_fail(q, "%s", MSG_ID_MISMATCH);
    return ret;
}

/* A host file the VMM will open: regular (or, with dev, a block device),
 * readable (and writable with rw).  Only stat and access: looking at a
 * path has no side effects, opening some devices has. */
static int check_file(struct fc_req *q, const char *field, const char *path, bool dev, bool rw)
{
    if (!*path)
        return fc_fail_field(q, field, "must not be empty");
    if (strlen(path) > FC_PATH_MAX)
        return fc_fail_field(q, field, "longer than %d bytes", FC_PATH_MAX);
    struct stat st;
    if (stat(path, &st) < 0)
        return fc_fail_field(q, field, "cannot open `%s`: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) && !(dev && S_ISBLK(st.st_mode)))
        return fc_fail_field(q, field, "`%s` is not a regular file%s", path,
                             dev ? " or a block device" : "");
    if (access(path, rw ? R_OK | W_OK : R_OK) < 0)
        return fc_fail_field(q, field, "cannot open `%s`%s: %s", path,
                             rw ? " for writing" : "", strerror(errno));
    return 0;
}

static int check_mac(struct fc_req *q, const char *field, json_t *v)
{
    const char *s = json_string_value(v);
    unsigned b[6];
    char end;
    bool ok = strlen(s) == 17 && sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                        &b[3], &b[4], &b[5], &end) == 6;
    for (int i = 0; ok && i < 17; i++)
        ok = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]);
    if (!ok)
        return fc_fail_field(q, field, "`%s`: expected six hex bytes XX:XX:XX:XX:XX:XX", s);
    if (b[0] & 1)
        return fc_fail_field(q, field, "`%s` is a multicast address (the first byte must be "
                             "even)", s);
    if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
        return fc_fail_field(q, field, "`%s` is the zero address", s);
    return 0;
}

/* "petrel:" and virtio-net options (s: what follows "petrel:"). */
static int check_net_options(struct fc_req *q, const char *field, const char *s)
{
    static const char *const keys[] = { "net", "name", "ifname", "restrict", "hostfwd",
                                        "allow", "deny", NULL };
    if (!*s)
        return fc_fail_field(q, field, "`petrel:` needs virtio-net options, e.g. "
                             "petrel:net=user or petrel:net=private,name=NETWORK");
    if (strlen(s) > 1024)
        return fc_fail_field(q, field, "longer than 1024 bytes");
    char item[256];
    struct err oe;
    int r;
    while ((r = opts_next(&s, item, sizeof(item), &oe)) > 0) {
        char *val;
        opts_split(item, &val);
        if (!strcmp(item, "mac"))
            return fc_fail_field(q, field, "give the MAC address as guest_mac, not mac=");
        unsigned i = 0;
        while (keys[i] && strcmp(keys[i], item))
            i++;
        if (!keys[i])
            return fc_fail_field(q, field, "unknown virtio-net option `%.64s` (net, name, "
                                 "ifname, restrict, hostfwd, allow, deny)", item);
        if (!strcmp(item, "net") &&
            (!val || (strcmp(val, "user") && strcmp(val, "private") && strcmp(val, "tap"))))
            return fc_fail_field(q, field, "net=%.64s: unknown backend (user, private or tap)",
                                 val ? val : "");
    }
    return r < 0 ? fc_fail_field(q, field, "%s", oe.msg) : 0;
}

/* host_dev_name: a TAP name, or "petrel:" and virtio-net options. */
static int check_host_dev(struct fc_req *q, const char *field, json_t *v)
{
    const char *s = json_string_value(v);
    if (!strncmp(s, FC_NET_PREFIX, strlen(FC_NET_PREFIX)))
        return check_net_options(q, field, s + strlen(FC_NET_PREFIX));
    size_t n = strlen(s);
    if (!n)
        return fc_fail_field(q, field, "must not be empty");
    if (n > FC_TAP_NAME_MAX)
        return fc_fail_field(q, field, "`%s`: interface names are at most %d characters (or "
                             "use petrel:OPTIONS)", s, FC_TAP_NAME_MAX);
    bool ok = strcmp(s, ".") && strcmp(s, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] != '/' && s[i] != ':' && s[i] != ',' && !isspace((unsigned char)s[i]) &&
             (unsigned char)s[i] >= 0x20;
    return ok ? 0 : fc_fail_field(q, field, "`%s` is not an interface name", s);
}

/* ---- rate limiters: Firecracker's RateLimiter {bandwidth, ops}, each a
 * TokenBucket {size, one_time_burst, refill_time (ms)} -------------------- */

static int check_tokens(struct fc_req *q, const char *field, json_t *v)
{
    if ((uint64_t)json_integer_value(v) > RL_MAX_TOKENS)
        return fc_fail_field(q, field, "at most %llu, got %lld", RL_MAX_TOKENS,
                             (long long)json_integer_value(v));
    return 0;
}

static int check_refill(struct fc_req *q, const char *field, json_t *v)
{
    if ((uint64_t)json_integer_value(v) > RL_MAX_REFILL_MS)
        return fc_fail_field(q, field, "at most %llu ms, got %lld", RL_MAX_REFILL_MS,
                             (long long)json_integer_value(v));
    return 0;
}

static const struct fc_field bucket_fields[] = {
    { "size", FT_UINT, .required = true, .check = check_tokens },
    { "one_time_burst", FT_UINT, .required = false, .check = check_tokens },
    { "refill_time", FT_UINT, .required = true, .check = check_refill },
    { 0 },
};

/* A nested object checked against f, its errors named by their JSON path. */
static int check_nested(struct fc_req *q, const char *field, json_t *v, const struct fc_field *f)
{
    char saved[sizeof(q->where)], path[2 * sizeof(q->where)];
    memcpy(saved, q->where, sizeof(saved));
    snprintf(path, sizeof(path), "%s%s%s", saved, saved[0] ? "." : "", field);
    snprintf(q->where, sizeof(q->where), "%.*s", (int)sizeof(q->where) - 1, path);
    int ret = fc_check_object(q, v, f, true);
    memcpy(q->where, saved, sizeof(saved));
    return ret;
}

static int check_bucket(struct fc_req *q, const char *field, json_t *v)
{
    return check_nested(q, field, v, bucket_fields);
}

static const struct fc_field rate_limiter_fields[] = {
    { "bandwidth", FT_OBJ, .required = false, .check = check_bucket },
    { "ops", FT_OBJ, .required = false, .check = check_bucket },
    { 0 },
};

static int check_rate_limiter(struct fc_req *q, const char *field, json_t *v)
{
    return check_nested(q, field, v, rate_limiter_fields);
}

/* o[k] (a checked rate limiter, or absent) into *c: a bucket given replaces
 * the one in *c (size or refill_time 0: unlimited), one absent stays (PUT
 * starts from an unlimited *c).  False when o[k] is absent or null. */
static bool get_rate_limiter(json_t *o, const char *k, struct rl_config *c)
{
    json_t *rl = fc_jget(o, k);
    if (!rl)
        return false;
    static const char *const names[2] = { "bandwidth", "ops" };
    for (unsigned i = 0; i < 2; i++) {
        json_t *b = fc_jget(rl, names[i]);
        if (!b)
            continue;
        struct rl_bucket_cfg *bc = i ? &c->ops : &c->bw;
        json_t *burst = fc_jget(b, "one_time_burst");
        bc->size = (uint64_t)json_integer_value(json_object_get(b, "size"));
        bc->refill_ms = (uint64_t)json_integer_value(json_object_get(b, "refill_time"));
        bc->one_time_burst = burst ? (uint64_t)json_integer_value(burst) : 0;
    }
    return true;
}

static unsigned max_vcpus(const struct fc_api *api)
{
    return fc_x86(api) ? 64 : 32;
}

static int check_vcpus(struct fc_req *q, const char *field, json_t *v)
{
    json_int_t n = json_integer_value(v);
    if (n < 1 || n > max_vcpus(q->api))
        return fc_fail_field(q, field, "must be 1 to %u (%s guests), got %lld",
                             max_vcpus(q->api), fc_arch(q->api), (long long)n);
    return 0;
}

static int check_mem(struct fc_req *q, const char *field, json_t *v)
{
    json_int_t n = json_integer_value(v);
    if (n < FC_MEM_MIN_MIB || n > FC_MEM_MAX_MIB)
        return fc_fail_field(q, field, "must be %d to %d, got %lld", FC_MEM_MIN_MIB,
                             FC_MEM_MAX_MIB, (long long)n);
    return 0;
}

static int check_boot_args(struct fc_req *q, const char *field, json_t *v)
{
    if (strlen(json_string_value(v)) > FC_ARGS_MAX)
        return fc_fail_field(q, field, "longer than %d bytes", FC_ARGS_MAX);
    return 0;
}

static int check_mtu(struct fc_req *q, const char *field, json_t *v)
{
    if (json_integer_value(v) != 1500)
        return fc_fail_field(q, field, "Petrel's virtio-net has a fixed MTU of 1500, got %lld",
                             (long long)json_integer_value(v));
    return 0;
}

static int check_partuuid(struct fc_req *q, const char *field, const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 64 || strspn(s, "0123456789abcdefABCDEF-") != n)
        return fc_fail_field(q, field, "`%.64s`: expected 1 to 64 hexadecimal digits and '-'",
                             s);
    return 0;
}

bool fc_started(const struct fc_api *api)
{
    return api->vm->state != VM_NOT_STARTED;
}

int fc_device_at(char *const *specs, unsigned n, const char *name)
{
    size_t len = strlen(name);
    for (unsigned i = 0; i < n; i++)
        if (!strncmp(specs[i], name, len) && (!specs[i][len] || specs[i][len] == ','))
            return (int)i;
    return -1;
}

int fc_extra_room(struct fc_req *q, int at)
{
    const struct fc_api *api = q->api;
    if (at < 0 && api->nnets + api->entropy + api->nextra >= VM_MAX_DEVICES)
        return fc_fail(q, "too many devices (at most %d network interfaces, entropy and other "
                       "devices together)", VM_MAX_DEVICES);
    return 0;
}

void fc_extra_put(struct fc_api *api, int at, char *spec)
{
    if (at >= 0) {
        free(api->extra[at]);
        api->extra[at] = spec;
    } else {
        api->extra[api->nextra++] = spec;
    }
}

const char *fc_arch(const struct fc_api *api)
{
    return api->vm->cfg.arch ? api->vm->cfg.arch : "riscv64";
}

bool fc_x86(const struct fc_api *api)
{
    return !strcmp(fc_arch(api), "x86_64");
}

/* ---- machine-config, boot-source ----------------------------------------- */

static const struct fc_choice none_only = { { "None" }, false, NULL };

static const struct fc_field machine_fields[] = {
    { "vcpu_count", FT_UINT, .required = true, .check = check_vcpus },
    { "mem_size_mib", FT_UINT, .required = true, .check = check_mem },
    { "smt", FT_BOOL,
      .why = "simultaneous multithreading is not supported by Petrel (false only)" },
    { "track_dirty_pages", FT_BOOL, .required = false },
    { "cpu_template", FT_STR, .choice = &none_only },
    { "huge_pages", FT_STR, .choice = &none_only },
    { 0 },
};

static int apply_machine(struct fc_req *q, json_t *o, bool patch)
{
    struct fc_api *api = q->api;
    if (patch) {
        bool any = false;
        for (const struct fc_field *f = machine_fields; f->name; f++)
            any |= fc_jget(o, f->name) != NULL;
        if (!any)
            return fc_fail(q, "Empty PATCH request.");
    }
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    json_t *v;
    if ((v = fc_jget(o, "vcpu_count")))
        api->vcpu_count = (unsigned)json_integer_value(v);
    if ((v = fc_jget(o, "mem_size_mib")))
        api->mem_size_mib = (unsigned)json_integer_value(v);
    /* accepted and reported back; Petrel has no diff snapshots to use it for */
    if ((v = fc_jget(o, "track_dirty_pages")))
        api->track_dirty_pages = json_is_true(v);
    else if (!patch)
        api->track_dirty_pages = false;
    return 0;
}

static int put_machine(struct fc_req *q, json_t *o)
{
    return apply_machine(q, o, false);
}

static int patch_machine(struct fc_req *q, json_t *o)
{
    return apply_machine(q, o, true);
}

const struct fc_res fc_machine_put = { machine_fields, false, put_machine };
const struct fc_res fc_machine_patch = { machine_fields, true, patch_machine };

static const struct fc_field boot_source_fields[] = {
    { "kernel_image_path", FT_STR, .required = true },
    { "initrd_path", FT_STR, .required = false },
    { "boot_args", FT_STR, .check = check_boot_args },
    { 0 },
};

static int apply_boot_source(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    const char *kernel = fc_jget_str(o, "kernel_image_path");
    const char *initrd = fc_jget_str(o, "initrd_path");
    const char *args = fc_jget_str(o, "boot_args");
    int ret;
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    if ((ret = check_file(q, "kernel_image_path", kernel, false, false)) < 0 ||
        (initrd && (ret = check_file(q, "initrd_path", initrd, false, false)) < 0))
        return ret;
    char *k = strdup(kernel), *i = initrd ? strdup(initrd) : NULL, *a = args ? strdup(args) : NULL;
    if (!k || (initrd && !i) || (args && !a)) {
        free(k);
        free(i);
        free(a);
        return fc_oom(q);
    }
    free(api->kernel);
    free(api->initrd);
    free(api->boot_args);
    api->kernel = k;
    api->initrd = i;
    api->boot_args = a;
    return 0;
}

const struct fc_res fc_boot_source = { boot_source_fields, false, apply_boot_source };

/* ---- drives, network interfaces, entropy --------------------------------- */

static struct fc_drive *find_drive(struct fc_api *api, const char *id)
{
    for (unsigned i = 0; i < api->ndrives; i++)
        if (!strcmp(api->drives[i].id, id))
            return &api->drives[i];
    return NULL;
}

void fc_drive_free(struct fc_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

static const struct fc_choice cache_types = { { "Unsafe", "Writeback" }, false,
                                              "`Unsafe` or `Writeback`" };
static const struct fc_choice io_engines = { { "Sync", "Async" }, false, "`Sync` or `Async`" };

static const struct fc_field drive_fields[] = {
    { "drive_id", FT_STR, .required = true, .check = check_res_id },
    { "path_on_host", FT_STR, .required = true },
    { "is_root_device", FT_BOOL, .required = true },
    { "is_read_only", FT_BOOL, .required = false },
    { "partuuid", FT_STR, .required = false },
    { "cache_type", FT_STR, .choice = &cache_types },
    { "io_engine", FT_STR, .choice = &io_engines },
    { "rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { "socket", FT_NULL, .why = "vhost-user block devices are not supported by Petrel" },
    { 0 },
};

/* PUT /drives/{id}, a config file's drives[i]. */
static int apply_drive(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    const char *id = fc_jget_str(o, "drive_id"), *path = fc_jget_str(o, "path_on_host");
    const char *partuuid = fc_jget_str(o, "partuuid");
    int ret;
    /* not a rule in the table: checked after cache_type and io_engine */
    if (partuuid && (ret = check_partuuid(q, "partuuid", partuuid)) < 0)
        return ret;
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    struct fc_drive d = {
        .root = fc_jget_bool(o, "is_root_device", false),
        .ro = fc_jget_bool(o, "is_read_only", false),
        .cache_type = cache_types.values[fc_jget_choice(o, "cache_type", &cache_types, 0)],
        .io_engine = io_engines.values[fc_jget_choice(o, "io_engine", &io_engines, 0)],
    };
    if ((ret = check_file(q, "path_on_host", path, true, !d.ro)) < 0)
        return ret;
    get_rate_limiter(o, "rate_limiter", &d.limit);
    struct fc_drive *old = find_drive(api, id);
    if (d.root)
        for (unsigned i = 0; i < api->ndrives; i++)
            if (api->drives[i].root && &api->drives[i] != old)
                return fc_fail(q, "A root block device already exists! (drive `%s`)",
                               api->drives[i].id);
    if (!old && api->ndrives == VM_MAX_DISKS)
        return fc_fail(q, "too many drives (at most %d)", VM_MAX_DISKS);
    d.id = strdup(id);
    d.path = strdup(path);
    d.partuuid = partuuid ? strdup(partuuid) : NULL;
    if (!d.id || !d.path || (partuuid && !d.partuuid)) {
        fc_drive_free(&d);
        return fc_oom(q);
    }
    if (old)
        fc_drive_free(old);
    else
        old = &api->drives[api->ndrives++];
    *old = d;
    return 0;
}

static const struct fc_field drive_patch_fields[] = {
    { "drive_id", FT_STR, .required = true, .check = check_res_id },
    { "path_on_host", FT_STR, .required = false },
    { "rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { 0 },
};

/* PATCH /drives/{id}: Firecracker's PartialDrive. */
static int patch_drive(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    const char *id = fc_jget_str(o, "drive_id"), *path = fc_jget_str(o, "path_on_host");
    struct fc_drive *d = find_drive(api, id);
    if (!d)
        return fc_fail(q, "drive `%s` does not exist", id);
    struct rl_config lim = d->limit;
    if (get_rate_limiter(o, "rate_limiter", &lim)) {
        struct rl_config was = d->limit;
        d->limit = lim;
        int ret = fc_started(api) ? fc_live_drive_limit(api, d, q->e) : 0;
        if (ret < 0) {
            d->limit = was;
            return ret;
        }
    }
    if (!path || !strcmp(path, d->path))
        return 0;
    if (fc_started(api))
        return fc_fail_field(q, "path_on_host", "changing a drive's backing file after start "
                             "is not supported by Petrel yet");
    int ret = check_file(q, "path_on_host", path, true, !d->ro);
    if (ret < 0)
        return ret;
    char *copy = strdup(path);
    if (!copy)
        return fc_oom(q);
    free(d->path);
    d->path = copy;
    d->format = NULL;           /* a new file: probe its format */
    return 0;
}

const struct fc_res fc_drive_put = { drive_fields, false, apply_drive };
const struct fc_res fc_drive_patch = { drive_patch_fields, false, patch_drive };

static struct fc_net *find_net(struct fc_api *api, const char *id)
{
    for (unsigned i = 0; i < api->nnets; i++)
        if (!strcmp(api->nets[i].id, id))
            return &api->nets[i];
    return NULL;
}

void fc_net_free(struct fc_net *n)
{
    free(n->id);
    free(n->host_dev_name);
    free(n->guest_mac);
    memset(n, 0, sizeof(*n));
}

/* Room for one more device unless it exists: network interfaces, entropy
 * and the command line's other devices share VM_MAX_DEVICES. */
static int check_device_room(struct fc_req *q, bool exists)
{
    const struct fc_api *api = q->api;
    if (!exists && api->nnets + api->entropy + api->nextra >= VM_MAX_DEVICES)
        return fc_fail(q, "too many devices (at most %d network interfaces, entropy and other "
                       "devices together)", VM_MAX_DEVICES);
    return 0;
}

static const struct fc_field net_fields[] = {
    { "iface_id", FT_STR, .required = true, .check = check_res_id },
    { "host_dev_name", FT_STR, .required = true, .check = check_host_dev },
    { "guest_mac", FT_STR, .check = check_mac },
    { "mtu", FT_UINT, .check = check_mtu },
    { "rx_rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { "tx_rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { 0 },
};

/* PUT /network-interfaces/{id}, a config file's network-interfaces[i]. */
static int apply_net(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    const char *id = fc_jget_str(o, "iface_id"), *dev = fc_jget_str(o, "host_dev_name");
    const char *mac = fc_jget_str(o, "guest_mac");
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    struct fc_net *old = find_net(api, id);
    bool tap = strncmp(dev, FC_NET_PREFIX, strlen(FC_NET_PREFIX)) != 0;
    for (unsigned i = 0; i < api->nnets; i++) {
        struct fc_net *n = &api->nets[i];
        if (n == old)
            continue;
        if (tap && !strcmp(n->host_dev_name, dev))
            return fc_fail_field(q, "host_dev_name", "The host device name `%s` is already in "
                                 "use (interface `%s`)", dev, n->id);
        if (mac && n->guest_mac && !strcasecmp(n->guest_mac, mac))
            return fc_fail_field(q, "guest_mac", "The MAC address `%s` is already in use "
                                 "(interface `%s`)", mac, n->id);
    }
    int ret = check_device_room(q, old != NULL);
    if (ret < 0)
        return ret;
    struct fc_net n = { .id = strdup(id), .host_dev_name = strdup(dev),
                        .guest_mac = mac ? strdup(mac) : NULL };
    get_rate_limiter(o, "rx_rate_limiter", &n.limit[VM_LIMIT_RX]);
    get_rate_limiter(o, "tx_rate_limiter", &n.limit[VM_LIMIT_TX]);
    if (!n.id || !n.host_dev_name || (mac && !n.guest_mac)) {
        fc_net_free(&n);
        return fc_oom(q);
    }
    if (old)
        fc_net_free(old);
    else
        old = &api->nets[api->nnets++];
    *old = n;
    return 0;
}

static const struct fc_field net_patch_fields[] = {
    { "iface_id", FT_STR, .required = true, .check = check_res_id },
    { "rx_rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { "tx_rate_limiter", FT_OBJ, .required = false, .check = check_rate_limiter },
    { 0 },
};

/* PATCH /network-interfaces/{id}: the rate limiters, live while running. */
static int patch_net(struct fc_req *q, json_t *o)
{
    const char *id = fc_jget_str(o, "iface_id");
    struct fc_net *n = find_net(q->api, id);
    if (!n)
        return fc_fail(q, "network interface `%s` does not exist", id);
    struct rl_config was[2] = { n->limit[0], n->limit[1] };
    bool any = get_rate_limiter(o, "rx_rate_limiter", &n->limit[VM_LIMIT_RX]);
    any |= get_rate_limiter(o, "tx_rate_limiter", &n->limit[VM_LIMIT_TX]);
    int ret = any && fc_started(q->api) ? fc_live_net_limit(q->api, n, was, q->e) : 0;
    if (ret < 0) {
        n->limit[0] = was[0];
        n->limit[1] = was[1];
    }
    return ret;
}

const struct fc_res fc_net_put = { net_fields, false, apply_net };
const struct fc_res fc_net_patch = { net_patch_fields, false, patch_net };

static const struct fc_field entropy_fields[] = {
    { "rate_limiter", FT_NULL, .why = MSG_RATE_LIMIT },
    { 0 },
};

static int apply_entropy(struct fc_req *q, json_t *o)
{
    (void)o;
    struct fc_api *api = q->api;
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    int ret = check_device_room(q, api->entropy);
    if (ret == 0)
        api->entropy = true;
    return ret;
}

const struct fc_res fc_entropy = { entropy_fields, false, apply_entropy };

/* ---- logger, metrics ----------------------------------------------------- */

/* The levels and their log_set_verbose values; Trace is Debug. */
static const struct fc_choice log_levels = {
    { "Off", "Error", "Warning", "Info", "Debug", "Trace" }, true,
    "one of Error, Warning, Info, Debug, Trace, Off",
};
static const int log_verbose_of[] = { -2, -1, 0, 1, 2, 2 };

/* The first level at least that verbose; past the last, Debug (Trace is
 * as verbose as Debug). */
const char *fc_level_name(int verbose)
{
    unsigned i = 0, n = sizeof(log_verbose_of) / sizeof(log_verbose_of[0]);
    while (i + 1 < n && log_verbose_of[i] < verbose && log_verbose_of[i] < log_verbose_of[i + 1])
        i++;
    return log_levels.values[i];
}

/* A log or metrics sink at path (1 to FC_PATH_MAX bytes), opened through
 * the host ops: its fd, and a copy of path in *copy. */
static int open_sink(struct fc_req *q, const char *field, const char *path, char **copy)
{
    if (!*path || strlen(path) > FC_PATH_MAX)
        return fc_fail_field(q, field, "1 to %d bytes", FC_PATH_MAX);
    if (!(*copy = strdup(path)))
        return fc_oom(q);
    struct err oe;
    int fd = q->api->ops->open_sink(path, &oe);
    if (fd < 0) {
        free(*copy);
        return fc_fail_field(q, field, "%s", oe.msg);
    }
    return fd;
}

static const struct fc_field logger_fields[] = {
    { "log_path", FT_STR, .required = false },
    { "level", FT_STR, .choice = &log_levels },
    { "show_level", FT_BOOL, .required = false },
    { "show_log_origin", FT_BOOL, .required = false },
    { "module", FT_NULL, .why = "filtering by module is not supported by Petrel" },
    { 0 },
};

static int apply_logger(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    int level = fc_jget_choice(o, "level", &log_levels, -1);
    const char *path = fc_jget_str(o, "log_path");
    char *path_copy = NULL;
    int fd = path ? open_sink(q, "log_path", path, &path_copy) : -1;
    if (path && fd < 0)
        return fd;
    api->show_level = fc_jget_bool(o, "show_level", false);
    /* accepted and reported back: Petrel's log lines carry no origin */
    api->show_log_origin = fc_jget_bool(o, "show_log_origin", false);
    if (path) {
        free(api->log_path);
        api->log_path = path_copy;
        log_set_fd(fd, api->show_level);    /* the logger owns fd now */
        api->log_file = true;
    } else {
        log_set_show_level(api->show_level);
    }
    if (level >= 0) {
        api->log_level = log_levels.values[level];
        log_set_verbose(log_verbose_of[level]);
    }
    api->logger_set = true;
    return 0;
}

const struct fc_res fc_logger = { logger_fields, false, apply_logger };

static const struct fc_field metrics_fields[] = {
    { "metrics_path", FT_STR, .required = true },
    { 0 },
};

static int apply_metrics(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    char *copy;
    int fd = open_sink(q, "metrics_path", fc_jget_str(o, "metrics_path"), &copy);
    if (fd < 0)
        return fd;
    if (api->metrics_fd >= 0)
        close(api->metrics_fd);
    free(api->metrics_path);
    api->metrics_path = copy;
    api->metrics_fd = fd;
    uint64_t period = (uint64_t)FC_METRICS_PERIOD_S * 1000000000ull;
    evloop_timer_set(api->metrics_timer, period, period);
    return 0;
}

const struct fc_res fc_metrics = { metrics_fields, false, apply_metrics };
