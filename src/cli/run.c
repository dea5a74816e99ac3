/* `petrel run`: parse options, build the VM, run it, map the way it ended
 * to an exit status. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fc.h"
#include "api/http.h"
#include "arch/riscv/virt.h"
#include "cli/cli.h"
#include "cli/run_jail.h"
#include "core/board.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/vm.h"
#include "engine/rv64/jit.h"
#include "sandbox/cgroup.h"
#include "sandbox/seccomp.h"
#include "ui/vnc.h"
#include "virtio/virtio_pci.h"

#define DEFAULT_MEM (512ull << 20)
#define DEFAULT_APPEND "console=ttyS0 earlycon=sbi"
#define MAX_MEM (64ull << 30)

void cli_run_usage(void)
{
    printf(
        "usage: petrel run [options]\n"
        "\n"
        "Boot a virtual machine with its serial console on this terminal.\n"
        "With no options, boots the default riscv64 Debian guest.\n"
        "\n"
        "options:\n"
        "  --arch riscv64|x86_64  guest architecture (default riscv64, on Petrel's rv64 CPU;\n"
        "                         x86_64 runs on /dev/kvm)\n"
        "  --kernel FILE          kernel: riscv64: a Linux Image or an ELF; x86_64: a bzImage\n"
        "                         or an ELF with a PVH entry (default: the default guest's)\n"
        "  --initrd FILE          initial ramdisk (default: the default guest's; with\n"
        "                         --kernel, none unless given)\n"
        "  --append CMDLINE       kernel command line (default \"" DEFAULT_APPEND "\")\n"
        "  --firmware FILE|none   riscv64: M-mode firmware loaded at RAM base (default:\n"
        "                         OpenSBI fw_dynamic.bin of the default guest); 'none'\n"
        "                         enters the kernel in M-mode (bare-metal programs).\n"
        "                         x86_64 boots kernels directly: none\n"
        "  --memory SIZE          guest RAM, e.g. 512M or 2G; a bare number is MiB\n"
        "                         (default 512M, at least 16M)\n"
        "  --cpus N               number of virtual CPUs: riscv64 1..32, x86_64 1..64\n"
        "                         (default 1)\n"
        "  --cpu-mode interp|jit  riscv64 guests: interpret guest code, or translate it\n"
        "                         to host code (JIT, x86-64 hosts only; docs/jit.md)\n"
        "                         (default: " JIT_DEFAULT_NAME ")\n"
        "  --timeout SECONDS      stop the guest after SECONDS (watchdog), exit status 4\n"
        "  --device NAME[,OPTS]  add a virtio PCI device (repeatable, at most 16):\n"
        "                           virtio-rng  entropy source fed from the host's getrandom()\n"
        "                                       (the guest's /dev/hwrng)\n"
        "                           virtio-console,socket=PATH  a second console (the\n"
        "                                       guest's /dev/hvc0) on a unix socket petrel\n"
        "                                       listens on; virtio-console,file=PATH\n"
        "                                       [,append=on] logs its output to a file\n"
        "                           virtio-keyboard  a virtio-input keyboard: the VM's power\n"
        "                                       button (API stop, SendCtrlAltDel)\n"
        "                           virtio-net[,hostfwd=tcp:127.0.0.1:2222-:22][,mac=MAC]\n"
        "                                       network card on user-mode NAT (10.0.2.0/24,\n"
        "                                       DHCP, DNS; net=user); hostfwd=[tcp|udp]:[HADDR]:\n"
        "                                       HPORT-[GADDR]:GPORT forwards a host port\n"
        "                           virtio-net,net=private,name=NET  a card on the private\n"
        "                                       VM-to-VM network NET (see 'petrel switch --help')\n"
        "                           virtio-net,...,allow=|deny=PROTO[:PORTS[:CIDR]]  firewall\n"
        "                                       rules for what reaches the guest: tcp|udp|icmp|any,\n"
        "                                       ports N or N-M, sender CIDR; with any allow=,\n"
        "                                       new inbound traffic not allowed is dropped\n"
        "                           virtio-balloon[,amount_mib=N][,deflate_on_oom=on]\n"
        "                                       [,stats_polling_interval_s=N][,free_page_reporting=on]\n"
        "                                       memory balloon (at most one): the guest gives\n"
        "                                       amount_mib MiB back (PATCH /balloon changes it);\n"
        "                                       deflate_on_oom: it takes them back when short of\n"
        "                                       memory; statistics every N s (GET\n"
        "                                       /balloon/statistics); free_page_reporting: memory\n"
        "                                       the guest frees goes back to the host\n"
        "                           virtio-tablet  a virtio-input tablet (absolute pointer)\n"
        "                           virtio-gpu[,xres=1024,yres=768]  a virtio-gpu 2D display\n"
        "                                       (the guest's fbcon; shown by --vnc)\n"
        "                         No device is added unless asked for (but see --vnc).\n"
        "  --vnc ADDR[,password-file=PATH]\n"
        "                         serve the guest's screen over VNC on HOST:PORT (e.g.\n"
        "                         127.0.0.1:5900) or unix:PATH; adds virtio-gpu,\n"
        "                         virtio-keyboard and virtio-tablet unless given. No\n"
        "                         authentication without password-file= (its first line,\n"
        "                         VNC's weak DES scheme): keep it on loopback or a unix socket\n"
        "  --disk PATH[,format=raw|qcow2][,readonly=on][,serial=ID]\n"
        "                         add a virtio-blk disk backed by the image PATH\n"
        "                         (repeatable, at most 16: the guest's vda, vdb, ... in\n"
        "                         order). format: raw or qcow2 (default: probed, qcow2 if\n"
        "                         the header has its magic, else raw); readonly=on: the\n"
        "                         guest cannot write (VIRTIO_BLK_F_RO); serial: the disk's ID (up\n"
        "                         to 20 characters). A comma in PATH is written ',,'.\n"
        "                         Images are locked: one VM writes an image at a time.\n"
        "  --restore DIR          start from a snapshot instead of booting: DIR/state and\n"
        "                         DIR/memory (docs/snapshots.md); qcow2 disks are reverted\n"
        "                         to the snapshot's internal snapshot; --disk and --device\n"
        "                         replace the snapshot's own (disks then used as they are)\n"
        "  --paused               with --restore: stay paused (resume with the API)\n"
        "  --verify-memory        with --restore: check the memory file's checksums first\n"
        "  --api-sock PATH        serve the REST API (Firecracker's resources and Petrel's\n"
        "                         /petrel paths) on the unix socket PATH; without --boot or\n"
        "                         --config-file, wait for PUT /actions InstanceStart\n"
        "  --boot                 with --api-sock: boot at once\n"
        "  --id ID                the instance id GET / reports\n"
        "  --config-file FILE     boot from Firecracker's JSON configuration layout\n"
        "  --no-api               with --config-file: no API socket\n"
        "  --console-sock PATH    the serial console on a unix socket (any number of\n"
        "                         clients) instead of this terminal\n"
        "  --console-log PATH     with --console-sock: also log the console to PATH\n"
        "                         (past 1 MiB renamed to PATH.1)\n"
        "  --log-path P, --level L, --show-level, --show-log-origin, --metrics-path P\n"
        "                         Firecracker's logger and metrics flags\n"
        "resource limits (cgroup v2, or v1 per controller where v2 lacks it; need root;\n"
        "see the README, Resource limits):\n"
        "  --cpu-quota PCT        CPU time of the whole VMM, in percent of one host CPU\n"
        "                         (e.g. 50%% or 150%%; 1%%..6400%%)\n"
        "  --cpu-pin LIST         host CPUs for the guest-CPU threads (e.g. 2 or 0-3,6):\n"
        "                         thread i runs on the i-th CPU of LIST, round robin\n"
        "                         (riscv64 runs every hart on one thread: the first CPU)\n"
        "  --memory-max SIZE      memory of the whole VMM (guest RAM as it is touched, plus\n"
        "                         the VMM's own), e.g. 768M; past it the kernel kills the\n"
        "                         VMM (OOM). Below --memory is allowed, with a warning\n"
        "  --io-max [disk=N,]rbps=SIZE,wbps=SIZE,riops=N,wiops=N\n"
        "                         block I/O limits (per second) on the host disk holding\n"
        "                         each disk image (disk=N: only the N-th --disk; repeatable)\n"
        "  --pids-max N           threads and processes of the VMM, 1..4194304\n"
        "  --jail DIR             run the VMM in a jail (root only; docs/jail.md): its own\n"
        "                         mount, pid, ipc, uts and network namespaces, a root that\n"
        "                         holds only this VM's files (bind-mounted at their host\n"
        "                         paths), no_new_privs, rlimits. Sockets and logs must be\n"
        "                         in DIR (a directory of its own, not writable by others)\n"
        "  --uid U, --gid G       with --jail: run the VMM as this user and group (names or\n"
        "                         numbers; default: root without capabilities)\n"
        "  --netns PATH           with --jail: join this network namespace (e.g.\n"
        "                         /var/run/netns/NAME) instead of a new, empty one\n"
        "  --resource-limit fsize=BYTES|no-file=N\n"
        "                         with --jail: RLIMIT_FSIZE (default unlimited), RLIMIT_NOFILE\n"
        "                         (default 4096); repeatable\n"
        "  --seccomp on|off|log   system call filters per thread (docs/seccomp.md): on\n"
        "                         (default) ends petrel with a message and exit status 159\n"
        "                         on a forbidden call; log lets it through and the kernel\n"
        "                         logs it (dmesg, audit log); off: no filter\n"
        "  --no-seccomp, --seccomp-level 0|1|2\n"
        "                         Firecracker's spellings: --seccomp off; 0 off, 1 and 2 on\n"
        "  --boot-timer           accepted for Firecracker clients, ignored\n"
        "  -v, --verbose          log more (repeat for debug output)\n"
        "  -h, --help             show this help\n"
        "\n"
        "console: when stdin is a terminal it is put in raw mode; type Ctrl-A x to quit,\n"
        "Ctrl-A Ctrl-A to send Ctrl-A, Ctrl-A h for help. Pipes work too: input is fed\n"
        "to the guest as it reads it.\n"
        "\n"
        "exit status: 0 guest powered off (or Ctrl-A x, or stopped by the host: API,\n"
        "SIGTERM), 1 error in petrel or bad usage,\n"
        "2 guest rebooted, 3 guest kernel panic, 4 --timeout expired,\n"
        "5 guest powered off reporting failure.\n"
        "\n"
        "The default guest is looked up in $PETREL_GUEST_DIR/<arch>, else in\n"
        "<directory of petrel>/guest/<arch>: riscv64/{Image,initramfs.cpio.gz,\n"
        "fw_dynamic.bin}, x86_64/{vmlinuz,initramfs.cpio.gz}.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        return -EINVAL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "petrel run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try 'petrel run --help')\n");
    return PETREL_EXIT_ERROR;
}

enum { OPT_ARCH = 256, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_FIRMWARE, OPT_MEMORY, OPT_CPUS,
       OPT_TIMEOUT, OPT_DEVICE, OPT_DISK, OPT_API_SOCK, OPT_BOOT, OPT_ID, OPT_CONFIG_FILE,
       OPT_NO_API, OPT_CONSOLE_SOCK, OPT_CONSOLE_LOG, OPT_FC_IGNORED,
       OPT_LOG_PATH, OPT_LEVEL, OPT_METRICS_PATH, OPT_SHOW_LEVEL, OPT_SHOW_LOG_ORIGIN,
       OPT_RESTORE, OPT_PAUSED, OPT_VERIFY_MEMORY, OPT_CPU_QUOTA, OPT_CPU_PIN, OPT_MEMORY_MAX,
       OPT_IO_MAX, OPT_PIDS_MAX, OPT_JAIL, OPT_UID, OPT_GID, OPT_NETNS, OPT_RLIMIT, OPT_SECCOMP,
       OPT_SECCOMP_LEVEL, OPT_NO_SECCOMP, OPT_VNC, OPT_CPU_MODE };

struct run_opts {
    const char *vnc;
    const char *api_sock, *id, *config_file, *console_sock, *console_log;
    const char *fc_log_path, *fc_level, *fc_metrics_path;
    bool boot, no_api, fc_show_level, fc_show_log_origin;
    int verbose;
    const char *restore;        /* --restore DIR */
    bool paused, verify_memory;
    const char *machine_flag;   /* a flag that describes the machine (not with --restore) */
    struct cg_limits limits;    /* --cpu-quota, --cpu-pin, --memory-max, --io-max, --pids-max */
    struct jail_config jail;    /* --jail, --uid, --gid, --netns, --resource-limit */
    const char *jail_flag;      /* a flag that needs --jail */
    enum sandbox_seccomp_mode seccomp;
};

