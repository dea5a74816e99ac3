/* The allowlists per thread kind (docs/seccomp.md explains each group and
 * how to extend them).  A rule names a system call, the kinds it is allowed
 * for, and at most one argument comparison; several rules for one call
 * allow any of them. */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define VMM (1u << THREAD_VMM)
#define HART (1u << THREAD_HART)
#define VCPU (1u << THREAD_VCPU)
#define BLK (1u << THREAD_BLK)
#define ALL (VMM | HART | VCPU | BLK)
#define DEV (VMM | HART | VCPU)         /* device emulation runs here */

enum arg_test { ANY, EQ, MASK_ZERO, MASK_EQ };

struct rule {
    const char *name;
    unsigned kinds;
    enum arg_test test;
    unsigned arg;
    uint64_t a, b;      /* EQ: arg == a; MASK_ZERO: !(arg & a); MASK_EQ: (arg & a) == b */
};

#define R(n, k) { #n, k, ANY, 0, 0, 0 }
#define R_EQ(n, k, i, v) { #n, k, EQ, i, (uint64_t)(v), 0 }
#define R_NOT(n, k, i, m) { #n, k, MASK_ZERO, i, (uint64_t)(m), 0 }
#define R_MASK(n, k, i, m, v) { #n, k, MASK_EQ, i, (uint64_t)(m), (uint64_t)(v) }

static const struct rule rules[] = {
    /* base: every thread (memory, locks, time, logging, ending) */
    R(read, ALL), R(write, ALL), R(readv, ALL), R(writev, ALL), R(close, ALL),
    R(futex, ALL), R(sched_yield, ALL), R(restart_syscall, ALL),
    R(clock_gettime, ALL), R(clock_nanosleep, ALL), R(nanosleep, ALL), R(gettimeofday, ALL),
    R(getpid, ALL), R(gettid, ALL), R(exit, ALL), R(exit_group, ALL),
    R(rt_sigreturn, ALL), R(rt_sigprocmask, ALL), R(rt_sigaction, ALL),
    R(brk, ALL), R(munmap, ALL), R(madvise, ALL), R(mremap, ALL),
    R_NOT(mmap, ALL, 2, PROT_EXEC),         /* nothing executable after set-up */
    R_NOT(mprotect, ALL, 2, PROT_EXEC),
    R(fstat, ALL), R(newfstatat, ALL), R(lseek, ALL), R(getrandom, ALL),

    /* file I/O: disks (qcow2 workers, and the main thread for snapshots and
     * synchronous requests), snapshot files */
    R(pread64, DEV | BLK), R(pwrite64, DEV | BLK), R(preadv, DEV | BLK), R(pwritev, DEV | BLK),
    R(preadv2, DEV | BLK), R(pwritev2, DEV | BLK),
    R(fsync, DEV | BLK), R(fdatasync, DEV | BLK), R(fallocate, DEV | BLK),
    R(ftruncate, DEV | BLK),

    /* device emulation: io_uring, eventfds, timers, sockets (console, vsock,
     * NAT) on the loop and on guest-CPU threads (MMIO exits) */
    R(io_uring_enter, DEV), R(epoll_ctl, DEV), R(timerfd_settime, DEV), R(timerfd_gettime, DEV),
    R(poll, DEV), R(ppoll, DEV),
    R(sendmsg, DEV), R(recvmsg, DEV), R(sendto, DEV), R(recvfrom, DEV), R(sendmmsg, DEV),
    R(recvmmsg, DEV),
    R(connect, DEV), R(shutdown, DEV), R(setsockopt, DEV), R(getsockopt, DEV),
    R(getsockname, DEV), R(getpeername, DEV),
    R_EQ(socket, DEV, 0, AF_UNIX), R_EQ(socket, DEV, 0, AF_INET), R_EQ(socket, DEV, 0, AF_INET6),
    R(fcntl, DEV),
    R_EQ(ioctl, DEV, 1, FIONBIO), R_EQ(ioctl, DEV, 1, FIONREAD), R_EQ(ioctl, DEV, 1, TIOCOUTQ),
    R_EQ(ioctl, DEV, 1, TCGETS), R_EQ(ioctl, DEV, 1, TCSETS), R_EQ(ioctl, DEV, 1, TCSETSF),
    /* KVM: interrupts and MSIs from device code, everything on vCPUs */
    R_MASK(ioctl, DEV, 1, 0xff00, KVMIO << 8),
    R(tgkill, DEV),         /* kvm: kicking vCPUs out of KVM_RUN; raise() */

    /* the main thread: the loop, accepting clients, API requests (drives,
     * snapshots), teardown */
    R(epoll_wait, VMM), R(epoll_pwait, VMM), R(accept, VMM), R(accept4, VMM),
    R(openat, VMM), R(unlink, VMM), R(unlinkat, VMM), R(rename, VMM), R(renameat, VMM),
    R(renameat2, VMM), R(mkdir, VMM), R(mkdirat, VMM), R(statx, VMM), R(statfs, VMM),
    R(fstatfs, VMM), R(getdents64, VMM), R(flock, VMM), R(fchmod, VMM), R(readlink, VMM),
    R(access, VMM), R(faccessat, VMM), R(faccessat2, VMM), R(getcwd, VMM),
    R(eventfd2, VMM), R(timerfd_create, VMM), R(epoll_create1, VMM), R(pipe2, VMM),
    R(dup, VMM), R(dup3, VMM), R(bind, VMM), R(listen, VMM), R(socketpair, VMM),
    R(io_uring_setup, VMM), R(io_uring_register, VMM), R(memfd_create, VMM),
    R(sysinfo, VMM), R(uname, VMM), R(getrusage, VMM), R(clock_getres, VMM),
    R(sched_getaffinity, VMM), R(getuid, VMM), R(geteuid, VMM), R(getgid, VMM),
    R(getegid, VMM),
    R(rmdir, VMM),          /* removing the VMM's cgroups at exit (sandbox/cgroup.c) */
    /* --vnc: libvncserver waits for a client's bytes with select() (glibc:
     * pselect6; select on older ones) in its blocking reads
     * (rfbReadExactTimeout), on the loop */
    R(select, VMM), R(pselect6, VMM),
    /* threads started later (a qcow2 drive attached through the API): a
     * thread only, not a process; clone3 answers ENOSYS (below) so glibc
     * falls back to clone, whose flags can be checked */
    R_MASK(clone, VMM, 0, CLONE_THREAD, CLONE_THREAD),
    R(set_robust_list, VMM), R(rseq, VMM),
    R_EQ(prctl, VMM, 0, PR_SET_NAME),
    R_EQ(seccomp, VMM, 0, SECCOMP_SET_MODE_FILTER),     /* only ever narrows */

#ifdef __SANITIZE_ADDRESS__
    /* ASan/LSan's runtime at report and exit time: the leak checker runs a
     * tracer task (clone, ptrace, waitpid), reads /proc/self/maps, and the
     * symbolizer is a child process.  Debug builds only (make SAN=1). */
    R(clone, ALL), R(ptrace, ALL), R(wait4, ALL), R(openat, ALL), R(prctl, ALL),
    R(sched_getaffinity, ALL), R(getdents64, ALL), R(readlink, ALL), R(execve, ALL),
    R(pipe2, ALL), R(dup2, ALL), R(kill, ALL), R(getppid, ALL), R(sigaltstack, ALL),
    R(setrlimit, ALL), R(getrlimit, ALL), R(prlimit64, ALL),
    R(fork, ALL), R(vfork, ALL), R(statx, ALL), R(fcntl, ALL), R(access, ALL),
    R(open, ALL), R(getdents, ALL), R(stat, ALL), R(lstat, ALL),
#endif
};

