/* `petrel vm`: VMs kept as files in a state directory and run in the
 * background: create, list, info, start, console, pause, resume, stop, kill,
 * set, delete, ssh, stats.  Layout and contract: docs/control-plane.md
 * ("VMs as files"); the definition: vm_def.h; the VMM's API: vm_client.h.
 *
 * Design
 * - A VM is the directory vms/NAME.  Every command reads what it needs from
 *   there; nothing else keeps state, so two shells (or a crash of this CLI
 *   at any point) cannot disagree with the files.
 * - "Runs at most once": vms/NAME/lock.  `start` takes flock(LOCK_EX) on it
 *   and hands the open file to the VMM over fork+exec (the descriptor is not
 *   close-on-exec), so the lock lives exactly as long as the VMM process.
 *   set and delete take the same lock, so they cannot race a start.
 * - Runtime state: lock held -> the API's /petrel/info says running or
 *   paused ("starting" until it answers); lock free and run.json present ->
 *   "crashed" when the VMM's API socket is still there (it died without
 *   cleaning up), else "stopped" (the guest powered off; the VMM removed its
 *   sockets); otherwise "stopped".  start, stop and kill clean up after a
 *   VMM that is gone.
 * - The VMM is `petrel run` (this binary, /proc/self/exe) with its
 *   configuration from the definition plus --api-sock, --boot, --id,
 *   --console-sock and --console-log; in its own session, stdin from
 *   /dev/null, stdout/stderr to vms/NAME/vmm.log.
 *
 * Threads: none; one command per process.
 *
 * What can fail: every command prints one line "petrel vm: ..." and exits 1
 * (a VMM that dies while starting also gets the end of its log). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "cli/cfgdisk.h"
#include "cli/cli.h"
#include "cli/vm_client.h"
#include "cli/vm_def.h"
#include "virtio/virtio_pci.h"

#define SOCK_PATH_MAX 107               /* sizeof(sun_path) - 1 */
#define DEFAULT_MEMORY_MIB 512u
#define DEFAULT_DISK_SIZE (8ull << 30)
#define MIN_DISK_SIZE (1ull << 20)
#define MAX_DISK_SIZE (64ull << 40)
#define DEFAULT_STOP_TIMEOUT 30u
#define START_TIMEOUT_MS 60000
#define API_TIMEOUT_MS 5000
#define CONSOLE_QUIET_MS 1000
#define CONSOLE_EOF_MAX_MS 60000
#define CONSOLE_ESCAPE 0x1d             /* Ctrl-] */
#define SSH_WAIT_DEFAULT 120u
#define APPEND_ROOT_RISCV64 "root=/dev/vda console=ttyS0 earlycon=sbi"
#define APPEND_ROOT_X86_64 "root=/dev/vda console=ttyS0"
#define NET_DEFAULT "virtio-net,hostfwd=tcp:127.0.0.1:0-:22"
#define SSH_FWD_ANY ":0-:22"            /* in a hostfwd: the port picked at start */

struct vmx {
    char state[PATH_MAX];               /* the state directory, absolute */
    char vms[PATH_MAX + 8];             /* state/vms */
};

/* --- messages -------------------------------------------------------------- */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "petrel vm: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static int usage_err(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "petrel vm %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try 'petrel vm %s --help')\n", cmd);
    return 1;
}

/* --- small helpers --------------------------------------------------------- */

/* snprintf for paths and messages: buffers are sized for PATH_MAX-long state
 * directories plus a name, so truncation cannot happen in practice. */
static int fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, len, f, ap);
    va_end(ap);
    return n;
}

struct strv {
    char **v;
    int n, cap;
};

static int strv_add(struct strv *s, const char *str)
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

static int strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int strv_addf(struct strv *s, const char *fmt, ...)
{
    char *str;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&str, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    int r = strv_add(s, str);
    free(str);
    return r;
}

static void strv_free(struct strv *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_mib(char *buf, size_t len, unsigned long long mib)
{
    if (mib && mib % 1024 == 0)
        fmt(buf, len, "%lluG", mib / 1024);
    else
        fmt(buf, len, "%lluM", mib);
}

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
    if (b && b % (1ull << 30) == 0)
        fmt(buf, len, "%lluG", (unsigned long long)(b >> 30));
    else if (b && b % (1ull << 20) == 0)
        fmt(buf, len, "%lluM", (unsigned long long)(b >> 20));
    else
        fmt(buf, len, "%llu bytes", (unsigned long long)b);
}

