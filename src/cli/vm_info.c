/* `petrel vm list` and `info`'s cores (vm_priv.h: vmx_vm_summary,
 * vmx_vm_info): a VM's state and definition as JSON, for the commands and
 * for `petrel serve` (vm_ops.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/vm_priv.h"
#include "sandbox/cgroup.h"

static long long rt_uptime(const struct vm_rt *rt)
{
    json_t *v = rt->info ? json_object_get(rt->info, "uptime_s") : NULL;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return -1;
}

json_t *vmx_vm_summary(const struct vmx *x, const char *name, long api_timeout_ms,
                       struct err *load_err)
{
    char dir[PATH_MAX + 80], file[PATH_MAX + 96];
    struct vm_def d;
    struct err e = { "" };
    vmx_vm_dir(x, name, dir, sizeof(dir));
    vmx_fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
    bool ok = vm_def_load(&d, file, name, &e) == 0;
    struct vm_rt rt;
    vmx_rt_get(dir, &rt, api_timeout_ms);
    const char *state = vmx_st_names[rt.st];
    long long up = rt.st == ST_RUNNING || rt.st == ST_PAUSED ? rt_uptime(&rt) : -1;
    long long port = vmx_rt_active(&rt) ? rt.ssh_port : 0;
    if (!ok) {
        if (load_err)
            *load_err = e;
        state = vmx_rt_active(&rt) ? state : "invalid";
    }
    json_t *o = json_pack("{s:s, s:s}", "name", name, "state", state);
    if (o) {
        json_object_set_new(o, "arch", ok ? json_string(d.arch) : json_null());
        json_object_set_new(o, "vcpus", ok ? json_integer(d.vcpus) : json_null());
        json_object_set_new(o, "memory_mib", ok ? json_integer(d.memory_mib) : json_null());
        json_object_set_new(o, "uptime_s", up >= 0 ? json_integer(up) : json_null());
        json_object_set_new(o, "ssh_port", port ? json_integer(port) : json_null());
        json_object_set_new(o, "pid", vmx_rt_active(&rt) && rt.pid ? json_integer(rt.pid)
                                                                   : json_null());
        json_object_set_new(o, "autostart", ok ? json_boolean(d.autostart) : json_null());
        json_object_set_new(o, "display", ok ? json_boolean(d.display) : json_null());
        json_object_set_new(o, "error", ok ? json_null() : json_string(e.msg));
    }
    vmx_rt_free(&rt);
    if (ok)
        vm_def_free(&d);
    return o;
}

/* "resources": the definition's limits and the live figures of the VMM's
 * cgroups (or of the cgroups a killed VMM left: "vmm_gone"). */
static json_t *resources_json(const struct vm_def *d, const struct vm_rt *rt)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "limits", vm_def_limits_json(&d->limits));
    struct cg_usage u;
    bool alive = rt->pid > 0 && (kill((pid_t)rt->pid, 0) == 0 || errno == EPERM);
    int r = -ENOENT;
    if (rt->pid > 0)
        r = alive ? cg_usage((pid_t)rt->pid, &u) : cg_usage_stale((pid_t)rt->pid, &u);
    if (r < 0) {
        json_object_set_new(o, "cgroup", json_null());
        return o;
    }
#define LL(v) ((v) >= 0 ? json_integer(v) : json_null())
    json_t *c = json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                          "path", u.path, "vmm_gone", !alive,
                          "cpu_time_s", u.cpu_usage_ns >= 0 ? json_real(u.cpu_usage_ns / 1e9)
                                                            : json_null(),
                          "cpu_quota_us", LL(u.cpu_quota_us),
                          "cpu_period_us", LL(u.cpu_period_us),
                          "cpu_throttled_periods", LL(u.nr_throttled),
                          "memory_current_bytes", LL(u.mem_current),
                          "memory_peak_bytes", LL(u.mem_peak),
                          "memory_max_bytes", LL(u.mem_max),
                          "oom_kills", LL(u.oom_kills),
                          "pids_current", LL(u.pids_current),
                          "pids_max", LL(u.pids_max));
#undef LL
    json_object_set_new(o, "cgroup", c ? c : json_null());
    if (!alive && u.oom_kills > 0)
        json_object_set_new(o, "note", json_string("the VMM was killed by the kernel's OOM "
                                                   "killer: it reached its memory limit "
                                                   "(limits.memory_max_mib)"));
    return o;
}

json_t *vmx_vm_info(struct vmx *x, const char *name)
{
    char dir[PATH_MAX + 80];
    struct vm_def d;
    if (vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return NULL;
    struct vm_rt rt;
    vmx_rt_get(dir, &rt, API_TIMEOUT_MS);
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", name, "dir", dir, "state",
                          vmx_st_names[rt.st]);
    struct strv tags = { 0 };
    if (vmx_snap_list(dir, &tags)) {
        vmx_rt_free(&rt);
        vm_def_free(&d);
        json_decref(o);
        return NULL;
    }
    if (o) {
        json_object_set_new(o, "definition", vm_def_to_json(&d));
        json_object_set(o, "run", rt.run ? rt.run : json_null());
        json_object_set(o, "vmm", rt.info ? rt.info : json_null());
        json_object_set_new(o, "snapshots", json_integer(tags.n));
        json_object_set_new(o, "resources", resources_json(&d, &rt));
        json_object_set_new(o, "cloned_from",
                            d.cloned_from_vm
                                ? json_pack("{s:s, s:o, s:b}", "vm", d.cloned_from_vm,
                                            "snapshot", d.cloned_from_snapshot
                                                            ? json_string(d.cloned_from_snapshot)
                                                            : json_null(),
                                            "first_start_pending", d.restore_from != NULL)
                                : json_null());
    }
    vmx_strv_free(&tags);
    vmx_rt_free(&rt);
    vm_def_free(&d);
    if (!o)
        vmx_fail("out of memory");
    return o;
}

