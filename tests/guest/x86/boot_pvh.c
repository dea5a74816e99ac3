/* boot_pvh: the PVH boot path.
 * - entry state per the PVH ABI (32-bit protected mode, paging off, IF=0,
 *   flat 32-bit code and data segments when the GDT is readable);
 * - hvm_start_info: magic, version 1, command line = TEST_CMDLINE, no
 *   modules, memory map (RAM below 640 KiB and from 1 MiB, no overlaps,
 *   VGA hole and APIC window not RAM);
 * - 64-bit mode after our own switch. */
#include "checks.h"

#ifndef WANT_CMDLINE
#ifdef TEST_BREAK
#define WANT_CMDLINE TEST_CMDLINE " (broken on purpose)"
#else
#define WANT_CMDLINE TEST_CMDLINE
#endif
#endif

void test_main(void) {
    const struct boot_state *bs = &boot_state;
    printf("boot_pvh: entry: ebx=0x%lx cr0=0x%lx cr4=0x%lx efer=0x%lx eflags=0x%lx "
           "cs=0x%x ds=0x%x es=0x%x ss=0x%x\n",
           bs->info, bs->cr0, bs->cr4, bs->efer, bs->rflags, bs->cs, bs->ds, bs->es, bs->ss);

    /* ---- entry state ---- */
    CHECK_EQ(bs->entry, ENTRY_PVH);
    CHECK_MSG(bs->cr0 & CR0_PE, "entered with CR0.PE clear");
    CHECK_MSG(!(bs->cr0 & CR0_PG), "entered with paging on");
    CHECK_MSG(!(bs->efer & EFER_LMA), "entered with EFER.LMA set");
    CHECK_MSG(!(bs->rflags & (1u << 9)), "entered with IF set");
    CHECK_MSG(!(bs->rflags & (1u << 8)), "entered with TF set");
    CHECK_MSG(!(bs->rflags & (1u << 17)), "entered with VM set");
    uint16_t glimit;
    uint32_t gbase;
    memcpy(&glimit, bs->gdtr, 2);
    memcpy(&gbase, bs->gdtr + 2, 4);
    printf("  entry GDT base 0x%x limit 0x%x\n", gbase, glimit);
    uint64_t d;
    if (gdt_desc(gbase, glimit, bs->cs, &d)) {
        check_flat_desc("entry CS", d, true, 32);
        CHECK(gdt_desc(gbase, glimit, bs->ds, &d));
        check_flat_desc("entry DS", d, false, 0);
        CHECK(gdt_desc(gbase, glimit, bs->es, &d));
        check_flat_desc("entry ES", d, false, 0);
        CHECK(gdt_desc(gbase, glimit, bs->ss, &d));
        check_flat_desc("entry SS", d, false, 0);
    } else {
        printf("  (entry CS 0x%x is not in the GDT: descriptors not checked)\n", bs->cs);
    }

    /* ---- hvm_start_info ---- */
    const struct hvm_start_info *si = phys(bs->info);
    CHECK_MSG(bs->info != 0 && bs->info < (4ull << 30), "EBX = 0x%lx", bs->info);
    CHECK_EQ(si->magic, HVM_START_MAGIC);
    CHECK_EQ(si->version, 1);
    printf("  start_info: flags=0x%x nr_modules=%u modlist=0x%lx cmdline=0x%lx rsdp=0x%lx "
           "memmap=0x%lx entries=%u\n",
           si->flags, si->nr_modules, si->modlist_paddr, si->cmdline_paddr, si->rsdp_paddr,
           si->memmap_paddr, si->memmap_entries);

    CHECK_NE(si->cmdline_paddr, 0);
    const char *cmdline = phys(si->cmdline_paddr);
    printf("  cmdline: \"%s\"\n", cmdline);
    CHECK_MSG(strcmp(cmdline, WANT_CMDLINE) == 0, "cmdline \"%s\", want \"%s\"", cmdline,
              WANT_CMDLINE);
    CHECK_EQ(si->nr_modules, 0);

    CHECK_NE(si->memmap_paddr, 0);
    CHECK_RANGE(si->memmap_entries, 2, 128);
    struct mem_range map[128];
    unsigned n = si->memmap_entries;
    const struct hvm_memmap_entry *mm = phys(si->memmap_paddr);
    for (unsigned i = 0; i < n; i++) {
        map[i] = (struct mem_range){mm[i].addr, mm[i].size, mm[i].type};
        CHECK_EQ(mm[i].reserved, 0);
    }
    uint64_t ram_end = check_memory_map(map, n, false);
    printf("  low RAM ends at 0x%lx (%lu MiB)\n", ram_end, ram_end >> 20);

    /* ---- after our switch ---- */
    check_long_mode();
    pass();
}
