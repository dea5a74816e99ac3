/* `petrel vm pause|resume|stop|kill`: the commands that change a running
 * VM's state through its VMM (its API, or signals).  The runtime state they
 * read and the start path: vm_run.c; the contract: docs/control-plane.md. */
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

#define DEFAULT_STOP_TIMEOUT 30u        /* seconds `stop` waits by default */

/* --- pause, resume, stop, kill -------------------------------------------- */

static int vm_patch_state(struct vmx *x, const char *cmd, int argc, char **argv,
                          const char *want)
{
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    int i = vmx_one_vm(x, cmd, argc, argv, dir, sizeof(dir), &rt, API_TIMEOUT_MS);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    int rc = vmx_need_running(name, &rt);
    if (!rc) {
        json_t *body = json_pack("{s:s}", "state", want);
        struct err e = { "" };
        if (vm_client_call(rt.api, "PATCH", "/vm", body, API_TIMEOUT_MS, &e) < 0)
            rc = vmx_fail("%s: %s", name, e.msg);
        json_decref(body);
    }
    vmx_rt_free(&rt);
    return rc;
}

int vmx_cmd_pause(struct vmx *x, int argc, char **argv)
{
    return vm_patch_state(x, "pause", argc, argv, "Paused");
}

int vmx_cmd_resume(struct vmx *x, int argc, char **argv)
{
    return vm_patch_state(x, "resume", argc, argv, "Resumed");
}

/* Wait until nobody holds dir/lock, then clean up after the VMM (holding the
 * lock meanwhile).  0 when it ended within timeout_ms. */
static int wait_vmm_gone(const char *dir, unsigned timeout_ms)
{
    uint64_t deadline = vmx_now_ms() + timeout_ms;
    for (;;) {
        int fd;
        if (vmx_lock_take(dir, &fd, 1) == 0) {
            struct vm_rt rt;
            memset(&rt, 0, sizeof(rt));
            vmx_read_run_json(dir, &rt);
            vmx_rt_cleanup(dir, &rt);
            vmx_rt_free(&rt);
            close(fd);
            return 0;
        }
        if (vmx_now_ms() > deadline)
            return -ETIMEDOUT;
        vmx_sleep_ms(100);
    }
}

/* A VMM that is gone left run.json behind: clean up. */
static int cleanup_stale(const char *name, const char *dir, struct vm_rt *rt, const char *cmd)
{
    if (!rt->run)
        return vmx_fail("%s is not running", name);
    if (wait_vmm_gone(dir, 2000) < 0)
        return vmx_fail("%s: the lock is busy; try again", name);
    vmx_eprintf("petrel vm %s: %s was not running (cleaned up after its %s VMM)\n", cmd,
            name, rt->st == ST_CRASHED ? "crashed" : "ended");
    return 0;
}

int vmx_cmd_stop(struct vmx *x, int argc, char **argv)
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
                return vmx_usage_err("stop", "invalid --timeout '%s' (seconds, 0..86400)", optarg);
            break;
        case OPT_FORCE: case 'f': force = true; break;
        case 'h': vmx_cmd_help("stop"); return 0;
        case ':': return vmx_usage_err("stop", "option '%s' needs an argument", argv[optind - 1]);
        default: return vmx_usage_err("stop", "unknown option '%s'", argv[optind - 1]);
        }
    }
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    if (vmx_named_vm(x, "stop", argc, argv, optind, dir, sizeof(dir), &rt, API_TIMEOUT_MS))
        return 1;
    const char *name = argv[optind];
    int rc = 0;
    if (!vmx_rt_active(&rt)) {
        rc = cleanup_stale(name, dir, &rt, "stop");
        vmx_rt_free(&rt);
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
        rc = vmx_fail("%s: %s (use 'petrel vm kill %s' to end it)", name, e.msg, name);
    } else if (wait_vmm_gone(dir, (force ? 0 : timeout * 1000u) + 15000u) < 0) {
        rc = vmx_fail("%s did not stop within %u s (use 'petrel vm kill %s' to end it)", name,
                      (force ? 0 : timeout) + 15, name);
    }
    json_decref(body);
    vmx_rt_free(&rt);
    return rc;
}

/* Whether pid is the VMM `start` launched for this VM: its command line is
 * `... run ... --api-sock API ... --id NAME ...`. */
static bool is_our_vmm(long long pid, const char *api, const char *name)
{
    char p[64], buf[65536];
    vmx_fmt(p, sizeof(p), "/proc/%lld/cmdline", pid);
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

int vmx_kill_vmm(const char *name, const char *dir, const struct vm_rt *rt)
{
    if (!rt->pid || !is_our_vmm(rt->pid, rt->api, name))
        return vmx_fail("%s: the process holding its lock is not the VMM run.json names (pid "
                        "%lld); not killing anything", name, rt->pid);
    if (kill((pid_t)rt->pid, SIGKILL) < 0)
        return vmx_fail("%s: kill %lld: %s", name, rt->pid, strerror(errno));
    if (wait_vmm_gone(dir, 10000) < 0)
        return vmx_fail("%s: pid %lld was killed but the lock is still held", name, rt->pid);
    return 0;
}

int vmx_cmd_kill(struct vmx *x, int argc, char **argv)
{
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    int i = vmx_one_vm(x, "kill", argc, argv, dir, sizeof(dir), &rt, 0);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    int rc = vmx_rt_active(&rt) ? vmx_kill_vmm(name, dir, &rt)
                                : cleanup_stale(name, dir, &rt, "kill");
    vmx_rt_free(&rt);
    return rc;
}
