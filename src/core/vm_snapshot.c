/* VM snapshots: saving a paused VM to a state file and a memory file, and
 * building a VM from them (docs/snapshots.md).
 *
 * What is here: the VM's own sections ("config": what the machine is made
 * of; "memory": the RAM layout, checksums and, for a diff snapshot, its
 * parent and dirty bitmap), the memory file, and the order of things.  The
 * board saves and loads the CPUs and devices (board.h).
 *
 * Save (event-loop thread, VM paused, device lock held so no device
 * handler runs): board save (quiesce devices, then CPUs and devices; the
 * disks' internal snapshots are taken here), then the memory file (to a
 * temporary name), then the state file (temporary name, fsync, rename), then
 * the memory file is renamed into place.  A failure leaves the previous
 * files where they were.  Only after success are the dirty bits cleared.
 *
 * Restore: read and check the state file (container, Petrel version,
 * architecture), rebuild the configuration from "config" (plus the
 * caller's overrides), check the memory file(s), build the machine with RAM
 * mapped privately from the memory file (lazy: nothing is read until the
 * guest touches it), copy in the pages of any diff snapshots on the chain,
 * load every CPU and device, check that no section was left over, verify
 * the memory checksums if asked, and only then commit what changes things
 * outside the VM (reverting disks to their internal snapshot) and start the
 * CPUs.  Any failure tears the machine down and puts the old configuration
 * back. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/board.h"
#include "core/snapshot.h"
#include "core/version.h"
#include "core/vm.h"

#define CONFIG_VERSION 1
#define MEMORY_VERSION 1
#define CHUNK_SHIFT 21          /* memory checksums per 2 MiB */
#define MAX_CHAIN 64            /* diff snapshots on top of one full one */
#define RUN_MAX (4u << 20)      /* largest single write of the memory file */

int vm_ram_add(struct vm *vm, uint64_t gpa, uint64_t size, struct err *e)
{
    if (!vm->restore)
        return gmem_add_ram(&vm->mem, gpa, size, e);
    int ret = gmem_add_ram_file(&vm->mem, gpa, size, vm->restore->fd, vm->restore->off, e);
    if (ret == 0)
        vm->restore->off += size;
    return ret;
}

/* --- "config" --- */
static void config_save(const struct vm_config *c, struct snap_writer *w)
{
    snapw_section(w, "config", CONFIG_VERSION);
    snapw_str(w, c->arch);
    snapw_str(w, c->kernel);
    snapw_str(w, c->initrd);
    snapw_str(w, c->append);
    snapw_str(w, c->firmware);
    snapw_u64(w, c->mem_size);
    snapw_u32(w, c->cpus);
    snapw_u32(w, c->timeout_s);
    snapw_u32(w, c->ndevices);
    for (unsigned i = 0; i < c->ndevices; i++)
        snapw_str(w, c->devices[i]);
    snapw_u32(w, c->ndisks);
    for (unsigned i = 0; i < c->ndisks; i++)
        snapw_str(w, c->disk_args[i]);
}

