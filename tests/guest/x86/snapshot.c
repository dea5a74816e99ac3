/* snapshot: a guest that keeps working for a few seconds, for the VM
 * snapshot test (tests/integration/test_x86_snapshot.py): the host pauses
 * it mid-run, snapshots it, kills it and restores it, and the guest must
 * notice nothing but a pause.  Each of ROUNDS rounds:
 * - at CPL3 (IF=1, so timer interrupts arrive there), STEPS more steps of
 *   the LCG of common/lcg.h, its state in registers all along; the result
 *   must equal the jump-ahead value for all steps so far;
 * - the PIT at 1 kHz (IOAPIC pin 2, vector 0x30) counts ticks; the round
 *   waits with sti;hlt until TICKS more have come (the LAPIC timer as an
 *   alarm clock: a PIT that stops fails the program within 2 s);
 * - virtio-blk (MSI-X): sector 1 + round % 8 written with the round's
 *   pattern (word i = round << 16 | i), read back and compared;
 * then prints
 *     snapshot: round=R steps=S x=0x<16 hex> ticks=T blk=ok
 * After the last round every sector 1..8 must still hold the pattern of
 * the last round that wrote it; then PASS.  Run alone (no snapshot) it
 * passes too, under Petrel or QEMU:
 *     petrel run --arch x86_64 --kernel snapshot.elf --disk d.qcow2,serial=snap
 * (a disk of at least 16 sectors). */
#include "lcg.h"
#include "pcivirtio.h"

#define ROUNDS 100
#define STEPS 4000000ull            /* LCG steps per round at CPL3 */
#define TICKS 20                    /* PIT ticks (ms) per round at least */
#define NSECT 8                     /* sectors 1..8 in turn */
#define VEC_PIT 0x30
#define VEC_ALARM 0x41
#define VEC_Q 0x51
#define VEC_CFG 0x52
#define BAR_BASE 0xe0000000ul
#define SECTOR 512
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1

struct blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

static struct vdev dev;
static struct vq vq;
static uint8_t ring_mem[3 * 4096] __attribute__((aligned(4096)));
static struct blk_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status;
static uint32_t wbuf[SECTOR / 4] __attribute__((aligned(4096)));
static uint32_t rbuf[NSECT * SECTOR / 4] __attribute__((aligned(4096)));
static uint8_t ustack[16384] __attribute__((aligned(16)));
static volatile unsigned ticks, irqs, cfg_irqs;
static volatile uint64_t ux;    /* the LCG state between rounds */

static void pit_irq(struct trapframe *tf) { (void)tf; ticks++; lapic_eoi(); }
static void alarm_irq(struct trapframe *tf) { (void)tf; lapic_eoi(); }
static void q_irq(struct trapframe *tf) { (void)tf; irqs++; lapic_eoi(); }
static void cfg_irq(struct trapframe *tf) { (void)tf; cfg_irqs++; lapic_eoi(); }

static uint32_t pattern(unsigned round, unsigned word) { return round << 16 | word; }

/* CPL3: n more steps from ux, back to ring 0 with the result */
static void __attribute__((noinline)) user_round(uint64_t n)
{
    uint64_t x = lcg_run(ux, n);
    user_exit(x);
}

/* sti;hlt until `ticks` reaches target or 2 s pass; the LAPIC timer
 * (about 1 ms) wakes the hlt should the PIT stop */
static bool wait_ticks(unsigned target)
{
    lapic_write(LAPIC_TIMER_DCR, 0x3);
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | VEC_ALARM);
    lapic_write(LAPIC_TIMER_ICR, 62500);
    uint64_t end = rdtsc() + us_to_tsc(2000000);
    while ((int)(ticks - target) < 0 && rdtsc() < end) {
        sti_hlt();
        cli();
    }
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | VEC_ALARM);
    lapic_write(LAPIC_TIMER_ICR, 0);
    return (int)(ticks - target) >= 0;
}

/* One request: header, data, status; waits for its completion. */
static void blk_rw(uint32_t type, uint64_t sector, void *buf, uint32_t len, unsigned round)
{
    hdr = (struct blk_hdr){ type, 0, sector };
    status = 0xff;
    struct vbuf b[3] = {
        { (uint64_t)&hdr, sizeof(hdr), false },
        { (uint64_t)buf, len, type == VIRTIO_BLK_T_IN },
        { (uint64_t)&status, 1, true },
    };
    vq_add(&vq, b, 3);
    uint16_t want = (uint16_t)(vq.last_used + 1);
    vq_kick(&vq);
    while (vq_used_idx(&vq) != want) {
        unsigned c0 = irqs;
        CHECK_MSG(wait_irq(&irqs, c0, 2000000) || vq_used_idx(&vq) == want,
                  "round %u: virtio-blk %s of sector %lu: no completion within 2 s", round,
                  type == VIRTIO_BLK_T_IN ? "read" : "write", sector);
    }
    vq.last_used = want;
    CHECK_MSG(status == 0, "round %u: virtio-blk %s of sector %lu: status %u", round,
              type == VIRTIO_BLK_T_IN ? "read" : "write", sector, status);
}

