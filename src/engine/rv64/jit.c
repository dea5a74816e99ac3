/* rv64 JIT: the dispatcher, the per-hart code cache and invalidation
 * (docs/jit.md).
 *
 * - Code buffer per hart: a memfd mapped twice, read-write for the
 *   translator and read-execute for running, created at machine set-up
 *   (before any seccomp filter).  Bounded; flushed whole when full.
 * - TBs are keyed by (virtual pc, physical pc, data context); a per-hart
 *   hash by physical pc holds them, a jump cache by virtual pc finds them
 *   fast.  A jump-cache entry is valid for the TLB generation it was
 *   filled in (satp writes and sfence.vma bump it), like a TLB entry.
 * - Invalidation: each physical RAM page has a code version (shared by the
 *   machine).  A TB is valid while its page's version is the one it was
 *   translated at; every lookup checks.  A page that holds TBs is marked
 *   in a code bitmap, and no store TLB entry is kept for it (they are
 *   removed when the page becomes code; mmu.c asks before caching one), so
 *   the first store to it reaches rv64_jit_store, which bumps the
 *   version and clears the mark.  Device DMA into RAM reaches the same
 *   place through gmem's write hook (every device write is marked for
 *   dirty tracking).  fence.i ends the TB; the next lookup validates.
 * - Chaining: a direct jump to a pc in the same guest page is patched, at
 *   its first lookup, into a jmp to the target TB.  Both TBs are on the
 *   same physical page, so they are valid or stale together; a chain is
 *   only entered from a TB that a lookup validated. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/vm.h"
#include "engine/rv64/decode.h"
#include "engine/rv64/jit.h"

struct jit_ret {
    uint64_t word;
    int64_t budget;
};
typedef struct jit_ret (*jit_enter_fn)(struct rv64_hart *h, const void *code, int64_t budget);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void dma_write(void *opaque, uint64_t gpa, uint64_t len);

/* statistics shared by the harts' threads */
static inline void stat_add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* ---------------- set-up ---------------- */

