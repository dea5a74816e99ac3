/* `petrel serve`'s REST API under /api/v1 (docs/serve.md): the VMs of the
 * state directory, through `petrel vm`'s own code (cli/vm_ops.h).
 *
 * Threads: any connection thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/vm_def.h"
#include "cli/vm_ops.h"
#include "serve/serve_priv.h"

#define MAX_ARGS 32

/* The status for a failed operation: 404 for a VM that is not there, 409
 * for one in the wrong state, else 400. */
static unsigned fail_status(const struct err *e)
{
    if (strstr(e->msg, "no VM named"))
        return 404;
    if (strstr(e->msg, "is not running") || strstr(e->msg, "already running") ||
        strstr(e->msg, "is running") || strstr(e->msg, "already exists") ||
        strstr(e->msg, "is starting") || strstr(e->msg, "while it runs") ||
        strstr(e->msg, "must not be running") || strstr(e->msg, "lock"))
        return 409;
    return 400;
}

/* Run `petrel vm ARGV`; answer {"ok": true, "message": its output}. */
static enum MHD_Result run_cmd(struct srv_req *r, int argc, char **argv, unsigned ok_status)
{
    struct err e = { "" };
    char *out = NULL;
    if (vm_ops_cmd(argc, argv, &out, &e)) {
        free(out);
        return srv_error(r, fail_status(&e), "%s", e.msg);
    }
    json_t *j = json_pack("{s:b}", "ok", 1);
    size_t n = out ? strlen(out) : 0;
    while (n && out[n - 1] == '\n')
        out[--n] = 0;
    if (n)
        json_object_set_new(j, "message", json_string(out));
    free(out);
    return srv_json(r, ok_status, j);
}

static json_t *body_json(struct srv_req *r, bool *bad)
{
    *bad = false;
    if (!r->len)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        *bad = true;
        return NULL;
    }
    return j;
}

/* [A-Za-z0-9_.-]{1,32}: what may go into a --device spec from a request. */
static bool word_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 32)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

/* A number or a string field as a command-line value into buf. */
static const char *field(json_t *o, const char *key, char *buf, size_t len, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < len && json_string_length(v) &&
             !memchr(json_string_value(v), 0, json_string_length(v)) &&
             json_string_value(v)[0] != '-')
        snprintf(buf, len, "%s", json_string_value(v));
    else
        *bad = true;
    return *bad ? NULL : buf;
}

/* POST /api/v1/vms {"name", "vcpus", "memory", "disk_size", "base",
 * "network": "nat"|"none"|"private:NET"|"tap:IFACE", "autostart", "display"} */
