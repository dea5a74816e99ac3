/* Firecracker's REST API: what its files share (private to src/api; the
 * interface is fc.h).
 *
 * fc_json.c   JSON bodies: the one validation path every body goes
 *             through (a table of fields per resource: unknown fields,
 *             types, required fields, values), errors naming the file and
 *             the JSON path; strings and objects out
 * fc_model.c  the model of the VM being configured (machine-config,
 *             boot-source, drives, network-interfaces, entropy, logger,
 *             metrics): each resource's fields and what it does
 * fc_config.c the config-file loader: Firecracker's configuration file,
 *             its sections applied through the same resources
 * fc_snapshot.c  PUT /snapshot/create and /snapshot/load
 * fc_vsock.c  PUT /vsock (a virtio-vsock --device spec in the model)
 * fc_balloon.c  /balloon and /balloon/statistics (a virtio-balloon spec
 *             before the start, the device after)
 * fc_vm.c     the model and vm->cfg: seeding the model from the command
 *             line, InstanceStart (a fresh vm->cfg), GET /vm/config
 * fc.c        routing, requests and replies, actions, PATCH /vm, the
 *             /petrel paths, metrics, set-up */
#ifndef PETREL_API_FC_PRIV_H
#define PETREL_API_FC_PRIV_H

#include <jansson.h>
#include <stdbool.h>

#include "api/fc.h"
#include "core/evloop.h"
#include "core/ratelimit.h"

#define FC_ID_MAX 64            /* resource ids: drive_id, iface_id */
#define FC_PATH_MAX 4095        /* host paths */
#define FC_ARGS_MAX 4096        /* boot_args (the board checks the real limit) */
#define FC_MEM_MIN_MIB 16
#define FC_MEM_MAX_MIB 65536
#define FC_DEFAULT_MEM_MIB 128  /* Firecracker's, when the command line gave none */
#define FC_STOP_MAX_S 86400
#define FC_TAP_NAME_MAX 15      /* IFNAMSIZ - 1 */
#define FC_NET_PREFIX "petrel:"

#define FC_MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define FC_MSG_PRE_BOOT "The requested operation is not supported before starting the microVM."

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
    struct rl_config limit;     /* rate_limiter (none: unlimited) */
};

struct fc_net {
    char *id;
    char *host_dev_name;        /* a TAP name or "petrel:" + virtio-net options */
    char *guest_mac;            /* NULL: Petrel's default */
    struct rl_config limit[2];  /* rx_rate_limiter, tx_rate_limiter (VM_LIMIT_RX/TX) */
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
    char where[64];             /* JSON path of the object checked: "", "drives[1]",
                                   "network-interfaces[15].rx_rate_limiter.bandwidth" */
    const char *path_id;        /* the {id} of /drives/{id} and the like; NULL: none */
    struct err *e;
};

/* ---- errors (fc_json.c): -EINVAL or -ENOMEM, the message in q->e ------- */

/* An error about one of the fields of the object being checked (NULL:
 * about the object). */
