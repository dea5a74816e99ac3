/* Firecracker's REST API over struct vm (see fc.h for the design):
 * routing, requests and replies, actions, PATCH /vm, the /petrel paths,
 * metrics, set-up.  Bodies are checked in fc_json.c against the
 * resources' fields in fc_model.c; fc_vm.c turns the model into vm->cfg. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/fc_priv.h"
#include "core/version.h"

/* ---- GET bodies ---------------------------------------------------------- */

static json_t *instance_json(const struct fc_api *api)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "id", fc_jstring(api->id)) &&
                       fc_jset(o, "state", json_string(vm_state_name(api->vm->state))) &&
                       fc_jset(o, "vmm_version", json_string(PETREL_VERSION)) &&
                       fc_jset(o, "app_name", json_string("Petrel")));
}

static json_t *version_json(const struct fc_api *api)
{
    (void)api;
    return json_pack("{s:s}", "firecracker_version", PETREL_VERSION);
}

static json_t *info_json(const struct fc_api *api)
{
    json_t *o = json_object();
    return fc_jdone(o, o && fc_jset(o, "id", fc_jstring(api->id)) &&
                       fc_jset(o, "state", json_string(vm_state_name(api->vm->state))) &&
                       fc_jset(o, "arch", fc_jstring(fc_arch(api))) &&
                       fc_jset(o, "vcpu_count", json_integer(api->vcpu_count)) &&
                       fc_jset(o, "mem_size_mib", json_integer(api->mem_size_mib)) &&
                       fc_jset(o, "pid", json_integer(getpid())) &&
                       fc_jset(o, "uptime_s", json_real(vm_uptime(api->vm))) &&
                       fc_jset(o, "api_sock", fc_jstring(api->api_sock)) &&
                       fc_jset(o, "console_sock", fc_jstring(api->console_sock)));
}

/* ---- metrics ------------------------------------------------------------- */

static uint64_t vmm_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size, rss;
    int n = f ? fscanf(f, "%llu %llu", &size, &rss) : 0;
    if (f)
        fclose(f);
    return n == 2 ? rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static bool jset_u64(json_t *o, const char *k, uint64_t v)
{
    return fc_jset(o, k, json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
}

/* The disks' and network cards' counters (vm_dev_stats: none before the
 * machine is built), appended to blk and net. */
static bool dev_metrics(struct vm *vm, json_t *blk, json_t *net)
{
    struct vm_dev_stats st[VM_MAX_STAT_SOURCES];
    unsigned n = vm_dev_stats(vm, st, VM_MAX_STAT_SOURCES);
    for (unsigned i = 0; i < n; i++) {
        const struct vm_dev_stats *d = &st[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(d->kind == VM_DEV_BLOCK ? blk : net, o) < 0 ||
            !fc_jset(o, "id", fc_jstring(d->id)))
            return false;
        if (d->kind == VM_DEV_BLOCK) {
            if (!jset_u64(o, "read_bytes", d->read_bytes) ||
                !jset_u64(o, "write_bytes", d->write_bytes) ||
                !jset_u64(o, "read_ops", d->read_ops) || !jset_u64(o, "write_ops", d->write_ops) ||
                !jset_u64(o, "flush_ops", d->flush_ops) ||
                !jset_u64(o, "read_latency_us_avg",
                          d->read_ops ? d->read_ns / d->read_ops / 1000 : 0) ||
                !jset_u64(o, "write_latency_us_avg",
                          d->write_ops ? d->write_ns / d->write_ops / 1000 : 0))
                return false;
        } else if (!jset_u64(o, "rx_bytes", d->rx_bytes) || !jset_u64(o, "tx_bytes", d->tx_bytes) ||
                   !jset_u64(o, "rx_packets", d->rx_packets) ||
                   !jset_u64(o, "tx_packets", d->tx_packets) ||
                   !jset_u64(o, "rx_drops", d->rx_drops) || !jset_u64(o, "tx_drops", d->tx_drops)) {
            return false;
        }
    }
    return true;
}

/* The metrics object (docs/control-plane.md). */
static json_t *metrics_json(const struct fc_api *api)
{
    struct vm *vm = api->vm;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object(), *cpus = json_array(), *mem = json_object();
    json_t *blk = json_array(), *net = json_array();
    if (!o || !cpus || !mem || !blk || !net)
        goto fail;
    bool kvm = fc_x86(api);
    /* no machine, no CPUs (a VM never started, or one whose start failed) */
    unsigned n = vm->board ? vm_cpu_count(vm) : 0;
    for (unsigned i = 0; i < n; i++) {
        struct vm_cpu_stats st = { 0 };
        vm_cpu_stats(vm, i, &st);
        json_t *c = json_object();
        if (!c || json_array_append_new(cpus, c) < 0 ||
            !jset_u64(c, "cpu_time_ns", st.cpu_time_ns) ||
            !jset_u64(c, kvm ? "exits" : "instructions", kvm ? st.exits : st.instructions))
            goto fail;
    }
    if (!dev_metrics(vm, blk, net) ||
        !fc_jset(o, "utc_timestamp_ms",
              json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) ||
        !fc_jset(o, "uptime_s", json_real(vm_uptime(vm))) ||
        !fc_jset(o, "state", json_string(vm_state_name(vm->state))) ||
        json_object_set(o, "vcpus", cpus) < 0 || json_object_set(o, "memory", mem) < 0 ||
        !jset_u64(mem, "guest_bytes", vm->cfg.mem_size) ||
        !jset_u64(mem, "vmm_rss_bytes", vmm_rss_bytes()) ||
        json_object_set(o, "block", blk) < 0 || json_object_set(o, "net", net) < 0)
        goto fail;
    json_decref(cpus);
    json_decref(mem);
    json_decref(blk);
    json_decref(net);
    return o;
fail:
    json_decref(o);
    json_decref(cpus);
    json_decref(mem);
    json_decref(blk);
    json_decref(net);
    return NULL;
}

static int write_metrics(const struct fc_api *api, struct err *e)
{
    if (api->metrics_fd < 0)
        return err_set(e, -EINVAL, "FlushMetrics: no metrics sink (PUT /metrics first)");
    json_t *m = metrics_json(api);
    char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!s)
        return err_set(e, -ENOMEM, "out of memory");
    size_t len = strlen(s);
    s[len++] = '\n';            /* over the NUL: written by length */
    size_t off = 0;
    int ret = 0;
    while (off < len) {
        ssize_t w = write(api->metrics_fd, s + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ret = err_set(e, w < 0 ? -errno : -EIO, "cannot write metrics to `%s`: %s",
                          api->metrics_path, w < 0 && errno == EAGAIN ?
                          "the FIFO is full (nobody reads it)" : strerror(w < 0 ? errno : EIO));
            break;
        }
        off += (size_t)w;
    }
    free(s);
    return ret;
}