static int config_load(struct snap_file *f, struct vm_config *c, struct err *e)
{
    struct snap_reader r;
    int ret = snap_section(f, "config", CONFIG_VERSION, CONFIG_VERSION, &r, e);
    if (ret < 0)
        return ret;
    char *s[5] = { 0 };
    char *dev[VM_MAX_DEVICES] = { 0 }, *disk[VM_MAX_DISKS] = { 0 };
    for (unsigned i = 0; i < 5; i++)
        snapr_str(&r, PATH_MAX, &s[i]);
    uint64_t mem = snapr_u64(&r);
    uint32_t cpus = snapr_u32(&r), timeout = snapr_u32(&r);
    uint32_t ndev = snapr_u32(&r);
    if (snapr_check(&r, ndev <= VM_MAX_DEVICES, "too many devices"))
        for (unsigned i = 0; i < ndev; i++)
            snapr_check(&r, snapr_str(&r, SNAP_MAX_STR, &dev[i]) == 0 && dev[i], "bad device");
    uint32_t ndisk = snapr_u32(&r);
    if (snapr_check(&r, ndisk <= VM_MAX_DISKS, "too many disks"))
        for (unsigned i = 0; i < ndisk; i++)
            snapr_check(&r, snapr_str(&r, SNAP_MAX_STR, &disk[i]) == 0 && disk[i], "bad disk");
    snapr_check(&r, s[0] && s[1], "no architecture or kernel");
    snapr_check(&r, mem >= (1ull << 20) && mem <= (1ull << 40) && mem % SNAP_PAGE == 0,
                "bad memory size");
    snapr_check(&r, cpus >= 1 && cpus <= 256, "bad CPU count");
    ret = snapr_end(&r, e);
    memset(c, 0, sizeof(*c));
    if (ret == 0) {
        char **fld[5] = { &c->arch, &c->kernel, &c->initrd, &c->append, &c->firmware };
        for (unsigned i = 0; i < 5; i++) {
            *fld[i] = s[i];
            s[i] = NULL;
        }
        c->mem_size = mem;
        c->cpus = cpus;
        c->timeout_s = timeout;
        for (unsigned i = 0; i < ndev && ret == 0; i++)
            ret = vm_config_add_device(c, dev[i], e);
        for (unsigned i = 0; i < ndisk && ret == 0; i++)
            ret = vm_config_set_disk(c, -1, disk[i], e);
        if (ret < 0)
            vm_config_free(c);
    }
    for (unsigned i = 0; i < 5; i++)
        free(s[i]);
    for (unsigned i = 0; i < VM_MAX_DEVICES; i++)
        free(dev[i]);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        free(disk[i]);
    return ret;
}

/* --- the memory file --- */
static uint64_t ram_total(const struct gmem *m)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < m->n; i++)
        t += m->r[i].size;
    return t;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    uint64_t acc = 0;
    for (unsigned i = 0; i < SNAP_PAGE / 8; i += 8)
        acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7];
    return acc == 0;
}

/* Memory checksums: a 64-bit hash per 2 MiB chunk, folded from one hash
 * per page, to find damage in the memory file (not an adversary: the state
 * file says where the memory file is).  Each 64-bit word enters one of four
 * lanes through xor and a multiplication by an odd constant, both
 * bijections, so changing any one word always changes the page's hash.  It
 * runs at memory speed, where zlib's CRC-32 took 14 s over 4 GiB here; zero
 * pages (most of a guest's RAM) use a precomputed value. */
#define H_P1 0x9e3779b97f4a7c15ull
#define H_P2 0xc2b2ae3d27d4eb4full

static inline uint64_t rotl64(uint64_t x, unsigned r) { return x << r | x >> (64 - r); }

static uint64_t page_hash(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = H_P1, b = H_P2, c = ~H_P1, d = ~H_P2;
    for (unsigned i = 0; i < SNAP_PAGE / 8; i += 4) {
        a = rotl64((a ^ q[i]) * H_P1, 29);
        b = rotl64((b ^ q[i + 1]) * H_P1, 29);
        c = rotl64((c ^ q[i + 2]) * H_P1, 29);
        d = rotl64((d ^ q[i + 3]) * H_P1, 29);
    }
    uint64_t h = a * H_P2 ^ rotl64(b * H_P2, 17) ^ rotl64(c * H_P2, 31) ^ rotl64(d * H_P2, 47);
    return h ^ h >> 32;
}

static uint64_t zero_page_hash(void)
{
    static uint64_t z;
    static bool done;
    if (!done) {
        static const uint8_t zero[SNAP_PAGE];
        z = page_hash(zero);
        done = true;
    }
    return z;
}

/* Fold the next page's hash into its chunk's sum. */
static inline void sum_add(uint64_t *sum, uint64_t page_h)
{
    *sum = rotl64((*sum ^ page_h) * H_P1, 31);
}

