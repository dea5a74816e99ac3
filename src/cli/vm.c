/* `petrel vm`: VMs kept as files in a state directory and run in the
 * background: create, list, info, start, console, pause, resume, stop, kill,
 * set, delete, ssh, stats, snapshot, snapshots, delete-snapshot, revert,
 * clone.  Layout and contract:
 * docs/control-plane.md ("VMs as files"); the definition: vm_def.h; the
 * VMM's API: vm_client.h.  This file: dispatch, help, list, info, delete,
 * ssh, stats; the other commands and what they share: vm_priv.h.
 *
 * Design
 * - A VM is the directory vms/NAME.  Every command reads what it needs from
 *   there; nothing else keeps state, so two shells (or a crash of this CLI
 *   at any point) cannot disagree with the files.
 * - "Runs at most once": vms/NAME/lock.  `start` takes flock(LOCK_EX) on it
 *   and hands the open file to the VMM over fork+exec (the descriptor is not
 *   close-on-exec), so the lock lives exactly as long as the VMM process.
 *   set and delete take the same lock, so they cannot race a start.
 * - Runtime state (running, paused, starting, stopped, crashed) comes from
 *   the lock, run.json and the VMM's API: vm_run.c.
 *
 * Threads: none; one command per process.
 *
 * What can fail: every command prints one line "petrel vm: ..." and exits 1
 * (a VMM that dies while starting also gets the end of its log). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/vm_client.h"
#include "cli/vm_priv.h"

#define SSH_WAIT_DEFAULT 120u

/* --- list and info -------------------------------------------------------- */

