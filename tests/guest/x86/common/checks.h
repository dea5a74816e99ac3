/* Checks shared by the boot tests. */
#ifndef X86_CHECKS_H
#define X86_CHECKS_H

#include "rt.h"

struct mem_range {
    uint64_t addr, size;
    uint32_t type;
};

static inline const char *mem_type_name(uint32_t t) {
    switch (t) {
    case 1: return "RAM";
    case 2: return "reserved";
    case 3: return "ACPI";
    case 4: return "NVS";
    case 5: return "unusable";
    default: return "?";
    }
}

/* Is [lo, hi) inside the union of the ranges of type `type`? */
static inline bool ranges_cover(const struct mem_range *r, unsigned n, uint32_t type, uint64_t lo,
                                uint64_t hi) {
    uint64_t cur = lo;
    while (cur < hi) {
        bool moved = false;
        for (unsigned i = 0; i < n; i++) {
            if (r[i].type == type && r[i].addr <= cur && cur < r[i].addr + r[i].size) {
                cur = r[i].addr + r[i].size;
                moved = true;
            }
        }
        if (!moved) return false;
    }
    return true;
}

/* Do any ranges of type `type` intersect [lo, hi)? */
static inline bool ranges_touch(const struct mem_range *r, unsigned n, uint32_t type, uint64_t lo,
                                uint64_t hi) {
    for (unsigned i = 0; i < n; i++)
        if (r[i].type == type && r[i].addr < hi && lo < r[i].addr + r[i].size) return true;
    return false;
}

/* The checks both boot tests make on a memory map: sane entries, no
 * overlaps (and sorted if `sorted`), RAM below 640 KiB and from 1 MiB
 * up to the end of low RAM, which must hold our image.  Returns the end
 * of RAM below 4 GiB. */
static inline uint64_t check_memory_map(const struct mem_range *r, unsigned n, bool sorted) {
    uint64_t ram_end = 0;
    for (unsigned i = 0; i < n; i++) {
        printf("  [%016lx-%016lx) %s\n", r[i].addr, r[i].addr + r[i].size,
               mem_type_name(r[i].type));
        CHECK_MSG(r[i].size != 0, "memory map entry %u is empty", i);
        CHECK_MSG(r[i].type >= 1 && r[i].type <= 5, "memory map entry %u type %u", i, r[i].type);
        CHECK_MSG(r[i].addr + r[i].size > r[i].addr, "memory map entry %u wraps", i);
        if (r[i].type == E820_RAM && r[i].addr < (4ull << 30)) {
            uint64_t e = r[i].addr + r[i].size;
            if (e > (4ull << 30)) e = 4ull << 30;
            if (e > ram_end) ram_end = e;
        }
        for (unsigned j = 0; j < i; j++) {
            bool overlap = r[i].addr < r[j].addr + r[j].size && r[j].addr < r[i].addr + r[i].size;
            CHECK_MSG(!overlap, "memory map entries %u and %u overlap", j, i);
        }
        if (sorted && i) CHECK_MSG(r[i].addr > r[i - 1].addr, "memory map not sorted at %u", i);
    }
    CHECK_MSG(ranges_cover(r, n, E820_RAM, 0, 0x9fc00), "RAM does not cover [0, 0x9fc00)");
    CHECK_GE(ram_end, 16ull << 20);
    CHECK_MSG(ranges_cover(r, n, E820_RAM, 0x100000, ram_end),
              "RAM does not cover [1 MiB, 0x%lx)", ram_end);
    CHECK_MSG(!ranges_touch(r, n, E820_RAM, 0xa0000, 0xc0000),
              "the VGA hole [0xa0000, 0xc0000) is RAM");
    CHECK_MSG(ranges_cover(r, n, E820_RAM, (uint64_t)__image_start, (uint64_t)__image_end),
              "our image [0x%lx, 0x%lx) is not in RAM", (uint64_t)__image_start,
              (uint64_t)__image_end);
    CHECK_MSG(!ranges_touch(r, n, E820_RAM, 0xfec00000, 0xfee01000),
              "the IOAPIC/LAPIC window is RAM");
    return ram_end;
}

