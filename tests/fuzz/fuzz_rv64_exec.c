/* libFuzzer target: the rv64 engine runs arbitrary guest code.
 *
 * The guest is hostile: whatever the instruction stream, register values,
 * privilege level and page tables, the VMM must not crash, read or write
 * outside guest RAM, or hit undefined behaviour (built with ASan+UBSan).
 *
 * Input layout: byte 0 chooses the privilege level, byte 1 paging and
 * mstatus bits, bytes 2..9 medeleg/mideleg, then 32 register seeds of 8
 * bytes, then code.  The code is copied to the start of RAM; the first RAM
 * page doubles as the root page table, so random PTEs get walked too. */
#include "rv64_harness.h"

#define FUZZ_STEPS 4000
#define SEED_REGS 32

static uint64_t take64(const uint8_t **p, size_t *n)
{
    uint64_t v = 0;
    size_t k = *n < 8 ? *n : 8;
    memcpy(&v, *p, k);
    *p += k;
    *n -= k;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        rvt_init();
        inited = 1;
    }
    if (size < 2)
        return 0;
    rvt_begin("fuzz");
    static const unsigned privs[4] = { PRV_U, PRV_S, PRV_M, PRV_M };
    unsigned priv = privs[data[0] & 3];
    uint8_t flags = data[1];
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    H->medeleg = take64(&p, &n) & 0xb3ff;
    H->mideleg = (H->medeleg >> 16) & 0x222;
    for (unsigned i = 1; i < SEED_REGS; i++) {
        uint64_t v = take64(&p, &n);
        /* half of the registers point into RAM or at the device */
        if (i & 1)
            v = (v & 0x40) ? MMIO_BASE + (v & (MMIO_SIZE - 1)) : RAM_BASE + (v % RAM_SIZE);
        H->x[i] = v;
        H->f[i] = v ^ 0xffffffff00000000ull;
    }
    size_t code = n < RAM_SIZE / 2 ? n : RAM_SIZE / 2;
    memcpy(rvt.ram, p, code);

    uint64_t mstatus = H->mstatus;
    if (flags & 0x04) mstatus |= MSTATUS_SUM;
    if (flags & 0x08) mstatus |= MSTATUS_MXR;
    if (flags & 0x10) mstatus |= MSTATUS_MPRV | ((uint64_t)(flags >> 6) << 11);
    if (flags & 0x20) mstatus |= MSTATUS_FS;
    rvt_set_mstatus(mstatus);
    if (flags & 0x03)
        rvt_set_satp(((flags & 0x02 ? 9ull : 8ull) << 60) | (RAM_BASE >> 12));
    H->mtvec = CODE + 4 * (flags & 0x0f);
    H->stvec = CODE + 0x40;
    H->mie = flags & 0x80 ? 0xaaa : 0;
    rvt_set_priv(priv);
    H->pc = CODE;
    rvt_run(FUZZ_STEPS);
    return 0;
}