/* The whole of [p, p + len) to or from the file at off. */
static int io_all(int fd, uint8_t *p, size_t len, uint64_t off, bool write)
{
    while (len) {
        ssize_t n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Pages of anonymous guest RAM the guest never touched are zero; reading
 * them to find out would make the kernel allocate (and clear) every one,
 * growing the VMM's memory to the whole of guest RAM.  /proc/self/pagemap
 * says which pages are present or swapped out without touching them. */
#define PM_BATCH 512u
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

struct pagemap {
    int fd;                     /* -1: unavailable, every page is read */
    uint64_t first;             /* page number (of the host address) of e[0] */
    unsigned n;                 /* valid entries */
    uint64_t e[PM_BATCH];
};

static bool page_untouched(struct pagemap *pm, const uint8_t *hva)
{
    if (pm->fd < 0)
        return false;
    uint64_t vpn = (uintptr_t)hva / SNAP_PAGE;
    if (vpn < pm->first || vpn >= pm->first + pm->n) {
        ssize_t got = pread(pm->fd, pm->e, sizeof(pm->e), (off_t)(vpn * 8));
        if (got < 8) {
            pm->n = 0;
            return false;
        }
        pm->first = vpn;
        pm->n = (unsigned)(got / 8);
    }
    return !(pm->e[vpn - pm->first] & (PM_PRESENT | PM_SWAPPED));
}

struct mem_out {
    uint64_t data_bytes;        /* bytes written (not holes) */
    uint64_t *sum;              /* per chunk, over the whole RAM */
    uint32_t nchunks;
};

/* Write RAM (all non-zero pages, or with only_dirty the dirty ones) into
 * fd, laid out as the regions in order, and checksum all of it. */
static int mem_write(const struct gmem *m, int fd, bool only_dirty, struct mem_out *o)
{
    uint64_t total = ram_total(m);
    o->nchunks = (uint32_t)((total + (1ull << CHUNK_SHIFT) - 1) >> CHUNK_SHIFT);
    o->sum = calloc(o->nchunks ? o->nchunks : 1, sizeof(uint64_t));
    o->data_bytes = 0;
    if (!o->sum)
        return -ENOMEM;
    if (ftruncate(fd, (off_t)total) < 0)
        return -errno;
    uint64_t foff = 0;      /* file offset of the region's start */
    struct pagemap pm = { .fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) };
    int ret = 0;
    for (unsigned i = 0; i < m->n && ret == 0; i++) {
        const struct gmem_region *r = &m->r[i];
        pm.n = 0;
        uint64_t pages = r->size / SNAP_PAGE, run_start = 0, run_len = 0;
        for (uint64_t pg = 0; pg <= pages; pg++) {
            const uint8_t *p = r->hva + pg * SNAP_PAGE;
            bool take = false;
            if (pg < pages) {
                uint64_t at = foff + pg * SNAP_PAGE;
                /* a file-backed region's untouched pages are the file's */
                bool zero = (!r->file_backed && page_untouched(&pm, p)) || page_is_zero(p);
                sum_add(&o->sum[at >> CHUNK_SHIFT], zero ? zero_page_hash() : page_hash(p));
                take = only_dirty ? gmem_page_dirty(r, pg) : !zero;
            }
            if (take && run_len < RUN_MAX / SNAP_PAGE) {
                if (!run_len)
                    run_start = pg;
                run_len++;
                continue;
            }
            if (run_len) {
                ret = io_all(fd, r->hva + run_start * SNAP_PAGE, run_len * SNAP_PAGE,
                             foff + run_start * SNAP_PAGE, true);
                if (ret < 0)
                    break;
                o->data_bytes += run_len * SNAP_PAGE;
                run_len = 0;
            }
            if (take) {
                run_start = pg;
                run_len = 1;
            }
        }
        foff += r->size;
    }
    if (pm.fd >= 0)
        close(pm.fd);
    if (ret < 0)
        return ret;
    return fsync(fd) < 0 ? -errno : 0;
}

static void memory_section(const struct vm *vm, struct snap_writer *w, uint64_t id, int type,
                           const struct mem_out *o, const char *mem_abs)
{
    const struct gmem *m = &vm->mem;
    snapw_section(w, "memory", MEMORY_VERSION);
    snapw_u64(w, id);
    snapw_u32(w, (uint32_t)type);
    snapw_str(w, mem_abs);
    snapw_u32(w, m->n);
    for (unsigned i = 0; i < m->n; i++) {
        snapw_u64(w, m->r[i].gpa);
        snapw_u64(w, m->r[i].size);
    }
    snapw_u32(w, CHUNK_SHIFT);
    snapw_u32(w, o->nchunks);
    for (unsigned i = 0; i < o->nchunks; i++)
        snapw_u64(w, o->sum[i]);
    if (type == SNAP_DIFF) {
        snapw_str(w, vm->snap_parent);
        snapw_u64(w, vm->snap_id);
        /* the dirty bitmap over the concatenated regions, page by page */
        uint64_t total_pages = ram_total(m) / SNAP_PAGE, word = 0;
        snapw_u64(w, total_pages);
        uint64_t n = 0;
        for (unsigned i = 0; i < m->n; i++)
            for (uint64_t pg = 0; pg < m->r[i].size / SNAP_PAGE; pg++, n++) {
                if (gmem_page_dirty(&m->r[i], pg))
                    word |= 1ull << (n % 64);
                if (n % 64 == 63) {
                    snapw_u64(w, word);
                    word = 0;
                }
            }
        if (n % 64)
            snapw_u64(w, word);
    }
}

/* A path made absolute (the state file records where memory files are). */
static char *abs_path(const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", cwd, p);
    return s;
}

int vm_snapshot_save(struct vm *vm, const struct vm_snapshot_params *p, struct err *e)
{
    if (vm->state != VM_PAUSED)
        return err_set(e, -EINVAL, "the VM is %s: pause it before taking a snapshot",
                       vm_state_name(vm->state));
    if (!vm->ops->save)
        return err_set(e, -ENOTSUP, "%s machines cannot be snapshotted yet", vm->ops->arch);
    if (p->type != SNAP_FULL && p->type != SNAP_DIFF)
        return err_set(e, -EINVAL, "unknown snapshot type");
    if (p->type == SNAP_DIFF && !vm->snap_parent)
        return err_set(e, -EINVAL, "a diff snapshot needs a previous snapshot of this VM to be "
                       "relative to: take a full snapshot first");
    if (!p->state_path || !p->mem_path || !*p->state_path || !*p->mem_path)
        return err_set(e, -EINVAL, "a snapshot needs a state file and a memory file path");
    uint64_t id;
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = time_now_ns();
    char tag[32];
    if (!p->tag)
        snprintf(tag, sizeof(tag), "snap-%016llx", (unsigned long long)id);
    char *state_abs = abs_path(p->state_path), *mem_abs = abs_path(p->mem_path);
    char *mem_tmp = NULL;
    struct mem_out mo = { 0 };
    struct snap_writer w;
    snapw_init(&w);
    w.tag = p->tag ? p->tag : tag;
    w.e = e;
    int ret = -ENOMEM, fd = -1;
    if (!state_abs || !mem_abs || asprintf(&mem_tmp, "%s.tmp", mem_abs) < 0) {
        mem_tmp = NULL;
        err_set(e, -ENOMEM, "out of memory");
        goto out;
    }
    uint64_t t0 = time_now_ns();
    pthread_mutex_lock(&vm->dev_lock);
    config_save(&vm->cfg, &w);
    vm->ops->save(vm, &w);
    if (w.failed) {
        ret = w.failed;
        pthread_mutex_unlock(&vm->dev_lock);
        goto out;
    }
    fd = open(mem_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = err_set(e, -errno, "%s: %s", mem_tmp, strerror(errno));
        pthread_mutex_unlock(&vm->dev_lock);
        goto out;
    }
    ret = mem_write(&vm->mem, fd, p->type == SNAP_DIFF, &mo);
    if (ret < 0) {
        err_set(e, ret, "cannot write the memory file %s: %s", mem_tmp, strerror(-ret));
        pthread_mutex_unlock(&vm->dev_lock);
        goto out;
    }
    memory_section(vm, &w, id, p->type, &mo, mem_abs);
    pthread_mutex_unlock(&vm->dev_lock);
    struct snap_header h = { .mem_size = vm->cfg.mem_size, .cpus = vm->cfg.cpus,
                             .flags = (uint32_t)p->type };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    snprintf(h.petrel_version, sizeof(h.petrel_version), "%s", PETREL_VERSION);
    snprintf(h.arch, sizeof(h.arch), "%s", vm->cfg.arch);
    if ((ret = snapw_write_file(&w, &h, p->state_path, e)) < 0)
        goto out;
    if (rename(mem_tmp, mem_abs) < 0) {
        ret = err_set(e, -errno, "cannot rename %s: %s", mem_tmp, strerror(errno));
        goto out;
    }
    free(mem_tmp);
    mem_tmp = NULL;
    /* the snapshot exists: later diffs are relative to it */
    pthread_mutex_lock(&vm->dev_lock);
    gmem_dirty_reset(&vm->mem);
    if (vm->ops->dirty_reset)
        vm->ops->dirty_reset(vm);
    pthread_mutex_unlock(&vm->dev_lock);
    free(vm->snap_parent);
    vm->snap_parent = state_abs;
    state_abs = NULL;
    vm->snap_id = id;
    log_info("snapshot %s (%s, disks tagged '%s'): %llu KiB of memory written in %.1f ms",
             p->state_path, p->type == SNAP_DIFF ? "diff" : "full", w.tag,
             (unsigned long long)(mo.data_bytes >> 10), (double)(time_now_ns() - t0) / 1e6);
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (mem_tmp)
        unlink(mem_tmp);
    free(mem_tmp);
    free(mo.sum);
    free(state_abs);
    free(mem_abs);
    snapw_free(&w);
    return ret;
}

/* --- restore --- */

/* What the "memory" section of one state file says. */
struct mem_info {
    uint64_t id;
    uint32_t type;
    char *mem_path;             /* as recorded when it was taken */
    uint32_t nregions;
    uint64_t gpa[8], size[8];
    uint32_t nchunks;
    uint64_t *sum;
    char *parent;               /* diff: the parent's state file */
    uint64_t parent_id;
    uint64_t npages;
    uint64_t *bitmap;           /* diff: dirty pages */
};

static void mem_info_free(struct mem_info *m)
{
    free(m->mem_path);
    free(m->sum);
    free(m->parent);
    free(m->bitmap);
    memset(m, 0, sizeof(*m));
}

static int memory_load(struct snap_file *f, uint64_t mem_size, struct mem_info *mi, struct err *e)
{
    struct snap_reader r;
    memset(mi, 0, sizeof(*mi));
    int ret = snap_section(f, "memory", MEMORY_VERSION, MEMORY_VERSION, &r, e);
    if (ret < 0)
        return ret;
    mi->id = snapr_u64(&r);
    mi->type = snapr_u32(&r);
    snapr_str(&r, PATH_MAX, &mi->mem_path);
    mi->nregions = snapr_u32(&r);
    uint64_t total = 0;
    if (snapr_check(&r, mi->nregions >= 1 && mi->nregions <= 8, "bad region count"))
        for (unsigned i = 0; i < mi->nregions; i++) {
            mi->gpa[i] = snapr_u64(&r);
            mi->size[i] = snapr_u64(&r);
            snapr_check(&r, mi->size[i] % SNAP_PAGE == 0 && mi->size[i] <= (1ull << 40),
                        "bad region size");
            total += mi->size[i];
        }
    snapr_check(&r, mi->type == (f->h.flags & 1), "type differs from the header's");
    snapr_check(&r, total >= mem_size && total <= mem_size + (1ull << 32),
                "RAM regions do not add up to the memory size");
    uint32_t shift = snapr_u32(&r);
    mi->nchunks = snapr_u32(&r);
    uint64_t want = (total + (1ull << CHUNK_SHIFT) - 1) >> CHUNK_SHIFT;
    if (snapr_check(&r, shift == CHUNK_SHIFT && mi->nchunks == want, "bad checksum table") &&
        snapr_check(&r, (mi->sum = calloc(want ? want : 1, 8)) != NULL, "out of memory"))
        for (uint32_t i = 0; i < mi->nchunks; i++)
            mi->sum[i] = snapr_u64(&r);
    if (mi->type == SNAP_DIFF && !r.fail && !r.bad[0]) {
        snapr_check(&r, snapr_str(&r, PATH_MAX, &mi->parent) == 0 && mi->parent,
                    "no parent snapshot");
        mi->parent_id = snapr_u64(&r);
        mi->npages = snapr_u64(&r);
        uint64_t words = (mi->npages + 63) / 64;
        if (snapr_check(&r, mi->npages == total / SNAP_PAGE, "bad dirty bitmap size") &&
            snapr_check(&r, (mi->bitmap = calloc(words ? words : 1, 8)) != NULL, "out of memory"))
            for (uint64_t i = 0; i < words; i++)
                mi->bitmap[i] = snapr_u64(&r);
    }
    snapr_check(&r, mi->mem_path != NULL, "no memory file path");
    if ((ret = snapr_end(&r, e)) < 0)
        mem_info_free(mi);
    return ret;
}

static int open_mem(const char *path, uint64_t need, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, -errno, "memory file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, -EINVAL, "memory file %s: not a regular file", path);
    }
    if ((uint64_t)st.st_size != need) {
        close(fd);
        return err_set(e, -EINVAL, "memory file %s is %llu bytes, the snapshot needs %llu "
                       "(truncated or from another snapshot)", path,
                       (unsigned long long)st.st_size, (unsigned long long)need);
    }
    return fd;
}

