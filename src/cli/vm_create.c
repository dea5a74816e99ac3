/* `petrel vm create` and `petrel vm set`: a new VM's definition and root
 * disk from the command line, and changes to a stopped VM's definition.
 *
 * Design
 * - create builds the VM in a hidden directory (vms/.NAME.creating.PID) and
 *   renames it into place, so a VM directory is always whole.
 * - Files named on the command line are stored by absolute path; the root
 *   disk is blank or a qcow2 overlay on a base image, which is imported
 *   into the state directory's images/ first unless it is already in the
 *   state directory (vm_image.h).
 *
 * Threads: none.
 *
 * What can fail: see vm_priv.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "cli/vm_image.h"
#include "cli/vm_priv.h"
#include "core/opts.h"
#include "core/vm.h"
#include "virtio/virtio_pci.h"

#define DEFAULT_MEMORY_MIB 512u
#define DEFAULT_DISK_SIZE (8ull << 30)
#define MIN_DISK_SIZE (1ull << 20)
#define MAX_DISK_SIZE (64ull << 40)
#define NET_DEFAULT "virtio-net,hostfwd=tcp:127.0.0.1:0-:22"

/* --- options -------------------------------------------------------------- */

/* An absolute, existing path for a file named on the command line. */
static int abs_existing(const char *what, const char *path, char **out)
{
    char *r = realpath(path, NULL);
    if (!r)
        return vmx_fail("%s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (stat(r, &st) < 0 || S_ISDIR(st.st_mode)) {
        free(r);
        return vmx_fail("%s %s: not a file", what, path);
    }
    *out = r;
    return 0;
}

/* --- ssh keys ------------------------------------------------------------- */

/* Read an OpenSSH public key file into *out (ending in a newline). */
static int read_pubkey(const char *path, char **out)
{
    struct file_buf_ {
        char *data;
        size_t len;
    } b = { 0 };
    FILE *f = fopen(path, "re");
    if (!f)
        return vmx_fail("--ssh-key %s: %s", path, strerror(errno));
    b.data = malloc(VM_DEF_MAX_KEYS + 2);
    if (!b.data) {
        fclose(f);
        return vmx_fail("out of memory");
    }
    b.len = fread(b.data, 1, VM_DEF_MAX_KEYS + 1, f);
    fclose(f);
    if (b.len > VM_DEF_MAX_KEYS) {
        free(b.data);
        return vmx_fail("--ssh-key %s: larger than %u bytes; not a public key", path,
                        VM_DEF_MAX_KEYS);
    }
    b.data[b.len] = 0;
    if (strlen(b.data) != b.len || strstr(b.data, "PRIVATE KEY")) {
        free(b.data);
        return vmx_fail("--ssh-key %s: not an OpenSSH public key (a private key? pass the .pub "
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
            vmx_fmt(tmp, sizeof(tmp), "%.*s", (int)(n - i < 63 ? n - i : 63), line + i);
            if (!strstr(tmp, "ssh-") && !strstr(tmp, "ecdsa-sha2-")) {
                free(b.data);
                return vmx_fail("--ssh-key %s: line %u is not an OpenSSH public key", path, lineno);
            }
            keys++;
        }
        line += n + (nl ? 1 : 0);
    }
    if (!keys) {
        free(b.data);
        return vmx_fail("--ssh-key %s: no key in the file", path);
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
        return vm_def_set_str(&d->authorized_keys, "") < 0 ? vmx_fail("out of memory") : 0;
    }
    if (!opt) {
        const char *h = vmx_home_dir();
        for (unsigned i = 0; h && i < VMX_NDEFAULT_KEYS; i++) {
            vmx_fmt(path, sizeof(path), "%s/.ssh/%s", h, vmx_default_keys[i]);
            if (vmx_file_exists(path)) {
                opt = path;
                break;
            }
        }
        if (!opt) {
            if (no_key)
                *no_key = true;
            return vm_def_set_str(&d->authorized_keys, "") < 0 ? vmx_fail("out of memory") : 0;
        }
    }
    char *keys = NULL, *abs;
    if (read_pubkey(opt, &keys))
        return 1;
    if (!(abs = realpath(opt, NULL))) {
        free(keys);
        return vmx_fail("--ssh-key %s: %s", opt, strerror(errno));
    }
    free(d->authorized_keys);
    free(d->ssh_key_file);
    d->authorized_keys = keys;
    d->ssh_key_file = abs;
    return 0;
}

