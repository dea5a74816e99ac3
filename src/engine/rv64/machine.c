/* rv64: machine life cycle and the hart threads (one host thread per hart).
 *
 * Each hart thread runs its hart a slice at a time.  Between slices it
 * updates its own timer lines (MTIP from its mtimecmp, STIP from its
 * stimecmp), takes a pending interrupt and looks at the event-loop
 * thread's requests (stop, pause).  A hart in WFI with nothing to wake it
 * sleeps on its own wake_fd until its own next timer deadline;
 * rv64_set_irq (device context, any thread) wakes that hart only.  The
 * sleep/wake handshake: the thread sets `sleeping`, re-checks its hart,
 * then polls; a waker updates mip first, then writes wake_fd if `sleeping`
 * is set (both sequentially consistent), so no wake-up is lost.
 *
 * Pause: every thread parks between slices (park_mu/park_cv, nparked
 * counts them); rv64_pause returns once all are parked, so snapshots and
 * dirty-log resets see every hart stopped. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
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
    pthread_mutex_init(&m->park_mu, NULL);
    pthread_cond_init(&m->park_cv, NULL);
    if (getenv("PETREL_TRACE"))
        m->trace_left = strtoull(getenv("PETREL_TRACE"), NULL, 0);
    m->harts = calloc(nharts, sizeof(*m->harts));
    if (!m->harts)
        goto oom_free;
    for (unsigned i = 0; i < nharts; i++) {
        struct rv64_hart *h = calloc(1, sizeof(*h));
        if (!h)
            goto oom_free;
        m->harts[i] = h;
        h->m = m;
        h->hartid = i;
        h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        h->dcache = calloc(1, sizeof(*h->dcache));
        if (h->wake_fd < 0 || !h->dcache)
            goto oom_free;
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
        for (unsigned i = 0; i < m->nharts; i++) {
            struct rv64_hart *h = m->harts[i];
            if (!h)
                continue;
            free(h->dcache);
            if (h->wake_fd >= 0)
                close(h->wake_fd);
            free(h);
        }
    free(m->harts);
    pthread_mutex_destroy(&m->park_mu);
    pthread_cond_destroy(&m->park_cv);
    free(m);
}

void rv64_hart_reset(struct rv64_hart *h, uint64_t pc, uint64_t a1v, uint64_t a2v)
{
    struct rv64_machine *m = h->m;
    struct jit_hart *jit = h->jit;
    uint64_t id = h->hartid;
    struct rv64_dcache *dcache = h->dcache;
    int wake_fd = h->wake_fd;
    pthread_t thread = h->thread;
    bool started = h->thread_started;
    memset(h, 0, sizeof(*h));
    h->m = m;
    h->jit = jit;
    rv64_jit_flush(h);
    h->hartid = id;
    h->dcache = dcache;
    h->wake_fd = wake_fd;
    h->thread = thread;
    h->thread_started = started;
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

static void wake(struct rv64_hart *h)
{
    uint64_t one = 1;
    if (write(h->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("rv64: cannot wake hart %u's thread: %s", (unsigned)h->hartid,
                  strerror(errno));
}

void rv64_kick_hart(struct rv64_hart *h)
{
    if (__atomic_load_n(&h->sleeping, __ATOMIC_SEQ_CST))
        wake(h);
}

static void kick_all(struct rv64_machine *m)
{
    for (unsigned i = 0; i < m->nharts; i++)
        wake(m->harts[i]);
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

/* h's timer lines from the current time: MTIP from its mtimecmp, STIP
 * from its stimecmp.  MTIP is computed without the device lock; only a
 * change is made under it (and recomputed there), so it serialises with
 * the CLINT's register writes from other harts. */
static void timer_tick(struct rv64_hart *h)
{
    struct rv64_machine *m = h->m;
    unsigned i = (unsigned)h->hartid;
    uint64_t now = clint_mtime(m->clint);
    bool due = clint_mtip_due(m->clint, i, now);
    if (due != ((__atomic_load_n(&h->mip_hw, __ATOMIC_SEQ_CST) & MIP_MTIP) != 0)) {
        pthread_mutex_lock(m->dev_lock);
        clint_tick_hart(m->clint, i);
        pthread_mutex_unlock(m->dev_lock);
    }
    rv64_sstc_tick(h, now);
}

/* Sleep until woken or until h's next timer deadline, unless h can already
 * run or a request is pending.  The deadline is read after `sleeping` is
 * set: a CLINT write that moves it either sees `sleeping` (and kicks) or
 * is seen here. */
static void idle_sleep(struct rv64_hart *h)
{
    struct rv64_machine *m = h->m;
    __atomic_store_n(&h->sleeping, 1, __ATOMIC_SEQ_CST);
    uint64_t t = MAX_SLEEP_NS;
    if (m->clint) {
        uint64_t now = clint_mtime(m->clint);
        if (h->mie & MIP_MTIP)      /* only timers that can wake h count */
            t = min_u64(t, clint_ns_to_deadline(m->clint, 1ull << h->hartid));
        t = min_u64(t, sstc_ns_to_deadline(h, now));
    }
    if (t && !want_stop(m) && !__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST) &&
        !hart_wakeable(h)) {
        struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
        struct pollfd p = { .fd = h->wake_fd, .events = POLLIN };
        ppoll(&p, 1, &ts, NULL);
    }
    __atomic_store_n(&h->sleeping, 0, __ATOMIC_SEQ_CST);
    uint64_t v;
    if (read(h->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_error("rv64: wake eventfd: %s", strerror(errno));
}

/* Park between slices while a pause is requested. */
static void park(struct rv64_machine *m)
{
    pthread_mutex_lock(&m->park_mu);
    m->nparked++;
    pthread_cond_broadcast(&m->park_cv);
    while (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST) &&
           !__atomic_load_n(&m->stop_req, __ATOMIC_SEQ_CST))
        pthread_cond_wait(&m->park_cv, &m->park_mu);
    m->nparked--;
    pthread_mutex_unlock(&m->park_mu);
}

