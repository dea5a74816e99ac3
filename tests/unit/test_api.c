/* The REST API: fc_api_handle called directly on a real struct vm (from
 * vm_new, never started; InstanceStart and pause/resume go through fake
 * host ops where a started VM is needed), the config-file loader, and the
 * HTTP server over a real unix socket with libcurl clients. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/fc.h"
#include "api/http.h"
#include "core/evloop.h"

#include "unit.h"

static char dir[64];            /* a temporary directory for files */

static char *path_in(const char *name)
{
    static char bufs[8][256];
    static unsigned n;
    char *b = bufs[n++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    close(fd);
}

static char *read_file(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* printf into one of a few static buffers (request bodies) */
static const char *__attribute__((format(printf, 1, 2))) B(const char *fmt, ...)
{
    static char bufs[4][8192];
    static unsigned n;
    char *b = bufs[n++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(bufs[0]), fmt, ap);
    va_end(ap);
    return b;
}

/* ---- requests through fc_api_handle ------------------------------------- */

struct resp {
    unsigned status;
    char *body;                 /* "" if none */
    json_t *j;                  /* the body parsed, NULL if none */
};

static struct resp last;

static struct resp *call(struct fc_api *api, const char *method, const char *path,
                         const char *body)
{
    free(last.body);
    json_decref(last.j);
    memset(&last, 0, sizeof(last));
    struct http_reply r;
    fc_api_handle(api, method, path, "", body ? body : "", body ? strlen(body) : 0, &r);
    last.status = r.status;
    last.body = r.body ? r.body : strdup("");
    if (r.body) {
        if (!r.content_type || strcmp(r.content_type, "application/json"))
            printf("note: %s %s: content type %s\n", method, path,
                   r.content_type ? r.content_type : "(none)");
        last.j = json_loadb(r.body, r.len, 0, NULL);
    }
    return &last;
}

static const char *fault(const struct resp *r)
{
    const char *m = json_string_value(json_object_get(r->j, "fault_message"));
    return m ? m : "";
}

/* status, and (for errors) a fault_message containing want */
static void expect_(int line, struct fc_api *api, const char *method, const char *path,
                    const char *body, unsigned status, const char *want)
{
    struct resp *r = call(api, method, path, body);
    bool ok = r->status == status;
    if (ok && status >= 400)
        ok = r->j && json_is_string(json_object_get(r->j, "fault_message")) &&
             (!want || strstr(fault(r), want));
    if (ok && status == 204)
        ok = !r->body[0];
    if (ok) {
        unit_pass++;
    } else {
        unit_fail++;
        printf("FAIL %s:%d: %s %s: got %u %s, want %u%s%s\n", __FILE__, line, method, path,
               r->status, r->body, status, want ? " with " : "", want ? want : "");
    }
}

#define EXPECT(api, m, p, b, st, want) expect_(__LINE__, api, m, p, b, st, want)
#define OK(api, m, p, b) expect_(__LINE__, api, m, p, b, 204, NULL)

/* GET and return the parsed body (200 expected) */
static json_t *get(struct fc_api *api, const char *path)
{
    struct resp *r = call(api, "GET", path, NULL);
    CHECK(r->status == 200 && r->j, "GET %s: %u %s", path, r->status, r->body);
    return r->j;
}

static json_t *jpath(json_t *o, const char *path)
{
    /* "a.b" or "a[1].b" lookups, enough for these tests */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = o;
    for (char *s = strtok(buf, "."); s && v; s = strtok(NULL, ".")) {
        char *br = strchr(s, '[');
        if (br)
            *br = 0;
        v = json_object_get(v, s);
        if (br)
            v = json_array_get(v, strtoul(br + 1, NULL, 10));
    }
    return v;
}

static const char *jstr(json_t *o, const char *path)
{
    json_t *v = jpath(o, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jnum(json_t *o, const char *path)
{
    json_t *v = jpath(o, path);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static long long jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* ---- fake host ops: a VM that "starts" without a machine ---------------- */

static struct {
    struct vm_config cfg;       /* what InstanceStart built */
    int starts, pauses, resumes, buttons, stops;
    unsigned stop_timeout;
    bool stop_force;
    int start_ret;
} fake;

static int fake_start(struct vm *vm, struct err *e)
{
    fake.starts++;
    if (fake.start_ret < 0)
        return err_set(e, fake.start_ret, "fake start failure");
    vm_config_free(&fake.cfg);
    vm_config_copy(&fake.cfg, &vm->cfg, e);
    vm->state = VM_STATE_RUNNING;
    return 0;
}

static int fake_pause(struct vm *vm, struct err *e)
{
    (void)e;
    fake.pauses++;
    vm->state = VM_PAUSED;
    return 0;
}

static int fake_resume(struct vm *vm, struct err *e)
{
    (void)e;
    fake.resumes++;
    vm->state = VM_STATE_RUNNING;
    return 0;
}

static int fake_button(struct vm *vm, struct err *e)
{
    (void)vm;
    (void)e;
    fake.buttons++;
    return 0;
}

static int fake_stop(struct vm *vm, unsigned timeout_s, bool force, struct err *e)
{
    (void)vm;
    (void)e;
    fake.stops++;
    fake.stop_timeout = timeout_s;
    fake.stop_force = force;
    return 0;
}

static struct fc_host_ops fake_ops;

/* ---- files used as kernels, initrds and disks ---------------------------- */

static char *KERNEL, *INITRD, *ROOTFS, *DATA, *DATA2, *SUBDIR;

static void make_files(void)
{
    snprintf(dir, sizeof(dir), "/tmp/petrel-test-api-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    KERNEL = strdup(path_in("vmlinux"));
    INITRD = strdup(path_in("initrd"));
    ROOTFS = strdup(path_in("rootfs.img"));
    DATA = strdup(path_in("data,1.img"));       /* a comma: escaped in the disk spec */
    DATA2 = strdup(path_in("data2.img"));
    SUBDIR = strdup(path_in("subdir"));
    write_file(KERNEL, "not a kernel\n", 13);
    write_file(INITRD, "not an initrd\n", 14);
    static char sector[512];
    write_file(ROOTFS, sector, sizeof(sector));
    write_file(DATA, sector, sizeof(sector));
    write_file(DATA2, sector, sizeof(sector));
    mkdir(SUBDIR, 0700);
}

static struct vm *new_vm(void)
{
    struct err e;
    struct vm *vm = vm_new(&e);
    if (!vm) {
        printf("vm_new: %s\n", e.msg);
        exit(1);
    }
    return vm;
}

static struct fc_api *new_api(struct vm *vm, bool fake_host)
{
    struct err e;
    struct fc_api *api = fc_api_new(vm, "test-vm", &e);
    if (!api) {
        printf("fc_api_new: %s\n", e.msg);
        exit(1);
    }
    if (fake_host)
        fc_api_set_host_ops(api, &fake_ops);
    return api;
}

/* A VM "started" by the fakes must not be torn down as a real one. */
static void free_vm(struct vm *vm, struct fc_api *api)
{
    fc_api_free(api);
    vm->state = VM_NOT_STARTED;
    vm_free(vm);
}

/* ---- tests --------------------------------------------------------------- */

static void test_instance_info(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    json_t *j = get(api, "/");
    CHECK(jstr(j, "id") && !strcmp(jstr(j, "id"), "test-vm"), "id");
    CHECK(jstr(j, "state") && !strcmp(jstr(j, "state"), "Not started"), "state");
    CHECK(jstr(j, "app_name") && jstr(j, "vmm_version"), "app_name, vmm_version");
    j = get(api, "/version");
    CHECK(jstr(j, "firecracker_version") != NULL, "version");
    j = get(api, "//");     /* Firecracker trims leading slashes */
    CHECK(jstr(j, "id") != NULL, "GET //");
    free_vm(vm, api);
}

static void test_machine_config(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    json_t *j = get(api, "/machine-config");
    EQ(jint(j, "vcpu_count"), 1);
    EQ(jint(j, "mem_size_mib"), 128);       /* Firecracker's default, nothing pre-filled */
    CHECK(json_is_false(json_object_get(j, "smt")), "smt false");

    OK(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
    j = get(api, "/machine-config");
    EQ(jint(j, "vcpu_count"), 2);
    EQ(jint(j, "mem_size_mib"), 256);
    OK(api, "PATCH", "/machine-config", "{\"mem_size_mib\": 512}");
    j = get(api, "/machine-config");
    EQ(jint(j, "vcpu_count"), 2);
    EQ(jint(j, "mem_size_mib"), 512);
    OK(api, "PUT", "/machine-config/", "{\"vcpu_count\": 2, \"mem_size_mib\": 512, \"smt\": false,"
       " \"track_dirty_pages\": true, \"cpu_template\": \"None\", \"huge_pages\": \"None\"}");
    j = get(api, "/machine-config");
    CHECK(json_is_true(json_object_get(j, "track_dirty_pages")), "track_dirty_pages");
    /* a PUT resets what it does not give */
    OK(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 512}");
    CHECK(json_is_false(json_object_get(get(api, "/machine-config"), "track_dirty_pages")),
          "PUT resets track_dirty_pages");

    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, "
           "\"foo\": 1}", 400, "unknown field `foo`");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": \"4\", \"mem_size_mib\": 128}", 400,
           "vcpu_count: expected an integer, got a string");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 1.5, \"mem_size_mib\": 128}", 400,
           "vcpu_count: expected an integer, got a number");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 128, "
           "\"smt\": \"no\"}", 400, "smt: expected a boolean, got a string");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 1}", 400,
           "missing field `mem_size_mib`");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": null, \"mem_size_mib\": 128}", 400,
           "vcpu_count: expected an integer, got null");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 128}", 400,
           "vcpu_count: must be 1 to 32");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 33, \"mem_size_mib\": 128}", 400,
           "vcpu_count");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": -1, \"mem_size_mib\": 128}", 400,
           "non-negative");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 8}", 400,
           "mem_size_mib: must be 16 to");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": "
           "99999999999999999999}", 400, "malformed JSON");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 128, "
           "\"smt\": true}", 400, "smt");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 128, "
           "\"cpu_template\": \"T2\"}", 400, "cpu_template: `T2` is not supported");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 128, "
           "\"huge_pages\": \"2M\"}", 400, "huge_pages");
    EXPECT(api, "PATCH", "/machine-config", "{}", 400, "Empty PATCH request.");
    EXPECT(api, "PATCH", "/machine-config", "{\"vcpu_count\": 1,", 400,
           "malformed JSON: ");
    EXPECT(api, "PATCH", "/machine-config", "{\"vcpu_count\": 1,", 400, "line 1, column");
    EXPECT(api, "PATCH", "/machine-config", "{\"vcpu_count\": 1, \"vcpu_count\": 2}", 400,
           "duplicate");
    EXPECT(api, "PATCH", "/machine-config", "[1, 2]", 400, "expected a JSON object, got an "
           "array");
    EXPECT(api, "PUT", "/machine-config", "", 400, "Empty PUT request.");
    EXPECT(api, "PATCH", "/machine-config", "", 400, "Empty PATCH request.");
    /* a refused request changes nothing, even the fields that were valid */
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 7, \"mem_size_mib\": 1}", 400,
           "mem_size_mib");
    j = get(api, "/machine-config");
    EQ(jint(j, "vcpu_count"), 2);
    EQ(jint(j, "mem_size_mib"), 512);
    free_vm(vm, api);

    /* the limit follows the architecture */
    vm = new_vm();
    vm_config_set(&vm->cfg.arch, "x86_64");
    api = new_api(vm, true);
    OK(api, "PUT", "/machine-config", "{\"vcpu_count\": 64, \"mem_size_mib\": 128}");
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 65, \"mem_size_mib\": 128}", 400,
           "must be 1 to 64 (x86_64 guests)");
    free_vm(vm, api);
}

