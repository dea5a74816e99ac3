/* x86 direct kernel boot (src/arch/x86/boot.h): synthetic bzImages and
 * PVH ELF files loaded into real guest memory, then every structure read
 * back the way the guest reads it (boot_params, e820, page-table walks, GDT,
 * MP table, hvm_start_info); hostile files are rejected; the Debian kernel
 * from images/build-x86_64.sh is loaded too when it has been built. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/log.h"
#include "core/memory.h"

#include "unit.h"
#include "x86_guest_mem.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Fixed guest addresses from boot.h (spelled out here on purpose). */
#define GDT 0x500
#define PML4 0x1000
#define ZP 0x7000
#define CMDLINE 0x20000
#define MPF 0x9fc00
#define KERNEL 0x100000

/* ------------------------------------------------------------------ */
/* Guest memory                                                         */


static uint8_t g8(const struct gmem *m, uint64_t a) { return *G(m, a, 1); }
static uint16_t g16(const struct gmem *m, uint64_t a) { uint16_t v; memcpy(&v, G(m, a, 2), 2); return v; }
static uint32_t g32(const struct gmem *m, uint64_t a) { uint32_t v; memcpy(&v, G(m, a, 4), 4); return v; }
static uint64_t g64(const struct gmem *m, uint64_t a) { uint64_t v; memcpy(&v, G(m, a, 8), 8); return v; }

static void w16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void w32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void w64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t r32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* Synthetic files                                                      */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD 20000
#define BZ_CMDLINE_SIZE 2047
#define BZ_INIT_SIZE (8 * MiB)

/* A bzImage with a 2.15 header and a patterned protected-mode kernel. */
static uint8_t *bz_new(size_t *size)
{
    *size = BZ_SETUP + BZ_PAYLOAD;
    uint8_t *k = pattern(*size, 7);
    memset(k, 0, BZ_SETUP);
    k[0x1f1] = BZ_SETUP_SECTS;
    w16(k + 0x1fa, 0xffff);                 /* vid_mode: normal */
    w16(k + 0x1fe, 0xaa55);
    k[0x200] = 0xeb;                        /* jmp short to 0x26c */
    k[0x201] = 0x6a;
    memcpy(k + 0x202, "HdrS", 4);
    w16(k + 0x206, 0x020f);
    k[0x211] = 0x01;                        /* LOADED_HIGH */
    w32(k + 0x214, 0x100000);               /* code32_start */
    w32(k + 0x22c, 0x7fffffff);             /* initrd_addr_max */
    w32(k + 0x230, 0x200000);               /* kernel_alignment */
    k[0x234] = 1;                           /* relocatable */
    w16(k + 0x236, 0x3);                    /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
    w32(k + 0x238, BZ_CMDLINE_SIZE);
    w64(k + 0x258, 0x1000000);              /* pref_address */
    w32(k + 0x260, (uint32_t)BZ_INIT_SIZE);
    memset(k + 0x26c, 0xee, 0x290 - 0x26c); /* past the header: never copied */
    memset(k + 0x290, 0xdd, 0x400 - 0x290); /* setup code */
    return k;
}

enum note_at { NOTE_NONE, NOTE_PHDR, NOTE_SECTION };

#define ELF_NOTE_OFF 0x100
#define ELF_SHDR_OFF 0x180
#define ELF_DATA_OFF 0x1000

struct elf_spec {
    int is64;
    uint64_t paddr, filesz, memsz;
    uint64_t entry;
    enum note_at note;
    unsigned desc_size;     /* of the Xen note: 4 or 8 */
};

/* An ELF with one PT_LOAD segment of patterned data and a GNU build-id note
 * followed by the Xen PVH entry note (in a PT_NOTE or only a section). */
static uint8_t *elf_new(const struct elf_spec *s, size_t *size)
{
    *size = ELF_DATA_OFF + s->filesz;
    uint8_t *f = pattern(*size, 11);
    memset(f, 0, ELF_DATA_OFF);

    uint8_t *n = f + ELF_NOTE_OFF;
    w32(n, 4); w32(n + 4, 20); w32(n + 8, 3);  /* "GNU", NT_GNU_BUILD_ID */
    memcpy(n + 12, "GNU", 4);
    memset(n + 16, 0x5a, 20);
    n += 36;
    w32(n, 4); w32(n + 4, s->desc_size); w32(n + 8, 18);
    memcpy(n + 12, "Xen", 4);
    if (s->desc_size == 8)
        w64(n + 16, s->entry);
    else
        w32(n + 16, (uint32_t)s->entry);
    size_t note_len = 36 + 16 + s->desc_size;

    unsigned phnum = s->note == NOTE_PHDR ? 2 : 1;
    if (s->is64) {
        Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                          .e_entry = s->entry, .e_phoff = sizeof(Elf64_Ehdr),
                          .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
                          .e_phnum = (uint16_t)phnum };
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        Elf64_Phdr ph[2] = {
            { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = ELF_DATA_OFF,
              .p_vaddr = 0xffffffff80000000ull + s->paddr, .p_paddr = s->paddr,
              .p_filesz = s->filesz, .p_memsz = s->memsz, .p_align = 4096 },
            { .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = note_len,
              .p_memsz = note_len, .p_align = 4 },
        };
        if (s->note == NOTE_SECTION) {
            eh.e_shoff = ELF_SHDR_OFF;
            eh.e_shentsize = sizeof(Elf64_Shdr);
            eh.e_shnum = 2;
            Elf64_Shdr sh[2] = { { 0 }, { .sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFF,
                                          .sh_size = note_len, .sh_addralign = 4 } };
            memcpy(f + ELF_SHDR_OFF, sh, sizeof(sh));
        }
        memcpy(f, &eh, sizeof(eh));
        memcpy(f + sizeof(eh), ph, phnum * sizeof(ph[0]));
    } else {
        Elf32_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
                          .e_entry = (uint32_t)s->entry, .e_phoff = sizeof(Elf32_Ehdr),
                          .e_ehsize = sizeof(Elf32_Ehdr), .e_phentsize = sizeof(Elf32_Phdr),
                          .e_phnum = (uint16_t)phnum };
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS32;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        Elf32_Phdr ph[2] = {
            { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = ELF_DATA_OFF,
              .p_vaddr = (uint32_t)s->paddr, .p_paddr = (uint32_t)s->paddr,
              .p_filesz = (uint32_t)s->filesz, .p_memsz = (uint32_t)s->memsz,
              .p_align = 4096 },
            { .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = (uint32_t)note_len,
              .p_memsz = (uint32_t)note_len, .p_align = 4 },
        };
        if (s->note == NOTE_SECTION) {
            eh.e_shoff = ELF_SHDR_OFF;
            eh.e_shentsize = sizeof(Elf32_Shdr);
            eh.e_shnum = 2;
            Elf32_Shdr sh[2] = { { 0 }, { .sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFF,
                                          .sh_size = (uint32_t)note_len, .sh_addralign = 4 } };
            memcpy(f + ELF_SHDR_OFF, sh, sizeof(sh));
        }
        memcpy(f, &eh, sizeof(eh));
        memcpy(f + sizeof(eh), ph, phnum * sizeof(ph[0]));
    }
    if (s->note == NOTE_NONE)
        memset(f + ELF_NOTE_OFF, 0, note_len);
    return f;
}

