/* Firecracker's REST API over struct vm: see fc.h for the design. */
#include "api/fc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/opts.h"
#include "core/version.h"

#define FC_ID_MAX 64            /* resource ids: drive_id, iface_id */
#define FC_PATH_MAX 4095        /* host paths */
#define FC_ARGS_MAX 4096        /* boot_args (the board checks the real limit) */
#define FC_MEM_MIN_MIB 16
#define FC_MEM_MAX_MIB 65536
#define FC_DEFAULT_MEM_MIB 128  /* Firecracker's, when the command line gave none */
#define FC_STOP_MAX_S 86400
#define FC_TAP_NAME_MAX 15      /* IFNAMSIZ - 1 */
#define FC_NET_PREFIX "petrel:"

static const char MSG_POST_BOOT[] =
    "The requested operation is not supported after starting the microVM.";
static const char MSG_PRE_BOOT[] =
    "The requested operation is not supported before starting the microVM.";
static const char MSG_ID_MISMATCH[] = "The id from the path does not match the id from the body!";
static const char MSG_RATE_LIMIT[] =
    "rate limiting is not supported by Petrel yet (omit it or set it to null)";

struct fc_drive {
    char *id;
    char *path;                 /* path_on_host */
    bool root, ro;
    char *partuuid;             /* NULL: none */
    const char *cache_type;     /* "Unsafe" or "Writeback" */
    const char *io_engine;      /* "Sync" or "Async" */
    /* from a command-line --disk; not in Firecracker's layout */
    const char *format;         /* "raw", "qcow2", NULL: probed */
    char serial[21];
};

struct fc_net {
    char *id;
    char *host_dev_name;        /* a TAP name or "petrel:" + virtio-net options */
    char *guest_mac;            /* NULL: Petrel's default */
};

struct fc_api {
    struct vm *vm;
    char *id;
    const struct fc_host_ops *ops;
    /* machine-config */
    unsigned vcpu_count;
    unsigned mem_size_mib;
    bool track_dirty_pages;
    /* boot-source: kernel NULL means none given (the default guest) */
    char *kernel, *initrd, *boot_args;
    char *default_append;       /* the command line's, used without boot_args */
    struct fc_drive drives[VM_MAX_DISKS];
    unsigned ndrives;
    struct fc_net nets[VM_MAX_DEVICES];
    unsigned nnets;
    bool entropy;
    char *extra[VM_MAX_DEVICES];        /* other --device specs, kept as given */
    unsigned nextra;
    /* logger */
    bool logger_set;
    char *log_path;
    bool log_file;              /* we sent the log to log_path (log_set_fd) */
    const char *log_level;      /* NULL: as it was */
    bool show_level, show_log_origin;
    /* metrics */
    char *metrics_path;
    int metrics_fd;
    struct evloop_timer *metrics_timer;
    /* GET /petrel/info */
    char *api_sock, *console_sock;
};

/* One request or one config file being applied. */
struct fc_req {
    struct fc_api *api;
    const char *file;           /* the config file; NULL for an API request */
    char where[48];             /* JSON path of the object checked: "", "drives[1]" */
    struct err *e;
};

/* ---- errors -------------------------------------------------------------- */

static int vfail(struct fc_req *q, int ret, const char *field, const char *fmt, va_list ap)
{
    char text[400], path[112] = "";
    vsnprintf(text, sizeof(text), fmt, ap);
    if (q->where[0] && field)
        snprintf(path, sizeof(path), "%s.%.60s", q->where, field);
    else if (q->where[0])
        snprintf(path, sizeof(path), "%s", q->where);
    else if (field)
        snprintf(path, sizeof(path), "%.100s", field);
    err_set(q->e, ret, "%s%s%s%s%s", q->file ? q->file : "", q->file ? ": " : "", path,
            path[0] ? ": " : "", text);
    return ret;
}

