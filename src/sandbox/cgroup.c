/* Per-VMM cgroups, v2 or v1 per controller: see cgroup.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sandbox/cgroup.h"

#define CFS_PERIOD_US 100000u

enum ctl { CTL_CPU, CTL_CPUACCT, CTL_MEMORY, CTL_IO, CTL_PIDS, NCTL };
static const char *const v1_name[NCTL] = { "cpu", "cpuacct", "memory", "blkio", "pids" };
static const char *const v2_name[NCTL] = { "cpu", NULL, "memory", "io", "pids" };

/* --- where the hierarchies are ------------------------------------------ */

struct hier {
    char mount[PATH_MAX];
    char opts[256];             /* v1: the super options (controller names) */
};
struct mounts {
    struct hier v1[16];
    unsigned nv1;
    char v2[PATH_MAX];          /* "" when none */
};

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',' || p[-1] == ' ') && (!p[n] || p[n] == ',' ||
                                                            p[n] == ' ' || p[n] == '\n'))
            return true;
    return false;
}

static void find_mounts(struct mounts *m)
{
    memset(m, 0, sizeof(*m));
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX], fstype[64], super[256];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(dash + 3, "%63s %*s %255s", fstype, super) != 2)
            continue;
        if (!strcmp(fstype, "cgroup2") && !m->v2[0])
            snprintf(m->v2, sizeof(m->v2), "%s", mnt);
        else if (!strcmp(fstype, "cgroup") && m->nv1 < 16) {
            snprintf(m->v1[m->nv1].mount, sizeof(m->v1[0].mount), "%s", mnt);
            snprintf(m->v1[m->nv1].opts, sizeof(m->v1[0].opts), "%s", super);
            m->nv1++;
        }
    }
    fclose(f);
}

static int read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    buf[n] = 0;
    return (int)n;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int err = n < 0 ? errno : 0;
    close(fd);
    return n < 0 ? -err : 0;
}

/* The v2 hierarchy offers controller name (its root's cgroup.controllers). */
static bool v2_offers(const struct mounts *m, const char *name)
{
    char p[PATH_MAX + 32], buf[512];
    if (!m->v2[0] || !name)
        return false;
    snprintf(p, sizeof(p), "%s/cgroup.controllers", m->v2);
    return read_file(p, buf, sizeof(buf)) > 0 && has_word(buf, name);
}

static const struct hier *v1_hier(const struct mounts *m, const char *name)
{
    for (unsigned i = 0; i < m->nv1; i++)
        if (has_word(m->v1[i].opts, name))
            return &m->v1[i];
    return NULL;
}

/* The cgroup path of pid (0: self) in the v1 hierarchy with controller
 * name, or in v2 (name NULL), from /proc/PID/cgroup. */
static int proc_cgroup(pid_t pid, const char *name, char *out, size_t len)
{
    char p[64], line[PATH_MAX + 256];
    if (pid)
        snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
    else
        snprintf(p, sizeof(p), "/proc/self/cgroup");
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    int r = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        char *path = c2 + 1;
        path[strcspn(path, "\n")] = 0;
        if (name ? has_word(c1 + 1, name) : !c1[1]) {
            snprintf(out, len, "%s", strcmp(path, "/") ? path : "");
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

/* --- the VMM's cgroups --------------------------------------------------- */

struct place {
    char dir[PATH_MAX];         /* ours: .../petrel/<pid> */
    char from[PATH_MAX];        /* where the process was */
    bool v2;
};

struct cgroup {
    struct place pl[NCTL];
    unsigned npl;
    int of[NCTL];               /* the place serving each controller; -1: none */
};

static int add_place(struct cgroup *cg, const char *dir, const char *from, bool v2)
{
    for (unsigned i = 0; i < cg->npl; i++)
        if (!strcmp(cg->pl[i].dir, dir))
            return (int)i;
    struct place *p = &cg->pl[cg->npl];
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    snprintf(p->from, sizeof(p->from), "%s", from);
    p->v2 = v2;
    return (int)cg->npl++;
}

static int mkdir_ok(const char *path, struct err *e)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    if (errno == EACCES || errno == EPERM || errno == EROFS)
        return err_set(e, -errno, "cgroup: cannot create %s: %s (resource limits need root "
                       "and a writable cgroup file system)", path, strerror(errno));
    return err_set(e, -errno, "cgroup: cannot create %s: %s", path, strerror(errno));
}

static int put(const char *dir, const char *file, const char *text, struct err *e)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    int r = write_file(p, text);
    if (r < 0)
        return err_set(e, r, "cgroup: writing '%s' to %s: %s", text, p, strerror(-r));
    return 0;
}

