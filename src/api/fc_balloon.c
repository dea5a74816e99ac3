/* Firecracker's balloon resource: PUT /balloon before the start (and a
 * config file's "balloon"), PATCH /balloon {amount_mib} and PATCH
 * /balloon/statistics {stats_polling_interval_s} after it, GET /balloon and
 * GET /balloon/statistics.
 *
 * Before the start the balloon is a `--device virtio-balloon,amount_mib=N,
 * deflate_on_oom=on|off,stats_polling_interval_s=N,free_page_reporting=
 * on|off` spec among the model's other devices (api->extra, as vsock); a
 * second PUT replaces it, and a command line's --device virtio-balloon is
 * the same entry.  After the start the requests go to the device
 * (vm_balloon_*, core/vm.h), and a PATCH also rewrites the spec in the
 * model and in vm->cfg, so GET /vm/config and a snapshot's configuration
 * show the new values.  GET /balloon answers Firecracker's fields and,
 * once running, actual_mib and actual_pages (Petrel's: what the guest
 * holds). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fc_priv.h"
#include "core/opts.h"
#include "core/vm_config.h"

#define BALLOON_SPEC "virtio-balloon"
#define STATS_MAX_S 86400

struct balloon_cfg {
    uint64_t mib;
    bool oom, reporting;
    unsigned interval_s;
};

/* The options of a spec (the device checked them, or will). */
static void parse_spec(const char *spec, struct balloon_cfg *c)
{
    memset(c, 0, sizeof(*c));
    const char *p = spec + strlen(BALLOON_SPEC);
    if (*p == ',')
        p++;
    char item[128];
    struct err e;
    while (opts_next(&p, item, sizeof(item), &e) > 0) {
        char *val;
        opts_split(item, &val);
        unsigned long long n = val ? strtoull(val, NULL, 10) : 0;
        if (!strcmp(item, "amount_mib"))
            c->mib = n;
        else if (!strcmp(item, "stats_polling_interval_s"))
            c->interval_s = (unsigned)n;
        else if (!strcmp(item, "deflate_on_oom"))
            c->oom = !val || opts_bool(val) == 1;
        else if (!strcmp(item, "free_page_reporting"))
            c->reporting = !val || opts_bool(val) == 1;
    }
}

static char *make_spec(const struct balloon_cfg *c)
{
    char *s;
    if (asprintf(&s, BALLOON_SPEC ",amount_mib=%llu,deflate_on_oom=%s,"
                 "stats_polling_interval_s=%u,free_page_reporting=%s",
                 (unsigned long long)c->mib, c->oom ? "on" : "off", c->interval_s,
                 c->reporting ? "on" : "off") < 0)
        return NULL;
    return s;
}

static int check_interval(struct fc_req *q, const char *field, json_t *v)
{
    if (json_integer_value(v) > STATS_MAX_S)
        return fc_fail_field(q, field, "expected at most %d seconds", STATS_MAX_S);
    return 0;
}

static int check_amount(struct fc_req *q, const char *field, json_t *v)
{
    if (json_integer_value(v) > FC_MEM_MAX_MIB)
        return fc_fail_field(q, field, "expected at most %d MiB", FC_MEM_MAX_MIB);
    return 0;
}

static const struct fc_field balloon_fields[] = {
    { "amount_mib", FT_UINT, .required = true, .check = check_amount },
    { "deflate_on_oom", FT_BOOL, .required = true },
    { "stats_polling_interval_s", FT_UINT, .required = false, .check = check_interval },
    { "free_page_reporting", FT_BOOL, .required = false },
    { "free_page_hinting", FT_BOOL, .required = false, .why = "free page hinting is not supported by Petrel (use "
      "free_page_reporting)" },
    { 0 },
};

static int too_large(struct fc_req *q, uint64_t mib, uint64_t ram_mib)
{
    return fc_fail_field(q, "amount_mib", "%llu MiB is larger than the guest's RAM (%llu MiB)",
                         (unsigned long long)mib, (unsigned long long)ram_mib);
}

