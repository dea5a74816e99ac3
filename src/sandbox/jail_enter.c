/* The jailer, part 2: entering the jail.  The parent forks the VMM into a
 * new pid namespace and waits for it; the child makes its other namespaces,
 * builds its root (a tmpfs of mount points, bind mounts, /dev nodes, its
 * own /proc), pivots into it, and drops privileges.  Model: jail.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/jail_priv.h"

#define FD_PATH_LEN 32

static void fd_path(char *buf, int fd)
{
    snprintf(buf, FD_PATH_LEN, "/proc/self/fd/%d", fd);
}

/* Open every bind source (O_PATH) and DIR in the new mount namespace (a
 * mount of another namespace cannot be bound), before the tmpfs hides DIR. */
static int open_sources(struct jail *j, struct err *e)
{
    j->dir_fd = open(j->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (j->dir_fd < 0)
        return err_set(e, -errno, "--jail %s: %s", j->dir, strerror(errno));
    for (unsigned i = 0; i < j->nmounts; i++) {
        struct jail_mount *m = &j->mounts[i];
        m->fd = open(m->source, O_PATH | O_NOFOLLOW | O_CLOEXEC |
                     (m->kind == JAIL_DIR ? O_DIRECTORY : 0));
        if (m->fd < 0)
            return err_set(e, -errno, "%s: %s", m->source, strerror(errno));
    }
    return 0;
}

/* Make the directories of rel (relative to the tmpfs root fd) and the
 * mount point itself (a directory, or an empty file).  Returns an O_PATH
 * fd of the mount point. */
static int make_point(int root, const char *target, bool dir, struct err *e)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", target + 1);
    int fd = dup(root);
    char *p = buf;
    for (;;) {
        char *slash = strchr(p, '/');
        bool last = !slash;
        if (slash)
            *slash = 0;
        if (fd < 0)
            return err_set(e, -errno, "jail: %s: %s", target, strerror(errno));
        int nfd;
        if (!last || dir) {
            if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
                close(fd);
                return err_set(e, -errno, "jail: mkdir %s: %s", target, strerror(errno));
            }
            nfd = openat(fd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            nfd = openat(fd, p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0444);
            if (nfd >= 0) {
                close(nfd);
                nfd = openat(fd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            }
        }
        int err = errno;
        close(fd);
        if (nfd < 0)
            return err_set(e, -err, "jail: %s: %s", target, strerror(err));
        fd = nfd;
        if (last)
            return fd;
        p = slash + 1;
    }
}

/* Bind src_fd at the mount point point_fd (target: the same, by path from
 * the current root, to reach the new mount for the remount). */
static int bind(int src_fd, int point_fd, const char *root, const char *target,
                unsigned long flags, struct err *e)
{
    char src[FD_PATH_LEN], dst[FD_PATH_LEN], path[PATH_MAX * 2];
    fd_path(src, src_fd);
    fd_path(dst, point_fd);
    snprintf(path, sizeof(path), "%s%s", root, target);
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return err_set(e, -errno, "jail: bind-mount %s: %s", target, strerror(errno));
    if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
        return err_set(e, -errno, "jail: remount %s: %s", target, strerror(errno));
    return 0;
}

static int build_root(struct jail *j, struct err *e)
{
    /* the new root: a tmpfs over DIR, in this mount namespace only */
    if (mount("petrel-jail", j->dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=1m,nr_inodes=4096") < 0)
        return err_set(e, -errno, "jail: tmpfs on %s: %s", j->dir, strerror(errno));
    int root = open(j->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return err_set(e, -errno, "jail: %s: %s", j->dir, strerror(errno));
    int ret = 0, pt;
    const unsigned long hard = MS_NOSUID | MS_NOEXEC;
    /* DIR itself, at its own path */
    if ((pt = make_point(root, j->dir, true, e)) < 0)
        goto out_ret;
    ret = bind(j->dir_fd, pt, j->dir, j->dir, hard | MS_NODEV, e);
    close(pt);
    for (unsigned i = 0; !ret && i < j->nmounts; i++) {
        struct jail_mount *m = &j->mounts[i];
        if ((pt = make_point(root, m->target, m->kind == JAIL_DIR, e)) < 0)
            goto out_ret;
        unsigned long fl = hard | (m->kind == JAIL_DEV ? 0 : MS_NODEV) | (m->rw ? 0 : MS_RDONLY);
        ret = bind(m->fd, pt, j->dir, m->target, fl, e);
        close(pt);
    }
    if (ret)
        goto out;
    /* /proc of this pid namespace: the VMM's own process only */
    if ((pt = make_point(root, "/proc", true, e)) < 0)
        goto out_ret;
    char dst[FD_PATH_LEN];
    fd_path(dst, pt);
    if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "subset=pid,hidepid=invisible") < 0 &&
        mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        ret = err_set(e, -errno, "jail: mounting /proc: %s", strerror(errno));
    close(pt);
    if (ret)
        goto out;
    /* pivot: the tmpfs becomes /, the old root is detached */
    if (fchdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
        ret = err_set(e, -errno, "jail: pivot_root into %s: %s", j->dir, strerror(errno));
        goto out;
    }
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
        ret = err_set(e, -errno, "jail: detaching the host's root: %s", strerror(errno));
        goto out;
    }
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | hard | MS_NODEV, NULL) < 0)
        ret = err_set(e, -errno, "jail: remounting / read-only: %s", strerror(errno));
    goto out;
out_ret:
    ret = pt;
out:
    close(root);
    return ret;
}

