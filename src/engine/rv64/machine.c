/* rv64: machine life cycle and the hart thread (all harts on one thread).
 *
 * The hart thread runs each hart a slice at a time.  Between slices it
 * looks at the event-loop thread's requests (stop, pause) and, when every
 * hart waits for an interrupt, sleeps on wake_fd until the next timer
 * deadline; rv64_set_irq (device context, any thread) wakes it.  The
 * sleep/wake handshake: the thread sets `sleeping`, re-checks the harts,
 * then polls; a waker updates mip first, then writes wake_fd if `sleeping`
 * is set (both sequentially consistent), so no wake-up is lost. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "arch/riscv/clint.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/vm.h"
#include "engine/rv64/jit.h"
#include "engine/rv64/rv64.h"
#include "core/thread.h"

#define SLICE 8192               /* instructions per hart per turn */
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
    m->dev_lock = &vm->dev_lock;
    m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&m->park_mu, NULL);
    pthread_cond_init(&m->park_cv, NULL);
    if (m->wake_fd < 0)
        goto oom_free;
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
    enum cpu_mode mode = vm ? vm->cfg.cpu_mode : CPU_MODE_INTERP;
    if (mode == CPU_MODE_AUTO)
        mode = RV64_JIT_DEFAULT ? CPU_MODE_JIT : CPU_MODE_INTERP;
    if (mode == CPU_MODE_JIT && rv64_jit_init(m, e) < 0) {
        rv64_free(m);
        return NULL;
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
    rv64_jit_free(m);
    if (m->harts)
        for (unsigned i = 0; i < m->nharts; i++)
            free(m->harts[i]);
    free(m->harts);
    free(m->dcache);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    pthread_mutex_destroy(&m->park_mu);
    pthread_cond_destroy(&m->park_cv);
    free(m);
}

void rv64_hart_reset(struct rv64_hart *h, uint64_t pc, uint64_t a1v, uint64_t a2v)
{
    struct rv64_machine *m = h->m;
    struct jit_hart *jit = h->jit;
    uint64_t id = h->hartid;
    memset(h, 0, sizeof(*h));
    h->m = m;
    h->jit = jit;
    rv64_jit_flush(h);
    h->hartid = id;
    h->pc = pc;
    h->priv = PRV_M;
    h->misa = MISA_VALUE;
    h->mstatus = (2ull << 32) | (2ull << 34);
    h->tlb_gen = 1;
    h->stimecmp = UINT64_MAX;
    h->x[10] = id;
    h->x[11] = a1v;
    h->x[12] = a2v;
    fpu_init(&h->fpu);
    rv64_update_ctx(h);
}

static bool hart_wakeable(const struct rv64_hart *h)
{
    uint64_t mip = __atomic_load_n(&h->mip_hw, __ATOMIC_SEQ_CST) | h->mip_sw;
    return (mip & h->mie) != 0;
}