/* v2: let the children of dir use controller name. */
static int v2_enable(const char *dir, const char *name, struct err *e)
{
    char p[PATH_MAX + 32], buf[512], plus[32];
    snprintf(p, sizeof(p), "%s/cgroup.subtree_control", dir);
    if (read_file(p, buf, sizeof(buf)) >= 0 && has_word(buf, name))
        return 0;
    snprintf(plus, sizeof(plus), "+%s", name);
    int r = write_file(p, plus);
    if (r == -EBUSY)
        return err_set(e, r, "cgroup v2: cannot enable the %s controller in %s: a process is "
                       "in that cgroup itself", name, dir);
    if (r < 0)
        return err_set(e, r, "cgroup v2: cannot enable the %s controller in %s: %s", name, dir,
                       strerror(-r));
    return 0;
}

/* Make the leaf directory, replacing an empty one left by an earlier
 * process with the same pid. */
static int make_leaf(const char *dir, struct err *e)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno == EEXIST && rmdir(dir) == 0 && mkdir(dir, 0755) == 0)
        return 0;
    return mkdir_ok(dir, e) < 0 ? -1 : err_set(e, -EEXIST, "cgroup: %s is in use", dir);
}

int cg_create(const struct cg_limits *l, struct cgroup **out, struct err *e)
{
    *out = NULL;
    bool need[NCTL] = { false };
    need[CTL_CPU] = l->cpu_quota_pct;
    need[CTL_MEMORY] = l->memory_max;
    need[CTL_IO] = l->nio;
    need[CTL_PIDS] = l->pids_max;
    if (!need[CTL_CPU] && !need[CTL_MEMORY] && !need[CTL_IO] && !need[CTL_PIDS])
        return 0;       /* pinning alone needs no cgroup */
    cg_sweep(0);
    struct mounts m;
    find_mounts(&m);
    struct cgroup *cg = calloc(1, sizeof(*cg));
    if (!cg)
        return err_set(e, -ENOMEM, "out of memory");
    char dir[PATH_MAX], from[PATH_MAX], cur[PATH_MAX], text[64];
    int r = 0;
    pid_t self = getpid();
    /* where each controller comes from; accounting (cpuacct, memory, pids)
     * comes along when available, for `petrel vm info` */
    for (int c = 0; c < NCTL; c++) {
        cg->of[c] = -1;
        if (v2_offers(&m, v2_name[c])) {
            if (proc_cgroup(0, NULL, cur, sizeof(cur)) < 0)
                cur[0] = 0;
            if (snprintf(dir, sizeof(dir), "%s/petrel/%d", m.v2, (int)self) >= (int)sizeof(dir)) {
                r = err_set(e, -ENAMETOOLONG, "cgroup: path too long under %s", m.v2);
                goto fail;
            }
            if (snprintf(from, sizeof(from), "%s%s", m.v2, cur) >= (int)sizeof(from)) {
                r = err_set(e, -ENAMETOOLONG, "cgroup: path too long under %s", m.v2);
                goto fail;
            }
            cg->of[c] = add_place(cg, dir, from, true);
            continue;
        }
        const struct hier *h = v1_hier(&m, v1_name[c]);
        if (!h) {
            if (need[c]) {
                r = err_set(e, -ENODEV, "cgroup: no '%s' controller on this host (neither "
                            "cgroup v2 nor a v1 hierarchy offers it)", v2_name[c]);
                goto fail;
            }
            continue;
        }
        if (proc_cgroup(0, v1_name[c], cur, sizeof(cur)) < 0)
            cur[0] = 0;
        int n = snprintf(dir, sizeof(dir), "%s%s/petrel/%d", h->mount, cur, (int)self);
        if (n < 0 || n >= (int)sizeof(dir)) {
            r = err_set(e, -ENAMETOOLONG, "cgroup: path too long under %s", h->mount);
            goto fail;
        }
        snprintf(from, sizeof(from), "%s%s", h->mount, cur);
        cg->of[c] = add_place(cg, dir, from, false);
    }
    /* the directories (v2: controllers enabled down to the leaf) */
    for (unsigned i = 0; i < cg->npl; i++) {
        struct place *p = &cg->pl[i];
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", p->dir);
        *strrchr(parent, '/') = 0;
        if ((r = mkdir_ok(parent, e)) < 0)
            goto fail;
        if (p->v2) {
            char root[PATH_MAX];
            snprintf(root, sizeof(root), "%s", parent);
            *strrchr(root, '/') = 0;
            for (int c = 0; c < NCTL; c++)
                if (cg->of[c] == (int)i && v2_name[c] &&
                    ((r = v2_enable(root, v2_name[c], e)) < 0 ||
                     (r = v2_enable(parent, v2_name[c], e)) < 0))
                    goto fail;
        }
        if ((r = make_leaf(p->dir, e)) < 0) {
            p->dir[0] = 0;
            goto fail;
        }
    }
    /* the limits, then the process */
    if (l->cpu_quota_pct) {
        struct place *p = &cg->pl[cg->of[CTL_CPU]];
        unsigned long long q = (unsigned long long)l->cpu_quota_pct * CFS_PERIOD_US / 100;
        if (p->v2) {
            snprintf(text, sizeof(text), "%llu %u", q, CFS_PERIOD_US);
            r = put(p->dir, "cpu.max", text, e);
        } else {
            snprintf(text, sizeof(text), "%u", CFS_PERIOD_US);
            if ((r = put(p->dir, "cpu.cfs_period_us", text, e)) == 0) {
                snprintf(text, sizeof(text), "%llu", q);
                r = put(p->dir, "cpu.cfs_quota_us", text, e);
            }
        }
        if (r < 0)
            goto fail;
    }
    if (l->memory_max) {
        struct place *p = &cg->pl[cg->of[CTL_MEMORY]];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)l->memory_max);
        if ((r = put(p->dir, p->v2 ? "memory.max" : "memory.limit_in_bytes", text, e)) < 0)
            goto fail;
    }
    if (l->pids_max) {
        snprintf(text, sizeof(text), "%u", l->pids_max);
        if ((r = put(cg->pl[cg->of[CTL_PIDS]].dir, "pids.max", text, e)) < 0)
            goto fail;
    }
    snprintf(text, sizeof(text), "%d", (int)self);
    for (unsigned i = 0; i < cg->npl; i++)
        if ((r = put(cg->pl[i].dir, "cgroup.procs", text, e)) < 0)
            goto fail;
    log_debug("cgroup: in %s (and %u more)", cg->pl[0].dir, cg->npl - 1);
    *out = cg;
    return 0;
