/* Firecracker's vsock resource: PUT /vsock, and a config file's "vsock".
 *
 * {"guest_cid": N (3 to 2^32 - 2), "uds_path": PATH, "vsock_id": ID} before
 * the VM started; vsock_id is Firecracker's deprecated id, checked and
 * otherwise ignored.  The device becomes a `--device
 * virtio-vsock,cid=N,uds=PATH` spec among the model's other devices
 * (api->extra, which InstanceStart copies into vm->cfg); a second PUT
 * replaces it, and a command line's --device virtio-vsock is the same
 * entry.  The device's own checks (the path, its socket) run at
 * InstanceStart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fc_priv.h"
#include "core/vm_config.h"

#define VSOCK_SPEC "virtio-vsock"
#define VSOCK_UDS_MAX 96        /* sun_path, less room for "_<port>" */

static int check_cid(struct fc_req *q, const char *field, json_t *v)
{
    json_int_t n = json_integer_value(v);
    if (n < 3 || n > 0xfffffffell)
        return fc_fail_field(q, field, "expected a CID from 3 to 4294967294 (0-2 are reserved)");
    return 0;
}

static int check_uds(struct fc_req *q, const char *field, json_t *v)
{
    size_t n = strlen(json_string_value(v));
    if (n == 0 || n > VSOCK_UDS_MAX)
        return fc_fail_field(q, field, "expected a unix socket path of 1 to %d bytes",
                             VSOCK_UDS_MAX);
    return 0;
}

static int check_vsock_id(struct fc_req *q, const char *field, json_t *v)
{
    return fc_check_id(q, field, json_string_value(v));
}

static const struct fc_field vsock_fields[] = {
    { "guest_cid", FT_UINT, .required = true, .check = check_cid },
    { "uds_path", FT_STR, .required = true, .check = check_uds },
    { "vsock_id", FT_STR, .check = check_vsock_id },
    { 0 },
};

static int apply_vsock(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    if (fc_started(api))
        return fc_fail(q, "%s", FC_MSG_POST_BOOT);
    int at = fc_device_at(api->extra, api->nextra, VSOCK_SPEC);
    int r = fc_extra_room(q, at);
    if (r < 0)
        return r;
    /* a comma in the path is written twice in an option string */
    const char *uds = fc_jget_str(o, "uds_path");
    char path[2 * VSOCK_UDS_MAX + 1], *p = path;
    for (const char *s = uds; *s; s++) {
        if (*s == ',')
            *p++ = ',';
        *p++ = *s;
    }
    *p = 0;
    char *spec;
    if (asprintf(&spec, VSOCK_SPEC ",cid=%lld,uds=%s",
                 (long long)json_integer_value(fc_jget(o, "guest_cid")), path) < 0)
        return fc_oom(q);
    fc_extra_put(api, at, spec);
    return 0;
}

const struct fc_res fc_vsock = { vsock_fields, false, apply_vsock };