static void fmt_uptime(char *buf, size_t len, long long s)
{
    if (s < 0)
        fmt(buf, len, "-");
    else if (s < 60)
        fmt(buf, len, "%llds", s);
    else if (s < 3600)
        fmt(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        fmt(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        fmt(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static bool is_socket(const char *path)
{
    struct stat st;
    return path && *path && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* path, or dir/path when relative */
static void resolve_in(char *buf, size_t len, const char *dir, const char *path)
{
    if (path[0] == '/')
        fmt(buf, len, "%s", path);
    else
        fmt(buf, len, "%s/%s", dir, path);
}

/* An absolute, existing path for a file named on the command line. */
static int abs_existing(const char *what, const char *path, char **out)
{
    char *r = realpath(path, NULL);
    if (!r)
        return fail("%s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (stat(r, &st) < 0 || S_ISDIR(st.st_mode)) {
        free(r);
        return fail("%s %s: not a file", what, path);
    }
    *out = r;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int rm_rf(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- the state directory and VM directories -------------------------------- */

static int vmx_init(struct vmx *x)
{
    struct err e = { "" };
    if (vm_state_dir(x->state, sizeof(x->state), &e) < 0)
        return fail("%s", e.msg);
    fmt(x->vms, sizeof(x->vms), "%s/vms", x->state);
    return 0;
}

static void vm_dir(const struct vmx *x, const char *name, char *buf, size_t len)
{
    fmt(buf, len, "%s/%s", x->vms, name);
}

static int check_name(const char *cmd, const char *name)
{
    if (!vm_name_valid(name)) {
        fprintf(stderr, "petrel vm %s: invalid VM name '%s' (1 to %d characters: letters, "
                "digits, '_', '.', '-'; starting with a letter or digit)\n", cmd, name,
                VM_NAME_MAX);
        return 1;
    }
    return 0;
}

/* Load NAME's definition; 1 (message printed) when it is missing or bad. */
static int load_vm(const struct vmx *x, const char *name, char *dir, size_t dirlen,
                   struct vm_def *d)
{
    vm_dir(x, name, dir, dirlen);
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    char file[PATH_MAX + 16];
    fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
    struct err e = { "" };
    if (vm_def_load(d, file, name, &e) < 0)
        return fail("%s", e.msg);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the VM directories. */
static int list_names(const struct vmx *x, struct strv *names)
{
    DIR *d = opendir(x->vms);
    if (!d)
        return fail("%s: %s", x->vms, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !vm_name_valid(de->d_name))
            continue;
        char p[PATH_MAX + 80];
        struct stat st;
        fmt(p, sizeof(p), "%s/%s", x->vms, de->d_name);
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (strv_add(names, de->d_name) < 0) {
            closedir(d);
            return fail("out of memory");
        }
    }
    closedir(d);
    if (names->n > 1)
        qsort(names->v, (size_t)names->n, sizeof(char *), cmp_str);
    return 0;
}

/* --- the lock ---------------------------------------------------------------- */

/* 1 if some process holds dir/lock, 0 if not, <0 on error. */
static int lock_held(const char *dir)
{
    char p[PATH_MAX + 8];
    fmt(p, sizeof(p), "%s/lock", dir);
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
static int lock_take(const char *dir, int *fdp, unsigned tries)
{
    char p[PATH_MAX + 8];
    fmt(p, sizeof(p), "%s/lock", dir);
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
        sleep_ms(10);
    }
    *fdp = fd;
    return 0;
}

#define LOCK_TRIES 30

/* --- sockets ----------------------------------------------------------------- */

/* Where NAME's sockets live: in its directory when the paths fit in a unix
 * socket address, else in a short private directory
 * ($XDG_RUNTIME_DIR/petrel/HASH or /tmp/petrel-UID/HASH, 0700), HASH naming
 * the VM's directory.  sockdir: "" or that directory. */
static int socket_paths(const char *dir, char *api, char *con, char *sockdir, size_t len,
                        bool create)
{
    sockdir[0] = 0;
    if (strlen(dir) + strlen("/console.sock") <= SOCK_PATH_MAX) {
        fmt(api, len, "%s/api.sock", dir);
        fmt(con, len, "%s/console.sock", dir);
        return 0;
    }
    uint64_t h = 0xcbf29ce484222325ull;           /* FNV-1a */
    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    char base[PATH_MAX];
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0] == '/' && strlen(rt) < 60)
        fmt(base, sizeof(base), "%s/petrel", rt);
    else
        fmt(base, sizeof(base), "/tmp/petrel-%u", (unsigned)geteuid());
    fmt(sockdir, len, "%s/%016llx", base, (unsigned long long)h);
    fmt(api, len, "%s/api.sock", sockdir);
    fmt(con, len, "%s/console.sock", sockdir);
    if (strlen(con) > SOCK_PATH_MAX)
        return fail("%s: the socket path is too long for a unix socket", con);
    if (!create)
        return 0;
    if (mkdir(base, 0700) < 0 && errno != EEXIST)
        return fail("%s: %s", base, strerror(errno));
    struct stat st;
    if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return fail("%s: not a directory owned by uid %u; cannot put sockets there", base,
                    (unsigned)geteuid());
    if ((st.st_mode & 077) && chmod(base, 0700) < 0)
        return fail("%s: chmod: %s", base, strerror(errno));
    if (mkdir(sockdir, 0700) < 0 && errno != EEXIST)
        return fail("%s: %s", sockdir, strerror(errno));
    return 0;
}

/* --- runtime state ----------------------------------------------------------- */

enum vm_st { ST_STOPPED, ST_STARTING, ST_RUNNING, ST_PAUSED, ST_CRASHED };

static const char *const st_names[] = { "stopped", "starting", "running", "paused", "crashed" };

struct vm_rt {
    enum vm_st st;
    bool held;                  /* the lock is held: a VMM (or a start) is there */
    json_t *run;                /* run.json, or NULL */
    json_t *info;               /* GET /petrel/info, or NULL */
    long long pid;              /* from run.json; 0: unknown */
    long long ssh_port;         /* from run.json; 0: none */
    char api[PATH_MAX], con[PATH_MAX], sockdir[PATH_MAX];
};

static void rt_free(struct vm_rt *rt)
{
    json_decref(rt->run);
    json_decref(rt->info);
    rt->run = rt->info = NULL;
}

static const char *json_str_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void read_run_json(const char *dir, struct vm_rt *rt)
{
    char p[PATH_MAX + 16];
    fmt(p, sizeof(p), "%s/run.json", dir);
    rt->run = json_load_file(p, 0, NULL);
    if (rt->run && !json_is_object(rt->run)) {
        json_decref(rt->run);
        rt->run = NULL;
    }
    if (!rt->run) {
        if (file_exists(p))     /* unreadable leftovers count as a crash */
            rt->run = json_object();
        return;
    }
    json_t *v = json_object_get(rt->run, "pid");
    rt->pid = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
    v = json_object_get(rt->run, "ssh_port");
    rt->ssh_port = json_is_integer(v) && json_integer_value(v) > 0 &&
                   json_integer_value(v) < 65536 ? json_integer_value(v) : 0;
    const char *a = json_str_field(rt->run, "api_sock"), *c = json_str_field(rt->run,
                                                                            "console_sock");
    const char *s = json_str_field(rt->run, "socket_dir");
    if (*a && strlen(a) <= SOCK_PATH_MAX)
        fmt(rt->api, sizeof(rt->api), "%s", a);
    if (*c && strlen(c) <= SOCK_PATH_MAX)
        fmt(rt->con, sizeof(rt->con), "%s", c);
    if (*s)
        fmt(rt->sockdir, sizeof(rt->sockdir), "%s", s);
}

/* The VM's runtime state (never fails: unknowns read as stopped/crashed). */
static void rt_get(const char *dir, struct vm_rt *rt, long api_timeout_ms)
{
    memset(rt, 0, sizeof(*rt));
    read_run_json(dir, rt);
    if (!rt->api[0]) {
        char sd[PATH_MAX];
        if (strlen(dir) + strlen("/console.sock") <= SOCK_PATH_MAX) {
            fmt(rt->api, sizeof(rt->api), "%s/api.sock", dir);
            fmt(rt->con, sizeof(rt->con), "%s/console.sock", dir);
        } else if (socket_paths(dir, rt->api, rt->con, sd, sizeof(sd), false) != 0) {
            rt->api[0] = rt->con[0] = 0;
        }
    }
    rt->held = lock_held(dir) == 1;
    if (rt->held) {
        rt->st = ST_STARTING;
        struct err e = { "" };
        if (rt->api[0] && api_timeout_ms &&
            vm_client_get_json(rt->api, "/petrel/info", api_timeout_ms, &rt->info, &e) == 0) {
            const char *s = json_str_field(rt->info, "state");
            if (!strcmp(s, "Running"))
                rt->st = ST_RUNNING;
            else if (!strcmp(s, "Paused"))
                rt->st = ST_PAUSED;
        }
    } else if (rt->run) {
        /* the VMM removes its API socket when it ends; one left behind means
         * it died without cleaning up */
        rt->st = is_socket(rt->api) ? ST_CRASHED : ST_STOPPED;
    } else {
        rt->st = ST_STOPPED;
    }
}

/* Remove what a VMM that is gone left behind (call with the lock held). */
static void rt_cleanup(const char *dir, const struct vm_rt *rt)
{
    char p[PATH_MAX + 16];
    if (is_socket(rt->api))
        unlink(rt->api);
    if (is_socket(rt->con))
        unlink(rt->con);
    if (rt->sockdir[0])
        rmdir(rt->sockdir);
    fmt(p, sizeof(p), "%s/run.json", dir);
    unlink(p);
}

static bool rt_active(const struct vm_rt *rt)
{
    return rt->held;
}

static int need_running(const char *name, const struct vm_rt *rt)
{
    if (rt->st == ST_RUNNING || rt->st == ST_PAUSED)
        return 0;
    if (rt->st == ST_STARTING)
        return fail("%s is starting (its API does not answer yet); try again", name);
    if (rt->st == ST_CRASHED)
        return fail("%s is not running (its VMM crashed; 'petrel vm start %s' starts it again)",
                    name, name);
    return fail("%s is not running", name);
}

/* --- ssh keys ---------------------------------------------------------------- */

static const char *const default_keys[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" };

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    return h && *h ? h : NULL;
}

/* Read an OpenSSH public key file into *out (ending in a newline). */
static int read_pubkey(const char *path, char **out)
{
    struct file_buf_ {
        char *data;
        size_t len;
    } b = { 0 };
    FILE *f = fopen(path, "re");
    if (!f)
        return fail("--ssh-key %s: %s", path, strerror(errno));
    b.data = malloc(VM_DEF_MAX_KEYS + 2);
    if (!b.data) {
        fclose(f);
        return fail("out of memory");
    }
    b.len = fread(b.data, 1, VM_DEF_MAX_KEYS + 1, f);
    fclose(f);
    if (b.len > VM_DEF_MAX_KEYS) {
        free(b.data);
        return fail("--ssh-key %s: larger than %u bytes; not a public key", path,
                    VM_DEF_MAX_KEYS);
    }
    b.data[b.len] = 0;
    if (strlen(b.data) != b.len || strstr(b.data, "PRIVATE KEY")) {
        free(b.data);
        return fail("--ssh-key %s: not an OpenSSH public key (a private key? pass the .pub "
                    "file)", path);
    }
    /* every line: empty, a comment, or a key (options before it allowed) */
    unsigned keys = 0, lineno = 0;
    for (char *line = b.data; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        char tmp[64];
        size_t i = 0;
        while (i < n && isspace((unsigned char)line[i]))
            i++;
        if (i < n && line[i] != '#') {
            fmt(tmp, sizeof(tmp), "%.*s", (int)(n - i < 63 ? n - i : 63), line + i);
            if (!strstr(tmp, "ssh-") && !strstr(tmp, "ecdsa-sha2-")) {
                free(b.data);
                return fail("--ssh-key %s: line %u is not an OpenSSH public key", path, lineno);
            }
            keys++;
        }
        line += n + (nl ? 1 : 0);
    }
    if (!keys) {
        free(b.data);
        return fail("--ssh-key %s: no key in the file", path);
    }
    if (b.len && b.data[b.len - 1] != '\n') {
        b.data[b.len++] = '\n';
        b.data[b.len] = 0;
    }
    *out = b.data;
    return 0;
}

/* Fill d's ssh.authorized_keys and key_file from --ssh-key (NULL: the
 * first of ~/.ssh/id_{ed25519,ecdsa,rsa}.pub, warning when there is none;
 * "none": no key). */
static int apply_ssh_key(struct vm_def *d, const char *opt, bool *no_key)
{
    char path[PATH_MAX];
    if (opt && !strcmp(opt, "none")) {
        free(d->ssh_key_file);
        d->ssh_key_file = NULL;
        return vm_def_set_str(&d->authorized_keys, "") < 0 ? fail("out of memory") : 0;
    }
    if (!opt) {
        const char *h = home_dir();
        for (unsigned i = 0; h && i < sizeof(default_keys) / sizeof(default_keys[0]); i++) {
            fmt(path, sizeof(path), "%s/.ssh/%s", h, default_keys[i]);
            if (file_exists(path)) {
                opt = path;
                break;
            }
        }
        if (!opt) {
            if (no_key)
                *no_key = true;
            return vm_def_set_str(&d->authorized_keys, "") < 0 ? fail("out of memory") : 0;
        }
    }
    char *keys = NULL, *abs;
    if (read_pubkey(opt, &keys))
        return 1;
    if (!(abs = realpath(opt, NULL))) {
        free(keys);
        return fail("--ssh-key %s: %s", opt, strerror(errno));
    }
    free(d->authorized_keys);
    free(d->ssh_key_file);
    d->authorized_keys = keys;
    d->ssh_key_file = abs;
    return 0;
}

/* --- create ------------------------------------------------------------------ */

/* Whether `petrel run --help` lists a device (features of this build). */
static bool run_help_lists(const char *word)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(p[1], 1);
        dup2(null, 2);
        execl("/proc/self/exe", "petrel", "run", "--help", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (buf && len < cap && ((n = read(p[0], buf + len, cap - len)) > 0 ||
                                (n < 0 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    close(p[0]);
    waitpid(pid, NULL, 0);
    bool found = false;
    if (buf) {
        buf[len] = 0;
        found = strstr(buf, word) != NULL;
    }
    free(buf);
    return found;
}

/* The default guest's directory for arch, as `petrel run` finds it. */
static int default_guest_dir(const char *arch, char *buf, size_t len)
{
    const char *env = getenv("PETREL_GUEST_DIR");
    if (env && *env)
        return fmt(buf, len, "%s/%s", env, arch) < (int)len ? 0 : -1;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    return fmt(buf, len, "%s/guest/%s", exe, arch) < (int)len ? 0 : -1;
}

static int parse_cpus(const char *cmd, const char *arg, const char *arch, unsigned *out)
{
    char *end;
    unsigned max = vm_def_max_cpus(arch);
    errno = 0;
    unsigned long v = isdigit((unsigned char)arg[0]) ? strtoul(arg, &end, 10) : 0;
    if (!isdigit((unsigned char)arg[0]) || errno || *end || v < 1 || v > max) {
        fprintf(stderr, "petrel vm %s: invalid --cpus '%s' (%s guests have 1..%u)\n", cmd, arg,
                arch, max);
        return 1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_memory(const char *cmd, const char *arg, unsigned *mib)
{
    uint64_t b;
    if (vm_parse_size(arg, 20, &b) < 0 || b % (1u << 20) ||
        b < (uint64_t)VM_DEF_MIN_MEMORY_MIB << 20 || b > (uint64_t)VM_DEF_MAX_MEMORY_MIB << 20) {
        fprintf(stderr, "petrel vm %s: invalid --memory '%s' (16M to 64G in whole MiB, e.g. "
                "512M or 2G; a bare number is MiB)\n", cmd, arg);
        return 1;
    }
    *mib = (unsigned)(b >> 20);
    return 0;
}

static int parse_port(const char *cmd, const char *arg, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = isdigit((unsigned char)arg[0]) ? strtoul(arg, &end, 10) : 70000;
    if (!isdigit((unsigned char)arg[0]) || errno || *end || v > 65535)
        return usage_err(cmd, "invalid --ssh-port '%s' (0..65535; 0: picked at start)", arg);
    *out = (unsigned)v;
    return 0;
}

static int parse_onoff(const char *cmd, const char *opt, const char *arg, bool *out)
{
    if (!strcmp(arg, "on") || !strcmp(arg, "yes") || !strcmp(arg, "true"))
        *out = true;
    else if (!strcmp(arg, "off") || !strcmp(arg, "no") || !strcmp(arg, "false"))
        *out = false;
    else {
        fprintf(stderr, "petrel vm %s: %s '%s': use on or off\n", cmd, opt, arg);
        return 1;
    }
    return 0;
}

/* --disk SPEC (petrel run's syntax) into a definition disk; the path is made
 * absolute and must exist. */
static int parse_disk_opt(const char *spec, struct vm_disk_def *dd)
{
    char *copy = strdup(spec);
    if (!copy)
        return fail("out of memory");
    struct disk_config dc;
    struct err e = { "" };
    if (disk_config_parse(&dc, copy, &e) < 0) {
        free(copy);
        return fail("%s", e.msg);
    }
    if (!strcmp(dc.serial, VM_DEF_CONFIG_SERIAL)) {
        free(copy);
        return fail("--disk %s: serial '" VM_DEF_CONFIG_SERIAL "' is reserved for the config "
                    "disk", spec);
    }
    char *abs = NULL;
    if (abs_existing("--disk", dc.path, &abs)) {
        free(copy);
        return 1;
    }
    memset(dd, 0, sizeof(*dd));
    dd->path = abs;
    dd->format = dc.format ? strdup(dc.format) : NULL;
    dd->readonly = dc.readonly;
    dd->serial = dc.serial[0] ? strdup(dc.serial) : NULL;
    free(copy);
    if ((dc.format && !dd->format) || (dc.serial[0] && !dd->serial))
        return fail("out of memory");
    return 0;
}

/* The VM's root disk, dir/disk0.qcow2: an overlay on base (NULL: blank). */
static int make_root_disk(const char *dir, const char *base, uint64_t size, uint64_t *vsize)
{
    char path[PATH_MAX + 16];
    fmt(path, sizeof(path), "%s/disk0.qcow2", dir);
    struct qimg_create_opts o = { .fmt = "qcow2", .size = size };
    struct err e = { "" };
    if (base) {
        struct qimg *q = NULL;
        if (qimg_open(&q, base, NULL, true, &e) < 0)
            return fail("--base %s: %s", base, e.msg);
        o.backing_fmt = q->raw ? "raw" : "qcow2";
        if (q->size > o.size)
            o.size = q->size;
        qimg_close(q);
        o.backing = base;
        o.size = (o.size + 511) & ~511ull;
    }
    if (qimg_create(path, &o, &e) < 0)
        return fail("%s: %s", path, e.msg);
    *vsize = o.size;
    return 0;
}

enum {
    OPT_ARCH = 256, OPT_CPUS, OPT_MEMORY, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_FIRMWARE,
    OPT_DISK, OPT_DEVICE, OPT_DISK_SIZE, OPT_BASE, OPT_SSH_KEY, OPT_SSH_PORT, OPT_NO_NET,
    OPT_AUTOSTART, OPT_JSON, OPT_ALL, OPT_TIMEOUT, OPT_FORCE, OPT_WATCH, OPT_WAIT,
};

static void cmd_help(const char *cmd);

static int cmd_create(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = {
        { "arch", required_argument, 0, OPT_ARCH },
        { "cpus", required_argument, 0, OPT_CPUS },
        { "memory", required_argument, 0, OPT_MEMORY },
        { "kernel", required_argument, 0, OPT_KERNEL },
        { "initrd", required_argument, 0, OPT_INITRD },
        { "append", required_argument, 0, OPT_APPEND },
        { "firmware", required_argument, 0, OPT_FIRMWARE },
        { "disk", required_argument, 0, OPT_DISK },
        { "device", required_argument, 0, OPT_DEVICE },
        { "disk-size", required_argument, 0, OPT_DISK_SIZE },
        { "base", required_argument, 0, OPT_BASE },
        { "ssh-key", required_argument, 0, OPT_SSH_KEY },
        { "ssh-port", required_argument, 0, OPT_SSH_PORT },
        { "no-net", no_argument, 0, OPT_NO_NET },
        { "autostart", no_argument, 0, OPT_AUTOSTART },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *arch = "riscv64", *cpus_arg = NULL, *mem_arg = NULL, *kernel = NULL,
               *initrd = NULL, *append = NULL, *firmware = NULL, *base_arg = NULL,
               *key_arg = NULL, *size_arg = NULL;
    const char *disk_args[VM_DEF_MAX_DISKS + 1], *dev_args[VM_DEF_MAX_DEVICES + 1];
    unsigned ndisk_args = 0, ndev_args = 0, ssh_port = 0;
    bool no_net = false, autostart = false;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_ARCH: arch = optarg; break;
        case OPT_CPUS: cpus_arg = optarg; break;
        case OPT_MEMORY: mem_arg = optarg; break;
        case OPT_KERNEL: kernel = optarg; break;
        case OPT_INITRD: initrd = optarg; break;
        case OPT_APPEND: append = optarg; break;
        case OPT_FIRMWARE: firmware = optarg; break;
        case OPT_DISK:
            if (ndisk_args >= VM_DEF_MAX_DISKS)
                return usage_err("create", "too many --disk options (at most %s with the "
                                 "root disk)", "15");
            disk_args[ndisk_args++] = optarg;
            break;
        case OPT_DEVICE:
            if (ndev_args >= VM_DEF_MAX_DEVICES)
                return usage_err("create", "too many --device options (at most %s)", "16");
            dev_args[ndev_args++] = optarg;
            break;
        case OPT_DISK_SIZE: size_arg = optarg; break;
        case OPT_BASE: base_arg = optarg; break;
        case OPT_SSH_KEY: key_arg = optarg; break;
        case OPT_SSH_PORT:
            if (parse_port("create", optarg, &ssh_port))
                return 1;
            break;
        case OPT_NO_NET: no_net = true; break;
        case OPT_AUTOSTART: autostart = true; break;
        case 'h': cmd_help("create"); return 0;
        case ':': return usage_err("create", "option '%s' needs an argument", argv[optind - 1]);
        default: return usage_err("create", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_err("create", "%s", optind >= argc ? "expected a VM name"
                                                         : "expected one VM name");
    const char *name = argv[optind];
    if (check_name("create", name))
        return 1;
    if (!vm_def_max_cpus(arch))
        return usage_err("create", "unknown --arch '%s' (riscv64 or x86_64)", arch);
    char dir[PATH_MAX + 80];
    if (vmx_init(x))
        return 1;
    vm_dir(x, name, dir, sizeof(dir));
    if (file_exists(dir))
        return fail("a VM named '%s' already exists", name);

    struct vm_def d = { 0 };
    int rc = 1;
    char tmpdir[PATH_MAX + 64] = "", guest[PATH_MAX];
    char *base = NULL;
    uint64_t disk_size = DEFAULT_DISK_SIZE;
    d.vcpus = 1;
    d.memory_mib = DEFAULT_MEMORY_MIB;
    if (vm_def_set_str(&d.name, name) < 0 || vm_def_set_str(&d.arch, arch) < 0)
        goto oom;
    if (cpus_arg && parse_cpus("create", cpus_arg, arch, &d.vcpus))
        goto out;
    if (mem_arg && parse_memory("create", mem_arg, &d.memory_mib))
        goto out;
    if (kernel && abs_existing("--kernel", kernel, &d.kernel))
        goto out;
    if (initrd && abs_existing("--initrd", initrd, &d.initrd))
        goto out;
    if (firmware && !strcmp(firmware, "none")) {
        if (vm_def_set_str(&d.firmware, "none") < 0)
            goto oom;
    } else if (firmware && abs_existing("--firmware", firmware, &d.firmware)) {
        goto out;
    }
    if (size_arg) {
        if (vm_parse_size(size_arg, 0, &disk_size) < 0 || disk_size % 512 ||
            (disk_size && disk_size < MIN_DISK_SIZE) || disk_size > MAX_DISK_SIZE) {
            usage_err("create", "invalid --disk-size '%s' (e.g. 8G; 1M to 64T, a multiple of "
                      "512 bytes; 0 with --base none: no root disk)", size_arg);
            goto out;
        }
        if (!disk_size && !(base_arg && !strcmp(base_arg, "none"))) {
            usage_err("create", "--disk-size %s: a root disk on a base image needs a size",
                      size_arg);
            goto out;
        }
    }
    /* the root disk's base */
    if (!base_arg) {
        if (default_guest_dir(arch, guest, sizeof(guest)) < 0) {
            fail("cannot locate the default guest; pass --base IMAGE or --base none");
            goto out;
        }
        char p[PATH_MAX + 16];
        fmt(p, sizeof(p), "%s/root.img", guest);
        if (!(base = realpath(p, NULL))) {
            fail("the default guest's root disk %s: %s (build it with 'make guest', or pass "
                 "--base IMAGE or --base none)", p, strerror(errno));
            goto out;
        }
    } else if (strcmp(base_arg, "none") && abs_existing("--base", base_arg, &base)) {
        goto out;
    }
    /* the kernel command line: a root disk with a base boots from it */
    if (append) {
        if (vm_def_set_str(&d.append, append) < 0)
            goto oom;
    } else if (base &&
               vm_def_set_str(&d.append, strcmp(arch, "riscv64") ? APPEND_ROOT_X86_64
                                                                   : APPEND_ROOT_RISCV64) < 0) {
        goto oom;
    }
    /* disks: disk0 first (vda), then --disk in order */
    if (base || disk_size) {
        struct vm_disk_def *dd = &d.disks[d.ndisks++];
        if (!(dd->path = strdup("disk0.qcow2")) || !(dd->format = strdup("qcow2")))
            goto oom;
    }
    for (unsigned i = 0; i < ndisk_args; i++) {
        if (d.ndisks >= VM_DEF_MAX_DISKS) {
            usage_err("create", "too many disks (at most %s with the root disk)", "15");
            goto out;
        }
        if (parse_disk_opt(disk_args[i], &d.disks[d.ndisks]))
            goto out;
        d.ndisks++;
    }
    /* devices: the defaults (unless given explicitly), then --device */
    bool user_rng = false, user_net = false, user_kbd = false;
    for (unsigned i = 0; i < ndev_args; i++) {
        if (!virtio_device_known(dev_args[i])) {
            usage_err("create", "unknown --device '%s' (known: " VIRTIO_DEVICE_NAMES ")",
                      dev_args[i]);
            goto out;
        }
        size_t n = strcspn(dev_args[i], ",");
        user_rng |= n == 10 && !strncmp(dev_args[i], "virtio-rng", n);
        user_net |= n == 10 && !strncmp(dev_args[i], "virtio-net", n);
        user_kbd |= n == 15 && !strncmp(dev_args[i], "virtio-keyboard", n);
    }
    const char *defaults[3];
    unsigned ndefaults = 0;
    if (!user_rng)
        defaults[ndefaults++] = "virtio-rng";
    if (!no_net && !user_net)
        defaults[ndefaults++] = NET_DEFAULT;
    if (!user_kbd && run_help_lists("virtio-keyboard"))
        defaults[ndefaults++] = "virtio-keyboard";
    if (ndefaults + ndev_args > VM_DEF_MAX_DEVICES) {
        usage_err("create", "too many devices with the defaults (at most %s)", "16");
        goto out;
    }
    for (unsigned i = 0; i < ndefaults; i++)
        if (!(d.devices[d.ndevices++] = strdup(defaults[i])))
            goto oom;
    for (unsigned i = 0; i < ndev_args; i++)
        if (!(d.devices[d.ndevices++] = strdup(dev_args[i])))
            goto oom;
    d.ssh_port = ssh_port;
    d.autostart = autostart;
    bool no_key = false;
    if (apply_ssh_key(&d, key_arg, &no_key))
        goto out;
    char now[32];
    utc_now(now, sizeof(now));
    if (vm_def_set_str(&d.created_utc, now) < 0)
        goto oom;

    /* build it in a hidden directory, then rename it into place */
    fmt(tmpdir, sizeof(tmpdir), "%s/.%s.creating.%d", x->vms, name, (int)getpid());
    if (mkdir(tmpdir, 0700) < 0) {
        fail("%s: %s", tmpdir, strerror(errno));
        tmpdir[0] = 0;
        goto out;
    }
    uint64_t vsize = 0;
    if ((base || disk_size) && make_root_disk(tmpdir, base, disk_size, &vsize))
        goto out;
    char file[PATH_MAX + 96];
    struct err e = { "" };
    fmt(file, sizeof(file), "%s/" VM_DEF_FILE, tmpdir);
    if (vm_def_save(&d, file, &e) < 0) {
        fail("%s", e.msg);
        goto out;
    }
    fmt(file, sizeof(file), "%s/lock", tmpdir);
    int lfd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (lfd >= 0)
        close(lfd);
    if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, dir, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            fail("a VM named '%s' already exists", name);
        else
            fail("%s: rename to %s: %s", tmpdir, dir, strerror(errno));
        goto out;
    }
    tmpdir[0] = 0;
    char mem[32], sz[32];
    fmt_mib(mem, sizeof(mem), d.memory_mib);
    fmt_bytes(sz, sizeof(sz), vsize);
    printf("created %s: %s, %u vCPU%s, %s", name, arch, d.vcpus, d.vcpus == 1 ? "" : "s", mem);
    if (base)
        printf(", disk0 %s on %s", sz, base);
    else if (vsize)
        printf(", disk0 %s (blank)", sz);
    if (d.ssh_key_file)
        printf(", ssh key %s", d.ssh_key_file);
    printf("\n");
    if (no_key)
        fprintf(stderr, "petrel vm: warning: no ssh key (~/.ssh/id_ed25519.pub, id_ecdsa.pub, "
                "id_rsa.pub): 'petrel vm ssh' cannot log in; add one with 'petrel vm set %s "
                "--ssh-key FILE'\n", name);
    rc = 0;
    goto out;
oom:
    fail("out of memory");
out:
    if (tmpdir[0])
        rm_rf(tmpdir);
    free(base);
    vm_def_free(&d);
    return rc;
}

/* --- start ------------------------------------------------------------------- */

/* A free TCP port on 127.0.0.1 (bind to 0, read it, close); 0 on failure. */
static unsigned pick_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    unsigned port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* A --disk argument: the path with ',' doubled, then the options. */
static int add_disk_arg(struct strv *av, const char *path, const char *format, bool ro,
                        const char *serial)
{
    size_t n = strlen(path);
    char *buf = malloc(2 * n + 128 + (serial ? strlen(serial) : 0));
    if (!buf)
        return -ENOMEM;
    char *o = buf;
    for (const char *p = path; *p; p++) {
        *o++ = *p;
        if (*p == ',')
            *o++ = ',';
    }
    *o = 0;
    if (format)
        o += sprintf(o, ",format=%s", format);
    if (ro)
        o += sprintf(o, ",readonly=on");
    if (serial)
        sprintf(o, ",serial=%s", serial);
    int r = strv_add(av, "--disk") < 0 || strv_add(av, buf) < 0 ? -ENOMEM : 0;
    free(buf);
    return r;
}

/* A device spec with the ssh forward's host port 0 replaced by port. */
static char *device_with_port(const char *spec, unsigned port)
{
    const char *hit = strncmp(spec, "virtio-net", 10) ? NULL : strstr(spec, SSH_FWD_ANY);
    if (!hit || !port)
        return strdup(spec);
    char *out;
    if (asprintf(&out, "%.*s:%u-:22%s", (int)(hit - spec), spec, port,
                 hit + strlen(SSH_FWD_ANY)) < 0)
        return NULL;
    return out;
}

static bool wants_ssh_port(const struct vm_def *d)
{
    for (unsigned i = 0; i < d->ndevices; i++)
        if (!strncmp(d->devices[i], "virtio-net", 10) && strstr(d->devices[i], SSH_FWD_ANY))
            return true;
    return false;
}

/* petrel run's command line for the definition. */
static int build_argv(const struct vm_def *d, const char *dir, const char *exe,
                      const char *api, const char *con, unsigned port, struct strv *av)
{
    char p[PATH_MAX + 80], mem[32];
    bool bad = strv_add(av, exe) < 0 || strv_add(av, "run") < 0 ||
               strv_add(av, "--arch") < 0 || strv_add(av, d->arch) < 0 ||
               strv_add(av, "--cpus") < 0 || strv_addf(av, "%u", d->vcpus) < 0;
    fmt(mem, sizeof(mem), "%uM", d->memory_mib);
    bad |= strv_add(av, "--memory") < 0 || strv_add(av, mem) < 0;
    if (d->kernel) {
        resolve_in(p, sizeof(p), dir, d->kernel);
        bad |= strv_add(av, "--kernel") < 0 || strv_add(av, p) < 0;
    }
    if (d->initrd) {
        resolve_in(p, sizeof(p), dir, d->initrd);
        bad |= strv_add(av, "--initrd") < 0 || strv_add(av, p) < 0;
    }
    if (d->firmware) {
        if (strcmp(d->firmware, "none"))
            resolve_in(p, sizeof(p), dir, d->firmware);
        else
            fmt(p, sizeof(p), "none");
        bad |= strv_add(av, "--firmware") < 0 || strv_add(av, p) < 0;
    }
    if (d->append)
        bad |= strv_add(av, "--append") < 0 || strv_add(av, d->append) < 0;
    for (unsigned i = 0; i < d->ndisks; i++) {
        resolve_in(p, sizeof(p), dir, d->disks[i].path);
        bad |= add_disk_arg(av, p, d->disks[i].format, d->disks[i].readonly,
                            d->disks[i].serial) < 0;
    }
    fmt(p, sizeof(p), "%s/config.img", dir);
    bad |= add_disk_arg(av, p, "raw", true, VM_DEF_CONFIG_SERIAL) < 0;
    for (unsigned i = 0; i < d->ndevices; i++) {
        char *dev = device_with_port(d->devices[i], port);
        bad |= !dev || strv_add(av, "--device") < 0 || strv_add(av, dev) < 0;
        free(dev);
    }
    fmt(p, sizeof(p), "%s/console.log", dir);
    bad |= strv_add(av, "--api-sock") < 0 || strv_add(av, api) < 0 ||
           strv_add(av, "--boot") < 0 || strv_add(av, "--id") < 0 ||
           strv_add(av, d->name) < 0 || strv_add(av, "--console-sock") < 0 ||
           strv_add(av, con) < 0 || strv_add(av, "--console-log") < 0 ||
           strv_add(av, p) < 0;
    return bad ? -ENOMEM : 0;
}

static int write_run_json(const char *dir, long long pid, const char *started,
                          const char *api, const char *con, const char *sockdir, unsigned port)
{
    json_t *j = json_pack("{s:o, s:s, s:s, s:s, s:o, s:o}",
                          "pid", pid > 0 ? json_integer(pid) : json_null(),
                          "started_utc", started, "api_sock", api, "console_sock", con,
                          "ssh_port", port ? json_integer(port) : json_null(),
                          "socket_dir", sockdir[0] ? json_string(sockdir) : json_null());
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return fail("out of memory");
    char p[PATH_MAX + 16];
    struct err e = { "" };
    fmt(p, sizeof(p), "%s/run.json", dir);
    int r = vm_write_file_atomic(p, text, strlen(text), 0600, &e);
    free(text);
    return r < 0 ? fail("%s", e.msg) : 0;
}

/* Print the last lines of vmm.log (after a failed start). */
static void print_log_tail(const char *dir, unsigned lines)
{
    char p[PATH_MAX + 16];
    fmt(p, sizeof(p), "%s/vmm.log", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    static char buf[16384];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *start = buf + n;
    unsigned seen = 0;
    while (start > buf) {
        if (start[-1] == '\n' && start != buf + n && ++seen > lines)
            break;
        start--;
    }
    fprintf(stderr, "%s%s", start, n && buf[n - 1] != '\n' ? "\n" : "");
}

/* The child: becomes the VMM.  Never returns. */
static void exec_vmm(const char *dir, int lockfd, int logfd, char **argv)
{
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
        _exit(127);
    /* the lock descriptor stays open in the VMM: the lock lives as long as it */
    if (lockfd != 3 && dup2(lockfd, 3) < 0)
        _exit(127);
    fcntl(3, F_SETFD, 0);
    syscall(SYS_close_range, 4u, ~0u, 0u);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (chdir(dir) < 0)
        _exit(127);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "petrel vm: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int start_one(struct vmx *x, const char *name, bool quiet)
{
    char dir[PATH_MAX + 80], p[PATH_MAX + 96];
    struct vm_def d;
    if (load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    int rc = 1, lockfd = -1, logfd = -1;
    struct strv av = { 0 };
    struct vm_rt old;
    memset(&old, 0, sizeof(old));
    int r = lock_take(dir, &lockfd, LOCK_TRIES);
    if (r == -EWOULDBLOCK) {
        fail("%s is already running", name);
        goto out;
    } else if (r < 0) {
        fail("%s/lock: %s", dir, strerror(-r));
        goto out;
    }
    /* a VMM that died left its run.json and sockets: clean up */
    read_run_json(dir, &old);
    if (old.run) {
        if (!quiet && is_socket(old.api))
            fprintf(stderr, "petrel vm: %s: cleaning up after the previous VMM (it crashed)\n",
                    name);
        rt_cleanup(dir, &old);
    }
    char api[PATH_MAX], con[PATH_MAX], sockdir[PATH_MAX];
    if (socket_paths(dir, api, con, sockdir, sizeof(api), true))
        goto out;
    if (is_socket(api))
        unlink(api);
    if (is_socket(con))
        unlink(con);
    struct err e = { "" };
    fmt(p, sizeof(p), "%s/config.img", dir);
    if (cfgdisk_write(p, d.authorized_keys, d.name, &e) < 0) {
        fail("%s", e.msg);
        goto out;
    }
    unsigned port = d.ssh_port;
    if (!port && wants_ssh_port(&d) && !(port = pick_port())) {
        fail("cannot find a free TCP port on 127.0.0.1 for ssh");
        goto out;
    }
    if (!wants_ssh_port(&d) && !d.ssh_port)
        port = 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fail("cannot find the petrel binary (/proc/self/exe): %s", strerror(errno));
        goto out;
    }
    exe[n] = 0;
    if (build_argv(&d, dir, exe, api, con, port, &av) < 0) {
        fail("out of memory");
        goto out;
    }
    char started[32];
    utc_now(started, sizeof(started));
    if (write_run_json(dir, 0, started, api, con, sockdir, port))
        goto out;
    /* vmm.log: the previous one is kept as vmm.log.1 */
    char log1[PATH_MAX + 96];
    fmt(p, sizeof(p), "%s/vmm.log", dir);
    fmt(log1, sizeof(log1), "%s/vmm.log.1", dir);
    rename(p, log1);
    logfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0) {
        fail("%s: %s", p, strerror(errno));
        goto cleanup;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fail("fork: %s", strerror(errno));
        goto cleanup;
    }
    if (pid == 0)
        exec_vmm(dir, lockfd, logfd, av.v);
    close(logfd);
    logfd = -1;
    if (write_run_json(dir, pid, started, api, con, sockdir, port)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto cleanup;
    }
    /* wait for the API to answer, or for the VMM to give up */
    uint64_t deadline = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (WIFEXITED(status))
                fprintf(stderr, "petrel vm: %s: the VMM exited with status %d while starting; "
                        "the end of %s/vmm.log:\n", name, WEXITSTATUS(status), dir);
            else
                fprintf(stderr, "petrel vm: %s: the VMM was killed by signal %d while "
                        "starting; the end of %s/vmm.log:\n", name, WTERMSIG(status), dir);
            print_log_tail(dir, 10);
            goto cleanup;
        }
        json_t *info = NULL;
        if (is_socket(api) && vm_client_get_json(api, "/petrel/info", 1000, &info, &e) == 0) {
            json_decref(info);
            break;
        }
        if (now_ms() > deadline) {
            fail("%s: the VMM's API did not answer within %d s (stopped it; see %s/vmm.log)",
                 name, START_TIMEOUT_MS / 1000, dir);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            goto cleanup;
        }
        sleep_ms(50);
    }
    if (!quiet) {
        printf("started %s (pid %d", name, (int)pid);
        if (port)
            printf(", ssh port %u", port);
        printf("); 'petrel vm console %s' attaches to its console\n", name);
    }
    rc = 0;
    goto out;
cleanup: {
        struct vm_rt now;
        memset(&now, 0, sizeof(now));
        fmt(now.api, sizeof(now.api), "%s", api);
        fmt(now.con, sizeof(now.con), "%s", con);
        fmt(now.sockdir, sizeof(now.sockdir), "%s", sockdir);
        rt_cleanup(dir, &now);
    }
out:
    if (logfd >= 0)
        close(logfd);
    if (lockfd >= 0)
        close(lockfd);
    rt_free(&old);
    strv_free(&av);
    vm_def_free(&d);
    return rc;
}

static int cmd_start(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "all", no_argument, 0, OPT_ALL },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    bool all = false;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == OPT_ALL)
            all = true;
        else if (c == 'h')
            return cmd_help("start"), 0;
        else
            return usage_err("start", "unknown option '%s'", argv[optind - 1]);
    }
    if (all ? optind != argc : optind != argc - 1)
        return usage_err("start", "%s", all ? "--all takes no VM name" : "expected a VM name");
    if (!all) {
        if (check_name("start", argv[optind]) || vmx_init(x))
            return 1;
        return start_one(x, argv[optind], false);
    }
    if (vmx_init(x))
        return 1;
    struct strv names = { 0 };
    if (list_names(x, &names))
        return 1;
    int rc = 0;
    for (int i = 0; i < names.n; i++) {
        char dir[PATH_MAX + 80], file[PATH_MAX + 96];
        struct vm_def d;
        struct err e = { "" };
        vm_dir(x, names.v[i], dir, sizeof(dir));
        fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
        if (vm_def_load(&d, file, names.v[i], &e) < 0) {
            rc = fail("%s", e.msg);
            continue;
        }
        bool autostart = d.autostart;
        vm_def_free(&d);
        if (!autostart)
            continue;
        struct vm_rt rt;
        rt_get(dir, &rt, 0);
        bool active = rt_active(&rt);
        rt_free(&rt);
        if (active)
            continue;
        if (start_one(x, names.v[i], false))
            rc = 1;
    }
    strv_free(&names);
    return rc;
}

/* --- list and info ------------------------------------------------------------ */

/* Parse "NAME" with no options but --help (and those in lo). */
static int one_name(const char *cmd, int argc, char **argv, struct vmx *x)
{
    static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h')
            return cmd_help(cmd), -1;
        usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
        return -2;
    }
    if (optind != argc - 1) {
        usage_err(cmd, "%s", "expected a VM name");
        return -2;
    }
    if (check_name(cmd, argv[optind]) || vmx_init(x))
        return -2;
    return optind;
}

#define ONE_NAME_RC(i) ((i) == -1 ? 0 : 1)

static long long rt_uptime(const struct vm_rt *rt)
{
    json_t *v = rt->info ? json_object_get(rt->info, "uptime_s") : NULL;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return -1;
}

static int cmd_list(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "json", no_argument, 0, OPT_JSON },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    bool as_json = false;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == OPT_JSON)
            as_json = true;
        else if (c == 'h')
            return cmd_help("list"), 0;
        else
            return usage_err("list", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc)
        return usage_err("list", "unexpected argument '%s'", argv[optind]);
    if (vmx_init(x))
        return 1;
    struct strv names = { 0 };
    if (list_names(x, &names))
        return 1;
    json_t *arr = json_array();
    enum { COLS = 7 };
    static const char *const head[COLS] = { "NAME", "STATE", "ARCH", "VCPUS", "MEMORY",
                                            "UPTIME", "SSH" };
    char (*cells)[COLS][80] = calloc((size_t)names.n + 1, sizeof(*cells));
    if (!arr || !cells) {
        json_decref(arr);
        free(cells);
        strv_free(&names);
        return fail("out of memory");
    }
    for (int i = 0; i < COLS; i++)
        fmt(cells[0][i], sizeof(cells[0][i]), "%s", head[i]);
    for (int i = 0; i < names.n; i++) {
        char dir[PATH_MAX + 80], file[PATH_MAX + 96];
        struct vm_def d;
        struct err e = { "" };
        char (*row)[80] = cells[i + 1];
        vm_dir(x, names.v[i], dir, sizeof(dir));
        fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
        bool ok = vm_def_load(&d, file, names.v[i], &e) == 0;
        struct vm_rt rt;
        rt_get(dir, &rt, 2000);
        const char *state = st_names[rt.st];
        long long up = rt.st == ST_RUNNING || rt.st == ST_PAUSED ? rt_uptime(&rt) : -1;
        long long port = rt_active(&rt) ? rt.ssh_port : 0;
        if (!ok) {
            fprintf(stderr, "petrel vm: %s\n", e.msg);
            state = rt_active(&rt) ? state : "invalid";
        }
        fmt(row[0], 80, "%s", names.v[i]);
        fmt(row[1], 80, "%s", state);
        fmt(row[2], 80, "%s", ok ? d.arch : "-");
        if (ok)
            fmt(row[3], 80, "%u", d.vcpus);
        else
            fmt(row[3], 80, "-");
        if (ok)
            fmt_mib(row[4], 80, d.memory_mib);
        else
            fmt(row[4], 80, "-");
        fmt_uptime(row[5], 80, up);
        if (port)
            fmt(row[6], 80, "127.0.0.1:%lld", port);
        else
            fmt(row[6], 80, "-");
        json_t *o = json_pack("{s:s, s:s}", "name", names.v[i], "state", state);
        if (o) {
            json_object_set_new(o, "arch", ok ? json_string(d.arch) : json_null());
            json_object_set_new(o, "vcpus", ok ? json_integer(d.vcpus) : json_null());
            json_object_set_new(o, "memory_mib", ok ? json_integer(d.memory_mib) : json_null());
            json_object_set_new(o, "uptime_s", up >= 0 ? json_integer(up) : json_null());
            json_object_set_new(o, "ssh_port", port ? json_integer(port) : json_null());
            json_object_set_new(o, "pid", rt_active(&rt) && rt.pid ? json_integer(rt.pid)
                                                                   : json_null());
            json_object_set_new(o, "autostart", ok ? json_boolean(d.autostart) : json_null());
            json_object_set_new(o, "error", ok ? json_null() : json_string(e.msg));
            json_array_append_new(arr, o);
        }
        rt_free(&rt);
        if (ok)
            vm_def_free(&d);
    }
    if (as_json) {
        char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "[]");
        free(text);
    } else {
        int w[COLS] = { 0 };
        for (int r = 0; r <= names.n; r++)
            for (int i = 0; i < COLS; i++)
                if ((int)strlen(cells[r][i]) > w[i])
                    w[i] = (int)strlen(cells[r][i]);
        for (int r = 0; r <= names.n; r++) {
            for (int i = 0; i < COLS - 1; i++)
                printf("%-*s  ", w[i], cells[r][i]);
            printf("%s\n", cells[r][COLS - 1]);
        }
    }
    json_decref(arr);
    free(cells);
    strv_free(&names);
    return 0;
}

static int cmd_info(struct vmx *x, int argc, char **argv)
{
    int i = one_name("info", argc, argv, x);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80];
    struct vm_def d;
    if (load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    struct vm_rt rt;
    rt_get(dir, &rt, API_TIMEOUT_MS);
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", name, "dir", dir, "state",
                          st_names[rt.st]);
    if (o) {
        json_object_set_new(o, "definition", vm_def_to_json(&d));
        json_object_set(o, "run", rt.run ? rt.run : json_null());
        json_object_set(o, "vmm", rt.info ? rt.info : json_null());
    }
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    rt_free(&rt);
    vm_def_free(&d);
    if (!text)
        return fail("out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* --- pause, resume, stop, kill ------------------------------------------------ */

static int vm_patch_state(struct vmx *x, const char *cmd, int argc, char **argv,
                          const char *want)
{
    int i = one_name(cmd, argc, argv, x);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80];
    vm_dir(x, name, dir, sizeof(dir));
    if (!file_exists(dir))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    struct vm_rt rt;
    rt_get(dir, &rt, API_TIMEOUT_MS);
    int rc = need_running(name, &rt);
    if (!rc) {
        json_t *body = json_pack("{s:s}", "state", want);
        struct err e = { "" };
        if (vm_client_call(rt.api, "PATCH", "/vm", body, API_TIMEOUT_MS, &e) < 0)
            rc = fail("%s: %s", name, e.msg);
        json_decref(body);
    }
    rt_free(&rt);
    return rc;
}

static int cmd_pause(struct vmx *x, int argc, char **argv)
{
    return vm_patch_state(x, "pause", argc, argv, "Paused");
}

static int cmd_resume(struct vmx *x, int argc, char **argv)
{
    return vm_patch_state(x, "resume", argc, argv, "Resumed");
}

/* Wait until nobody holds dir/lock, then clean up after the VMM (holding the
 * lock meanwhile).  0 when it ended within timeout_ms. */
static int wait_vmm_gone(const char *dir, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int fd;
        if (lock_take(dir, &fd, 1) == 0) {
            struct vm_rt rt;
            memset(&rt, 0, sizeof(rt));
            read_run_json(dir, &rt);
            rt_cleanup(dir, &rt);
            rt_free(&rt);
            close(fd);
            return 0;
        }
        if (now_ms() > deadline)
            return -ETIMEDOUT;
        sleep_ms(100);
    }
}

/* A VMM that is gone left run.json behind: clean up. */
static int cleanup_stale(const char *name, const char *dir, struct vm_rt *rt, const char *cmd)
{
    if (!rt->run)
        return fail("%s is not running", name);
    if (wait_vmm_gone(dir, 2000) < 0)
        return fail("%s: the lock is busy; try again", name);
    fprintf(stderr, "petrel vm %s: %s was not running (cleaned up after its %s VMM)\n", cmd,
            name, rt->st == ST_CRASHED ? "crashed" : "ended");
    return 0;
}

static int cmd_stop(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "timeout", required_argument, 0, OPT_TIMEOUT },
                                        { "force", no_argument, 0, OPT_FORCE },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    unsigned timeout = DEFAULT_STOP_TIMEOUT;
    bool force = false;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case OPT_TIMEOUT:
            errno = 0;
            timeout = (unsigned)strtoul(optarg, &end, 10);
            if (!isdigit((unsigned char)optarg[0]) || errno || *end || timeout > 86400)
                return usage_err("stop", "invalid --timeout '%s' (seconds, 0..86400)", optarg);
            break;
        case OPT_FORCE: case 'f': force = true; break;
        case 'h': cmd_help("stop"); return 0;
        case ':': return usage_err("stop", "option '%s' needs an argument", argv[optind - 1]);
        default: return usage_err("stop", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_err("stop", "%s", "expected a VM name");
    const char *name = argv[optind];
    if (check_name("stop", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80];
    vm_dir(x, name, dir, sizeof(dir));
    if (!file_exists(dir))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    struct vm_rt rt;
    rt_get(dir, &rt, API_TIMEOUT_MS);
    int rc = 0;
    if (!rt_active(&rt)) {
        rc = cleanup_stale(name, dir, &rt, "stop");
        rt_free(&rt);
        return rc;
    }
    struct err e = { "" };
    if (rt.st == ST_PAUSED) {   /* a paused guest cannot see the power key */
        json_t *resume = json_pack("{s:s}", "state", "Resumed");
        vm_client_call(rt.api, "PATCH", "/vm", resume, API_TIMEOUT_MS, &e);
        json_decref(resume);
    }
    json_t *body = json_pack("{s:i, s:b}", "timeout_s", (int)timeout, "force", force);
    if (vm_client_call(rt.api, "PUT", "/petrel/stop", body, API_TIMEOUT_MS, &e) < 0) {
        rc = fail("%s: %s (use 'petrel vm kill %s' to end it)", name, e.msg, name);
    } else if (wait_vmm_gone(dir, (force ? 0 : timeout * 1000u) + 15000u) < 0) {
        rc = fail("%s did not stop within %u s (use 'petrel vm kill %s' to end it)", name,
                  (force ? 0 : timeout) + 15, name);
    }
    json_decref(body);
    rt_free(&rt);
    return rc;
}

/* Whether pid is the VMM `start` launched for this VM: its command line is
 * `... run ... --api-sock API ... --id NAME ...`. */
static bool is_our_vmm(long long pid, const char *api, const char *name)
{
    char p[64], buf[65536];
    fmt(p, sizeof(p), "/proc/%lld/cmdline", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    bool run = false, api_ok = false, id_ok = false;
    const char *prev = NULL;
    for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
        if (a != buf && !run && !strcmp(a, "run"))
            run = true;
        if (prev && !strcmp(prev, "--api-sock") && !strcmp(a, api))
            api_ok = true;
        if (prev && !strcmp(prev, "--id") && !strcmp(a, name))
            id_ok = true;
        prev = a;
    }
    return run && api_ok && id_ok;
}

static int cmd_kill(struct vmx *x, int argc, char **argv)
{
    int i = one_name("kill", argc, argv, x);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80];
    vm_dir(x, name, dir, sizeof(dir));
    if (!file_exists(dir))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    struct vm_rt rt;
    rt_get(dir, &rt, 0);
    int rc = 0;
    if (!rt_active(&rt)) {
        rc = cleanup_stale(name, dir, &rt, "kill");
    } else if (!rt.pid || !is_our_vmm(rt.pid, rt.api, name)) {
        rc = fail("%s: the process holding its lock is not the VMM run.json names (pid %lld); "
                  "not killing anything", name, rt.pid);
    } else if (kill((pid_t)rt.pid, SIGKILL) < 0) {
        rc = fail("%s: kill %lld: %s", name, rt.pid, strerror(errno));
    } else if (wait_vmm_gone(dir, 10000) < 0) {
        rc = fail("%s: pid %lld was killed but the lock is still held", name, rt.pid);
    }
    rt_free(&rt);
    return rc;
}

/* --- set and delete ----------------------------------------------------------- */

/* Take NAME's lock for a change that needs it stopped. */
static int lock_stopped(const char *name, const char *dir, int *fd)
{
    int r = lock_take(dir, fd, LOCK_TRIES);
    if (r == -EWOULDBLOCK)
        return fail("%s is running; stop it first ('petrel vm stop %s')", name, name);
    if (r < 0)
        return fail("%s/lock: %s", dir, strerror(-r));
    return 0;
}

static int cmd_set(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = {
        { "cpus", required_argument, 0, OPT_CPUS },
        { "memory", required_argument, 0, OPT_MEMORY },
        { "append", required_argument, 0, OPT_APPEND },
        { "kernel", required_argument, 0, OPT_KERNEL },
        { "initrd", required_argument, 0, OPT_INITRD },
        { "firmware", required_argument, 0, OPT_FIRMWARE },
        { "ssh-key", required_argument, 0, OPT_SSH_KEY },
        { "ssh-port", required_argument, 0, OPT_SSH_PORT },
        { "autostart", required_argument, 0, OPT_AUTOSTART },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    struct { int opt; const char *arg; } ops[32];
    unsigned nops = 0;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h')
            return cmd_help("set"), 0;
        if (c == ':')
            return usage_err("set", "option '%s' needs an argument", argv[optind - 1]);
        if (c == '?')
            return usage_err("set", "unknown option '%s'", argv[optind - 1]);
        if (nops >= sizeof(ops) / sizeof(ops[0]))
            return usage_err("set", "%s", "too many options");
        ops[nops].opt = c;
        ops[nops++].arg = optarg;
    }
    if (optind != argc - 1)
        return usage_err("set", "%s", "expected a VM name");
    if (!nops)
        return usage_err("set", "%s", "nothing to change");
    const char *name = argv[optind];
    if (check_name("set", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80], file[PATH_MAX + 96];
    struct vm_def d;
    if (load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    int fd = -1, rc = 1;
    if (lock_stopped(name, dir, &fd))
        goto out;
    for (unsigned i = 0; i < nops; i++) {
        const char *a = ops[i].arg;
        char *abs = NULL;
        bool b;
        switch (ops[i].opt) {
        case OPT_CPUS:
            if (parse_cpus("set", a, d.arch, &d.vcpus))
                goto out;
            break;
        case OPT_MEMORY:
            if (parse_memory("set", a, &d.memory_mib))
                goto out;
            break;
        case OPT_APPEND:
            if (vm_def_set_str(&d.append, strcmp(a, "default") ? a : NULL) < 0)
                goto oom;
            break;
        case OPT_KERNEL: case OPT_INITRD: case OPT_FIRMWARE: {
            char **f = ops[i].opt == OPT_KERNEL ? &d.kernel :
                       ops[i].opt == OPT_INITRD ? &d.initrd : &d.firmware;
            const char *what = ops[i].opt == OPT_KERNEL ? "--kernel" :
                               ops[i].opt == OPT_INITRD ? "--initrd" : "--firmware";
            if (!strcmp(a, "default")) {
                free(*f);
                *f = NULL;
            } else if (ops[i].opt == OPT_FIRMWARE && !strcmp(a, "none")) {
                if (vm_def_set_str(f, "none") < 0)
                    goto oom;
            } else {
                if (abs_existing(what, a, &abs))
                    goto out;
                free(*f);
                *f = abs;
            }
            break;
        }
        case OPT_SSH_KEY:
            if (apply_ssh_key(&d, a, NULL))
                goto out;
            break;
        case OPT_SSH_PORT:
            if (parse_port("set", a, &d.ssh_port))
                goto out;
            break;
        case OPT_AUTOSTART:
            if (parse_onoff("set", "--autostart", a, &b))
                goto out;
            d.autostart = b;
            break;
        }
    }
    struct err e = { "" };
    fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
    if (vm_def_save(&d, file, &e) < 0) {
        fail("%s", e.msg);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fail("out of memory");
out:
    if (fd >= 0)
        close(fd);
    vm_def_free(&d);
    return rc;
}

static int cmd_delete(struct vmx *x, int argc, char **argv)
{
    int i = one_name("delete", argc, argv, x);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80], gone[PATH_MAX + 96];
    vm_dir(x, name, dir, sizeof(dir));
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    int fd;
    if (lock_stopped(name, dir, &fd))
        return 1;
    struct vm_rt rt;
    memset(&rt, 0, sizeof(rt));
    read_run_json(dir, &rt);
    rt_cleanup(dir, &rt);
    rt_free(&rt);
    /* out of sight first (list ignores dot names), then removed */
    fmt(gone, sizeof(gone), "%s/.%s.deleting.%d", x->vms, name, (int)getpid());
    if (rename(dir, gone) < 0) {
        close(fd);
        return fail("%s: rename: %s", dir, strerror(errno));
    }
    close(fd);
    if (rm_rf(gone) < 0)
        return fail("%s: could not remove everything: %s", gone, strerror(errno));
    return 0;
}

/* --- console ------------------------------------------------------------------ */

static struct termios console_saved;
static volatile sig_atomic_t console_raw;

static void console_restore(void)
{
    if (console_raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved);
        console_raw = 0;
    }
}

static void console_on_signal(int sig)
{
    console_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int cmd_console(struct vmx *x, int argc, char **argv)
{
    int i = one_name("console", argc, argv, x);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80];
    vm_dir(x, name, dir, sizeof(dir));
    if (!file_exists(dir))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    struct vm_rt rt;
    rt_get(dir, &rt, 0);
    if (!rt_active(&rt)) {
        rt_free(&rt);
        return fail("%s is not running", name);
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    fmt(a.sun_path, sizeof(a.sun_path), "%s", rt.con);
    rt_free(&rt);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail("socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        close(s);
        return fail("%s: cannot connect to its console %s: %s", name, a.sun_path,
                    strerror(err));
    }
    signal(SIGPIPE, SIG_IGN);
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "Connected to %s (escape: Ctrl-])\n", name);
    if (tty && tcgetattr(STDIN_FILENO, &console_saved) == 0) {
        struct termios raw = console_saved;
        cfmakeraw(&raw);
        atexit(console_restore);
        signal(SIGTERM, console_on_signal);
        signal(SIGHUP, console_on_signal);
        signal(SIGINT, console_on_signal);
        signal(SIGQUIT, console_on_signal);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
            console_raw = 1;
    }
    bool in_eof = false, closed = false;
    uint64_t eof_at = 0, last_out = 0;
    char buf[16384];
    int rc = 0;
    for (;;) {
        struct pollfd p[2] = { { s, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
        int timeout = -1;
        if (in_eof) {
            uint64_t t = now_ms();
            if (t - last_out >= CONSOLE_QUIET_MS || t - eof_at >= CONSOLE_EOF_MAX_MS)
                break;
            timeout = (int)(CONSOLE_QUIET_MS - (t - last_out));
        }
        int n = poll(p, in_eof ? 1 : 2, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail("poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents) {
            ssize_t r = read(s, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                closed = true;
                break;
            }
            last_out = now_ms();
            if (write_all(STDOUT_FILENO, buf, (size_t)r) < 0)
                break;
        }
        if (!in_eof && p[1].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                in_eof = true;
                eof_at = last_out = now_ms();
                continue;
            }
            size_t len = (size_t)r;
            char *esc = console_raw ? memchr(buf, CONSOLE_ESCAPE, len) : NULL;
            if (esc)
                len = (size_t)(esc - buf);
            if (len && write_all(s, buf, len) < 0) {
                closed = true;
                break;
            }
            if (esc)
                break;
        }
    }
    console_restore();
    close(s);
    if (closed)
        fprintf(stderr, "\r\npetrel vm: %s's console closed (the VM stopped)\n", name);
    else if (tty)
        fprintf(stderr, "\r\n");
    return rc;
}

/* --- ssh ---------------------------------------------------------------------- */

/* The private key for the VM's public key: key_file without ".pub", else
 * the ~/.ssh/id_* whose .pub is in authorized_keys.  NULL: unknown. */
static char *private_key_for(const struct vm_def *d)
{
    char p[PATH_MAX];
    size_t n = d->ssh_key_file ? strlen(d->ssh_key_file) : 0;
    if (n > 4 && !strcmp(d->ssh_key_file + n - 4, ".pub")) {
        fmt(p, sizeof(p), "%.*s", (int)(n - 4), d->ssh_key_file);
        if (access(p, R_OK) == 0)
            return strdup(p);
    }
    const char *h = home_dir();
    for (unsigned i = 0; h && d->authorized_keys[0] &&
                         i < sizeof(default_keys) / sizeof(default_keys[0]); i++) {
        fmt(p, sizeof(p), "%s/.ssh/%s", h, default_keys[i]);
        FILE *f = fopen(p, "re");
        char line[16384];
        if (!f)
            continue;
        bool match = false;
        if (fgets(line, sizeof(line), f)) {
            /* compare "type base64" (the comment may differ) */
            char *sp = strchr(line, ' ');
            char *end = sp ? strpbrk(sp + 1, " \n") : NULL;
            if (end)
                *end = 0;
            match = sp && strstr(d->authorized_keys, line);
        }
        fclose(f);
        if (match) {
            p[strlen(p) - 4] = 0;
            if (access(p, R_OK) == 0)
                return strdup(p);
        }
    }
    return NULL;
}

/* Wait until the guest's ssh server greets us on 127.0.0.1:port. */
static bool wait_ssh_banner(unsigned port, unsigned timeout_s)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
    do {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        char buf[8] = "";
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, 5000) == 1 && read(fd, buf, 4) == 4 && !memcmp(buf, "SSH-", 4)) {
                close(fd);
                return true;
            }
        }
        close(fd);
        sleep_ms(500);
    } while (now_ms() < deadline);
    return false;
}

static int cmd_ssh(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "wait", required_argument, 0, OPT_WAIT },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    unsigned wait_s = SSH_WAIT_DEFAULT;
    int c;
    opterr = 0;
    optind = 0;
    /* '+': options end at NAME; what follows is the remote command */
    while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
        char *end;
        if (c == 'h')
            return cmd_help("ssh"), 0;
        if (c != OPT_WAIT)
            return usage_err("ssh", c == ':' ? "option '%s' needs an argument"
                                             : "unknown option '%s'", argv[optind - 1]);
        errno = 0;
        wait_s = (unsigned)strtoul(optarg, &end, 10);
        if (!isdigit((unsigned char)optarg[0]) || errno || *end || wait_s > 3600)
            return usage_err("ssh", "invalid --wait '%s' (seconds, 0..3600)", optarg);
    }
    if (optind >= argc)
        return usage_err("ssh", "%s", "expected a VM name");
    const char *name = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--"))
        optind++;
    if (check_name("ssh", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80];
    struct vm_def d;
    if (load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    struct vm_rt rt;
    rt_get(dir, &rt, API_TIMEOUT_MS);
    int rc = need_running(name, &rt);
    long long port = rt.ssh_port;
    rt_free(&rt);
    if (!rc && !port)
        rc = fail("%s has no ssh port (created with --no-net, or a NIC without a forward to "
                  "port 22)", name);
    if (!rc && wait_s && !wait_ssh_banner((unsigned)port, wait_s))
        rc = fail("%s: no ssh server answered on 127.0.0.1:%lld within %u s", name, port,
                  wait_s);
    if (rc) {
        vm_def_free(&d);
        return rc;
    }
    char *key = private_key_for(&d);
    vm_def_free(&d);
    struct strv av = { 0 };
    bool bad = strv_add(&av, "ssh") < 0 || strv_add(&av, "-p") < 0 ||
               strv_addf(&av, "%lld", port) < 0 ||
               strv_add(&av, "-o") < 0 || strv_add(&av, "StrictHostKeyChecking=no") < 0 ||
               strv_add(&av, "-o") < 0 || strv_add(&av, "UserKnownHostsFile=/dev/null") < 0 ||
               strv_add(&av, "-o") < 0 || strv_add(&av, "LogLevel=ERROR") < 0;
    if (key)
        bad |= strv_add(&av, "-i") < 0 || strv_add(&av, key) < 0;
    bad |= strv_add(&av, "root@127.0.0.1") < 0;
    for (int i = optind; i < argc; i++)
        bad |= strv_add(&av, argv[i]) < 0;
    free(key);
    if (bad)
        return fail("out of memory");
    fflush(NULL);
    execvp("ssh", av.v);
    rc = fail("cannot run ssh: %s (install openssh-client)", strerror(errno));
    strv_free(&av);
    return rc;
}

/* --- stats -------------------------------------------------------------------- */

static int cmd_stats(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "watch", no_argument, 0, OPT_WATCH },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    bool watch = false;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":hw", lo, NULL)) != -1) {
        if (c == OPT_WATCH || c == 'w')
            watch = true;
        else if (c == 'h')
            return cmd_help("stats"), 0;
        else
            return usage_err("stats", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return usage_err("stats", "%s", "expected a VM name");
    const char *name = argv[optind];
    if (check_name("stats", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80];
    vm_dir(x, name, dir, sizeof(dir));
    if (!file_exists(dir))
        return fail("no VM named '%s' (in %s)", name, x->vms);
    struct vm_rt rt;
    rt_get(dir, &rt, API_TIMEOUT_MS);
    int rc = need_running(name, &rt);
    char api[PATH_MAX];
    fmt(api, sizeof(api), "%s", rt.api);
    rt_free(&rt);
    if (rc)
        return rc;
    bool clear = watch && isatty(STDOUT_FILENO);
    for (;;) {
        json_t *m;
        struct err e = { "" };
        if (vm_client_get_json(api, "/petrel/metrics", API_TIMEOUT_MS, &m, &e) < 0)
            return fail("%s: %s", name, e.msg);
        char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(m);
        if (!text)
            return fail("out of memory");
        if (clear)
            printf("\033[H\033[2J%s (every 2 s; Ctrl-C to quit)\n", name);
        printf("%s\n", text);
        free(text);
        fflush(stdout);
        if (!watch)
            return 0;
        sleep_ms(2000);
    }
}

/* --- help and dispatch ---------------------------------------------------------- */

struct vm_cmd {
    const char *name;
    int (*fn)(struct vmx *x, int argc, char **argv);
    const char *synopsis;
    const char *summary;
    const char *help;
};

static const struct vm_cmd cmds[] = {
    { "create", cmd_create,
      "create NAME [options]",
      "define a new VM (a directory with vm.json and its root disk)",
      "NAME: 1 to 63 characters from a-z A-Z 0-9 _ . -, starting with a letter or\n"
      "digit. The VM is written to <state>/vms/NAME/ (see 'petrel vm --help').\n"
      "\n"
      "options (the machine, as for 'petrel run'):\n"
      "  --arch riscv64|x86_64   guest architecture (default riscv64)\n"
      "  --cpus N                virtual CPUs: riscv64 1..32, x86_64 1..64 (default 1)\n"
      "  --memory SIZE           guest RAM, 16M..64G, e.g. 512M or 2G; a bare number\n"
      "                          is MiB (default 512M)\n"
      "  --kernel FILE           kernel (default: the default guest's, found at start)\n"
      "  --initrd FILE           initial ramdisk (default: petrel run's)\n"
      "  --append CMDLINE        kernel command line. Default with a root disk on a\n"
      "                          base image, riscv64:\n"
      "                          \"" APPEND_ROOT_RISCV64 "\",\n"
      "                          x86_64: \"" APPEND_ROOT_X86_64 "\";\n"
      "                          otherwise petrel run's\n"
      "  --firmware FILE|none    riscv64 M-mode firmware (default: the default guest's)\n"
      "  --disk PATH[,format=raw|qcow2][,readonly=on][,serial=ID]\n"
      "                          an extra disk (repeatable; vdb, vdc, ... after the\n"
      "                          root disk). The VM refers to PATH; delete leaves it\n"
      "  --device SPEC           an extra virtio device, as for 'petrel run --device'\n"
      "                          (repeatable). A virtio-rng, virtio-net or\n"
      "                          virtio-keyboard given here replaces the default one\n"
      "\n"
      "options (the root disk, disk0.qcow2 in the VM's directory, the guest's vda):\n"
      "  --base IMAGE|none       a linked clone: a qcow2 overlay on IMAGE (raw or\n"
      "                          qcow2; stored by absolute path, never written).\n"
      "                          Default: the default guest's root.img\n"
      "                          ($PETREL_GUEST_DIR/<arch>/root.img, else\n"
      "                          <dir of petrel>/guest/<arch>/root.img).\n"
      "                          none: a blank thin qcow2 disk\n"
      "  --disk-size SIZE        the root disk's virtual size, e.g. 8G (default 8G; a\n"
      "                          bare number is bytes). With a base: the larger of SIZE\n"
      "                          and the base's size. 0 with --base none: no root disk\n"
      "\n"
      "options (access):\n"
      "  --ssh-key FILE|none     a public key the guest's root accepts (default: the\n"
      "                          first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub,\n"
      "                          id_rsa.pub; a warning when there is none)\n"
      "  --ssh-port N            the host port forwarded to the guest's port 22\n"
      "                          (default 0: a free port picked at every start)\n"
      "  --no-net                no network card (by default: virtio-net on user-mode\n"
      "                          NAT with the ssh port forward)\n"
      "  --autostart             start it with 'petrel vm start --all'\n"
      "\n"
      "Default devices: virtio-rng, virtio-net,hostfwd=tcp:127.0.0.1:0-:22 (the 0 is\n"
      "the ssh port picked at start) and, when this petrel has it, virtio-keyboard\n"
      "(the power button 'petrel vm stop' presses).\n" },
    { "list", cmd_list,
      "list [--json]",
      "list the VMs with their state",
      "Columns: NAME STATE ARCH VCPUS MEMORY UPTIME SSH.  STATE is one of\n"
      "  running, paused   the VMM runs (asked from its API)\n"
      "  starting          the VMM holds the lock but its API does not answer yet\n"
      "  stopped           not running\n"
      "  crashed           the VMM died without cleaning up (SIGKILL, a crash);\n"
      "                    'petrel vm start NAME' starts it again\n"
      "  invalid           vm.json does not load: the reason is printed on stderr;\n"
      "                    the other VMs are listed as usual\n"
      "SSH is the host address 'petrel vm ssh' connects to.\n"
      "\n"
      "  --json   a JSON array of {name, state, arch, vcpus, memory_mib, uptime_s,\n"
      "           ssh_port, pid, autostart, error}\n" },
    { "info", cmd_info,
      "info NAME",
      "print a VM's definition and runtime state as JSON",
      "Prints {\"name\", \"dir\", \"state\", \"definition\" (vm.json), \"run\" (run.json:\n"
      "pid, started_utc, api_sock, console_sock, ssh_port; null when never started\n"
      "or cleanly stopped), \"vmm\" (the VMM's GET /petrel/info, null when it does not\n"
      "run)}.\n" },
    { "start", cmd_start,
      "start NAME | start --all",
      "start a VM in the background (--all: every autostart VM)",
      "Starts the VMM detached from the terminal: it keeps running after the shell\n"
      "exits. It builds the config disk (config.img: the ssh keys and the host name),\n"
      "picks the ssh port, writes run.json and runs 'petrel run' with the\n"
      "definition's settings, its API on api.sock, its serial console on\n"
      "console.sock (and console.log, bounded) and its own messages in vmm.log.\n"
      "Returns once the VMM's API answers; if the VMM exits first, prints the end of\n"
      "vmm.log and exits 1. A VM runs at most once (vms/NAME/lock); a crashed one is\n"
      "cleaned up and started.\n"
      "\n"
      "  --all   start every VM created with --autostart (or set --autostart on) that\n"
      "          is not running; exit status 1 if any failed\n" },
    { "console", cmd_console,
      "console NAME",
      "attach to a running VM's serial console (detach: Ctrl-])",
      "Attaches this terminal to the VM's serial console (raw mode; restored on\n"
      "exit). Ctrl-] detaches; the VM keeps running. Output produced while nobody was\n"
      "attached is replayed first (the VMM keeps the last 256 KiB), and everything is\n"
      "also in vms/NAME/console.log. Several clients may attach at once.\n"
      "\n"
      "When stdin is not a terminal (scripts), bytes pass through unchanged (Ctrl-]\n"
      "too); at the end of stdin, the command waits until the console has been quiet\n"
      "for 1 s (at most 60 s), then detaches:\n"
      "  printf 'uname -a\\n' | petrel vm console web1\n" },
    { "pause", cmd_pause,
      "pause NAME",
      "pause a running VM (its CPUs and clock stop)",
      "Every virtual CPU stops at an instruction boundary and guest time freezes\n"
      "until 'petrel vm resume NAME'.\n" },
    { "resume", cmd_resume,
      "resume NAME",
      "resume a paused VM",
      "The guest continues with no jump in its clock.\n" },
    { "stop", cmd_stop,
      "stop NAME [--timeout S] [--force]",
      "shut a VM down (the guest's power button, then a hard stop)",
      "Asks the guest to shut down (the power key; the default guest powers off\n"
      "cleanly) and waits for the VMM to exit. A guest that has not powered off\n"
      "after the timeout is stopped hard by the VMM.\n"
      "\n"
      "  --timeout S   seconds the guest gets (default 30)\n"
      "  -f, --force   stop at once, without asking the guest\n" },
    { "kill", cmd_kill,
      "kill NAME",
      "end a VM's VMM at once (SIGKILL)",
      "Sends SIGKILL to the VMM recorded in run.json, after checking that this\n"
      "process is the VMM of NAME (its command line), then removes run.json and the\n"
      "sockets. The guest gets no chance to flush its disks: prefer 'stop'.\n" },
    { "set", cmd_set,
      "set NAME [options]",
      "change a stopped VM's definition",
      "The VM must not be running. Options:\n"
      "  --cpus N                 virtual CPUs\n"
      "  --memory SIZE            guest RAM (e.g. 1G)\n"
      "  --append CMDLINE|default kernel command line ('default': petrel run's)\n"
      "  --kernel FILE|default    kernel\n"
      "  --initrd FILE|default    initial ramdisk\n"
      "  --firmware FILE|none|default\n"
      "  --ssh-key FILE|none      replace the accepted public key(s)\n"
      "  --ssh-port N             host port for ssh (0: picked at every start)\n"
      "  --autostart on|off       started by 'petrel vm start --all'\n" },
    { "delete", cmd_delete,
      "delete NAME",
      "delete a stopped VM and everything in its directory",
      "Removes vms/NAME/: the definition, disk0.qcow2 and any other disk stored\n"
      "there, the logs. Disks added with --disk PATH outside the directory and base\n"
      "images are left alone. Refused while the VM runs.\n" },
    { "ssh", cmd_ssh,
      "ssh [--wait S] NAME [-- COMMAND...]",
      "log in to a running VM as root over its forwarded port",
      "Runs ssh -p PORT root@127.0.0.1 with host key checking off (a VM's host key\n"
      "is new at every first boot) and -i the private key matching the VM's --ssh-key\n"
      "when it is found. COMMAND, if given, runs instead of a shell; the exit status\n"
      "is ssh's.\n"
      "\n"
      "  --wait S   wait up to S seconds for the guest's ssh server to answer (it\n"
      "             starts late in the boot; default 120; 0: don't wait)\n"
      "\n"
      "  petrel vm ssh web1 -- uname -m\n" },
    { "stats", cmd_stats,
      "stats NAME [--watch]",
      "print a running VM's metrics (JSON)",
      "Prints the VMM's GET /petrel/metrics: uptime, per-vCPU time and exits or\n"
      "instructions, guest memory and VMM RSS, per-disk and per-NIC counters.\n"
      "\n"
      "  -w, --watch   print them again every 2 s\n" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

void cli_vm_usage(void)
{
    printf("usage: petrel vm <command> [options]\n"
           "\n"
           "VMs kept as files and run in the background.\n"
           "\n"
           "commands:\n");
    for (unsigned i = 0; i < NCMDS; i++)
        printf("  %s\n        %s\n", cmds[i].synopsis, cmds[i].summary);
    printf("\n"
           "'petrel vm COMMAND --help' describes each.\n"
           "\n"
           "State directory: $PETREL_HOME, else /var/lib/petrel for root, else\n"
           "~/.local/share/petrel (created 0700). Each VM is vms/NAME/ there:\n"
           "  vm.json           the definition (JSON, versioned; edit with care: every\n"
           "                    field is checked when it is loaded)\n"
           "  disk0.qcow2       the root disk\n"
           "  config.img        the config disk (ssh keys, host name), rebuilt at start\n"
           "  lock              held by the running VMM: a VM runs at most once\n"
           "  run.json          pid, sockets, ssh port of the running (or crashed) VMM\n"
           "  api.sock, console.sock   while it runs (elsewhere if the path is too long\n"
           "                    for a unix socket: see run.json)\n"
           "  console.log, console.log.1   the serial console's output (bounded)\n"
           "  vmm.log, vmm.log.1           the VMM's own messages\n");
}

static void cmd_help(const char *name)
{
    for (unsigned i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, name))
            continue;
        printf("usage: petrel vm %s\n\n%c%s.\n\n%s", cmds[i].synopsis,
               toupper((unsigned char)cmds[i].summary[0]), cmds[i].summary + 1, cmds[i].help);
        return;
    }
}

int cli_vm(int argc, char **argv)
{
    if (argc < 2) {
        cli_vm_usage();
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            for (unsigned i = 0; i < NCMDS; i++)
                if (!strcmp(cmds[i].name, argv[2]))
                    return cmd_help(argv[2]), 0;
        }
        cli_vm_usage();
        return 0;
    }
    for (unsigned i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, cmd))
            continue;
        struct vmx x;
        memset(&x, 0, sizeof(x));
        vm_client_global_init();
        return cmds[i].fn(&x, argc - 1, argv + 1);
    }
    fprintf(stderr, "petrel vm: unknown command '%s' (try 'petrel vm --help')\n", cmd);
    return 1;
}
