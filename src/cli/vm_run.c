/* `petrel vm`: a VM's runtime state and starting it (pause, resume, stop
 * and kill: vm_ctl.c).  The contract (run.json, sockets,
 * states): docs/control-plane.md, "VMs as files".
 *
 * Design
 * - Runtime state: lock held -> the API's /petrel/info says running or
 *   paused ("starting" until it answers); lock free and run.json present ->
 *   "crashed" when the VMM's API socket is still there (it died without
 *   cleaning up), else "stopped" (the guest powered off; the VMM removed its
 *   sockets); otherwise "stopped".  start, stop and kill clean up after a
 *   VMM that is gone.
 * - The VMM is `petrel run` (this binary, /proc/self/exe) with its
 *   configuration from the definition plus --api-sock, --boot, --id,
 *   --console-sock and --console-log; in its own session, stdin from
 *   /dev/null, stdout/stderr to vms/NAME/vmm.log.  It inherits the lock's
 *   descriptor, so the lock lives exactly as long as it.
 * - Started from a snapshot (revert; a clone's first start, named by
 *   vm.json's restore_from) it gets --restore DIR instead of the machine's
 *   flags and --boot, plus the devices (this start's ssh port) and, for a
 *   clone, every disk (its own); run.json's snapshot_parent then names the
 *   snapshot a diff snapshot of this run is relative to.
 *
 * Threads: none.
 *
 * What can fail: see vm_priv.h; a VMM that dies while starting also gets
 * the end of its log printed. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cfgdisk.h"
#include "cli/vm_client.h"
#include "cli/vm_priv.h"

#define START_TIMEOUT_MS 60000
#define SSH_FWD_ANY ":0-:22"            /* in a hostfwd: the port picked at start */

#define SOCK_PATH_MAX 107               /* sizeof(sun_path) - 1 */

/* --- sockets -------------------------------------------------------------- */

static bool is_socket(const char *path)
{
    struct stat st;
    return path && *path && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

void vmx_resolve_in(char *buf, size_t len, const char *dir, const char *path)
{
    if (path[0] == '/')
        vmx_fmt(buf, len, "%s", path);
    else
        vmx_fmt(buf, len, "%s/%s", dir, path);
}

/* Where NAME's sockets live: in its directory when the paths fit in a unix
 * socket address, else in a short private directory
 * ($XDG_RUNTIME_DIR/petrel/HASH or /tmp/petrel-UID/HASH, 0700), HASH naming
 * the VM's directory.  sockdir: "" or that directory. */
static int socket_paths(const char *dir, char *api, char *con, char *sockdir, size_t len,
                        bool create)
{
    sockdir[0] = 0;
    if (strlen(dir) + strlen("/console.sock") <= SOCK_PATH_MAX) {
        vmx_fmt(api, len, "%s/api.sock", dir);
        vmx_fmt(con, len, "%s/console.sock", dir);
        return 0;
    }
    uint64_t h = 0xcbf29ce484222325ull;           /* FNV-1a */
    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    char base[PATH_MAX];
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0] == '/' && strlen(rt) < 60)
        vmx_fmt(base, sizeof(base), "%s/petrel", rt);
    else
        vmx_fmt(base, sizeof(base), "/tmp/petrel-%u", (unsigned)geteuid());
    vmx_fmt(sockdir, len, "%s/%016llx", base, (unsigned long long)h);
    vmx_fmt(api, len, "%s/api.sock", sockdir);
    vmx_fmt(con, len, "%s/console.sock", sockdir);
    if (strlen(con) > SOCK_PATH_MAX)
        return vmx_fail("%s: the socket path is too long for a unix socket", con);
    if (!create)
        return 0;
    if (mkdir(base, 0700) < 0 && errno != EEXIST)
        return vmx_fail("%s: %s", base, strerror(errno));
    struct stat st;
    if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return vmx_fail("%s: not a directory owned by uid %u; cannot put sockets there", base,
                        (unsigned)geteuid());
    if ((st.st_mode & 077) && chmod(base, 0700) < 0)
        return vmx_fail("%s: chmod: %s", base, strerror(errno));
    if (mkdir(sockdir, 0700) < 0 && errno != EEXIST)
        return vmx_fail("%s: %s", sockdir, strerror(errno));
    return 0;
}