fail:
    cg_destroy(cg);
    return r < 0 ? r : -EIO;
}

/* The whole disk holding the file system of path: its major:minor. */
static int disk_of(const char *opt, const char *path, unsigned *maj, unsigned *min,
                   struct err *e)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return err_set(e, -errno, "%s: %s: %s", opt, path, strerror(errno));
    *maj = major(st.st_dev);
    *min = minor(st.st_dev);
    char p[PATH_MAX + 64], link[PATH_MAX], buf[64];
    snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", *maj, *min);
    ssize_t n = readlink(p, link, sizeof(link) - 1);
    if (!*maj || n <= 0)
        return err_set(e, -ENODEV, "%s: %s is on a file system with no block device (%u:%u); "
                       "block I/O limits need one", opt, path, *maj, *min);
    link[n] = 0;
    snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/partition", *maj, *min);
    if (access(p, F_OK) == 0) {         /* a partition: its disk is the parent */
        char *slash = strrchr(link, '/');
        if (slash)
            *slash = 0;
        snprintf(p, sizeof(p), "/sys/dev/block/%s/dev", link);
        if (read_file(p, buf, sizeof(buf)) <= 0 || sscanf(buf, "%u:%u", maj, min) != 2)
            return err_set(e, -ENODEV, "%s: cannot find the disk of partition %u:%u", opt,
                           major(st.st_dev), minor(st.st_dev));
    }
    return 0;
}

