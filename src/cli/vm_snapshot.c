/* `petrel vm snapshot`, `snapshots` and `delete-snapshot`: a VM's snapshots,
 * kept in its directory.  revert and clone, which start from them, are in
 * vm_clone.c; docs/snapshots.md has the whole feature, whose VMM side is
 * `PUT /snapshot/create` and `petrel run --restore`.
 *
 * Layout
 *   vms/NAME/snapshots/TAG/info.json   what the snapshot is (below); written
 *                                      last: a directory without it is an
 *                                      incomplete snapshot (a crash while it
 *                                      was taken), listed as such, removable
 *                                      with delete-snapshot, never restored
 *   vms/NAME/snapshots/TAG/state, memory   memory snapshots: the VMM's files
 *   vms/NAME/snapshots/TAG/disk-N.qcow2    exports of disk N at TAG (clones'
 *                                      bases, vm_clone.c), read-only
 *   vms/NAME/snap.lock                 flock()ed by every command here, by
 *                                      revert, clone and delete: one
 *                                      snapshot change at a time
 * and in each writable qcow2 disk an internal snapshot named TAG (the disks
 * as they were at that instant; raw writable disks make snapshots fail).
 *
 * info.json: {"format": "petrel-snapshot", "version": 1, "vm", "tag",
 * "type": "full"|"diff"|"disk", "parent": TAG|null (diff: the snapshot it
 * holds the changes since), "created_utc", "created_ns", "vm_state":
 * "running"|"paused"|"stopped", "duration_ms", "paused_ms", "memory_mib",
 * "disks": [{"index", "path"}] (the disks holding internal snapshot TAG)}.
 *
 * Design
 * - A running (or paused) VM: pause through its API, PUT /snapshot/create
 *   (the VMM writes state and memory and takes the disks' internal
 *   snapshots), resume if it was running.  A stopped VM: a disk-only
 *   snapshot (type "disk"), taken here with the VM's lock held.
 * - Diff snapshots are relative to the snapshot last taken or reverted to
 *   by the running VMM; run.json's "snapshot_parent" remembers its tag (the
 *   VMM knows it by path only).
 * - Deleting a snapshot removes its disks' internal snapshots, which only
 *   the process holding the disks may do: while the VM runs, the VMM holds
 *   them (exclusive lock) and has no API for it yet, so delete-snapshot of a
 *   snapshot with disk state asks to stop the VM first.
 *
 * Threads: none.
 *
 * What can fail: see vm_priv.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "block/qcow2.h"
#include "cli/vm_client.h"
#include "cli/vm_priv.h"

#define SNAP_API_TIMEOUT_MS 600000      /* writing a large guest's memory takes a while */
#define SNAP_LOCK_WAIT_MS 60000

/* --- shared ------------------------------------------------------------------ */

void vmx_snap_dir(const char *dir, const char *tag, char *buf, size_t len)
{
    vmx_fmt(buf, len, "%s/snapshots/%s", dir, tag);
}