void vmx_vnc_path(const char *con, char *buf, size_t len)
{
    const char *slash = strrchr(con, '/');
    vmx_fmt(buf, len, "%.*s/vnc.sock", slash ? (int)(slash - con) : 1, slash ? con : ".");
}

/* --- runtime state -------------------------------------------------------- */

const char *const vmx_st_names[] = { "stopped", "starting", "running", "paused", "crashed" };

void vmx_rt_free(struct vm_rt *rt)
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

void vmx_read_run_json(const char *dir, struct vm_rt *rt)
{
    char p[PATH_MAX + 16];
    vmx_fmt(p, sizeof(p), "%s/run.json", dir);
    rt->run = json_load_file(p, 0, NULL);
    if (rt->run && !json_is_object(rt->run)) {
        json_decref(rt->run);
        rt->run = NULL;
    }
    if (!rt->run) {
        if (vmx_file_exists(p))     /* unreadable leftovers count as a crash */
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
        vmx_fmt(rt->api, sizeof(rt->api), "%s", a);
    if (*c && strlen(c) <= SOCK_PATH_MAX)
        vmx_fmt(rt->con, sizeof(rt->con), "%s", c);
    if (*s)
        vmx_fmt(rt->sockdir, sizeof(rt->sockdir), "%s", s);
}

/* The VM's runtime state (never fails: unknowns read as stopped/crashed). */
void vmx_rt_get(const char *dir, struct vm_rt *rt, long api_timeout_ms)
{
    memset(rt, 0, sizeof(*rt));
    vmx_read_run_json(dir, rt);
    if (!rt->api[0]) {
        char sd[PATH_MAX];
        if (strlen(dir) + strlen("/console.sock") <= SOCK_PATH_MAX) {
            vmx_fmt(rt->api, sizeof(rt->api), "%s/api.sock", dir);
            vmx_fmt(rt->con, sizeof(rt->con), "%s/console.sock", dir);
        } else if (socket_paths(dir, rt->api, rt->con, sd, sizeof(sd), false) != 0) {
            rt->api[0] = rt->con[0] = 0;
        }
    }
    rt->held = vmx_lock_held(dir) == 1;
    if (rt->held) {
        rt->st = ST_STARTING;
        struct err e = { "" };
        int r = -EAGAIN;
        if (rt->api[0] && api_timeout_ms)
            r = vm_client_get_json(rt->api, "/petrel/info", api_timeout_ms, &rt->info, &e);
        if (r == 0) {
            const char *s = json_str_field(rt->info, "state");
            if (!strcmp(s, "Running"))
                rt->st = ST_RUNNING;
            else if (!strcmp(s, "Paused"))
                rt->st = ST_PAUSED;
        } else if (r == -ELIBACC) {
            exit(vmx_fail("%s", e.msg));        /* no state can be told without it */
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
void vmx_rt_cleanup(const char *dir, const struct vm_rt *rt)
{
    char p[PATH_MAX + 16];
    if (is_socket(rt->api))
        unlink(rt->api);
    if (is_socket(rt->con))
        unlink(rt->con);
    char vnc[PATH_MAX];
    if (rt->con[0]) {
        vmx_vnc_path(rt->con, vnc, sizeof(vnc));
        if (is_socket(vnc))
            unlink(vnc);
    }
    if (rt->sockdir[0])
        rmdir(rt->sockdir);
    vmx_fmt(p, sizeof(p), "%s/run.json", dir);
    unlink(p);
    if (rt->pid > 0)
        cg_sweep((pid_t)rt->pid);   /* the cgroup a killed VMM left */
}

bool vmx_rt_active(const struct vm_rt *rt)
{
    return rt->held;
}

int vmx_need_running(const char *name, const struct vm_rt *rt)
{
    if (rt->st == ST_RUNNING || rt->st == ST_PAUSED)
        return 0;
    if (rt->st == ST_STARTING)
        return vmx_fail("%s is starting (its API does not answer yet); try again", name);
    if (rt->st == ST_CRASHED)
        return vmx_fail("%s is not running (its VMM crashed; 'petrel vm start %s' starts it again)",
                        name, name);
    return vmx_fail("%s is not running", name);
}

/* --- start ---------------------------------------------------------------- */

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
    int r = vmx_strv_add(av, "--disk") < 0 || vmx_strv_add(av, buf) < 0 ? -ENOMEM : 0;
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

/* The machine part of petrel run's command line (not with --restore: a
 * restored VM is the machine its snapshot describes). */
static bool machine_args(const struct vm_def *d, const char *dir, struct strv *av)
{
    char p[PATH_MAX + 80], mem[32];
    bool bad = vmx_strv_add(av, "--arch") < 0 || vmx_strv_add(av, d->arch) < 0 ||
               vmx_strv_add(av, "--cpus") < 0 || vmx_strv_addf(av, "%u", d->vcpus) < 0;
    vmx_fmt(mem, sizeof(mem), "%uM", d->memory_mib);
    bad |= vmx_strv_add(av, "--memory") < 0 || vmx_strv_add(av, mem) < 0;
    if (d->kernel) {
        vmx_resolve_in(p, sizeof(p), dir, d->kernel);
        bad |= vmx_strv_add(av, "--kernel") < 0 || vmx_strv_add(av, p) < 0;
    }
    if (d->initrd) {
        vmx_resolve_in(p, sizeof(p), dir, d->initrd);
        bad |= vmx_strv_add(av, "--initrd") < 0 || vmx_strv_add(av, p) < 0;
    }
    if (d->firmware) {
        if (strcmp(d->firmware, "none"))
            vmx_resolve_in(p, sizeof(p), dir, d->firmware);
        else
            vmx_fmt(p, sizeof(p), "none");
        bad |= vmx_strv_add(av, "--firmware") < 0 || vmx_strv_add(av, p) < 0;
    }
    if (d->append)
        bad |= vmx_strv_add(av, "--append") < 0 || vmx_strv_add(av, d->append) < 0;
    return bad;
}

/* The resource limits (vm.json "limits") as petrel run's flags. */
static bool limit_args(const struct cg_limits *l, struct strv *av)
{
    char buf[1024];
    bool bad = false;
    if (l->cpu_quota_pct)
        bad |= vmx_strv_add(av, "--cpu-quota") < 0 || vmx_strv_addf(av, "%u%%", l->cpu_quota_pct) < 0;
    if (l->pin.n) {
        cg_fmt_cpus(&l->pin, buf, sizeof(buf));
        bad |= vmx_strv_add(av, "--cpu-pin") < 0 || vmx_strv_add(av, buf) < 0;
    }
    if (l->memory_max)
        bad |= vmx_strv_add(av, "--memory-max") < 0 ||
               vmx_strv_addf(av, "%lluM", (unsigned long long)(l->memory_max >> 20)) < 0;
    if (l->pids_max)
        bad |= vmx_strv_add(av, "--pids-max") < 0 || vmx_strv_addf(av, "%u", l->pids_max) < 0;
    for (unsigned i = 0; i < l->nio; i++) {
        cg_fmt_io(&l->io[i], buf, sizeof(buf));
        bad |= vmx_strv_add(av, "--io-max") < 0 || vmx_strv_add(av, buf) < 0;
    }
    return bad;
}

/* petrel run's command line for the definition.  restore: --restore DIR
 * instead of the machine and --boot; its disks then come from the snapshot
 * (reverted to it) unless own_disks (a clone's first start: every disk
 * given, used as it is).  Devices are always given (the ssh port is this
 * start's). */
static int build_argv(const struct vm_def *d, const char *dir, const char *exe,
                      const char *api, const char *con, unsigned port,
                      const struct vmx_start_opts *o, struct strv *av)
{
    char p[PATH_MAX + 80];
    bool bad = vmx_strv_add(av, exe) < 0 || vmx_strv_add(av, "run") < 0;
    if (o->restore) {
        bad |= vmx_strv_add(av, "--restore") < 0 || vmx_strv_add(av, o->restore) < 0;
        if (o->paused)
            bad |= vmx_strv_add(av, "--paused") < 0;
    } else {
        bad |= machine_args(d, dir, av);
    }
    if (!o->restore || o->own_disks) {
        for (unsigned i = 0; i < d->ndisks; i++) {
            vmx_resolve_in(p, sizeof(p), dir, d->disks[i].path);
            bad |= add_disk_arg(av, p, d->disks[i].format, d->disks[i].readonly,
                                d->disks[i].serial) < 0;
        }
        vmx_fmt(p, sizeof(p), "%s/config.img", dir);
        bad |= add_disk_arg(av, p, "raw", true, VM_DEF_CONFIG_SERIAL) < 0;
    }
    bad |= limit_args(&d->limits, av);
    for (unsigned i = 0; i < d->ndevices; i++) {
        char *dev = device_with_port(d->devices[i], port);
        bad |= !dev || vmx_strv_add(av, "--device") < 0 || vmx_strv_add(av, dev) < 0;
        free(dev);
    }
    if (d->display) {
        /* a screen, keyboard and tablet (petrel run --vnc adds them unless
         * a restored snapshot brings its own), VNC on a private socket */
        char vnc[PATH_MAX];
        vmx_vnc_path(con, vnc, sizeof(vnc));
        bad |= vmx_strv_add(av, "--vnc") < 0 || vmx_strv_addf(av, "unix:%s", vnc) < 0;
    }
    vmx_fmt(p, sizeof(p), "%s/console.log", dir);
    bad |= vmx_strv_add(av, "--api-sock") < 0 || vmx_strv_add(av, api) < 0 ||
           (!o->restore && vmx_strv_add(av, "--boot") < 0) || vmx_strv_add(av, "--id") < 0 ||
           vmx_strv_add(av, d->name) < 0 || vmx_strv_add(av, "--console-sock") < 0 ||
           vmx_strv_add(av, con) < 0 || vmx_strv_add(av, "--console-log") < 0 ||
           vmx_strv_add(av, p) < 0;
    return bad ? -ENOMEM : 0;
}

int vmx_write_run_json(const char *dir, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (!text)
        return vmx_fail("out of memory");
    char p[PATH_MAX + 16];
    struct err e = { "" };
    vmx_fmt(p, sizeof(p), "%s/run.json", dir);
    int r = vm_write_file_atomic(p, text, strlen(text), 0600, &e);
    free(text);
    return r < 0 ? vmx_fail("%s", e.msg) : 0;
}

static int write_run_json(const char *dir, long long pid, const char *started,
                          const char *api, const char *con, const char *sockdir, unsigned port,
                          const char *snap_parent)
{
    json_t *j = json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o}",
                          "pid", pid > 0 ? json_integer(pid) : json_null(),
                          "started_utc", started, "api_sock", api, "console_sock", con,
                          "ssh_port", port ? json_integer(port) : json_null(),
                          "socket_dir", sockdir[0] ? json_string(sockdir) : json_null(),
                          "snapshot_parent", snap_parent ? json_string(snap_parent)
                                                         : json_null());
    int r = vmx_write_run_json(dir, j);
    json_decref(j);
    return r;
}

/* Print the last lines of vmm.log (after a failed start). */
static void print_log_tail(const char *dir, unsigned lines)
{
    char p[PATH_MAX + 16];
    vmx_fmt(p, sizeof(p), "%s/vmm.log", dir);
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
    vmx_eprintf("%s%s", start, n && buf[n - 1] != '\n' ? "\n" : "");
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
    vmx_eprintf("petrel vm: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int vmx_start_vm(struct vmx *x, const char *name, const struct vmx_start_opts *opts)
{
    char dir[PATH_MAX + 80], p[PATH_MAX + 96], restore[PATH_MAX + 96];
    struct vm_def d;
    struct vmx_start_opts o = *opts;
    bool quiet = o.quiet;
    if (vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    /* a clone's first start: from the snapshot it was cloned from, on its
     * own disks and devices */
    bool clone_first = !o.restore && d.restore_from;
    if (clone_first) {
        vmx_resolve_in(restore, sizeof(restore), dir, d.restore_from);
        if (!vmx_file_exists(restore)) {
            vm_def_free(&d);
            return vmx_fail("%s: %s is missing: it holds the snapshot this clone starts from "
                            "(remove \"restore_from\" from its vm.json to boot its disks "
                            "cold)", name, restore);
        }
        o.restore = restore;
        o.own_disks = true;
    }
    int rc = 1, lockfd = -1, logfd = -1;
    struct strv av = { 0 };
    struct vm_rt old;
    memset(&old, 0, sizeof(old));
    struct err e = { "" };
    if (vm_client_init(&e) < 0) {     /* before a VMM we could not talk to is started */
        vmx_fail("%s", e.msg);
        goto out;
    }
    int r = vmx_lock_take(dir, &lockfd, LOCK_TRIES);
    if (r == -EWOULDBLOCK) {
        vmx_fail("%s is already running", name);
        goto out;
    } else if (r < 0) {
        vmx_fail("%s/lock: %s", dir, strerror(-r));
        goto out;
    }
    /* a VMM that died left its run.json and sockets: clean up */
    vmx_read_run_json(dir, &old);
    if (old.run) {
        if (!quiet && is_socket(old.api))
            vmx_eprintf("petrel vm: %s: cleaning up after the previous VMM (it crashed)\n",
                    name);
        vmx_rt_cleanup(dir, &old);
    }
    char api[PATH_MAX], con[PATH_MAX], sockdir[PATH_MAX];
    if (socket_paths(dir, api, con, sockdir, sizeof(api), true))
        goto out;
    if (is_socket(api))
        unlink(api);
    if (is_socket(con))
        unlink(con);
    vmx_fmt(p, sizeof(p), "%s/config.img", dir);
    if (cfgdisk_write(p, d.authorized_keys, d.name, &e) < 0) {
        vmx_fail("%s", e.msg);
        goto out;
    }
    unsigned port = d.ssh_port;
    if (!port && wants_ssh_port(&d) && !(port = pick_port())) {
        vmx_fail("cannot find a free TCP port on 127.0.0.1 for ssh");
        goto out;
    }
    if (!wants_ssh_port(&d) && !d.ssh_port)
        port = 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        vmx_fail("cannot find the petrel binary (/proc/self/exe): %s", strerror(errno));
        goto out;
    }
    exe[n] = 0;
    if (build_argv(&d, dir, exe, api, con, port, &o, &av) < 0) {
        vmx_fail("out of memory");
        goto out;
    }
    char started[32];
    vmx_utc_now(started, sizeof(started));
    if (write_run_json(dir, 0, started, api, con, sockdir, port, o.snap_parent))
        goto out;
    /* vmm.log: the previous one is kept as vmm.log.1 */
    char log1[PATH_MAX + 96];
    vmx_fmt(p, sizeof(p), "%s/vmm.log", dir);
    vmx_fmt(log1, sizeof(log1), "%s/vmm.log.1", dir);
    rename(p, log1);
    logfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0) {
        vmx_fail("%s: %s", p, strerror(errno));
        goto cleanup;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        vmx_fail("fork: %s", strerror(errno));
        goto cleanup;
    }
    if (pid == 0)
        exec_vmm(dir, lockfd, logfd, av.v);
    close(logfd);
    logfd = -1;
    if (write_run_json(dir, pid, started, api, con, sockdir, port, o.snap_parent)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto cleanup;
    }
    /* wait for the API to answer, or for the VMM to give up */
    uint64_t deadline = vmx_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (WIFEXITED(status))
                vmx_eprintf("petrel vm: %s: the VMM exited with status %d while starting; "
                        "the end of %s/vmm.log:\n", name, WEXITSTATUS(status), dir);
            else
                vmx_eprintf("petrel vm: %s: the VMM was killed by signal %d while "
                        "starting; the end of %s/vmm.log:\n", name, WTERMSIG(status), dir);
            print_log_tail(dir, 10);
            goto cleanup;
        }
        json_t *info = NULL;
        if (is_socket(api) && vm_client_get_json(api, "/petrel/info", 1000, &info, &e) == 0) {
            json_decref(info);
            break;
        }
        if (vmx_now_ms() > deadline) {
            vmx_fail("%s: the VMM's API did not answer within %d s (stopped it; see %s/vmm.log)",
                     name, START_TIMEOUT_MS / 1000, dir);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            goto cleanup;
        }
        vmx_sleep_ms(50);
    }
    if (d.restore_from)         /* started (or reverted) from a snapshot: done with it */
        vmx_clone_started(name, dir, &d);
    if (!quiet) {
        if (o.restore)
            vmx_printf("%s %s from %s%s (pid %d", o.paused ? "restored" : "started", name,
                   clone_first ? "its snapshot " : "", o.restore, (int)pid);
        else
            vmx_printf("started %s (pid %d", name, (int)pid);
        if (port)
            vmx_printf(", ssh port %u", port);
        vmx_printf(")%s; 'petrel vm console %s' attaches to its console\n",
               o.paused ? ", paused" : "", name);
    }
    rc = 0;
    goto out;
cleanup: {
        struct vm_rt now;
        memset(&now, 0, sizeof(now));
        vmx_fmt(now.api, sizeof(now.api), "%s", api);
        vmx_fmt(now.con, sizeof(now.con), "%s", con);
        vmx_fmt(now.sockdir, sizeof(now.sockdir), "%s", sockdir);
        vmx_rt_cleanup(dir, &now);
    }
out:
    if (logfd >= 0)
        close(logfd);
    if (lockfd >= 0)
        close(lockfd);
    vmx_rt_free(&old);
    vmx_strv_free(&av);
    vm_def_free(&d);
    return rc;
}

int vmx_cmd_start(struct vmx *x, int argc, char **argv)
{
    bool all;
    int arg = vmx_flag_opt("start", argc, argv, "all", 0, &all);
    if (arg < 0)
        return ONE_NAME_RC(arg);
    if (all ? arg != argc : arg != argc - 1)
        return vmx_usage_err("start", "%s", all ? "--all takes no VM name" : "expected a VM name");
    if (!all) {
        if (vmx_check_name("start", argv[arg]) || vmx_init(x))
            return 1;
        return vmx_start_vm(x, argv[arg], &(struct vmx_start_opts){ 0 });
    }
    if (vmx_init(x))
        return 1;
    struct strv names = { 0 };
    if (vmx_list_names(x, &names))
        return 1;
    int rc = 0;
    for (int i = 0; i < names.n; i++) {
        char dir[PATH_MAX + 80], file[PATH_MAX + 96];
        struct vm_def d;
        struct err e = { "" };
        vmx_vm_dir(x, names.v[i], dir, sizeof(dir));
        vmx_fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
        if (vm_def_load(&d, file, names.v[i], &e) < 0) {
            rc = vmx_fail("%s", e.msg);
            continue;
        }
        bool autostart = d.autostart;
        vm_def_free(&d);
        if (!autostart)
            continue;
        struct vm_rt rt;
        vmx_rt_get(dir, &rt, 0);
        bool active = vmx_rt_active(&rt);
        vmx_rt_free(&rt);
        if (active)
            continue;
        if (vmx_start_vm(x, names.v[i], &(struct vmx_start_opts){ 0 }))
            rc = 1;
    }
    vmx_strv_free(&names);
    return rc;
}
