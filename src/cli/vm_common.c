/* `petrel vm`: what its commands share (vm_priv.h): messages, small
 * helpers, the state directory and the VMs' directories, the lock.
 *
 * The lock: vms/NAME/lock, flock(LOCK_EX) held by the running VMM (start
 * hands the open file over fork+exec), and briefly by set, delete and the
 * clean-up after a VMM that is gone.
 *
 * Threads: none.
 *
 * What can fail: see vm_priv.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/vm_priv.h"

/* --- messages ------------------------------------------------------------- */

/* Output capture (vmx_capture_begin): per thread, so `petrel serve` can run
 * a command's core on a request's thread while the CLI prints as before. */
static __thread struct vmx_capture *cap;

static void cap_append(char **buf, size_t *len, size_t *capa, const char *s, size_t n)
{
    if (*len + n + 1 > *capa) {
        size_t want = (*len + n + 1) * 2;
        char *b = realloc(*buf, want);
        if (!b)
            return;
        *buf = b;
        *capa = want;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

static void cap_vprintf(bool to_err, const char *fmt, va_list ap)
{
    if (!cap) {
        vfprintf(to_err ? stderr : stdout, fmt, ap);
        return;
    }
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    if (n < 0)
        return;
    if (to_err)
        cap_append(&cap->err, &cap->err_len, &cap->err_cap, s, (size_t)n);
    else if (cap->out_len < VMX_CAPTURE_MAX)
        cap_append(&cap->out, &cap->out_len, &cap->out_cap, s, (size_t)n);
    free(s);
}

void vmx_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cap_vprintf(false, fmt, ap);
    va_end(ap);
}

void vmx_eprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cap_vprintf(true, fmt, ap);
    va_end(ap);
}

void vmx_capture_begin(struct vmx_capture *c)
{
    memset(c, 0, sizeof(*c));
    cap = c;
}

/* The first line of s without its "petrel vm[ CMD]: " prefix, into e. */
static void first_line(const char *s, struct err *e)
{
    while (*s == '\r' || *s == '\n')
        s++;
    if (!strncmp(s, "petrel vm", 9)) {
        const char *colon = strstr(s, ": ");
        const char *nl = strchr(s, '\n');
        if (colon && (!nl || colon < nl))
            s = colon + 2;
    }
    size_t n = strcspn(s, "\n");
    err_set(e, -EINVAL, "%.*s", (int)(n < sizeof(e->msg) - 1 ? n : sizeof(e->msg) - 1), s);
}

void vmx_capture_end(struct vmx_capture *c, struct err *e)
{
    cap = NULL;
    if (e && c->err)
        first_line(c->err, e);
    else if (e)
        e->msg[0] = 0;
}

void vmx_capture_free(struct vmx_capture *c)
{
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof(*c));
}

int vmx_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmx_eprintf("petrel vm: ");
    cap_vprintf(true, fmt, ap);
    vmx_eprintf("\n");
    va_end(ap);
    return 1;
}

int vmx_usage_err(const char *cmd, const char *fmt, const char *arg)
{
    vmx_eprintf("petrel vm %s: ", cmd);
    vmx_eprintf(fmt, arg);
    vmx_eprintf(" (try 'petrel vm %s --help')\n", cmd);
    return 1;
}

/* --- small helpers -------------------------------------------------------- */

int vmx_fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, len, f, ap);
    va_end(ap);
    return n;
}