static void log_hart(const struct rv64_hart *h)
{
    log_debug("hart %u: pc=%016llx priv=%u wfi=%d instret=%llu mcause=%llx mepc=%llx mtval=%llx "
              "scause=%llx sepc=%llx stval=%llx mip=%llx mie=%llx ecalls_s=%llu",
              (unsigned)h->hartid, (unsigned long long)h->pc, h->priv, h->wfi,
              (unsigned long long)h->instret, (unsigned long long)h->mcause,
              (unsigned long long)h->mepc, (unsigned long long)h->mtval,
              (unsigned long long)h->scause,
              (unsigned long long)h->sepc, (unsigned long long)h->stval,
              (unsigned long long)(h->mip_sw | h->mip_hw), (unsigned long long)h->mie,
              (unsigned long long)h->ecalls_s);
}

/* The hart thread's loop: h until a stop request or the VM's end. */
static void hart_run(struct rv64_hart *h)
{
    struct rv64_machine *m = h->m;
    /* drop stale host FP flags (e.g. from option parsing) before h runs */
    fpu_set_flags(&h->fpu, h->fpu.fflags);

    while (!want_stop(m)) {
        if (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST)) {
            fpu_sync(&h->fpu);
            park(m);
            continue;
        }
        if (m->clint)
            timer_tick(h);
        if (h->wfi) {
            if (!hart_wakeable(h)) {
                idle_sleep(h);
                continue;
            }
            h->wfi = false;
        }
        int irq = rv64_pending_irq(h);
        if (irq >= 0)
            rv64_take_irq(h, irq);
        h->pauses = 0;      /* PAUSE hints are counted per slice (exec.c) */
        m->jit ? rv64_jit_exec(h, SLICE) : rv64_exec(h, SLICE);
        if (h->yield) {         /* spinning: let the hart it waits for run */
            h->yield = false;
            sched_yield();
        }
    }
    fpu_sync(&h->fpu);
    if (log_verbose() >= 2)
        log_hart(h);
}

static void *hart_thread(void *arg)
{
    struct rv64_hart *h = arg;
    thread_ready(THREAD_HART, (unsigned)h->hartid);
    hart_run(h);
    return NULL;
}

int rv64_start(struct rv64_machine *m, const struct cpu_pin *pin, struct err *e)
{
    for (unsigned i = 0; i < m->nharts; i++) {
        struct rv64_hart *h = m->harts[i];
        pthread_attr_t attr;
        int ret = cpu_pin_attr(pin, i, &attr);
        if (ret == 0) {
            ret = pthread_create(&h->thread, &attr, hart_thread, h);
            pthread_attr_destroy(&attr);
            if (ret == 0) {
                h->thread_started = true;
                m->threads_started = true;
                continue;
            }
            err_set(e, -ret, "cannot start the hart thread for hart %u: %s", i, strerror(ret));
        } else {
            err_set(e, -ret, "cannot pin the hart thread for hart %u: %s", i, strerror(ret));
        }
        rv64_stop(m);       /* the threads already started */
        return -ret;
    }
    return 0;
}

static bool all_parked(struct rv64_machine *m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->nharts; i++)
        n += m->harts[i]->thread_started;
    return m->nparked >= n;
}

void rv64_pause(struct rv64_machine *m)
{
    if (!m->threads_started)
        return;
    pthread_mutex_lock(&m->park_mu);
    __atomic_store_n(&m->pause_req, 1, __ATOMIC_SEQ_CST);
    kick_all(m);
    while (!all_parked(m) && !__atomic_load_n(&m->stop_req, __ATOMIC_SEQ_CST) &&
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
    if (!m->threads_started)
        return;
    pthread_mutex_lock(&m->park_mu);
    __atomic_store_n(&m->stop_req, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&m->park_cv);
    pthread_mutex_unlock(&m->park_mu);
    kick_all(m);
    for (unsigned i = 0; i < m->nharts; i++) {
        struct rv64_hart *h = m->harts[i];
        if (h->thread_started) {
            pthread_join(h->thread, NULL);
            h->thread_started = false;
        }
    }
    m->threads_started = false;
    if (log_verbose() >= 1)
        rv64_jit_log_stats(m);      /* summed over the harts, all joined */
}

uint64_t rv64_hart_cpu_ns(const struct rv64_machine *m, unsigned i)
{
    clockid_t cid;
    struct timespec ts;
    if (i >= m->nharts || !m->harts[i]->thread_started ||
        pthread_getcpuclockid(m->harts[i]->thread, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rv64_thread_cpu_ns(const struct rv64_machine *m)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < m->nharts; i++)
        sum += rv64_hart_cpu_ns(m, i);
    return sum;
}