/* After our own switch: 64-bit mode with our GDT and page tables. */
static inline void check_long_mode(void) {
    extern char pml4[];
    uint32_t r[4];
    cpuid(0x80000001, 0, r);
    CHECK_MSG(r[3] & (1u << 29), "CPUID says no long mode");
    uint64_t efer = rdmsr(MSR_EFER);
    CHECK_MSG(efer & EFER_LME, "EFER.LME clear (0x%lx)", efer);
    CHECK_MSG(efer & EFER_LMA, "EFER.LMA clear (0x%lx)", efer);
    CHECK(READ_CR(0) & CR0_PG);
    CHECK(READ_CR(0) & CR0_PE);
    CHECK(READ_CR(4) & CR4_PAE);
    CHECK_EQ(READ_CR(3) & ~0xfffull, (uint64_t)pml4);
    CHECK_EQ(read_cs(), SEL_KCODE64);
    /* something only 64-bit code can do: 64-bit registers and RIP-relative data */
    volatile uint64_t v = 0x123456789ull;
    uint64_t w = v << 24;
    CHECK_EQ(w >> 32, 0x1234567ull);
    uint64_t rip;
    __asm__ volatile("leaq 0(%%rip), %0" : "=r"(rip));
    CHECK(rip >= (uint64_t)__image_start && rip < (uint64_t)__image_end);
}

/* Segment descriptor at selector `sel` in a GDT of `limit`+1 bytes */
static inline bool gdt_desc(uint64_t base, uint16_t limit, uint16_t sel, uint64_t *d) {
    if ((sel & ~7u) == 0 || (sel & 4) || (uint32_t)(sel & ~7u) + 7 > limit) return false;
    *d = *(const uint64_t *)phys(base + (sel & ~7u));
    return true;
}
#define DESC_BASE(d) ((((d) >> 16) & 0xffffff) | (((d) >> 56) << 24))
#define DESC_LIMIT(d) ((((d) & 0xffff) | (((d) >> 48) & 0xf) << 16))
#define DESC_G(d) (((d) >> 55) & 1)
#define DESC_DB(d) (((d) >> 54) & 1)
#define DESC_L(d) (((d) >> 53) & 1)
#define DESC_P(d) (((d) >> 47) & 1)
#define DESC_DPL(d) (((d) >> 45) & 3)
#define DESC_S(d) (((d) >> 44) & 1)
#define DESC_TYPE(d) (((d) >> 40) & 0xf)

/* flat (base 0, 4 GiB) present DPL0 code (32- or 64-bit) or data descriptor */
static inline void check_flat_desc(const char *what, uint64_t d, bool code, int bits) {
    printf("  %s descriptor 0x%016lx\n", what, d);
    CHECK_MSG(DESC_P(d), "%s: not present", what);
    CHECK_MSG(DESC_S(d), "%s: system descriptor", what);
    CHECK_MSG(DESC_DPL(d) == 0, "%s: DPL %lu", what, DESC_DPL(d));
    if (code) {
        CHECK_MSG(DESC_TYPE(d) & 8, "%s: not code (type %lu)", what, DESC_TYPE(d));
        if (bits == 64) {
            CHECK_MSG(DESC_L(d) && !DESC_DB(d), "%s: not 64-bit (L=%lu D=%lu)", what, DESC_L(d),
                      DESC_DB(d));
            return; /* base and limit are ignored */
        }
        CHECK_MSG(!DESC_L(d) && DESC_DB(d), "%s: not 32-bit (L=%lu D=%lu)", what, DESC_L(d),
                  DESC_DB(d));
        CHECK_MSG(DESC_TYPE(d) & 2, "%s: not readable", what);
    } else {
        CHECK_MSG(!(DESC_TYPE(d) & 8), "%s: not data (type %lu)", what, DESC_TYPE(d));
        CHECK_MSG(DESC_TYPE(d) & 2, "%s: not writable", what);
    }
    CHECK_MSG(DESC_BASE(d) == 0, "%s: base 0x%lx", what, DESC_BASE(d));
    CHECK_MSG(DESC_LIMIT(d) == 0xfffff && DESC_G(d), "%s: limit 0x%lx G=%lu, not 4 GiB", what,
              DESC_LIMIT(d), DESC_G(d));
}

#endif