int cg_set_io(struct cgroup *cg, const struct cg_limits *l, const char *const *paths,
              unsigned n, struct err *e)
{
    if (!l->nio)
        return 0;
    if (!cg || cg->of[CTL_IO] < 0)
        return err_set(e, -ENODEV, "--io-max: no block I/O cgroup");
    struct { unsigned maj, min; uint64_t v[4]; } dev[CG_MAX_IO * 16];
    unsigned ndev = 0;
    for (unsigned i = 0; i < l->nio; i++) {
        const struct cg_io_limit *io = &l->io[i];
        if (!n)
            return err_set(e, -EINVAL, "--io-max: the VM has no disk");
        if (io->disk >= (int)n)
            return err_set(e, -EINVAL, "--io-max disk=%d: the VM has %u disk%s (0..%u)",
                           io->disk, n, n == 1 ? "" : "s", n - 1);
        for (unsigned d = 0; d < n; d++) {
            if (io->disk >= 0 && (unsigned)io->disk != d)
                continue;
            unsigned maj, min, k;
            int r = disk_of("--io-max", paths[d], &maj, &min, e);
            if (r < 0)
                return r;
            for (k = 0; k < ndev && (dev[k].maj != maj || dev[k].min != min); k++)
                ;
            if (k == ndev) {
                memset(&dev[k], 0, sizeof(dev[k]));
                dev[k].maj = maj;
                dev[k].min = min;
                ndev++;
            }
            const uint64_t v[4] = { io->rbps, io->wbps, io->riops, io->wiops };
            for (unsigned j = 0; j < 4; j++)
                if (v[j])
                    dev[k].v[j] = v[j];     /* a later --io-max wins */
        }
    }
    struct place *p = &cg->pl[cg->of[CTL_IO]];
    static const char *const v1_files[4] = {
        "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
    };
    static const char *const v2_keys[4] = { "rbps", "wbps", "riops", "wiops" };
    char text[256];
    for (unsigned k = 0; k < ndev; k++) {
        int r = 0;
        if (p->v2) {
            int w = snprintf(text, sizeof(text), "%u:%u", dev[k].maj, dev[k].min);
            for (unsigned j = 0; j < 4; j++)
                if (dev[k].v[j])
                    w += snprintf(text + w, sizeof(text) - (size_t)w, " %s=%llu", v2_keys[j],
                                  (unsigned long long)dev[k].v[j]);
            r = put(p->dir, "io.max", text, e);
        } else {
            for (unsigned j = 0; j < 4 && r == 0; j++)
                if (dev[k].v[j]) {
                    snprintf(text, sizeof(text), "%u:%u %llu", dev[k].maj, dev[k].min,
                             (unsigned long long)dev[k].v[j]);
                    r = put(p->dir, v1_files[j], text, e);
                }
        }
        if (r < 0)
            return r;
        log_debug("cgroup: I/O limits on device %u:%u", dev[k].maj, dev[k].min);
    }
    return 0;
}

void cg_destroy(struct cgroup *cg)
{
    if (!cg)
        return;
    char text[32];
    snprintf(text, sizeof(text), "%d", (int)getpid());
    for (unsigned i = 0; i < cg->npl; i++) {
        if (!cg->pl[i].dir[0])
            continue;
        char p[PATH_MAX + 32];
        snprintf(p, sizeof(p), "%s/cgroup.procs", cg->pl[i].from);
        if (write_file(p, text) < 0) {      /* the root of the hierarchy, then */
            char root[PATH_MAX];
            snprintf(root, sizeof(root), "%s", cg->pl[i].dir);
            char *pet = strstr(root, "/petrel/");
            if (pet) {
                *pet = 0;
                snprintf(p, sizeof(p), "%s/cgroup.procs", root);
                write_file(p, text);
            }
        }
        if (rmdir(cg->pl[i].dir) < 0 && errno != ENOENT)
            log_warn("cgroup: cannot remove %s: %s", cg->pl[i].dir, strerror(errno));
    }
    free(cg);
}