static void metrics_tick(void *opaque)
{
    struct fc_api *api = opaque;
    struct err e;
    if (write_metrics(api, &e) < 0)
        log_debug("api: %s", e.msg);
}

/* ---- actions, /vm, /petrel/stop ------------------------------------------ */

enum { ACT_INSTANCE_START, ACT_SEND_CTRL_ALT_DEL, ACT_FLUSH_METRICS };
static const struct fc_choice action_types = {
    { "InstanceStart", "SendCtrlAltDel", "FlushMetrics" }, false,
    "one of `InstanceStart`, `SendCtrlAltDel`, `FlushMetrics`",
};

static const struct fc_field action_fields[] = {
    { "action_type", FT_STR, .required = true, .choice = &action_types },
    { 0 },
};

static int apply_action(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    switch (fc_jget_choice(o, "action_type", &action_types, -1)) {
    case ACT_INSTANCE_START:
        return fc_api_instance_start(api, q->e);
    case ACT_SEND_CTRL_ALT_DEL:
        if (!fc_started(api))
            return fc_fail(q, "%s", FC_MSG_PRE_BOOT);
        return api->ops->power_button(api->vm, q->e);
    default:
        return write_metrics(api, q->e);
    }
}

static const struct fc_res action_res = { action_fields, false, apply_action };

static const struct fc_choice vm_states = { { "Paused", "Resumed" }, false,
                                            "`Paused` or `Resumed`" };

static const struct fc_field vm_fields[] = {
    { "state", FT_STR, .required = true, .choice = &vm_states },
    { 0 },
};

static int patch_vm(struct fc_req *q, json_t *o)
{
    struct fc_api *api = q->api;
    bool pause = fc_jget_choice(o, "state", &vm_states, -1) == 0;
    switch (api->vm->state) {
    case VM_NOT_STARTED: return fc_fail(q, "%s", FC_MSG_PRE_BOOT);
    case VM_STOPPED: return fc_fail(q, "The microVM has stopped.");
    case VM_PAUSED: return pause ? 0 : api->ops->resume(api->vm, q->e);
    default: return pause ? api->ops->pause(api->vm, q->e) : 0;
    }
}