/* An error about the object being checked. */
static int __attribute__((format(printf, 2, 3))) fail(struct fc_req *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(q, -EINVAL, NULL, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* An error about one of its fields. */
static int __attribute__((format(printf, 3, 4)))
fail_field(struct fc_req *q, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(q, -EINVAL, field, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int oom(struct fc_req *q)
{
    return err_set(q->e, -ENOMEM, "out of memory");
}

/* ---- JSON helpers -------------------------------------------------------- */

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Replace what is not valid UTF-8 (as jansson checks it: no overlong
 * forms, surrogates or code points past U+10FFFF) and control characters
 * by '?'; ascii: every byte past 0x7f too. */
static void utf8_sanitize(char *s, bool ascii)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned n;
        uint32_t cp, min;
        if (*p < 0x80) {
            if (*p < 0x20)
                *p = '?';
            p++;
            continue;
        }
        if (ascii)
            n = 4;
        else if ((*p & 0xe0) == 0xc0)
            n = 1, cp = *p & 0x1f, min = 0x80;
        else if ((*p & 0xf0) == 0xe0)
            n = 2, cp = *p & 0x0f, min = 0x800;
        else if ((*p & 0xf8) == 0xf0)
            n = 3, cp = *p & 0x07, min = 0x10000;
        else
            n = 4;
        unsigned i = 1;
        if (n < 4)
            for (; i <= n && (p[i] & 0xc0) == 0x80; i++)    /* stops at the NUL */
                cp = cp << 6 | (p[i] & 0x3f);
        if (n == 4 || i <= n || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

/* A JSON string of s (NULL: null), sanitized if it is not valid UTF-8. */
static json_t *jstring(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    char *copy = v ? NULL : strdup(s);
    for (int ascii = 0; !v && copy && ascii < 2; ascii++) {
        utf8_sanitize(copy, ascii);
        v = json_string(copy);
    }
    free(copy);
    return v;
}

/* Set o[k] = v (stolen); false when out of memory. */
static bool jset(json_t *o, const char *k, json_t *v)
{
    return v && json_object_set_new(o, k, v) == 0;
}

enum ftype {
    FT_STR, FT_BOOL, FT_UINT, FT_OBJ, FT_ARR,
    FT_NULL,                    /* only null (or absent): what Petrel does not support */
};

struct fspec {
    const char *name;
    enum ftype type;
    bool required;
    const char *why;            /* FT_NULL: the message when given */
};

static int check_object(struct fc_req *q, json_t *o, const struct fspec *f, bool required)
{
    if (!json_is_object(o))
        return fail(q, "expected a JSON object, got %s", jtype(o));
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const struct fspec *d = f;
        while (d->name && strcmp(d->name, key))
            d++;
        if (!d->name) {
            char list[300] = "";
            size_t n = 0;
            for (d = f; d->name && n < sizeof(list); d++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s`%s`", d == f ? "" : ", ",
                                      d->name);
            return fail(q, "unknown field `%.64s`, expected one of %s", key, list);
        }
        if (d->type == FT_NULL) {
            if (!json_is_null(v))
                return fail_field(q, key, "%s", d->why);
            continue;
        }
        static const char *const want[] = {
            [FT_STR] = "a string", [FT_BOOL] = "a boolean", [FT_UINT] = "an integer",
            [FT_OBJ] = "an object", [FT_ARR] = "an array",
        };
        bool ok = false;
        switch (d->type) {
        case FT_STR: ok = json_is_string(v); break;
        case FT_BOOL: ok = json_is_boolean(v); break;
        case FT_UINT: ok = json_is_integer(v); break;
        case FT_OBJ: ok = json_is_object(v) || (!d->required && json_is_null(v)); break;
        case FT_ARR: ok = json_is_array(v) || (!d->required && json_is_null(v)); break;
        case FT_NULL: break;
        }
        if (!ok && json_is_null(v) && !(required && d->required))
            ok = true;          /* null is absent, as serde's Option */
        if (!ok)
            return fail_field(q, key, "expected %s, got %s", want[d->type], jtype(v));
        if (d->type == FT_UINT && json_integer_value(v) < 0)
            return fail_field(q, key, "expected a non-negative integer, got %lld",
                              (long long)json_integer_value(v));
    }
    if (required)
        for (const struct fspec *d = f; d->name; d++)
            if (d->required && !json_object_get(o, d->name))
                return fail(q, "missing field `%s`", d->name);
    return 0;
}

static json_t *jget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_null(v) ? NULL : v;
}

static const char *jget_str(json_t *o, const char *k)
{
    return json_string_value(jget(o, k));
}

static bool jget_bool(json_t *o, const char *k, bool def)
{
    json_t *v = jget(o, k);
    return v ? json_is_true(v) : def;
}

/* ---- value checks -------------------------------------------------------- */

/* Firecracker's checked_id: non-empty, alphanumeric and '_'. */
static int check_id(struct fc_req *q, const char *field, const char *id)
{
    if (!*id)
        return field ? fail_field(q, field, "The ID cannot be empty.")
                     : fail(q, "The ID cannot be empty.");
    size_t n = strlen(id);
    for (size_t i = 0; i < n; i++)
        if (!isascii((unsigned char)id[i]) || (!isalnum((unsigned char)id[i]) && id[i] != '_'))
            return field ? fail_field(q, field, "API Resource IDs can only contain alphanumeric "
                                      "characters and underscores.")
                         : fail(q, "API Resource IDs can only contain alphanumeric characters "
                                "and underscores.");
    if (n > FC_ID_MAX)
        return field ? fail_field(q, field, "IDs are at most %d characters", FC_ID_MAX)
                     : fail(q, "IDs are at most %d characters", FC_ID_MAX);
    return 0;
}

/* A host file the VMM will open: regular (or, with dev, a block device),
 * readable (and writable with rw).  Only stat and access: looking at a
 * path has no side effects, opening some devices has. */
static int check_file(struct fc_req *q, const char *field, const char *path, bool dev, bool rw)
{
    if (!*path)
        return fail_field(q, field, "must not be empty");
    if (strlen(path) > FC_PATH_MAX)
        return fail_field(q, field, "longer than %d bytes", FC_PATH_MAX);
    struct stat st;
    if (stat(path, &st) < 0)
        return fail_field(q, field, "cannot open `%s`: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) && !(dev && S_ISBLK(st.st_mode)))
        return fail_field(q, field, "`%s` is not a regular file%s", path,
                          dev ? " or a block device" : "");
    if (access(path, rw ? R_OK | W_OK : R_OK) < 0)
        return fail_field(q, field, "cannot open `%s`%s: %s", path, rw ? " for writing" : "",
                          strerror(errno));
    return 0;
}

static int check_mac(struct fc_req *q, const char *field, const char *s)
{
    unsigned v[6];
    char end;
    if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
                                  &v[4], &v[5], &end) != 6)
        return fail_field(q, field, "`%s`: expected six hex bytes XX:XX:XX:XX:XX:XX", s);
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
            return fail_field(q, field, "`%s`: expected six hex bytes XX:XX:XX:XX:XX:XX", s);
    if (v[0] & 1)
        return fail_field(q, field, "`%s` is a multicast address (the first byte must be even)",
                          s);
    if (!(v[0] | v[1] | v[2] | v[3] | v[4] | v[5]))
        return fail_field(q, field, "`%s` is the zero address", s);
    return 0;
}

/* host_dev_name: a TAP name, or "petrel:" and virtio-net options. */
static int check_host_dev(struct fc_req *q, const char *field, const char *s)
{
    if (!strncmp(s, FC_NET_PREFIX, strlen(FC_NET_PREFIX))) {
        static const char *const keys[] = { "net", "name", "ifname", "restrict", "hostfwd",
                                            "allow", "deny", NULL };
        const char *p = s + strlen(FC_NET_PREFIX);
        if (!*p)
            return fail_field(q, field, "`petrel:` needs virtio-net options, e.g. "
                              "petrel:net=user or petrel:net=private,name=NETWORK");
        if (strlen(p) > 1024)
            return fail_field(q, field, "longer than 1024 bytes");
        char item[256];
        struct err oe;
        int r;
        while ((r = opts_next(&p, item, sizeof(item), &oe)) > 0) {
            char *val;
            opts_split(item, &val);
            if (!strcmp(item, "mac"))
                return fail_field(q, field, "give the MAC address as guest_mac, not mac=");
            unsigned i = 0;
            while (keys[i] && strcmp(keys[i], item))
                i++;
            if (!keys[i])
                return fail_field(q, field, "unknown virtio-net option `%.64s` (net, name, "
                                  "ifname, restrict, hostfwd, allow, deny)", item);
            if (!strcmp(item, "net") &&
                (!val || (strcmp(val, "user") && strcmp(val, "private") && strcmp(val, "tap"))))
                return fail_field(q, field, "net=%.64s: unknown backend (user, private or tap)",
                                  val ? val : "");
        }
        if (r < 0)
            return fail_field(q, field, "%s", oe.msg);
        return 0;
    }
    size_t n = strlen(s);
    if (!n)
        return fail_field(q, field, "must not be empty");
    if (n > FC_TAP_NAME_MAX)
        return fail_field(q, field, "`%s`: interface names are at most %d characters (or "
                          "use petrel:OPTIONS)", s, FC_TAP_NAME_MAX);
    if (!strcmp(s, ".") || !strcmp(s, ".."))
        return fail_field(q, field, "`%s` is not an interface name", s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || s[i] == ',' || isspace((unsigned char)s[i]) ||
            (unsigned char)s[i] < 0x20)
            return fail_field(q, field, "`%s` is not an interface name", s);
    return 0;
}

static bool started(const struct fc_api *api)
{
    return api->vm->state != VM_NOT_STARTED;
}

static unsigned max_vcpus(const struct fc_api *api)
{
    const char *arch = api->vm->cfg.arch;
    return arch && !strcmp(arch, "x86_64") ? 64 : 32;
}

/* ---- resources ----------------------------------------------------------- */

static int apply_machine(struct fc_req *q, json_t *o, bool patch)
{
    static const struct fspec fields[] = {
        { "vcpu_count", FT_UINT, true, NULL },
        { "mem_size_mib", FT_UINT, true, NULL },
        { "smt", FT_BOOL, false, NULL },
        { "track_dirty_pages", FT_BOOL, false, NULL },
        { "cpu_template", FT_STR, false, NULL },
        { "huge_pages", FT_STR, false, NULL },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, !patch);
    if (ret < 0)
        return ret;
    if (patch) {
        bool any = false;
        for (const struct fspec *f = fields; f->name; f++)
            any |= jget(o, f->name) != NULL;
        if (!any)
            return fail(q, "Empty PATCH request.");
    }
    unsigned vcpus = api->vcpu_count, mib = api->mem_size_mib;
    json_t *v;
    if ((v = jget(o, "vcpu_count"))) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > max_vcpus(api))
            return fail_field(q, "vcpu_count", "must be 1 to %u (%s guests), got %lld",
                              max_vcpus(api), api->vm->cfg.arch ? api->vm->cfg.arch : "riscv64",
                              (long long)n);
        vcpus = (unsigned)n;
    }
    if ((v = jget(o, "mem_size_mib"))) {
        json_int_t n = json_integer_value(v);
        if (n < FC_MEM_MIN_MIB || n > FC_MEM_MAX_MIB)
            return fail_field(q, "mem_size_mib", "must be %d to %d, got %lld", FC_MEM_MIN_MIB,
                              FC_MEM_MAX_MIB, (long long)n);
        mib = (unsigned)n;
    }
    if (jget_bool(o, "smt", false))
        return fail_field(q, "smt", "simultaneous multithreading is not supported by Petrel "
                          "(false only)");
    const char *s;
    if ((s = jget_str(o, "cpu_template")) && strcmp(s, "None"))
        return fail_field(q, "cpu_template", "`%.64s` is not supported by Petrel (\"None\" only)",
                          s);
    if ((s = jget_str(o, "huge_pages")) && strcmp(s, "None"))
        return fail_field(q, "huge_pages", "`%.64s` is not supported by Petrel (\"None\" only)",
                          s);
    if (started(api))
        return fail(q, "%s", MSG_POST_BOOT);
    api->vcpu_count = vcpus;
    api->mem_size_mib = mib;
    /* accepted and reported back; Petrel has no diff snapshots to use it for */
    if ((v = jget(o, "track_dirty_pages")))
        api->track_dirty_pages = json_is_true(v);
    else if (!patch)
        api->track_dirty_pages = false;
    return 0;
}