void cg_forget(struct cgroup *cg)
{
    free(cg);
}

/* --- stale cgroups and usage ----------------------------------------------- */

static pid_t walk_pid;          /* nftw has no opaque pointer */
static char walk_found[PATH_MAX];
static bool walk_remove;

/* A directory .../petrel/<digits>: its pid, else 0. */
static pid_t petrel_leaf(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash - path < 7 || strncmp(slash - 7, "/petrel", 7))
        return 0;
    char *end;
    long v = strtol(slash + 1, &end, 10);
    return slash[1] && !*end && v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/* pid is gone, or a zombie (it left its cgroups when it exited). */
static bool pid_gone(pid_t pid)
{
    if (kill(pid, 0) < 0)
        return errno == ESRCH;
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    if (read_file(p, buf, sizeof(buf)) <= 0)
        return true;
    const char *paren = strrchr(buf, ')');
    return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

static int walk_fn(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    if (type != FTW_D && type != FTW_DP)
        return 0;
    if (ftw->level > 12)
        return 0;
    pid_t pid = petrel_leaf(path);
    if (!pid)
        return 0;
    if (walk_remove) {
        if ((!walk_pid || pid == walk_pid) && pid_gone(pid) && rmdir(path) == 0)
            log_debug("cgroup: removed %s (its VMM is gone)", path);
        return 0;
    }
    if (pid == walk_pid && !walk_found[0])
        snprintf(walk_found, sizeof(walk_found), "%s", path);
    return 0;
}

static void walk_all(const struct mounts *m, bool remove, pid_t pid, const char *only)
{
    walk_remove = remove;
    walk_pid = pid;
    walk_found[0] = 0;
    if (!only || !strcmp(only, "v2"))
        if (m->v2[0])
            nftw(m->v2, walk_fn, 16, FTW_PHYS | FTW_DEPTH);
    for (unsigned i = 0; i < m->nv1; i++)
        if (!only || has_word(m->v1[i].opts, only))
            nftw(m->v1[i].mount, walk_fn, 16, FTW_PHYS | FTW_DEPTH);
}

void cg_sweep(pid_t only)
{
    struct mounts m;
    find_mounts(&m);
    walk_all(&m, true, only, NULL);
}

static long long read_ll(const char *dir, const char *file)
{
    char p[PATH_MAX + 64], buf[64];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    if (read_file(p, buf, sizeof(buf)) <= 0)
        return -1;
    if (!strncmp(buf, "max", 3))
        return -1;
    return strtoll(buf, NULL, 10);
}

/* "key value" lines of a flat-keyed file */
static long long read_key(const char *dir, const char *file, const char *key)
{
    char p[PATH_MAX + 64], buf[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    if (read_file(p, buf, sizeof(buf)) <= 0)
        return -1;
    size_t n = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, n) && l[n] == ' ')
            return strtoll(l + n + 1, NULL, 10);
    return -1;
}

/* Fill u from the directory dir serving the v1 controllers in opts (NULL:
 * the v2 directory). */
