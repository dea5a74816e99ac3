/* `petrel vm revert NAME TAG` and `petrel vm clone NAME NEWNAME [--from
 * TAG]`: NAME itself, or a new VM, continuing from one of NAME's snapshots
 * (vm_snapshot.c has their layout).
 *
 * revert: a running VM is killed (its state is being thrown away); a
 * memory snapshot is restored by a new VMM (`petrel run --restore`, which
 * reverts the disks to the snapshot itself, only once everything else has
 * loaded, so a failed restore changes nothing); a disk-only snapshot is
 * applied to the disks here (the VM's lock held) and the VM boots cold if
 * it was running, else it stays stopped.
 *
 * clone, design
 * - The clone is a VM of its own: its directory (built as
 *   vms/.NEWNAME.creating.PID and renamed into place, as create does), a
 *   copy of NAME's vm.json with the new name, a new random locally
 *   administered MAC on every network card, no fixed ssh port, and its own
 *   config disk (config.img is written at every start with its name).
 * - Disks.  Each writable qcow2 disk N of NAME is exported as it was at TAG
 *   (block/qcow2_export.h) once per snapshot, into
 *   snapshots/TAG/disk-N.qcow2 (read-only, on the same base image: bases
 *   are shared, never flattened); every clone of TAG hard-links that file
 *   into its own directory (diskN-base.qcow2) and gets a new qcow2 overlay
 *   on it (diskN.qcow2, the backing named relatively).  The export is read
 *   from the disk without its lock, also while NAME's VMM writes it: why
 *   that is safe is in qcow2_export.h; snap.lock keeps snapshots of NAME
 *   from being created or deleted meanwhile.  Read-only disks are shared
 *   (same path); raw writable disks make clone fail.
 * - Memory.  For a memory snapshot the clone's directory gets hard links of
 *   its state and memory files (restore/; copies, holes kept, when the
 *   link crosses file systems), and vm.json's "restore_from" names them:
 *   the first `petrel vm start` runs `petrel run --restore` with ALL of the
 *   clone's disks and devices (vmx_start_vm), then drops restore_from and
 *   the links; later starts boot from the disks.  Hard links let clones
 *   share the memory file's page cache and survive the deletion of the
 *   source snapshot (or of NAME).
 * - Without --from: a running NAME gets a full snapshot now
 *   (clone-NEWNAME-TIME, kept in NAME's list); a stopped NAME is copied cold:
 *   each writable qcow2 disk is exported as it is now (with NAME's lock held
 *   so it does not start meanwhile) straight into the clone's diskN.qcow2,
 *   on the same base; the clone boots cold.
 * - Diff snapshots are refused: their memory is only complete with their
 *   parents', which live in NAME's directory.
 *
 * What the guest sees: a clone of a memory snapshot continues the source's
 * processes with the source's host name and the MAC its driver read at boot
 * (the card offers the new MAC; Linux keeps the old one until the driver
 * probes again, i.e. until the guest reboots); the config disk carries the
 * new host name for the next boot.  Nothing tells a running guest it was
 * cloned yet.
 *
 * Threads: none.
 *
 * What can fail: see vm_priv.h. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "block/qcow2.h"
#include "block/qcow2_export.h"
#include "cli/vm_priv.h"

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Copy src to dst keeping holes (a memory file is mostly holes). */
static int copy_sparse(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    struct stat st;
    char *buf = malloc(1 << 20);
    if (in < 0 || fstat(in, &st) < 0 || !buf ||
        (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777)) < 0) {
        rc = vmx_fail("copy %s: %s", in < 0 ? src : dst, strerror(buf ? errno : ENOMEM));
        goto out;
    }
    for (off_t off = 0; off < st.st_size;) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0)
            break;                          /* ENXIO: only a hole is left */
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        for (off_t p = data; p < hole;) {
            size_t n = hole - p < (1 << 20) ? (size_t)(hole - p) : (1 << 20);
            ssize_t got = pread(in, buf, n, p);
            if (got <= 0 || pwrite(out, buf, (size_t)got, p) != got) {
                rc = vmx_fail("copy %s to %s: %s", src, dst, got < 0 ? strerror(errno)
                                                                     : "short read or write");
                goto out;
            }
            p += got;
        }
        off = hole;
    }
    if (ftruncate(out, st.st_size) < 0 || fsync(out) < 0)
        rc = vmx_fail("%s: %s", dst, strerror(errno));
out:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Hard link, or a copy when the two are on different file systems. */
static int link_or_copy(const char *src, const char *dst)
{
    if (link(src, dst) == 0)
        return 0;
    if (errno == EXDEV || errno == EPERM || errno == EMLINK)
        return copy_sparse(src, dst);
    return vmx_fail("link %s %s: %s", src, dst, strerror(errno));
}

/* snapshots/TAG/disk-N.qcow2: disk N (path p) exported at tag, made once. */
static int export_once(const char *name, const char *snapdir, unsigned n, const char *p,
                       const char *tag, char *out, size_t len)
{
    vmx_fmt(out, len, "%s/disk-%u.qcow2", snapdir, n);
    if (vmx_file_exists(out))
        return 0;
    char tmp[PATH_MAX + 256];
    vmx_fmt(tmp, sizeof(tmp), "%s/.disk-%u.qcow2.tmp.%d", snapdir, n, (int)getpid());
    struct qimg_export_stats st;
    struct err e = { "" };
    uint64_t t0 = vmx_now_ms();
    if (qimg_export(p, tag, tmp, QIMG_EXPORT_NO_LOCK, &st, &e) < 0) {
        unlink(tmp);
        return vmx_fail("%s: cannot export disk %u at '%s': %s", name, n, tag, e.msg);
    }
    if (chmod(tmp, 0444) < 0 || rename(tmp, out) < 0) {
        unlink(tmp);
        return vmx_fail("%s: %s", out, strerror(errno));
    }
    vmx_printf("exported %s's disk %u at %s: %.1f MiB of data, %.2f s\n", name, n, tag,
           (double)st.data_bytes / 1048576, (double)(vmx_now_ms() - t0) / 1000);
    return 0;
}

/* A device spec with any mac= replaced by a new random locally
 * administered unicast MAC (network cards only). */
static char *with_new_mac(const char *spec)
{
    if (strncmp(spec, "virtio-net", 10) || (spec[10] && spec[10] != ','))
        return strdup(spec);
    uint8_t m[6];
    if (getrandom(m, sizeof(m), 0) != sizeof(m))
        return NULL;
    m[0] = (uint8_t)((m[0] & 0xfc) | 0x02);
    char *out = malloc(strlen(spec) + 32);
    if (!out)
        return NULL;
    size_t len = 0;
    bool first = true;
    for (const char *p = spec; *p; first = false) {
        size_t k = strcspn(p, ",");
        if (first || strncmp(p, "mac=", 4)) {
            if (!first)
                out[len++] = ',';
            memcpy(out + len, p, k);
            len += k;
        }
        p += k + (p[k] == ',');
    }
    sprintf(out + len, ",mac=%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
            m[5]);
    return out;
}