/* The diff chain under a state file: chain[0] is the snapshot restored,
 * chain[n-1] the full one at the bottom.  Parent state files are read and
 * checked as thoroughly as the top one. */
struct chain {
    struct mem_info mi[MAX_CHAIN];
    unsigned n;
};

static int read_chain(struct snap_file *top, uint64_t mem_size, struct chain *c, struct err *e)
{
    int ret = memory_load(top, mem_size, &c->mi[0], e);
    if (ret < 0)
        return ret;
    c->n = 1;
    while (c->mi[c->n - 1].type == SNAP_DIFF) {
        struct mem_info *child = &c->mi[c->n - 1];
        if (c->n == MAX_CHAIN)
            return err_set(e, -EINVAL, "more than %d diff snapshots in a chain", MAX_CHAIN);
        struct snap_file pf;
        if ((ret = snap_file_read(&pf, child->parent, e)) < 0) {
            char msg[sizeof(e->msg)];
            snprintf(msg, sizeof(msg), "%s", e->msg);
            return err_set(e, ret, "parent snapshot: %s", msg);
        }
        ret = memory_load(&pf, mem_size, &c->mi[c->n], e);
        snap_file_free(&pf);
        if (ret < 0)
            return ret;
        struct mem_info *par = &c->mi[c->n];
        c->n++;
        if (par->id != child->parent_id)
            return err_set(e, -EINVAL, "parent snapshot %s was replaced since the diff snapshot "
                           "was taken", child->parent);
        if (par->nregions != child->nregions ||
            memcmp(par->size, child->size, sizeof(par->size)) != 0)
            return err_set(e, -EINVAL, "parent snapshot %s has another memory layout",
                           child->parent);
    }
    return 0;
}