int vmx_snap_lock(const char *name, const char *dir, int *fdp)
{
    char p[PATH_MAX + 16];
    vmx_fmt(p, sizeof(p), "%s/snap.lock", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return vmx_fail("%s: %s", p, strerror(errno));
    uint64_t deadline = vmx_now_ms() + SNAP_LOCK_WAIT_MS;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK || vmx_now_ms() > deadline) {
            int err = errno;
            close(fd);
            return err == EWOULDBLOCK
                ? vmx_fail("%s: another snapshot, revert or clone of it is still running "
                           "(%s is locked); try again", name, p)
                : vmx_fail("%s: %s", p, strerror(err));
        }
        vmx_sleep_ms(50);
    }
    *fdp = fd;
    return 0;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_t *vmx_snap_info(const char *name, const char *dir, const char *tag, bool quiet)
{
    char p[PATH_MAX + 160];
    vmx_snap_dir(dir, tag, p, sizeof(p));
    struct stat st;
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
        if (!quiet)
            vmx_fail("%s has no snapshot named '%s' ('petrel vm snapshots %s' lists them)",
                     name, tag, name);
        return NULL;
    }
    vmx_fmt(p + strlen(p), sizeof(p) - strlen(p), "/info.json");
    json_error_t je;
    json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
    const char *type = j ? jstr(j, "type") : NULL;
    json_t *disks = j ? json_object_get(j, "disks") : NULL;
    bool ok = json_is_object(j) && jstr(j, "format") && !strcmp(jstr(j, "format"),
                                                                "petrel-snapshot") &&
              json_integer_value(json_object_get(j, "version")) == VMX_SNAP_INFO_VERSION &&
              jstr(j, "tag") && !strcmp(jstr(j, "tag"), tag) && type &&
              (!strcmp(type, "full") || !strcmp(type, "diff") || !strcmp(type, "disk")) &&
              json_is_array(disks);
    for (size_t i = 0; ok && i < json_array_size(disks); i++)
        ok = jstr(json_array_get(disks, i), "path") != NULL;
    if (ok)
        return j;
    json_decref(j);
    if (!quiet) {
        if (!vmx_file_exists(p))
            vmx_fail("snapshot '%s' of %s is incomplete (no info.json: it was being taken when "
                     "something failed); 'petrel vm delete-snapshot %s %s' removes it", tag,
                     name, name, tag);
        else
            vmx_fail("%s: not a valid snapshot description", p);
    }
    return NULL;
}

static long long created_ns(const char *dir, const char *tag)
{
    json_t *j = vmx_snap_info("", dir, tag, true);
    long long ns = j ? (long long)json_integer_value(json_object_get(j, "created_ns")) : 0;
    json_decref(j);
    return j ? ns : (long long)(~0ull >> 1);      /* incomplete ones last */
}