static const struct fc_res vm_res = { vm_fields, false, patch_vm };

static int check_stop_timeout(struct fc_req *q, const char *field, json_t *v)
{
    if (json_integer_value(v) > FC_STOP_MAX_S)
        return fc_fail_field(q, field, "at most %d", FC_STOP_MAX_S);
    return 0;
}

static const struct fc_field stop_fields[] = {
    { "timeout_s", FT_UINT, .check = check_stop_timeout },
    { "force", FT_BOOL, .required = false },
    { 0 },
};

static int petrel_stop(struct fc_req *q, json_t *o)
{
    json_t *t = fc_jget(o, "timeout_s");
    unsigned timeout = t ? (unsigned)json_integer_value(t) : 30;
    return q->api->ops->stop(q->api->vm, timeout, fc_jget_bool(o, "force", false), q->e);
}

static const struct fc_res stop_res = { stop_fields, false, petrel_stop };

/* ---- requests ------------------------------------------------------------ */

static void reply_json(struct http_reply *r, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        r->status = 500;
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->body = s;
    r->len = strlen(s);
}

static void reply_fault(struct http_reply *r, unsigned status, const char *msg)
{
    json_t *j = json_object();
    if (j && !fc_jset(j, "fault_message", fc_jstring(msg))) {
        json_decref(j);
        j = NULL;
    }
    reply_json(r, status, j);
    if (r->status == 500 && status != 500)
        r->status = 500;        /* out of memory on the way */
}

enum method { M_GET, M_PUT, M_PATCH, M_OTHER };

