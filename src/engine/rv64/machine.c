/* rv64: machine life cycle and the run loop (all harts on this thread). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/riscv/clint.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/vm.h"
#include "engine/rv64/rv64.h"

#define SLICE 8192               /* instructions per hart per turn */
#define POLL_INTERVAL_NS 2000000 /* console/watchdog housekeeping */
#define MAX_SLEEP_NS 50000000

/* misa: RV64 (MXL=2) with A C D F I M S U */
#define MISA_VALUE ((2ull << 62) | (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | \
                    (1u << 8) | (1u << 12) | (1u << 18) | (1u << 20))

struct rv64_machine *rv64_new(struct vm *vm, struct bus *bus, uint8_t *ram, uint64_t ram_base,
                              uint64_t ram_size, unsigned nharts, struct err *e)
{
    struct rv64_machine *m = calloc(1, sizeof(*m));
    if (!m)
        goto oom;
    m->vm = vm;
    m->bus = bus;
    m->ram = ram;
    m->ram_base = ram_base;
    m->ram_size = ram_size;
    m->nharts = nharts;
    if (getenv("PETREL_TRACE"))
        m->trace_left = strtoull(getenv("PETREL_TRACE"), NULL, 0);
    m->dcache = calloc(1, sizeof(*m->dcache));
    m->harts = calloc(nharts, sizeof(*m->harts));
    if (!m->dcache || !m->harts)
        goto oom_free;
    for (unsigned i = 0; i < nharts; i++) {
        struct rv64_hart *h = calloc(1, sizeof(*h));
        if (!h)
            goto oom_free;
        m->harts[i] = h;
        h->m = m;
        h->hartid = i;
        rv64_hart_reset(h, ram_base, 0, 0);
    }
    return m;
oom_free:
    rv64_free(m);
oom:
    err_set(e, -ENOMEM, "out of memory creating %u harts", nharts);
    return NULL;
}

void rv64_free(struct rv64_machine *m)
{
    if (!m)
        return;
    if (m->harts)
        for (unsigned i = 0; i < m->nharts; i++)
            free(m->harts[i]);
    free(m->harts);
    free(m->dcache);
    free(m);
}

void rv64_hart_reset(struct rv64_hart *h, uint64_t pc, uint64_t a1v, uint64_t a2v)
{
    struct rv64_machine *m = h->m;
    uint64_t id = h->hartid;
    memset(h, 0, sizeof(*h));
    h->m = m;
    h->hartid = id;
    h->pc = pc;
    h->priv = PRV_M;
    h->misa = MISA_VALUE;
    h->mstatus = (2ull << 32) | (2ull << 34);
    h->tlb_gen = 1;
    h->x[10] = id;
    h->x[11] = a1v;
    h->x[12] = a2v;
    fpu_init(&h->fpu);
    rv64_update_ctx(h);
}

static bool hart_wakeable(const struct rv64_hart *h)
{
    return ((h->mip_sw | h->mip_hw) & h->mie) != 0;
}

void rv64_run(struct rv64_machine *m)
{
    struct vm *vm = m->vm;
    uint64_t last_poll = time_now_ns();
    unsigned cur = 0;
    /* drop stale host FP flags (e.g. from option parsing) before hart 0 runs */
    fpu_set_flags(&m->harts[0]->fpu, m->harts[0]->fpu.fflags);

    while (vm->exit_reason == VM_RUNNING) {
        bool all_idle = true;
        if (m->clint)
            clint_tick(m->clint);
        for (unsigned i = 0; i < m->nharts && vm->exit_reason == VM_RUNNING; i++) {
            struct rv64_hart *h = m->harts[i];
            if (h->wfi) {
                if (!hart_wakeable(h))
                    continue;
                h->wfi = false;
            }
            all_idle = false;
            if (m->nharts > 1 && cur != i) {
                /* host FP flags and LR reservations are per running hart */
                fpu_sync(&m->harts[cur]->fpu);
                m->harts[cur]->resv_valid = false;
                cur = i;
            }
            int irq = rv64_pending_irq(h);
            if (irq >= 0)
                rv64_take_irq(h, irq);
            rv64_exec(h, SLICE);
        }
        uint64_t now = time_now_ns();
        if (all_idle) {
            /* only timers that can wake a hart count */
            uint64_t mask = 0;
            for (unsigned i = 0; i < m->nharts; i++)
                if (m->harts[i]->mie & MIP_MTIP)
                    mask |= 1ull << i;
            uint64_t t = m->clint ? clint_ns_to_deadline(m->clint, mask) : MAX_SLEEP_NS;
            if (t > MAX_SLEEP_NS)
                t = MAX_SLEEP_NS;
            vm_poll(vm, t);
            last_poll = time_now_ns();
        } else if (vm->loop && evloop_busy(vm->loop)) {
            /* device I/O in flight: take its completions between slices */
            evloop_dispatch(vm->loop);
            if (now - last_poll >= POLL_INTERVAL_NS) {
                vm_poll(vm, 0);
                last_poll = now;
            }
        } else if (now - last_poll >= POLL_INTERVAL_NS) {
            vm_poll(vm, 0);
            last_poll = now;
        }
    }
    fpu_sync(&m->harts[cur]->fpu);
    if (log_verbose() >= 2)
        for (unsigned i = 0; i < m->nharts; i++) {
            struct rv64_hart *h = m->harts[i];
            log_debug("hart %u: pc=%016llx priv=%u wfi=%d instret=%llu mcause=%llx mepc=%llx mtval=%llx "
                      "scause=%llx sepc=%llx stval=%llx mip=%llx mie=%llx", i,
                      (unsigned long long)h->pc, h->priv, h->wfi,
                      (unsigned long long)h->instret, (unsigned long long)h->mcause,
                      (unsigned long long)h->mepc, (unsigned long long)h->mtval,
                      (unsigned long long)h->scause,
                      (unsigned long long)h->sepc, (unsigned long long)h->stval,
                      (unsigned long long)(h->mip_sw | h->mip_hw), (unsigned long long)h->mie);
        }
}