static struct jit_hart *hart_new(struct rv64_machine *m, struct err *e)
{
    struct jit_hart *j = calloc(1, sizeof(*j));
    if (!j) {
        err_set(e, -ENOMEM, "out of memory for the JIT");
        return NULL;
    }
    j->size = JIT_CODE_SIZE;
    j->rw = j->rx = MAP_FAILED;
    j->tbs = calloc(JIT_MAX_TBS, sizeof(*j->tbs));
    int fd = memfd_create("petrel-jit", MFD_CLOEXEC);
    if (!j->tbs || fd < 0 || ftruncate(fd, (off_t)j->size) < 0) {
        err_set(e, -errno, "cannot create the JIT code buffer: %s", strerror(errno));
        goto fail;
    }
    j->rw = mmap(NULL, j->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    j->rx = mmap(NULL, j->size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (j->rw == MAP_FAILED || j->rx == MAP_FAILED) {
        err_set(e, -errno, "cannot map the JIT code buffer: %s", strerror(errno));
        goto fail;
    }
    close(fd);
    jit_emit_trampolines(j, m);
    return j;
fail:
    if (fd >= 0)
        close(fd);
    if (j->rw != MAP_FAILED)
        munmap(j->rw, j->size);
    if (j->rx != MAP_FAILED)
        munmap(j->rx, j->size);
    free(j->tbs);
    free(j);
    return NULL;
}

static void hart_free(struct jit_hart *j)
{
    if (!j)
        return;
    munmap(j->rw, j->size);
    munmap(j->rx, j->size);
    free(j->tbs);
    free(j);
}

int rv64_jit_init(struct rv64_machine *m, struct err *e)
{
#if !RV64_JIT_AVAILABLE
    return err_set(e, -ENOTSUP, "--cpu-mode jit: the JIT needs an x86-64 host");
#else
    if (m->jit)
        return 0;
    struct jit_shared *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, -ENOMEM, "out of memory for the JIT");
    m->jit = s;
    s->npages = (m->ram_size + 0xfff) >> 12;
    s->version = calloc(s->npages, sizeof(*s->version));
    s->code_bits = calloc(s->npages, 1);
    if (!s->version || !s->code_bits) {
        rv64_jit_free(m);
        return err_set(e, -ENOMEM, "out of memory for the JIT");
    }
    if (m->vm)
        gmem_set_write_hook(&m->vm->mem, dma_write, m);
    for (unsigned i = 0; i < m->nharts; i++) {
        m->harts[i]->jit = hart_new(m, e);
        if (!m->harts[i]->jit) {
            rv64_jit_free(m);
            return -1;
        }
    }
    return 0;
#endif
}

void rv64_jit_free(struct rv64_machine *m)
{
    if (!m->jit)
        return;
    if (m->vm)
        gmem_set_write_hook(&m->vm->mem, NULL, NULL);
    for (unsigned i = 0; i < m->nharts; i++)
        if (m->harts[i]) {
            hart_free(m->harts[i]->jit);
            m->harts[i]->jit = NULL;
        }
    free(m->jit->version);
    free(m->jit->code_bits);
    free(m->jit);
    m->jit = NULL;
}

void rv64_jit_log_stats(struct rv64_machine *m)
{
    struct jit_shared *s = m->jit;
    if (!s)
        return;
    log_info("jit: %llu TBs translated in %.3f s, %.1f MiB of code, %llu cache flushes, "
             "%llu code-page invalidations, %llu fence.i",
             (unsigned long long)s->tbs, (double)s->trans_ns / 1e9,
             (double)s->code_bytes / (1 << 20), (unsigned long long)s->flushes,
             (unsigned long long)s->invalidations, (unsigned long long)s->fencei);
}

/* ---------------- the code cache ---------------- */

void rv64_jit_flush(struct rv64_hart *h)
{
    struct jit_hart *j = h->jit;
    if (!j)
        return;
    j->pos = j->fixed_end;
    j->ntbs = 0;
    j->flush_gen++;
    memset(j->hash, 0, sizeof(j->hash));
    memset(j->jc, 0, sizeof(j->jc));
    stat_add(&h->m->jit->flushes, 1);
}

void rv64_jit_tlb_wrapped(struct rv64_hart *h)
{
    if (h->jit)
        memset(h->jit->jc, 0, sizeof(h->jit->jc));
}

static inline uint64_t page_of(const struct rv64_machine *m, uint64_t pa)
{
    return (pa - m->ram_base) >> 12;
}

static inline bool tb_valid(const struct rv64_machine *m, const struct jit_tb *tb)
{
    return tb->version ==
           __atomic_load_n(&m->jit->version[page_of(m, tb->ppc)], __ATOMIC_ACQUIRE);
}

static inline unsigned hash_index(uint64_t ppc)
{
    return (unsigned)((ppc >> 1) ^ (ppc >> (1 + JIT_HASH_BITS))) & ((1u << JIT_HASH_BITS) - 1);
}

/* gmem's write hook: device DMA (and CPU stores, again) into guest RAM */
static void dma_write(void *opaque, uint64_t gpa, uint64_t len)
{
    struct rv64_machine *m = opaque;
    if (!len || gpa < m->ram_base)
        return;
    for (uint64_t p = gpa & ~0xfffull; p < gpa + len && p - m->ram_base < m->ram_size;
         p += 0x1000)
        rv64_jit_store(m, p, NULL);
}

bool rv64_jit_store(struct rv64_machine *m, uint64_t pa, uint64_t *tag)
{
    struct jit_shared *s = m->jit;
    uint64_t pg = page_of(m, pa);
    bool stale = false;
    if (!s || pa < m->ram_base || pg >= s->npages)
        return false;
    if (__atomic_load_n(&s->code_bits[pg], __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&s->code_bits[pg], 0, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&s->version[pg], 1, __ATOMIC_SEQ_CST);
        stat_add(&s->invalidations, 1);
        stale = true;
    }
    if (tag && __atomic_load_n(&s->code_bits[pg], __ATOMIC_SEQ_CST))
        __atomic_store_n(tag, 0, __ATOMIC_SEQ_CST);
    return stale;
}

/* Page pg starts holding translations: mark it and remove the store TLB
 * entries that map it in every hart (their tags written invalid). */
static void mark_code_page(struct rv64_machine *m, uint64_t pg)
{
    struct jit_shared *s = m->jit;
    if (__atomic_load_n(&s->code_bits[pg], __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&s->code_bits[pg], 1, __ATOMIC_SEQ_CST);
    uintptr_t host = (uintptr_t)(m->ram + (pg << 12));
    for (unsigned i = 0; i < m->nharts; i++) {
        struct rv64_hart *h = m->harts[i];
        for (unsigned c = 0; c < CTX_N; c++)
            for (unsigned k = 0; k < TLB_SIZE; k++) {
                struct rv64_tlb_entry *e = &h->tlb[c][ACC_STORE][k];
                uint64_t tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
                uintptr_t add = __atomic_load_n(&e->addend, __ATOMIC_RELAXED);
                if (tag && (uintptr_t)(tag & ~0xfffull) + add == host)
                    __atomic_store_n(&e->tag, 0, __ATOMIC_SEQ_CST);
            }
    }
}

/* Host address of the instruction at h->pc through the fetch TLB (filling
 * it); NULL if it is not in cacheable RAM or faults (the interpreter then
 * does what the architecture says). */
static const uint8_t *fetch_host(struct rv64_hart *h)
{
    uint64_t pc = h->pc;
    struct rv64_tlb_entry *e = &h->tlb[h->ctx_fetch][ACC_FETCH][(pc >> 12) & (TLB_SIZE - 1)];
    if (e->tag != ((pc & ~0xfffull) | h->tlb_gen)) {
        uint32_t raw;
        if (rv64_fetch_slow(h, pc, &raw))
            return NULL;
        if (e->tag != ((pc & ~0xfffull) | h->tlb_gen))
            return NULL;
    }
    return (const uint8_t *)(uintptr_t)(pc + e->addend);
}

static struct jit_tb *lookup(struct rv64_hart *h, struct jit_hart *j)
{
    struct rv64_machine *m = h->m;
    uint64_t pc = h->pc;
    uint32_t ctx = h->ctx_fetch | h->ctx_data << 4;
    struct jit_jc *c = &j->jc[(pc >> 1) & ((1u << JIT_JC_BITS) - 1)];
    if (c->tb && c->vpc == pc && c->gen == h->tlb_gen && c->ctx == ctx && tb_valid(m, c->tb))
        return c->tb;

    const uint8_t *host = fetch_host(h);
    if (!host)
        return NULL;
    uint64_t ppc = (uint64_t)(host - m->ram) + m->ram_base;
    unsigned hi = hash_index(ppc);
    struct jit_tb *tb, **pp = &j->hash[hi];
    while ((tb = *pp)) {
        if (tb->ppc == ppc && tb->vpc == pc && tb->key == h->ctx_data) {
            if (tb_valid(m, tb))
                break;
            *pp = tb->next;     /* stale: unlink */
            continue;
        }
        pp = &tb->next;
    }
    if (!tb) {
        uint64_t pg = page_of(m, ppc), t0 = now_ns();
        mark_code_page(m, pg);
        uint32_t version = __atomic_load_n(&m->jit->version[pg], __ATOMIC_ACQUIRE);
        bool full;
        size_t pos0 = j->pos;
        tb = jit_translate(h, j, host, ppc, &full);
        if (!tb && full) {
            rv64_jit_flush(h);
            pos0 = j->pos;
            tb = jit_translate(h, j, host, ppc, &full);
        }
        if (!tb)
            return NULL;
        tb->version = version;
        /* a store cleared the mark meanwhile: run this once, keep nothing */
        if (!__atomic_load_n(&m->jit->code_bits[pg], __ATOMIC_SEQ_CST))
            tb->version = version - 1;
        tb->next = j->hash[hi];
        j->hash[hi] = tb;
        stat_add(&m->jit->tbs, 1);
        stat_add(&m->jit->code_bytes, j->pos - pos0);
        stat_add(&m->jit->trans_ns, now_ns() - t0);
    }
    c->vpc = pc;
    c->gen = h->tlb_gen;
    c->ctx = ctx;
    c->tb = tb;
    return tb;
}

/* Patch exit `slot` of TB `from` into a jmp to `to` if both are on the same
 * guest page (and so the same physical page). */
static void chain(struct jit_hart *j, struct jit_tb *from, unsigned slot, struct jit_tb *to)
{
    if (!from->slot_at[slot] || from->slot_pc[slot] != to->vpc || to->ninsn == 0 ||
        (from->vpc ^ to->vpc) >> 12 || from->version != to->version || from->key != to->key)
        return;
    int32_t rel = (int32_t)((int64_t)to->code - (int64_t)(from->slot_at[slot] + 4));
    memcpy(j->rw + from->slot_at[slot], &rel, 4);
    from->slot_at[slot] = 0;
}

uint64_t rv64_jit_exec(struct rv64_hart *h, uint64_t budget)
{
    struct jit_hart *j = h->jit;
    if (!j)
        return rv64_exec(h, budget);
    jit_enter_fn enter = (jit_enter_fn)(void *)(j->rx + j->enter_off);
    uint64_t n = 0;
    struct jit_tb *last = NULL;
    unsigned slot = 2;
    uint64_t last_gen = j->flush_gen;
    h->slice_end = false;
    while (n < budget && !h->slice_end) {
        struct jit_tb *tb = lookup(h, j);
        if (last_gen != j->flush_gen) {
            last = NULL;
            last_gen = j->flush_gen;
        }
        if (!tb || tb->ninsn == 0) {
            bool fencei = false;
            if (tb) {
                const uint8_t *host = fetch_host(h);
                uint32_t raw = 0;
                if (host) {
                    memcpy(&raw, host, 2);
                    if ((raw & 3) == 3 && (h->pc & 0xfff) <= 0xffc)
                        memcpy(&raw, host, 4);
                    fencei = (raw & 0x707f) == 0x100f;
                }
            }
            n += rv64_exec(h, 1);
            /* fence.i: the next lookup validates (stores and DMA to code
             * pages bumped their versions) */
            if (fencei)
                stat_add(&h->m->jit->fencei, 1);
            last = NULL;
            continue;
        }
        if (last && slot < 2)
            chain(j, last, slot, tb);
        if (tb->ninsn > budget - n) {
            n += rv64_exec(h, budget - n);
            break;
        }
        int64_t left = (int64_t)(budget - n);
        struct jit_ret r = enter(h, j->rx + tb->code, left);
        uint64_t done = (uint64_t)(left - r.budget);
        n += done;
        h->instret += done;
        last = NULL;
        switch (r.word & 0xff) {
        case JX_LOOKUP:
            slot = (unsigned)(r.word >> 8) & 0xff;
            if (slot < 2 && (r.word >> 16) < j->ntbs)
                last = &j->tbs[r.word >> 16];
            break;
        case JX_FAULT:
            n++;
            rv64_trap(h, r.word >> 8, h->fault_tval);
            h->x[0] = 0;
            break;
        default:
            break;
        }
    }
    return n;
}
