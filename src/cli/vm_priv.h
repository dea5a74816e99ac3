/* `petrel vm`'s own shared pieces: what its files (vm.c: dispatch, help,
 * list, info, delete, ssh, stats; vm_info.c: list and info as JSON (also for
 * `petrel serve`, through vm_ops.c); vm_common.c: messages, small helpers, VM
 * directories, the lock; vm_run.c: runtime state, start, pause, resume,
 * stop, kill; vm_create.c: create, set; vm_image.c: base images;
 * vm_console.c: console; vm_snapshot.c: snapshot, snapshots,
 * delete-snapshot; vm_clone.c: revert, clone) use from each other.  Not an interface for
 * anything outside `petrel vm`.
 *
 * Threads: none; one command per process.
 *
 * What can fail: functions returning int return 0, or 1 after printing one
 * line "petrel vm: ..." (vmx_fail), unless they say otherwise. */
#ifndef PETREL_CLI_VM_PRIV_H
#define PETREL_CLI_VM_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/vm_def.h"
#include "cli/vm_ops.h"

#define API_TIMEOUT_MS 5000
#define APPEND_ROOT_RISCV64 "root=/dev/vda console=ttyS0 earlycon=sbi"
#define APPEND_ROOT_X86_64 "root=/dev/vda console=ttyS0"
#define LOCK_TRIES 30           /* vmx_lock_take: tries 10 ms apart */

struct vmx {
    char state[PATH_MAX];               /* the state directory, absolute */
    char vms[PATH_MAX + 8];             /* state/vms */
};

/* A NULL-terminated, growing array of strings (an argv). */
struct strv {
    char **v;
    int n, cap;
};

enum vm_st { ST_STOPPED, ST_STARTING, ST_RUNNING, ST_PAUSED, ST_CRASHED };

/* A VM's runtime state (vmx_rt_get). */
struct vm_rt {
    enum vm_st st;
    bool held;                  /* the lock is held: a VMM (or a start) is there */
    json_t *run;                /* run.json, or NULL */
    json_t *info;               /* GET /petrel/info, or NULL */
    long long pid;              /* from run.json; 0: unknown */
    long long ssh_port;         /* from run.json; 0: none */
    char api[PATH_MAX], con[PATH_MAX], sockdir[PATH_MAX];
};

/* getopt_long values of the long options without a short form */
/* The balloon `petrel vm create` adds (unless --no-balloon or a --device
 * virtio-balloon): vm_create.c, documented in vm.c. */
#define BALLOON_DEFAULT \
    "virtio-balloon,deflate_on_oom=on,stats_polling_interval_s=5,free_page_reporting=on"

enum {
    OPT_ARCH = 256, OPT_CPUS, OPT_MEMORY, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_FIRMWARE,
    OPT_DISK, OPT_DEVICE, OPT_DISK_SIZE, OPT_BASE, OPT_SSH_KEY, OPT_SSH_PORT, OPT_NO_NET,
    OPT_AUTOSTART, OPT_TIMEOUT, OPT_FORCE, OPT_WAIT, OPT_DIFF, OPT_PAUSED, OPT_FROM, OPT_JSON,
    OPT_CPU_QUOTA, OPT_CPU_PIN, OPT_MEMORY_MAX, OPT_IO_MAX, OPT_PIDS_MAX,
    OPT_NO_BALLOON, OPT_DISPLAY,
};

/* --- vm_common.c ------------------------------------------------------------ */

/* printf on stdout / stderr, or into this thread's capture if it has one
 * (vmx_capture_begin): every message of `petrel vm` goes through these. */
void vmx_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vmx_eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "petrel vm: " + the message + "\n" on stderr; returns 1. */
int vmx_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "petrel vm CMD: " + fmt (with one %s: arg) + a pointer to --help; returns 1. */
int vmx_usage_err(const char *cmd, const char *fmt, const char *arg);
/* snprintf for paths and messages: buffers are sized for PATH_MAX-long state
 * directories plus a name, so truncation cannot happen in practice. */
int vmx_fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

/* 0 or -ENOMEM. */
int vmx_strv_add(struct strv *s, const char *str);
int vmx_strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vmx_strv_free(struct strv *s);
/* A listing: arr as indented JSON, or the table cells (rows x cols cells of
 * cell_len bytes each, the header first) in aligned columns (at most 16). */
void vmx_print_listing(json_t *arr, bool as_json, const char *cells, size_t cell_len,
                       int cols, int rows);