/* --- create --------------------------------------------------------------- */

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

static int parse_cpus(const char *cmd, const char *arg, const char *arch, unsigned *out)
{
    char *end;
    unsigned max = vm_def_max_cpus(arch);
    errno = 0;
    unsigned long v = isdigit((unsigned char)arg[0]) ? strtoul(arg, &end, 10) : 0;
    if (!isdigit((unsigned char)arg[0]) || errno || *end || v < 1 || v > max) {
        vmx_eprintf("petrel vm %s: invalid --cpus '%s' (%s guests have 1..%u)\n", cmd, arg,
                arch, max);
        return 1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_memory(const char *cmd, const char *arg, unsigned *mib)
{
    uint64_t b;
    if (opts_size(arg, 20, &b) < 0 || b % (1u << 20) ||
        b < (uint64_t)VM_DEF_MIN_MEMORY_MIB << 20 || b > (uint64_t)VM_DEF_MAX_MEMORY_MIB << 20) {
        vmx_eprintf("petrel vm %s: invalid --memory '%s' (16M to 64G in whole MiB, e.g. "
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
        return vmx_usage_err(cmd, "invalid --ssh-port '%s' (0..65535; 0: picked at start)", arg);
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
        vmx_eprintf("petrel vm %s: %s '%s': use on or off\n", cmd, opt, arg);
        return 1;
    }
    return 0;
}

#define LIMIT_OPTIONS \
    { "cpu-quota", required_argument, 0, OPT_CPU_QUOTA }, \
    { "cpu-pin", required_argument, 0, OPT_CPU_PIN }, \
    { "memory-max", required_argument, 0, OPT_MEMORY_MAX }, \
    { "io-max", required_argument, 0, OPT_IO_MAX }, \
    { "pids-max", required_argument, 0, OPT_PIDS_MAX }

/* A resource-limit option into l (petrel run's syntax; "none" clears it).
 * -1: opt is not a limit option; 0; 1 (message printed).  The first
 * --io-max of a command replaces the list (*io_seen). */
static int apply_limit(const char *cmd, int opt, const char *a, struct cg_limits *l,
                       bool *io_seen)
{
    struct err e = { "" };
    bool none = !strcmp(a, "none");
    int r = 0;
    switch (opt) {
    case OPT_CPU_QUOTA:
        if (none)
            l->cpu_quota_pct = 0;
        else
            r = cg_parse_quota("--cpu-quota", a, &l->cpu_quota_pct, &e);
        break;
    case OPT_CPU_PIN:
        if (none)
            l->pin.n = 0;
        else if ((r = cg_parse_cpus("--cpu-pin", a, &l->pin, &e)) == 0)
            r = cg_check_cpus("--cpu-pin", &l->pin, &e);
        break;
    case OPT_MEMORY_MAX:
        if (none)
            l->memory_max = 0;
        else if ((r = cg_parse_memory("--memory-max", a, &l->memory_max, &e)) == 0 &&
                 l->memory_max % (1u << 20))
            r = err_set(&e, -EINVAL, "invalid --memory-max '%s' (whole MiB, e.g. 768M)", a);
        break;
    case OPT_PIDS_MAX:
        if (none)
            l->pids_max = 0;
        else
            r = cg_parse_pids("--pids-max", a, &l->pids_max, &e);
        break;
    case OPT_IO_MAX:
        if (!*io_seen)
            l->nio = 0;
        *io_seen = true;
        if (none)
            break;
        if (l->nio >= CG_MAX_IO)
            return vmx_usage_err(cmd, "too many --io-max options (at most %s)", "16");
        if ((r = cg_parse_io("--io-max", a, &l->io[l->nio], &e)) == 0)
            l->nio++;
        break;
    default:
        return -1;
    }
    if (r < 0) {
        vmx_eprintf("petrel vm %s: %s\n", cmd, e.msg);
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
        return vmx_fail("out of memory");
    struct disk_config dc;
    struct err e = { "" };
    if (disk_config_parse(&dc, copy, &e) < 0) {
        free(copy);
        return vmx_fail("%s", e.msg);
    }
    if (!strcmp(dc.serial, VM_DEF_CONFIG_SERIAL)) {
        free(copy);
        return vmx_fail("--disk %s: serial '" VM_DEF_CONFIG_SERIAL "' is reserved for the config "
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
        return vmx_fail("out of memory");
    return 0;
}

/* The file the root disk's overlay names for the base *base (absolute):
 * *base itself when it lies in the state directory (an imported image,
 * another VM's disk), else its copy in images/ (vm_image.h), which
 * replaces *base; *from is then the original. */
static int import_base(const struct vmx *x, const char *arch, char **base, char **from)
{
    char *state = realpath(x->state, NULL);
    size_t n = state ? strlen(state) : 0;
    bool inside = state && !strncmp(*base, state, n) && (*base)[n] == '/';
    free(state);
    if (inside)
        return 0;
    char images[PATH_MAX + 16], *image;
    bool imported;
    struct err e = { "" };
    vmx_fmt(images, sizeof(images), "%s/" VM_IMAGE_DIR, x->state);
    if (vm_image_import(images, arch, *base, &image, &imported, &e) < 0)
        return vmx_fail("cannot import the base image: %s", e.msg);
    if (imported)
        vmx_printf("imported %s as %s\n", *base, image);
    *from = *base;
    *base = image;
    return 0;
}

/* The VM's root disk, dir/disk0.qcow2: an overlay on base (NULL: blank). */
static int make_root_disk(const char *dir, const char *base, uint64_t size, uint64_t *vsize)
{
    char path[PATH_MAX + 16];
    vmx_fmt(path, sizeof(path), "%s/disk0.qcow2", dir);
    struct qimg_create_opts o = { .fmt = "qcow2", .size = size };
    struct err e = { "" };
    if (base) {
        struct qimg *q = NULL;
        if (qimg_open(&q, base, NULL, true, &e) < 0)
            return vmx_fail("--base %s: %s", base, e.msg);
        o.backing_fmt = q->raw ? "raw" : "qcow2";
        if (q->size > o.size)
            o.size = q->size;
        qimg_close(q);
        o.backing = base;
        o.size = (o.size + 511) & ~511ull;
    }
    if (qimg_create(path, &o, &e) < 0)
        return vmx_fail("%s: %s", path, e.msg);
    *vsize = o.size;
    return 0;
}

int vmx_cmd_create(struct vmx *x, int argc, char **argv)
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
        { "no-balloon", no_argument, 0, OPT_NO_BALLOON },
        { "autostart", no_argument, 0, OPT_AUTOSTART },
        { "display", no_argument, 0, OPT_DISPLAY },
        LIMIT_OPTIONS,
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    struct cg_limits limits = { 0 };
    bool io_seen = false;
    const char *arch = "riscv64", *cpus_arg = NULL, *mem_arg = NULL, *kernel = NULL,
               *initrd = NULL, *append = NULL, *firmware = NULL, *base_arg = NULL,
               *key_arg = NULL, *size_arg = NULL;
    const char *disk_args[VM_DEF_MAX_DISKS + 1], *dev_args[VM_DEF_MAX_DEVICES + 1];
    unsigned ndisk_args = 0, ndev_args = 0, ssh_port = 0;
    bool no_net = false, no_balloon = false, autostart = false, display = false;
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
                return vmx_usage_err("create", "too many --disk options (at most %s with the "
                                     "root disk)", "15");
            disk_args[ndisk_args++] = optarg;
            break;
        case OPT_DEVICE:
            if (ndev_args >= VM_DEF_MAX_DEVICES)
                return vmx_usage_err("create", "too many --device options (at most %s)", "16");
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
        case OPT_NO_BALLOON: no_balloon = true; break;
        case OPT_AUTOSTART: autostart = true; break;
        case OPT_DISPLAY: display = true; break;
        case 'h': vmx_cmd_help("create"); return 0;
        case ':': return vmx_usage_err("create", "option '%s' needs an argument", argv[optind - 1]);
        case '?': return vmx_usage_err("create", "unknown option '%s'", argv[optind - 1]);
        default:
            if (apply_limit("create", c, optarg, &limits, &io_seen))
                return 1;
            break;
        }
    }
    if (optind != argc - 1)
        return vmx_usage_err("create", "%s", optind >= argc ? "expected a VM name"
                                                             : "expected one VM name");
    const char *name = argv[optind];
    if (vmx_check_name("create", name))
        return 1;
    if (!vm_def_max_cpus(arch))
        return vmx_usage_err("create", "unknown --arch '%s' (riscv64 or x86_64)", arch);
    char dir[PATH_MAX + 80];
    if (vmx_init(x))
        return 1;
    vmx_vm_dir(x, name, dir, sizeof(dir));
    if (vmx_file_exists(dir))
        return vmx_fail("a VM named '%s' already exists", name);

    struct vm_def d = { 0 };
    int rc = 1;
    char tmpdir[PATH_MAX + 64] = "", guest[PATH_MAX];
    char *base = NULL, *base_from = NULL;
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
        if (opts_size(size_arg, 0, &disk_size) < 0 || disk_size % 512 ||
            (disk_size && disk_size < MIN_DISK_SIZE) || disk_size > MAX_DISK_SIZE) {
            vmx_usage_err("create", "invalid --disk-size '%s' (e.g. 8G; 1M to 64T, a multiple of "
                          "512 bytes; 0 with --base none: no root disk)", size_arg);
            goto out;
        }
        if (!disk_size && !(base_arg && !strcmp(base_arg, "none"))) {
            vmx_usage_err("create", "--disk-size %s: a root disk on a base image needs a size",
                          size_arg);
            goto out;
        }
    }
    /* the root disk's base */
    if (!base_arg) {
        if (vm_guest_dir(arch, guest, sizeof(guest)) < 0) {
            vmx_fail("cannot locate the default guest; pass --base IMAGE or --base none");
            goto out;
        }
        char p[PATH_MAX + 16];
        vmx_fmt(p, sizeof(p), "%s/root.img", guest);
        if (!(base = realpath(p, NULL))) {
            vmx_fail("the default guest's root disk %s: %s (build it with 'make guest', or pass "
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
            vmx_usage_err("create", "too many disks (at most %s with the root disk)", "15");
            goto out;
        }
        if (parse_disk_opt(disk_args[i], &d.disks[d.ndisks]))
            goto out;
        d.ndisks++;
    }
    /* devices: the defaults (unless given explicitly), then --device */
    bool user_rng = false, user_net = false, user_kbd = false, user_balloon = false;
    for (unsigned i = 0; i < ndev_args; i++) {
        if (!virtio_device_known(dev_args[i])) {
            vmx_usage_err("create", "unknown --device '%s' (known: " VIRTIO_DEVICE_NAMES ")",
                          dev_args[i]);
            goto out;
        }
        size_t n = strcspn(dev_args[i], ",");
        user_rng |= n == 10 && !strncmp(dev_args[i], "virtio-rng", n);
        user_net |= n == 10 && !strncmp(dev_args[i], "virtio-net", n);
        user_kbd |= n == 15 && !strncmp(dev_args[i], "virtio-keyboard", n);
        user_balloon |= n == 14 && !strncmp(dev_args[i], "virtio-balloon", n);
    }
    const char *defaults[4];
    unsigned ndefaults = 0;
    if (!user_rng)
        defaults[ndefaults++] = "virtio-rng";
    if (!no_net && !user_net)
        defaults[ndefaults++] = NET_DEFAULT;
    if (!user_kbd && run_help_lists("virtio-keyboard"))
        defaults[ndefaults++] = "virtio-keyboard";
    if (!no_balloon && !user_balloon)
        defaults[ndefaults++] = BALLOON_DEFAULT;
    if (ndefaults + ndev_args > VM_DEF_MAX_DEVICES) {
        vmx_usage_err("create", "too many devices with the defaults (at most %s)", "16");
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
    d.display = display;
    d.limits = limits;
    if (limits.memory_max && limits.memory_max < (uint64_t)d.memory_mib << 20)
        vmx_eprintf("petrel vm: warning: --memory-max is less than the guest's RAM: the VMM "
                "is killed if the guest touches more than that\n");
    bool no_key = false;
    if (apply_ssh_key(&d, key_arg, &no_key))
        goto out;
    char now[32];
    vmx_utc_now(now, sizeof(now));
    if (vm_def_set_str(&d.created_utc, now) < 0)
        goto oom;

    if (base && import_base(x, arch, &base, &base_from))
        goto out;

    /* build it in a hidden directory, then rename it into place */
    vmx_fmt(tmpdir, sizeof(tmpdir), "%s/.%s.creating.%d", x->vms, name, (int)getpid());
    if (mkdir(tmpdir, 0700) < 0) {
        vmx_fail("%s: %s", tmpdir, strerror(errno));
        tmpdir[0] = 0;
        goto out;
    }
    uint64_t vsize = 0;
    if ((base || disk_size) && make_root_disk(tmpdir, base, disk_size, &vsize))
        goto out;
    char file[PATH_MAX + 96];
    struct err e = { "" };
    vmx_fmt(file, sizeof(file), "%s/" VM_DEF_FILE, tmpdir);
    if (vm_def_save(&d, file, &e) < 0) {
        vmx_fail("%s", e.msg);
        goto out;
    }
    vmx_fmt(file, sizeof(file), "%s/lock", tmpdir);
    int lfd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (lfd >= 0)
        close(lfd);
    if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, dir, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            vmx_fail("a VM named '%s' already exists", name);
        else
            vmx_fail("%s: rename to %s: %s", tmpdir, dir, strerror(errno));
        goto out;
    }
    tmpdir[0] = 0;
    char mem[32], sz[32];
    vmx_fmt_mib(mem, sizeof(mem), d.memory_mib);
    vmx_fmt_bytes(sz, sizeof(sz), vsize);
    vmx_printf("created %s: %s, %u vCPU%s, %s", name, arch, d.vcpus, d.vcpus == 1 ? "" : "s", mem);
    if (base)
        vmx_printf(", disk0 %s on %s", sz, base);
    else if (vsize)
        vmx_printf(", disk0 %s (blank)", sz);
    if (d.ssh_key_file)
        vmx_printf(", ssh key %s", d.ssh_key_file);
    vmx_printf("\n");
    if (no_key)
        vmx_eprintf("petrel vm: warning: no ssh key (~/.ssh/id_ed25519.pub, id_ecdsa.pub, "
                "id_rsa.pub): 'petrel vm ssh' cannot log in; add one with 'petrel vm set %s "
                "--ssh-key FILE'\n", name);
    rc = 0;
    goto out;
oom:
    vmx_fail("out of memory");
out:
    if (tmpdir[0])
        vmx_rm_rf(tmpdir);
    free(base);
    free(base_from);
    vm_def_free(&d);
    return rc;
}

/* --- set ------------------------------------------------------------------ */

int vmx_cmd_set(struct vmx *x, int argc, char **argv)
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
        { "display", required_argument, 0, OPT_DISPLAY },
        LIMIT_OPTIONS,
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
            return vmx_cmd_help("set"), 0;
        if (c == ':')
            return vmx_usage_err("set", "option '%s' needs an argument", argv[optind - 1]);
        if (c == '?')
            return vmx_usage_err("set", "unknown option '%s'", argv[optind - 1]);
        if (nops >= sizeof(ops) / sizeof(ops[0]))
            return vmx_usage_err("set", "%s", "too many options");
        ops[nops].opt = c;
        ops[nops++].arg = optarg;
    }
    if (optind != argc - 1)
        return vmx_usage_err("set", "%s", "expected a VM name");
    if (!nops)
        return vmx_usage_err("set", "%s", "nothing to change");
    const char *name = argv[optind];
    if (vmx_check_name("set", name) || vmx_init(x))
        return 1;
    char dir[PATH_MAX + 80], file[PATH_MAX + 96];
    struct vm_def d;
    if (vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    int fd = -1, rc = 1;
    if (vmx_lock_stopped(name, dir, &fd))
        goto out;
    bool io_seen = false;
    for (unsigned i = 0; i < nops; i++) {
        const char *a = ops[i].arg;
        char *abs = NULL;
        bool b;
        int lr = apply_limit("set", ops[i].opt, a, &d.limits, &io_seen);
        if (lr > 0)
            goto out;
        if (lr == 0)
            continue;
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
        case OPT_DISPLAY:
            if (parse_onoff("set", "--display", a, &b))
                goto out;
            d.display = b;
            break;
        }
    }
    struct err e = { "" };
    vmx_fmt(file, sizeof(file), "%s/" VM_DEF_FILE, dir);
    if (vm_def_save(&d, file, &e) < 0) {
        vmx_fail("%s", e.msg);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    vmx_fail("out of memory");
out:
    if (fd >= 0)
        close(fd);
    vm_def_free(&d);
    return rc;
}