int vmx_snap_list(const char *dir, struct strv *tags)
{
    char p[PATH_MAX + 16];
    vmx_fmt(p, sizeof(p), "%s/snapshots", dir);
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? 0 : vmx_fail("%s: %s", p, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        char sd[PATH_MAX + 96];
        struct stat st;
        vmx_fmt(sd, sizeof(sd), "%s/%s", p, de->d_name);
        if (!vm_tag_valid(de->d_name) || stat(sd, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (vmx_strv_add(tags, de->d_name) < 0) {
            closedir(d);
            return vmx_fail("out of memory");
        }
    }
    closedir(d);
    /* oldest first (insertion sort: a VM has few snapshots) */
    long long *key = calloc((size_t)tags->n + 1, sizeof(*key));
    if (!key)
        return vmx_fail("out of memory");
    for (int i = 0; i < tags->n; i++)
        key[i] = created_ns(dir, tags->v[i]);
    for (int i = 1; i < tags->n; i++)
        for (int j = i; j > 0 && (key[j - 1] > key[j] ||
                                  (key[j - 1] == key[j] &&
                                   strcmp(tags->v[j - 1], tags->v[j]) > 0)); j--) {
            long long k = key[j];
            char *t = tags->v[j];
            key[j] = key[j - 1];
            tags->v[j] = tags->v[j - 1];
            key[j - 1] = k;
            tags->v[j - 1] = t;
        }
    free(key);
    return 0;
}

int vmx_snap_disks(const char *name, const char *dir, const struct vm_def *d, bool which[])
{
    for (unsigned i = 0; i < d->ndisks; i++) {
        which[i] = false;
        if (d->disks[i].readonly)
            continue;
        char p[PATH_MAX + 96];
        vmx_resolve_in(p, sizeof(p), dir, d->disks[i].path);
        const char *fmt = d->disks[i].format;
        struct err e = { "" };
        int r = fmt ? !strcmp(fmt, "qcow2") : qimg_probe(p, &e);
        if (r < 0)
            return vmx_fail("%s: disk %u: %s", name, i, e.msg);
        if (!r)
            return vmx_fail("%s: disk %u (%s) is raw and writable: snapshots need qcow2 disks "
                            "(convert it with 'petrel img convert -O qcow2')", name, i, p);
        which[i] = true;
    }
    return 0;
}

/* 12.3M, 4.0K, 512 bytes */
static void human(char *buf, size_t len, unsigned long long b)
{
    if (b < 1024)
        vmx_fmt(buf, len, "%llu bytes", b);
    else if (b < (1ull << 20))
        vmx_fmt(buf, len, "%.1fK", b / 1024.0);
    else if (b < (1ull << 30))
        vmx_fmt(buf, len, "%.1fM", b / 1048576.0);
    else
        vmx_fmt(buf, len, "%.2fG", b / 1073741824.0);
}

static unsigned long long allocated(const char *snapdir, const char *file)
{
    char p[PATH_MAX + 200];
    struct stat st;
    vmx_fmt(p, sizeof(p), "%s/%s", snapdir, file);
    return stat(p, &st) == 0 ? (unsigned long long)st.st_blocks * 512 : 0;
}

/* Write info.json into the snapshot's directory. */
static int write_info(const char *name, const char *snapdir, const char *tag, const char *type,
                      const char *parent, const char *vm_state, uint64_t t_ns,
                      uint64_t duration_ms, uint64_t paused_ms, const struct vm_def *d,
                      const char *dir, const bool which[])
{
    char created[32], p[PATH_MAX + 200];
    time_t t = (time_t)(t_ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *disks = json_array();
    for (unsigned i = 0; disks && i < d->ndisks; i++) {
        if (!which[i])
            continue;
        vmx_resolve_in(p, sizeof(p), dir, d->disks[i].path);
        json_array_append_new(disks, json_pack("{s:i, s:s}", "index", (int)i, "path", p));
    }
    json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:I, s:I, s:i, s:o}",
                          "format", "petrel-snapshot", "version", VMX_SNAP_INFO_VERSION,
                          "vm", name, "tag", tag, "type", type,
                          "parent", parent ? json_string(parent) : json_null(),
                          "created_utc", created, "created_ns", (json_int_t)t_ns,
                          "vm_state", vm_state, "duration_ms", (json_int_t)duration_ms,
                          "paused_ms", (json_int_t)paused_ms, "memory_mib", (int)d->memory_mib,
                          "disks", disks);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return vmx_fail("out of memory");
    struct err e = { "" };
    vmx_fmt(p, sizeof(p), "%s/info.json", snapdir);
    int r = vm_write_file_atomic(p, text, strlen(text), 0600, &e);
    free(text);
    return r < 0 ? vmx_fail("%s: %s", name, e.msg) : 0;
}

/* mkdir snapshots/ and snapshots/TAG (claims the tag). */
static int make_snap_dir(const char *name, const char *dir, const char *tag, char *snapdir,
                         size_t len)
{
    char p[PATH_MAX + 16];
    vmx_fmt(p, sizeof(p), "%s/snapshots", dir);
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return vmx_fail("%s: %s", p, strerror(errno));
    vmx_snap_dir(dir, tag, snapdir, len);
    if (mkdir(snapdir, 0700) < 0)
        return errno == EEXIST ? vmx_fail("%s already has a snapshot named '%s'", name, tag)
                               : vmx_fail("%s: %s", snapdir, strerror(errno));
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- snapshot ----------------------------------------------------------------- */

static int patch_state(const char *api, const char *state, struct err *e)
{
    json_t *body = json_pack("{s:s}", "state", state);
    int r = vm_client_call(api, "PATCH", "/vm", body, API_TIMEOUT_MS, e);
    json_decref(body);
    return r;
}

int vmx_snapshot_running(const char *name, const char *dir, const struct vm_def *d,
                         const struct vm_rt *rt, const char *tag, bool diff, bool quiet)
{
    bool which[VM_DEF_MAX_DISKS];
    if (vmx_snap_disks(name, dir, d, which))
        return 1;
    const char *parent = NULL;
    if (diff) {
        parent = rt->run ? jstr(rt->run, "snapshot_parent") : NULL;
        json_t *pi = parent ? vmx_snap_info(name, dir, parent, true) : NULL;
        bool ok = pi && strcmp(jstr(pi, "type"), "disk");
        json_decref(pi);
        if (!ok)
            return vmx_fail("--diff: %s has no snapshot to be relative to (a diff snapshot holds "
                            "what changed since the snapshot its VMM last took or was reverted "
                            "to%s%s%s); take a full snapshot first", name,
                            parent ? ", '" : "", parent ? parent : "",
                            parent ? "', is gone" : ", and there is none");
    }
    char snapdir[PATH_MAX + 96], state[PATH_MAX + 128], mem[PATH_MAX + 128];
    if (make_snap_dir(name, dir, tag, snapdir, sizeof(snapdir)))
        return 1;
    vmx_fmt(state, sizeof(state), "%s/state", snapdir);
    vmx_fmt(mem, sizeof(mem), "%s/memory", snapdir);
    bool was_running = rt->st == ST_RUNNING;
    struct err e = { "" };
    uint64_t t0 = vmx_now_ms(), created = now_ns();
    int rc = 0;
    if (was_running && patch_state(rt->api, "Paused", &e) < 0) {
        vmx_rm_rf(snapdir);
        return vmx_fail("%s: cannot pause it for the snapshot: %s", name, e.msg);
    }
    uint64_t t_paused = vmx_now_ms();
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "snapshot_type", diff ? "Diff" : "Full",
                             "snapshot_path", state, "mem_file_path", mem, "tag", tag);
    if (vm_client_call(rt->api, "PUT", "/snapshot/create", body, SNAP_API_TIMEOUT_MS, &e) < 0)
        rc = vmx_fail("%s: the snapshot failed: %s", name, e.msg);
    json_decref(body);
    uint64_t t_resumed = vmx_now_ms();
    if (was_running && patch_state(rt->api, "Resumed", &e) < 0)
        vmx_eprintf("petrel vm: %s: cannot resume it after the snapshot: %s ('petrel vm "
                "resume %s' tries again)\n", name, e.msg, name);
    uint64_t t1 = vmx_now_ms();
    if (rc) {
        vmx_rm_rf(snapdir);
        return rc;
    }
    if (write_info(name, snapdir, tag, diff ? "diff" : "full", parent,
                   was_running ? "running" : "paused", created, t1 - t0,
                   was_running ? t_resumed - t_paused : 0, d, dir, which))
        return 1;
    /* later diff snapshots of this run are relative to this one */
    json_t *run = rt->run ? json_deep_copy(rt->run) : NULL;
    if (run && json_object_set_new(run, "snapshot_parent", json_string(tag)) == 0)
        vmx_write_run_json(dir, run);
    json_decref(run);
    if (!quiet) {
        char a[32], b[32], s[32];
        struct stat st;
        human(a, sizeof(a), allocated(snapdir, "memory"));
        human(b, sizeof(b), stat(mem, &st) == 0 ? (unsigned long long)st.st_size : 0);
        human(s, sizeof(s), allocated(snapdir, "state"));
        vmx_printf("snapshot %s of %s: %s, %.2f s", tag, name, diff ? "diff" : "full",
               (double)(t1 - t0) / 1000);
        if (was_running)
            vmx_printf(" (guest paused %.2f s)", (double)(t_resumed - t_paused) / 1000);
        vmx_printf("; memory file %s allocated (of %s), state %s\n", a, b, s);
    }
    return 0;
}

/* A stopped VM: internal snapshot tag in each writable qcow2 disk. */
static int snapshot_stopped(const char *name, const char *dir, const struct vm_def *d,
                            const char *tag)
{
    bool which[VM_DEF_MAX_DISKS];
    unsigned n = 0;
    if (vmx_snap_disks(name, dir, d, which))
        return 1;
    for (unsigned i = 0; i < d->ndisks; i++)
        n += which[i];
    if (!n)
        return vmx_fail("%s is stopped and has no writable qcow2 disk: a disk-only snapshot "
                        "would hold nothing (start it for a memory snapshot)", name);
    int lockfd, rc = 1;
    if (vmx_lock_stopped(name, dir, &lockfd))
        return 1;
    struct qimg *q[VM_DEF_MAX_DISKS] = { 0 };
    bool done[VM_DEF_MAX_DISKS] = { 0 };
    char snapdir[PATH_MAX + 96] = "", p[PATH_MAX + 96];
    struct err e = { "" };
    uint64_t t0 = vmx_now_ms(), created = now_ns();
    for (unsigned i = 0; i < d->ndisks; i++) {
        if (!which[i])
            continue;
        vmx_resolve_in(p, sizeof(p), dir, d->disks[i].path);
        struct qimg_snapshot *s = NULL;
        if (qimg_open_flags(&q[i], p, "qcow2", QIMG_NO_BACKING, &e) < 0 ||
            qimg_snapshots_read(q[i], &s, &e) < 0) {
            vmx_fail("%s: disk %u: %s", name, i, e.msg);
            goto out;
        }
        int k = qimg_snapshot_find(s, q[i]->nb_snapshots, tag);
        qimg_snapshots_free(s, q[i]->nb_snapshots);
        if (k >= 0) {
            vmx_fail("%s: disk %u (%s) already has an internal snapshot named '%s' ('petrel img "
                     "snapshot -d %s %s' removes it)", name, i, p, tag, tag, p);
            goto out;
        }
    }
    if (make_snap_dir(name, dir, tag, snapdir, sizeof(snapdir))) {
        snapdir[0] = 0;
        goto out;
    }
    for (unsigned i = 0; i < d->ndisks; i++) {
        if (!which[i])
            continue;
        if (qimg_snapshot_create(q[i], tag, &e) < 0) {
            vmx_fail("%s: disk %u: %s", name, i, e.msg);
            goto out;
        }
        done[i] = true;
    }
    rc = write_info(name, snapdir, tag, "disk", NULL, "stopped", created, vmx_now_ms() - t0, 0,
                    d, dir, which);
    if (!rc)
        vmx_printf("snapshot %s of %s: disk-only (the VM is stopped), %u disk%s, %.2f s\n", tag,
               name, n, n == 1 ? "" : "s", (double)(vmx_now_ms() - t0) / 1000);
out:
    for (unsigned i = 0; i < d->ndisks; i++) {
        if (rc && done[i])
            qimg_snapshot_delete(q[i], tag, &e);
        qimg_close(q[i]);
    }
    if (rc && snapdir[0])
        vmx_rm_rf(snapdir);
    close(lockfd);
    return rc;
}

int vmx_name_tag_opts(const char *cmd, int argc, char **argv, const char *flag, bool *on,
                         bool tag_required, int *ni, int *ti)
{
    static int dummy;
    const struct option lo[] = { { "help", no_argument, 0, 'h' },
                                 { flag, no_argument, &dummy, 1 }, { 0, 0, 0, 0 } };
    int c;
    *on = false;
    dummy = 0;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h')
            return vmx_cmd_help(cmd), -1;
        if (c != 0)
            return vmx_usage_err(cmd, "unknown option '%s'", argv[optind - 1]), -2;
    }
    *on = dummy;
    int left = argc - optind;
    if (left < 1)
        return vmx_usage_err(cmd, "%s", "expected a VM name"), -2;
    if (left > 2 || (tag_required && left != 2))
        return vmx_usage_err(cmd, "%s", tag_required ? "expected a VM name and a snapshot tag"
                                                     : "expected a VM name and at most one tag"),
               -2;
    *ni = optind;
    *ti = left == 2 ? optind + 1 : -1;
    if (*ti >= 0 && !vm_tag_valid(argv[*ti])) {
        vmx_eprintf("petrel vm %s: invalid snapshot tag '%s' (1 to %d characters: letters, "
                "digits, '.', '_', '-'; not starting with '.' or '-')\n", cmd, argv[*ti],
                VM_DEF_MAX_TAG);
        return -2;
    }
    return 0;
}