uint64_t vmx_now_ms(void);              /* CLOCK_MONOTONIC */
void vmx_sleep_ms(unsigned ms);
void vmx_utc_now(char *buf, size_t len);        /* 2026-12-06T07:00:00Z */
void vmx_fmt_mib(char *buf, size_t len, unsigned long long mib);    /* 512M, 2G */
void vmx_fmt_bytes(char *buf, size_t len, uint64_t b);  /* 8G, 64M, 1000 bytes */
bool vmx_file_exists(const char *path);
int vmx_rm_rf(const char *path);        /* nftw's result: 0 or -1 (errno) */

/* The state directory (created when missing) into x. */
int vmx_init(struct vmx *x);
/* x->vms/NAME */
void vmx_vm_dir(const struct vmx *x, const char *name, char *buf, size_t len);
int vmx_check_name(const char *cmd, const char *name);
/* Load NAME's definition; 1 (message printed) when it is missing or bad. */
int vmx_load_vm(const struct vmx *x, const char *name, char *dir, size_t dirlen,
                struct vm_def *d);
/* x->vms/NAME into dir; 1 (message printed) when it is not a directory. */
int vmx_vm_dir_existing(const struct vmx *x, const char *name, char *dir, size_t len);
/* Sorted names of the VM directories. */
int vmx_list_names(const struct vmx *x, struct strv *names);
/* Parse the options of a command that has --help and at most one flag
 * (--FLAG, and -SHORT_FLAG when not 0; flag NULL: none): argv's index of
 * the first operand, or -1 (help printed) or -2 (error printed);
 * ONE_NAME_RC gives the exit status for those. */
int vmx_flag_opt(const char *cmd, int argc, char **argv, const char *flag, char short_flag,
                 bool *on);
/* The VM named by argv[i], the operand after a command's options: checks
 * that it is the only operand and a valid name and initialises x; with dir,
 * checks that the VM exists and fills dir; with dir and rt, fills rt
 * (vmx_rt_get with api_timeout_ms; the caller frees it).  1 (message
 * printed) on error. */
int vmx_named_vm(struct vmx *x, const char *cmd, int argc, char **argv, int i, char *dir,
                 size_t len, struct vm_rt *rt, long api_timeout_ms);
/* "CMD NAME" with no options but --help: vmx_flag_opt, then vmx_named_vm;
 * argv's index of NAME, -1 (help printed) or -2 (error printed). */
int vmx_one_vm(struct vmx *x, const char *cmd, int argc, char **argv, char *dir, size_t len,
               struct vm_rt *rt, long api_timeout_ms);
#define ONE_NAME_RC(i) ((i) == -1 ? 0 : 1)

/* The lock (vms/NAME/lock): see vm_common.c. */
int vmx_lock_held(const char *dir);
int vmx_lock_take(const char *dir, int *fdp, unsigned tries);
int vmx_lock_stopped(const char *name, const char *dir, int *fd);

/* ssh keys: $HOME (NULL when unset) and the public keys looked for in
 * ~/.ssh, in order. */
const char *vmx_home_dir(void);
#define VMX_NDEFAULT_KEYS 3
extern const char *const vmx_default_keys[VMX_NDEFAULT_KEYS];

/* --- vm_run.c ---------------------------------------------------------------- */

extern const char *const vmx_st_names[];        /* by enum vm_st */
/* The VM's runtime state (never fails: unknowns read as stopped/crashed).
 * api_timeout_ms: how long /petrel/info may take (0: do not ask). */
void vmx_rt_get(const char *dir, struct vm_rt *rt, long api_timeout_ms);
void vmx_rt_free(struct vm_rt *rt);
/* run.json into rt (rt->run NULL when there is none). */
void vmx_read_run_json(const char *dir, struct vm_rt *rt);
/* Remove what a VMM that is gone left behind (call with the lock held). */
void vmx_rt_cleanup(const char *dir, const struct vm_rt *rt);
bool vmx_rt_active(const struct vm_rt *rt);
/* 0 when running or paused, else 1 with a message saying why not. */
int vmx_need_running(const char *name, const struct vm_rt *rt);
/* Write run.json (j) atomically. */
int vmx_write_run_json(const char *dir, json_t *j);

/* How to start a VM's VMM (vmx_start_vm). */
struct vmx_start_opts {
    const char *restore;        /* `petrel run --restore DIR`: continue from a snapshot */
    bool paused;                /* with restore: stay paused */
    bool own_disks;             /* with restore: the definition's disks, used as they are,
                                 * instead of the snapshot's (reverted to it) */
    const char *snap_parent;    /* run.json's snapshot_parent: the tag a diff snapshot of
                                 * this run is relative to (NULL: none yet) */
    bool quiet;
};
/* Start NAME's VMM in the background (what `petrel vm start NAME` does);
 * a clone whose definition has restore_from starts from that snapshot. */
