/* rv64: address translation (Sv39/Sv48, hardware A/D updates as
 * compare-and-swaps on the PTE, other harts running at once), the software
 * TLB fill with its PMP check, and the slow paths of loads, stores and
 * fetches (MMIO, page-crossing accesses, pages PMP splits). */
#include <string.h>

#include "core/bus.h"
#include "core/vm.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"

/* Device accesses run in device context: under the VM's device lock. */
static int rv64_bus_read(struct rv64_machine *m, uint64_t pa, unsigned size, uint64_t *val)
{
    pthread_mutex_lock(m->dev_lock);
    int r = bus_read(m->bus, pa, size, val);
    pthread_mutex_unlock(m->dev_lock);
    return r;
}

static int rv64_bus_write(struct rv64_machine *m, uint64_t pa, unsigned size, uint64_t val)
{
    pthread_mutex_lock(m->dev_lock);
    int r = bus_write(m->bus, pa, size, val);
    pthread_mutex_unlock(m->dev_lock);
    return r;
}

/* Dirty tracking: a store translation is cached only after this, so every
 * page the guest writes is marked once per TLB generation. */
static inline void mark_dirty(struct rv64_machine *m, uint64_t pa)
{
    if (m->vm)
        gmem_mark_dirty(&m->vm->mem, pa, 1);
}

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PPN_MASK (((1ull << 44) - 1) << 10)
#define PTE_RESERVED (0x3ffull << 54) /* PBMT, N and reserved: not implemented */

static const int page_fault[3] = { EXC_INSN_PAGE, EXC_LOAD_PAGE, EXC_STORE_PAGE };
static const int access_fault[3] = { EXC_INSN_ACCESS, EXC_LOAD_ACCESS, EXC_STORE_ACCESS };

static inline uint8_t *ram_ptr(struct rv64_machine *m, uint64_t pa, uint64_t len)
{
    uint64_t off = pa - m->ram_base;
    if (pa < m->ram_base || off >= m->ram_size || len > m->ram_size - off)
        return NULL;
    return m->ram + off;
}

static unsigned eff_priv(const struct rv64_hart *h, int acc)
{
    if (acc != ACC_FETCH && h->priv == PRV_M && (h->mstatus & MSTATUS_MPRV))
        return (unsigned)((h->mstatus & MSTATUS_MPP) >> 11);
    return h->priv;
}