int vmx_cmd_snapshot(struct vmx *x, int argc, char **argv)
{
    bool diff;
    int ni, ti;
    int r = vmx_name_tag_opts("snapshot", argc, argv, "diff", &diff, false, &ni, &ti);
    if (r < 0)
        return ONE_NAME_RC(r);
    const char *name = argv[ni];
    char dir[PATH_MAX + 80], tag[VM_DEF_MAX_TAG + 1];
    struct vm_def d;
    if (vmx_check_name("snapshot", name) || vmx_init(x) ||
        vmx_load_vm(x, name, dir, sizeof(dir), &d))
        return 1;
    int snapfd, rc = 1;
    if (vmx_snap_lock(name, dir, &snapfd)) {
        vm_def_free(&d);
        return 1;
    }
    if (ti >= 0) {
        vmx_fmt(tag, sizeof(tag), "%s", argv[ti]);
    } else {
        /* snap-YYYYmmdd-HHMMSS (UTC), -2, -3... if taken within one second */
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(tag, sizeof(tag), "snap-%Y%m%d-%H%M%S", &tm);
        char p[PATH_MAX + 160];
        size_t len = strlen(tag);
        for (int k = 2;; k++) {
            vmx_snap_dir(dir, tag, p, sizeof(p));
            if (!vmx_file_exists(p))
                break;
            vmx_fmt(tag + len, sizeof(tag) - len, "-%d", k);
        }
    }
    struct vm_rt rt;
    char p[PATH_MAX + 160];
    vmx_snap_dir(dir, tag, p, sizeof(p));
    vmx_rt_get(dir, &rt, API_TIMEOUT_MS);
    if (vmx_file_exists(p))
        rc = vmx_fail("%s already has a snapshot named '%s'", name, tag);
    else if (rt.st == ST_RUNNING || rt.st == ST_PAUSED)
        rc = vmx_snapshot_running(name, dir, &d, &rt, tag, diff, false);
    else if (rt.st == ST_STARTING)
        rc = vmx_fail("%s is starting (its API does not answer yet); try again", name);
    else if (diff)
        rc = vmx_fail("--diff: %s is not running (a stopped VM's snapshot is disk-only)", name);
    else
        rc = snapshot_stopped(name, dir, &d, tag);
    vmx_rt_free(&rt);
    close(snapfd);
    vm_def_free(&d);
    return rc;
}