int vmx_start_vm(struct vmx *x, const char *name, const struct vmx_start_opts *o);
/* SIGKILL the VMM rt describes (after checking it is NAME's) and clean up
 * after it, as `petrel vm kill` does. */
int vmx_kill_vmm(const char *name, const char *dir, const struct vm_rt *rt);

/* --- vm_snapshot.c: snapshots (layout: see there) ----------------------------- */

#define VMX_SNAP_INFO_VERSION 1
/* dir/snapshots/TAG */
void vmx_snap_dir(const char *dir, const char *tag, char *buf, size_t len);
/* Take dir/snap.lock (waits up to 60 s): serialises everything that creates,
 * deletes, reverts to or exports a snapshot of one VM.  Taken before the
 * VM's own lock where both are needed. */
int vmx_snap_lock(const char *name, const char *dir, int *fd);
/* dir/snapshots/TAG/info.json, checked; NULL (message printed unless
 * quiet) when it is missing or bad. */
json_t *vmx_snap_info(const char *name, const char *dir, const char *tag, bool quiet);
/* Tags of the VM's snapshots (complete or not), oldest first. */
int vmx_snap_list(const char *dir, struct strv *tags);
/* The definition's disks that carry internal snapshots (writable qcow2):
 * which[i] set for those; 1 (message printed) if a writable disk is raw. */
int vmx_snap_disks(const char *name, const char *dir, const struct vm_def *d, bool which[]);
/* Take a memory snapshot of the running or paused VM (snap.lock held by
 * the caller): type "full" or "diff". */
int vmx_snapshot_running(const char *name, const char *dir, const struct vm_def *d,
                         const struct vm_rt *rt, const char *tag, bool diff, bool quiet);
/* Remove internal snapshot tag from the disks info.json lists (the VM
 * stopped); only those outside dir when outside_only. */
int vmx_snap_disks_delete(const char *name, const char *dir, json_t *info, bool outside_only);
/* Parse "CMD NAME [TAG] [--FLAG]" (flag NULL: none; tag_required): argv
 * indexes of NAME and TAG (-1: none), the tag checked.  0, or -1 (help
 * printed) or -2 (error printed). */
int vmx_name_tag_opts(const char *cmd, int argc, char **argv, const char *flag, bool *on,
                      bool tag_required, int *ni, int *ti);
/* path, or dir/path when relative */
void vmx_resolve_in(char *buf, size_t len, const char *dir, const char *path);
/* The VNC socket beside the console socket con (a VM with a display). */
void vmx_vnc_path(const char *con, char *buf, size_t len);

/* --- the commands: argv[0] is the command's name ----------------------------- */

void vmx_cmd_help(const char *cmd);                     /* vm.c */
/* Run the command argv[0] (1, message printed, if there is none). */
int vmx_cmd_run(struct vmx *x, int argc, char **argv);
/* `list --json`'s object for NAME; a definition that does not load: its
 * error into load_err (if non-NULL), state "invalid" unless its VMM runs. */
json_t *vmx_vm_summary(const struct vmx *x, const char *name, long api_timeout_ms,
                       struct err *load_err);
/* `info NAME`'s object; NULL (message printed) on error. */
json_t *vmx_vm_info(struct vmx *x, const char *name);
int vmx_cmd_create(struct vmx *x, int argc, char **argv);       /* vm_create.c */
int vmx_cmd_set(struct vmx *x, int argc, char **argv);
int vmx_cmd_start(struct vmx *x, int argc, char **argv);        /* vm_run.c */
int vmx_cmd_pause(struct vmx *x, int argc, char **argv);
int vmx_cmd_resume(struct vmx *x, int argc, char **argv);
int vmx_cmd_stop(struct vmx *x, int argc, char **argv);
int vmx_cmd_kill(struct vmx *x, int argc, char **argv);
int vmx_cmd_balloon(struct vmx *x, int argc, char **argv);     /* vm_balloon.c */
int vmx_cmd_console(struct vmx *x, int argc, char **argv);      /* vm_console.c */
int vmx_cmd_snapshot(struct vmx *x, int argc, char **argv);     /* vm_snapshot.c */
int vmx_cmd_snapshots(struct vmx *x, int argc, char **argv);
int vmx_cmd_delete_snapshot(struct vmx *x, int argc, char **argv);
int vmx_cmd_revert(struct vmx *x, int argc, char **argv);       /* vm_clone.c */
int vmx_cmd_clone(struct vmx *x, int argc, char **argv);
/* After a start from restore_from (a clone's first): drop it from vm.json
 * and remove the links it named. */
void vmx_clone_started(const char *name, const char *dir, struct vm_def *d);

#endif