int rv64_translate(struct rv64_hart *h, uint64_t va, int acc, uint64_t *pa)
{
    unsigned priv = eff_priv(h, acc);
    uint64_t mode = h->satp >> 60;
    if (priv == PRV_M || mode == 0) {
        *pa = va;
        return 0;
    }
    int levels = mode == 8 ? 3 : 4;
    int vabits = 12 + 9 * levels;
    h->fault_tval = va;
    if ((uint64_t)((int64_t)(va << (64 - vabits)) >> (64 - vabits)) != va)
        return page_fault[acc];
walk:;
    uint64_t a = (h->satp & ((1ull << 44) - 1)) << 12;
    for (int i = levels - 1; i >= 0; i--) {
        uint64_t pte_pa = a + ((va >> (12 + 9 * i)) & 511) * 8;
        uint8_t *pp = ram_ptr(h->m, pte_pa, 8);
        /* the walk's implicit accesses are S-mode's for PMP */
        if (!pp || !rv64_pmp_check(h, pte_pa, 8, ACC_LOAD, PRV_S))
            return access_fault[acc];
        /* PTEs are aligned words other harts may change at the same time */
        uint64_t pte = __atomic_load_n((uint64_t *)pp, __ATOMIC_RELAXED);
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
            return page_fault[acc];
        uint64_t ppn = (pte & PTE_PPN_MASK) >> 10;
        if (!(pte & (PTE_R | PTE_X))) { /* pointer to the next level */
            if (i == 0 || (pte & (PTE_A | PTE_D | PTE_U)))
                return page_fault[acc];
            a = ppn << 12;
            continue;
        }
        /* leaf: privilege */
        if (pte & PTE_U) {
            if (priv == PRV_S && (acc == ACC_FETCH || !(h->mstatus & MSTATUS_SUM)))
                return page_fault[acc];
        } else if (priv == PRV_U) {
            return page_fault[acc];
        }
        /* permissions */
        if (acc == ACC_FETCH && !(pte & PTE_X))
            return page_fault[acc];
        if (acc == ACC_LOAD && !(pte & PTE_R) && !((h->mstatus & MSTATUS_MXR) && (pte & PTE_X)))
            return page_fault[acc];
        if (acc == ACC_STORE && !(pte & PTE_W))
            return page_fault[acc];
        /* misaligned superpage */
        uint64_t low_mask = (1ull << (9 * i)) - 1;
        if (ppn & low_mask)
            return page_fault[acc];
        /* hardware A/D update */
        uint64_t npte = pte | PTE_A | (acc == ACC_STORE ? PTE_D : 0);
        if (npte != pte) {
            if (!rv64_pmp_check(h, pte_pa, 8, ACC_STORE, PRV_S))
                return access_fault[acc];
            /* a compare-and-swap: another hart may have changed the PTE
             * since we read it (the guest's atomic updates must not be
             * undone); walk again if so */
            if (!__atomic_compare_exchange_n((uint64_t *)pp, &pte, npte, false,
                                             __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                goto walk;
            mark_dirty(h->m, pte_pa);
        }
        *pa = ((ppn & ~low_mask) << 12) | (va & ((1ull << (12 + 9 * i)) - 1));
        return 0;
    }
    return page_fault[acc];
}

/* Translate, check PMP and, for RAM, cache the page in the TLB of the
 * current context if PMP allows all of it.  Returns 0 with *host set (RAM)
 * or NULL (MMIO, *pa set), or a cause. */
static int resolve(struct rv64_hart *h, uint64_t va, int acc, unsigned size, uint8_t **host,
                   uint64_t *pa)
{
    int c = rv64_translate(h, va, acc, pa);
    if (c)
        return c;
    unsigned priv = eff_priv(h, acc);
    uint8_t *page = ram_ptr(h->m, *pa & ~0xfffull, 0x1000);
    if (!page || !rv64_pmp_check(h, *pa & ~0xfffull, 0x1000, acc, priv)) {
        /* MMIO, or PMP doesn't allow the whole page: check this access,
         * cache nothing */
        if (!rv64_pmp_check(h, *pa, size, acc, priv)) {
            h->fault_tval = va;
            return access_fault[acc];
        }
        *host = page ? page + (*pa & 0xfff) : NULL;
        if (page && acc == ACC_STORE) {
            /* before mark_dirty, whose write hook invalidates too */
            if (h->m->jit && rv64_jit_store(h->m, *pa, NULL))
                h->slice_end = true;    /* don't run the rest of a TB stale */
            mark_dirty(h->m, *pa);
        }
        return 0;
    }
    unsigned ctx = acc == ACC_FETCH ? h->ctx_fetch : h->ctx_data;
    struct rv64_tlb_entry *e = &h->tlb[ctx][acc][(va >> 12) & (TLB_SIZE - 1)];
    e->tag = (va & ~0xfffull) | h->tlb_gen;
    e->addend = (uintptr_t)page - (uintptr_t)(va & ~0xfffull);
    *host = page + (*pa & 0xfff);
    if (acc == ACC_STORE) {
        /* the page's translations go stale (and the rest of a TB that
         * wrote into its own page is not run); keep no entry for code.
         * Before mark_dirty, whose write hook invalidates too. */
        if (h->m->jit && rv64_jit_store(h->m, *pa, &e->tag))
            h->slice_end = true;
        mark_dirty(h->m, *pa);
    }
    return 0;
}

int rv64_load_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    if ((va & 0xfff) + size > 0x1000) { /* misaligned across a page: bytewise */
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++) {
            uint64_t b;
            int c = rv64_load_slow(h, va + i, 1, &b);
            if (c)
                return c;
            v |= b << (8 * i);
        }
        *val = v;
        return 0;
    }
    uint8_t *p;
    uint64_t pa;
    int c = resolve(h, va, ACC_LOAD, size, &p, &pa);
    if (c)
        return c;
    if (p) {
        uint64_t v = 0;
        memcpy(&v, p, size);
        *val = v;
        return 0;
    }
    h->slice_end = true; /* a device access may change interrupt state */
    h->fault_tval = va;
    if ((pa & (size - 1)) || rv64_bus_read(h->m, pa, size, val) < 0) {
        pthread_mutex_lock(h->m->dev_lock);     /* guest_log is shared by the harts */
        log_guest(&h->m->guest_log, "hart %u: load access fault at va 0x%llx pa 0x%llx satp 0x%llx",
                  (unsigned)h->hartid, (unsigned long long)va, (unsigned long long)pa,
                  (unsigned long long)h->satp);
        pthread_mutex_unlock(h->m->dev_lock);
        return EXC_LOAD_ACCESS;
    }
    return 0;
}