/* Copy a diff snapshot's pages into RAM. */
static int apply_diff(struct vm *vm, const struct mem_info *mi, const char *path, struct err *e)
{
    uint64_t total = mi->npages * SNAP_PAGE;
    int fd = open_mem(path, total, e);
    if (fd < 0)
        return fd;
    uint64_t n = 0;
    int ret = 0;
    for (unsigned i = 0; i < vm->mem.n && ret == 0; i++) {
        struct gmem_region *r = &vm->mem.r[i];
        for (uint64_t pg = 0; pg < r->size / SNAP_PAGE && ret == 0; pg++, n++)
            if (mi->bitmap[n / 64] >> (n % 64) & 1)
                ret = io_all(fd, r->hva + pg * SNAP_PAGE, SNAP_PAGE, n * SNAP_PAGE, false);
    }
    close(fd);
    if (ret < 0)
        return err_set(e, ret, "memory file %s: %s", path, strerror(-ret));
    return 0;
}

static int verify_memory(const struct vm *vm, const struct mem_info *mi, struct err *e)
{
    uint64_t off = 0;
    uint64_t *sum = calloc(mi->nchunks ? mi->nchunks : 1, 8);
    if (!sum)
        return err_set(e, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < vm->mem.n; i++) {
        const struct gmem_region *r = &vm->mem.r[i];
        for (uint64_t pg = 0; pg < r->size / SNAP_PAGE; pg++, off += SNAP_PAGE) {
            const uint8_t *p = r->hva + pg * SNAP_PAGE;
            sum_add(&sum[off >> CHUNK_SHIFT], page_is_zero(p) ? zero_page_hash() : page_hash(p));
        }
    }
    int ret = 0;
    for (uint32_t i = 0; i < mi->nchunks && ret == 0; i++)
        if (sum[i] != mi->sum[i])
            ret = err_set(e, -EINVAL, "memory file: checksum mismatch at MiB %u (the file is "
                          "damaged)", i << (CHUNK_SHIFT - 20));
    free(sum);
    return ret;
}

