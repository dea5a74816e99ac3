#include "sandbox/seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Syscall names for the SIGSYS handler, resolved at init: libseccomp's
 * resolver allocates, which a signal handler must not do. */
#define NAME_NRS 512
#define NAME_LEN 24
static char names[NAME_NRS][NAME_LEN];

static struct sock_fprog progs[THREAD_KINDS];
static enum sandbox_seccomp_mode mode = SBX_SECCOMP_OFF;
static bool ready;
/* the calling thread's kind, for the message: set when its filter loads */
static __thread const char *my_kind;

int sandbox_seccomp_parse(const char *s, enum sandbox_seccomp_mode *out)
{
    static const char *const n[] = { "on", "off", "log" };
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(s, n[i])) {
            *out = (enum sandbox_seccomp_mode)i;
            return 0;
        }
    return -EINVAL;
}

const char *sandbox_seccomp_mode_name(enum sandbox_seccomp_mode m)
{
    return m == SBX_SECCOMP_ON ? "on" : m == SBX_SECCOMP_LOG ? "log" : "off";
}

/* --- the SIGSYS handler: async-signal-safe code only --------------------- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    buf[at] = 0;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof(tmp));
    while (n > 0 && at + 1 < cap)
        buf[at++] = tmp[--n];
    buf[at] = 0;
    return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char msg[200];
    size_t n = 0;
    unsigned nr = (unsigned)si->si_syscall;
    n = put(msg, n, sizeof(msg), "petrel: seccomp: ");
    n = put(msg, n, sizeof(msg), my_kind ? my_kind : "unfiltered");
    n = put(msg, n, sizeof(msg), " thread made forbidden system call ");
    if (si->si_arch != AUDIT_ARCH_X86_64 && si->si_arch != AUDIT_ARCH_AARCH64) {
        n = put(msg, n, sizeof(msg), "of a foreign ABI, number ");
        n = put_num(msg, n, sizeof(msg), nr);
    } else {
        n = put(msg, n, sizeof(msg), nr < NAME_NRS && names[nr][0] ? names[nr] : "?");
        n = put(msg, n, sizeof(msg), " (");
        n = put_num(msg, n, sizeof(msg), nr);
        n = put(msg, n, sizeof(msg), ")");
    }
    n = put(msg, n, sizeof(msg), "; see docs/seccomp.md\n");
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    _exit(SANDBOX_SECCOMP_EXIT);
}

/* --- compiling and loading ----------------------------------------------- */

/* kind's filter as a BPF program: libseccomp writes it to a memfd. */
static int compile(enum thread_kind kind, struct err *e)
{
    uint32_t def = mode == SBX_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx)
        return err_set(e, -ENOMEM, "seccomp: cannot create a filter");
    int r, fd = -1;
    /* another ABI's system calls (i386, x32) are forbidden as well */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, def)) < 0 ||
        (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
        err_set(e, r, "seccomp: cannot set the filter's attributes: %s", strerror(-r));
        goto out;
    }
    if ((r = sandbox_seccomp_policy(ctx, kind, e)) < 0)
        goto out;
    if ((fd = memfd_create("petrel-seccomp", MFD_CLOEXEC)) < 0) {
        r = err_set(e, -errno, "seccomp: memfd_create: %s", strerror(errno));
        goto out;
    }
    if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
        err_set(e, r, "seccomp: cannot compile the %s filter: %s", thread_kind_name(kind),
                strerror(-r));
        goto out;
    }
    off_t len = lseek(fd, 0, SEEK_END);
    if (len <= 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > 0xffff) {
        r = err_set(e, -EINVAL, "seccomp: the %s filter has a bad size (%lld bytes)",
                    thread_kind_name(kind), (long long)len);
        goto out;
    }
    struct sock_filter *f = malloc((size_t)len);
    if (!f) {
        r = err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    if (pread(fd, f, (size_t)len, 0) != len) {
        free(f);
        r = err_set(e, -EIO, "seccomp: cannot read the %s filter back", thread_kind_name(kind));
        goto out;
    }
    progs[kind].filter = f;
    progs[kind].len = (unsigned short)(len / sizeof(struct sock_filter));
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return r;
}

static void hook(enum thread_kind kind)
{
    sandbox_seccomp_enter(kind);
}

int sandbox_seccomp_init(enum sandbox_seccomp_mode m, struct err *e)
{
    mode = m;
    if (m == SBX_SECCOMP_OFF)
        return 0;
    /* API level 3: the log action (kernel 4.14) */
    if (m == SBX_SECCOMP_LOG && seccomp_api_get() < 3)
        return err_set(e, -ENOTSUP, "--seccomp log: this kernel has no seccomp log action");
    for (unsigned nr = 0; nr < NAME_NRS; nr++) {
        char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)nr);
        if (s) {
            strncpy(names[nr], s, NAME_LEN - 1);
            free(s);
        }
    }
    for (unsigned k = 0; k < THREAD_KINDS; k++) {
        int r = compile((enum thread_kind)k, e);
        if (r < 0)
            return r;
    }
    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return err_set(e, -errno, "seccomp: sigaction(SIGSYS): %s", strerror(errno));
    /* inherited by every thread created from now on */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return err_set(e, -errno, "seccomp: no_new_privs: %s", strerror(errno));
    ready = true;
    thread_set_hook(hook);
    return 0;
}

void sandbox_seccomp_enter(enum thread_kind kind)
{
    if (!ready || kind >= THREAD_KINDS || my_kind == thread_kind_name(kind))
        return;     /* off, or this thread has that filter already */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[kind]) < 0) {
        char msg[160];
        size_t n = put(msg, 0, sizeof(msg), "petrel: seccomp: cannot load the ");
        n = put(msg, n, sizeof(msg), thread_kind_name(kind));
        n = put(msg, n, sizeof(msg), " thread's filter: ");
        n = put(msg, n, sizeof(msg), strerror(errno));
        n = put(msg, n, sizeof(msg), "\n");
        ssize_t w = write(STDERR_FILENO, msg, n);
        (void)w;
        _exit(1);
    }
    my_kind = thread_kind_name(kind);
}