int rv64_store_slow(struct rv64_hart *h, uint64_t va, unsigned size, uint64_t val)
{
    if ((va & 0xfff) + size > 0x1000) {
        /* Translate both pages first so a fault leaves memory untouched. */
        uint64_t pa;
        int c = rv64_translate(h, va, ACC_STORE, &pa);
        if (!c)
            c = rv64_translate(h, (va | 0xfff) + 1, ACC_STORE, &pa);
        if (c)
            return c;
        for (unsigned i = 0; i < size; i++) {
            c = rv64_store_slow(h, va + i, 1, val >> (8 * i));
            if (c)
                return c;
        }
        return 0;
    }
    uint8_t *p;
    uint64_t pa;
    int c = resolve(h, va, ACC_STORE, size, &p, &pa);
    if (c)
        return c;
    if (p) {
        memcpy(p, &val, size);
        if (h->m->jit) {
            /* another hart may have translated this page between resolve()'s
             * invalidation and the write (it read the old bytes): invalidate
             * again once the write is visible */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (rv64_jit_store(h->m, pa, NULL))
                h->slice_end = true;
        }
        return 0;
    }
    h->slice_end = true;
    h->fault_tval = va;
    if ((pa & (size - 1)) || rv64_bus_write(h->m, pa, size, val) < 0)
        return EXC_STORE_ACCESS;
    return 0;
}

static int fetch16(struct rv64_hart *h, uint64_t va, uint16_t *out)
{
    uint8_t *p;
    uint64_t pa;
    int c = resolve(h, va, ACC_FETCH, 2, &p, &pa);
    if (c)
        return c;
    if (!p) {
        h->fault_tval = va;
        return EXC_INSN_ACCESS;
    }
    memcpy(out, p, 2);
    return 0;
}

int rv64_fetch_slow(struct rv64_hart *h, uint64_t va, uint32_t *insn)
{
    uint16_t lo, hi;
    int c = fetch16(h, va, &lo);
    if (c)
        return c;
    if ((lo & 3) != 3) {
        *insn = lo;
        return 0;
    }
    c = fetch16(h, va + 2, &hi);
    if (c) {
        /* The fault belongs to this instruction; tval is the address of
         * the part that faulted, as the spec allows. */
        return c;
    }
    *insn = lo | (uint32_t)hi << 16;
    return 0;
}

int rv64_amo_ptr(struct rv64_hart *h, uint64_t va, unsigned size, void **p)
{
    h->fault_tval = va;
    if (va & (size - 1))
        return EXC_STORE_MISALIGNED;
    uint8_t *host;
    uint64_t pa;
    int c = resolve(h, va, ACC_STORE, size, &host, &pa);
    if (c)
        return c;
    if (!host || !rv64_pmp_check(h, pa, size, ACC_LOAD, eff_priv(h, ACC_STORE))) {
        /* no atomics on device memory; an AMO needs read permission too */
        h->fault_tval = va;
        return EXC_STORE_ACCESS;
    }
    *p = host;
    return 0;
}