static void test_boot_source(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    OK(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
       "\"boot_args\": \"console=ttyS0 quiet\"}", KERNEL, INITRD));
    json_t *j = get(api, "/vm/config");
    CHECK(jstr(j, "boot-source.kernel_image_path") &&
          !strcmp(jstr(j, "boot-source.kernel_image_path"), KERNEL), "kernel");
    CHECK(jstr(j, "boot-source.boot_args") &&
          !strcmp(jstr(j, "boot-source.boot_args"), "console=ttyS0 quiet"), "boot_args");
    /* a PUT replaces the whole boot source */
    OK(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\"}", KERNEL));
    j = get(api, "/vm/config");
    CHECK(!jstr(j, "boot-source.initrd_path") && !jstr(j, "boot-source.boot_args"),
          "initrd and boot_args gone");
    EXPECT(api, "PUT", "/boot-source", "{\"initrd_path\": \"/x\"}", 400,
           "missing field `kernel_image_path`");
    EXPECT(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s/nope\"}", dir), 400,
           "kernel_image_path: cannot open");
    EXPECT(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\"}", SUBDIR), 400,
           "is not a regular file");
    EXPECT(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\", \"initrd_path\": "
           "\"%s/nope\"}", KERNEL, dir), 400, "initrd_path: cannot open");
    EXPECT(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\", \"boot_args\": 1}",
           KERNEL), 400, "boot_args: expected a string, got an integer");
    EXPECT(api, "PUT", "/boot-source", "{\"kernel_image_path\": \"\"}", 400, "must not be empty");
    free_vm(vm, api);
}

static const char *drive(const char *id, const char *path, bool root, const char *extra)
{
    return B("{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": %s%s%s}", id,
             path, root ? "true" : "false", extra ? ", " : "", extra ? extra : "");
}