/* ------------------------------------------------------------------ */
/* Readers for what the guest sees                                      */

/* Walks the 4-level page tables from cr3 like the MMU: the physical
 * address va maps to, or -1.  *large_pdpt is set if a PDPT entry maps a
 * 1 GiB page (which PVM hosts cannot run). */
static uint64_t walk(const struct gmem *m, uint64_t cr3, uint64_t va, int *large_pdpt)
{
    const uint64_t addr_mask = 0x000ffffffffff000ull;
    uint64_t e = g64(m, (cr3 & addr_mask) + ((va >> 39) & 511) * 8);
    if (!(e & 1))
        return (uint64_t)-1;
    e = g64(m, (e & addr_mask) + ((va >> 30) & 511) * 8);
    if (!(e & 1))
        return (uint64_t)-1;
    if (e & 0x80) {
        *large_pdpt = 1;
        return (e & 0x000fffffc0000000ull) | (va & (GiB - 1));
    }
    e = g64(m, (e & addr_mask) + ((va >> 21) & 511) * 8);
    if (!(e & 1) || !(e & 2))
        return (uint64_t)-1;
    if (!(e & 0x80))
        return (uint64_t)-2;    /* we expect 2 MiB pages only */
    return (e & 0x000fffffffe00000ull) | (va & (2 * MiB - 1));
}

