/* Firecracker's REST API (and Petrel's own /petrel paths) over a struct vm.
 *
 * Design
 * - The API keeps Firecracker's model of the VM being configured:
 *   machine-config, boot-source, drives, network-interfaces, entropy,
 *   logger, metrics.  fc_api_new seeds it from vm->cfg (what the command
 *   line pre-filled); PUT/PATCH requests and a --config-file edit it;
 *   InstanceStart builds a fresh vm->cfg from it (root drive first, the
 *   other drives in creation order, then network cards, entropy, and the
 *   command line's other --device devices), runs vm_config_defaults and
 *   vm_start.  A failed start is a 400 with the error; when it failed
 *   before a machine was built (vm_start's contract) the VM stays "Not
 *   started" with its previous vm->cfg, to be fixed and started again.
 * - One validation path: every resource is a table of its fields (type,
 *   required or not, the rule for its value), one checker goes through a
 *   JSON object against it (unknown fields, types, required fields,
 *   values), then the resource's function commits the body to the model,
 *   all of it or nothing.  The HTTP handler and the config-file loader
 *   both go through it; the loader's messages name the file and the JSON
 *   path ("vm.json: drives[1].is_read_only: expected a boolean, got a
 *   string").  The code: fc.c, fc_json.c, fc_model.c, fc_config.c,
 *   fc_vm.c (see fc_priv.h).
 * - Answers follow Firecracker: 204 for a successful PUT/PATCH, 200 with
 *   JSON for a GET, 400 {"fault_message": "..."} for anything refused
 *   (Firecracker's wording where it has one: "Invalid request method
 *   and/or path: ...", "The requested operation is not supported after
 *   starting the microVM.", "The id from the path does not match the id
 *   from the body!"), 500 only when out of memory.
 * - Petrel conventions: host_dev_name is a TAP name or "petrel:" + a
 *   virtio-net option string ("petrel:net=user,hostfwd=tcp::2222-:22");
 *   rate limiters, vhost-user, smt, CPU templates and huge pages are
 *   refused unless absent/null/false/"None"; cache_type and io_engine are
 *   accepted and reported back but Petrel always honours flushes and uses
 *   io_uring; without a boot-source the default guest boots.
 *
 * Threads: every function runs on the event-loop thread (the http server
 * calls fc_api_handle there), in control context: without the device lock.
 *
 * What can fail: requests (4xx answers, never a crash whatever the bytes);
 * fc_api_new (out of memory, the metrics timer); the config file (its
 * first error, with file name and JSON path). */
#ifndef PETREL_API_FC_H
#define PETREL_API_FC_H

#include <stdbool.h>
#include <stddef.h>

#include "api/http.h"
#include "core/vm.h"

/* Seconds between two metrics lines written to the metrics sink by
 * themselves (Firecracker's period); FlushMetrics writes one at once. */
#define FC_METRICS_PERIOD_S 60
/* A --config-file larger than this is refused before it is read. */
#define FC_CONFIG_MAX (1 << 20)

struct fc_api;

/* The API of vm, whose configuration (vm->cfg, as the command line left
 * it) seeds the model; id is the instance id shown by GET / (NULL:
 * "anonymous-instance", Firecracker's default). */
struct fc_api *fc_api_new(struct vm *vm, const char *id, struct err *e);
/* Before vm_free (a timer of the API lives on vm->loop); a log file set by
 * the API is closed and logging goes back to stderr. */
void fc_api_free(struct fc_api *api);
/* Seed the model again from vm->cfg (after `petrel run --restore` replaced
 * it with the snapshot's configuration): drives, interfaces (with their
 * rate limits), devices, machine and boot source. */
int fc_api_reimport(struct fc_api *api, struct err *e);
/* Apply Firecracker's --config-file layout through the PUT handlers'
 * validation; the first error names the file and the JSON path. */
int fc_api_load_config_file(struct fc_api *api, const char *path, struct err *e);
/* InstanceStart: build vm->cfg from the model and start the VM. */
int fc_api_instance_start(struct fc_api *api, struct err *e);
/* The request handler (an http_handler; opaque is the struct fc_api). */
void fc_api_handle(void *opaque, const char *method, const char *path, const char *query,
                   const char *body, size_t len, struct http_reply *r);

/* The sockets GET /petrel/info reports (copied; NULL: null). */
int fc_api_set_sockets(struct fc_api *api, const char *api_sock, const char *console_sock);
/* The command line's Firecracker logger flags (--log-path, --level,
 * --show-level, --show-log-origin), validated as PUT /logger is; NULL
 * leaves the log path or level as it is; none given: nothing is done. */
int fc_api_set_logger(struct fc_api *api, const char *log_path, const char *level,
                      bool show_level, bool show_log_origin, struct err *e);
/* The command line's --metrics-path, as PUT /metrics. */
int fc_api_set_metrics(struct fc_api *api, const char *metrics_path, struct err *e);

/* What the API does to the host and the VM, replaceable for tests and
 * fuzzing (a never-started VM must stay so, and no file may be opened).
 * fc_api_new starts with fc_vm_host_ops (vm_start, vm_pause, ...). */
struct vm_snapshot_params;
struct vm_restore_params;

struct fc_host_ops {
    int (*start)(struct vm *vm, struct err *e);
    int (*pause)(struct vm *vm, struct err *e);
    int (*resume)(struct vm *vm, struct err *e);
    int (*power_button)(struct vm *vm, struct err *e);
    int (*stop)(struct vm *vm, unsigned timeout_s, bool force, struct err *e);
    /* open a log or metrics sink (a file appended to, or a FIFO): an fd */
    int (*open_sink)(const char *path, struct err *e);
    /* PUT /snapshot/create and /snapshot/load (NULL: refused) */
    int (*snapshot)(struct vm *vm, const struct vm_snapshot_params *p, struct err *e);
    int (*restore)(struct vm *vm, const struct vm_restore_params *p, struct err *e);
};
extern const struct fc_host_ops fc_vm_host_ops;
void fc_api_set_host_ops(struct fc_api *api, const struct fc_host_ops *ops);

#endif
