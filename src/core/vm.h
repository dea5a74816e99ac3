/* The machine object and its lifecycle.
 *
 * Design
 * - struct vm holds the configuration, guest memory, the MMIO bus, the
 *   console, the device lock and the event loop; boards and engines hang
 *   their state off it; nothing is global.
 * - Lifecycle: vm_new -> (edit vm->cfg) -> vm_start -> vm_pause/vm_resume
 *   ... -> the VM ends (guest power-off, reboot, panic, watchdog, an API
 *   stop, a signal) -> vm_run returns -> vm_free.  States are Firecracker's:
 *   "Not started", "Running", "Paused", and "Stopped" once the guest ended.
 *
 * Threads
 * - The event-loop thread calls vm_run, which owns the sleep: it waits in
 *   evloop_run on every descriptor (console, devices, API, timers).  Device
 *   handlers run with dev_lock held.  vm_start/vm_pause/vm_resume and the
 *   getters run on this thread only.
 * - Guest-CPU threads (board ops start/stop) take dev_lock around device
 *   emulation (MMIO/PIO exits).  vm_request_exit may be called from any
 *   thread holding dev_lock; it wakes the event loop, which stops the CPUs.
 *
 * What can fail: vm_start reports board/device set-up errors through struct
 * err and leaves the VM "Not started" (the configuration can be fixed and
 * started again); pause/resume in the wrong state are -EINVAL with a
 * message. */
#ifndef PETREL_VM_H
#define PETREL_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/console.h"
#include "core/cpupin.h"
#include "core/memory.h"
#include "core/vm_config.h"

/* Process exit statuses of `petrel run` (documented in the README). */
enum {
    PETREL_EXIT_POWEROFF = 0,
    PETREL_EXIT_ERROR = 1,
    PETREL_EXIT_REBOOT = 2,
    PETREL_EXIT_PANIC = 3,
    PETREL_EXIT_TIMEOUT = 4,
    PETREL_EXIT_GUEST_FAIL = 5,
};

enum vm_exit_reason {
    VM_RUNNING = 0,
    VM_EXIT_POWEROFF,
    VM_EXIT_REBOOT,
    VM_EXIT_PANIC,
    VM_EXIT_TIMEOUT,
    VM_EXIT_GUEST_FAIL,   /* guest powered off reporting failure */
    VM_EXIT_QUIT,         /* user typed the console escape */
    VM_EXIT_ERROR,
    VM_EXIT_STOPPED,      /* stopped by the host: API stop/kill, SIGTERM */
};

enum vm_state { VM_NOT_STARTED, VM_STATE_RUNNING, VM_PAUSED, VM_STOPPED };

struct evloop;
struct evloop_timer;
struct board_ops;

/* Per guest CPU figures for metrics. */
struct vm_cpu_stats {
    uint64_t cpu_time_ns;       /* host CPU time of the thread running it */
    uint64_t instructions;      /* rv64: retired instructions */
    uint64_t exits;             /* kvm: exits to the VMM */
};

/* Per device figures for metrics: disks (vda, vdb, ...) and network cards
 * (net0, net1, ...), in the order the machine created them. */
enum vm_dev_kind { VM_DEV_BLOCK, VM_DEV_NET };
struct vm_dev_stats {
    enum vm_dev_kind kind;
    char id[16];
    /* block */
    uint64_t read_bytes, write_bytes, read_ops, write_ops, flush_ops, errors;
    uint64_t read_ns, write_ns;     /* summed request latencies */
    /* net */
    uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets, rx_drops, tx_drops;
};
typedef void (*vm_stats_fn)(void *opaque, struct vm_dev_stats *out);
/* A device's rate limiter changed while running (device context): which
 * is 0 for a disk, VM_LIMIT_RX or VM_LIMIT_TX for a network card; c is a
 * struct rl_config (core/ratelimit.h). */
struct rl_config;
typedef int (*vm_limit_fn)(void *opaque, unsigned which, const struct rl_config *c,
                           struct err *e);
enum { VM_LIMIT_RX, VM_LIMIT_TX };
#define VM_MAX_STAT_SOURCES 48

/* The memory balloon (virtio-balloon), at most one per VM, as the API sees
 * it.  Pages are the balloon's 4 KiB pages.  Statistics follow the virtio
 * tags (VIRTIO_BALLOON_S_*: swap in/out, major/minor faults, free, total,
 * available memory, disk caches, hugetlb allocations/failures, ...); a bit
 * in stats_have says the guest sent that one. */