static void check_paging_and_gdt(const struct gmem *m, const struct x86_entry *en)
{
    static const uint64_t vas[] = { 0, 0x1234, 2 * MiB, 2 * MiB + 0x5678, GiB,
                                    GiB + 3 * MiB + 17, 0xff5c28f5ull /* 3.99 GiB */,
                                    0xfee00000ull, 4 * GiB - 1 };
    int large = 0;
    for (size_t i = 0; i < sizeof(vas) / sizeof(vas[0]); i++) {
        uint64_t pa = walk(m, PML4, vas[i], &large);
        CHECK(pa == vas[i], "va 0x%llx maps to 0x%llx", (unsigned long long)vas[i],
              (unsigned long long)pa);
    }
    EQ(large, 0);
    EQ(walk(m, PML4, 4 * GiB, &large), (uint64_t)-1);     /* nothing above 4 GiB */
    EQ(walk(m, PML4, 512 * GiB, &large), (uint64_t)-1);

    EQ(en->gdt_base, GDT);
    EQ(en->gdt_limit, 31);
    EQ(g64(m, GDT + 0), 0);
    EQ(g64(m, GDT + 8), 0x00af9a000000ffffull);
    EQ(g64(m, GDT + 16), 0x00cf92000000ffffull);
    EQ(g64(m, GDT + 24), 0x00cf9a000000ffffull);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

static void check_mptable(const struct gmem *m, unsigned ncpus)
{
    const uint8_t *mpf = G(m, MPF, 16);
    CHECK(!memcmp(mpf, "_MP_", 4), "no _MP_ at 0x9fc00");
    EQ(sum8(mpf, 16), 0);
    EQ(mpf[8], 1);
    EQ(mpf[9], 4);
    EQ(mpf[11], 0);
    uint32_t cfg = r32(mpf + 4);
    CHECK(cfg >= MPF + 16 && cfg < KERNEL, "config table at 0x%x", cfg);

    const uint8_t *hdr = G(m, cfg, 44);
    CHECK(!memcmp(hdr, "PCMP", 4), "no PCMP");
    uint16_t len = (uint16_t)(hdr[4] | hdr[5] << 8);
    EQ(hdr[6], 4);
    CHECK(!memcmp(hdr + 8, "PETREL  ", 8), "OEM id");
    CHECK(!memcmp(hdr + 16, "PETREL VM   ", 12), "product id");
    EQ(r32(hdr + 36), 0xfee00000u);
    EQ(g16(m, cfg + 40), 0);                       /* no extended table */
    const uint8_t *t = G(m, cfg, len);
    EQ(sum8(t, len), 0);
    CHECK(cfg + len <= KERNEL, "config table ends at 0x%x", cfg + len);
    unsigned count = (unsigned)(hdr[34] | hdr[35] << 8);

    unsigned cpus = 0, bsps = 0, buses = 0, ioapics = 0, ints = 0, extint = 0, nmi = 0;
    unsigned pci_ints = 0, bad_pci = 0;
    int pin_of_irq[16];
    uint8_t pci_seen[128] = { 0 };
    unsigned pos = 44, n = 0, ok_order = 1;
    for (int i = 0; i < 16; i++)
        pin_of_irq[i] = -1;
    while (pos < len && n < count) {
        const uint8_t *p = t + pos;
        switch (p[0]) {
        case 0:
            CHECK(p[1] == cpus, "processor %u has APIC ID %u", cpus, p[1]);
            EQ(p[2], 0x14);
            CHECK(p[3] & 1, "processor %u not enabled", cpus);
            if (p[3] & 2) {
                bsps++;
                EQ(p[1], 0);
            }
            ok_order &= buses == 0;
            cpus++;
            pos += 20;
            break;
        case 1:
            /* PCI bus 0 is MP bus 0 (Linux matches the numbers), ISA is 1 */
            EQ(p[1], buses);
            CHECK(!memcmp(p + 2, buses == 0 ? "PCI   " : "ISA   ", 6), "bus %u type %.6s",
                  buses, (const char *)p + 2);
            buses++;
            pos += 8;
            break;
        case 2:
            EQ(p[1], ncpus);
            EQ(p[2], 0x11);
            EQ(p[3] & 1, 1);
            EQ(r32(p + 4), 0xfec00000u);
            ioapics++;
            pos += 8;
            break;
        case 3:
            EQ(p[1], 0);                /* INT */
            EQ(p[6], ncpus);            /* the IOAPIC */
            if (p[4] == 0) {            /* PCI: slot << 2 | pin, level, active low */
                unsigned slot = p[5] >> 2, pin = p[5] & 3;
                EQ(p[2] | p[3] << 8, 0xf);
                CHECK(p[5] < 128 && !pci_seen[p[5]], "duplicate PCI source 0x%x", p[5]);
                if (p[5] < 128)
                    pci_seen[p[5]] = 1;
                bad_pci += p[7] != 16 + (slot + pin) % 4;
                pci_ints++;
            } else {
                EQ(p[4], 1);            /* ISA bus */
                EQ(p[2] | p[3] << 8, 0);  /* conforming: edge, active high */
                CHECK(p[5] < 16 && pin_of_irq[p[5]] < 0, "bad or duplicate IRQ %u", p[5]);
                if (p[5] < 16)
                    pin_of_irq[p[5]] = p[7];
                ints++;
            }
            pos += 8;
            break;
        case 4:
            EQ(p[6], 0xff);
            if (p[1] == 3) {
                EQ(p[7], 0);
                extint++;
            } else if (p[1] == 1) {
                EQ(p[7], 1);
                nmi++;
            } else {
                CHECK(0, "local interrupt of type %u", p[1]);
            }
            pos += 8;
            break;
        default:
            CHECK(0, "unknown MP entry type %u at +%u", p[0], pos);
            pos = len;
            break;
        }
        n++;
    }
    EQ(pos, len);
    EQ(n, count);
    EQ(cpus, ncpus);
    EQ(bsps, 1);
    EQ(ok_order, 1);
    EQ(buses, 2);
    EQ(ioapics, 1);
    EQ(extint, 1);
    EQ(nmi, 1);
    EQ(ints, 15);
    EQ(pci_ints, 128);          /* 32 slots, INTA-INTD: GSI 16 + (slot + pin) % 4 */
    EQ(bad_pci, 0);
    EQ(pin_of_irq[0], 2);
    EQ(pin_of_irq[2], -1);      /* the cascade */
    for (int irq = 1; irq < 16; irq++)
        if (irq != 2)
            CHECK(pin_of_irq[irq] == irq, "IRQ %d on pin %d", irq, pin_of_irq[irq]);
}

struct e820 {
    uint64_t addr, size;
    uint32_t type;
};

/* The map expected for mem_size: see boot.h. */
static unsigned e820_expected(uint64_t mem_size, struct e820 *e)
{
    uint64_t low = mem_size < 3 * GiB ? mem_size : 3 * GiB;
    unsigned n = 0;
    e[n++] = (struct e820){ 0, 0x9fc00, 1 };
    e[n++] = (struct e820){ 0x9fc00, 0x100000 - 0x9fc00, 2 };
    e[n++] = (struct e820){ 0x100000, low - 0x100000, 1 };
    if (mem_size > 3 * GiB)
        e[n++] = (struct e820){ 4 * GiB, mem_size - 3 * GiB, 1 };
    return n;
}

static void check_bp_e820(const struct gmem *m, uint64_t mem_size)
{
    struct e820 want[4];
    unsigned n = e820_expected(mem_size, want);
    EQ(g8(m, ZP + 0x1e8), n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = ZP + 0x2d0 + 20 * i;
        EQ(g64(m, a), want[i].addr);
        EQ(g64(m, a + 8), want[i].size);
        EQ(g32(m, a + 16), want[i].type);
    }
    /* The MP table is in a reserved range. */
    CHECK(want[1].addr <= MPF && MPF + 16 <= want[1].addr + want[1].size, "MP not reserved");
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_ram_layout(void)
{
    uint64_t b[2], s[2];
    EQ(x86_ram_layout(512 * MiB, b, s), 1);
    EQ(b[0], 0);
    EQ(s[0], 512 * MiB);
    EQ(x86_ram_layout(3 * GiB, b, s), 1);
    EQ(b[0], 0);
    EQ(s[0], 3 * GiB);
    EQ(x86_ram_layout(5 * GiB, b, s), 2);
    EQ(b[0], 0);
    EQ(s[0], 3 * GiB);
    EQ(b[1], 4 * GiB);
    EQ(s[1], 2 * GiB);
    EQ(x86_ram_layout(3 * GiB + 4096, b, s), 2);
    EQ(s[1], 4096);
}

static int boot(const struct gmem *m, const uint8_t *k, size_t ksize, const uint8_t *initrd,
                size_t isize, const char *cmdline, uint64_t mem_size, unsigned ncpus,
                struct x86_entry *en, struct err *e)
{
    struct x86_boot_config cfg = {
        .kernel = k, .kernel_size = ksize, .kernel_name = "test-kernel",
        .initrd = initrd, .initrd_size = isize, .cmdline = cmdline,
        .mem_size = mem_size, .ncpus = ncpus,
    };
    e->msg[0] = 0;
    return x86_boot_setup(m, &cfg, en, e);
}

static void test_bzimage(uint64_t mem_size, unsigned ncpus)
{
    struct gmem m;
    if (mem_new(&m, mem_size) < 0) {
        unit_fail++;
        return;
    }
    size_t ksize, isize = 3 * 4096 + 123;
    uint8_t *k = bz_new(&ksize);
    uint8_t *initrd = pattern(isize, 3);
    const char *cmd = "console=ttyS0 root=/dev/vda rw";
    struct x86_entry en;
    struct err e;
    int is_pvh = -1;

    EQ(x86_kernel_probe(k, ksize, "bz", &is_pvh, &e), 0);
    EQ(is_pvh, 0);
    int ret = boot(&m, k, ksize, initrd, isize, cmd, mem_size, ncpus, &en, &e);
    CHECK(ret == 0, "bzImage setup: %d %s", ret, e.msg);
    if (ret != 0)
        goto out;

    EQ(en.mode, X86_ENTRY_LONG64);
    EQ(en.rip, KERNEL + 0x200);
    EQ(en.rsi, ZP);
    EQ(en.cr3, PML4);

    /* The protected-mode kernel at 1 MiB. */
    CHECK(!memcmp(G(&m, KERNEL, BZ_PAYLOAD), k + BZ_SETUP, BZ_PAYLOAD), "kernel payload");

    /* The setup header, copied up to the end of the jump's target... */
    CHECK(!memcmp(G(&m, ZP + 0x1f1, 0x210 - 0x1f1), k + 0x1f1, 0x210 - 0x1f1), "header");
    EQ(g8(&m, ZP + 0x1f1), BZ_SETUP_SECTS);
    EQ(g16(&m, ZP + 0x1fe), 0xaa55);
    EQ(g32(&m, ZP + 0x202), 0x53726448);
    EQ(g16(&m, ZP + 0x206), 0x020f);
    EQ(g32(&m, ZP + 0x22c), 0x7fffffff);
    EQ(g16(&m, ZP + 0x236), 3);
    EQ(g32(&m, ZP + 0x238), BZ_CMDLINE_SIZE);
    EQ(g64(&m, ZP + 0x258), 0x1000000);
    EQ(g32(&m, ZP + 0x260), BZ_INIT_SIZE);
    /* ...and not beyond. */
    EQ(g8(&m, ZP + 0x26c), 0);
    EQ(g8(&m, ZP + 0x28f), 0);
    EQ(g8(&m, ZP + 0x1ef), 0);                      /* sentinel */

    /* Fields the loader sets. */
    EQ(g8(&m, ZP + 0x210), 0xff);                   /* type_of_loader */
    EQ(g8(&m, ZP + 0x211), 0x81);                   /* LOADED_HIGH | CAN_USE_HEAP */
    EQ(g16(&m, ZP + 0x224), 0xfe00);                /* heap_end_ptr */
    EQ(g32(&m, ZP + 0x228), CMDLINE);
    EQ(g32(&m, ZP + 0x0c8), 0);                     /* ext_cmd_line_ptr */
    EQ(g64(&m, ZP + 0x070), 0xe0000);               /* acpi_rsdp_addr (test_x86_acpi) */
    CHECK(!strcmp((const char *)G(&m, CMDLINE, strlen(cmd) + 1), cmd), "cmdline");

    uint64_t low = mem_size < 3 * GiB ? mem_size : 3 * GiB;
    uint64_t top = low < 0x80000000ull ? low : 0x80000000ull;
    uint64_t rd = g32(&m, ZP + 0x218) | (uint64_t)g32(&m, ZP + 0x0c0) << 32;
    uint64_t rdsize = g32(&m, ZP + 0x21c) | (uint64_t)g32(&m, ZP + 0x0c4) << 32;
    EQ(rdsize, isize);
    EQ(rd & 0xfff, 0);
    EQ(rd, (top - isize) & ~0xfffull);              /* as high as possible */
    CHECK(rd >= 0x1000000 + BZ_INIT_SIZE, "initrd at 0x%llx overlaps the kernel",
          (unsigned long long)rd);
    CHECK(!memcmp(G(&m, rd, isize), initrd, isize), "initrd contents");

    check_bp_e820(&m, mem_size);
    check_paging_and_gdt(&m, &en);
    check_mptable(&m, ncpus);

    /* Without an initrd the ramdisk fields are zero. */
    ret = boot(&m, k, ksize, NULL, 0, NULL, mem_size, ncpus, &en, &e);
    CHECK(ret == 0, "no initrd: %s", e.msg);
    EQ(g32(&m, ZP + 0x218), 0);
    EQ(g32(&m, ZP + 0x21c), 0);
    EQ(g8(&m, CMDLINE), 0);
out:
    free(k);
    free(initrd);
    gmem_free(&m);
}

static void test_bzimage_variants(void)
{
    struct gmem m;
    if (mem_new(&m, 256 * MiB) < 0) {
        unit_fail++;
        return;
    }
    size_t ksize;
    uint8_t *k = bz_new(&ksize);
    struct x86_entry en;
    struct err e;
    int ret;

    /* setup_sects 0 means 4. */
    k[0x1f1] = 0;
    ret = boot(&m, k, ksize, NULL, 0, "x", 256 * MiB, 1, &en, &e);
    CHECK(ret == 0, "setup_sects 0: %s", e.msg);
    CHECK(!memcmp(G(&m, KERNEL, BZ_PAYLOAD), k + BZ_SETUP, BZ_PAYLOAD), "payload at 5*512");

    /* A short jump: only the header up to its target is copied. */
    k[0x1f1] = BZ_SETUP_SECTS;
    k[0x201] = 0x20;                                /* header ends at 0x222 */
    ret = boot(&m, k, ksize, NULL, 0, "x", 256 * MiB, 1, &en, &e);
    CHECK(ret == 0, "short header: %s", e.msg);
    EQ(g32(&m, ZP + 0x21c), 0);
    EQ(g32(&m, ZP + 0x22c), 0);                     /* initrd_addr_max not copied */
    EQ(g32(&m, ZP + 0x228), CMDLINE);               /* but set by the loader */

    /* A jump far past the header area is bounded by it (0x290). */
    k[0x201] = 0xff;
    ret = boot(&m, k, ksize, NULL, 0, "x", 256 * MiB, 1, &en, &e);
    CHECK(ret == 0, "long jump: %s", e.msg);
    EQ(g8(&m, ZP + 0x28f), 0xee);
    EQ(g32(&m, ZP + 0x290), 0);                     /* edd_mbr_sig_buffer untouched */
    EQ(g32(&m, ZP + 0x2d0 + 20 * 4), 0);            /* as is the e820 table's end */

    /* initrd_addr_max caps the initrd. */
    k[0x201] = 0x6a;
    w32(k + 0x22c, 0x037fffff);                     /* 56 MiB - 1 */
    uint8_t *initrd = pattern(5000, 9);
    ret = boot(&m, k, ksize, initrd, 5000, "x", 256 * MiB, 1, &en, &e);
    CHECK(ret == 0, "initrd_addr_max: %s", e.msg);
    EQ(g32(&m, ZP + 0x218), (0x03800000 - 5000) & ~0xfff);
    /* ... and an initrd_addr_max below the kernel leaves no room. */
    w32(k + 0x22c, 0x00ffffff);
    ret = boot(&m, k, ksize, initrd, 5000, "x", 256 * MiB, 1, &en, &e);
    EQ(ret, -ENOSPC);
    free(initrd);

    /* Command line exactly cmdline_size long is fine, one more is not. */
    w32(k + 0x22c, 0x7fffffff);
    char *cmd = malloc(BZ_CMDLINE_SIZE + 2);
    memset(cmd, 'a', BZ_CMDLINE_SIZE);
    cmd[BZ_CMDLINE_SIZE] = 0;
    ret = boot(&m, k, ksize, NULL, 0, cmd, 256 * MiB, 1, &en, &e);
    CHECK(ret == 0, "cmdline of cmdline_size: %s", e.msg);
    EQ(g8(&m, CMDLINE + BZ_CMDLINE_SIZE), 0);
    cmd[BZ_CMDLINE_SIZE] = 'b';
    cmd[BZ_CMDLINE_SIZE + 1] = 0;
    ret = boot(&m, k, ksize, NULL, 0, cmd, 256 * MiB, 1, &en, &e);
    EQ(ret, -E2BIG);
    CHECK(strstr(e.msg, "command line too long"), "message: %s", e.msg);
    free(cmd);

    free(k);
    gmem_free(&m);
}

static void test_pvh(int is64, uint64_t mem_size, enum note_at note)
{
    struct gmem m;
    if (mem_new(&m, mem_size) < 0) {
        unit_fail++;
        return;
    }
    struct elf_spec s = { .is64 = is64, .paddr = 0x200000, .filesz = 0x3000 + 77,
                          .memsz = 0x6000, .entry = 0x200040, .note = note,
                          .desc_size = is64 ? 8 : 4 };
    size_t ksize, isize = 70000;
    uint8_t *k = elf_new(&s, &ksize);
    uint8_t *initrd = pattern(isize, 5);
    const char *cmd = "console=ttyS0 pvh";
    struct x86_entry en;
    struct err e;
    int is_pvh = -1;

    memset(G(&m, s.paddr, s.memsz), 0xaa, s.memsz);    /* bss must be cleared */
    EQ(x86_kernel_probe(k, ksize, "elf", &is_pvh, &e), 0);
    EQ(is_pvh, 1);
    int ret = boot(&m, k, ksize, initrd, isize, cmd, mem_size, 2, &en, &e);
    CHECK(ret == 0, "PVH ELF%d setup: %d %s", is64 ? 64 : 32, ret, e.msg);
    if (ret != 0)
        goto out;

    EQ(en.mode, X86_ENTRY_PROT32);
    EQ(en.rip, 0x200040);
    EQ(en.rbx, ZP);
    CHECK(!memcmp(G(&m, s.paddr, s.filesz), k + ELF_DATA_OFF, s.filesz), "segment");
    uint8_t *bss = G(&m, s.paddr + s.filesz, s.memsz - s.filesz);
    int zero = 1;
    for (uint64_t i = 0; i < s.memsz - s.filesz; i++)
        zero &= bss[i] == 0;
    EQ(zero, 1);

    EQ(g32(&m, ZP + 0x00), 0x336ec578);     /* magic */
    EQ(g32(&m, ZP + 0x04), 1);              /* version */
    EQ(g32(&m, ZP + 0x08), 0);              /* flags */
    EQ(g32(&m, ZP + 0x0c), 1);              /* nr_modules */
    uint64_t modlist = g64(&m, ZP + 0x10);
    EQ(g64(&m, ZP + 0x18), CMDLINE);
    EQ(g64(&m, ZP + 0x20), 0xe0000);        /* rsdp_paddr (test_x86_acpi) */
    uint64_t memmap = g64(&m, ZP + 0x28);
    uint32_t entries = g32(&m, ZP + 0x30);
    CHECK(!strcmp((const char *)G(&m, CMDLINE, strlen(cmd) + 1), cmd), "cmdline");

    uint64_t rd = g64(&m, modlist);
    EQ(g64(&m, modlist + 8), isize);
    EQ(g64(&m, modlist + 16), 0);
    EQ(rd & 0xfff, 0);
    uint64_t low = mem_size < 3 * GiB ? mem_size : 3 * GiB;
    EQ(rd, (low - isize) & ~0xfffull);
    CHECK(!memcmp(G(&m, rd, isize), initrd, isize), "initrd contents");

    struct e820 want[4];
    unsigned n = e820_expected(mem_size, want);
    EQ(entries, n);
    for (unsigned i = 0; i < n && i < entries; i++) {
        EQ(g64(&m, memmap + 24 * i), want[i].addr);
        EQ(g64(&m, memmap + 24 * i + 8), want[i].size);
        EQ(g32(&m, memmap + 24 * i + 16), want[i].type);
        EQ(g32(&m, memmap + 24 * i + 20), 0);
    }
    CHECK(memmap >= ZP + 0x38 && modlist >= ZP + 0x38, "overlap with start_info");

    check_paging_and_gdt(&m, &en);
    check_mptable(&m, 2);

    /* No initrd: no modules. */
    ret = boot(&m, k, ksize, NULL, 0, cmd, mem_size, 1, &en, &e);
    CHECK(ret == 0, "PVH without initrd: %s", e.msg);
    EQ(g32(&m, ZP + 0x0c), 0);
    EQ(g64(&m, ZP + 0x10), 0);
out:
    free(k);
    free(initrd);
    gmem_free(&m);
}

static void test_mptable_sizes(void)
{
    struct gmem m;
    if (mem_new(&m, 64 * MiB) < 0) {
        unit_fail++;
        return;
    }
    size_t ksize;
    uint8_t *k = bz_new(&ksize);
    struct x86_entry en;
    struct err e;
    static const unsigned counts[] = { 1, 4, 255 };
    for (size_t i = 0; i < 3; i++) {
        int ret = boot(&m, k, ksize, NULL, 0, "", 64 * MiB, counts[i], &en, &e);
        CHECK(ret == 0, "%u cpus: %s", counts[i], e.msg);
        check_mptable(&m, counts[i]);
    }
    EQ(boot(&m, k, ksize, NULL, 0, "", 64 * MiB, 0, &en, &e), -EINVAL);
    EQ(boot(&m, k, ksize, NULL, 0, "", 64 * MiB, 256, &en, &e), -EINVAL);
    free(k);
    gmem_free(&m);
}

/* Expects setup (and, for -ENOEXEC, the probe) to fail with ret and a
 * message containing msg. */
static void expect_reject(const char *what, const struct gmem *m, const uint8_t *k,
                          size_t ksize, const uint8_t *initrd, size_t isize, const char *cmd,
                          uint64_t mem_size, int want, const char *msg)
{
    struct x86_entry en;
    struct err e;
    int ret = boot(m, k, ksize, initrd, isize, cmd, mem_size, 1, &en, &e);
    CHECK(ret == want, "%s: got %d (%s), want %d", what, ret, e.msg, want);
    CHECK(e.msg[0] && strstr(e.msg, msg), "%s: message '%s' lacks '%s'", what, e.msg, msg);
    if (want == -ENOEXEC) {
        int is_pvh = -1;
        e.msg[0] = 0;
        ret = x86_kernel_probe(k, ksize, "test-kernel", &is_pvh, &e);
        CHECK(ret == -ENOEXEC && strstr(e.msg, msg), "%s: probe %d '%s'", what, ret, e.msg);
        EQ(is_pvh, -1);
    }
}

static void test_rejections(void)
{
    struct gmem m;
    const uint64_t mem = 64 * MiB;
    if (mem_new(&m, mem) < 0) {
        unit_fail++;
        return;
    }
    size_t ksize, esize;
    uint8_t *k = bz_new(&ksize);

    expect_reject("empty", &m, k, 0, NULL, 0, "", mem, -ENOEXEC, "empty");
    expect_reject("truncated header", &m, k, 0x240, NULL, 0, "", mem, -ENOEXEC,
                  "not an x86 kernel");
    expect_reject("setup only", &m, k, BZ_SETUP, NULL, 0, "", mem, -ENOEXEC, "truncated");

    k[0x1fe] = 0x56;
    expect_reject("boot flag", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "not an x86 kernel");
    k[0x1fe] = 0x55;
    k[0x205] = 'T';
    expect_reject("HdrS", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "not an x86 kernel");
    k[0x205] = 'S';
    w16(k + 0x206, 0x020b);
    expect_reject("protocol 2.11", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "too old");
    w16(k + 0x206, 0x0206);
    expect_reject("protocol 2.06", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "too old");
    w16(k + 0x206, 0x020f);
    w16(k + 0x236, 0x2);
    expect_reject("no XLF_KERNEL_64", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "64-bit");
    w16(k + 0x236, 0x3);
    k[0x211] = 0;
    expect_reject("zImage", &m, k, ksize, NULL, 0, "", mem, -ENOEXEC, "zImage");
    k[0x211] = 1;

    /* The kernel's init_size must fit (at pref_address = 16 MiB). */
    w32(k + 0x260, 64 * MiB);
    expect_reject("init_size", &m, k, ksize, NULL, 0, "", mem, -ENOMEM, "kernel needs RAM");
    w32(k + 0x260, (uint32_t)BZ_INIT_SIZE);

    /* Too little RAM at all; gmem not matching the layout. */
    expect_reject("tiny RAM", &m, k, ksize, NULL, 0, "", 1 * MiB, -EINVAL, "too small");
    expect_reject("layout", &m, k, ksize, NULL, 0, "", 128 * MiB, -EINVAL, "RAM layout");

    /* initrd larger than the RAM above the kernel. */
    size_t big = 60 * MiB;
    uint8_t *initrd = calloc(1, big);
    expect_reject("initrd too big", &m, k, ksize, initrd, big, "", mem, -ENOSPC,
                  "does not fit");
    free(initrd);

    /* Command lines: over cmdline_size; over X86_CMDLINE_MAX (PVH). */
    char *cmd = malloc(X86_CMDLINE_MAX + 10);
    memset(cmd, 'c', X86_CMDLINE_MAX + 9);
    cmd[X86_CMDLINE_MAX + 9] = 0;
    expect_reject("cmdline (bzImage)", &m, k, ksize, NULL, 0, cmd, mem, -E2BIG, "too long");
    w32(k + 0x238, 0xffffffff);                     /* header allows "anything" */
    expect_reject("cmdline > max", &m, k, ksize, NULL, 0, cmd, mem, -E2BIG, "too long");
    w32(k + 0x238, BZ_CMDLINE_SIZE);

    struct elf_spec s = { .is64 = 1, .paddr = 0x200000, .filesz = 0x1000, .memsz = 0x1000,
                          .entry = 0x200000, .note = NOTE_PHDR, .desc_size = 8 };
    uint8_t *f = elf_new(&s, &esize);
    expect_reject("cmdline (PVH)", &m, f, esize, NULL, 0, cmd, mem, -E2BIG, "too long");
    cmd[X86_CMDLINE_MAX - 1] = 0;                   /* exactly the maximum: fits */
    struct x86_entry en;
    struct err e;
    EQ(boot(&m, f, esize, NULL, 0, cmd, mem, 1, &en, &e), 0);
    free(cmd);
    free(f);

    /* PVH ELF files. */
    s.note = NOTE_NONE;
    f = elf_new(&s, &esize);
    expect_reject("no note", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "no PVH entry note");
    free(f);
    s.note = NOTE_PHDR;
    s.is64 = 0;
    s.desc_size = 4;
    s.paddr = 0x8000000;                            /* 128 MiB: beyond RAM */
    s.entry = 0x8000000;
    f = elf_new(&s, &esize);
    expect_reject("segment beyond RAM", &m, f, esize, NULL, 0, "", mem, -ENOMEM,
                  "outside guest RAM");
    free(f);
    s.paddr = mem - 0x800;                          /* straddles the end */
    s.entry = s.paddr;
    f = elf_new(&s, &esize);
    expect_reject("segment straddling RAM end", &m, f, esize, NULL, 0, "", mem, -ENOMEM,
                  "outside guest RAM");
    free(f);
    s.paddr = 0x8000;                               /* over the boot tables */
    s.entry = 0x8000;
    f = elf_new(&s, &esize);
    expect_reject("segment below 1 MiB", &m, f, esize, NULL, 0, "", mem, -ENOEXEC,
                  "below 1 MiB");
    free(f);
    s.paddr = 0x200000;
    s.entry = 0x100;
    f = elf_new(&s, &esize);
    expect_reject("entry outside", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "PVH entry");
    free(f);
    /* An entry above 1 MiB but not in the file-backed part of a segment: the
     * probe refuses it too (it once passed, and only set-up refused it). */
    static const struct { const char *what; uint64_t entry; } outside[] = {
        { "entry below the segment", 0x1ff000 }, { "entry in the bss", 0x200000 + 0x1000 },
        { "entry past the segment", 0x3000000 }, { "entry beyond RAM", 0x40000000 },
    };
    s.memsz = 0x2000;
    for (unsigned i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        s.entry = outside[i].entry;
        f = elf_new(&s, &esize);
        expect_reject(outside[i].what, &m, f, esize, NULL, 0, "", mem, -ENOEXEC,
                      "outside the kernel's loaded segments");
        free(f);
    }
    s.entry = 0x200000 + 0xfff;                     /* the segment's last file byte */
    f = elf_new(&s, &esize);
    {
        struct x86_entry en;
        struct err e;
        int is_pvh = -1;
        EQ(x86_kernel_probe(f, esize, "elf", &is_pvh, &e), 0);
        EQ(boot(&m, f, esize, NULL, 0, "", mem, 1, &en, &e), 0);
        EQ(en.rip, 0x200fff);
    }
    free(f);
    s.memsz = 0x1000;
    s.entry = 0x200000;
    s.desc_size = 8;
    s.is64 = 1;
    s.entry = 0x100200000ull;
    f = elf_new(&s, &esize);
    expect_reject("entry above 4G", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "above 4 GiB");
    free(f);
    s.entry = 0x200000;
    f = elf_new(&s, &esize);
    expect_reject("truncated segment", &m, f, esize - 1, NULL, 0, "", mem, -ENOEXEC,
                  "outside the file");
    expect_reject("truncated ELF header", &m, f, 40, NULL, 0, "", mem, -ENOEXEC,
                  "truncated ELF header");
    expect_reject("truncated phdrs", &m, f, 64 + 56 + 10, NULL, 0, "", mem, -ENOEXEC,
                  "program headers");
    f[18] = EM_AARCH64;
    expect_reject("wrong machine", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "not x86-64");
    f[18] = EM_X86_64;
    f[EI_CLASS] = ELFCLASS32;                       /* ELF32 header claiming EM_X86_64 */
    expect_reject("class/machine", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "not i386");
    f[EI_CLASS] = ELFCLASS64;
    /* A malformed note: Xen entry with a 2-byte value. */
    w32(f + ELF_NOTE_OFF + 36 + 4, 2);
    expect_reject("note size", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "PVH entry note");
    /* A note whose name size runs off the segment: treated as absent. */
    w32(f + ELF_NOTE_OFF, 0xfffffff0);
    expect_reject("note walk", &m, f, esize, NULL, 0, "", mem, -ENOEXEC, "no PVH entry note");
    free(f);

    /* Random bytes and text. */
    uint8_t *rnd = pattern(65536, 42);
    expect_reject("random bytes", &m, rnd, 65536, NULL, 0, "", mem, -ENOEXEC,
                  "not an x86 kernel");
    free(rnd);
    static const char passwd[] =
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
        "sys:x:3:3:sys:/dev:/usr/sbin/nologin\n"
        "sync:x:4:65534:sync:/bin:/bin/sync\n"
        "games:x:5:60:games:/usr/games:/usr/sbin/nologin\n"
        "man:x:6:12:man:/var/cache/man:/usr/sbin/nologin\n"
        "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin\n"
        "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n"
        "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    expect_reject("passwd text", &m, (const uint8_t *)passwd, sizeof(passwd) - 1, NULL, 0, "",
                  mem, -ENOEXEC, "not an x86 kernel");

    free(k);
    gmem_free(&m);
}

/* ------------------------------------------------------------------ */
/* The real Debian kernel (images/build-x86_64.sh), when built          */

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        if (r == 0)
            break;
        n += r;
    }
    fclose(fp);
    *size = n;
    return buf;
}