/* Fill the clone's directory tmp and definition nd (a copy of d). */
static int build_clone(const char *name, const char *dir, const struct vm_def *d,
                       const char *tag, json_t *info, const char *tmp, struct vm_def *nd)
{
    bool which[VM_DEF_MAX_DISKS];
    if (vmx_snap_disks(name, dir, d, which))
        return 1;
    char snapdir[PATH_MAX + 160], p[PATH_MAX + 96], q[PATH_MAX + 200], base[64], disk[64];
    struct err e = { "" };
    if (tag)
        vmx_snap_dir(dir, tag, snapdir, sizeof(snapdir));
    json_t *sdisks = info ? json_object_get(info, "disks") : NULL;
    for (unsigned i = 0; i < d->ndisks; i++) {
        vmx_resolve_in(p, sizeof(p), dir, d->disks[i].path);
        if (!which[i]) {                    /* read-only: shared */
            if (vm_def_set_str(&nd->disks[i].path, p) < 0)
                return vmx_fail("out of memory");
            continue;
        }
        vmx_fmt(disk, sizeof(disk), "disk%u.qcow2", i);
        vmx_fmt(q, sizeof(q), "%s/%s", tmp, disk);
        if (tag) {
            bool in_snap = false;
            for (size_t k = 0; k < json_array_size(sdisks); k++) {
                json_t *o = json_array_get(sdisks, k);
                in_snap |= json_integer_value(json_object_get(o, "index")) == i &&
                           !strcmp(json_string_value(json_object_get(o, "path")), p);
            }
            if (!in_snap)
                return vmx_fail("%s: disk %u (%s) is not in snapshot '%s' (added after it was "
                                "taken?)", name, i, p, tag);
            char exp[PATH_MAX + 200], link_to[PATH_MAX + 96];
            if (export_once(name, snapdir, i, p, tag, exp, sizeof(exp)))
                return 1;
            vmx_fmt(base, sizeof(base), "disk%u-base.qcow2", i);
            vmx_fmt(link_to, sizeof(link_to), "%s/%s", tmp, base);
            if (link_or_copy(exp, link_to))
                return 1;
            struct qimg_create_opts co = { .fmt = "qcow2", .backing = base,
                                           .backing_fmt = "qcow2" };
            if (qimg_create(q, &co, &e) < 0)
                return vmx_fail("%s: %s", q, e.msg);
        } else {
            struct qimg_export_stats st;
            if (qimg_export(p, NULL, q, 0, &st, &e) < 0)
                return vmx_fail("%s: cannot copy disk %u: %s", name, i, e.msg);
            vmx_printf("copied %s's disk %u: %.1f MiB of data\n", name, i,
                   (double)st.data_bytes / 1048576);
        }
        if (vm_def_set_str(&nd->disks[i].path, disk) < 0 ||
            vm_def_set_str(&nd->disks[i].format, "qcow2") < 0)
            return vmx_fail("out of memory");
    }
    for (unsigned i = 0; i < nd->ndevices; i++) {
        char *dev = with_new_mac(nd->devices[i]);
        if (!dev)
            return vmx_fail("out of memory");
        free(nd->devices[i]);
        nd->devices[i] = dev;
    }
    bool memory = info && strcmp(json_string_value(json_object_get(info, "type")), "disk");
    if (memory) {
        vmx_fmt(q, sizeof(q), "%s/restore", tmp);
        if (mkdir(q, 0700) < 0)
            return vmx_fail("%s: %s", q, strerror(errno));
        static const char *const files[] = { "state", "memory" };
        for (unsigned k = 0; k < 2; k++) {
            char from[PATH_MAX + 200], to[PATH_MAX + 220];
            vmx_fmt(from, sizeof(from), "%s/%s", snapdir, files[k]);
            vmx_fmt(to, sizeof(to), "%s/restore/%s", tmp, files[k]);
            if (link_or_copy(from, to))
                return 1;
        }
    }
    char now[32];
    vmx_utc_now(now, sizeof(now));
    nd->autostart = false;
    nd->ssh_port = 0;
    if (vm_def_set_str(&nd->created_utc, now) < 0 ||
        vm_def_set_str(&nd->restore_from, memory ? "restore" : NULL) < 0 ||
        vm_def_set_str(&nd->cloned_from_vm, name) < 0 ||
        vm_def_set_str(&nd->cloned_from_snapshot, tag) < 0)
        return vmx_fail("out of memory");
    vmx_fmt(q, sizeof(q), "%s/" VM_DEF_FILE, tmp);
    if (vm_def_save(nd, q, &e) < 0)
        return vmx_fail("%s", e.msg);
    return 0;
}