int vmx_strv_add(struct strv *s, const char *str)
{
    if (s->n + 2 > s->cap) {
        int cap = s->cap ? s->cap * 2 : 32;
        char **nv = realloc(s->v, (size_t)cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return -ENOMEM;
    s->v[++s->n] = NULL;
    return 0;
}

int vmx_strv_addf(struct strv *s, const char *fmt, ...)
{
    char *str;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&str, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    int r = vmx_strv_add(s, str);
    free(str);
    return r;
}

void vmx_strv_free(struct strv *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

uint64_t vmx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void vmx_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void vmx_utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void vmx_fmt_mib(char *buf, size_t len, unsigned long long mib)
{
    if (mib && mib % 1024 == 0)
        vmx_fmt(buf, len, "%lluG", mib / 1024);
    else
        vmx_fmt(buf, len, "%lluM", mib);
}

void vmx_fmt_bytes(char *buf, size_t len, uint64_t b)
{
    if (b && b % (1ull << 30) == 0)
        vmx_fmt(buf, len, "%lluG", (unsigned long long)(b >> 30));
    else if (b && b % (1ull << 20) == 0)
        vmx_fmt(buf, len, "%lluM", (unsigned long long)(b >> 20));
    else
        vmx_fmt(buf, len, "%llu bytes", (unsigned long long)b);
}

bool vmx_file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int vmx_rm_rf(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- the state directory and VM directories ------------------------------- */

int vmx_init(struct vmx *x)
{
    struct err e = { "" };
    if (vm_state_dir(x->state, sizeof(x->state), &e) < 0)
        return vmx_fail("%s", e.msg);
    vmx_fmt(x->vms, sizeof(x->vms), "%s/vms", x->state);
    return 0;
}

void vmx_vm_dir(const struct vmx *x, const char *name, char *buf, size_t len)
{
    vmx_fmt(buf, len, "%s/%s", x->vms, name);
}

int vmx_check_name(const char *cmd, const char *name)
{
    if (!vm_name_valid(name)) {
        vmx_eprintf("petrel vm %s: invalid VM name '%s' (1 to %d characters: letters, "
                "digits, '_', '.', '-'; starting with a letter or digit)\n", cmd, name,
                VM_NAME_MAX);
        return 1;
    }
    return 0;
}

int vmx_vm_dir_existing(const struct vmx *x, const char *name, char *dir, size_t len)
{
    vmx_vm_dir(x, name, dir, len);
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return vmx_fail("no VM named '%s' (in %s)", name, x->vms);
    return 0;
}

/* Load NAME's definition; 1 (message printed) when it is missing or bad. */
int vmx_load_vm(const struct vmx *x, const char *name, char *dir, size_t dirlen,
                struct vm_def *d)
{
    if (vmx_vm_dir_existing(x, name, dir, dirlen))
        return 1;
    char file[PATH_MAX + 16];
    vmx_fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
    struct err e = { "" };
    if (vm_def_load(d, file, name, &e) < 0)
        return vmx_fail("%s", e.msg);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the VM directories. */
int vmx_list_names(const struct vmx *x, struct strv *names)
{
    DIR *d = opendir(x->vms);
    if (!d)
        return vmx_fail("%s: %s", x->vms, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !vm_name_valid(de->d_name))
            continue;
        char p[PATH_MAX + 80];
        struct stat st;
        vmx_fmt(p, sizeof(p), "%s/%s", x->vms, de->d_name);
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (vmx_strv_add(names, de->d_name) < 0) {
            closedir(d);
            return vmx_fail("out of memory");
        }
    }
    closedir(d);
    if (names->n > 1)
        qsort(names->v, (size_t)names->n, sizeof(char *), cmp_str);
    return 0;
}

int vmx_flag_opt(const char *cmd, int argc, char **argv, const char *flag, char short_flag,
                 bool *on)
{
    enum { OPT_FLAG = 1000 };
    /* "help" first: a NULL flag ends the table after it */
    const struct option lo[] = { { "help", no_argument, 0, 'h' },
                                 { flag, no_argument, 0, OPT_FLAG }, { 0, 0, 0, 0 } };
    char optstring[4] = { ':', 'h', short_flag, 0 };
    int c;
    *on = false;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
        if (c == OPT_FLAG || (short_flag && c == short_flag))
            *on = true;
        else if (c == 'h')
            return vmx_cmd_help(cmd), -1;
        else
            return vmx_usage_err(cmd, "unknown option '%s'", argv[optind - 1]), -2;
    }
    return optind;
}

int vmx_named_vm(struct vmx *x, const char *cmd, int argc, char **argv, int i, char *dir,
                 size_t len, struct vm_rt *rt, long api_timeout_ms)
{
    if (i != argc - 1)
        return vmx_usage_err(cmd, "%s", "expected a VM name");
    if (vmx_check_name(cmd, argv[i]) || vmx_init(x))
        return 1;
    if (dir && vmx_vm_dir_existing(x, argv[i], dir, len))
        return 1;
    if (dir && rt)
        vmx_rt_get(dir, rt, api_timeout_ms);
    return 0;
}

int vmx_one_vm(struct vmx *x, const char *cmd, int argc, char **argv, char *dir, size_t len,
               struct vm_rt *rt, long api_timeout_ms)
{
    bool none;
    int i = vmx_flag_opt(cmd, argc, argv, NULL, 0, &none);
    if (i < 0)
        return i;
    return vmx_named_vm(x, cmd, argc, argv, i, dir, len, rt, api_timeout_ms) ? -2 : i;
}

/* --- the lock ------------------------------------------------------------- */

/* 1 if some process holds dir/lock, 0 if not, <0 on error. */
int vmx_lock_held(const char *dir)
{
    char p[PATH_MAX + 8];
    vmx_fmt(p, sizeof(p), "%s/lock", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int r = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        r = errno == EWOULDBLOCK ? 1 : -errno;
    close(fd);     /* releases a lock this probe took */
    return r;
}

/* Take dir/lock (created when missing).  Another process probing it at the
 * same moment holds it for microseconds, so a busy lock is tried again for
 * a little while before it counts as held: -EWOULDBLOCK.  *fdp: the
 * descriptor (close-on-exec; start clears that in the VMM's child). */
int vmx_lock_take(const char *dir, int *fdp, unsigned tries)
{
    char p[PATH_MAX + 8];
    vmx_fmt(p, sizeof(p), "%s/lock", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    for (unsigned i = 0;; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        int err = errno;
        if (err != EWOULDBLOCK || i + 1 >= tries) {
            close(fd);
            return -err;
        }
        vmx_sleep_ms(10);
    }
    *fdp = fd;
    return 0;
}

/* Take NAME's lock for a change that needs it stopped. */
int vmx_lock_stopped(const char *name, const char *dir, int *fd)
{
    int r = vmx_lock_take(dir, fd, LOCK_TRIES);
    if (r == -EWOULDBLOCK)
        return vmx_fail("%s is running; stop it first ('petrel vm stop %s')", name, name);
    if (r < 0)
        return vmx_fail("%s/lock: %s", dir, strerror(-r));
    return 0;
}

/* --- ssh keys ------------------------------------------------------------- */

const char *const vmx_default_keys[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" };

const char *vmx_home_dir(void)
{
    const char *h = getenv("HOME");
    return h && *h ? h : NULL;
}

void vmx_print_listing(json_t *arr, bool as_json, const char *cells, size_t cell_len,
                       int cols, int rows)
{
    if (as_json) {
        char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        vmx_printf("%s\n", text ? text : "[]");
        free(text);
        return;
    }
    int w[16] = { 0 };
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols && c < 16; c++) {
            int n = (int)strlen(cells + ((size_t)r * (size_t)cols + (size_t)c) * cell_len);
            if (n > w[c])
                w[c] = n;
        }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const char *cell = cells + ((size_t)r * (size_t)cols + (size_t)c) * cell_len;
            if (c < cols - 1)
                vmx_printf("%-*s  ", w[c < 16 ? c : 15], cell);
            else
                vmx_printf("%s\n", cell);
        }
}