static int apply_boot_source(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "kernel_image_path", FT_STR, true, NULL },
        { "initrd_path", FT_STR, false, NULL },
        { "boot_args", FT_STR, false, NULL },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *kernel = jget_str(o, "kernel_image_path");
    const char *initrd = jget_str(o, "initrd_path");
    const char *args = jget_str(o, "boot_args");
    if (args && strlen(args) > FC_ARGS_MAX)
        return fail_field(q, "boot_args", "longer than %d bytes", FC_ARGS_MAX);
    if (started(api))
        return fail(q, "%s", MSG_POST_BOOT);
    if ((ret = check_file(q, "kernel_image_path", kernel, false, false)) < 0 ||
        (initrd && (ret = check_file(q, "initrd_path", initrd, false, false)) < 0))
        return ret;
    char *k = strdup(kernel), *i = initrd ? strdup(initrd) : NULL, *a = args ? strdup(args) : NULL;
    if (!k || (initrd && !i) || (args && !a)) {
        free(k);
        free(i);
        free(a);
        return oom(q);
    }
    free(api->kernel);
    free(api->initrd);
    free(api->boot_args);
    api->kernel = k;
    api->initrd = i;
    api->boot_args = a;
    return 0;
}

static struct fc_drive *find_drive(struct fc_api *api, const char *id)
{
    for (unsigned i = 0; i < api->ndrives; i++)
        if (!strcmp(api->drives[i].id, id))
            return &api->drives[i];
    return NULL;
}

