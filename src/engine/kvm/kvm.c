/* kvm: the VM (memory, irqchip, PIT), vCPU threads and the event loop. */
#include "engine/kvm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/memory.h"
#include "core/vm.h"

#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

static void kick_handler(int sig) { (void)sig; }

/* GSI routing: the PC's (ISA IRQs 0-15 to the two PICs, GSIs 0-23 to the
 * IOAPIC pins, except that IRQ 0 (the PIT) reaches IOAPIC pin 2 and the
 * cascade (GSI 2) reaches no IOAPIC pin, as the MP table and MADT say),
 * then one MSI entry per route that has a message. */
static int set_gsi_routing(struct kvm_machine *k, struct err *e)
{
    enum { NPC = 16 + 23 };
    struct kvm_irq_routing *rt =
        calloc(1, sizeof(*rt) + (NPC + k->nmsi) * sizeof(rt->entries[0]));
    if (!rt)
        return err_set(e, -ENOMEM, "out of memory");
    unsigned n = 0;
    for (unsigned irq = 0; irq < 16; irq++)
        rt->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = irq, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = { .irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                           .pin = irq & 7 } };
    for (unsigned gsi = 0; gsi < 24; gsi++) {
        if (gsi == 2)
            continue;
        rt->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi } };
    }
    for (unsigned i = 0; i < k->nmsi; i++) {
        const struct kvm_msi_route *m = &k->msi[i];
        if (!m->set || m->efd < 0)
            continue;
        rt->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = m->gsi, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = { .address_lo = (uint32_t)m->addr, .address_hi = (uint32_t)(m->addr >> 32),
                       .data = m->data } };
    }
    rt->nr = n;
    int ret = 0;
    if (ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0)
        ret = err_set(e, -errno, "KVM_SET_GSI_ROUTING (%u entries): %s", n, strerror(errno));
    free(rt);
    return ret;
}

int kvm_msi_route_new(struct kvm_machine *k, struct err *e)
{
    if (k->msi_mode == KVM_MSI_NONE)
        return err_set(e, -ENOTSUP, "this host's KVM cannot deliver MSIs");
    if (k->nmsi == KVM_MAX_MSI_ROUTES)
        return err_set(e, -ENOSPC, "all %d MSI routes are taken", KVM_MAX_MSI_ROUTES);
    struct kvm_msi_route *m = &k->msi[k->nmsi];
    *m = (struct kvm_msi_route){ .gsi = KVM_MSI_GSI_BASE + k->nmsi, .efd = -1 };
    if (k->msi_mode == KVM_MSI_IRQFD) {
        m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (m->efd < 0)
            return err_set(e, -errno, "eventfd: %s", strerror(errno));
        struct kvm_irqfd fd = { .fd = (uint32_t)m->efd, .gsi = m->gsi };
        if (ioctl(k->vm_fd, KVM_IRQFD, &fd) < 0) {
            /* this and later routes signal their messages instead */
            log_warn("KVM_IRQFD (GSI %u): %s; sending MSIs with KVM_SIGNAL_MSI", m->gsi,
                     strerror(errno));
            close(m->efd);
            m->efd = -1;
            k->msi_mode = KVM_MSI_SIGNAL;
        }
    }
    return (int)k->nmsi++;
}

int kvm_msi_route_set(struct kvm_machine *k, int id, uint64_t addr, uint32_t data)
{
    if (id < 0 || (unsigned)id >= k->nmsi)
        return -EINVAL;
    struct kvm_msi_route *m = &k->msi[id];
    m->addr = addr;
    m->data = data;
    m->set = true;
    if (m->efd < 0)
        return 0;       /* KVM_SIGNAL_MSI: nothing to route */
    struct err e;
    int ret = set_gsi_routing(k, &e);
    if (ret < 0) {
        m->set = false;
        log_guest(&k->guest_log, "MSI route for GSI %u: %s", m->gsi, e.msg);
    }
    return ret;
}