static void fmt_uptime(char *buf, size_t len, long long s)
{
    if (s < 0)
        vmx_fmt(buf, len, "-");
    else if (s < 60)
        vmx_fmt(buf, len, "%llds", s);
    else if (s < 3600)
        vmx_fmt(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        vmx_fmt(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        vmx_fmt(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static int cmd_list(struct vmx *x, int argc, char **argv)
{
    bool as_json;
    int arg = vmx_flag_opt("list", argc, argv, "json", 0, &as_json);
    if (arg < 0)
        return ONE_NAME_RC(arg);
    if (arg != argc)
        return vmx_usage_err("list", "unexpected argument '%s'", argv[arg]);
    if (vmx_init(x))
        return 1;
    struct strv names = { 0 };
    if (vmx_list_names(x, &names))
        return 1;
    json_t *arr = json_array();
    enum { COLS = 7 };
    static const char *const head[COLS] = { "NAME", "STATE", "ARCH", "VCPUS", "MEMORY",
                                            "UPTIME", "SSH" };
    char (*cells)[COLS][80] = calloc((size_t)names.n + 1, sizeof(*cells));
    if (!arr || !cells) {
        json_decref(arr);
        free(cells);
        vmx_strv_free(&names);
        return vmx_fail("out of memory");
    }
    for (int i = 0; i < COLS; i++)
        vmx_fmt(cells[0][i], sizeof(cells[0][i]), "%s", head[i]);
    for (int i = 0; i < names.n; i++) {
        struct err e = { "" };
        char (*row)[80] = cells[i + 1];
        json_t *o = vmx_vm_summary(x, names.v[i], 2000, &e);
        if (e.msg[0])
            vmx_eprintf("petrel vm: %s\n", e.msg);
        if (!o)
            continue;
        bool ok = json_is_null(json_object_get(o, "error"));
        json_int_t up = json_integer_value(json_object_get(o, "uptime_s"));
        json_int_t port = json_integer_value(json_object_get(o, "ssh_port"));
        vmx_fmt(row[0], 80, "%s", names.v[i]);
        vmx_fmt(row[1], 80, "%s", json_string_value(json_object_get(o, "state")));
        vmx_fmt(row[2], 80, "%s", ok ? json_string_value(json_object_get(o, "arch")) : "-");
        if (ok)
            vmx_fmt(row[3], 80, "%lld", (long long)json_integer_value(json_object_get(o, "vcpus")));
        else
            vmx_fmt(row[3], 80, "-");
        if (ok)
            vmx_fmt_mib(row[4], 80, (unsigned long long)json_integer_value(
                                        json_object_get(o, "memory_mib")));
        else
            vmx_fmt(row[4], 80, "-");
        fmt_uptime(row[5], 80, json_is_integer(json_object_get(o, "uptime_s")) ? up : -1);
        if (port)
            vmx_fmt(row[6], 80, "127.0.0.1:%lld", (long long)port);
        else
            vmx_fmt(row[6], 80, "-");
        json_array_append_new(arr, o);
    }
    vmx_print_listing(arr, as_json, (const char *)cells, sizeof(cells[0][0]), COLS, names.n + 1);
    json_decref(arr);
    free(cells);
    vmx_strv_free(&names);
    return 0;
}

static int cmd_info(struct vmx *x, int argc, char **argv)
{
    int i = vmx_one_vm(x, "info", argc, argv, NULL, 0, NULL, 0);
    if (i < 0)
        return ONE_NAME_RC(i);
    json_t *o = vmx_vm_info(x, argv[i]);
    if (!o)
        return 1;
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return vmx_fail("out of memory");
    vmx_printf("%s\n", text);
    free(text);
    return 0;
}

/* --- delete --------------------------------------------------------------- */

static int cmd_delete(struct vmx *x, int argc, char **argv)
{
    int i = vmx_one_vm(x, "delete", argc, argv, NULL, 0, NULL, 0);
    if (i < 0)
        return ONE_NAME_RC(i);
    const char *name = argv[i];
    char dir[PATH_MAX + 80], gone[PATH_MAX + 96];
    vmx_vm_dir(x, name, dir, sizeof(dir));
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return vmx_fail("no VM named '%s' (in %s)", name, x->vms);
    int fd, snapfd;
    if (vmx_snap_lock(name, dir, &snapfd))
        return 1;
    if (vmx_lock_stopped(name, dir, &fd)) {
        close(snapfd);
        return 1;
    }
    struct vm_rt rt;
    memset(&rt, 0, sizeof(rt));
    vmx_read_run_json(dir, &rt);
    vmx_rt_cleanup(dir, &rt);
    vmx_rt_free(&rt);
    /* the snapshots go with the directory; disks outside it (--disk PATH)
     * lose the internal snapshots the VM's snapshots put there */
    struct strv tags = { 0 };
    vmx_snap_list(dir, &tags);
    for (int k = 0; k < tags.n; k++) {
        json_t *info = vmx_snap_info(name, dir, tags.v[k], true);
        if (info)
            vmx_snap_disks_delete(name, dir, info, true);
        json_decref(info);
    }
    vmx_strv_free(&tags);
    /* out of sight first (list ignores dot names), then removed */
    vmx_fmt(gone, sizeof(gone), "%s/.%s.deleting.%d", x->vms, name, (int)getpid());
    if (rename(dir, gone) < 0) {
        close(fd);
        close(snapfd);
        return vmx_fail("%s: rename: %s", dir, strerror(errno));
    }
    close(fd);
    close(snapfd);
    if (vmx_rm_rf(gone) < 0)
        return vmx_fail("%s: could not remove everything: %s", gone, strerror(errno));
    return 0;
}

/* --- ssh ------------------------------------------------------------------ */

/* The private key for the VM's public key: key_file without ".pub", else
 * the ~/.ssh/id_* whose .pub is in authorized_keys.  NULL: unknown. */
static char *private_key_for(const struct vm_def *d)
{
    char p[PATH_MAX];
    size_t n = d->ssh_key_file ? strlen(d->ssh_key_file) : 0;
    if (n > 4 && !strcmp(d->ssh_key_file + n - 4, ".pub")) {
        vmx_fmt(p, sizeof(p), "%.*s", (int)(n - 4), d->ssh_key_file);
        if (access(p, R_OK) == 0)
            return strdup(p);
    }
    const char *h = vmx_home_dir();
    for (unsigned i = 0; h && d->authorized_keys[0] &&
                         i < VMX_NDEFAULT_KEYS; i++) {
        vmx_fmt(p, sizeof(p), "%s/.ssh/%s", h, vmx_default_keys[i]);
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
    uint64_t deadline = vmx_now_ms() + (uint64_t)timeout_s * 1000;
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
        vmx_sleep_ms(500);
    } while (vmx_now_ms() < deadline);
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
            return vmx_cmd_help("ssh"), 0;
        if (c != OPT_WAIT)
            return vmx_usage_err("ssh", c == ':' ? "option '%s' needs an argument"
                                                 : "unknown option '%s'", argv[optind - 1]);
        errno = 0;
        wait_s = (unsigned)strtoul(optarg, &end, 10);
        if (!isdigit((unsigned char)optarg[0]) || errno || *end || wait_s > 3600)
            return vmx_usage_err("ssh", "invalid --wait '%s' (seconds, 0..3600)", optarg);
    }
    if (optind >= argc)
        return vmx_usage_err("ssh", "%s", "expected a VM name");
    const char *name = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--"))
        optind++;
    if (vmx_check_name("ssh", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80];
    struct vm_def d;
    if (vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    struct vm_rt rt;
    vmx_rt_get(dir, &rt, API_TIMEOUT_MS);
    int rc = vmx_need_running(name, &rt);
    long long port = rt.ssh_port;
    vmx_rt_free(&rt);
    if (!rc && !port)
        rc = vmx_fail("%s has no ssh port (created with --no-net, or a NIC without a forward to "
                      "port 22)", name);
    if (!rc && wait_s && !wait_ssh_banner((unsigned)port, wait_s))
        rc = vmx_fail("%s: no ssh server answered on 127.0.0.1:%lld within %u s", name, port,
                      wait_s);
    if (rc) {
        vm_def_free(&d);
        return rc;
    }
    char *key = private_key_for(&d);
    vm_def_free(&d);
    struct strv av = { 0 };
    bool bad = vmx_strv_add(&av, "ssh") < 0 || vmx_strv_add(&av, "-p") < 0 ||
               vmx_strv_addf(&av, "%lld", port) < 0 ||
               vmx_strv_add(&av, "-o") < 0 ||
               vmx_strv_add(&av, "StrictHostKeyChecking=no") < 0 ||
               vmx_strv_add(&av, "-o") < 0 ||
               vmx_strv_add(&av, "UserKnownHostsFile=/dev/null") < 0 ||
               vmx_strv_add(&av, "-o") < 0 || vmx_strv_add(&av, "LogLevel=ERROR") < 0;
    if (key)
        bad |= vmx_strv_add(&av, "-i") < 0 || vmx_strv_add(&av, key) < 0;
    bad |= vmx_strv_add(&av, "root@127.0.0.1") < 0;
    for (int i = optind; i < argc; i++)
        bad |= vmx_strv_add(&av, argv[i]) < 0;
    free(key);
    if (bad)
        return vmx_fail("out of memory");
    fflush(NULL);
    execvp("ssh", av.v);
    rc = vmx_fail("cannot run ssh: %s (install openssh-client)", strerror(errno));
    vmx_strv_free(&av);
    return rc;
}

/* --- stats ---------------------------------------------------------------- */

static int cmd_stats(struct vmx *x, int argc, char **argv)
{
    bool watch;
    int i = vmx_flag_opt("stats", argc, argv, "watch", 'w', &watch);
    if (i < 0)
        return ONE_NAME_RC(i);
    char dir[PATH_MAX + 80];
    struct vm_rt rt;
    if (vmx_named_vm(x, "stats", argc, argv, i, dir, sizeof(dir), &rt, API_TIMEOUT_MS))
        return 1;
    const char *name = argv[i];
    int rc = vmx_need_running(name, &rt);
    char api[PATH_MAX];
    vmx_fmt(api, sizeof(api), "%s", rt.api);
    vmx_rt_free(&rt);
    if (rc)
        return rc;
    bool clear = watch && isatty(STDOUT_FILENO);
    for (;;) {
        json_t *m;
        struct err e = { "" };
        if (vm_client_get_json(api, "/petrel/metrics", API_TIMEOUT_MS, &m, &e) < 0)
            return vmx_fail("%s: %s", name, e.msg);
        char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(m);
        if (!text)
            return vmx_fail("out of memory");
        if (clear)
            vmx_printf("\033[H\033[2J%s (every 2 s; Ctrl-C to quit)\n", name);
        vmx_printf("%s\n", text);
        free(text);
        fflush(stdout);
        if (!watch)
            return 0;
        vmx_sleep_ms(2000);
    }
}

/* --- help and dispatch ---------------------------------------------------- */

struct vm_cmd {
    const char *name;
    int (*fn)(struct vmx *x, int argc, char **argv);
    const char *synopsis;
    const char *summary;
    const char *help;
};

static const struct vm_cmd cmds[] = {
    { "create", vmx_cmd_create,
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
      "                          qcow2), never written. IMAGE is first copied into\n"
      "                          <state>/images/<arch>-<sha256>.raw|qcow2 (read-only,\n"
      "                          sparse, once per content, shared by VMs, kept when\n"
      "                          they are deleted), so rebuilding or editing IMAGE\n"
      "                          later cannot corrupt the VM; a file already in the\n"
      "                          state directory is used in place.\n"
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
      "  --no-balloon            no memory balloon (see 'petrel vm balloon --help')\n"
      "  --autostart             start it with 'petrel vm start --all'\n"
      "  --display               a screen, keyboard and tablet (virtio-gpu, virtio-input)\n"
      "                          served as VNC on the unix socket vnc.sock beside\n"
      "                          console.sock (petrel serve's graphical console); the\n"
      "                          display drivers add ~2-3 s to each boot\n"
      "\n"
      "options (resource limits, kept in vm.json, applied at every start through the\n"
      "VMM's cgroup; need root; see 'petrel run --help' and the README):\n"
      "  --cpu-quota PCT         CPU time of the VMM in percent of one host CPU (50%)\n"
      "  --cpu-pin LIST          host CPUs for the guest-CPU threads (0-3,6)\n"
      "  --memory-max SIZE       memory of the whole VMM, whole MiB (768M); past it the\n"
      "                          kernel kills the VMM ('petrel vm info' says so)\n"
      "  --pids-max N            threads of the VMM\n"
      "  --io-max [disk=N,]rbps=SIZE,wbps=SIZE,riops=N,wiops=N\n"
      "                          block I/O per second on the host disk holding each disk\n"
      "                          image (disk=N: the N-th disk, 0 the root disk; repeatable)\n"
      "\n"
      "Default devices: virtio-rng, virtio-net,hostfwd=tcp:127.0.0.1:0-:22 (the 0 is\n"
      "the ssh port picked at start), when this petrel has it, virtio-keyboard\n"
      "(the power button 'petrel vm stop' presses), and " BALLOON_DEFAULT "\n"
      "(see 'petrel vm balloon --help').\n" },
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
      "pid, started_utc, api_sock, console_sock, ssh_port, snapshot_parent; null when\n"
      "never started or cleanly stopped), \"vmm\" (the VMM's GET /petrel/info, null\n"
      "when it does not run), \"snapshots\" (how many), \"cloned_from\" ({vm,\n"
      "snapshot, first_start_pending} for a clone, else null), \"resources\":\n"
      "{\"limits\" (as in vm.json), \"cgroup\": the VMM's cgroup figures (null when it\n"
      "has none): path, vmm_gone (the VMM died and left it), cpu_time_s,\n"
      "cpu_quota_us, cpu_period_us, cpu_throttled_periods, memory_current_bytes,\n"
      "memory_peak_bytes, memory_max_bytes, oom_kills, pids_current, pids_max\n"
      "(null: not known), and \"note\" when the OOM killer ended the VMM}}.\n" },
    { "start", vmx_cmd_start,
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
    { "console", vmx_cmd_console,
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
    { "pause", vmx_cmd_pause,
      "pause NAME",
      "pause a running VM (its CPUs and clock stop)",
      "Every virtual CPU stops at an instruction boundary and guest time freezes\n"
      "until 'petrel vm resume NAME'.\n" },
    { "resume", vmx_cmd_resume,
      "resume NAME",
      "resume a paused VM",
      "The guest continues with no jump in its clock.\n" },
    { "stop", vmx_cmd_stop,
      "stop NAME [--timeout S] [--force]",
      "shut a VM down (the guest's power button, then a hard stop)",
      "Asks the guest to shut down (the power key; the default guest powers off\n"
      "cleanly) and waits for the VMM to exit. A guest that has not powered off\n"
      "after the timeout is stopped hard by the VMM.\n"
      "\n"
      "  --timeout S   seconds the guest gets (default 30)\n"
      "  -f, --force   stop at once, without asking the guest\n" },
    { "kill", vmx_cmd_kill,
      "kill NAME",
      "end a VM's VMM at once (SIGKILL)",
      "Sends SIGKILL to the VMM recorded in run.json, after checking that this\n"
      "process is the VMM of NAME (its command line), then removes run.json and the\n"
      "sockets. The guest gets no chance to flush its disks: prefer 'stop'.\n" },
    { "balloon", vmx_cmd_balloon,
      "balloon NAME [SIZE]",
      "show or set a running VM's memory balloon",
      "Without SIZE: the balloon's target and actual size, its options and the\n"
      "guest's memory statistics. With SIZE (whole MiB, e.g. 256M or 1G; a bare\n"
      "number is MiB; 0 deflates it): the new target. The guest gives that much\n"
      "memory back to the host (its pages are freed in the VMM) as fast as it can;\n"
      "'balloon NAME' shows how far it got. A target larger than the VM's memory\n"
      "is refused.\n"
      "\n"
      "'petrel vm create' gives every VM a balloon (virtio-balloon,deflate_on_oom=on,\n"
      "stats_polling_interval_s=5,free_page_reporting=on): memory the guest frees\n"
      "goes back to the host by itself, and a guest that runs short of memory\n"
      "takes pages back out of the balloon. --device virtio-balloon,... replaces it,\n"
      "'petrel vm create --no-balloon' leaves it out.\n" },
    { "set", vmx_cmd_set,
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
      "  --autostart on|off       started by 'petrel vm start --all'\n"
      "  --display on|off         a screen served as VNC on vnc.sock (next start)\n"
      "  --cpu-quota PCT|none, --cpu-pin LIST|none, --memory-max SIZE|none,\n"
      "  --pids-max N|none, --io-max SPEC|none\n"
      "                           resource limits, as for create ('none' removes one;\n"
      "                           the first --io-max replaces the list)\n" },
    { "delete", cmd_delete,
      "delete NAME",
      "delete a stopped VM and everything in its directory",
      "Removes vms/NAME/: the definition, disk0.qcow2 and any other disk stored\n"
      "there, the logs, the snapshots. Disks added with --disk PATH outside the\n"
      "directory and base images (<state>/images/, shared by VMs) are left alone,\n"
      "except that the internal snapshots NAME's snapshots made in such disks are\n"
      "removed. Clones of NAME keep working (they hold links to what they use).\n"
      "Refused while the VM runs.\n" },
    { "snapshot", vmx_cmd_snapshot,
      "snapshot NAME [TAG] [--diff]",
      "save a VM (running: memory, CPUs, devices, disks; stopped: disks)",
      "TAG: 1 to 64 characters from a-z A-Z 0-9 . _ -, not starting with '.' or '-'\n"
      "(default: snap-YYYYmmdd-HHMMSS, UTC). An existing TAG is an error.\n"
      "\n"
      "A running or paused VM is paused, saved to vms/NAME/snapshots/TAG/ (state:\n"
      "the CPUs and devices; memory: guest RAM, pages never written left as holes)\n"
      "with an internal qcow2 snapshot TAG in each writable disk taken at the same\n"
      "instant, and resumed if it was running. Prints how long it took, how long the\n"
      "guest was paused and the memory file's allocated size. Writable raw disks\n"
      "make it fail (snapshots need qcow2).\n"
      "A stopped VM gets a disk-only snapshot: an internal snapshot TAG in each\n"
      "writable qcow2 disk (type \"disk\"; revert boots from it).\n"
      "\n"
      "  --diff   only the memory pages written since the snapshot this run of the\n"
      "           VM last took or was reverted to (its parent). A diff needs its\n"
      "           parent: delete-snapshot refuses to delete a parent\n" },
    { "snapshots", vmx_cmd_snapshots,
      "snapshots NAME [--json]",
      "list a VM's snapshots",
      "Columns: TAG CREATED TYPE SIZE PARENT, oldest first. TYPE is full, diff, disk\n"
      "(disk-only, taken while stopped) or incomplete (taking it failed midway;\n"
      "delete-snapshot removes it). SIZE: what the state and memory files take on\n"
      "disk (allocated bytes); the disks' part lives in the disks.\n"
      "\n"
      "  --json   a JSON array of {tag, created_utc, type, parent, size_bytes,\n"
      "           state_bytes, memory_bytes, exports_bytes, complete, vm_state,\n"
      "           duration_ms, disks}\n" },
    { "delete-snapshot", vmx_cmd_delete_snapshot,
      "delete-snapshot NAME TAG",
      "delete one of a VM's snapshots",
      "Removes vms/NAME/snapshots/TAG/ and the internal snapshot TAG of each of the\n"
      "VM's disks. Refused while a diff snapshot has TAG as its parent (they are\n"
      "named), and, for a snapshot with disk state, while the VM runs: its VMM holds\n"
      "the disks (stop the VM first). Clones made from TAG keep working.\n" },
    { "revert", vmx_cmd_revert,
      "revert NAME TAG [--paused]",
      "go back to a snapshot (the current state is lost)",
      "A running VM is stopped hard first (as 'petrel vm kill': its state is being\n"
      "thrown away). A memory snapshot (full or diff) starts a new VMM from it: the\n"
      "guest continues where it was when TAG was taken, its disks reverted to TAG.\n"
      "A disk-only snapshot reverts the disks; the VM then boots from them if it was\n"
      "running, else it stays stopped.\n"
      "\n"
      "  --paused   (memory snapshots) leave the restored VM paused ('petrel vm\n"
      "             resume' continues it)\n" },
    { "clone", vmx_cmd_clone,
      "clone NAME NEWNAME [--from TAG]",
      "make a new VM that starts from a snapshot of NAME",
      "NEWNAME gets its own directory: NAME's definition, a new random MAC on each\n"
      "network card, a free ssh port picked at start, its own config disk, and for\n"
      "each writable disk a qcow2 overlay on an export of that disk as it was at TAG\n"
      "(made once per snapshot, in snapshots/TAG/, shared by TAG's clones and linked\n"
      "into each clone's directory; read-only disks are shared). The first 'petrel vm\n"
      "start NEWNAME' of a memory snapshot's clone continues TAG's guest (state and\n"
      "memory linked from TAG, so clones share its page cache and outlive it); later\n"
      "starts boot from the disks. The guest keeps TAG's host name and MAC until it\n"
      "reboots. A disk-only snapshot's clone boots from its disks.\n"
      "\n"
      "  --from TAG   the snapshot (full or disk; not diff). Without it: a running\n"
      "               NAME gets a full snapshot now (clone-NEWNAME-TIME); a stopped\n"
      "               NAME is copied cold (its disks' data, on the same bases)\n" },
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
    vmx_printf("usage: petrel vm <command> [options]\n"
           "\n"
           "VMs kept as files and run in the background.\n"
           "\n"
           "commands:\n");
    for (unsigned i = 0; i < NCMDS; i++)
        vmx_printf("  %s\n        %s\n", cmds[i].synopsis, cmds[i].summary);
    vmx_printf("\n"
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
           "  vmm.log, vmm.log.1           the VMM's own messages\n"
           "  snapshots/TAG/    a snapshot: info.json, state, memory, disk exports\n"
           "  snap.lock         held while a snapshot is taken, deleted, reverted to or\n"
           "                    cloned\n"
           "Base images are images/<arch>-<sha256>.raw|qcow2 there: read-only copies the\n"
           "root disks are overlays on (see 'petrel vm create --help'). Deleting a VM\n"
           "leaves them; remove one no VM uses with rm.\n");
}

int vmx_cmd_run(struct vmx *x, int argc, char **argv)
{
    for (unsigned i = 0; i < NCMDS; i++)
        if (!strcmp(cmds[i].name, argv[0]))
            return cmds[i].fn(x, argc, argv);
    return vmx_fail("unknown command '%s' (try 'petrel vm --help')", argv[0]);
}

void vmx_cmd_help(const char *name)
{
    for (unsigned i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, name))
            continue;
        vmx_printf("usage: petrel vm %s\n\n%c%s.\n\n%s", cmds[i].synopsis,
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
                    return vmx_cmd_help(argv[2]), 0;
        }
        cli_vm_usage();
        return 0;
    }
    for (unsigned i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, cmd))
            continue;
        struct vmx x;
        memset(&x, 0, sizeof(x));
        return cmds[i].fn(&x, argc - 1, argv + 1);
    }
    vmx_eprintf("petrel vm: unknown command '%s' (try 'petrel vm --help')\n", cmd);
    return 1;
}