#define VM_BALLOON_NSTATS 16
struct vm_balloon_info {
    uint64_t ram_bytes;             /* the guest's RAM */
    uint32_t target_pages;          /* what the host asks for (num_pages) */
    uint32_t actual_pages;          /* what the guest says it holds */
    bool deflate_on_oom, free_page_reporting;
    unsigned stats_interval_s;      /* 0: no statistics */
    uint32_t stats_have;
    uint64_t stats[VM_BALLOON_NSTATS];
    uint64_t inflated_pages, deflated_pages, reported_bytes, discarded_bytes;
};
struct vm_balloon_ops {
    void (*info)(void *opaque, struct vm_balloon_info *out);
    int (*set_target)(void *opaque, uint64_t mib, struct err *e);
    int (*set_stats_interval)(void *opaque, unsigned s, struct err *e);
};

struct vm {
    struct vm_config cfg;
    struct gmem mem;
    struct bus bus;
    struct console con;
    pthread_mutex_t dev_lock;   /* device context (see Threads) */
    enum vm_state state;        /* event-loop thread */
    enum vm_exit_reason exit_reason;    /* under dev_lock */
    uint32_t exit_code;     /* guest-provided detail (e.g. failure code) */
    uint64_t start_ns;      /* when petrel started setting the VM up */
    uint64_t boot_ns;       /* when vm_start succeeded */
    uint64_t paused_ns;     /* total time spent paused */
    uint64_t paused_at_ns;
    struct evloop *loop;    /* the event loop (core/evloop.h) */
    int exit_efd;           /* written by vm_request_exit: wakes the loop */
    int sig_fd;             /* signalfd (vm_signals), -1 if none */
    struct evloop_timer *watchdog;      /* cfg.timeout_s */
    struct evloop_timer *stop_timer;    /* vm_stop's hard-stop deadline */
    const struct board_ops *ops;
    void *board;            /* arch board state */
    struct {
        enum vm_dev_kind kind;
        vm_stats_fn fn;
        void *opaque;
        vm_limit_fn limit;      /* NULL: the device has no rate limiter */
    } stat_src[VM_MAX_STAT_SOURCES];
    unsigned nstat_src;
    struct cpu_pin pin;     /* host CPUs of the guest-CPU threads (core/cpupin.h);
                             * set before vm_start, n 0: not pinned */
    /* the balloon device (vm_balloon.c) */
    const struct vm_balloon_ops *balloon_ops;
    void *balloon;
    /* snapshots (vm_snapshot.c) */
    struct vm_restore *restore;     /* while a snapshot is being restored */
    bool start_paused;      /* vm_start leaves the CPUs parked (board.h) */
    char *snap_parent;      /* state file of the last snapshot taken or restored:
                             * what a diff snapshot is relative to */
    uint64_t snap_id;       /* that snapshot's id */
    /* called on the event-loop thread when the VM has ended, before vm_run
     * returns (the API uses it to answer waiting clients) */
    void (*on_exit)(void *opaque);
    void *on_exit_opaque;
    /* called on the event-loop thread each time vm_launch has started the
     * CPUs (a boot or a restore through the API; petrel run installs the
     * main thread's seccomp filter then) */
    void (*on_launch)(void *opaque);
    void *on_launch_opaque;
    /* the display frontend the board hands to its devices (core/display.h;
     * NULL: none); set before vm_start, outlives the board */
    struct display *display;
};

/* A VM with an empty configuration, its event loop and device lock. */
struct vm *vm_new(struct err *e);
/* Stop the CPUs if running, tear the machine down, free everything. */
void vm_free(struct vm *vm);
/* The board for an architecture name, or NULL. */
const struct board_ops *vm_board(const char *arch);
/* The default guest's directory: $PETREL_GUEST_DIR/<arch>, else
 * <directory of the petrel binary>/guest/<arch>.  0, or -1 if it does not
 * fit in buf. */
int vm_guest_dir(const char *arch, char *buf, size_t len);
/* Fill in the default guest's kernel/initrd/firmware where the
 * configuration has none (firmware "none" means none). */
int vm_config_defaults(struct vm_config *c, struct err *e);
/* The serial console on in_fd/out_fd (stdio; -1: none), or on a unix
 * socket with a bounded log (log may be NULL).  Before vm_start. */
int vm_console_stdio(struct vm *vm, int in_fd, int out_fd, struct err *e);
int vm_console_server(struct vm *vm, const char *sock, const char *log, struct err *e);
/* Receive the (already blocked) signals in set through a signalfd whose
 * handler fn runs on the loop (control context); vm_signal_fd reads it. */
int vm_signals(struct vm *vm, const sigset_t *set, void (*fn)(void *vm), struct err *e);
int vm_signal_fd(const struct vm *vm);
/* Build the machine from vm->cfg and start its CPUs. */
int vm_start(struct vm *vm, struct err *e);
int vm_pause(struct vm *vm, struct err *e);
int vm_resume(struct vm *vm, struct err *e);
/* Press the guest's power button (a graceful shutdown request); -ENOTSUP
 * when the machine has none. */
int vm_power_button(struct vm *vm, struct err *e);
/* Stop the VM: press the power button and end it hard after timeout_s
 * seconds if the guest has not powered off by then; at once when force is
 * set, timeout_s is 0, the VM is not running, or it has no power button.
 * Event-loop thread. */