void kvm_msi_fire(struct kvm_machine *k, int id)
{
    if (id < 0 || (unsigned)id >= k->nmsi || !k->msi[id].set)
        return;
    const struct kvm_msi_route *m = &k->msi[id];
    if (m->efd >= 0) {
        uint64_t one = 1;
        if (write(m->efd, &one, sizeof(one)) != sizeof(one))
            log_guest(&k->guest_log, "irqfd of GSI %u: %s", m->gsi, strerror(errno));
        return;
    }
    struct kvm_msi msg = { .address_lo = (uint32_t)m->addr,
                           .address_hi = (uint32_t)(m->addr >> 32), .data = m->data };
    if (ioctl(k->vm_fd, KVM_SIGNAL_MSI, &msg) < 0)
        log_guest(&k->guest_log, "KVM_SIGNAL_MSI to 0x%llx: %s", (unsigned long long)m->addr,
                  strerror(errno));
}

int kvm_ioeventfd(struct kvm_machine *k, uint64_t addr, unsigned len, int fd, bool assign,
                  struct err *e)
{
    if (!k->has_ioeventfd)
        return err_set(e, -ENOTSUP, "this host's KVM has no ioeventfds");
    struct kvm_ioeventfd io = { .addr = addr, .len = len, .fd = fd,
                                .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };
    if (ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0)
        return err_set(e, -errno, "KVM_IOEVENTFD %s at 0x%llx: %s",
                       assign ? "assign" : "deassign", (unsigned long long)addr,
                       strerror(errno));
    return 0;
}

/* How MSIs reach the guest: irqfds on MSI routes where KVM has both, else
 * KVM_SIGNAL_MSI; PETREL_KVM_MSI=signal|irqfd picks one (for measuring). */
static void choose_msi_mode(struct kvm_machine *k)
{
    bool irqfd = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0 &&
                 ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING) > 0;
    bool sig = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI) > 0;
    const char *want = getenv("PETREL_KVM_MSI");
    k->msi_mode = irqfd ? KVM_MSI_IRQFD : sig ? KVM_MSI_SIGNAL : KVM_MSI_NONE;
    if (want && !strcmp(want, "signal") && sig)
        k->msi_mode = KVM_MSI_SIGNAL;
    else if (want && !strcmp(want, "irqfd") && irqfd)
        k->msi_mode = KVM_MSI_IRQFD;
    log_debug("kvm: MSIs through %s", k->msi_mode == KVM_MSI_IRQFD ? "irqfds" :
              k->msi_mode == KVM_MSI_SIGNAL ? "KVM_SIGNAL_MSI" : "nothing (INTx only)");
}

