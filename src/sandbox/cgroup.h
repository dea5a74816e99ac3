/* Per-VM resource limits through cgroups: CPU quota, memory, block I/O and
 * pids, and the host CPUs guest-CPU threads are pinned to.
 *
 * Design
 * - struct cg_limits is what `petrel run --cpu-quota/--cpu-pin/--memory-max/
 *   --io-max/--pids-max` and vm.json's "limits" describe; the parsers here
 *   are shared by both, so a limit has one syntax and one range everywhere.
 * - One cgroup per VMM, named after its pid.  Each controller comes from
 *   cgroup v2 when the unified hierarchy offers it, else from its v1
 *   hierarchy:
 *     v1: <mount>/<the VMM's own cgroup in that hierarchy>/petrel/<pid>
 *         (nested, so limits the VMM is already under keep holding);
 *     v2: <mount>/petrel/<pid> (at the root: v2 lets a cgroup hand
 *         controllers to children only when it holds no process itself).
 * - cg_create makes the directories, writes the limits and moves the
 *   process in (all its threads: cgroup.procs), before the VM's threads
 *   start and before seccomp filters are installed; cg_set_io writes the
 *   block limits once the disks are known (also before the loop runs).
 *   cg_destroy moves the process back to the cgroup it came from and
 *   removes the directories.  A VMM that was killed leaves its cgroup
 *   behind: cg_sweep removes every petrel/<pid> whose process is gone.
 * - No cgroup is made when no limit is asked for (cg_limits_any false).
 * - Pinning is not a cgroup: guest-CPU thread i gets host CPU
 *   pin[i % npin] through the thread attribute (core/cpupin.h).
 * - Usage (cg_usage) is read from the cgroups /proc/PID/cgroup names, so
 *   `petrel vm info` needs nothing from the VMM.
 *
 * Threads: none; plain functions, called on the main thread during set-up
 * and teardown.
 *
 * What can fail: parsing (one-line messages naming the value and the
 * range); cg_create/cg_set_io: not root, a controller that is not mounted
 * (the message names it), a disk image on a file system with no block
 * device. */
#ifndef PETREL_SANDBOX_CGROUP_H
#define PETREL_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/cpupin.h"
#include "core/log.h"

#define CG_MAX_QUOTA_PCT 6400u          /* 64 host CPUs */
#define CG_MIN_MEMORY (16ull << 20)
#define CG_MAX_MEMORY (1ull << 40)      /* 1T */
#define CG_MAX_PIDS 4194304u            /* the kernel's pid_max limit */
#define CG_MAX_IO 16
#define CG_MAX_IO_RATE (1ull << 50)

/* One --io-max: limits on the host block device(s) holding the VM's disk
 * images (disk -1: every disk; else the index-th --disk). 0: no limit. */
struct cg_io_limit {
    int disk;
    uint64_t rbps, wbps, riops, wiops;
};

struct cg_limits {
    unsigned cpu_quota_pct;     /* percent of one host CPU; 0: none */
    struct cpu_pin pin;         /* npin 0: none */
    uint64_t memory_max;        /* bytes; 0: none */
    unsigned pids_max;          /* 0: none */
    struct cg_io_limit io[CG_MAX_IO];
    unsigned nio;
};

/* Parsers: 0, or -EINVAL with a one-line message (the flag name given in
 * opt, e.g. "--cpu-quota"). */
/* "50%" or "50": 1..CG_MAX_QUOTA_PCT */
int cg_parse_quota(const char *opt, const char *s, unsigned *pct, struct err *e);
/* A CPU list "0-3,6": syntax and 0..CPU_PIN_MAX-1 only (vm.json); in the
 * order given, at most CPU_PIN_MAX entries. */
int cg_parse_cpus(const char *opt, const char *s, struct cpu_pin *p, struct err *e);
/* Every CPU of p exists and is online on this host. */
int cg_check_cpus(const char *opt, const struct cpu_pin *p, struct err *e);
/* A size (512M, 2G; a bare number is MiB): CG_MIN_MEMORY..CG_MAX_MEMORY,
 * a multiple of 4K. */
int cg_parse_memory(const char *opt, const char *s, uint64_t *bytes, struct err *e);
/* 1..CG_MAX_PIDS */
int cg_parse_pids(const char *opt, const char *s, unsigned *n, struct err *e);
/* "[disk=N,]rbps=SIZE,wbps=SIZE,riops=N,wiops=N" (at least one limit;
 * sizes per second: 10M = 10 MiB/s) */
int cg_parse_io(const char *opt, const char *s, struct cg_io_limit *io, struct err *e);
/* The canonical text of limits (for command lines and vm.json): the
 * parsers read back what these write. */
void cg_fmt_cpus(const struct cpu_pin *p, char *buf, size_t len);
void cg_fmt_io(const struct cg_io_limit *io, char *buf, size_t len);

bool cg_limits_any(const struct cg_limits *l);

struct cgroup;
/* Make this process's cgroup(s) for l (any limit but I/O) and move the
 * process in.  *out is NULL when l asks for nothing a cgroup does. */
int cg_create(const struct cg_limits *l, struct cgroup **out, struct err *e);
/* The --io-max limits on the devices holding the disk images paths[0..n)
 * (needs a cgroup from cg_create with l->nio set). */
int cg_set_io(struct cgroup *cg, const struct cg_limits *l, const char *const *paths,
              unsigned n, struct err *e);
/* Move the process back and remove its cgroups; NULL is fine. */
void cg_destroy(struct cgroup *cg);
/* Free the handle and leave the cgroups alone (a forked child whose
 * parent removes them); NULL is fine. */
void cg_forget(struct cgroup *cg);
/* Remove petrel/<pid> cgroups whose process is gone (killed VMMs); only:
 * that pid's alone (0: all). */
void cg_sweep(pid_t only);

/* Live figures of the petrel cgroups process pid is in; a field is -1
 * when unknown (no such controller, no such file). */
struct cg_usage {
    bool found;                 /* pid is in a petrel cgroup */
    long long cpu_usage_ns;     /* cpuacct.usage / cpu.stat usage_usec */
    long long nr_throttled, throttled_ns;
    long long cpu_quota_us, cpu_period_us;
    long long mem_current, mem_peak, mem_max;   /* mem_max -1: no limit */
    long long oom_kills;        /* memory.oom_control oom_kill / memory.events oom_kill */
    long long pids_current, pids_max;           /* pids_max -1: no limit */
    char path[256];             /* one of the cgroup directories (for messages) */
};
/* Read pid's cgroups (pid 0: ourselves).  The cgroup of a VMM that was
 * killed is found by its pid as long as cg_sweep has not removed it:
 * cg_usage_stale then reads that. */
int cg_usage(pid_t pid, struct cg_usage *u);
int cg_usage_stale(pid_t pid, struct cg_usage *u);

#endif