void rv64_kick(struct rv64_machine *m)
{
    if (m && __atomic_load_n(&m->sleeping, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        if (write(m->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_error("rv64: cannot wake the hart thread: %s", strerror(errno));
    }
}

static bool want_stop(const struct rv64_machine *m)
{
    return __atomic_load_n(&m->stop_req, __ATOMIC_SEQ_CST) ||
           __atomic_load_n(&m->vm->exit_reason, __ATOMIC_RELAXED) != VM_RUNNING;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Sstc: nanoseconds until stimecmp can wake h (UINT64_MAX: it can't). */
static uint64_t sstc_ns_to_deadline(const struct rv64_hart *h, uint64_t now)
{
    if (!(h->menvcfg & MENVCFG_STCE) || !(h->mie & MIP_STIP))
        return UINT64_MAX;
    if (h->stimecmp <= now)
        return 0;
    uint64_t d = h->stimecmp - now;
    return d > UINT64_MAX / 1000 ? UINT64_MAX : d * (1000000000ull / CLINT_FREQ);
}

/* Sleep until woken or timeout_ns passed, unless a hart can already run. */
static void idle_sleep(struct rv64_machine *m, uint64_t timeout_ns)
{
    __atomic_store_n(&m->sleeping, 1, __ATOMIC_SEQ_CST);
    bool runnable = want_stop(m) || __atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < m->nharts && !runnable; i++)
        runnable = hart_wakeable(m->harts[i]);
    if (!runnable) {
        struct timespec ts = { (time_t)(timeout_ns / 1000000000u),
                               (long)(timeout_ns % 1000000000u) };
        struct pollfd p = { .fd = m->wake_fd, .events = POLLIN };
        ppoll(&p, 1, &ts, NULL);
    }
    __atomic_store_n(&m->sleeping, 0, __ATOMIC_SEQ_CST);
    uint64_t v;
    if (read(m->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_error("rv64: wake eventfd: %s", strerror(errno));
}

/* Park between slices while a pause is requested. */
static void park(struct rv64_machine *m)
{
    pthread_mutex_lock(&m->park_mu);
    m->parked = true;
    pthread_cond_broadcast(&m->park_cv);
    while (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST) &&
           !__atomic_load_n(&m->stop_req, __ATOMIC_SEQ_CST))
        pthread_cond_wait(&m->park_cv, &m->park_mu);
    m->parked = false;
    pthread_mutex_unlock(&m->park_mu);
}

void rv64_run(struct rv64_machine *m)
{
    unsigned cur = 0;
    /* drop stale host FP flags (e.g. from option parsing) before hart 0 runs */
    fpu_set_flags(&m->harts[0]->fpu, m->harts[0]->fpu.fflags);

    while (!want_stop(m)) {
        if (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST)) {
            fpu_sync(&m->harts[cur]->fpu);
            park(m);
            continue;
        }
        bool all_idle = true;
        if (m->clint) {
            pthread_mutex_lock(m->dev_lock);
            clint_tick(m->clint);
            uint64_t now = clint_mtime(m->clint);
            pthread_mutex_unlock(m->dev_lock);
            for (unsigned i = 0; i < m->nharts; i++)
                rv64_sstc_tick(m->harts[i], now);
        }
        for (unsigned i = 0; i < m->nharts && !want_stop(m); i++) {
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
            m->jit ? rv64_jit_exec(h, SLICE) : rv64_exec(h, SLICE);
        }
        if (all_idle) {
            /* only timers that can wake a hart count */
            uint64_t mask = 0;
            for (unsigned i = 0; i < m->nharts; i++)
                if (m->harts[i]->mie & MIP_MTIP)
                    mask |= 1ull << i;
            uint64_t t = MAX_SLEEP_NS;
            if (m->clint) {
                pthread_mutex_lock(m->dev_lock);
                t = clint_ns_to_deadline(m->clint, mask);
                uint64_t now = clint_mtime(m->clint);
                pthread_mutex_unlock(m->dev_lock);
                for (unsigned i = 0; i < m->nharts; i++)
                    t = min_u64(t, sstc_ns_to_deadline(m->harts[i], now));
            }
            if (t > MAX_SLEEP_NS)
                t = MAX_SLEEP_NS;
            if (t)
                idle_sleep(m, t);
        }
    }
    fpu_sync(&m->harts[cur]->fpu);
    if (log_verbose() >= 1)
        rv64_jit_log_stats(m);
    if (log_verbose() >= 2)
        for (unsigned i = 0; i < m->nharts; i++) {
            struct rv64_hart *h = m->harts[i];
            log_debug("hart %u: pc=%016llx priv=%u wfi=%d instret=%llu mcause=%llx mepc=%llx mtval=%llx "
                      "scause=%llx sepc=%llx stval=%llx mip=%llx mie=%llx ecalls_s=%llu", i,
                      (unsigned long long)h->pc, h->priv, h->wfi,
                      (unsigned long long)h->instret, (unsigned long long)h->mcause,
                      (unsigned long long)h->mepc, (unsigned long long)h->mtval,
                      (unsigned long long)h->scause,
                      (unsigned long long)h->sepc, (unsigned long long)h->stval,
                      (unsigned long long)(h->mip_sw | h->mip_hw), (unsigned long long)h->mie,
                      (unsigned long long)h->ecalls_s);
        }
}

static void *hart_thread(void *arg)
{
    thread_ready(THREAD_HART, 0);
    rv64_run(arg);
    return NULL;
}

int rv64_start(struct rv64_machine *m, const struct cpu_pin *pin, struct err *e)
{
    pthread_attr_t attr;
    int ret = cpu_pin_attr(pin, 0, &attr);     /* one thread for every hart */
    if (ret)
        return err_set(e, -ret, "cannot pin the hart thread: %s", strerror(ret));
    ret = pthread_create(&m->thread, &attr, hart_thread, m);
    pthread_attr_destroy(&attr);
    if (ret)
        return err_set(e, -ret, "cannot start the hart thread: %s", strerror(ret));
    m->thread_started = true;
    return 0;
}

void rv64_pause(struct rv64_machine *m)
{
    if (!m->thread_started)
        return;
    pthread_mutex_lock(&m->park_mu);
    __atomic_store_n(&m->pause_req, 1, __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    if (write(m->wake_fd, &one, sizeof(one)) < 0)
        log_error("rv64: cannot wake the hart thread: %s", strerror(errno));
    while (!m->parked && !__atomic_load_n(&m->stop_req, __ATOMIC_SEQ_CST) &&
           __atomic_load_n(&m->vm->exit_reason, __ATOMIC_RELAXED) == VM_RUNNING)
        pthread_cond_wait(&m->park_cv, &m->park_mu);
    pthread_mutex_unlock(&m->park_mu);
}

void rv64_resume(struct rv64_machine *m)
{
    pthread_mutex_lock(&m->park_mu);
    __atomic_store_n(&m->pause_req, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&m->park_cv);
    pthread_mutex_unlock(&m->park_mu);
}

void rv64_stop(struct rv64_machine *m)
{
    if (!m->thread_started)
        return;
    pthread_mutex_lock(&m->park_mu);
    __atomic_store_n(&m->stop_req, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&m->park_cv);
    pthread_mutex_unlock(&m->park_mu);
    uint64_t one = 1;
    if (write(m->wake_fd, &one, sizeof(one)) < 0)
        log_error("rv64: cannot wake the hart thread: %s", strerror(errno));
    pthread_join(m->thread, NULL);
    m->thread_started = false;
}

uint64_t rv64_thread_cpu_ns(const struct rv64_machine *m)
{
    clockid_t cid;
    struct timespec ts;
    if (!m->thread_started || pthread_getcpuclockid(m->thread, &cid) ||
        clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
