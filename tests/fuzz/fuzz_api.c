/* libFuzzer target: the REST API (fc_api_handle) and the config-file
 * loader on a never-started VM.  Whatever the requests, the VMM must not
 * crash, leak or hang; every answer must be one of the statuses the API
 * uses, with a JSON body (a fault_message for errors) or none for 204; and
 * GET /vm/config must always be a configuration file that loads back into
 * the same configuration.
 *
 * The VM is never started: InstanceStart, pause/resume, the power button
 * and stop go to fakes that only change vm->state (so the post-boot paths
 * are fuzzed too), and log/metrics sinks are /dev/null, whatever path the
 * input names (no file is ever created or opened for writing).
 *
 * Input: records, each
 *   selector (1 byte)  % (number of routes + 2):
 *                        a route below: method and path from the table,
 *                        routes:     "METHOD\nPATH\nBODY" in the data,
 *                        routes + 1: the data is a config file
 *   length (2 bytes, little-endian), then that many bytes of data (fewer
 *   at the end of the input); at most 16 records per input. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/fc.h"

static const struct {
    const char *method, *path;
} routes[] = {
    { "GET", "/" }, { "GET", "/version" }, { "GET", "/machine-config" },
    { "PUT", "/machine-config" }, { "PATCH", "/machine-config" }, { "PUT", "/boot-source" },
    { "PUT", "/drives/rootfs" }, { "PUT", "/drives/data" }, { "PATCH", "/drives/rootfs" },
    { "PATCH", "/drives/data" }, { "PUT", "/network-interfaces/eth0" },
    { "PUT", "/network-interfaces/eth1" }, { "PATCH", "/network-interfaces/eth0" },
    { "PUT", "/actions" }, { "PATCH", "/vm" }, { "GET", "/vm/config" }, { "PUT", "/logger" },
    { "PUT", "/metrics" }, { "PUT", "/entropy" }, { "GET", "/petrel/info" },
    { "GET", "/petrel/metrics" }, { "PUT", "/petrel/stop" }, { "GET", "/petrel/console" },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static int fz_start(struct vm *vm, struct err *e)
{
    (void)e;
    vm->state = VM_STATE_RUNNING;
    return 0;
}

static int fz_pause(struct vm *vm, struct err *e)
{
    (void)e;
    vm->state = VM_PAUSED;
    return 0;
}

static int fz_resume(struct vm *vm, struct err *e)
{
    (void)e;
    vm->state = VM_STATE_RUNNING;
    return 0;
}

static int fz_button(struct vm *vm, struct err *e)
{
    (void)vm;
    (void)e;
    return 0;
}

static int fz_stop(struct vm *vm, unsigned timeout_s, bool force, struct err *e)
{
    (void)timeout_s;
    (void)force;
    (void)e;
    vm->state = VM_STOPPED;
    return 0;
}

static int fz_open_sink(const char *path, struct err *e)
{
    (void)path;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    return fd < 0 ? err_set(e, -1, "/dev/null") : fd;
}

static const struct fc_host_ops fz_ops = {
    .start = fz_start, .pause = fz_pause, .resume = fz_resume, .power_button = fz_button,
    .stop = fz_stop, .open_sink = fz_open_sink,
};

static struct vm *vm;

static struct fc_api *new_api(void)
{
    struct err e;
    struct fc_api *api = fc_api_new(vm, "fuzz", &e);
    if (!api)
        abort();
    fc_api_set_host_ops(api, &fz_ops);
    return api;
}

/* One request; abort() on an answer the API must never give. */
static json_t *request(struct fc_api *api, const char *method, const char *path,
                       const char *body, size_t len)
{
    struct http_reply r;
    fc_api_handle(api, method, path, "", body, len, &r);
    json_t *j = NULL;
    switch (r.status) {
    case 204:
        if (r.body || r.len)
            abort();
        break;
    case 200: case 400: case 404: case 500:
        if (!r.body || !r.len || strlen(r.body) != r.len)
            abort();
        j = json_loadb(r.body, r.len, 0, NULL);
        if (!json_is_object(j))
            abort();
        if (r.status != 200 && !json_is_string(json_object_get(j, "fault_message")))
            abort();
        break;
    default:
        abort();
    }
    free(r.body);
    return j;
}

static int load_config(struct fc_api *api, const char *data, size_t len, struct err *e)
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int ret = fc_api_load_config_file(api, path, e);
    close(fd);
    return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vm) {
        struct err e;
        if (!(vm = vm_new(&e)))
            abort();
    }
    log_set_verbose(-2);        /* refused requests are logged: keep quiet */
    vm_config_free(&vm->cfg);
    vm->state = VM_NOT_STARTED;
    struct fc_api *api = new_api();
    for (unsigned n = 0; n < 16 && size >= 3; n++) {
        unsigned sel = data[0] % (NROUTES + 2);
        size_t len = (size_t)(data[1] | data[2] << 8);
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        char *buf = malloc(len + 1);    /* the server's bodies are NUL-terminated */
        if (!buf)
            abort();
        memcpy(buf, data, len);
        buf[len] = 0;
        data += len;
        size -= len;
        if (sel < NROUTES) {
            json_decref(request(api, routes[sel].method, routes[sel].path, buf, len));
        } else if (sel == NROUTES) {
            /* METHOD\nPATH\nBODY (the path is a C string: up to a NUL) */
            char *nl1 = memchr(buf, '\n', len), *nl2 = nl1 ? memchr(nl1 + 1, '\n',
                                                                   len - (size_t)(nl1 + 1 - buf))
                                                          : NULL;
            if (nl2) {
                *nl1 = *nl2 = 0;
                json_decref(request(api, buf, nl1 + 1, nl2 + 1, len - (size_t)(nl2 + 1 - buf)));
            }
        } else {
            struct err e;
            load_config(api, buf, len, &e);
        }
        free(buf);
    }

    /* GET /vm/config loads back into the same configuration */
    json_t *a = request(api, "GET", "/vm/config", "", 0);
    char *text = json_dumps(a, JSON_COMPACT);
    if (!text)
        abort();
    /* the copy: a VM not started, with nothing from a command line (a fake
     * InstanceStart left its configuration in vm->cfg) */
    enum vm_state state = vm->state;
    struct vm_config cfg = vm->cfg;
    memset(&vm->cfg, 0, sizeof(vm->cfg));
    vm->state = VM_NOT_STARTED;
    struct fc_api *api2 = new_api();
    struct err e;
    if (load_config(api2, text, strlen(text), &e) < 0) {
        fprintf(stderr, "GET /vm/config does not load back: %s\n%s\n", e.msg, text);
        abort();
    }
    json_t *b = request(api2, "GET", "/vm/config", "", 0);
    if (!json_equal(a, b)) {
        char *tb = json_dumps(b, JSON_COMPACT);
        fprintf(stderr, "GET /vm/config does not round-trip:\n%s\n%s\n", text, tb ? tb : "");
        abort();
    }
    vm->state = state;
    vm->cfg = cfg;
    json_decref(a);
    json_decref(b);
    free(text);
    fc_api_free(api2);
    fc_api_free(api);
    vm->state = VM_NOT_STARTED;
    return 0;
}