static void read_usage(const char *dir, const char *opts, struct cg_usage *u)
{
    u->found = true;
    if (!u->path[0])
        snprintf(u->path, sizeof(u->path), "%s", dir);
    if (!opts) {
        long long us = read_key(dir, "cpu.stat", "usage_usec");
        if (us >= 0)
            u->cpu_usage_ns = us * 1000;
        if ((us = read_key(dir, "cpu.stat", "nr_throttled")) >= 0)
            u->nr_throttled = us;
        if ((us = read_key(dir, "cpu.stat", "throttled_usec")) >= 0)
            u->throttled_ns = us * 1000;
        char p[PATH_MAX + 16], buf[64];
        snprintf(p, sizeof(p), "%s/cpu.max", dir);
        if (read_file(p, buf, sizeof(buf)) > 0 && strncmp(buf, "max", 3))
            sscanf(buf, "%lld %lld", &u->cpu_quota_us, &u->cpu_period_us);
        u->mem_current = read_ll(dir, "memory.current");
        u->mem_peak = read_ll(dir, "memory.peak");
        u->mem_max = read_ll(dir, "memory.max");
        u->oom_kills = read_key(dir, "memory.events", "oom_kill");
        u->pids_current = read_ll(dir, "pids.current");
        u->pids_max = read_ll(dir, "pids.max");
        return;
    }
    if (has_word(opts, "cpuacct"))
        u->cpu_usage_ns = read_ll(dir, "cpuacct.usage");
    if (has_word(opts, "cpu")) {
        long long q = read_ll(dir, "cpu.cfs_quota_us");
        if (q > 0) {
            u->cpu_quota_us = q;
            u->cpu_period_us = read_ll(dir, "cpu.cfs_period_us");
        }
        u->nr_throttled = read_key(dir, "cpu.stat", "nr_throttled");
        u->throttled_ns = read_key(dir, "cpu.stat", "throttled_time");
    }
    if (has_word(opts, "memory")) {
        u->mem_current = read_ll(dir, "memory.usage_in_bytes");
        u->mem_peak = read_ll(dir, "memory.max_usage_in_bytes");
        u->mem_max = read_ll(dir, "memory.limit_in_bytes");
        if (u->mem_max >= (1ll << 62))      /* v1's "no limit" */
            u->mem_max = -1;
        u->oom_kills = read_key(dir, "memory.oom_control", "oom_kill");
    }
    if (has_word(opts, "pids")) {
        u->pids_current = read_ll(dir, "pids.current");
        u->pids_max = read_ll(dir, "pids.max");
    }
}

static void usage_init(struct cg_usage *u)
{
    memset(u, 0, sizeof(*u));
    u->cpu_usage_ns = u->nr_throttled = u->throttled_ns = -1;
    u->cpu_quota_us = u->cpu_period_us = -1;
    u->mem_current = u->mem_peak = u->mem_max = u->oom_kills = -1;
    u->pids_current = u->pids_max = -1;
}

int cg_usage(pid_t pid, struct cg_usage *u)
{
    usage_init(u);
    struct mounts m;
    find_mounts(&m);
    char cur[PATH_MAX], dir[PATH_MAX * 2];
    if (m.v2[0] && proc_cgroup(pid, NULL, cur, sizeof(cur)) == 0 && petrel_leaf(cur)) {
        snprintf(dir, sizeof(dir), "%s%s", m.v2, cur);
        read_usage(dir, NULL, u);
    }
    for (unsigned i = 0; i < m.nv1; i++) {
        const char *name = NULL;
        for (int c = 0; c < NCTL; c++)
            if (has_word(m.v1[i].opts, v1_name[c]))
                name = v1_name[c];
        if (!name || proc_cgroup(pid, name, cur, sizeof(cur)) < 0 || !petrel_leaf(cur))
            continue;
        snprintf(dir, sizeof(dir), "%s%s", m.v1[i].mount, cur);
        read_usage(dir, m.v1[i].opts, u);
    }
    return u->found ? 0 : -ENOENT;
}

int cg_usage_stale(pid_t pid, struct cg_usage *u)
{
    usage_init(u);
    if (pid <= 0)
        return -ENOENT;
    struct mounts m;
    find_mounts(&m);
    if (m.v2[0]) {
        walk_all(&m, false, pid, "v2");
        if (walk_found[0])
            read_usage(walk_found, NULL, u);
    }
    for (unsigned i = 0; i < m.nv1; i++) {
        walk_remove = false;
        walk_pid = pid;
        walk_found[0] = 0;
        nftw(m.v1[i].mount, walk_fn, 16, FTW_PHYS);
        if (walk_found[0])
            read_usage(walk_found, m.v1[i].opts, u);
    }
    return u->found ? 0 : -ENOENT;
}
