/* boot_bzimage: the bzImage boot paths (see common/entry_bz.S).
 * - boot_params: setup header copied (HdrS, version 2.15, our fields),
 *   type_of_loader (0xff on the 64-bit entry: Petrel; QEMU's BIOS path
 *   says 0xb0), command line = TEST_CMDLINE, e820 table sorted,
 *   non-overlapping, RAM below 640 KiB and from 1 MiB over the kernel;
 * - 64-bit entry (Petrel): CS = 0x08 64-bit code, DS/ES/SS = 0x10 flat data
 *   in the loader's GDT, paging on with identity page tables covering
 *   4 GiB (walked), boot_params and the command line readable through
 *   them, IF = 0;
 * - 32-bit entry: protected mode, paging off, __BOOT_CS 0x10 / __BOOT_DS
 *   0x18 flat segments;
 * - 64-bit mode after our own switch. */
#include "checks.h"

#ifndef WANT_CMDLINE
#ifdef TEST_BREAK
#define WANT_CMDLINE TEST_CMDLINE " (broken on purpose)"
#else
#define WANT_CMDLINE TEST_CMDLINE
#endif
#endif

#define BP8(o) (*(const uint8_t *)(bp + (o)))
#define BP16(o) (*(const uint16_t *)(bp + (o)))
#define BP32(o) (*(const uint32_t *)(bp + (o)))
#define BP64(o) (*(const uint64_t *)(bp + (o)))

/* walk the page tables at cr3 (4-level): physical address for va, or -1 */
static uint64_t translate(uint64_t cr3, uint64_t va, unsigned *level, bool *writable) {
    uint64_t table = cr3 & 0x000ffffffffff000ull;
    *writable = true;
    for (int l = 4; l >= 1; l--) {
        unsigned idx = (va >> (12 + 9 * (l - 1))) & 511;
        uint64_t e = *(const uint64_t *)phys(table + 8 * idx);
        if (!(e & 1)) return ~0ull;
        if (!(e & 2)) *writable = false;
        uint64_t addr = e & 0x000ffffffffff000ull;
        if (l > 1 && l < 4 && (e & 0x80)) { /* 1 GiB or 2 MiB page */
            uint64_t mask = (1ull << (12 + 9 * (l - 1))) - 1;
            *level = l;
            return (addr & ~mask) + (va & mask);
        }
        if (l == 1) {
            *level = 1;
            return addr + (va & 0xfff);
        }
        table = addr;
    }
    return ~0ull;
}

static void check_loader_paging(uint64_t cr3) {
    unsigned n2m = 0, n1g = 0, n4k = 0;
    for (uint64_t va = 0; va < (4ull << 30); va += 2ull << 20) {
        unsigned level = 0;
        bool w;
        uint64_t pa = translate(cr3, va, &level, &w);
        if (pa != va || !w) {
            CHECK_MSG(pa == va, "loader page tables map 0x%lx to 0x%lx, not identity", va, pa);
            CHECK_MSG(w, "loader page tables map 0x%lx read-only", va);
        }
        if (level == 1) { /* 4 KiB pages here: check the last one too */
            n4k++;
            uint64_t last = va + (2ull << 20) - 4096;
            CHECK_EQ(translate(cr3, last, &level, &w), last);
        }
        n2m += level == 2;
        n1g += level == 3;
    }
    rt_checks++;
    printf("  loader page tables (cr3 0x%lx): 4 GiB identity-mapped (%u 2 MiB pages, %u 2 MiB "
           "ranges of 4 KiB pages, %u 1 GiB pages)\n",
           cr3, n2m, n4k, n1g);
}