static int apply_put(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    int at = fc_device_at(api->extra, api->nextra, BALLOON_SPEC);
    int r = fc_extra_room(q, at);
    if (r < 0)
        return r;
    struct balloon_cfg c = {
        .mib = (uint64_t)json_integer_value(fc_jget(o, "amount_mib")),
        .oom = fc_jget_bool(o, "deflate_on_oom", false),
        .reporting = fc_jget_bool(o, "free_page_reporting", false),
        .interval_s = (unsigned)json_integer_value(fc_jget(o, "stats_polling_interval_s")),
    };
    if (c.mib > api->mem_size_mib)
        return too_large(q, c.mib, api->mem_size_mib);
    char *spec = make_spec(&c);
    if (!spec)
        return fc_oom(q);
    fc_extra_put(api, at, spec);
    return 0;
}

/* After a PATCH: the model's spec and vm->cfg's say c. */
static int update_specs(struct fc_req *q, const struct balloon_cfg *c)
{
    struct fc_api *api = q->api;
    char *spec = make_spec(c);
    if (!spec)
        return fc_oom(q);
    int at = fc_device_at(api->extra, api->nextra, BALLOON_SPEC);
    int k = fc_device_at(api->vm->cfg.devices, api->vm->cfg.ndevices, BALLOON_SPEC);
    int ret = k < 0 ? 0 : vm_config_set(&api->vm->cfg.devices[k], spec);
    if (at >= 0) {
        free(api->extra[at]);
        api->extra[at] = spec;
    } else {
        free(spec);
    }
    return ret < 0 ? fc_oom(q) : 0;
}

/* The running balloon's state, or a 400. */
static int running(struct fc_req *q, struct vm_balloon_info *bi)
{
    if (!fc_started(q->api))
        return fc_fail(q, "%s", FC_MSG_PRE_BOOT);
    struct err de;
    if (vm_balloon_info(q->api->vm, bi, &de) < 0)
        return fc_fail(q, "No balloon device: %s.", de.msg);
    return 0;
}

static void cfg_of(const struct vm_balloon_info *bi, struct balloon_cfg *c)
{
    c->mib = bi->target_pages >> 8;
    c->oom = bi->deflate_on_oom;
    c->reporting = bi->free_page_reporting;
    c->interval_s = bi->stats_interval_s;
}

static const struct fc_field patch_fields[] = {
    { "amount_mib", FT_UINT, .required = true, .check = check_amount },
    { 0 },
};

static int apply_patch(struct fc_req *q, json_t *o)
{
    struct vm_balloon_info bi;
    int ret = running(q, &bi);
    if (ret < 0)
        return ret;
    uint64_t mib = (uint64_t)json_integer_value(fc_jget(o, "amount_mib"));
    if (mib > bi.ram_bytes >> 20)
        return too_large(q, mib, bi.ram_bytes >> 20);
    struct err de;
    if ((ret = vm_balloon_set_target(q->api->vm, mib, &de)) < 0)
        return fc_fail(q, "%s", de.msg);
    struct balloon_cfg c;
    cfg_of(&bi, &c);
    c.mib = mib;
    return update_specs(q, &c);
}

static const struct fc_field stats_fields[] = {
    { "stats_polling_interval_s", FT_UINT, .required = true, .check = check_interval },
    { 0 },
};

static int apply_stats_patch(struct fc_req *q, json_t *o)
{
    struct vm_balloon_info bi;
    int ret = running(q, &bi);
    if (ret < 0)
        return ret;
    unsigned s = (unsigned)json_integer_value(fc_jget(o, "stats_polling_interval_s"));
    struct err de;
    if ((ret = vm_balloon_set_stats_interval(q->api->vm, s, &de)) < 0)
        return fc_fail_field(q, "stats_polling_interval_s", "%s", de.msg);
    struct balloon_cfg c;
    cfg_of(&bi, &c);
    c.interval_s = s;
    return update_specs(q, &c);
}