static enum MHD_Result create_vm(struct srv_req *r)
{
    bool bad;
    json_t *b = body_json(r, &bad);
    if (bad)
        return srv_error(r, 400, "the body must be a JSON object");
    static const char *const known[] = { "name", "vcpus", "memory", "memory_mib", "disk_size",
                                         "base", "network", "autostart", "display" };
    const char *key;
    json_t *val;
    json_object_foreach(b, key, val) {
        bool k = false;
        for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            k |= !strcmp(key, known[i]);
        if (!k) {
            enum MHD_Result ret = srv_error(r, 400, "unknown field '%.64s'", key);
            json_decref(b);
            return ret;
        }
    }
    char name[80], cpus[32], mem[32], size[32], base[1024], net[64], dev[128];
    bad = false;
    const char *n = field(b, "name", name, sizeof(name), &bad);
    const char *c = field(b, "vcpus", cpus, sizeof(cpus), &bad);
    const char *m = field(b, "memory", mem, sizeof(mem), &bad);
    json_t *mib = json_object_get(b, "memory_mib");
    if (!m && json_is_integer(mib)) {
        snprintf(mem, sizeof(mem), "%lldM", (long long)json_integer_value(mib));
        m = mem;
    }
    const char *sz = field(b, "disk_size", size, sizeof(size), &bad);
    const char *bs = field(b, "base", base, sizeof(base), &bad);
    const char *nw = field(b, "network", net, sizeof(net), &bad);
    json_t *as = json_object_get(b, "autostart"), *ds = json_object_get(b, "display");
    if (bad || !n || (as && !json_is_boolean(as)) || (ds && !json_is_boolean(ds))) {
        json_decref(b);
        return srv_error(r, 400, bad ? "fields must be numbers or strings not starting with '-'"
                                     : !n ? "missing \"name\""
                                     : "\"autostart\" and \"display\" must be booleans");
    }
    char *argv[MAX_ARGS] = { "create", name };
    int argc = 2;
    if (c)
        argv[argc++] = "--cpus", argv[argc++] = cpus;
    if (m)
        argv[argc++] = "--memory", argv[argc++] = mem;
    if (sz)
        argv[argc++] = "--disk-size", argv[argc++] = size;
    if (bs)
        argv[argc++] = "--base", argv[argc++] = base;
    if (json_is_true(as))
        argv[argc++] = "--autostart";
    if (json_is_true(ds))
        argv[argc++] = "--display";
    if (nw && strcmp(nw, "nat")) {
        if (!strcmp(nw, "none")) {
            argv[argc++] = "--no-net";
        } else if (!strncmp(nw, "private:", 8) && word_ok(nw + 8)) {
            snprintf(dev, sizeof(dev), "virtio-net,net=private,name=%s", nw + 8);
            argv[argc++] = "--device", argv[argc++] = dev;
        } else if (!strncmp(nw, "tap:", 4) && word_ok(nw + 4)) {
            snprintf(dev, sizeof(dev), "virtio-net,net=tap,ifname=%s", nw + 4);
            argv[argc++] = "--device", argv[argc++] = dev;
        } else {
            json_decref(b);
            return srv_error(r, 400, "\"network\": nat, none, private:NAME or tap:IFACE");
        }
    }
    argv[argc] = NULL;
    json_decref(b);
    if (!vm_name_valid(name))
        return srv_error(r, 400, "invalid VM name (1 to %d characters: letters, digits, '_', "
                         "'.', '-'; starting with a letter or digit)", VM_NAME_MAX);
    return run_cmd(r, argc, argv, 201);
}

static enum MHD_Result list_vms(struct srv_req *r)
{
    json_t *arr;
    struct err e = { "" };
    if (vm_ops_list(&arr, &e))
        return srv_error(r, 500, "%s", e.msg);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
        rrd_latest(json_string_value(json_object_get(o, "name")), o);
    return srv_json(r, 200, arr);
}