void test_main(void) {
    const struct boot_state *bs = &boot_state;
    const uint8_t *bp = phys(bs->info);
    const char *how = bs->entry == ENTRY_BZ64 ? "64-bit entry"
                      : bs->via_setup16       ? "real-mode setup -> 32-bit entry"
                                              : "32-bit entry";
    printf("boot_bzimage: entered via %s, boot_params at 0x%lx\n", how, bs->info);
    printf("  entry: cr0=0x%lx cr3=0x%lx cr4=0x%lx efer=0x%lx rflags=0x%lx cs=0x%x ds=0x%x "
           "es=0x%x ss=0x%x\n",
           bs->cr0, bs->cr3, bs->cr4, bs->efer, bs->rflags, bs->cs, bs->ds, bs->es, bs->ss);
    CHECK(bs->entry == ENTRY_BZ32 || bs->entry == ENTRY_BZ64);
    CHECK_MSG(bs->info != 0 && bs->info + 4096 <= (4ull << 30), "boot_params at 0x%lx", bs->info);
    CHECK_MSG(!(bs->rflags & (1u << 9)), "entered with IF set");

    /* ---- entry state ---- */
    uint16_t glimit;
    memcpy(&glimit, bs->gdtr, 2);
    uint64_t d;
    if (bs->entry == ENTRY_BZ64) {
        uint64_t gbase;
        memcpy(&gbase, bs->gdtr + 2, 8);
        printf("  loader GDT base 0x%lx limit 0x%x\n", gbase, glimit);
        CHECK(bs->cr0 & CR0_PE);
        CHECK(bs->cr0 & CR0_PG);
        CHECK(bs->cr4 & CR4_PAE);
        CHECK(bs->efer & EFER_LME);
        CHECK(bs->efer & EFER_LMA);
        /* Petrel's contract: 0x08 = 64-bit code, 0x10 = data (Linux's
         * startup_64 loads its own GDT and does not care) */
        CHECK_EQ(bs->cs, 0x08);
        CHECK_EQ(bs->ds, 0x10);
        CHECK_EQ(bs->es, 0x10);
        CHECK_EQ(bs->ss, 0x10);
        CHECK_MSG(gdt_desc(gbase, glimit, bs->cs, &d), "CS 0x%x outside the GDT", bs->cs);
        check_flat_desc("loader CS", d, true, 64);
        CHECK_MSG(gdt_desc(gbase, glimit, bs->ds, &d), "DS 0x%x outside the GDT", bs->ds);
        check_flat_desc("loader DS", d, false, 0);
        CHECK_EQ(bs->data_sel_ok, 1);
        /* what the entry code read through the loader's paging */
        CHECK_EQ(bs->probe_bp, BP64(0));
        check_loader_paging(bs->cr3);
    } else {
        uint32_t gbase;
        memcpy(&gbase, bs->gdtr + 2, 4);
        CHECK(bs->cr0 & CR0_PE);
        CHECK(!(bs->cr0 & CR0_PG));
        CHECK(!(bs->efer & EFER_LMA));
        /* the 32-bit boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18 */
        CHECK_EQ(bs->cs, 0x10);
        CHECK_EQ(bs->ds, 0x18);
        CHECK_EQ(bs->es, 0x18);
        CHECK_EQ(bs->ss, 0x18);
        CHECK_MSG(gdt_desc(gbase, glimit, bs->cs, &d), "CS 0x%x outside the GDT", bs->cs);
        check_flat_desc("entry CS", d, true, 32);
        CHECK_MSG(gdt_desc(gbase, glimit, bs->ds, &d), "DS 0x%x outside the GDT", bs->ds);
        check_flat_desc("entry DS", d, false, 0);
    }

    /* ---- setup header in boot_params ---- */
    CHECK_EQ(BP32(0x202), 0x53726448); /* "HdrS" */
    CHECK_EQ(BP16(0x206), 0x020f);
    CHECK_EQ(BP8(0x1f1), 8);           /* setup_sects */
    CHECK_EQ(BP16(0x1fe), 0xaa55);
    CHECK_EQ(BP16(0x236) & 1, 1);      /* XLF_KERNEL_64 */
    CHECK_EQ(BP8(0x211) & 1, 1);       /* LOADED_HIGH */
    CHECK_EQ(BP32(0x214), 0x100000);   /* code32_start */
    CHECK_EQ(BP32(0x260), ((uint64_t)__image_end - 0x100000 + 4095) & ~4095ull); /* init_size */
    uint8_t tol = BP8(0x210);
    printf("  type_of_loader=0x%02x loadflags=0x%02x setup_data=0x%lx cmd_line_ptr=0x%x\n", tol,
           BP8(0x211), BP64(0x250), BP32(0x228));
    if (bs->entry == ENTRY_BZ64) CHECK_EQ(tol, 0xff);
    else if (bs->via_setup16) CHECK_EQ(tol, 0xb0); /* QEMU's loader ID */
    else CHECK_NE(tol, 0);

    /* ---- command line ---- */
    uint64_t cl = boot_cmdline();
    CHECK_MSG(cl != 0, "no cmd_line_ptr");
    const char *cmdline = phys(cl);
    printf("  cmdline at 0x%lx: \"%s\"\n", cl, cmdline);
    CHECK_MSG(strcmp(cmdline, WANT_CMDLINE) == 0, "cmdline \"%s\", want \"%s\"", cmdline,
              WANT_CMDLINE);
    if (bs->entry == ENTRY_BZ64) CHECK_EQ(bs->probe_cmdline, *(const uint64_t *)cmdline);

    /* ---- e820 ---- */
    unsigned n = BP8(0x1e8);
    printf("  e820: %u entries\n", n);
    CHECK_RANGE(n, 2, 128);
    struct mem_range map[128];
    const struct e820_entry *e = (const void *)(bp + 0x2d0);
    for (unsigned i = 0; i < n; i++) map[i] = (struct mem_range){e[i].addr, e[i].size, e[i].type};
    uint64_t ram_end = check_memory_map(map, n, true);
    printf("  low RAM ends at 0x%lx (%lu MiB)\n", ram_end, ram_end >> 20);
    CHECK_MSG(ranges_cover(map, n, E820_RAM, 0x100000, 0x100000 + BP32(0x260)),
              "the kernel's init_size range is not RAM");
    /* boot_params and command line must not overlap the kernel */
    CHECK(bs->info + 4096 <= 0x100000 || bs->info >= 0x100000 + BP32(0x260));
    CHECK(cl + sizeof WANT_CMDLINE <= 0x100000 || cl >= 0x100000 + BP32(0x260));

    check_long_mode();
    pass();
}