/* --- snapshots ---------------------------------------------------------------- */

int vmx_cmd_snapshots(struct vmx *x, int argc, char **argv)
{
    bool as_json;
    int i = vmx_flag_opt("snapshots", argc, argv, "json", 0, &as_json);
    if (i < 0)
        return ONE_NAME_RC(i);
    char dir[PATH_MAX + 80];
    if (vmx_named_vm(x, "snapshots", argc, argv, i, dir, sizeof(dir), NULL, 0))
        return 1;
    struct strv tags = { 0 };
    if (vmx_snap_list(dir, &tags))
        return 1;
    enum { COLS = 5 };
    char (*cells)[COLS][96] = calloc((size_t)tags.n + 1, sizeof(*cells));
    json_t *arr = json_array();
    if (!cells || !arr) {
        free(cells);
        json_decref(arr);
        vmx_strv_free(&tags);
        return vmx_fail("out of memory");
    }
    static const char *const head[COLS] = { "TAG", "CREATED", "TYPE", "SIZE", "PARENT" };
    for (int c = 0; c < COLS; c++)
        vmx_fmt(cells[0][c], 96, "%s", head[c]);
    for (int k = 0; k < tags.n; k++) {
        char snapdir[PATH_MAX + 160];
        vmx_snap_dir(dir, tags.v[k], snapdir, sizeof(snapdir));
        json_t *info = vmx_snap_info(argv[i], dir, tags.v[k], true);
        unsigned long long st = allocated(snapdir, "state"), mem = allocated(snapdir, "memory");
        unsigned long long exports = 0;
        DIR *dd = opendir(snapdir);
        struct dirent *de;
        while (dd && (de = readdir(dd)))
            if (!strncmp(de->d_name, "disk-", 5))
                exports += allocated(snapdir, de->d_name);
        if (dd)
            closedir(dd);
        const char *type = info ? jstr(info, "type") : "incomplete";
        const char *parent = info ? jstr(info, "parent") : NULL;
        char (*row)[96] = cells[k + 1];
        vmx_fmt(row[0], 96, "%s", tags.v[k]);
        vmx_fmt(row[1], 96, "%s", info && jstr(info, "created_utc") ? jstr(info, "created_utc")
                                                                    : "-");
        vmx_fmt(row[2], 96, "%s", type);
        if (st + mem)
            human(row[3], 96, st + mem);
        else
            vmx_fmt(row[3], 96, "-");
        vmx_fmt(row[4], 96, "%s", parent ? parent : "-");
        json_t *o = json_pack("{s:s, s:o, s:s, s:o, s:I, s:I, s:I, s:I, s:b}", "tag", tags.v[k],
                              "created_utc", info ? json_incref(json_object_get(info,
                                                                               "created_utc"))
                                                  : json_null(),
                              "type", type, "parent", parent ? json_string(parent) : json_null(),
                              "size_bytes", (json_int_t)(st + mem), "state_bytes",
                              (json_int_t)st, "memory_bytes", (json_int_t)mem,
                              "exports_bytes", (json_int_t)exports, "complete", info != NULL);
        if (o && info) {
            json_object_set(o, "vm_state", json_object_get(info, "vm_state"));
            json_object_set(o, "duration_ms", json_object_get(info, "duration_ms"));
            json_object_set(o, "disks", json_object_get(info, "disks"));
        }
        if (o)
            json_array_append_new(arr, o);
        json_decref(info);
    }
    vmx_print_listing(arr, as_json, (const char *)cells, sizeof(cells[0][0]), COLS, tags.n + 1);
    json_decref(arr);
    free(cells);
    vmx_strv_free(&tags);
    return 0;
}

