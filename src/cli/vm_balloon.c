/* `petrel vm balloon NAME [SIZE]`: show or set a running VM's memory
 * balloon through its VMM's API (GET/PATCH /balloon, GET
 * /balloon/statistics; src/api/fc_balloon.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/vm_client.h"
#include "cli/vm_priv.h"
#include "core/opts.h"

static json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static int show(const char *name, const char *api)
{
    struct err e = { "" };
    json_t *b = NULL, *s = NULL;
    if (vm_client_get_json(api, "/balloon", API_TIMEOUT_MS, &b, &e) < 0)
        return vmx_fail("%s: %s", name, e.msg);
    char t[32], a[32];
    vmx_fmt_mib(t, sizeof(t), (unsigned long long)jint(b, "amount_mib"));
    vmx_fmt_mib(a, sizeof(a), (unsigned long long)jint(b, "actual_mib"));
    json_int_t interval = jint(b, "stats_polling_interval_s");
    printf("target:               %s\n", t);
    printf("actual:               %s (%lld pages of 4 KiB)\n", a,
           (long long)jint(b, "actual_pages"));
    printf("deflate on OOM:       %s\n", json_is_true(json_object_get(b, "deflate_on_oom"))
                                         ? "on" : "off");
    printf("free page reporting:  %s\n", json_is_true(json_object_get(b, "free_page_reporting"))
                                         ? "on" : "off");
    if (!interval) {
        printf("statistics:           off\n");
    } else if (vm_client_get_json(api, "/balloon/statistics", API_TIMEOUT_MS, &s, &e) == 0) {
        printf("statistics:           every %lld s\n", (long long)interval);
        static const char *const mem[][2] = {
            { "total_memory", "guest memory total" }, { "free_memory", "guest memory free" },
            { "available_memory", "guest memory avail." }, { "disk_caches", "guest disk caches" },
        };
        for (unsigned i = 0; i < sizeof(mem) / sizeof(mem[0]); i++)
            if (json_object_get(s, mem[i][0])) {
                char v[32];
                vmx_fmt_bytes(v, sizeof(v), (uint64_t)jint(s, mem[i][0]));
                printf("%-21s %s\n", mem[i][1], v);
            }
        static const char *const cnt[] = { "major_faults", "minor_faults", "swap_in",
                                           "swap_out", "oom_kill" };
        for (unsigned i = 0; i < sizeof(cnt) / sizeof(cnt[0]); i++)
            if (json_object_get(s, cnt[i]))
                printf("%-21s %lld\n", cnt[i], (long long)jint(s, cnt[i]));
    } else {
        printf("statistics:           every %lld s (%s)\n", (long long)interval, e.msg);
    }
    json_decref(b);
    json_decref(s);
    return 0;
}

int vmx_cmd_balloon(struct vmx *x, int argc, char **argv)
{
    bool none;
    int i = vmx_flag_opt("balloon", argc, argv, NULL, 0, &none);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *size = argc - i == 2 ? argv[argc - 1] : NULL;
    uint64_t bytes = 0;
    if (size) {
        int r = opts_size(size, 20, &bytes);
        if (r < 0 || bytes % (1u << 20))
            return vmx_usage_err("balloon", "invalid SIZE '%s' (whole MiB, e.g. 256M or 1G; a "
                                 "bare number is MiB)", size);
    }
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    if (vmx_named_vm(x, "balloon", size ? argc - 1 : argc, argv, i, dir, sizeof(dir), &rt,
                     API_TIMEOUT_MS))
        return 1;
    const char *name = argv[i];
    int rc = vmx_need_running(name, &rt);
    if (!rc && size) {
        json_t *body = json_pack("{s:I}", "amount_mib", (json_int_t)(bytes >> 20));
        struct err e = { "" };
        if (vm_client_call(rt.api, "PATCH", "/balloon", body, API_TIMEOUT_MS, &e) < 0)
            rc = vmx_fail("%s: %s", name, e.msg);
        json_decref(body);
    } else if (!rc) {
        rc = show(name, rt.api);
    }
    vmx_rt_free(&rt);
    return rc;
}