static int drop_privileges(struct jail *j, struct err *e)
{
    struct rlimit nofile = { j->nofile, j->nofile }, core = { 0, 0 };
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &core) < 0)
        return err_set(e, -errno, "jail: setrlimit: %s", strerror(errno));
    if (j->fsize) {
        struct rlimit fs = { j->fsize, j->fsize };
        if (setrlimit(RLIMIT_FSIZE, &fs) < 0)
            return err_set(e, -errno, "jail: setrlimit fsize: %s", strerror(errno));
    }
    /* no capability can come back through exec or a uid change */
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return err_set(e, -errno, "jail: dropping capability %d: %s", cap, strerror(errno));
    if (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
        setresuid(j->uid, j->uid, j->uid) < 0)
        return err_set(e, -errno, "jail: switching to uid %u gid %u: %s", (unsigned)j->uid,
                       (unsigned)j->gid, strerror(errno));
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return err_set(e, -errno, "jail: dropping capabilities: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return err_set(e, -errno, "jail: no_new_privs: %s", strerror(errno));
    /* a uid change made the process non-dumpable, and its /proc/self
     * files root's: the VMM reads its own (statm, pagemap) */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    return 0;
}

static int child_setup(struct jail *j, struct err *e)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (j->netns_fd < 0 ? CLONE_NEWNET : 0);
    if (unshare(flags) < 0)
        return err_set(e, -errno, "jail: unshare: %s", strerror(errno));
    if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0)
        return err_set(e, -errno, "jail: entering --netns: %s", strerror(errno));
    if (sethostname("petrel", 6) < 0)
        return err_set(e, -errno, "jail: sethostname: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return err_set(e, -errno, "jail: making the mounts private: %s", strerror(errno));
    int ret = open_sources(j, e);
    if (ret < 0 || (ret = build_root(j, e)) < 0)
        return ret;
    /* nothing but stdin, stdout and stderr stays open */
    if (syscall(SYS_close_range, 3, ~0u, 0) < 0)
        return err_set(e, -errno, "jail: close_range: %s", strerror(errno));
    j->dir_fd = j->netns_fd = -1;
    for (unsigned i = 0; i < j->nmounts; i++)
        j->mounts[i].fd = -1;
    /* the strings themselves too: they stay in /proc/PID/environ (the
     * memory exec gave) after clearenv */
    for (char **ev = environ; ev && *ev; ev++)
        memset(*ev, 0, strlen(*ev));
    if (clearenv() < 0)
        return err_set(e, -ENOMEM, "jail: clearenv failed");
    return drop_privileges(j, e);
}

/* The parent: forward the stop signals to the VMM, wait for it. */
static int parent_wait(pid_t pid, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        if (sigwaitinfo(set, &si) < 0)
            continue;
        if (si.si_signo != SIGCHLD) {
            kill(pid, si.si_signo);
            continue;
        }
        int ws;
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(ws))
                return WEXITSTATUS(ws);
            fprintf(stderr, "petrel: the jailed VMM was killed by %s\n",
                    strsignal(WTERMSIG(ws)));
            return 1;
        }
    }
}

int jail_enter(struct jail *j, int *status, struct err *e)
{
    int ret;
    if (j->drop_uid) {
        struct stat st;
        if (stat(j->dir, &st) < 0)
            return err_set(e, -errno, "--jail %s: %s", j->dir, strerror(errno));
        if ((st.st_uid != j->uid || st.st_gid != j->gid) && chown(j->dir, j->uid, j->gid) < 0)
            return err_set(e, -errno, "--jail %s: chown to %u:%u: %s", j->dir,
                           (unsigned)j->uid, (unsigned)j->gid, strerror(errno));
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    /* the child is pid 1 of a new pid namespace; the parent goes back to
     * its own for any later child (once the new one's pid 1 has exited,
     * fork fails there: e.g. LeakSanitizer's tracer at the parent's exit) */
    int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own_pidns < 0 || unshare(CLONE_NEWPID) < 0) {
        ret = err_set(e, -errno, "jail: new pid namespace: %s", strerror(errno));
        if (own_pidns >= 0)
            close(own_pidns);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return ret;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        if (setns(own_pidns, CLONE_NEWPID) < 0)
            log_warn("jail: back to the host's pid namespace: %s", strerror(errno));
        close(own_pidns);
    }
    if (pid < 0) {
        ret = err_set(e, -errno, "jail: fork: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return ret;
    }
    if (pid == 0) {
        /* the stop signals stay blocked: the VMM reads them from a
         * signalfd (pid 1 would drop them while unblocked with no handler) */
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        if (!sigismember(&old, SIGCHLD))
            sigprocmask(SIG_UNBLOCK, &chld, NULL);
        if ((ret = child_setup(j, e)) < 0) {
            fprintf(stderr, "petrel run: %s\n", e->msg);
            _exit(1);
        }
        return 0;
    }
    *status = parent_wait(pid, &set);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 1;
}