/* The main thread's filter, once everything is set up: after a restore the
 * API server is started (and libmicrohttpd loaded) after the CPUs. */
static void enter_vmm_sandbox(void *opaque)
{
    (void)opaque;
    sandbox_seccomp_enter(THREAD_VMM);
}

/* SIGTERM, SIGINT, SIGHUP: stop the VM (hard) and exit cleanly. */
static void signal_ready(void *opaque)
{
    struct vm *vm = opaque;
    struct signalfd_siginfo si;
    if (read(vm_signal_fd(vm), &si, sizeof(si)) != sizeof(si))
        return;
    log_info("%s: stopping the VM", strsignal((int)si.ssi_signo));
    pthread_mutex_lock(&vm->dev_lock);
    vm_request_exit(vm, VM_EXIT_STOPPED, 0);
    pthread_mutex_unlock(&vm->dev_lock);
}

static int parse_args(int argc, char **argv, struct vm_config *cfg, struct run_opts *ro)
{
    static const struct option opts[] = {
        { "arch", required_argument, NULL, OPT_ARCH },
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "append", required_argument, NULL, OPT_APPEND },
        { "firmware", required_argument, NULL, OPT_FIRMWARE },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "cpus", required_argument, NULL, OPT_CPUS },
        { "cpu-mode", required_argument, NULL, OPT_CPU_MODE },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "device", required_argument, NULL, OPT_DEVICE },
        { "disk", required_argument, NULL, OPT_DISK },
        { "api-sock", required_argument, NULL, OPT_API_SOCK },
        { "boot", no_argument, NULL, OPT_BOOT },
        { "id", required_argument, NULL, OPT_ID },
        { "config-file", required_argument, NULL, OPT_CONFIG_FILE },
        { "no-api", no_argument, NULL, OPT_NO_API },
        { "console-sock", required_argument, NULL, OPT_CONSOLE_SOCK },
        { "console-log", required_argument, NULL, OPT_CONSOLE_LOG },
        /* Firecracker's flags that its clients pass; see the README */
        { "seccomp", required_argument, NULL, OPT_SECCOMP },
        { "seccomp-level", required_argument, NULL, OPT_SECCOMP_LEVEL },
        { "level", required_argument, NULL, OPT_LEVEL },
        { "log-path", required_argument, NULL, OPT_LOG_PATH },
        { "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
        { "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
        { "show-level", no_argument, NULL, OPT_SHOW_LEVEL },
        { "show-log-origin", no_argument, NULL, OPT_SHOW_LOG_ORIGIN },
        { "boot-timer", no_argument, NULL, OPT_FC_IGNORED },
        { "restore", required_argument, NULL, OPT_RESTORE },
        { "paused", no_argument, NULL, OPT_PAUSED },
        { "verify-memory", no_argument, NULL, OPT_VERIFY_MEMORY },
        { "cpu-quota", required_argument, NULL, OPT_CPU_QUOTA },
        { "cpu-pin", required_argument, NULL, OPT_CPU_PIN },
        { "memory-max", required_argument, NULL, OPT_MEMORY_MAX },
        { "io-max", required_argument, NULL, OPT_IO_MAX },
        { "pids-max", required_argument, NULL, OPT_PIDS_MAX },
        { "jail", required_argument, NULL, OPT_JAIL },
        { "uid", required_argument, NULL, OPT_UID },
        { "gid", required_argument, NULL, OPT_GID },
        { "netns", required_argument, NULL, OPT_NETNS },
        { "resource-limit", required_argument, NULL, OPT_RLIMIT },
        { "vnc", required_argument, NULL, OPT_VNC },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    unsigned long ul;
    uint64_t ull;
    struct err e = { "" };

    opterr = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, ":hv", opts, NULL)) != -1) {
        switch (o) {
        case OPT_ARCH: ro->machine_flag = "arch";
            if (!vm_board(optarg))
                return usage_error("unknown --arch '%s' (riscv64 or x86_64)", optarg);
            vm_config_set(&cfg->arch, optarg);
            break;
        case OPT_KERNEL: ro->machine_flag = "kernel"; vm_config_set(&cfg->kernel, optarg); break;
        case OPT_INITRD: ro->machine_flag = "initrd"; vm_config_set(&cfg->initrd, optarg); break;
        case OPT_APPEND: ro->machine_flag = "append"; vm_config_set(&cfg->append, optarg); break;
        case OPT_FIRMWARE: ro->machine_flag = "firmware"; vm_config_set(&cfg->firmware, optarg); break;
        case OPT_MEMORY: ro->machine_flag = "memory";
            if (opts_size(optarg, 20, &ull) < 0)
                return usage_error("invalid --memory size '%s' (use e.g. 512M or 2G)", optarg);
            if (ull > MAX_MEM)
                return usage_error("--memory %s is more than the 64G petrel supports", optarg);
            if (ull < VIRT_MIN_RAM)
                return usage_error("--memory %s is too little memory (at least 16M)", optarg);
            if (ull & 0xfff)
                return usage_error("--memory %s is not a multiple of 4K", optarg);
            cfg->mem_size = ull;
            break;
        case OPT_CPUS: ro->machine_flag = "cpus";
            if (parse_uint(optarg, 1024, &ul) < 0 || ul < 1)
                return usage_error("invalid --cpus '%s' (a number from 1)", optarg);
            cfg->cpus = (unsigned)ul;
            break;
        case OPT_CPU_MODE:
            if (!strcmp(optarg, "interp"))
                cfg->cpu_mode = CPU_MODE_INTERP;
            else if (!strcmp(optarg, "jit") && RV64_JIT_AVAILABLE)
                cfg->cpu_mode = CPU_MODE_JIT;
            else if (!strcmp(optarg, "jit"))
                return usage_error("--cpu-mode jit: this host has no JIT (x86-64 only); "
                                   "use %s", "--cpu-mode interp");
            else
                return usage_error("invalid --cpu-mode '%s' (interp or jit)", optarg);
            break;
        case OPT_TIMEOUT: ro->machine_flag = "timeout";
            if (parse_uint(optarg, 1000000, &ul) < 0 || ul < 1)
                return usage_error("invalid --timeout '%s' (seconds, 1..1000000)", optarg);
            cfg->timeout_s = (unsigned)ul;
            break;
        case OPT_DEVICE:
            if (!virtio_device_known(optarg))
                return usage_error("unknown --device '%s' (known: " VIRTIO_DEVICE_NAMES ")",
                                   optarg);
            if (cfg->ndevices >= VM_MAX_DEVICES)
                return usage_error("too many --device options (at most %s)", "16");
            if (vm_config_add_device(cfg, optarg, &e) < 0) {
                fprintf(stderr, "petrel run: %s\n", e.msg);
                return PETREL_EXIT_ERROR;
            }
            break;
        case OPT_DISK:
            if (cfg->ndisks >= VM_MAX_DISKS)
                return usage_error("too many --disk options (at most %s)", "16");
            if (vm_config_set_disk(cfg, -1, optarg, &e) < 0) {
                fprintf(stderr, "petrel run: %s\n", e.msg);
                return PETREL_EXIT_ERROR;
            }
            break;
        case OPT_VNC:
            if (vnc_check_spec(optarg, &e) < 0)
                goto bad;
            ro->vnc = optarg;
            break;
        case OPT_API_SOCK: ro->api_sock = optarg; break;
        case OPT_BOOT: ro->boot = true; break;
        case OPT_ID: ro->id = optarg; break;
        case OPT_CONFIG_FILE: ro->config_file = optarg; break;
        case OPT_NO_API: ro->no_api = true; break;
        case OPT_CONSOLE_SOCK: ro->console_sock = optarg; break;
        case OPT_CONSOLE_LOG: ro->console_log = optarg; break;
        case OPT_LOG_PATH: ro->fc_log_path = optarg; break;
        case OPT_LEVEL: ro->fc_level = optarg; break;
        case OPT_METRICS_PATH: ro->fc_metrics_path = optarg; break;
        case OPT_SHOW_LEVEL: ro->fc_show_level = true; break;
        case OPT_SHOW_LOG_ORIGIN: ro->fc_show_log_origin = true; break;
        case OPT_FC_IGNORED:
            log_debug("ignoring Firecracker's %s", argv[optind - 1]);
            break;
        case OPT_SECCOMP:
            if (sandbox_seccomp_parse(optarg, &ro->seccomp) < 0)
                return usage_error("invalid --seccomp '%s' (on, off or log)", optarg);
            break;
        case OPT_SECCOMP_LEVEL:
            if (strcmp(optarg, "0") && strcmp(optarg, "1") && strcmp(optarg, "2"))
                return usage_error("invalid --seccomp-level '%s' (0, 1 or 2)", optarg);
            ro->seccomp = strcmp(optarg, "0") ? SBX_SECCOMP_ON : SBX_SECCOMP_OFF;
            break;
        case OPT_NO_SECCOMP: ro->seccomp = SBX_SECCOMP_OFF; break;
        case OPT_RESTORE: ro->restore = optarg; break;
        case OPT_PAUSED: ro->paused = true; break;
        case OPT_VERIFY_MEMORY: ro->verify_memory = true; break;
        case OPT_CPU_QUOTA:
            if (cg_parse_quota("--cpu-quota", optarg, &ro->limits.cpu_quota_pct, &e) < 0)
                goto bad;
            break;
        case OPT_CPU_PIN:
            if (cg_parse_cpus("--cpu-pin", optarg, &ro->limits.pin, &e) < 0 ||
                cg_check_cpus("--cpu-pin", &ro->limits.pin, &e) < 0)
                goto bad;
            break;
        case OPT_MEMORY_MAX:
            if (cg_parse_memory("--memory-max", optarg, &ro->limits.memory_max, &e) < 0)
                goto bad;
            break;
        case OPT_IO_MAX:
            if (ro->limits.nio >= CG_MAX_IO)
                return usage_error("too many --io-max options (at most %s)", "16");
            if (cg_parse_io("--io-max", optarg, &ro->limits.io[ro->limits.nio], &e) < 0)
                goto bad;
            ro->limits.nio++;
            break;
        case OPT_PIDS_MAX:
            if (cg_parse_pids("--pids-max", optarg, &ro->limits.pids_max, &e) < 0)
                goto bad;
            break;
        case OPT_JAIL: ro->jail.dir = optarg; break;
        case OPT_UID: ro->jail.uid = optarg; ro->jail_flag = "--uid"; break;
        case OPT_GID: ro->jail.gid = optarg; ro->jail_flag = "--gid"; break;
        case OPT_NETNS: ro->jail.netns = optarg; ro->jail_flag = "--netns"; break;
        case OPT_RLIMIT:
            ro->jail_flag = "--resource-limit";
            if (!strncmp(optarg, "fsize=", 6) && opts_size(optarg + 6, 0, &ull) == 0 && ull)
                ro->jail.fsize = ull;
            else if (!strncmp(optarg, "no-file=", 8) && parse_uint(optarg + 8, 1 << 20, &ul) == 0
                     && ul >= 64)
                ro->jail.nofile = ul;
            else
                return usage_error("invalid --resource-limit '%s' (fsize=BYTES or no-file=N, "
                                   "N from 64 to 1048576)", optarg);
            break;
        case 'v': ro->verbose++; break;
        case 'h': cli_run_usage(); return -1;
        case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (ro->console_log && !ro->console_sock)
        return usage_error("%s", "--console-log needs --console-sock");
    if (ro->boot && !ro->api_sock)
        return usage_error("%s", "--boot goes with --api-sock (without it petrel run boots at once)");
    if (ro->no_api && !ro->config_file)
        return usage_error("%s", "--no-api goes with --config-file");
    if (ro->restore && ro->machine_flag)
        return usage_error("--%s: a restored VM is the machine its snapshot describes (only "
                           "--disk and --device may replace its own)", ro->machine_flag);
    if (ro->restore && (ro->config_file || ro->boot))
        return usage_error("%s", "--restore goes without --config-file and --boot");
    if (ro->jail.dir && ro->limits.nio)
        return usage_error("%s", "--io-max does not go with --jail yet (the jailed VMM sees "
                           "no cgroup file system to write the disks' limits to)");
    if (ro->jail_flag && !ro->jail.dir)
        return usage_error("%s goes with --jail", ro->jail_flag);
    if (ro->jail.gid && !ro->jail.uid)
        return usage_error("%s", "--gid goes with --uid");
    if ((ro->paused || ro->verify_memory) && !ro->restore)
        return usage_error("%s goes with --restore", ro->paused ? "--paused" : "--verify-memory");
    if (ro->limits.nio && ro->api_sock && !ro->boot && !ro->config_file && !ro->restore)
        return usage_error("%s", "--io-max needs the disks at start: give them with --disk "
                           "and --boot, or --config-file");
    return 0;
bad:
    fprintf(stderr, "petrel run: %s\n", e.msg);
    return PETREL_EXIT_ERROR;
}

/* The VM's disk images, for --io-max (after it started or was restored). */
static int limit_io(struct cgroup *cg, const struct cg_limits *l, const struct vm *vm,
                    struct err *e)
{
    const char *paths[VM_MAX_DISKS];
    if (!l->nio)
        return 0;
    if (vm->state == VM_NOT_STARTED)
        return err_set(e, -EINVAL, "--io-max: the VM has not started (its disks are not known)");
    for (unsigned i = 0; i < vm->cfg.ndisks; i++)
        paths[i] = vm->cfg.disks[i].path;
    return cg_set_io(cg, l, paths, vm->cfg.ndisks, e);
}

/* --restore DIR: DIR/state and DIR/memory (or DIR is the state file, the
 * memory file next to it); --disk and --device replace the snapshot's. */
/* --vnc: add what the VNC server shows and feeds (a virtio-gpu, a
 * keyboard, a tablet) unless --device gave them already. */
static int vnc_add_devices(struct vm_config *c, struct err *e)
{
    static const char *const want[] = { "virtio-gpu", "virtio-keyboard", "virtio-tablet" };
    for (unsigned w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        size_t n = strlen(want[w]);
        bool have = false;
        for (unsigned i = 0; i < c->ndevices; i++)
            if (!strncmp(c->devices[i], want[w], n) &&
                (c->devices[i][n] == 0 || c->devices[i][n] == ','))
                have = true;
        if (have)
            continue;
        if (c->ndevices >= VM_MAX_DEVICES)
            return err_set(e, -E2BIG, "--vnc adds a %s, but there are %u --device options "
                           "already (at most %u)", want[w], c->ndevices, VM_MAX_DEVICES);
        if (vm_config_add_device(c, want[w], e) < 0)
            return -1;
    }
    return 0;
}

static int restore(struct vm *vm, const struct run_opts *ro, struct err *e)
{
    char state[4096];
    struct stat st;
    if (stat(ro->restore, &st) < 0)
        return err_set(e, -errno, "--restore %s: %s", ro->restore, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (snprintf(state, sizeof(state), "%s/state", ro->restore) >= (int)sizeof(state))
            return err_set(e, -ENAMETOOLONG, "--restore: path too long");
    } else {
        snprintf(state, sizeof(state), "%s", ro->restore);
    }
    struct vm_restore_params p = { .state_path = state, .paused = ro->paused,
                                   .verify_memory = ro->verify_memory };
    /* the command line's disks and devices were parsed into vm->cfg */
    struct vm_config given = vm->cfg;
    p.ndisks = given.ndisks;
    for (unsigned i = 0; i < given.ndisks; i++)
        p.disks[i] = given.disk_args[i];
    p.ndevices = given.ndevices;
    for (unsigned i = 0; i < given.ndevices; i++)
        p.devices[i] = given.devices[i];
    return vm_restore(vm, &p, e);
}

int cli_run(int argc, char **argv)
{
    struct vm_config cfg = { .mem_size = DEFAULT_MEM, .cpus = 1 };
    struct run_opts ro = { 0 };
    struct err e = { "" };
    int status = PETREL_EXIT_ERROR;
    vm_config_set(&cfg.arch, "riscv64");
    vm_config_set(&cfg.append, DEFAULT_APPEND);
    int ret = parse_args(argc, argv, &cfg, &ro);
    if (ret) {
        vm_config_free(&cfg);
        return ret < 0 ? 0 : ret;
    }
    log_set_verbose(ro.verbose);
    if (sandbox_seccomp_init(ro.seccomp, &e) < 0) {
        fprintf(stderr, "petrel run: %s\n", e.msg);
        vm_config_free(&cfg);
        return PETREL_EXIT_ERROR;
    }
    const struct board_ops *board = vm_board(cfg.arch);
    if (cfg.cpus > board->max_cpus) {
        fprintf(stderr, "petrel run: --cpus %u: %s guests have at most %u\n", cfg.cpus,
                board->arch, board->max_cpus);
        vm_config_free(&cfg);
        return PETREL_EXIT_ERROR;
    }

    /* resource limits: into the VMM's own cgroup before anything is set up
     * (and before any thread or seccomp filter); with --jail the outer
     * process makes it (the jail has no cgroup file system) and the jailed
     * VMM it forks is born in it */
    struct cgroup *cg = NULL;
    if (ro.limits.memory_max && !ro.restore && ro.limits.memory_max < cfg.mem_size)
        fprintf(stderr, "petrel run: warning: --memory-max (%llu MiB) is less than the guest's "
                "RAM (%llu MiB): the VMM is killed if the guest touches more than that\n",
                (unsigned long long)(ro.limits.memory_max >> 20),
                (unsigned long long)(cfg.mem_size >> 20));
    if (cg_create(&ro.limits, &cg, &e) < 0) {
        fprintf(stderr, "petrel run: %s\n", e.msg);
        vm_config_free(&cfg);
        return PETREL_EXIT_ERROR;
    }

    struct jail *jail = NULL;
    if (ro.jail.dir) {
        /* before anything is opened or any thread started: from here on
         * this is the jailed VMM (or the parent waiting for it) */
        struct run_jail rj = { .jc = ro.jail, .config_file = &ro.config_file,
                               .restore = &ro.restore,
                               .api = (ro.api_sock && !ro.no_api),
                               .boot_now = !ro.restore && !ro.config_file &&
                                           (!ro.api_sock || ro.boot) };
        const char **outs[] = { &ro.api_sock, &ro.console_sock, &ro.console_log,
                                &ro.fc_log_path, &ro.fc_metrics_path };
        const char *whats[] = { "--api-sock", "--console-sock", "--console-log", "--log-path",
                                "--metrics-path" };
        for (unsigned i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
            if (*outs[i]) {
                rj.outputs[rj.nout] = outs[i];
                rj.output_what[rj.nout++] = whats[i];
            }
        int st = PETREL_EXIT_ERROR;
        ret = run_jail_enter(&rj, &cfg, &jail, &st, &e);
        if (ret != 0) {
            if (ret < 0)
                fprintf(stderr, "petrel run: %s\n", e.msg);
            vm_config_free(&cfg);
            cg_destroy(cg);     /* the outer process, once the VMM has ended */
            return ret < 0 ? PETREL_EXIT_ERROR : st;
        }
        cg_forget(cg);          /* the jailed VMM: the outer process removes it */
        cg = NULL;
    }

    /* Signals become events of the loop: block them before any thread
     * starts (threads inherit the mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct vm *vm = vm_new(&e);
    if (!vm) {
        fprintf(stderr, "petrel run: %s\n", e.msg);
        vm_config_free(&cfg);
        cg_destroy(cg);
        return PETREL_EXIT_ERROR;
    }
    vm->cfg = cfg;      /* the VM owns the configuration now */
    struct vnc *vnc = NULL;
    vm->pin = ro.limits.pin;
    struct fc_api *api = NULL;
    struct http_server *http = NULL;
    int api_fd = -1;
    bool api_listening = false;     /* we made the socket file: remove it */
    if (vm_signals(vm, &sigs, signal_ready, &e) < 0)
        goto fail;
    if (ro.vnc) {
        if (!ro.restore && vnc_add_devices(&vm->cfg, &e) < 0)
            goto fail;
        if (!(vnc = vnc_new(ro.vnc, vm->loop, &e)))
            goto fail;
        vm->display = vnc_display(vnc);
        fprintf(stderr, "petrel: VNC server on %s%s\n", vnc_address(vnc),
                strncmp(ro.vnc, "unix:", 5) ? "" : " (unix socket)");
    }
    if (ro.console_sock)
        ret = vm_console_server(vm, ro.console_sock, ro.console_log, &e);
    else
        ret = vm_console_stdio(vm, STDIN_FILENO, STDOUT_FILENO, &e);
    if (ret < 0)
        goto fail;
    if (ro.api_sock || ro.config_file) {
        /* the Firecracker model, seeded from the command line */
        if (!(api = fc_api_new(vm, ro.id, &e)))
            goto fail;
        if (fc_api_set_sockets(api, ro.api_sock, ro.console_sock) < 0 ||
            fc_api_set_logger(api, ro.fc_log_path, ro.fc_level, ro.fc_show_level,
                              ro.fc_show_log_origin, &e) < 0 ||
            (ro.fc_metrics_path && fc_api_set_metrics(api, ro.fc_metrics_path, &e) < 0))
            goto fail;
        if (ro.config_file && fc_api_load_config_file(api, ro.config_file, &e) < 0)
            goto fail;
    }
    if (ro.api_sock && !ro.no_api) {
        if ((api_fd = http_listen_unix(ro.api_sock, &e)) < 0)
            goto fail;
        api_listening = true;
    }
    /* A restore starts the guest before the HTTP server is loaded (clients
     * already connecting wait in the socket's backlog): the server's
     * libraries are most of a restore's time from exec otherwise. */
    if (ro.restore && (ret = restore(vm, &ro, &e)) < 0)
        goto fail;
    if (ro.restore && api && (ret = fc_api_reimport(api, &e)) < 0)
        goto fail;      /* the API shows the snapshot's drives and interfaces */
    if (api_fd >= 0) {
        if (!(http = http_server_new(api_fd, vm->loop, fc_api_handle, api, &e)))
            goto fail;
        api_fd = -1;    /* the server owns (and closes) it now */
    }
    if (ro.config_file) {
        if (fc_api_instance_start(api, &e) < 0)
            goto fail;
    } else if (ro.restore) {
        /* restored above */
    } else if (!ro.api_sock || ro.boot) {
        if ((ret = vm_config_defaults(&vm->cfg, &e)) < 0 || (ret = vm_start(vm, &e)) < 0)
            goto fail;
    } else {
        log_info("API on %s: waiting for InstanceStart", ro.api_sock);
    }
    if ((ret = limit_io(cg, &ro.limits, vm, &e)) < 0)
        goto fail;
    /* the VM runs (or waits for the API to start it): the main thread's
     * set-up is done, or will be when the API launches the VM */
    if (vm->state == VM_NOT_STARTED)
        vm->on_launch = enter_vmm_sandbox;
    else
        enter_vmm_sandbox(NULL);
    status = vm_run(vm);
    console_restore(&vm->con);
    if (vm->exit_reason != VM_EXIT_POWEROFF && vm->exit_reason != VM_EXIT_QUIT) {
        if (vm->exit_reason == VM_EXIT_GUEST_FAIL)
            fprintf(stderr, "petrel: %s (code %u)\n", vm_exit_name(vm->exit_reason),
                    vm->exit_code);
        else
            fprintf(stderr, "petrel: %s\n", vm_exit_name(vm->exit_reason));
    }
    goto out;
fail:
    console_restore(&vm->con);
    fprintf(stderr, "petrel run: %s\n", e.msg);
    status = PETREL_EXIT_ERROR;
out:
    vnc_close(vnc);     /* while the loop exists */
    http_server_free(http);
    fc_api_free(api);
    if (api_fd >= 0)
        close(api_fd);
    if (api_listening)
        unlink(ro.api_sock);
    vm_free(vm);
    vnc_free(vnc);      /* after the devices that showed on it */
    cg_destroy(cg);     /* after every thread has ended */
    jail_free(jail);
    return status;
}