struct kvm_machine *kvm_new(struct vm *vm, struct bus *mmio, struct bus *pio, struct err *e)
{
    struct kvm_machine *k = calloc(1, sizeof(*k));
    if (!k) {
        err_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    k->vm = vm;
    k->mmio = mmio;
    k->pio = pio;
    k->vm_fd = -1;
    k->dev_lock = &vm->dev_lock;
    pthread_mutex_init(&k->park_mu, NULL);
    pthread_cond_init(&k->park_cv, NULL);
    k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->kvm_fd < 0) {
        err_set(e, -errno, "cannot open /dev/kvm: %s (x86_64 guests need KVM)", strerror(errno));
        goto fail;
    }
    int api = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        err_set(e, -ENOTSUP, "/dev/kvm has API version %d, petrel needs %d", api,
                KVM_API_VERSION);
        goto fail;
    }
    static const struct { int cap; const char *name; } need[] = {
        { KVM_CAP_IRQCHIP, "IRQCHIP" }, { KVM_CAP_PIT2, "PIT2" },
        { KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" }, { KVM_CAP_USER_MEMORY, "USER_MEMORY" },
    };
    for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
            err_set(e, -ENOTSUP, "/dev/kvm lacks KVM_CAP_%s", need[i].name);
            goto fail;
        }
    k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
    if (k->vm_fd < 0) {
        err_set(e, -errno, "KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (k->run_size <= 0) {
        err_set(e, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    k->pvm = access("/sys/module/kvm_pvm", F_OK) == 0;
    k->has_ioeventfd = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0;
    choose_msi_mode(k);
    if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
        err_set(e, -errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        goto fail;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap); /* optional (Intel real mode) */
    if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        err_set(e, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
        goto fail;
    }
    if (set_gsi_routing(k, e) < 0)
        goto fail;
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        err_set(e, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
        goto fail;
    }
    struct sigaction sa = { .sa_handler = kick_handler }; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    return k;
fail:
    kvm_free(k);
    return NULL;
}

void kvm_free(struct kvm_machine *k)
{
    if (!k)
        return;
    for (unsigned i = 0; i < k->nvcpus; i++) {
        struct kvm_vcpu *v = &k->vcpus[i];
        if (v->run)
            munmap(v->run, (size_t)k->run_size);
        if (v->fd >= 0)
            close(v->fd);
    }
    for (unsigned i = 0; i < k->nmsi; i++)
        if (k->msi[i].efd >= 0)
            close(k->msi[i].efd);
    for (unsigned i = 0; i < k->nslots; i++)
        free(k->slots[i].dirty);
    free(k->msr_index);
    if (k->vm_fd >= 0)
        close(k->vm_fd);
    if (k->kvm_fd >= 0)
        close(k->kvm_fd);
    pthread_mutex_destroy(&k->park_mu);
    pthread_cond_destroy(&k->park_cv);
    free(k);
}

static int set_slot(struct kvm_machine *k, unsigned i, bool log_dirty, struct err *e)
{
    const struct kvm_slot *sl = &k->slots[i];
    struct kvm_userspace_memory_region r = {
        .slot = i, .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = sl->gpa, .memory_size = sl->size, .userspace_addr = (uintptr_t)sl->hva,
    };
    if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return err_set(e, -errno, "KVM_SET_USER_MEMORY_REGION (slot %u, %llu MiB at 0x%llx%s): %s",
                       i, (unsigned long long)(sl->size >> 20), (unsigned long long)sl->gpa,
                       log_dirty ? ", logging dirty pages" : "", strerror(errno));
    return 0;
}

/* KVM's dirty bitmap of a slot: one bit per 4 KiB page, in 64-bit words. */
static size_t dirty_words(const struct kvm_slot *sl)
{
    return (size_t)((sl->size / GMEM_PAGE + 63) / 64);
}

int kvm_add_ram(struct kvm_machine *k, uint64_t gpa, uint64_t size, void *hva, struct err *e)
{
    if (k->nslots == KVM_MAX_SLOTS)
        return err_set(e, -ENOSPC, "more than %d RAM regions", KVM_MAX_SLOTS);
    struct kvm_slot *sl = &k->slots[k->nslots];
    *sl = (struct kvm_slot){ .gpa = gpa, .size = size, .hva = hva };
    if (k->dirty_log && !(sl->dirty = calloc(dirty_words(sl), 8)))
        return err_set(e, -ENOMEM, "out of memory");
    int ret = set_slot(k, k->nslots, k->dirty_log, e);
    if (ret < 0) {
        free(sl->dirty);
        sl->dirty = NULL;
        return ret;
    }
    k->nslots++;
    return 0;
}

/* Changing only a slot's flags is allowed while the VM exists (KVM keeps
 * its contents and mappings); the log starts empty and KVM write-protects
 * the slot, so every later guest write is logged. */
int kvm_dirty_log_start(struct kvm_machine *k, struct err *e)
{
    if (k->dirty_log)
        return 0;
    for (unsigned i = 0; i < k->nslots; i++)
        if (!k->slots[i].dirty && !(k->slots[i].dirty = calloc(dirty_words(&k->slots[i]), 8)))
            return err_set(e, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < k->nslots; i++) {
        int ret = set_slot(k, i, true, e);
        if (ret < 0) {
            while (i-- > 0)     /* back to no logging: all slots alike */
                if (set_slot(k, i, false, NULL) < 0)
                    log_warn("slot %u keeps logging dirty pages", i);
            return ret;
        }
    }
    k->dirty_log = true;
    log_debug("kvm: logging dirty pages on %u memory slot(s)", k->nslots);
    return 0;
}

int kvm_dirty_log_sync(struct kvm_machine *k, struct gmem *m, struct err *e)
{
    if (!k->dirty_log)
        return err_set(e, -EINVAL, "kvm: dirty pages are not being logged");
    for (unsigned i = 0; i < k->nslots; i++) {
        struct kvm_slot *sl = &k->slots[i];
        size_t words = dirty_words(sl);
        memset(sl->dirty, 0, words * 8);
        struct kvm_dirty_log dl = { .slot = i, .dirty_bitmap = sl->dirty };
        if (ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0)
            return err_set(e, -errno, "KVM_GET_DIRTY_LOG (slot %u): %s", i, strerror(errno));
        if (!m)
            continue;
        for (size_t w = 0; w < words; w++)
            for (uint64_t bits = sl->dirty[w]; bits; bits &= bits - 1) {
                uint64_t page = (uint64_t)w * 64 + (unsigned)__builtin_ctzll(bits);
                gmem_mark_dirty(m, sl->gpa + page * GMEM_PAGE, GMEM_PAGE);
            }
    }
    return 0;
}

int kvm_create_vcpus(struct kvm_machine *k, unsigned n, const struct x86_entry *entry,
                     struct err *e)
{
    if (n < 1 || n > KVM_MAX_VCPUS)
        return err_set(e, -EINVAL, "--cpus must be between 1 and %d", KVM_MAX_VCPUS);
    int max = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max > 0 && (int)n > max)
        return err_set(e, -EINVAL, "--cpus %u: this host's KVM supports at most %d", n, max);
    for (unsigned i = 0; i < n; i++) {
        struct kvm_vcpu *v = &k->vcpus[i];
        v->k = k;
        v->index = i;
        v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        k->nvcpus = i + 1;
        if (v->fd < 0)
            return err_set(e, -errno, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
        v->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED) {
            v->run = NULL;
            return err_set(e, -errno, "mmap of vCPU %u's kvm_run: %s", i, strerror(errno));
        }
        int ret = kvm_vcpu_setup(v, i == 0 ? entry : NULL, e);
        if (ret < 0)
            return ret;
    }
    return 0;
}

void kvm_irq_line(struct kvm_machine *k, unsigned gsi, int level)
{
    struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
    ioctl(k->vm_fd, KVM_IRQ_LINE, &l);
}

static void kick_all(struct kvm_machine *k)
{
    for (unsigned i = 0; i < k->nvcpus; i++) {
        struct kvm_vcpu *v = &k->vcpus[i];
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (v->started)
            pthread_kill(v->thread, SIGUSR1);
    }
}

/* Wait until every started vCPU thread that has not returned is parked. */
static void wait_parked(struct kvm_machine *k)
{
    pthread_mutex_lock(&k->park_mu);
    for (;;) {
        unsigned started = 0;
        for (unsigned i = 0; i < k->nvcpus; i++)
            started += k->vcpus[i].started && !k->vcpus[i].ended;
        if (k->nparked >= started)
            break;
        pthread_cond_wait(&k->park_cv, &k->park_mu);
    }
    pthread_mutex_unlock(&k->park_mu);
}

int kvm_start(struct kvm_machine *k, bool paused, struct err *e)
{
    /* a restored kvmclock: the guest's time goes on from the snapshot's */
    if (k->clock_restored && !paused) {
        struct kvm_clock_data c = { .clock = k->clock.clock };
        if (ioctl(k->vm_fd, KVM_SET_CLOCK, &c) < 0)
            return err_set(e, -errno, "KVM_SET_CLOCK: %s", strerror(errno));
    }
    if (paused)     /* the threads park before their first KVM_RUN */
        __atomic_store_n(&k->pause_req, 1, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < k->nvcpus; i++) {
        struct kvm_vcpu *v = &k->vcpus[i];
        pthread_attr_t attr;
        int ret = cpu_pin_attr(&k->vm->pin, i, &attr);
        if (!ret) {
            ret = pthread_create(&v->thread, &attr, kvm_vcpu_thread, v);
            pthread_attr_destroy(&attr);
        }
        if (ret) {
            kvm_stop(k);
            return err_set(e, -ret, "cannot start the thread of vCPU %u: %s", i, strerror(ret));
        }
        v->started = true;
    }
    if (paused) {
        wait_parked(k);
        /* kvm_resume sets the clock back to this: the snapshot's, or now */
        if (!k->clock_restored)
            k->clock_saved = ioctl(k->vm_fd, KVM_GET_CLOCK, &k->clock) == 0;
        else
            k->clock_saved = true;
    }
    k->clock_restored = false;
    return 0;
}

/* Park vCPU threads: each leaves KVM_RUN (immediate_exit + a signal) and
 * waits in kvm_vcpu_park.  Guest time stops: kvmclock is read here and
 * written back at resume. */
void kvm_pause(struct kvm_machine *k)
{
    pthread_mutex_lock(&k->park_mu);
    __atomic_store_n(&k->pause_req, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&k->park_mu);
    kick_all(k);
    wait_parked(k);
    k->clock_saved = ioctl(k->vm_fd, KVM_GET_CLOCK, &k->clock) == 0;
}

void kvm_resume(struct kvm_machine *k)
{
    if (k->clock_saved) {
        struct kvm_clock_data c = { .clock = k->clock.clock };
        if (ioctl(k->vm_fd, KVM_SET_CLOCK, &c) < 0)
            log_warn("KVM_SET_CLOCK: %s (guest time jumps by the pause)", strerror(errno));
    }
    pthread_mutex_lock(&k->park_mu);
    for (unsigned i = 0; i < k->nvcpus; i++)
        __atomic_store_n(&k->vcpus[i].run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&k->pause_req, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&k->park_cv);
    pthread_mutex_unlock(&k->park_mu);
}

void kvm_vcpu_park(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    pthread_mutex_lock(&k->park_mu);
    k->nparked++;
    pthread_cond_broadcast(&k->park_cv);
    while (__atomic_load_n(&k->pause_req, __ATOMIC_SEQ_CST) &&
           !__atomic_load_n(&k->stop_req, __ATOMIC_SEQ_CST))
        pthread_cond_wait(&k->park_cv, &k->park_mu);
    k->nparked--;
    pthread_mutex_unlock(&k->park_mu);
}

void kvm_vcpu_ended(struct kvm_vcpu *v)
{
    struct kvm_machine *k = v->k;
    pthread_mutex_lock(&k->park_mu);
    v->ended = true;
    pthread_cond_broadcast(&k->park_cv);
    pthread_mutex_unlock(&k->park_mu);
}

void kvm_stop(struct kvm_machine *k)
{
    pthread_mutex_lock(&k->park_mu);
    __atomic_store_n(&k->stop_req, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&k->park_cv);
    pthread_mutex_unlock(&k->park_mu);
    kick_all(k);
    for (unsigned i = 0; i < k->nvcpus; i++)
        if (k->vcpus[i].started) {
            pthread_join(k->vcpus[i].thread, NULL);
            k->vcpus[i].started = false;
        }
    if (log_verbose() >= 2)
        for (unsigned i = 0; i < k->nvcpus; i++) {
            struct kvm_regs r;
            struct kvm_sregs s;
            struct kvm_mp_state mp = { 0 };
            if (ioctl(k->vcpus[i].fd, KVM_GET_REGS, &r) < 0 ||
                ioctl(k->vcpus[i].fd, KVM_GET_SREGS, &s) < 0)
                continue;
            ioctl(k->vcpus[i].fd, KVM_GET_MP_STATE, &mp);
            log_debug("vCPU %u: rip=%016llx rsp=%016llx rflags=%llx cr0=%llx cr3=%llx cr4=%llx "
                      "efer=%llx cs=%x mp_state=%u", i, (unsigned long long)r.rip,
                      (unsigned long long)r.rsp, (unsigned long long)r.rflags,
                      (unsigned long long)s.cr0, (unsigned long long)s.cr3,
                      (unsigned long long)s.cr4, (unsigned long long)s.efer, s.cs.selector,
                      mp.mp_state);
        }
}

uint64_t kvm_vcpu_cpu_ns(const struct kvm_vcpu *v)
{
    clockid_t cid;
    struct timespec ts;
    if (!v->started || pthread_getcpuclockid(v->thread, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