/* The paths and what each method does there. */
static const struct route {
    const char *p0, *p1;        /* the path's parts: p0 "": the root; p1 NULL: none, "": an id */
    json_t *(*get)(const struct fc_api *api);
    const struct fc_res *put, *patch;
    int (*getq)(struct fc_req *q, json_t **out);    /* a GET that can fail */
} routes[] = {
    { "", NULL, instance_json, NULL, NULL, NULL },
    { "version", NULL, version_json, NULL, NULL, NULL },
    { "machine-config", NULL, fc_machine_json, &fc_machine_put, &fc_machine_patch, NULL },
    { "boot-source", NULL, NULL, &fc_boot_source, NULL, NULL },
    { "drives", "", NULL, &fc_drive_put, &fc_drive_patch, NULL },
    { "network-interfaces", "", NULL, &fc_net_put, &fc_net_patch, NULL },
    { "logger", NULL, NULL, &fc_logger, NULL, NULL },
    { "metrics", NULL, NULL, &fc_metrics, NULL, NULL },
    { "entropy", NULL, NULL, &fc_entropy, NULL, NULL },
    { "vsock", NULL, NULL, &fc_vsock, NULL, NULL },
    { "balloon", NULL, NULL, &fc_balloon_put, &fc_balloon_patch, fc_balloon_get },
    { "balloon", "statistics", NULL, NULL, &fc_balloon_stats_patch, fc_balloon_stats_get },
    { "actions", NULL, NULL, &action_res, NULL, NULL },
    { "snapshot", "create", NULL, &fc_snapshot_create, NULL, NULL },
    { "snapshot", "load", NULL, &fc_snapshot_load, NULL, NULL },
    { "vm", NULL, NULL, NULL, &vm_res, NULL },
    { "vm", "config", fc_config_json, NULL, NULL, NULL },
    { "petrel", "info", info_json, NULL, NULL, NULL },
    { "petrel", "metrics", metrics_json, NULL, NULL, NULL },
    { "petrel", "stop", NULL, &stop_res, NULL, NULL },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The route of a path split into tok[0..ntok) (tok[0] "" when ntok is 0). */
static const struct route *find_route(const char *const *tok, unsigned ntok)
{
    for (const struct route *r = routes; r < routes + NROUTES; r++)
        if (ntok == (!*r->p0 ? 0 : r->p1 ? 2 : 1) && !strcmp(tok[0], r->p0) &&
            (!r->p1 || !*r->p1 || !strcmp(tok[1], r->p1)))
            return r;
    return NULL;
}

/* A resource with ids in its path: /drives/{id} */
static bool has_ids(const char *p0)
{
    for (const struct route *r = routes; r < routes + NROUTES; r++)
        if (r->p1 && !*r->p1 && !strcmp(r->p0, p0))
            return true;
    return false;
}

/* Firecracker's resources Petrel does not have. */
static bool fc_unsupported(const char *res)
{
    static const char *const names[] = { "mmds", "cpu-config",
                                         "serial", "pmem", "hotplug", "memory", NULL };
    for (unsigned i = 0; names[i]; i++)
        if (!strcmp(names[i], res))
            return true;
    return false;
}

static int parse_body(struct fc_req *q, const char *body, size_t len, json_t **out)
{
    json_error_t je;
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return fc_fail(q, "malformed JSON: %s at line %d, column %d", je.text, je.line,
                       je.column);
    return 0;
}

void fc_api_handle(void *opaque, const char *method, const char *path, const char *query,
                   const char *body, size_t len, struct http_reply *r)
{
    struct fc_api *api = opaque;
    struct err e = { "" };
    struct fc_req q = { .api = api, .e = &e };
    enum method m = !strcmp(method, "GET") ? M_GET : !strcmp(method, "PUT") ? M_PUT
                  : !strcmp(method, "PATCH") ? M_PATCH : M_OTHER;
    (void)query;                /* GET /petrel/console?bytes=N will use it */
    memset(r, 0, sizeof(*r));

    /* "/a/b/" -> "a", "b"; Firecracker's split, at most 3 parts */
    char buf[512];
    const char *tok[3] = { "", NULL, NULL };
    unsigned ntok = 0;
    bool bad_path = strlen(path) >= sizeof(buf);
    if (!bad_path) {
        const char *p = path;
        while (*p == '/')
            p++;
        snprintf(buf, sizeof(buf), "%s", p);
        size_t n = strlen(buf);
        if (n && buf[n - 1] == '/')
            buf[--n] = 0;
        for (char *s = buf, *slash; n && s; s = slash ? slash + 1 : NULL) {
            if ((slash = strchr(s, '/')))
                *slash = 0;
            if (ntok == 3) {
                bad_path = true;
                break;
            }
            tok[ntok++] = s;
        }
    }
    const char *t0 = tok[0], *t1 = tok[1];
    const struct route *rt = bad_path ? NULL : find_route(tok, ntok);
    bool bodyless = rt && rt->put == &stop_res;    /* PUT /petrel/stop needs no body */
    unsigned status = 400;
    int ret = 0;
    json_t *in = NULL, *out = NULL;

    if (m == M_GET && len) {
        ret = fc_fail(&q, "GET request cannot have a body.");
    } else if (!bad_path && fc_unsupported(t0)) {
        ret = fc_fail(&q, "%s /%s: Firecracker's %s is not supported by Petrel", method, t0, t0);
    } else if (m == M_GET) {
        status = 200;
        if (rt && rt->getq) {
            ret = rt->getq(&q, &out);
        } else if (rt && rt->get) {
            out = rt->get(api);
        } else if (!bad_path && ntok == 2 && !strcmp(t0, "petrel") && !strcmp(t1, "console")) {
            status = 404;
            ret = fc_fail(&q, "GET /petrel/console: the console ring is not available yet");
        } else {
            status = 400;
            ret = fc_fail(&q, "Invalid request method and/or path: %s %s.", method, path);
        }
        if (!ret && !out)
            ret = fc_oom(&q);
    } else if ((m == M_PUT || m == M_PATCH) && !len && !bodyless) {
        ret = fc_fail(&q, "Empty %s request.", method);
    } else if (m == M_PUT || m == M_PATCH) {
        const struct fc_res *res = !rt ? NULL : m == M_PUT ? rt->put : rt->patch;
        bool ids = has_ids(t0);
        status = 204;
        if (ids && !bad_path && ntok <= 2 && (ntok < 2 || !*t1)) {
            ret = fc_fail(&q, "The ID cannot be empty.");
        } else if (ids && !bad_path && ntok == 2 && (ret = fc_check_id(&q, NULL, t1)) < 0) {
            /* the message is set */
        } else if (!res) {
            ret = fc_fail(&q, "Invalid request method and/or path: %s %s.", method, path);
        } else if (!len) {
            in = json_object();         /* PUT /petrel/stop without a body */
            if (!in)
                ret = fc_oom(&q);
        } else {
            ret = parse_body(&q, body, len, &in);
        }
        if (ret == 0) {
            q.path_id = rt->p1 && !*rt->p1 ? t1 : NULL;
            ret = fc_res_apply(&q, res, in);
        }
        json_decref(in);
    } else {
        ret = fc_fail(&q, "Invalid request method and/or path: %s %s.", method, path);
    }
    if (ret < 0) {
        reply_fault(r, ret == -ENOMEM ? 500 : status == 404 ? 404 : 400, e.msg);
        log_info("api: %s %s: %u %s", method, path, r->status, e.msg);
    } else if (out) {
        reply_json(r, status, out);
    } else {
        r->status = 204;
    }
}

/* ---- set-up -------------------------------------------------------------- */

static int default_open_sink(const char *path, struct err *e)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
        return err_set(e, -EINVAL, "`%s` is not a regular file or a FIFO", path);
    /* read-write, as Firecracker: a FIFO then always has a reader (us), so
     * opening never fails or blocks; lines that do not fit are dropped */
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return err_set(e, -errno, "cannot open `%s`: %s", path, strerror(errno));
    return fd;
}