int fc_fail_field(struct fc_req *q, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error about the object. */
#define fc_fail(q, ...) fc_fail_field(q, NULL, __VA_ARGS__)
int fc_oom(struct fc_req *q);

/* ---- bodies in: one table of fields per resource (fc_json.c) ------------ */

enum fc_ftype {
    FT_STR, FT_BOOL, FT_UINT, FT_OBJ, FT_ARR,
    FT_NULL,                    /* only null (or absent): what Petrel does not support */
};

/* A string field that takes one of a few values. */
struct fc_choice {
    const char *values[7];      /* up to a NULL */
    bool icase;                 /* matched whatever the case; the spelling here is kept */
    const char *expected;       /* the error's "expected ..."; NULL: Petrel supports only
                                   values[0] (Firecracker has the others) */
};

struct fc_field {
    const char *name;
    enum fc_ftype type;
    bool required;
    /* What the value must be besides its type, checked field by field in
     * table order once every field has the right type (null is absent): */
    const char *why;            /* the message for FT_NULL but null, FT_BOOL true */
    const struct fc_choice *choice;     /* FT_STR: one of these */
    int (*check)(struct fc_req *q, const char *field, json_t *v);
};

/* A resource's body: its fields (up to a NULL name) and what to do with
 * it once they are valid. */
struct fc_res {
    const struct fc_field *fields;
    bool partial;               /* a PATCH: required fields may be absent or null */
    int (*apply)(struct fc_req *q, json_t *o);
};

/* o against the fields f: an object, no unknown field, the types, the
 * required ones present (required), then the values. */
int fc_check_object(struct fc_req *q, json_t *o, const struct fc_field *f, bool required);
/* Check o against res->fields, then apply it. */
int fc_res_apply(struct fc_req *q, const struct fc_res *res, json_t *o);

/* o[k], null being absent (NULL) */
json_t *fc_jget(json_t *o, const char *k);
const char *fc_jget_str(json_t *o, const char *k);
bool fc_jget_bool(json_t *o, const char *k, bool def);
/* The index in c of o[k] (a value the field's check let through); def: absent. */
int fc_jget_choice(json_t *o, const char *k, const struct fc_choice *c, int def);

/* ---- the model (fc_model.c) ---------------------------------------------- */

/* Firecracker's checked_id: non-empty, alphanumeric and '_' (field NULL:
 * the id in the path). */
int fc_check_id(struct fc_req *q, const char *field, const char *id);

/* The resources. */
extern const struct fc_res fc_machine_put, fc_machine_patch, fc_boot_source, fc_drive_put,
    fc_drive_patch, fc_net_put, fc_net_patch, fc_entropy, fc_logger, fc_metrics;
extern const struct fc_res fc_snapshot_create, fc_snapshot_load;   /* fc_snapshot.c */
extern const struct fc_res fc_vsock;                                /* fc_vsock.c */
extern const struct fc_res fc_balloon_put, fc_balloon_patch, fc_balloon_stats_patch;
/* GET /balloon and /balloon/statistics (fc_balloon.c): 0 and *out, or a
 * 400's message in q->e */
int fc_balloon_get(struct fc_req *q, json_t **out);
int fc_balloon_stats_get(struct fc_req *q, json_t **out);
/* GET /vm/config's "balloon" in o, if there is one; false: out of memory */
bool fc_balloon_config_json(const struct fc_api *api, json_t *o);

bool fc_started(const struct fc_api *api);
/* The model's other devices (api->extra: vsock, balloon).  fc_device_at:
 * the index of device `name` ("virtio-vsock") among specs, matched up to
 * its options, or -1.  fc_extra_room: 0, or a 400 when a new device (at <
 * 0) would pass VM_MAX_DEVICES.  fc_extra_put: spec (owned from then on)
 * replaces entry at, or is appended when at < 0 (room checked first). */
int fc_device_at(char *const *specs, unsigned n, const char *name);
int fc_extra_room(struct fc_req *q, int at);
void fc_extra_put(struct fc_api *api, int at, char *spec);
const char *fc_arch(const struct fc_api *api);      /* "riscv64" when none was given */
bool fc_x86(const struct fc_api *api);
void fc_drive_free(struct fc_drive *d);
void fc_net_free(struct fc_net *n);
/* The logger level shown for a log_verbose() value. */
const char *fc_level_name(int verbose);

/* ---- bodies out (fc_json.c) ---------------------------------------------- */

/* A JSON string of s (NULL: null), sanitized if it is not valid UTF-8. */
json_t *fc_jstring(const char *s);
/* Set o[k] = v (stolen); false when out of memory. */
bool fc_jset(json_t *o, const char *k, json_t *v);
/* o when ok, else NULL (o is freed): the end of a body built with fc_jset. */
json_t *fc_jdone(json_t *o, bool ok);

/* ---- the model and vm->cfg (fc_vm.c) ------------------------------------- */

/* The model from vm->cfg, as the command line filled it. */
int fc_import_cfg(struct fc_api *api, struct err *e);
json_t *fc_machine_json(const struct fc_api *api);
/* GET /vm/config: Firecracker's configuration-file layout. */
json_t *fc_config_json(const struct fc_api *api);
/* A running VM's rate limits changed: the device's limiter and the
 * configuration a snapshot records (vm->cfg's --disk/--device strings). */
int fc_live_drive_limit(struct fc_api *api, const struct fc_drive *d, struct err *e);
int fc_live_net_limit(struct fc_api *api, const struct fc_net *n, const struct rl_config *was,
                      struct err *e);

#endif