/* --- delete-snapshot ---------------------------------------------------------- */

int vmx_snap_disks_delete(const char *name, const char *dir, json_t *info, bool outside_only)
{
    json_t *disks = json_object_get(info, "disks");
    const char *tag = jstr(info, "tag");
    size_t n = strlen(dir);
    int rc = 0;
    for (size_t i = 0; i < json_array_size(disks); i++) {
        const char *p = jstr(json_array_get(disks, i), "path");
        if (outside_only && !strncmp(p, dir, n) && p[n] == '/')
            continue;
        struct qimg *q = NULL;
        struct qimg_snapshot *s = NULL;
        struct err e = { "" };
        if (!vmx_file_exists(p)) {
            vmx_eprintf("petrel vm: %s: %s is gone; nothing to remove there\n", name, p);
            continue;
        }
        int r = qimg_open_flags(&q, p, "qcow2", QIMG_NO_BACKING, &e);
        if (r == 0 && (r = qimg_snapshots_read(q, &s, &e)) == 0) {
            bool has = qimg_snapshot_find(s, q->nb_snapshots, tag) >= 0;
            qimg_snapshots_free(s, q->nb_snapshots);
            if (has)
                r = qimg_snapshot_delete(q, tag, &e);
        }
        qimg_close(q);
        if (r < 0)
            rc = vmx_fail("%s: cannot remove internal snapshot '%s' from %s: %s", name, tag, p,
                          e.msg);
    }
    return rc;
}