/* One argument comparison, every field set (libseccomp's SCMP_CMP leaves
 * datum_b out, which clang's -Wmissing-field-initializers rejects). */
static struct scmp_arg_cmp cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
    struct scmp_arg_cmp c = { .arg = arg, .op = op, .datum_a = a, .datum_b = b };
    return c;
}

int sandbox_seccomp_policy(scmp_filter_ctx ctx, enum thread_kind kind, struct err *e)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const struct rule *r = &rules[i];
        if (!(r->kinds & (1u << kind)))
            continue;
        int nr = seccomp_syscall_resolve_name(r->name);
        if (nr == __NR_SCMP_ERROR)
            return err_set(e, -EINVAL, "seccomp: unknown system call %s", r->name);
        int ret;
        switch (r->test) {
        case EQ:
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                   cmp(r->arg, SCMP_CMP_EQ, r->a, 0));
            break;
        case MASK_ZERO:
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                   cmp(r->arg, SCMP_CMP_MASKED_EQ, r->a, 0));
            break;
        case MASK_EQ:
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                   cmp(r->arg, SCMP_CMP_MASKED_EQ, r->a, r->b));
            break;
        default:
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        }
        if (ret < 0)
            return err_set(e, ret, "seccomp: cannot add %s to the %s filter: %s", r->name,
                           thread_kind_name(kind), strerror(-ret));
    }
    /* glibc's pthread_create tries clone3 first; its flags sit in memory a
     * filter cannot read, so it fails and glibc uses clone */
    if (kind == THREAD_VMM) {
        int ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (ret < 0)
            return err_set(e, ret, "seccomp: cannot add clone3: %s", strerror(-ret));
    }
    return 0;
}
