/* Firecracker's snapshot resources: PUT /snapshot/create and PUT
 * /snapshot/load (docs/snapshots.md).
 *
 * create: {"snapshot_type": "Full"|"Diff", "snapshot_path", "mem_file_path"}
 * on a paused VM, plus Petrel's "tag" (the name of the internal snapshot
 * its qcow2 disks get; made up when absent).  Firecracker's deprecated
 * "version" is accepted and ignored.
 * load: {"snapshot_path", "mem_file_path" | "mem_backend": {"backend_path",
 * "backend_type": "File"}, "enable_diff_snapshots", "track_dirty_pages",
 * "resume_vm"} before the VM started; the machine is the snapshot's, the
 * configuration given so far is replaced.  Dirty pages are always tracked
 * on riscv64, so the two diff flags change nothing.  "Uffd" backends and
 * "network_overrides" are refused. */
#include <string.h>

#include "api/fc_priv.h"
#include "core/snapshot.h"
#include "core/vm.h"

static const struct fc_choice snap_types = { { "Full", "Diff" }, false, "`Full` or `Diff`" };

static int check_path(struct fc_req *q, const char *field, json_t *v)
{
    size_t n = strlen(json_string_value(v));
    if (n == 0 || n > FC_PATH_MAX)
        return fc_fail_field(q, field, "expected a path of 1 to %d bytes", FC_PATH_MAX);
    return 0;
}

static int check_tag(struct fc_req *q, const char *field, json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (!n || n > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-") != n)
        return fc_fail_field(q, field, "expected 1 to 64 letters, digits, '.', '_' or '-'");
    return 0;
}

static const struct fc_field create_fields[] = {
    { "snapshot_type", FT_STR, .choice = &snap_types },
    { "snapshot_path", FT_STR, .required = true, .check = check_path },
    { "mem_file_path", FT_STR, .required = true, .check = check_path },
    { "version", FT_STR, .required = false },
    { "tag", FT_STR, .check = check_tag },
    { 0 },
};

static int snapshot_create(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    if (!fc_started(api))
        return fc_fail(q, "%s", FC_MSG_PRE_BOOT);
    if (!api->ops->snapshot)
        return fc_fail(q, "snapshots are not available here");
    struct vm_snapshot_params p = {
        .state_path = fc_jget_str(o, "snapshot_path"),
        .mem_path = fc_jget_str(o, "mem_file_path"),
        .type = fc_jget_choice(o, "snapshot_type", &snap_types, 0) == 1 ? SNAP_DIFF : SNAP_FULL,
        .tag = fc_jget_str(o, "tag"),
    };
    return api->ops->snapshot(api->vm, &p, q->e);
}

const struct fc_res fc_snapshot_create = { create_fields, false, snapshot_create };

static const struct fc_choice backend_types = { { "File", "Uffd" }, false, NULL };

static const struct fc_field backend_fields[] = {
    { "backend_path", FT_STR, .required = true, .check = check_path },
    { "backend_type", FT_STR, .required = true, .choice = &backend_types },
    { 0 },
};

static int check_backend(struct fc_req *q, const char *field, json_t *v)
{
    struct fc_req sub = *q;
    snprintf(sub.where, sizeof(sub.where), "%s", field);
    return fc_check_object(&sub, v, backend_fields, true);
}

static int check_overrides(struct fc_req *q, const char *field, json_t *v)
{
    if (json_array_size(v))
        return fc_fail_field(q, field, "Petrel does not support network overrides: restore "
                             "with the snapshot's own network devices");
    return 0;
}

static const struct fc_field load_fields[] = {
    { "snapshot_path", FT_STR, .required = true, .check = check_path },
    { "mem_file_path", FT_STR, .check = check_path },
    { "mem_backend", FT_OBJ, .check = check_backend },
    { "enable_diff_snapshots", FT_BOOL, .required = false },
    { "track_dirty_pages", FT_BOOL, .required = false },
    { "resume_vm", FT_BOOL, .required = false },
    { "network_overrides", FT_ARR, .check = check_overrides },
    { 0 },
};

static int snapshot_load(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    if (fc_started(api))
        return fc_fail(q, "Loading a microVM snapshot is not allowed after the microVM started.");
    if (!api->ops->restore)
        return fc_fail(q, "snapshots are not available here");
    const char *mem = fc_jget_str(o, "mem_file_path");
    json_t *be = fc_jget(o, "mem_backend");
    if (!!mem == !!be)
        return fc_fail(q, "exactly one of `mem_file_path` and `mem_backend` must be given");
    if (be) {
        if (strcmp(fc_jget_str(be, "backend_type"), "File") != 0)
            return fc_fail_field(q, "mem_backend", "Petrel supports only the `File` backend");
        mem = fc_jget_str(be, "backend_path");
    }
    struct vm_restore_params p = {
        .state_path = fc_jget_str(o, "snapshot_path"),
        .mem_path = mem,
        .paused = !fc_jget_bool(o, "resume_vm", false),
    };
    return api->ops->restore(api->vm, &p, q->e);
}

const struct fc_res fc_snapshot_load = { load_fields, false, snapshot_load };