static void test_drives(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    OK(api, "PUT", "/drives/data", drive("data", DATA, false, "\"is_read_only\": true"));
    OK(api, "PUT", "/drives/rootfs", drive("rootfs", ROOTFS, true,
       "\"cache_type\": \"Writeback\", \"io_engine\": \"Async\", \"rate_limiter\": null"));
    EXPECT(api, "PUT", "/drives/other", drive("other", DATA2, true, NULL), 400,
           "A root block device already exists! (drive `rootfs`)");
    /* the root device itself may be updated */
    OK(api, "PUT", "/drives/rootfs", drive("rootfs", ROOTFS, true, "\"partuuid\": \"0eaa91a0-01\""));
    json_t *j = get(api, "/vm/config");
    /* the root device comes first (the guest's vda), the others in creation order */
    CHECK(jstr(j, "drives[0].drive_id") && !strcmp(jstr(j, "drives[0].drive_id"), "rootfs"),
          "root first");
    CHECK(jstr(j, "drives[1].drive_id") && !strcmp(jstr(j, "drives[1].drive_id"), "data"),
          "data second");
    CHECK(jstr(j, "drives[0].partuuid") && !strcmp(jstr(j, "drives[0].partuuid"), "0eaa91a0-01"),
          "partuuid");
    CHECK(jstr(j, "drives[0].cache_type") && !strcmp(jstr(j, "drives[0].cache_type"), "Unsafe"),
          "a PUT resets cache_type to its default");

    EXPECT(api, "PUT", "/drives/foo", drive("bar", DATA2, false, NULL), 400,
           "The id from the path does not match the id from the body!");
    EXPECT(api, "PUT", "/drives/a-b", drive("a-b", DATA2, false, NULL), 400,
           "API Resource IDs can only contain alphanumeric characters and underscores.");
    EXPECT(api, "PUT", "/drives/", drive("x", DATA2, false, NULL), 400, "The ID cannot be empty.");
    EXPECT(api, "PUT", "/drives", drive("x", DATA2, false, NULL), 400, "The ID cannot be empty.");
    EXPECT(api, "PUT", "/drives/x/y", drive("x", DATA2, false, NULL), 400,
           "Invalid request method and/or path");
    EXPECT(api, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/dev/null\"}", 400,
           "missing field `is_root_device`");
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"is_read_only\": \"yes\""), 400,
           "is_read_only: expected a boolean, got a string");
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"cache_type\": \"None\""), 400,
           "cache_type: unknown value `None`");
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"io_engine\": \"Turbo\""), 400,
           "io_engine");
    /* rate limiters: Firecracker's objects, checked field by field */
    OK(api, "PUT", "/drives/data", drive("data", DATA, false, "\"is_read_only\": true, "
       "\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}, "
       "\"ops\": {\"size\": 50, \"one_time_burst\": 500, \"refill_time\": 1000}}"));
    j = get(api, "/vm/config");
    EQ(jnum(j, "drives[1].rate_limiter.bandwidth.size"), 1000);
    EQ(jnum(j, "drives[1].rate_limiter.bandwidth.refill_time"), 100);
    EQ(jnum(j, "drives[1].rate_limiter.ops.one_time_burst"), 500);
    CHECK(!jpath(j, "drives[0].rate_limiter"), "an unlimited drive has none");
    static const struct { const char *body, *want; } bad_rl[] = {
        { "{\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}",
          "rate_limiter.bandwidth.size: expected a non-negative integer, got -1" },
        { "{\"bandwidth\": {\"size\": 2251799813685249, \"refill_time\": 100}}",
          "rate_limiter.bandwidth.size: at most 1125899906842624" },
        { "{\"ops\": {\"size\": 1, \"refill_time\": 99999999999}}",
          "rate_limiter.ops.refill_time: at most" },
        { "{\"ops\": {\"size\": 1, \"refill_time\": 1, \"one_time_burst\": -5}}",
          "rate_limiter.ops.one_time_burst: expected a non-negative integer" },
        { "{\"bandwidth\": {\"size\": 1}}", "rate_limiter.bandwidth: missing field `refill_time`" },
        { "{\"bandwidth\": {\"size\": 1, \"refill_time\": 1, \"rate\": 2}}",
          "rate_limiter.bandwidth: unknown field `rate`" },
        { "{\"iops\": {\"size\": 1, \"refill_time\": 1}}", "rate_limiter: unknown field `iops`" },
        { "{\"bandwidth\": \"4M\"}", "rate_limiter.bandwidth: expected an object, got a string" },
        { "{\"bandwidth\": {\"size\": 1.5, \"refill_time\": 1}}",
          "rate_limiter.bandwidth.size: expected an integer" },
        { "[1]", "rate_limiter: expected an object" },
    };
    for (unsigned i = 0; i < sizeof(bad_rl) / sizeof(bad_rl[0]); i++)
        EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, B("\"rate_limiter\": %s",
               bad_rl[i].body)), 400, bad_rl[i].want);
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"socket\": \"/tmp/vhost.sock\""),
           400, "socket: vhost-user");
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"partuuid\": \"a b\""), 400,
           "partuuid");
    EXPECT(api, "PUT", "/drives/x", drive("x", "/nonexistent/disk.img", false, NULL), 400,
           "path_on_host: cannot open `/nonexistent/disk.img`");
    EXPECT(api, "PUT", "/drives/x", drive("x", SUBDIR, false, NULL), 400,
           "not a regular file or a block device");
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, "\"direct_write\": true"), 400,
           "unknown field `direct_write`");

    /* PATCH: the backing file */
    OK(api, "PATCH", "/drives/data", B("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}", DATA2));
    j = get(api, "/vm/config");
    CHECK(jstr(j, "drives[1].path_on_host") && !strcmp(jstr(j, "drives[1].path_on_host"), DATA2),
          "patched path");
    OK(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": null}");
    EXPECT(api, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\"}", 400,
           "drive `nope` does not exist");
    EXPECT(api, "PATCH", "/drives/data", "{\"drive_id\": \"datb\"}", 400, "does not match");
    EXPECT(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"is_read_only\": false}", 400,
           "unknown field `is_read_only`");
    /* PATCH before start: the model; a bucket given replaces, one absent stays */
    OK(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": {}}");
    OK(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\":"
       " {\"size\": 4096, \"refill_time\": 1000}}}");
    j = get(api, "/vm/config");
    EQ(jnum(j, "drives[1].rate_limiter.bandwidth.size"), 4096);
    EQ(jnum(j, "drives[1].rate_limiter.ops.size"), 50);
    EXPECT(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": "
           "{\"ops\": {\"size\": -3, \"refill_time\": 1}}}", 400,
           "rate_limiter.ops.size: expected a non-negative integer");
    OK(api, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\":"
       " {\"size\": 0, \"refill_time\": 0}}}");
    CHECK(!jpath(get(api, "/vm/config"), "drives[1].rate_limiter.ops"), "ops bucket off");

    /* demoting the root device frees the place */
    OK(api, "PUT", "/drives/rootfs", drive("rootfs", ROOTFS, false, NULL));
    OK(api, "PUT", "/drives/other", drive("other", DATA2, true, NULL));
    j = get(api, "/vm/config");
    CHECK(jstr(j, "drives[0].drive_id") && !strcmp(jstr(j, "drives[0].drive_id"), "other"),
          "new root first");

    /* at most VM_MAX_DISKS drives */
    char id[16];
    for (unsigned i = 3; i < VM_MAX_DISKS; i++) {
        snprintf(id, sizeof(id), "d%u", i);
        OK(api, "PUT", B("/drives/%s", id), drive(id, DATA2, false, NULL));
    }
    EXPECT(api, "PUT", "/drives/toomany", drive("toomany", DATA2, false, NULL), 400,
           "too many drives");
    free_vm(vm, api);
}

static const char *nic(const char *id, const char *dev, const char *extra)
{
    return B("{\"iface_id\": \"%s\", \"host_dev_name\": \"%s\"%s%s}", id, dev,
             extra ? ", " : "", extra ? extra : "");
}

static void test_network(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    OK(api, "PUT", "/network-interfaces/eth0", nic("eth0", "tap0",
       "\"guest_mac\": \"02:00:00:00:00:01\""));
    OK(api, "PUT", "/network-interfaces/eth1", nic("eth1",
       "petrel:net=user,hostfwd=tcp:127.0.0.1:2222-:22", NULL));
    OK(api, "PUT", "/network-interfaces/eth2", nic("eth2", "petrel:net=private,name=lan0",
       "\"guest_mac\": \"02:00:00:00:00:02\", \"mtu\": 1500, \"rx_rate_limiter\": null"));
    /* updating an interface keeps its place and its own name and MAC are no clash */
    OK(api, "PUT", "/network-interfaces/eth0", nic("eth0", "tap0",
       "\"guest_mac\": \"02:00:00:00:00:01\""));
    json_t *j = get(api, "/vm/config");
    CHECK(jstr(j, "network-interfaces[0].host_dev_name") &&
          !strcmp(jstr(j, "network-interfaces[0].host_dev_name"), "tap0"), "eth0");
    CHECK(jstr(j, "network-interfaces[2].guest_mac") &&
          !strcmp(jstr(j, "network-interfaces[2].guest_mac"), "02:00:00:00:00:02"), "eth2 mac");

    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap0", NULL), 400,
           "host_dev_name: The host device name `tap0` is already in use");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3",
           "\"guest_mac\": \"02:00:00:00:00:01\""), 400, "The MAC address `02:00:00:00:00:01` "
           "is already in use");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3",
           "\"guest_mac\": \"02:00:00:00:00\""), 400, "guest_mac: `02:00:00:00:00`: expected six");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3",
           "\"guest_mac\": \"01:00:00:00:00:01\""), 400, "multicast");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3",
           "\"guest_mac\": \"00:00:00:00:00:00\""), 400, "zero address");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3",
           "\"guest_mac\": \"0g:00:00:00:00:01\""), 400, "expected six hex bytes");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "a-very-long-tap-name", NULL), 400,
           "at most 15 characters");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap/3", NULL), 400,
           "not an interface name");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "", NULL), 400, "must not be empty");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "petrel:", NULL), 400,
           "needs virtio-net options");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "petrel:net=user,bogus=1", NULL),
           400, "unknown virtio-net option `bogus`");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "petrel:net=slirp", NULL), 400,
           "net=slirp: unknown backend");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "petrel:mac=02:00:00:00:00:09",
           NULL), 400, "give the MAC address as guest_mac");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3", "\"mtu\": 9000"), 400,
           "mtu: Petrel's virtio-net has a fixed MTU of 1500");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "tap3", "\"tx_rate_limiter\": "
           "{\"ops\": {\"size\": 1, \"refill_time\": -1}}"), 400,
           "tx_rate_limiter.ops.refill_time: expected a non-negative integer");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth3", "petrel:net=user,rx_bps=5", NULL),
           400, "unknown virtio-net option `rx_bps`");
    EXPECT(api, "PUT", "/network-interfaces/eth3", "{\"iface_id\": \"eth3\"}", 400,
           "missing field `host_dev_name`");
    EXPECT(api, "PUT", "/network-interfaces/eth3", nic("eth4", "tap4", NULL), 400,
           "does not match");

    OK(api, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": "
       "null}");
    OK(api, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"rx_rate_limiter\":"
       " {\"bandwidth\": {\"size\": 1000, \"refill_time\": 10}}, \"tx_rate_limiter\": "
       "{\"ops\": {\"size\": 7, \"refill_time\": 1000}}}");
    json_t *jn = get(api, "/vm/config");
    EQ(jnum(jn, "network-interfaces[0].rx_rate_limiter.bandwidth.size"), 1000);
    EQ(jnum(jn, "network-interfaces[0].tx_rate_limiter.ops.size"), 7);
    EXPECT(api, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"tx_rate_limiter\":"
           " {\"ops\": {\"size\": 1}}}", 400, "tx_rate_limiter.ops: missing field `refill_time`");
    EXPECT(api, "PATCH", "/network-interfaces/eth9", "{\"iface_id\": \"eth9\"}", 400,
           "network interface `eth9` does not exist");
    EXPECT(api, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
           "\"tap9\"}", 400, "unknown field `host_dev_name`");

    /* entropy */
    OK(api, "PUT", "/entropy", "{}");
    OK(api, "PUT", "/entropy", "{\"rate_limiter\": null}");
    EXPECT(api, "PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1, "
           "\"refill_time\": 1}}}", 400, "rate_limiter: rate limiting");
    EXPECT(api, "PUT", "/entropy", "{\"rate\": 1}", 400, "unknown field `rate`");
    CHECK(json_is_object(json_object_get(get(api, "/vm/config"), "entropy")), "entropy");

    /* network cards and entropy share VM_MAX_DEVICES */
    for (unsigned i = 3; i < VM_MAX_DEVICES - 1; i++)
        OK(api, "PUT", B("/network-interfaces/n%u", i), nic(B("n%u", i), "petrel:net=user", NULL));
    EXPECT(api, "PUT", "/network-interfaces/nx", nic("nx", "petrel:net=user", NULL), 400,
           "too many devices");
    free_vm(vm, api);
}