const struct fc_host_ops fc_vm_host_ops = {
    .start = vm_start,
    .pause = vm_pause,
    .resume = vm_resume,
    .power_button = vm_power_button,
    .stop = vm_stop,
    .open_sink = default_open_sink,
    .snapshot = vm_snapshot_save,
    .restore = vm_restore,
};

void fc_api_set_host_ops(struct fc_api *api, const struct fc_host_ops *ops)
{
    api->ops = ops ? ops : &fc_vm_host_ops;
}

struct fc_api *fc_api_new(struct vm *vm, const char *id, struct err *e)
{
    struct fc_api *api = calloc(1, sizeof(*api));
    if (!api) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    api->vm = vm;
    api->ops = &fc_vm_host_ops;
    api->metrics_fd = -1;
    if (!(api->id = strdup(id ? id : "anonymous-instance"))) {
        err_set(e, -ENOMEM, "out of memory");
        goto fail;
    }
    if (fc_import_cfg(api, e) < 0)
        goto fail;
    if (!(api->metrics_timer = evloop_timer_new(vm->loop, false, metrics_tick, api, e)))
        goto fail;
    return api;
fail:
    fc_api_free(api);
    return NULL;
}

void fc_api_free(struct fc_api *api)
{
    if (!api)
        return;
    if (api->metrics_timer)
        evloop_timer_free(api->metrics_timer);
    if (api->metrics_fd >= 0)
        close(api->metrics_fd);
    if (api->log_file)
        log_set_fd(-1, false);  /* back to stderr; closes the log file */
    for (unsigned i = 0; i < api->ndrives; i++)
        fc_drive_free(&api->drives[i]);
    for (unsigned i = 0; i < api->nnets; i++)
        fc_net_free(&api->nets[i]);
    for (unsigned i = 0; i < api->nextra; i++)
        free(api->extra[i]);
    free(api->id);
    free(api->kernel);
    free(api->initrd);
    free(api->boot_args);
    free(api->default_append);
    free(api->log_path);
    free(api->metrics_path);
    free(api->api_sock);
    free(api->console_sock);
    free(api);
}

int fc_api_set_sockets(struct fc_api *api, const char *api_sock, const char *console_sock)
{
    if (vm_config_set(&api->api_sock, api_sock) < 0 ||
        vm_config_set(&api->console_sock, console_sock) < 0)
        return -ENOMEM;
    return 0;
}


/* Apply a body built here (NULL: out of memory, o was not built). */
static int apply_built(struct fc_req *q, const struct fc_res *res, json_t *o)
{
    int ret = o ? fc_res_apply(q, res, o) : fc_oom(q);
    json_decref(o);
    return ret;
}

int fc_api_set_logger(struct fc_api *api, const char *log_path, const char *level,
                      bool show_level, bool show_log_origin, struct err *e)
{
    struct fc_req q = { .api = api, .e = e };
    if (!log_path && !level && !show_level && !show_log_origin)
        return 0;               /* no logger flag given: nothing to configure */
    json_t *o = json_pack("{s:b,s:b}", "show_level", show_level, "show_log_origin",
                          show_log_origin);
    if (o && ((log_path && !fc_jset(o, "log_path", fc_jstring(log_path))) ||
              (level && !fc_jset(o, "level", fc_jstring(level))))) {
        json_decref(o);
        o = NULL;
    }
    return apply_built(&q, &fc_logger, o);
}

int fc_api_set_metrics(struct fc_api *api, const char *metrics_path, struct err *e)
{
    struct fc_req q = { .api = api, .e = e };
    return apply_built(&q, &fc_metrics, json_pack("{s:o}", "metrics_path",
                                                   fc_jstring(metrics_path)));
}