int vmx_cmd_clone(struct vmx *x, int argc, char **argv)
{
    static const struct option lo[] = { { "from", required_argument, 0, OPT_FROM },
                                        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *from = NULL;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h')
            return vmx_cmd_help("clone"), 0;
        if (c == OPT_FROM)
            from = optarg;
        else
            return vmx_usage_err("clone", c == ':' ? "option '%s' needs an argument"
                                                   : "unknown option '%s'", argv[optind - 1]);
    }
    if (argc - optind != 2)
        return vmx_usage_err("clone", "%s", "expected a VM name and a new VM name");
    const char *name = argv[optind], *newname = argv[optind + 1];
    if (vmx_check_name("clone", name) || vmx_check_name("clone", newname))
        return 1;
    if (from && !vm_tag_valid(from))
        return vmx_usage_err("clone", "invalid snapshot tag '%s'", from);
    if (!strcmp(name, newname))
        return vmx_usage_err("clone", "%s", "the clone needs a name of its own");
    char dir[PATH_MAX + 80], newdir[PATH_MAX + 80], tmp[PATH_MAX + 96];
    struct vm_def d, nd;
    memset(&nd, 0, sizeof(nd));
    if (vmx_init(x) || vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    vmx_vm_dir(x, newname, newdir, sizeof(newdir));
    int snapfd = -1, lockfd = -1, rc = 1;
    json_t *info = NULL;
    char tag[VM_DEF_MAX_TAG + 1] = "";
    struct vm_rt rt;
    memset(&rt, 0, sizeof(rt));
    tmp[0] = 0;
    if (vmx_file_exists(newdir)) {
        vmx_fail("a VM named '%s' already exists", newname);
        goto out;
    }
    if (vmx_snap_lock(name, dir, &snapfd))
        goto out;
    if (from) {
        vmx_fmt(tag, sizeof(tag), "%s", from);
        if (!(info = vmx_snap_info(name, dir, tag, false)))
            goto out;
        if (!strcmp(json_string_value(json_object_get(info, "type")), "diff")) {
            vmx_fail("'%s' is a diff snapshot: its memory is only whole with its parents' (in "
                     "%s's directory); clone from a full snapshot", tag, name);
            goto out;
        }
    } else {
        vmx_rt_get(dir, &rt, API_TIMEOUT_MS);
        if (rt.st == ST_RUNNING || rt.st == ST_PAUSED) {
            char when[24];
            time_t t = time(NULL);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
            vmx_fmt(tag, sizeof(tag), "clone-%.42s-%s", newname, when);
            if (vmx_snapshot_running(name, dir, &d, &rt, tag, false, false) ||
                !(info = vmx_snap_info(name, dir, tag, false)))
                goto out;
        } else if (rt.st == ST_STARTING) {
            vmx_fail("%s is starting (its API does not answer yet); try again", name);
            goto out;
        } else if (vmx_lock_stopped(name, dir, &lockfd)) {      /* a cold copy */
            goto out;
        }
    }
    json_t *j = vm_def_to_json(&d);
    struct err e = { "" };
    if (!j || vm_def_from_json(&nd, j, "clone", NULL, &e) < 0) {
        json_decref(j);
        vmx_fail("%s", j ? e.msg : "out of memory");
        goto out;
    }
    json_decref(j);
    if (vm_def_set_str(&nd.name, newname) < 0) {
        vmx_fail("out of memory");
        goto out;
    }
    vmx_fmt(tmp, sizeof(tmp), "%s/.%s.creating.%d", x->vms, newname, (int)getpid());
    if (mkdir(tmp, 0700) < 0) {
        vmx_fail("%s: %s", tmp, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    if (build_clone(name, dir, &d, tag[0] ? tag : NULL, info, tmp, &nd))
        goto out;
    if (rename(tmp, newdir) < 0) {
        vmx_fail(errno == EEXIST || errno == ENOTEMPTY ? "a VM named '%s' already exists"
                                                       : "%s: cannot create it", newname);
        goto out;
    }
    tmp[0] = 0;
    if (!tag[0])
        vmx_printf("cloned %s as %s: a cold copy of its disks (on the same base images); 'petrel "
               "vm start %s' boots it\n", name, newname, newname);
    else if (nd.restore_from)
        vmx_printf("cloned %s at snapshot %s as %s; 'petrel vm start %s' continues the snapshot's "
               "guest (new MAC; host name and MAC change in the guest at its next boot)\n",
               name, tag, newname, newname);
    else
        vmx_printf("cloned %s at disk snapshot %s as %s; 'petrel vm start %s' boots it\n", name,
               tag, newname, newname);
    rc = 0;
out:
    if (rc && tmp[0])
        vmx_rm_rf(tmp);
    if (rc && !from && tag[0] && info)
        vmx_eprintf("petrel vm: %s: snapshot %s taken for the clone is kept ('petrel vm "
                "delete-snapshot %s %s' removes it)\n", name, tag, name, tag);
    json_decref(info);
    vmx_rt_free(&rt);
    vm_def_free(&nd);
    vm_def_free(&d);
    if (lockfd >= 0)
        close(lockfd);
    if (snapfd >= 0)
        close(snapfd);
    return rc;
}

/* A clone started from its snapshot: the definition no longer names it
 * (later starts boot from the disk) and the links to the snapshot's files
 * go (the VMM has what it needs mapped or open). */
void vmx_clone_started(const char *name, const char *dir, struct vm_def *d)
{
    char p[PATH_MAX + 96], gone[PATH_MAX + 128];
    struct err e = { "" };
    vmx_resolve_in(p, sizeof(p), dir, d->restore_from);
    free(d->restore_from);
    d->restore_from = NULL;
    vmx_fmt(gone, sizeof(gone), "%s/" VM_DEF_FILE, dir);
    if (vm_def_save(d, gone, &e) < 0) {
        vmx_eprintf("petrel vm: %s: %s\n", name, e.msg);
        return;
    }
    vmx_fmt(gone, sizeof(gone), "%s/.restore.gone.%d", dir, (int)getpid());
    if (rename(p, gone) == 0)
        vmx_rm_rf(gone);
}

/* --- revert ------------------------------------------------------------------- */

int vmx_cmd_revert(struct vmx *x, int argc, char **argv)
{
    bool paused;
    int ni, ti;
    int r = vmx_name_tag_opts("revert", argc, argv, "paused", &paused, true, &ni, &ti);
    if (r < 0)
        return ONE_NAME_RC(r);
    const char *name = argv[ni], *tag = argv[ti];
    char dir[PATH_MAX + 80], snapdir[PATH_MAX + 160];
    if (vmx_check_name("revert", name) || vmx_init(x) ||
        vmx_vm_dir_existing(x, name, dir, sizeof(dir)))
        return 1;
    int snapfd, rc = 1;
    if (vmx_snap_lock(name, dir, &snapfd))
        return 1;
    json_t *info = vmx_snap_info(name, dir, tag, false);
    if (!info) {
        close(snapfd);
        return 1;
    }
    bool disk_only = !strcmp(jstr(info, "type"), "disk");
    struct vm_rt rt;
    vmx_rt_get(dir, &rt, 0);
    bool was_active = vmx_rt_active(&rt);
    if (disk_only && paused) {
        vmx_usage_err("revert", "--paused: '%s' is a disk-only snapshot (the VM boots from its "
                      "disks)", tag);
        goto out;
    }
    /* the running state is being thrown away: no shutdown */
    if (was_active && vmx_kill_vmm(name, dir, &rt))
        goto out;
    vmx_snap_dir(dir, tag, snapdir, sizeof(snapdir));
    if (!disk_only) {
        struct vmx_start_opts o = { .restore = snapdir, .paused = paused, .snap_parent = tag };
        rc = vmx_start_vm(x, name, &o);
        if (rc)
            vmx_eprintf("petrel vm: %s was not reverted to '%s'%s\n", name, tag,
                    was_active ? " and is stopped now" : "");
        else
            vmx_printf("reverted %s to snapshot %s (%s, taken %s)\n", name, tag, jstr(info, "type"),
                   jstr(info, "created_utc") ? jstr(info, "created_utc") : "?");
        goto out;
    }
    int lockfd;
    if (vmx_lock_stopped(name, dir, &lockfd))
        goto out;
    json_t *disks = json_object_get(info, "disks");
    for (size_t i = 0; i < json_array_size(disks); i++) {
        const char *p = jstr(json_array_get(disks, i), "path");
        struct qimg *q = NULL;
        struct err e = { "" };
        int ir = qimg_open_flags(&q, p, "qcow2", QIMG_NO_BACKING, &e);
        if (ir == 0)
            ir = qimg_snapshot_apply(q, tag, &e);
        qimg_close(q);
        if (ir < 0) {
            vmx_fail("%s: cannot revert %s to '%s': %s", name, p, tag, e.msg);
            close(lockfd);
            goto out;
        }
    }
    close(lockfd);
    vmx_printf("reverted %s's disks to snapshot %s (disk-only, taken %s)%s\n", name, tag,
           jstr(info, "created_utc") ? jstr(info, "created_utc") : "?",
           was_active ? "; booting it again" : "; it stays stopped");
    rc = was_active ? vmx_start_vm(x, name, &(struct vmx_start_opts){ 0 }) : 0;
out:
    vmx_rt_free(&rt);
    json_decref(info);
    close(snapfd);
    return rc;
}