const struct fc_res fc_balloon_put = { balloon_fields, false, apply_put };
const struct fc_res fc_balloon_patch = { patch_fields, false, apply_patch };
const struct fc_res fc_balloon_stats_patch = { stats_fields, false, apply_stats_patch };

/* ---- GET ------------------------------------------------------------------ */

int fc_balloon_get(struct fc_req *q, json_t **out)
{
    struct fc_api *api = q->api;
    struct balloon_cfg c;
    struct vm_balloon_info bi;
    bool live = fc_started(api);
    if (live) {
        int ret = running(q, &bi);
        if (ret < 0)
            return ret;
        cfg_of(&bi, &c);
    } else {
        int at = fc_device_at(api->extra, api->nextra, BALLOON_SPEC);
        if (at < 0)
            return fc_fail(q, "No balloon device configured (PUT /balloon first).");
        parse_spec(api->extra[at], &c);
    }
    json_t *o = json_object();
    bool ok = o && fc_jset(o, "amount_mib", json_integer((json_int_t)c.mib)) &&
              fc_jset(o, "deflate_on_oom", json_boolean(c.oom)) &&
              fc_jset(o, "stats_polling_interval_s", json_integer(c.interval_s)) &&
              fc_jset(o, "free_page_reporting", json_boolean(c.reporting));
    if (ok && live)
        ok = fc_jset(o, "actual_mib", json_integer(bi.actual_pages >> 8)) &&
             fc_jset(o, "actual_pages", json_integer(bi.actual_pages));
    *out = fc_jdone(o, ok);
    return *out ? 0 : fc_oom(q);
}

bool fc_balloon_config_json(const struct fc_api *api, json_t *o)
{
    int at = fc_device_at(api->extra, api->nextra, BALLOON_SPEC);
    if (at < 0)
        return true;
    struct balloon_cfg c;
    parse_spec(api->extra[at], &c);
    json_t *b = json_object();
    return b && fc_jset(o, "balloon", b) &&
           fc_jset(b, "amount_mib", json_integer((json_int_t)c.mib)) &&
           fc_jset(b, "deflate_on_oom", json_boolean(c.oom)) &&
           fc_jset(b, "stats_polling_interval_s", json_integer(c.interval_s)) &&
           fc_jset(b, "free_page_reporting", json_boolean(c.reporting));
}

/* Firecracker's names for the virtio statistics tags. */
static const char *const stat_names[VM_BALLOON_NSTATS] = {
    "swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
    "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures", "oom_kill",
    "alloc_stall", "async_scan", "direct_scan", "async_reclaim", "direct_reclaim",
};

int fc_balloon_stats_get(struct fc_req *q, json_t **out)
{
    struct vm_balloon_info bi;
    int ret = running(q, &bi);
    if (ret < 0)
        return ret;
    if (!bi.stats_interval_s)
        return fc_fail(q, "Statistics for the balloon device are not enabled "
                       "(stats_polling_interval_s was 0 at the start).");
    json_t *o = json_object();
    bool ok = o && fc_jset(o, "target_pages", json_integer(bi.target_pages)) &&
              fc_jset(o, "actual_pages", json_integer(bi.actual_pages)) &&
              fc_jset(o, "target_mib", json_integer(bi.target_pages >> 8)) &&
              fc_jset(o, "actual_mib", json_integer(bi.actual_pages >> 8));
    for (unsigned i = 0; ok && i < VM_BALLOON_NSTATS; i++)
        if (bi.stats_have >> i & 1)
            ok = fc_jset(o, stat_names[i], json_integer((json_int_t)bi.stats[i]));
    *out = fc_jdone(o, ok);
    return *out ? 0 : fc_oom(q);
}