int vm_snapshot_check(struct snap_file *f, struct err *e)
{
    struct vm_config c;
    struct mem_info mi;
    int ret = config_load(f, &c, e);
    if (ret < 0)
        return ret;
    ret = memory_load(f, c.mem_size, &mi, e);
    vm_config_free(&c);
    if (ret == 0)
        mem_info_free(&mi);
    return ret;
}

/* The state file's directory + "/memory". */
static char *default_mem_path(const char *state)
{
    const char *slash = strrchr(state, '/');
    size_t dl = slash ? (size_t)(slash - state) : 1;
    char *s = malloc(dl + 8);
    if (s)
        snprintf(s, dl + 8, "%.*s/memory", (int)dl, slash ? state : ".");
    return s;
}

int vm_restore(struct vm *vm, const struct vm_restore_params *p, struct err *e)
{
    if (vm->state != VM_NOT_STARTED)
        return err_set(e, -EINVAL, "a snapshot can only be loaded into a VM that has not started");
    uint64_t t0 = time_now_ns();
    struct snap_file f;
    int ret = snap_file_read(&f, p->state_path, e);
    if (ret < 0)
        return ret;
    struct vm_config cfg = { 0 }, old = vm->cfg;
    struct chain *ch = calloc(1, sizeof(*ch));
    char *mem_path = p->mem_path ? strdup(p->mem_path) : default_mem_path(p->state_path);
    struct vm_restore rs = { .fd = -1 };
    bool built = false;
    if (!ch || !mem_path) {
        ret = err_set(e, -ENOMEM, "out of memory");
        goto fail;
    }
    if (strcmp(f.h.petrel_version, PETREL_VERSION) != 0) {
        ret = err_set(e, -EINVAL, "%s was written by Petrel %s; this is Petrel %s", p->state_path,
                      f.h.petrel_version, PETREL_VERSION);
        goto fail;
    }
    const struct board_ops *b = vm_board(f.h.arch);
    if (!b || !b->load) {
        ret = err_set(e, -EINVAL, "%s is a snapshot of a%s %s machine, which this Petrel cannot "
                      "restore", p->state_path, b ? "" : "n unknown", f.h.arch);
        goto fail;
    }
    if ((ret = config_load(&f, &cfg, e)) < 0)
        goto fail;
    if (strcmp(cfg.arch, f.h.arch) != 0 || cfg.mem_size != f.h.mem_size || cfg.cpus != f.h.cpus) {
        ret = err_set(e, -EINVAL, "%s: the header and the configuration disagree", p->state_path);
        goto fail;
    }
    if (p->ndisks) {
        if (p->ndisks != cfg.ndisks) {
            ret = err_set(e, -EINVAL, "the snapshot has %u disk(s), %u given", cfg.ndisks,
                          p->ndisks);
            goto fail;
        }
        for (unsigned i = 0; i < p->ndisks; i++)
            if ((ret = vm_config_set_disk(&cfg, (int)i, p->disks[i], e)) < 0)
                goto fail;
        f.disks_as_is = true;
    }
    if (p->ndevices) {
        if (p->ndevices != cfg.ndevices) {
            ret = err_set(e, -EINVAL, "the snapshot has %u device(s), %u given", cfg.ndevices,
                          p->ndevices);
            goto fail;
        }
        for (unsigned i = 0; i < p->ndevices; i++)
            if ((ret = vm_config_set(&cfg.devices[i], p->devices[i])) < 0) {
                err_set(e, ret, "out of memory");
                goto fail;
            }
    }
    if ((ret = read_chain(&f, cfg.mem_size, ch, e)) < 0)
        goto fail;
    const struct mem_info *base = &ch->mi[ch->n - 1];
    uint64_t total = 0;
    for (unsigned i = 0; i < base->nregions; i++)
        total += base->size[i];
    /* the top snapshot's memory file is the one given (it may have moved);
     * those further down the chain are where they were recorded */
    const char *base_path = ch->n == 1 ? mem_path : base->mem_path;
    if ((rs.fd = open_mem(base_path, total, e)) < 0) {
        ret = rs.fd;
        goto fail;
    }
    /* tags for the disks (their internal snapshots) are in the disks'
     * device state; f.tag is only a fallback */
    vm->cfg = cfg;
    vm->restore = &rs;
    ret = vm_build(vm, e);
    vm->restore = NULL;
    if (ret < 0)
        goto fail_cfg;
    built = true;
    if (vm->mem.n != base->nregions) {
        ret = err_set(e, -EINVAL, "the snapshot's RAM layout differs from this machine's");
        goto fail_cfg;
    }
    for (unsigned i = 0; i < vm->mem.n; i++)
        if (vm->mem.r[i].gpa != base->gpa[i] || vm->mem.r[i].size != base->size[i]) {
            ret = err_set(e, -EINVAL, "the snapshot's RAM layout differs from this machine's");
            goto fail_cfg;
        }
    for (int i = (int)ch->n - 2; i >= 0; i--)
        if ((ret = apply_diff(vm, &ch->mi[i], i == 0 ? mem_path : ch->mi[i].mem_path, e)) < 0)
            goto fail_cfg;
    if ((ret = b->load(vm, &f, e)) < 0 || (ret = snap_file_check_used(&f, e)) < 0)
        goto fail_cfg;
    if (p->verify_memory && (ret = verify_memory(vm, &ch->mi[0], e)) < 0)
        goto fail_cfg;
    /* everything checked: now change what lies outside the VM */
    if ((ret = snap_file_commit(&f, e)) < 0)
        goto fail_cfg;
    vm->start_paused = p->paused;
    if ((ret = vm_launch(vm, e)) < 0) {
        vm->start_paused = false;
        goto fail_cfg;
    }
    free(vm->snap_parent);
    vm->snap_parent = abs_path(p->state_path);
    vm->snap_id = ch->mi[0].id;
    vm_config_free(&old);
    uint64_t now = time_now_ns();
    log_info("restored %s (%s, %lluM, %u cpu(s)) in %.2f ms; CPUs started at %llu ns "
             "(CLOCK_MONOTONIC)", p->state_path, ch->n > 1 ? "diff" : "full",
             (unsigned long long)(vm->cfg.mem_size >> 20), vm->cfg.cpus,
             (double)(now - t0) / 1e6, (unsigned long long)now);
    ret = 0;
    goto out;
fail_cfg:
    if (built)
        vm_unbuild(vm);
    gmem_free(&vm->mem);
    vm->cfg = old;
    vm_config_free(&cfg);
    goto out;
fail:
    vm_config_free(&cfg);
out:
    if (rs.fd >= 0)
        close(rs.fd);
    if (ch)
        for (unsigned i = 0; i < ch->n; i++)
            mem_info_free(&ch->mi[i]);
    free(ch);
    free(mem_path);
    snap_file_free(&f);
    return ret;
}