static void test_logger_metrics(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, false);    /* real sinks: files in dir */
    char *log = strdup(path_in("vmm.log")), *metrics = strdup(path_in("metrics.json"));
    OK(api, "PUT", "/logger", B("{\"log_path\": \"%s\", \"level\": \"info\", "
       "\"show_level\": true, \"show_log_origin\": false}", log));
    log_info("hello from the test");
    log_debug("not shown at Info");
    CHECK(strstr(read_file(log), "[Info] hello from the test") != NULL, "log line: %s",
          read_file(log));
    CHECK(!strstr(read_file(log), "not shown"), "debug line filtered");
    /* the API's own error lines go there too */
    EXPECT(api, "PUT", "/logger", "{\"level\": \"Loud\"}", 400, "level: unknown value `Loud`");
    CHECK(strstr(read_file(log), "Loud") != NULL, "the refused request is logged");
    EXPECT(api, "PUT", "/logger", "{\"module\": \"api_server\"}", 400, "module");
    EXPECT(api, "PUT", "/logger", B("{\"log_path\": \"%s\"}", SUBDIR), 400,
           "log_path: `");
    EXPECT(api, "PUT", "/logger", "{\"log_path\": \"/nonexistent/dir/log\"}", 400,
           "log_path: cannot open");
    json_t *j = get(api, "/vm/config");
    CHECK(jstr(j, "logger.level") && !strcmp(jstr(j, "logger.level"), "Info"), "logger level");
    CHECK(jstr(j, "logger.log_path") && !strcmp(jstr(j, "logger.log_path"), log), "logger path");

    EXPECT(api, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400,
           "no metrics sink");
    EXPECT(api, "PUT", "/metrics", "{}", 400, "missing field `metrics_path`");
    OK(api, "PUT", "/metrics", B("{\"metrics_path\": \"%s\"}", metrics));
    OK(api, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
    OK(api, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
    char *text = read_file(metrics), *nl = strchr(text, '\n');
    CHECK(nl && strchr(nl + 1, '\n') && !strchr(strchr(nl + 1, '\n') + 1, '\n'),
          "two lines: %s", text);
    json_t *m = json_loadb(text, nl ? (size_t)(nl - text) : strlen(text), 0, NULL);
    CHECK(m != NULL, "metrics line is JSON: %s", text);
    static const char *const keys[] = { "utc_timestamp_ms", "uptime_s", "state", "vcpus",
                                        "memory", "block", "net" };
    for (unsigned i = 0; m && i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(json_object_get(m, keys[i]) != NULL, "metrics key %s", keys[i]);
    CHECK(jint(json_object_get(m, "memory"), "vmm_rss_bytes") > 0, "rss");
    CHECK(json_array_size(json_object_get(m, "vcpus")) == 0, "no CPUs before start");
    json_decref(m);
    j = get(api, "/petrel/metrics");
    CHECK(json_is_array(json_object_get(j, "block")) && json_is_array(json_object_get(j, "net")),
          "GET /petrel/metrics");
    CHECK(jstr(get(api, "/vm/config"), "metrics.metrics_path") != NULL, "metrics in config");

    fc_api_free(api);   /* the log goes back to stderr */
    log_set_verbose(0);
    vm_free(vm);
    free(log);
    free(metrics);
}

static void test_methods_paths(void)
{
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, true);
    EXPECT(api, "DELETE", "/machine-config", NULL, 400,
           "Invalid request method and/or path: DELETE /machine-config.");
    EXPECT(api, "POST", "/", NULL, 400, "Invalid request method and/or path");
    EXPECT(api, "GET", "/drives/rootfs", NULL, 400, "Invalid request method and/or path");
    EXPECT(api, "GET", "/boot-source", NULL, 400, "Invalid request method and/or path");
    EXPECT(api, "PUT", "/vm", "{\"state\": \"Paused\"}", 400,
           "Invalid request method and/or path: PUT /vm.");
    EXPECT(api, "PATCH", "/boot-source", "{}", 400, "Invalid request method and/or path");
    EXPECT(api, "GET", "/nothing/here", NULL, 400, "Invalid request method and/or path");
    EXPECT(api, "GET", "/vm/config/x", NULL, 400, "Invalid request method and/or path");
    EXPECT(api, "GET", "/", "{}", 400, "GET request cannot have a body.");
    EXPECT(api, "PUT", "/mmds", "{}", 400, "mmds is not supported by Petrel");
    /* the balloon before the start: PUT and GET; PATCH and statistics later */
    EXPECT(api, "GET", "/balloon", NULL, 400, "No balloon device configured");
    EXPECT(api, "PUT", "/balloon", "{\"amount_mib\": 100000, \"deflate_on_oom\": true}", 400,
           "amount_mib: expected at most 65536 MiB");
    EXPECT(api, "PUT", "/balloon", "{\"amount_mib\": 60000, \"deflate_on_oom\": true}", 400,
           "larger than the guest's RAM");
    EXPECT(api, "PUT", "/balloon", "{\"amount_mib\": 1}", 400, "missing field `deflate_on_oom`");
    EXPECT(api, "PUT", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": true, "
           "\"free_page_hinting\": true}", 400, "free page hinting is not supported");
    EXPECT(api, "PUT", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": true, "
           "\"stats_polling_interval_s\": 86401}", 400, "stats_polling_interval_s");
    OK(api, "PUT", "/balloon", "{\"amount_mib\": 2, \"deflate_on_oom\": false}");
    OK(api, "PUT", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": true, "
       "\"stats_polling_interval_s\": 3, \"free_page_reporting\": true}");
    {
        json_t *b = get(api, "/balloon");
        char *s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        const char *want = "{\"amount_mib\":1,\"deflate_on_oom\":true,"
                           "\"free_page_reporting\":true,\"stats_polling_interval_s\":3}";
        CHECK(s && !strcmp(s, want), "GET /balloon: %s", s ? s : "(null)");
        free(s);
        b = get(api, "/vm/config");
        s = json_dumps(json_object_get(b, "balloon"), JSON_COMPACT | JSON_SORT_KEYS);
        CHECK(s && !strcmp(s, want), "GET /vm/config's balloon: %s", s ? s : "(null)");
        free(s);
    }
    EXPECT(api, "PATCH", "/balloon", "{\"amount_mib\": 1}", 400,
           "not supported before starting the microVM");
    EXPECT(api, "GET", "/balloon/statistics", NULL, 400, "not supported before starting");
    EXPECT(api, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}", 400,
           "not supported before starting");
    EXPECT(api, "PUT", "/vsock", "{\"guest_cid\": 1, \"uds_path\": \"/v\"}", 400,
           "expected a CID");
    EXPECT(api, "PUT", "/vsock", "{\"guest_cid\": 3}", 400, "missing field `uds_path`");
    EXPECT(api, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"\"}", 400, "uds_path");
    /* snapshots: bodies are checked, create needs a started VM */
    EXPECT(api, "PUT", "/snapshot/create", "{}", 400, "missing field `snapshot_path`");
    EXPECT(api, "PUT", "/snapshot/create",
           "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", 400,
           "not supported before starting the microVM");
    EXPECT(api, "PUT", "/snapshot/create",
           "{\"snapshot_type\": \"Incremental\", \"snapshot_path\": \"/s\", "
           "\"mem_file_path\": \"/m\"}", 400, "snapshot_type: unknown value `Incremental`");
    EXPECT(api, "PUT", "/snapshot/create",
           "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"tag\": \"a b\"}", 400,
           "tag: expected 1 to 64 letters");
    EXPECT(api, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\"}", 400,
           "exactly one of `mem_file_path` and `mem_backend`");
    EXPECT(api, "PUT", "/snapshot/load",
           "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
           "\"mem_backend\": {\"backend_path\": \"/m\", \"backend_type\": \"File\"}}", 400,
           "exactly one of `mem_file_path` and `mem_backend`");
    EXPECT(api, "PUT", "/snapshot/load",
           "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": \"/m\", "
           "\"backend_type\": \"Uffd\"}}", 400, "only the `File` backend");
    EXPECT(api, "PUT", "/snapshot/load",
           "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": \"/m\"}}",
           400, "missing field `backend_type`");
    EXPECT(api, "PUT", "/snapshot/load",
           "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
           "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\"}]}",
           400, "network overrides");
    EXPECT(api, "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
           "action_type: unknown value `Reboot`");
    EXPECT(api, "PUT", "/actions", "{}", 400, "missing field `action_type`");
    EXPECT(api, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
           "not supported before starting the microVM");
    /* invalid state: pause before start */
    EXPECT(api, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400,
           "The requested operation is not supported before starting the microVM.");
    EXPECT(api, "PATCH", "/vm", "{\"state\": \"Running\"}", 400, "state: unknown value `Running`");
    EXPECT(api, "PATCH", "/vm", "{\"state\": 1}", 400, "state: expected a string");
    EXPECT(api, "GET", "/petrel/console", NULL, 404, "not available yet");
    /* a non-UTF-8 path still gets a valid JSON answer */
    struct resp *r = call(api, "GET", "/\xff\xfe", NULL);
    CHECK(r->status == 400 && r->j, "non-UTF-8 path: %u %s", r->status, r->body);
    /* well-formed bytes, but past U+10FFFF, a surrogate, an overlong form
     * (found by fuzz_api: jansson refused the message, the answer was a
     * bodiless 500) */
    r = call(api, "\xdf", "0\xf5\xa2\xa2\xa2\xed\xa0\x80\xe0\x80\xaf\xc0\xaf", NULL);
    CHECK(r->status == 400 && r->j && strstr(fault(r), "Invalid request method"),
          "non-UTF-8 method and path: %u %s", r->status, r->body);

    json_t *j = get(api, "/petrel/info");
    EQ(jint(j, "pid"), getpid());
    CHECK(jstr(j, "arch") && !strcmp(jstr(j, "arch"), "riscv64"), "arch");
    CHECK(json_is_null(json_object_get(j, "api_sock")), "api_sock null");
    fc_api_set_sockets(api, "/run/x/api.sock", NULL);
    CHECK(jstr(get(api, "/petrel/info"), "api_sock") != NULL, "api_sock set");

    /* /petrel/stop: defaults, options, a body without braces */
    OK(api, "PUT", "/petrel/stop", NULL);
    CHECK(fake.stops == 1 && fake.stop_timeout == 30 && !fake.stop_force, "stop defaults");
    OK(api, "PUT", "/petrel/stop", "{\"timeout_s\": 5, \"force\": true}");
    CHECK(fake.stops == 2 && fake.stop_timeout == 5 && fake.stop_force, "stop options");
    EXPECT(api, "PUT", "/petrel/stop", "{\"timeout_s\": 100000}", 400, "timeout_s: at most");
    EXPECT(api, "PUT", "/petrel/stop", "{\"now\": true}", 400, "unknown field `now`");
    free_vm(vm, api);
}