static void drive_free(struct fc_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

/* PUT /drives/{id}: path_id is the id from the path (NULL in a file). */
static int apply_drive(struct fc_req *q, json_t *o, const char *path_id)
{
    static const struct fspec fields[] = {
        { "drive_id", FT_STR, true, NULL },
        { "path_on_host", FT_STR, true, NULL },
        { "is_root_device", FT_BOOL, true, NULL },
        { "is_read_only", FT_BOOL, false, NULL },
        { "partuuid", FT_STR, false, NULL },
        { "cache_type", FT_STR, false, NULL },
        { "io_engine", FT_STR, false, NULL },
        { "rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { "socket", FT_NULL, false, "vhost-user block devices are not supported by Petrel" },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *id = jget_str(o, "drive_id");
    if ((ret = check_id(q, "drive_id", id)) < 0)
        return ret;
    if (path_id && strcmp(path_id, id))
        return fail(q, "%s", MSG_ID_MISMATCH);
    struct fc_drive d = {
        .root = jget_bool(o, "is_root_device", false),
        .ro = jget_bool(o, "is_read_only", false),
        .cache_type = "Unsafe",
        .io_engine = "Sync",
    };
    const char *s;
    if ((s = jget_str(o, "cache_type"))) {
        if (strcmp(s, "Unsafe") && strcmp(s, "Writeback"))
            return fail_field(q, "cache_type", "unknown value `%.64s`, expected `Unsafe` or "
                              "`Writeback`", s);
        d.cache_type = !strcmp(s, "Unsafe") ? "Unsafe" : "Writeback";
    }
    if ((s = jget_str(o, "io_engine"))) {
        if (strcmp(s, "Sync") && strcmp(s, "Async"))
            return fail_field(q, "io_engine", "unknown value `%.64s`, expected `Sync` or "
                              "`Async`", s);
        d.io_engine = !strcmp(s, "Sync") ? "Sync" : "Async";
    }
    const char *partuuid = jget_str(o, "partuuid");
    if (partuuid) {
        size_t n = strlen(partuuid);
        if (!n || n > 64 || strspn(partuuid, "0123456789abcdefABCDEF-") != n)
            return fail_field(q, "partuuid", "`%.64s`: expected 1 to 64 hexadecimal digits and "
                              "'-'", partuuid);
    }
    if (started(api))
        return fail(q, "%s", MSG_POST_BOOT);
    const char *path = jget_str(o, "path_on_host");
    if ((ret = check_file(q, "path_on_host", path, true, !d.ro)) < 0)
        return ret;
    struct fc_drive *old = find_drive(api, id);
    if (d.root)
        for (unsigned i = 0; i < api->ndrives; i++)
            if (api->drives[i].root && &api->drives[i] != old)
                return fail(q, "A root block device already exists! (drive `%s`)",
                            api->drives[i].id);
    if (!old && api->ndrives == VM_MAX_DISKS)
        return fail(q, "too many drives (at most %d)", VM_MAX_DISKS);
    d.id = strdup(id);
    d.path = strdup(path);
    d.partuuid = partuuid ? strdup(partuuid) : NULL;
    if (!d.id || !d.path || (partuuid && !d.partuuid)) {
        drive_free(&d);
        return oom(q);
    }
    if (old)
        drive_free(old);
    else
        old = &api->drives[api->ndrives++];
    *old = d;
    return 0;
}

/* PATCH /drives/{id}: Firecracker's PartialDrive. */
static int patch_drive(struct fc_req *q, json_t *o, const char *path_id)
{
    static const struct fspec fields[] = {
        { "drive_id", FT_STR, true, NULL },
        { "path_on_host", FT_STR, false, NULL },
        { "rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *id = jget_str(o, "drive_id");
    if ((ret = check_id(q, "drive_id", id)) < 0)
        return ret;
    if (strcmp(path_id, id))
        return fail(q, "%s", MSG_ID_MISMATCH);
    struct fc_drive *d = find_drive(api, id);
    if (!d)
        return fail(q, "drive `%s` does not exist", id);
    const char *path = jget_str(o, "path_on_host");
    if (!path || !strcmp(path, d->path))
        return 0;
    if (started(api))
        return fail_field(q, "path_on_host", "changing a drive's backing file after start is "
                          "not supported by Petrel yet");
    if ((ret = check_file(q, "path_on_host", path, true, !d->ro)) < 0)
        return ret;
    char *copy = strdup(path);
    if (!copy)
        return oom(q);
    free(d->path);
    d->path = copy;
    d->format = NULL;           /* a new file: probe its format */
    return 0;
}

static struct fc_net *find_net(struct fc_api *api, const char *id)
{
    for (unsigned i = 0; i < api->nnets; i++)
        if (!strcmp(api->nets[i].id, id))
            return &api->nets[i];
    return NULL;
}

static void net_free(struct fc_net *n)
{
    free(n->id);
    free(n->host_dev_name);
    free(n->guest_mac);
    memset(n, 0, sizeof(*n));
}

static unsigned device_count(const struct fc_api *api)
{
    return api->nnets + api->entropy + api->nextra;
}

static int apply_net(struct fc_req *q, json_t *o, const char *path_id)
{
    static const struct fspec fields[] = {
        { "iface_id", FT_STR, true, NULL },
        { "host_dev_name", FT_STR, true, NULL },
        { "guest_mac", FT_STR, false, NULL },
        { "mtu", FT_UINT, false, NULL },
        { "rx_rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { "tx_rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *id = jget_str(o, "iface_id");
    if ((ret = check_id(q, "iface_id", id)) < 0)
        return ret;
    if (path_id && strcmp(path_id, id))
        return fail(q, "%s", MSG_ID_MISMATCH);
    const char *dev = jget_str(o, "host_dev_name");
    const char *mac = jget_str(o, "guest_mac");
    if ((ret = check_host_dev(q, "host_dev_name", dev)) < 0 ||
        (mac && (ret = check_mac(q, "guest_mac", mac)) < 0))
        return ret;
    json_t *mtu = jget(o, "mtu");
    if (mtu && json_integer_value(mtu) != 1500)
        return fail_field(q, "mtu", "Petrel's virtio-net has a fixed MTU of 1500, got %lld",
                          (long long)json_integer_value(mtu));
    if (started(api))
        return fail(q, "%s", MSG_POST_BOOT);
    struct fc_net *old = find_net(api, id);
    bool tap = strncmp(dev, FC_NET_PREFIX, strlen(FC_NET_PREFIX)) != 0;
    for (unsigned i = 0; i < api->nnets; i++) {
        struct fc_net *n = &api->nets[i];
        if (n == old)
            continue;
        if (tap && !strcmp(n->host_dev_name, dev))
            return fail_field(q, "host_dev_name", "The host device name `%s` is already in use "
                              "(interface `%s`)", dev, n->id);
        if (mac && n->guest_mac && !strcasecmp(n->guest_mac, mac))
            return fail_field(q, "guest_mac", "The MAC address `%s` is already in use "
                              "(interface `%s`)", mac, n->id);
    }
    if (!old && device_count(api) >= VM_MAX_DEVICES)
        return fail(q, "too many devices (at most %d network interfaces, entropy and other "
                    "devices together)", VM_MAX_DEVICES);
    struct fc_net n = { .id = strdup(id), .host_dev_name = strdup(dev),
                        .guest_mac = mac ? strdup(mac) : NULL };
    if (!n.id || !n.host_dev_name || (mac && !n.guest_mac)) {
        net_free(&n);
        return oom(q);
    }
    if (old)
        net_free(old);
    else
        old = &api->nets[api->nnets++];
    *old = n;
    return 0;
}

/* PATCH /network-interfaces/{id}: only rate limiters, which Petrel has not. */
static int patch_net(struct fc_req *q, json_t *o, const char *path_id)
{
    static const struct fspec fields[] = {
        { "iface_id", FT_STR, true, NULL },
        { "rx_rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { "tx_rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { NULL, 0, false, NULL },
    };
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *id = jget_str(o, "iface_id");
    if ((ret = check_id(q, "iface_id", id)) < 0)
        return ret;
    if (strcmp(path_id, id))
        return fail(q, "%s", MSG_ID_MISMATCH);
    if (!find_net(q->api, id))
        return fail(q, "network interface `%s` does not exist", id);
    return 0;
}

static int apply_entropy(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "rate_limiter", FT_NULL, false, MSG_RATE_LIMIT },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    if (started(api))
        return fail(q, "%s", MSG_POST_BOOT);
    if (!api->entropy && device_count(api) >= VM_MAX_DEVICES)
        return fail(q, "too many devices (at most %d network interfaces, entropy and other "
                    "devices together)", VM_MAX_DEVICES);
    api->entropy = true;
    return 0;
}

static const struct {
    const char *name;
    int verbose;                /* log_set_verbose */
} log_levels[] = {
    { "Off", -2 }, { "Error", -1 }, { "Warning", 0 }, { "Info", 1 }, { "Debug", 2 },
    { "Trace", 2 },
};

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

static int apply_logger(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "log_path", FT_STR, false, NULL },
        { "level", FT_STR, false, NULL },
        { "show_level", FT_BOOL, false, NULL },
        { "show_log_origin", FT_BOOL, false, NULL },
        { "module", FT_NULL, false, "filtering by module is not supported by Petrel" },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *level = jget_str(o, "level");
    int verbose = 0;
    if (level) {
        unsigned i = 0, n = sizeof(log_levels) / sizeof(log_levels[0]);
        while (i < n && strcasecmp(log_levels[i].name, level))
            i++;
        if (i == n)
            return fail_field(q, "level", "unknown value `%.64s`, expected one of Error, "
                              "Warning, Info, Debug, Trace, Off", level);
        level = log_levels[i].name;
        verbose = log_levels[i].verbose;
    }
    const char *path = jget_str(o, "log_path");
    char *path_copy = NULL;
    int fd = -1;
    if (path) {
        if (!*path || strlen(path) > FC_PATH_MAX)
            return fail_field(q, "log_path", "1 to %d bytes", FC_PATH_MAX);
        if (!(path_copy = strdup(path)))
            return oom(q);
        struct err oe;
        if ((fd = api->ops->open_sink(path, &oe)) < 0) {
            free(path_copy);
            return fail_field(q, "log_path", "%s", oe.msg);
        }
    }
    api->show_level = jget_bool(o, "show_level", false);
    /* accepted and reported back: Petrel's log lines carry no origin */
    api->show_log_origin = jget_bool(o, "show_log_origin", false);
    if (path) {
        free(api->log_path);
        api->log_path = path_copy;
        log_set_fd(fd, api->show_level);    /* the logger owns fd now */
        api->log_file = true;
    } else {
        log_set_show_level(api->show_level);
    }
    if (level) {
        api->log_level = level;
        log_set_verbose(verbose);
    }
    api->logger_set = true;
    return 0;
}

static void metrics_tick(void *opaque);

static int apply_metrics(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "metrics_path", FT_STR, true, NULL },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *path = jget_str(o, "metrics_path");
    if (!*path || strlen(path) > FC_PATH_MAX)
        return fail_field(q, "metrics_path", "1 to %d bytes", FC_PATH_MAX);
    char *copy = strdup(path);
    if (!copy)
        return oom(q);
    struct err oe;
    int fd = api->ops->open_sink(path, &oe);
    if (fd < 0) {
        free(copy);
        return fail_field(q, "metrics_path", "%s", oe.msg);
    }
    if (api->metrics_fd >= 0)
        close(api->metrics_fd);
    free(api->metrics_path);
    api->metrics_path = copy;
    api->metrics_fd = fd;
    uint64_t period = (uint64_t)FC_METRICS_PERIOD_S * 1000000000ull;
    evloop_timer_set(api->metrics_timer, period, period);
    return 0;
}

/* ---- GET bodies ---------------------------------------------------------- */

static json_t *machine_json(const struct fc_api *api)
{
    json_t *o = json_object();
    if (o && jset(o, "vcpu_count", json_integer(api->vcpu_count)) &&
        jset(o, "mem_size_mib", json_integer(api->mem_size_mib)) &&
        jset(o, "smt", json_false()) &&
        jset(o, "track_dirty_pages", json_boolean(api->track_dirty_pages)) &&
        jset(o, "huge_pages", json_string("None")))
        return o;
    json_decref(o);
    return NULL;
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

static json_t *drive_json(const struct fc_drive *d)
{
    json_t *o = json_object();
    if (o && jset(o, "drive_id", jstring(d->id)) && jset(o, "path_on_host", jstring(d->path)) &&
        jset(o, "is_root_device", json_boolean(d->root)) &&
        jset(o, "is_read_only", json_boolean(d->ro)) &&
        (!d->partuuid || jset(o, "partuuid", jstring(d->partuuid))) &&
        jset(o, "cache_type", json_string(d->cache_type)) &&
        jset(o, "io_engine", json_string(d->io_engine)))
        return o;
    json_decref(o);
    return NULL;
}

static json_t *net_json(const struct fc_net *n)
{
    json_t *o = json_object();
    if (o && jset(o, "iface_id", jstring(n->id)) &&
        jset(o, "host_dev_name", jstring(n->host_dev_name)) &&
        (!n->guest_mac || jset(o, "guest_mac", jstring(n->guest_mac))))
        return o;
    json_decref(o);
    return NULL;
}

static const char *current_level(const struct fc_api *api)
{
    if (api->log_level)
        return api->log_level;
    int v = log_verbose();
    return v <= -2 ? "Off" : v == -1 ? "Error" : v == 0 ? "Warning" : v == 1 ? "Info" : "Debug";
}

/* GET /vm/config: Firecracker's configuration-file layout. */
static json_t *config_json(const struct fc_api *api)
{
    json_t *o = json_object(), *drives = json_array(), *nets = json_array(), *x;
    const struct fc_drive *order[VM_MAX_DISKS];
    if (!o || !drives || !nets)
        goto fail;
    if (api->kernel) {
        if (!(x = json_object()) || !jset(o, "boot-source", x) ||
            !jset(x, "kernel_image_path", jstring(api->kernel)) ||
            (api->initrd && !jset(x, "initrd_path", jstring(api->initrd))) ||
            (api->boot_args && !jset(x, "boot_args", jstring(api->boot_args))))
            goto fail;
    }
    unsigned n = drive_order(api, order);
    for (unsigned i = 0; i < n; i++)
        if (json_array_append_new(drives, drive_json(order[i])) < 0)
            goto fail;
    if (json_object_set(o, "drives", drives) < 0 || !jset(o, "machine-config", machine_json(api)))
        goto fail;
    for (unsigned i = 0; i < api->nnets; i++)
        if (json_array_append_new(nets, net_json(&api->nets[i])) < 0)
            goto fail;
    if (json_object_set(o, "network-interfaces", nets) < 0)
        goto fail;
    if (api->logger_set) {
        if (!(x = json_object()) || !jset(o, "logger", x) ||
            (api->log_path && !jset(x, "log_path", jstring(api->log_path))) ||
            !jset(x, "level", json_string(current_level(api))) ||
            !jset(x, "show_level", json_boolean(api->show_level)) ||
            !jset(x, "show_log_origin", json_boolean(api->show_log_origin)))
            goto fail;
    }
    if (api->metrics_path) {
        if (!(x = json_object()) || !jset(o, "metrics", x) ||
            !jset(x, "metrics_path", jstring(api->metrics_path)))
            goto fail;
    }
    if (api->entropy && !jset(o, "entropy", json_object()))
        goto fail;
    json_decref(drives);
    json_decref(nets);
    return o;
fail:
    json_decref(o);
    json_decref(drives);
    json_decref(nets);
    return NULL;
}

static json_t *instance_json(const struct fc_api *api)
{
    json_t *o = json_object();
    if (o && jset(o, "id", jstring(api->id)) &&
        jset(o, "state", json_string(vm_state_name(api->vm->state))) &&
        jset(o, "vmm_version", json_string(PETREL_VERSION)) &&
        jset(o, "app_name", json_string("Petrel")))
        return o;
    json_decref(o);
    return NULL;
}

static const char *vm_arch(const struct fc_api *api)
{
    return api->vm->cfg.arch ? api->vm->cfg.arch : "riscv64";
}

static json_t *info_json(const struct fc_api *api)
{
    json_t *o = json_object();
    if (o && jset(o, "id", jstring(api->id)) &&
        jset(o, "state", json_string(vm_state_name(api->vm->state))) &&
        jset(o, "arch", jstring(vm_arch(api))) &&
        jset(o, "vcpu_count", json_integer(api->vcpu_count)) &&
        jset(o, "mem_size_mib", json_integer(api->mem_size_mib)) &&
        jset(o, "pid", json_integer(getpid())) &&
        jset(o, "uptime_s", json_real(vm_uptime(api->vm))) &&
        jset(o, "api_sock", jstring(api->api_sock)) &&
        jset(o, "console_sock", jstring(api->console_sock)))
        return o;
    json_decref(o);
    return NULL;
}

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
    return jset(o, k, json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
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
            !jset(o, "id", jstring(d->id)))
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
static json_t *metrics_json(struct fc_api *api)
{
    struct vm *vm = api->vm;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object(), *cpus = json_array(), *mem = json_object();
    json_t *blk = json_array(), *net = json_array();
    if (!o || !cpus || !mem || !blk || !net)
        goto fail;
    bool kvm = vm->cfg.arch && !strcmp(vm->cfg.arch, "x86_64");
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
        !jset(o, "utc_timestamp_ms",
              json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) ||
        !jset(o, "uptime_s", json_real(vm_uptime(vm))) ||
        !jset(o, "state", json_string(vm_state_name(vm->state))) ||
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

static int write_metrics(struct fc_api *api, struct err *e)
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

static char *disk_spec(const struct fc_drive *d)
{
    char *s = NULL;
    if (spec_add(&s, NULL, d->path) < 0 || (d->ro && spec_add(&s, "readonly", "on") < 0) ||
        (d->format && spec_add(&s, "format", d->format) < 0) ||
        (d->serial[0] && spec_add(&s, "serial", d->serial) < 0)) {
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
    if (ret < 0) {
        free(s);
        return NULL;
    }
    return s;
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
    if (vm_config_set(&nc->arch, old->arch) < 0 || vm_config_set(&nc->firmware, old->firmware) < 0 ||
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
    if (started(api))
        return err_set(e, -EINVAL, "%s", MSG_POST_BOOT);
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

/* ---- actions, /vm, /petrel/stop ------------------------------------------ */

static int apply_action(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "action_type", FT_STR, true, NULL },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *a = jget_str(o, "action_type");
    if (!strcmp(a, "InstanceStart"))
        return fc_api_instance_start(api, q->e);
    if (!strcmp(a, "SendCtrlAltDel")) {
        if (!started(api))
            return fail(q, "%s", MSG_PRE_BOOT);
        return api->ops->power_button(api->vm, q->e);
    }
    if (!strcmp(a, "FlushMetrics"))
        return write_metrics(api, q->e);
    return fail_field(q, "action_type", "unknown value `%.64s`, expected one of `InstanceStart`, "
                      "`SendCtrlAltDel`, `FlushMetrics`", a);
}

static int patch_vm(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "state", FT_STR, true, NULL },
        { NULL, 0, false, NULL },
    };
    struct fc_api *api = q->api;
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    const char *s = jget_str(o, "state");
    bool pause = !strcmp(s, "Paused");
    if (!pause && strcmp(s, "Resumed"))
        return fail_field(q, "state", "unknown value `%.64s`, expected `Paused` or `Resumed`", s);
    switch (api->vm->state) {
    case VM_NOT_STARTED: return fail(q, "%s", MSG_PRE_BOOT);
    case VM_STOPPED: return fail(q, "The microVM has stopped.");
    case VM_PAUSED: return pause ? 0 : api->ops->resume(api->vm, q->e);
    default: return pause ? api->ops->pause(api->vm, q->e) : 0;
    }
}

static int petrel_stop(struct fc_req *q, json_t *o)
{
    static const struct fspec fields[] = {
        { "timeout_s", FT_UINT, false, NULL },
        { "force", FT_BOOL, false, NULL },
        { NULL, 0, false, NULL },
    };
    int ret = check_object(q, o, fields, true);
    if (ret < 0)
        return ret;
    json_t *t = jget(o, "timeout_s");
    if (t && json_integer_value(t) > FC_STOP_MAX_S)
        return fail_field(q, "timeout_s", "at most %d", FC_STOP_MAX_S);
    unsigned timeout = t ? (unsigned)json_integer_value(t) : 30;
    return q->api->ops->stop(q->api->vm, timeout, jget_bool(o, "force", false), q->e);
}

/* ---- the config file ----------------------------------------------------- */

static int apply_config(struct fc_req *q, json_t *root)
{
    static const char *const fc_only =
        "this Firecracker resource is not supported by Petrel (omit it or set it to null)";
    static const struct fspec fields[] = {
        { "boot-source", FT_OBJ, false, NULL },
        { "drives", FT_ARR, false, NULL },
        { "machine-config", FT_OBJ, false, NULL },
        { "network-interfaces", FT_ARR, false, NULL },
        { "logger", FT_OBJ, false, NULL },
        { "metrics", FT_OBJ, false, NULL },
        { "entropy", FT_OBJ, false, NULL },
        { "balloon", FT_NULL, false, NULL }, { "vsock", FT_NULL, false, NULL },
        { "mmds-config", FT_NULL, false, NULL }, { "cpu-config", FT_NULL, false, NULL },
        { "pmem", FT_NULL, false, NULL }, { "serial", FT_NULL, false, NULL },
        { "memory-hotplug", FT_NULL, false, NULL },
        { NULL, 0, false, NULL },
    };
    /* FT_NULL entries share one message */
    struct fspec f[sizeof(fields) / sizeof(fields[0])];
    memcpy(f, fields, sizeof(f));
    for (struct fspec *d = f; d->name; d++)
        if (d->type == FT_NULL)
            d->why = fc_only;
    int ret = check_object(q, root, f, true);
    if (ret < 0)
        return ret;
    json_t *v;
    if ((v = jget(root, "logger"))) {
        snprintf(q->where, sizeof(q->where), "logger");
        if ((ret = apply_logger(q, v)) < 0)
            return ret;
    }
    if ((v = jget(root, "metrics"))) {
        snprintf(q->where, sizeof(q->where), "metrics");
        if ((ret = apply_metrics(q, v)) < 0)
            return ret;
    }
    if ((v = jget(root, "machine-config"))) {
        snprintf(q->where, sizeof(q->where), "machine-config");
        if ((ret = apply_machine(q, v, false)) < 0)
            return ret;
    }
    if ((v = jget(root, "boot-source"))) {
        snprintf(q->where, sizeof(q->where), "boot-source");
        if ((ret = apply_boot_source(q, v)) < 0)
            return ret;
    }
    size_t i;
    json_t *x;
    json_array_foreach(jget(root, "drives"), i, x) {
        snprintf(q->where, sizeof(q->where), "drives[%zu]", i);
        if ((ret = apply_drive(q, x, NULL)) < 0)
            return ret;
    }
    json_array_foreach(jget(root, "network-interfaces"), i, x) {
        snprintf(q->where, sizeof(q->where), "network-interfaces[%zu]", i);
        if ((ret = apply_net(q, x, NULL)) < 0)
            return ret;
    }
    if ((v = jget(root, "entropy"))) {
        snprintf(q->where, sizeof(q->where), "entropy");
        if ((ret = apply_entropy(q, v)) < 0)
            return ret;
    }
    return 0;
}

int fc_api_load_config_file(struct fc_api *api, const char *path, struct err *e)
{
    struct fc_req q = { .api = api, .file = path, .e = e };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return err_set(e, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    char *buf = NULL;
    int ret;
    if (fstat(fd, &st) < 0) {
        ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = err_set(e, -EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > FC_CONFIG_MAX) {
        ret = err_set(e, -EFBIG, "%s: larger than %d bytes", path, FC_CONFIG_MAX);
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        ret = oom(&q);
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = err_set(e, -errno, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    json_error_t je;
    json_t *root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ret = fail(&q, "malformed JSON: %s at line %d, column %d", je.text, je.line, je.column);
        goto out;
    }
    ret = apply_config(&q, root);
    json_decref(root);
out:
    free(buf);
    close(fd);
    return ret;
}

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
    if (j && !jset(j, "fault_message", jstring(msg))) {
        json_decref(j);
        j = NULL;
    }
    reply_json(r, status, j);
    if (r->status == 500 && status != 500)
        r->status = 500;        /* out of memory on the way */
}

enum method { M_GET, M_PUT, M_PATCH, M_OTHER };

/* Firecracker's resources Petrel does not have. */
static bool fc_unsupported(const char *res)
{
    static const char *const names[] = { "balloon", "vsock", "mmds", "snapshot", "cpu-config",
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
        return fail(q, "malformed JSON: %s at line %d, column %d", je.text, je.line, je.column);
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
    unsigned status = 400;
    int ret = 0;
    json_t *in = NULL, *out = NULL;
    bool id_res = !strcmp(t0, "drives") || !strcmp(t0, "network-interfaces");
#define IS(s, n) (!bad_path && ntok == (n) && !strcmp(t0, s))
#define IS2(s0, s1) (!bad_path && ntok == 2 && !strcmp(t0, s0) && !strcmp(t1, s1))

    if (m == M_GET && len) {
        ret = fail(&q, "GET request cannot have a body.");
    } else if (!bad_path && fc_unsupported(t0)) {
        ret = fail(&q, "%s /%s: Firecracker's %s is not supported by Petrel", method, t0, t0);
    } else if (m == M_GET) {
        status = 200;
        if (ntok == 0 && !bad_path)
            out = instance_json(api);
        else if (IS("version", 1))
            out = json_pack("{s:s}", "firecracker_version", PETREL_VERSION);
        else if (IS("machine-config", 1))
            out = machine_json(api);
        else if (IS2("vm", "config"))
            out = config_json(api);
        else if (IS2("petrel", "info"))
            out = info_json(api);
        else if (IS2("petrel", "metrics"))
            out = metrics_json(api);
        else if (IS2("petrel", "console")) {
            status = 404;
            ret = fail(&q, "GET /petrel/console: the console ring is not available yet");
        } else {
            status = 400;
            ret = fail(&q, "Invalid request method and/or path: %s %s.", method, path);
        }
        if (!ret && !out)
            ret = oom(&q);
    } else if ((m == M_PUT || m == M_PATCH) && !len && !IS2("petrel", "stop")) {
        ret = fail(&q, "Empty %s request.", method);
    } else if (m == M_PUT || m == M_PATCH) {
        bool put = m == M_PUT;
        status = 204;
        if (id_res && !bad_path && ntok <= 2 && (ntok < 2 || !*t1)) {
            ret = fail(&q, "The ID cannot be empty.");
        } else if (id_res && IS(t0, 2) && (ret = check_id(&q, NULL, t1)) < 0) {
            /* the message is set */
        } else if (!(put && (IS("actions", 1) || IS("boot-source", 1) || IS("drives", 2) ||
                             IS("machine-config", 1) || IS("network-interfaces", 2) ||
                             IS("logger", 1) || IS("metrics", 1) || IS("entropy", 1) ||
                             IS2("petrel", "stop"))) &&
                   !(!put && (IS("drives", 2) || IS("machine-config", 1) ||
                              IS("network-interfaces", 2) || IS("vm", 1)))) {
            ret = fail(&q, "Invalid request method and/or path: %s %s.", method, path);
        } else if (!len) {
            in = json_object();         /* PUT /petrel/stop without a body */
            if (!in)
                ret = oom(&q);
        } else {
            ret = parse_body(&q, body, len, &in);
        }
        if (ret == 0) {
            if (IS("actions", 1))
                ret = apply_action(&q, in);
            else if (IS("boot-source", 1))
                ret = apply_boot_source(&q, in);
            else if (IS("drives", 2))
                ret = put ? apply_drive(&q, in, t1) : patch_drive(&q, in, t1);
            else if (IS("machine-config", 1))
                ret = apply_machine(&q, in, !put);
            else if (IS("network-interfaces", 2))
                ret = put ? apply_net(&q, in, t1) : patch_net(&q, in, t1);
            else if (IS("logger", 1))
                ret = apply_logger(&q, in);
            else if (IS("metrics", 1))
                ret = apply_metrics(&q, in);
            else if (IS("entropy", 1))
                ret = apply_entropy(&q, in);
            else if (IS("vm", 1))
                ret = patch_vm(&q, in);
            else
                ret = petrel_stop(&q, in);
        }
        json_decref(in);
    } else {
        ret = fail(&q, "Invalid request method and/or path: %s %s.", method, path);
    }
#undef IS
#undef IS2
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

const struct fc_host_ops fc_vm_host_ops = {
    .start = vm_start,
    .pause = vm_pause,
    .resume = vm_resume,
    .power_button = vm_power_button,
    .stop = vm_stop,
    .open_sink = default_open_sink,
};

void fc_api_set_host_ops(struct fc_api *api, const struct fc_host_ops *ops)
{
    api->ops = ops ? ops : &fc_vm_host_ops;
}

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
    net_free(&n);
    free(rest);
    free(mac);
    free(ifname);
    return -ENOMEM;
}

/* The model from vm->cfg, as the command line filled it. */
static int import_cfg(struct fc_api *api, struct err *e)
{
    const struct vm_config *c = &api->vm->cfg;
    api->vcpu_count = c->cpus ? c->cpus : 1;
    api->mem_size_mib = c->mem_size ? (unsigned)(c->mem_size >> 20) : FC_DEFAULT_MEM_MIB;
    const char *def = c->append ? c->append
                    : c->arch && !strcmp(c->arch, "x86_64") ? "console=ttyS0"
                    : "console=ttyS0 earlycon=sbi";
    if (vm_config_set(&api->default_append, def) < 0 ||
        vm_config_set(&api->kernel, c->kernel) < 0 || vm_config_set(&api->initrd, c->initrd) < 0 ||
        vm_config_set(&api->boot_args, c->kernel ? c->append : NULL) < 0)
        return err_set(e, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < c->ndisks && i < VM_MAX_DISKS; i++) {
        const struct disk_config *dc = &c->disks[i];
        struct fc_drive *d = &api->drives[api->ndrives];
        *d = (struct fc_drive){ .ro = dc->readonly, .cache_type = "Unsafe", .io_engine = "Sync",
                                .format = !dc->format ? NULL
                                        : !strcmp(dc->format, "qcow2") ? "qcow2" : "raw" };
        snprintf(d->serial, sizeof(d->serial), "%s", dc->serial);
        if (asprintf(&d->id, "disk%u", i) < 0 || !(d->path = strdup(dc->path ? dc->path : ""))) {
            if (d->id == NULL)
                memset(d, 0, sizeof(*d));
            drive_free(d);
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
    if (import_cfg(api, e) < 0)
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
        drive_free(&api->drives[i]);
    for (unsigned i = 0; i < api->nnets; i++)
        net_free(&api->nets[i]);
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

int fc_api_set_logger(struct fc_api *api, const char *log_path, const char *level,
                      bool show_level, bool show_log_origin, struct err *e)
{
    struct fc_req q = { .api = api, .e = e };
    if (!log_path && !level && !show_level && !show_log_origin)
        return 0;               /* no logger flag given: nothing to configure */
    json_t *o = json_pack("{s:b,s:b}", "show_level", show_level, "show_log_origin",
                          show_log_origin);
    if (!o || (log_path && !jset(o, "log_path", jstring(log_path))) ||
        (level && !jset(o, "level", jstring(level)))) {
        json_decref(o);
        return oom(&q);
    }
    int ret = apply_logger(&q, o);
    json_decref(o);
    return ret;
}

int fc_api_set_metrics(struct fc_api *api, const char *metrics_path, struct err *e)
{
    struct fc_req q = { .api = api, .e = e };
    json_t *o = json_object();
    if (!o || !jset(o, "metrics_path", jstring(metrics_path))) {
        json_decref(o);
        return oom(&q);
    }
    int ret = apply_metrics(&q, o);
    json_decref(o);
    return ret;
}