int vmx_cmd_delete_snapshot(struct vmx *x, int argc, char **argv)
{
    bool unused;
    int ni, ti;
    int r = vmx_name_tag_opts("delete-snapshot", argc, argv, NULL, &unused, true, &ni, &ti);
    if (r < 0)
        return ONE_NAME_RC(r);
    const char *name = argv[ni], *tag = argv[ti];
    char dir[PATH_MAX + 80], snapdir[PATH_MAX + 160], gone[PATH_MAX + 200];
    if (vmx_check_name("delete-snapshot", name) || vmx_init(x) ||
        vmx_vm_dir_existing(x, name, dir, sizeof(dir)))
        return 1;
    int snapfd, lockfd = -1, rc = 1;
    if (vmx_snap_lock(name, dir, &snapfd))
        return 1;
    struct strv tags = { 0 }, deps = { 0 };
    json_t *info = NULL;
    vmx_snap_dir(dir, tag, snapdir, sizeof(snapdir));
    struct stat st;
    if (stat(snapdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        vmx_fail("%s has no snapshot named '%s' ('petrel vm snapshots %s' lists them)", name,
                 tag, name);
        goto out;
    }
    info = vmx_snap_info(name, dir, tag, true);
    /* diff snapshots need their parent */
    if (vmx_snap_list(dir, &tags))
        goto out;
    for (int k = 0; k < tags.n; k++) {
        json_t *o = vmx_snap_info(name, dir, tags.v[k], true);
        const char *p = o ? jstr(o, "parent") : NULL;
        if (p && !strcmp(p, tag) && vmx_strv_add(&deps, tags.v[k]) < 0) {
            json_decref(o);
            vmx_fail("out of memory");
            goto out;
        }
        json_decref(o);
    }
    if (deps.n) {
        char list[1024] = "";
        for (int k = 0; k < deps.n; k++)
            vmx_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? ", " : "",
                    deps.v[k]);
        vmx_fail("%s: '%s' is the parent of diff snapshot%s %s: delete %s first", name, tag,
                 deps.n > 1 ? "s" : "", list, deps.n > 1 ? "those" : "that");
        goto out;
    }
    /* the disks' internal snapshots: only with the disks free */
    bool disk_state = !info || json_array_size(json_object_get(info, "disks")) > 0;
    if (disk_state) {
        r = vmx_lock_take(dir, &lockfd, LOCK_TRIES);
        if (r == -EWOULDBLOCK) {
            vmx_fail("%s is running: stop the VM first: its disks are in use (the internal "
                     "snapshots '%s' in them can only be removed with the disks free)", name,
                     tag);
            goto out;
        } else if (r < 0) {
            vmx_fail("%s/lock: %s", dir, strerror(-r));
            goto out;
        }
        if (info && vmx_snap_disks_delete(name, dir, info, false))
            goto out;
        if (!info) {
            /* incomplete: the VMM may have tagged the disks before it failed */
            struct vm_def d;
            bool which[VM_DEF_MAX_DISKS];
            if (vmx_load_vm(x, name, dir, sizeof(dir), &d))
                goto out;
            json_t *fake = json_pack("{s:s, s:[]}", "tag", tag, "disks");
            if (fake && vmx_snap_disks(name, dir, &d, which) == 0)
                for (unsigned i = 0; i < d.ndisks; i++) {
                    char p[PATH_MAX + 96];
                    vmx_resolve_in(p, sizeof(p), dir, d.disks[i].path);
                    if (which[i])
                        json_array_append_new(json_object_get(fake, "disks"),
                                              json_pack("{s:s}", "path", p));
                }
            vm_def_free(&d);
            int bad = !fake || vmx_snap_disks_delete(name, dir, fake, false);
            json_decref(fake);
            if (bad)
                goto out;
        }
    }
    vmx_fmt(gone, sizeof(gone), "%s/snapshots/.%s.deleting.%d", dir, tag, (int)getpid());
    if (rename(snapdir, gone) < 0) {
        vmx_fail("%s: rename: %s", snapdir, strerror(errno));
        goto out;
    }
    if (vmx_rm_rf(gone) < 0) {
        vmx_fail("%s: could not remove everything: %s", gone, strerror(errno));
        goto out;
    }
    vmx_printf("deleted snapshot %s of %s\n", tag, name);
    rc = 0;
out:
    json_decref(info);
    vmx_strv_free(&tags);
    vmx_strv_free(&deps);
    if (lockfd >= 0)
        close(lockfd);
    close(snapfd);
    return rc;
}