static bool has_device(const struct vm_config *c, unsigned i, const char *spec)
{
    bool ok = i < c->ndevices && !strcmp(c->devices[i], spec);
    if (!ok)
        printf("  device %u: %s, want %s\n", i, i < c->ndevices ? c->devices[i] : "(none)", spec);
    return ok;
}

static void test_instance_start(void)
{
    struct vm *vm = new_vm();
    vm_config_set(&vm->cfg.firmware, "none");  /* vm_config_defaults needs no guest dir */
    struct fc_api *api = new_api(vm, true);
    OK(api, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
    OK(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\", \"boot_args\": "
       "\"console=ttyS0\"}", KERNEL));
    OK(api, "PUT", "/drives/data", drive("data", DATA, false, "\"is_read_only\": true"));
    OK(api, "PUT", "/drives/rootfs", drive("rootfs", ROOTFS, true, NULL));
    OK(api, "PUT", "/network-interfaces/eth0", nic("eth0", "tap0",
       "\"guest_mac\": \"02:00:00:00:00:01\""));
    OK(api, "PUT", "/network-interfaces/eth1", nic("eth1", "petrel:net=user,hostfwd=tcp::2222-:22",
       NULL));
    OK(api, "PUT", "/entropy", "{}");

    /* a failing start: 400, still "Not started", configuration unchanged */
    fake.start_ret = -EIO;
    EXPECT(api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
           "fake start failure");
    CHECK(vm->state == VM_NOT_STARTED && !vm->cfg.kernel, "state and cfg after a failed start");
    CHECK(!strcmp(jstr(get(api, "/"), "state"), "Not started"), "GET / after a failed start");

    fake.start_ret = 0;
    OK(api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    const struct vm_config *c = &fake.cfg;
    EQ(fake.starts, 2);
    EQ(c->cpus, 2);
    EQ(c->mem_size, 256ull << 20);
    CHECK(c->kernel && !strcmp(c->kernel, KERNEL), "kernel");
    CHECK(c->append && !strcmp(c->append, "console=ttyS0 root=/dev/vda rw"), "append: %s",
          c->append ? c->append : "(null)");
    EQ(c->ndisks, 2);
    CHECK(c->ndisks == 2 && !strcmp(c->disks[0].path, ROOTFS) && !c->disks[0].readonly,
          "vda is the root device");
    CHECK(c->ndisks == 2 && !strcmp(c->disks[1].path, DATA) && c->disks[1].readonly,
          "vdb: the comma in its name survived the disk spec (%s)", c->disks[1].path);
    EQ(c->ndevices, 3);
    CHECK(has_device(c, 0, "virtio-net,net=tap,ifname=tap0,mac=02:00:00:00:00:01"), "net 0");
    CHECK(has_device(c, 1, "virtio-net,net=user,hostfwd=tcp::2222-:22"), "net 1");
    CHECK(has_device(c, 2, "virtio-rng"), "rng");
    CHECK(!strcmp(jstr(get(api, "/"), "state"), "Running"), "Running");

    /* after start: pre-boot resources refused, in Firecracker's words */
    static const char post[] = "not supported after starting the microVM";
    EXPECT(api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, post);
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}", 400, post);
    EXPECT(api, "PATCH", "/machine-config", "{\"vcpu_count\": 1}", 400, post);
    EXPECT(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\"}", KERNEL), 400, post);
    EXPECT(api, "PUT", "/drives/x", drive("x", DATA2, false, NULL), 400, post);
    EXPECT(api, "PUT", "/network-interfaces/eth5", nic("eth5", "tap5", NULL), 400, post);
    EXPECT(api, "PUT", "/entropy", "{}", 400, post);
    /* a field error still comes first, as in Firecracker (the body is parsed first) */
    EXPECT(api, "PUT", "/machine-config", "{\"vcpu_count\": \"1\"}", 400, "expected an integer");
    /* PATCH of a drive: the same file is fine, another one is not supported yet */
    OK(api, "PATCH", "/drives/data", B("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}", DATA));
    EXPECT(api, "PATCH", "/drives/data", B("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
           DATA2), 400, "not supported by Petrel yet");
    /* pause, resume, idempotent */
    OK(api, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    OK(api, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    CHECK(!strcmp(jstr(get(api, "/"), "state"), "Paused"), "Paused");
    OK(api, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
    EQ(fake.pauses, 1);
    EQ(fake.resumes, 1);
    OK(api, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
    EQ(fake.buttons, 1);
    vm->state = VM_STOPPED;
    EXPECT(api, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 400, "stopped");
    free_vm(vm, api);
    vm_config_free(&fake.cfg);

    /* with the real vm_start: a kernel that is no kernel is a 400 and the
     * VM stays "Not started", its configuration as it was */
    vm = new_vm();
    vm_config_set(&vm->cfg.firmware, "none");
    api = new_api(vm, false);
    OK(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\"}", KERNEL));
    struct resp *r = call(api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    CHECK(r->status == 400 && fault(r)[0], "real InstanceStart of a text file: %u %s", r->status,
          r->body);
    CHECK(vm->state == VM_NOT_STARTED, "state %s", vm_state_name(vm->state));
    CHECK(!vm->cfg.kernel && vm->cfg.firmware && !strcmp(vm->cfg.firmware, "none"),
          "configuration restored");
    CHECK(!strcmp(jstr(get(api, "/"), "state"), "Not started"), "GET / after a failed start");
    free_vm(vm, api);
}

/* The command line's configuration seeds the model. */
static void test_cli_import(void)
{
    struct vm *vm = new_vm();
    struct err e;
    struct vm_config *c = &vm->cfg;
    vm_config_set(&c->arch, "riscv64");
    vm_config_set(&c->firmware, "none");
    vm_config_set(&c->kernel, KERNEL);
    vm_config_set(&c->append, "console=ttyS0 quiet");
    c->cpus = 3;
    c->mem_size = 384ull << 20;
    c->timeout_s = 77;
    char spec[512];
    snprintf(spec, sizeof(spec), "%s,readonly=on,serial=abc,bps=4M,iops_burst=9,iops=100", ROOTFS);
    CHECK(vm_config_set_disk(c, -1, spec, &e) == 0, "disk: %s", e.msg);
    vm_config_add_device(c, "virtio-net,net=tap,ifname=tap5,mac=02:00:00:00:00:09,tx_bps=1M,"
                         "rx_pps=10,rx_pps_refill=100", &e);
    vm_config_add_device(c, "virtio-net,hostfwd=tcp::2222-:22,allow=tcp:22", &e);
    vm_config_add_device(c, "virtio-rng", &e);
    vm_config_add_device(c, "virtio-console,socket=/tmp/x,,y.sock", &e);
    struct fc_api *api = new_api(vm, true);
    /* the command line's logger flags: none given, nothing configured */
    CHECK(fc_api_set_logger(api, NULL, NULL, false, false, &e) == 0, "no logger flags");
    CHECK(fc_api_set_metrics(api, "", &e) < 0 && strstr(e.msg, "metrics_path"), "%s", e.msg);
    CHECK(fc_api_set_logger(api, NULL, "Verbose", false, false, &e) < 0 &&
          strstr(e.msg, "level: unknown value `Verbose`"), "bad --level: %s", e.msg);
    json_t *j = get(api, "/vm/config");
    CHECK(!json_object_get(j, "logger") && !json_object_get(j, "metrics"), "no logger, metrics");
    EQ(jint(json_object_get(j, "machine-config"), "vcpu_count"), 3);
    EQ(jint(json_object_get(j, "machine-config"), "mem_size_mib"), 384);
    CHECK(jstr(j, "boot-source.boot_args") && !strcmp(jstr(j, "boot-source.boot_args"),
          "console=ttyS0 quiet"), "boot_args");
    CHECK(jstr(j, "drives[0].path_on_host") && !strcmp(jstr(j, "drives[0].path_on_host"), ROOTFS),
          "disk0");
    CHECK(json_is_true(json_object_get(json_array_get(json_object_get(j, "drives"), 0),
                                       "is_read_only")), "disk0 read-only");
    EQ(jnum(j, "drives[0].rate_limiter.bandwidth.size"), 4 << 20);
    EQ(jnum(j, "drives[0].rate_limiter.bandwidth.refill_time"), 1000);
    EQ(jnum(j, "drives[0].rate_limiter.ops.size"), 100);
    EQ(jnum(j, "drives[0].rate_limiter.ops.one_time_burst"), 9);
    EQ(jnum(j, "network-interfaces[0].tx_rate_limiter.bandwidth.size"), 1 << 20);
    EQ(jnum(j, "network-interfaces[0].rx_rate_limiter.ops.refill_time"), 100);
    CHECK(jstr(j, "network-interfaces[0].host_dev_name") &&
          !strcmp(jstr(j, "network-interfaces[0].host_dev_name"), "tap5"), "net0: %s",
          jstr(j, "network-interfaces[0].host_dev_name"));
    CHECK(jstr(j, "network-interfaces[0].guest_mac") &&
          !strcmp(jstr(j, "network-interfaces[0].guest_mac"), "02:00:00:00:00:09"), "net0 mac");
    CHECK(jstr(j, "network-interfaces[1].host_dev_name") &&
          !strcmp(jstr(j, "network-interfaces[1].host_dev_name"),
                  "petrel:hostfwd=tcp::2222-:22,allow=tcp:22"), "net1: %s",
          jstr(j, "network-interfaces[1].host_dev_name"));
    CHECK(json_is_object(json_object_get(j, "entropy")), "entropy");

    OK(api, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    c = &fake.cfg;
    EQ(c->cpus, 3);
    EQ(c->timeout_s, 77);
    CHECK(c->firmware == NULL || !strcmp(c->firmware, "none"), "firmware kept");
    CHECK(c->append && !strcmp(c->append, "console=ttyS0 quiet"), "append %s", c->append);
    CHECK(c->ndisks == 1 && c->disks[0].readonly && !strcmp(c->disks[0].serial, "abc"),
          "disk options kept");
    EQ(c->disks[0].limit.bw.size, 4 << 20);
    EQ(c->disks[0].limit.ops.one_time_burst, 9);
    EQ(c->ndevices, 4);
    CHECK(has_device(c, 0, "virtio-net,net=tap,ifname=tap5,mac=02:00:00:00:00:09,rx_pps=10,"
                     "rx_pps_refill=100,tx_bps=1048576"), "net0: %s", c->devices[0]);
    CHECK(has_device(c, 1, "virtio-net,hostfwd=tcp::2222-:22,allow=tcp:22"), "net1");
    CHECK(has_device(c, 2, "virtio-rng"), "rng");
    CHECK(has_device(c, 3, "virtio-console,socket=/tmp/x,,y.sock"), "console");
    free_vm(vm, api);
    vm_config_free(&fake.cfg);
}

/* A disk keeps its whole --disk argument (snapshots record it): options
 * survive a copy, and the copy owns its strings. */
static void test_disk_args(void)
{
    struct vm_config a = { 0 }, b = { 0 };
    struct err e = { "" };
    CHECK(vm_config_set_disk(&a, -1, "x,,y.img,format=raw,readonly=on,serial=S1", &e) == 0,
          "set_disk: %s", e.msg);
    CHECK(vm_config_copy(&b, &a, &e) == 0, "copy: %s", e.msg);
    vm_config_free(&a);
    CHECK(b.ndisks == 1 && !strcmp(b.disk_args[0], "x,,y.img,format=raw,readonly=on,serial=S1"),
          "disk arg: %s", b.disk_args[0]);
    CHECK(!strcmp(b.disks[0].path, "x,y.img") && b.disks[0].readonly &&
          b.disks[0].format && !strcmp(b.disks[0].format, "raw") &&
          !strcmp(b.disks[0].serial, "S1"), "copied disk: %s", b.disks[0].path);
    vm_config_free(&b);
}

static void test_config_file(void)
{
    /* GET /vm/config -> file -> a new VM's API -> the same GET /vm/config */
    struct vm *vm = new_vm();
    struct fc_api *api = new_api(vm, false);
    char *metrics = strdup(path_in("m2.json"));
    OK(api, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 1024, "
       "\"track_dirty_pages\": true}");
    OK(api, "PUT", "/boot-source", B("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
       "\"boot_args\": \"console=ttyS0 \\\"quoted\\\" é\"}", KERNEL, INITRD));
    OK(api, "PUT", "/drives/data", drive("data", DATA, false, "\"is_read_only\": true, "
       "\"io_engine\": \"Async\", \"rate_limiter\": {\"bandwidth\": {\"size\": 4194304, "
       "\"one_time_burst\": 1024, \"refill_time\": 1000}}"));
    OK(api, "PUT", "/drives/rootfs", drive("rootfs", ROOTFS, true, "\"partuuid\": \"abcd-01\", "
       "\"cache_type\": \"Writeback\""));
    OK(api, "PUT", "/network-interfaces/eth0", nic("eth0", "tap0",
       "\"guest_mac\": \"02:00:00:00:00:01\", \"tx_rate_limiter\": {\"ops\": {\"size\": 100, "
       "\"refill_time\": 10}}"));
    OK(api, "PUT", "/network-interfaces/lan", nic("lan", "petrel:net=private,name=lan0", NULL));
    OK(api, "PUT", "/entropy", "{}");
    OK(api, "PUT", "/metrics", B("{\"metrics_path\": \"%s\"}", metrics));
    char *a = json_dumps(get(api, "/vm/config"), JSON_INDENT(2));
    char *file = strdup(path_in("config.json"));
    write_file(file, a, strlen(a));
    free_vm(vm, api);

    vm = new_vm();
    api = new_api(vm, false);
    struct err e;
    int ret = fc_api_load_config_file(api, file, &e);
    CHECK(ret == 0, "load: %s", e.msg);
    char *b = json_dumps(get(api, "/vm/config"), JSON_INDENT(2));
    CHECK(!strcmp(a, b), "round trip:\n%s\n---\n%s", a, b);
    free(a);
    free(b);
    free_vm(vm, api);

    /* bad files: the first error, with the file name and the JSON path */
    static const struct {
        const char *json, *want;
    } bad[] = {
        { "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}, \"drives\": [{\"drive_id\""
          ": \"a\", \"path_on_host\": \"ROOTFS\", \"is_root_device\": true}, {\"drive_id\": \"b\", "
          "\"path_on_host\": \"DATA2\", \"is_root_device\": false, \"is_read_only\": \"no\"}]}",
          "config.json: drives[1].is_read_only: expected a boolean, got a string" },
        { "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"ROOTFS\", \"is_root_device\": "
          "true}, {\"drive_id\": \"b\", \"path_on_host\": \"DATA2\", \"is_root_device\": true}]}",
          "config.json: drives[1]: A root block device already exists!" },
        { "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128, \"smtt\": false}}",
          "config.json: machine-config: unknown field `smtt`" },
        { "{\"boot-source\": {\"kernel_image_path\": \"ROOTFS\"}, \"vsock\": {\"guest_cid\": 2, "
          "\"uds_path\": \"/tmp/v\"}}", "config.json: vsock.guest_cid: expected a CID from 3" },
        { "{\"machine_config\": {}}", "config.json: unknown field `machine_config`" },
        { "{\"network-interfaces\": {}}",
          "config.json: network-interfaces: expected an array, got an object" },
        { "{\"network-interfaces\": [{\"iface_id\": \"eth0\"}]}",
          "config.json: network-interfaces[0]: missing field `host_dev_name`" },
        { "{\"drives\": [17]}", "config.json: drives[0]: expected a JSON object, got an integer" },
        { "{\"network-interfaces\": [{\"iface_id\": \"n\", \"host_dev_name\": \"tap0\", "
          "\"tx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1, \"x\": 1}}}]}",
          "config.json: network-interfaces[0].tx_rate_limiter.ops: unknown field `x`" },
        { "{\"logger\": {\"level\": \"Chatty\"}}", "config.json: logger.level: unknown value" },
        { "{\"boot-source\": {\"kernel_image_path\": \"ROOTFS\"},\n  \"drives\": [,]}",
          "config.json: malformed JSON: " },
        { "{\"drives\": [], \"drives\": []}", "duplicate object key" },
        { "", "config.json: malformed JSON: " },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* ROOTFS and DATA2 stand for the real files */
        char text[2048] = "", *o = text;
        for (const char *s = bad[i].json; *s;) {
            if (!strncmp(s, "ROOTFS", 6))
                o += sprintf(o, "%s", ROOTFS), s += 6;
            else if (!strncmp(s, "DATA2", 5))
                o += sprintf(o, "%s", DATA2), s += 5;
            else
                *o++ = *s++;
        }
        *o = 0;
        write_file(file, text, strlen(text));
        vm = new_vm();
        api = new_api(vm, true);
        ret = fc_api_load_config_file(api, file, &e);
        CHECK(ret < 0 && strstr(e.msg, bad[i].want) && !strncmp(e.msg, file, strlen(file)),
              "bad file %u: %d %s (want %s)", i, ret, ret < 0 ? e.msg : "", bad[i].want);
        free_vm(vm, api);
    }
    /* a malformed file says where */
    const char *m2 = "{\n  \"drives\": [,]\n}";
    write_file(file, m2, strlen(m2));
    vm = new_vm();
    api = new_api(vm, true);
    ret = fc_api_load_config_file(api, file, &e);
    CHECK(ret < 0 && strstr(e.msg, "at line 2, column"), "line and column: %s", e.msg);
    /* null for what Petrel has not is fine */
    const char *nulls = "{\"mmds-config\": null, \"vsock\": null, \"logger\": null, "
                        "\"drives\": null, \"balloon\": null}";
    write_file(file, nulls, strlen(nulls));
    ret = fc_api_load_config_file(api, file, &e);
    CHECK(ret == 0, "nulls: %s", e.msg);
    ret = fc_api_load_config_file(api, path_in("nonexistent.json"), &e);
    CHECK(ret == -ENOENT && strstr(e.msg, "nonexistent.json"), "missing file: %s", e.msg);
    ret = fc_api_load_config_file(api, SUBDIR, &e);
    CHECK(ret < 0, "a directory: %s", e.msg);
    free_vm(vm, api);
    free(file);
    free(metrics);
}

/* ---- the HTTP server over a unix socket ---------------------------------- */

struct server {
    struct vm *vm;
    struct fc_api *api;
    struct http_server *http;
    int stop_efd;
    pthread_t thread;
    char sock[128];
};

static void server_stop_cb(void *opaque)
{
    struct server *s = opaque;
    uint64_t v;
    if (read(s->stop_efd, &v, sizeof(v)) == sizeof(v))
        evloop_stop(s->vm->loop);
}

static void *server_thread(void *opaque)
{
    struct server *s = opaque;
    evloop_run(s->vm->loop);
    return NULL;
}

struct buf {
    char data[4096];
    size_t len;
};

static size_t curl_write(char *p, size_t size, size_t n, void *opaque)
{
    struct buf *b = opaque;
    size_t len = size * n, room = sizeof(b->data) - 1 - b->len;
    memcpy(b->data + b->len, p, len < room ? len : room);
    b->len += len < room ? len : room;
    b->data[b->len] = 0;
    return len;
}

/* One request; returns the status (0 on a transport error). */
static long http_req(CURL *c, const char *sock, const char *method, const char *path,
                     const char *body, size_t len, struct buf *out)
{
    char url[256];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    out->len = 0;
    out->data[0] = 0;
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        printf("  curl %s %s: %s\n", method, path, curl_easy_strerror(rc));
    return status;
}

#define CLIENTS 8
#define REQUESTS 25

struct client {
    const char *sock;
    int id, ok;
};

static void *client_thread(void *opaque)
{
    struct client *cl = opaque;
    CURL *c = curl_easy_init();
    struct buf b;
    for (int i = 0; c && i < REQUESTS; i++) {
        long st;
        if (i % 3 == 0) {
            const char *body = "{\"vcpu_count\": 1, \"mem_size_mib\": 128}";
            st = http_req(c, cl->sock, "PUT", "/machine-config", body, strlen(body), &b);
            cl->ok += st == 204 && b.len == 0;
        } else if (i % 3 == 1) {
            st = http_req(c, cl->sock, "GET", "/", NULL, 0, &b);
            cl->ok += st == 200 && strstr(b.data, "\"Not started\"");
        } else {
            st = http_req(c, cl->sock, "GET", "/nope", NULL, 0, &b);
            cl->ok += st == 400 && strstr(b.data, "fault_message");
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

static size_t chunk_left;

static size_t chunk_read(char *p, size_t size, size_t n, void *opaque)
{
    (void)opaque;
    size_t len = size * n < chunk_left ? size * n : chunk_left;
    memset(p, ' ', len);
    chunk_left -= len;
    return len;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* true when the server closed fd within timeout_ms */
static bool closed_by_server(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    char c;
    return read(fd, &c, 1) == 0;
}

static void test_http_server(void)
{
    struct server s = { 0 };
    struct err e;
    s.vm = new_vm();
    s.api = new_api(s.vm, true);
    snprintf(s.sock, sizeof(s.sock), "%s/api.sock", dir);
    int fd = http_listen_unix(s.sock, &e);
    CHECK(fd >= 0, "http_listen_unix: %s", e.msg);
    if (fd < 0)
        return;
    struct stat st;
    CHECK(stat(s.sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
          "socket mode %o", st.st_mode & 0777);
    s.http = http_server_new(fd, s.vm->loop, fc_api_handle, s.api, &e);
    CHECK(s.http != NULL, "http_server_new: %s", e.msg);
    if (!s.http)
        return;
    /* while it is served, the path is not taken over */
    int fd2 = http_listen_unix(s.sock, &e);
    CHECK(fd2 == -EADDRINUSE, "a served socket is refused: %d %s", fd2, e.msg);
    s.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    evloop_add_ctl(s.vm->loop, s.stop_efd, server_stop_cb, &s, &e);
    pthread_create(&s.thread, NULL, server_thread, &s);

    /* clients that connect and send nothing, or half a request */
    int silent = connect_unix(s.sock), half = connect_unix(s.sock);
    CHECK(silent >= 0 && half >= 0, "connect");
    const char partial[] = "GET / HTTP/1.1\r\nHost: localhost\r\n";
    CHECK(write(half, partial, sizeof(partial) - 1) == sizeof(partial) - 1, "partial request");
    uint64_t t0 = time_now_ns();

    /* many clients at once, each with keep-alive, none blocked by the above */
    struct client cl[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){ .sock = s.sock, .id = i };
        pthread_create(&th[i], NULL, client_thread, &cl[i]);
    }
    int ok = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok;
    }
    EQ(ok, CLIENTS * REQUESTS);
    CHECK(time_now_ns() - t0 < (uint64_t)HTTP_CONN_TIMEOUT_S * 1000000000ull,
          "the clients were served while the silent ones waited (%.1f s)",
          (double)(time_now_ns() - t0) / 1e9);

    CURL *c = curl_easy_init();
    struct buf b;
    /* a body of exactly the cap is fine (spaces after the JSON) */
    static char body[HTTP_MAX_BODY + 4096];
    const char *json = "{\"vcpu_count\": 2, \"mem_size_mib\": 256}";
    memset(body, ' ', sizeof(body));
    memcpy(body, json, strlen(json));
    long status = http_req(c, s.sock, "PUT", "/machine-config", body, HTTP_MAX_BODY, &b);
    CHECK(status == 204, "a body of %d bytes: %ld %s", HTTP_MAX_BODY, status, b.data);
    /* one byte more is refused, with Firecracker's error body */
    status = http_req(c, s.sock, "PUT", "/machine-config", body, HTTP_MAX_BODY + 1, &b);
    CHECK(status == 400 && strstr(b.data, "\"fault_message\"") &&
          strstr(b.data, "is larger than the limit of 65536"), "over the cap: %ld %s", status,
          b.data);
    /* a client waiting for "100 Continue" gets the answer before sending */
    struct curl_slist *expect = curl_slist_append(NULL, "Expect: 100-continue");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, expect);
    curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
    t0 = time_now_ns();
    status = http_req(c, s.sock, "PUT", "/machine-config", body, HTTP_MAX_BODY + 1, &b);
    CHECK(status == 400 && strstr(b.data, "is larger than the limit of 65536") &&
          time_now_ns() - t0 < 5000000000ull, "Expect: 100-continue: %ld %s", status, b.data);
    /* a body past the discard bound is refused as soon as it is declared */
    static char huge[HTTP_DISCARD_MAX + 4096];
    memset(huge, ' ', sizeof(huge));
    status = http_req(c, s.sock, "PUT", "/machine-config", huge, sizeof(huge), &b);
    CHECK(status == 400 && strstr(b.data, "larger than the limit"), "%zu bytes: %ld %s",
          sizeof(huge), status, b.data);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(expect);
    /* a client that does not wait (no Expect, as Python's http.client) and
     * sends 1 MiB gets the answer, not a broken pipe: the body is discarded */
    struct curl_slist *no_expect = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, no_expect);
    status = http_req(c, s.sock, "PUT", "/machine-config", huge, (1 << 20) + 2, &b);
    CHECK(status == 400 && strstr(b.data, "size 1048578 is larger than the limit"),
          "1 MiB without Expect: %ld %s", status, b.data);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(no_expect);
    /* and so is a chunked body that grows past it */
    curl_easy_reset(c);
    struct curl_slist *hdr = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    chunk_left = HTTP_MAX_BODY + 1000;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, chunk_read);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, s.sock);
    curl_easy_setopt(c, CURLOPT_URL, "http://localhost/machine-config");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    b.len = 0;
    CURLcode rc = curl_easy_perform(c);
    status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    CHECK(rc == CURLE_OK && status == 400 && strstr(b.data, "larger than the limit"),
          "chunked over the cap: %s %ld %s", curl_easy_strerror(rc), status, b.data);
    curl_slist_free_all(hdr);
    curl_easy_reset(c);
    /* the server still answers afterwards; the query string is not the path */
    status = http_req(c, s.sock, "GET", "/machine-config?x=1", NULL, 0, &b);
    CHECK(status == 200 && strstr(b.data, "\"vcpu_count\":2"), "after: %ld %s", status, b.data);
    curl_easy_cleanup(c);

    /* the idle connections are dropped after the timeout */
    CHECK(closed_by_server(silent, (HTTP_CONN_TIMEOUT_S + 5) * 1000), "silent client dropped");
    CHECK(closed_by_server(half, 5000), "half a request dropped");
    close(silent);
    close(half);

    uint64_t one = 1;
    CHECK(write(s.stop_efd, &one, sizeof(one)) == sizeof(one), "stop");
    pthread_join(s.thread, NULL);
    evloop_del(s.vm->loop, s.stop_efd);
    close(s.stop_efd);
    http_server_free(s.http);
    free_vm(s.vm, s.api);

    /* the socket file is left behind (the caller removes it): stale, replaced */
    fd = http_listen_unix(s.sock, &e);
    CHECK(fd >= 0, "a stale socket is replaced: %s", e.msg);
    if (fd >= 0)
        close(fd);
    unlink(s.sock);
    /* a file that is not a socket is left alone */
    char *plain = path_in("not-a-socket");
    write_file(plain, "keep", 4);
    fd = http_listen_unix(plain, &e);
    CHECK(fd == -EEXIST && strstr(read_file(plain), "keep"), "non-socket refused: %d %s", fd,
          e.msg);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = 0;
    CHECK(http_listen_unix(longpath, &e) == -ENAMETOOLONG, "long path: %s", e.msg);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
}

int main(void)
{
    fake_ops = fc_vm_host_ops;      /* real sinks, fake VM operations */
    fake_ops.start = fake_start;
    fake_ops.pause = fake_pause;
    fake_ops.resume = fake_resume;
    fake_ops.power_button = fake_button;
    fake_ops.stop = fake_stop;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    make_files();
    test_instance_info();
    test_machine_config();
    test_boot_source();
    test_drives();
    test_network();
    test_logger_metrics();
    test_methods_paths();
    test_instance_start();
    test_cli_import();
    test_disk_args();
    test_config_file();
    test_http_server();
    free(last.body);
    json_decref(last.j);
    cleanup();
    free(KERNEL);
    free(INITRD);
    free(ROOTFS);
    free(DATA);
    free(DATA2);
    free(SUBDIR);
    curl_global_cleanup();
    return unit_done("test_api");
}