int vm_stop(struct vm *vm, unsigned timeout_s, bool force, struct err *e);
/* Run the event loop until the VM ends (or, not started, until
 * vm_request_exit); returns the exit status (PETREL_EXIT_*). */
int vm_run(struct vm *vm);
/* End the VM (any thread; dev_lock held or not running yet). */
void vm_request_exit(struct vm *vm, enum vm_exit_reason r, uint32_t code);
/* Firecracker's state names: "Not started", "Running", "Paused"; and
 * "Stopped". */
const char *vm_state_name(enum vm_state s);
/* Seconds the guest has run (paused time excluded); 0 before start. */
double vm_uptime(const struct vm *vm);
/* Number of guest CPUs and their figures (event-loop thread). */
unsigned vm_cpu_count(const struct vm *vm);
void vm_cpu_stats(struct vm *vm, unsigned i, struct vm_cpu_stats *out);

/* Devices register their counters while the machine is built (device
 * context); vm_dev_stats copies them out (event-loop thread, takes the
 * device lock) and returns how many. */
void vm_add_stat_source(struct vm *vm, enum vm_dev_kind kind, vm_stats_fn fn, void *opaque);
unsigned vm_dev_stats(struct vm *vm, struct vm_dev_stats *out, unsigned max);
/* The device registered with opaque takes rate-limiter changes through fn
 * (after vm_add_stat_source); vm_set_limit calls the one of the index-th
 * device of kind under the device lock (-ENODEV: no such device). */
void vm_set_limit_fn(struct vm *vm, void *opaque, vm_limit_fn fn);
int vm_set_limit(struct vm *vm, enum vm_dev_kind kind, unsigned index, unsigned which,
                 const struct rl_config *c, struct err *e);

/* The balloon registers itself while the machine is built (ops NULL:
 * it is gone).  The others run on the event-loop thread and take the
 * device lock; -ENODEV with a message when the VM has no running balloon. */
void vm_set_balloon(struct vm *vm, const struct vm_balloon_ops *ops, void *opaque);
int vm_balloon_info(struct vm *vm, struct vm_balloon_info *out, struct err *e);
int vm_balloon_set_target(struct vm *vm, uint64_t mib, struct err *e);
int vm_balloon_set_stats_interval(struct vm *vm, unsigned s, struct err *e);

/* What vm_ram_add maps guest RAM from while vm->restore is set. */
struct vm_restore {
    int fd;                     /* the (full) memory file */
    uint64_t off;               /* where the next RAM region comes from */
};

/* vm_start's halves, also used by vm_restore: build the machine from
 * vm->cfg (board create), undo that, start its CPUs. */
int vm_build(struct vm *vm, struct err *e);
void vm_unbuild(struct vm *vm);
int vm_launch(struct vm *vm, struct err *e);

/* Add guest RAM at gpa: anonymous memory, or (restoring a snapshot) the
 * next size bytes of the memory file, mapped privately.  Boards call this
 * from create instead of gmem_add_ram. */
int vm_ram_add(struct vm *vm, uint64_t gpa, uint64_t size, struct err *e);

/* Snapshots (vm_snapshot.c, docs/snapshots.md). */
struct vm_snapshot_params {
    const char *state_path;     /* the state file to write */
    const char *mem_path;       /* the memory file to write */
    int type;                   /* SNAP_FULL or SNAP_DIFF (core/snapshot.h) */
    const char *tag;            /* internal snapshot name for the disks; NULL: made up */
};
/* Save the paused VM.  Writes the memory file, takes the disks' internal
 * snapshots, then writes the state file (last: a state file exists only for
 * a complete snapshot).  The VM stays paused. */
int vm_snapshot_save(struct vm *vm, const struct vm_snapshot_params *p, struct err *e);

struct vm_restore_params {
    const char *state_path;
    const char *mem_path;       /* NULL: "memory" next to the state file */
    bool verify_memory;         /* check the memory file's checksums (reads it all) */
    /* overrides (clones): non-zero counts replace the saved disks (used as
     * they are, not reverted) or devices (same kinds in the same order) */
    const char *disks[VM_MAX_DISKS];
    unsigned ndisks;
    const char *devices[VM_MAX_DEVICES];
    unsigned ndevices;
    bool paused;                /* leave the restored VM paused */
};
/* Build the VM from a snapshot instead of booting it (the VM must not have
 * started).  On failure nothing was started or changed (not the disks, not
 * vm->cfg) and the message names what does not match. */
int vm_restore(struct vm *vm, const struct vm_restore_params *p, struct err *e);
/* Check a state file's configuration and memory sections (what vm_restore
 * reads before it builds anything): for tools and the fuzz target. */
struct snap_file;
int vm_snapshot_check(struct snap_file *f, struct err *e);

int vm_exit_status(const struct vm *vm);
const char *vm_exit_name(enum vm_exit_reason r);

#endif