static void setup_blk(void)
{
    int slot = pci_find(0x1af4, 0x1042);
    CHECK_MSG(slot > 0, "no virtio-blk (1af4:1042) on bus 0");
    pci_setup_bars(&dev, slot, BAR_BASE);
    virtio_walk_caps(&dev);
    CHECK_MSG((dev.caps_seen & 0x3e) == 0x3e, "virtio capabilities: types 0x%x", dev.caps_seen);
    CHECK_MSG(dev.msix_cap && dev.msix_n >= 2, "no MSI-X with 2 vectors");
    uint64_t offered;
    CHECK_MSG(virtio_start(&dev, 1ull << VIRTIO_F_VERSION_1, &offered),
              "FEATURES_OK refused (offered 0x%lx)", offered);
    uint64_t capacity = mmio_read32(dev.device) | (uint64_t)mmio_read32(dev.device + 4) << 32;
    CHECK_GE(capacity, NSECT + 1);
    set_handler(VEC_Q, q_irq);
    set_handler(VEC_CFG, cfg_irq);
    unsigned apic = lapic_id();
    msix_set_entry(&dev, 0, apic, VEC_Q, false);
    msix_set_entry(&dev, 1, apic, VEC_CFG, false);
    msix_set_control(&dev, MSIX_ENABLE);
    vc_w16(&dev, VC_MSIX, 1);
    CHECK_EQ(vq_setup(&dev, &vq, 0, ring_mem, 0), 0);
    vc_w8(&dev, VC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
    CHECK_EQ(vc_r8(&dev, VC_STATUS), VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
    printf("snapshot: virtio-blk in slot %d, %lu sectors\n", slot, capacity);
}

void test_main(void)
{
    tsc_calibrate();
    lapic_enable();
    printf("snapshot: TSC %lu kHz; %u rounds of %llu CPL3 steps, >= %u ticks, a disk write\n",
           tsc_hz / 1000, ROUNDS, STEPS, TICKS);
    setup_blk();
    set_handler(VEC_PIT, pit_irq);
    set_handler(VEC_ALARM, alarm_irq);
    ioapic_route(2, VEC_PIT, lapic_id(), false);
    pit_set_periodic(PIT_HZ / 1000);

    ux = LCG_SEED;
    uint64_t steps = 0, ustack_top = (uint64_t)ustack + sizeof(ustack);
    for (unsigned round = 1; round <= ROUNDS; round++) {
        unsigned t0 = ticks;
        uint64_t x = enter_user(user_round, ustack_top, STEPS);
        steps += STEPS;
        CHECK_MSG(x == lcg_jump(LCG_SEED, steps), "round %u: LCG at %lu steps: 0x%lx, want "
                  "0x%lx", round, steps, x, lcg_jump(LCG_SEED, steps));
        ux = x;
        CHECK_MSG(wait_ticks(t0 + TICKS), "round %u: %u PIT ticks in 2 s, want %u", round,
                  ticks - t0, TICKS);
        unsigned sector = 1 + round % NSECT;
        for (unsigned i = 0; i < SECTOR / 4; i++)
            wbuf[i] = pattern(round, i);
        blk_rw(VIRTIO_BLK_T_OUT, sector, wbuf, SECTOR, round);
        memset(rbuf, 0, SECTOR);
        blk_rw(VIRTIO_BLK_T_IN, sector, rbuf, SECTOR, round);
        CHECK_MSG(!memcmp(rbuf, wbuf, SECTOR), "round %u: sector %u read back differs", round,
                  sector);
        printf("snapshot: round=%u steps=%lu x=0x%016lx ticks=%u blk=ok\n", round, steps, x,
               ticks);
    }
    /* every sector holds the last round that wrote it */
    memset(rbuf, 0, sizeof(rbuf));
    blk_rw(VIRTIO_BLK_T_IN, 1, rbuf, sizeof(rbuf), ROUNDS);
    for (unsigned s = 1; s <= NSECT; s++) {
        unsigned last = ROUNDS - (ROUNDS - (s - 1)) % NSECT + BREAK_ADJ;
        for (unsigned i = 0; i < SECTOR / 4; i++)
            CHECK_MSG(rbuf[(s - 1) * SECTOR / 4 + i] == pattern(last, i), "sector %u word %u: "
                      "0x%x, want 0x%x (round %u)", s, i, rbuf[(s - 1) * SECTOR / 4 + i],
                      pattern(last, i), last);
    }
    CHECK_EQ(cfg_irqs, 0);
    ioapic_mask(2, true);
    pit_stop();
    vc_w8(&dev, VC_STATUS, 0);
    printf("snapshot: %u rounds, %lu steps, %u ticks\n", ROUNDS, steps, ticks);
    pass();
}