static void test_debian_kernel(void)
{
    const char *kpath = "build/guest/x86_64/vmlinuz";
    const char *ipath = "build/guest/x86_64/initramfs.cpio.gz";
    size_t ksize = 0, isize = 0;
    uint8_t *k = slurp(kpath, &ksize);
    if (!k) {
        printf("test_x86_boot: %s absent: real-kernel test skipped "
               "(build it with `make guest-x86`)\n", kpath);
        return;
    }
    uint8_t *initrd = slurp(ipath, &isize);
    CHECK(initrd != NULL, "%s missing next to the kernel", ipath);
    const uint64_t mem = 512 * MiB;
    struct gmem m;
    if (mem_new(&m, mem) < 0) {
        unit_fail++;
        free(k);
        free(initrd);
        return;
    }
    struct x86_entry en;
    struct err e;
    int is_pvh = -1;
    EQ(x86_kernel_probe(k, ksize, kpath, &is_pvh, &e), 0);
    EQ(is_pvh, 0);
    int ret = boot(&m, k, ksize, initrd, initrd ? isize : 0, "console=ttyS0", mem, 2, &en, &e);
    CHECK(ret == 0, "Debian kernel: %s", e.msg);
    if (ret == 0) {
        size_t setup = (size_t)((k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
        size_t hdr_end = 0x202 + k[0x201];
        CHECK(hdr_end > 0x264 && hdr_end <= 0x290, "header ends at 0x%zx", hdr_end);
        CHECK(!memcmp(G(&m, ZP + 0x1f1, 0x210 - 0x1f1), k + 0x1f1, 0x210 - 0x1f1),
              "header start");
        CHECK(!memcmp(G(&m, ZP + 0x22c, hdr_end - 0x22c), k + 0x22c, hdr_end - 0x22c),
              "header end");
        CHECK(g16(&m, ZP + 0x206) >= 0x020c, "protocol %x", g16(&m, ZP + 0x206));
        EQ(g16(&m, ZP + 0x236) & 1, 1);
        EQ(g8(&m, ZP + 0x210), 0xff);
        EQ(g8(&m, ZP + 0x211) & 0x81, 0x81);
        EQ(g32(&m, ZP + 0x228), CMDLINE);
        CHECK(!memcmp(G(&m, KERNEL, ksize - setup), k + setup, ksize - setup), "payload");
        uint64_t rd = g32(&m, ZP + 0x218);
        EQ(g32(&m, ZP + 0x21c), isize);
        EQ(rd, (mem - isize) & ~0xfffull);
        uint64_t kend = g64(&m, ZP + 0x258) + g32(&m, ZP + 0x260);
        CHECK(rd >= kend, "initrd 0x%llx below kernel end 0x%llx", (unsigned long long)rd,
              (unsigned long long)kend);
        if (initrd)
            CHECK(!memcmp(G(&m, rd, isize), initrd, isize), "initrd contents");
        check_bp_e820(&m, mem);
        EQ(en.mode, X86_ENTRY_LONG64);
        EQ(en.rip, 0x100200);
        EQ(en.rsi, ZP);
        check_paging_and_gdt(&m, &en);
        check_mptable(&m, 2);
    }
    /* 48 MiB is too little for this kernel (16 MiB + init_size ~51 MiB). */
    gmem_free(&m);
    if (mem_new(&m, 48 * MiB) == 0) {
        expect_reject("Debian kernel in 48 MiB", &m, k, ksize, NULL, 0, "", 48 * MiB, -ENOMEM,
                      "kernel needs RAM");
        gmem_free(&m);
    }
    printf("test_x86_boot: loaded the Debian kernel %s (%zu bytes)\n", kpath, ksize);
    free(k);
    free(initrd);
}

int main(void)
{
    test_ram_layout();
    test_bzimage(512 * MiB, 1);
    test_bzimage(3 * GiB, 4);
    test_bzimage(5 * GiB, 4);
    test_bzimage_variants();
    test_pvh(1, 512 * MiB, NOTE_PHDR);
    test_pvh(0, 512 * MiB, NOTE_PHDR);
    test_pvh(1, 256 * MiB, NOTE_SECTION);
    test_pvh(0, 5 * GiB, NOTE_SECTION);
    test_mptable_sizes();
    test_rejections();
    test_debian_kernel();
    return unit_done("test_x86_boot");
}