/* POST /api/v1/vms/NAME/ACTION */
static enum MHD_Result action(struct srv_req *r, char *name, const char *act)
{
    bool bad;
    json_t *b = body_json(r, &bad);
    if (bad)
        return srv_error(r, 400, "the body must be a JSON object");
    char *argv[MAX_ARGS] = { (char *)act, name };
    int argc = 2;
    char a1[80], a2[80];
    enum MHD_Result ret;
    static const char *const simple[] = { "start", "kill", "pause", "resume" };
    for (unsigned i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
        if (!strcmp(act, simple[i])) {
            json_decref(b);
            return run_cmd(r, argc, argv, 200);
        }
    bad = false;
    if (!strcmp(act, "stop")) {
        json_t *force = json_object_get(b, "force");
        if (field(b, "timeout_s", a1, sizeof(a1), &bad))
            argv[argc++] = "--timeout", argv[argc++] = a1;
        if (json_is_true(force))
            argv[argc++] = "--force";
    } else if (!strcmp(act, "snapshot")) {
        if (field(b, "tag", a1, sizeof(a1), &bad))
            argv[argc++] = a1;
        if (json_is_true(json_object_get(b, "diff")))
            argv[argc++] = "--diff";
    } else if (!strcmp(act, "clone")) {
        if (!field(b, "name", a1, sizeof(a1), &bad) && !bad) {
            json_decref(b);
            return srv_error(r, 400, "missing \"name\" (the new VM's)");
        }
        argv[argc++] = a1;
        if (field(b, "from", a2, sizeof(a2), &bad))
            argv[argc++] = "--from", argv[argc++] = a2;
    } else if (!strcmp(act, "revert")) {
        if (!field(b, "tag", a1, sizeof(a1), &bad) && !bad) {
            json_decref(b);
            return srv_error(r, 400, "missing \"tag\"");
        }
        argv[argc++] = a1;
    } else {
        json_decref(b);
        return srv_error(r, 404, "no such action '%.32s'", act);
    }
    json_decref(b);
    if (bad)
        return srv_error(r, 400, "fields must be numbers or strings not starting with '-'");
    argv[argc] = NULL;
    ret = run_cmd(r, argc, argv, !strcmp(act, "clone") ? 201 : 200);
    return ret;
}

static enum MHD_Result snapshots(struct srv_req *r, char *name)
{
    char *argv[] = { "snapshots", name, "--json", NULL };
    struct err e = { "" };
    char *out = NULL;
    if (vm_ops_cmd(3, argv, &out, &e)) {
        free(out);
        return srv_error(r, fail_status(&e), "%s", e.msg);
    }
    json_t *j = out ? json_loads(out, 0, NULL) : json_array();
    free(out);
    return j ? srv_json(r, 200, j) : srv_error(r, 500, "bad snapshot listing");
}

enum MHD_Result api_handle(struct srv_req *r, const char *rest)
{
    bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    if (!strcmp(rest, "session"))
        return get ? srv_json(r, 200, json_pack("{s:s}", "csrf", r->csrf))
                   : srv_error(r, 405, "method not allowed");
    if (!strcmp(rest, "vms")) {
        if (get)
            return list_vms(r);
        if (!strcmp(r->method, "POST"))
            return create_vm(r);
        return srv_error(r, 405, "method not allowed");
    }
    if (strncmp(rest, "vms/", 4))
        return srv_error(r, 404, "no such API path");
    char name[VM_NAME_MAX + 1], sub[32];
    const char *p = rest + 4, *slash = strchr(p, '/');
    size_t nl = slash ? (size_t)(slash - p) : strlen(p);
    if (nl > VM_NAME_MAX || (slash && (strlen(slash + 1) >= sizeof(sub) || strchr(slash + 1, '/'))))
        return srv_error(r, 404, "no such API path");
    memcpy(name, p, nl);
    name[nl] = 0;
    snprintf(sub, sizeof(sub), "%s", slash ? slash + 1 : "");
    if (!vm_name_valid(name))
        return srv_error(r, 404, "no such VM (invalid name)");
    struct err e = { "" };
    if (!sub[0]) {
        if (get) {
            json_t *j;
            if (vm_ops_info(name, &j, &e))
                return srv_error(r, fail_status(&e), "%s", e.msg);
            rrd_latest(name, j);
            return srv_json(r, 200, j);
        }
        if (!strcmp(r->method, "DELETE")) {
            char *argv[] = { "delete", name, NULL };
            return run_cmd(r, 2, argv, 200);
        }
        return srv_error(r, 405, "method not allowed");
    }
    if (get) {
        if (!strcmp(sub, "console"))
            return ws_console(r, name);
        if (!strcmp(sub, "vnc"))
            return ws_vnc(r, name);
        if (!strcmp(sub, "snapshots"))
            return snapshots(r, name);
        if (!strcmp(sub, "rrd")) {
            if (vm_ops_exists(name, &e))
                return srv_error(r, 404, "%s", e.msg);
            const char *s = srv_query(r, "seconds");
            unsigned secs = s ? (unsigned)strtoul(s, NULL, 10) : SRV_RRD_SECONDS;
            json_t *j = rrd_series(name, secs ? secs : SRV_RRD_SECONDS);
            return srv_json(r, 200, j);
        }
        return srv_error(r, 404, "no such API path");
    }
    if (!strcmp(r->method, "POST"))
        return action(r, name, sub);
    return srv_error(r, 405, "method not allowed");
}
