/* ACPI tables of the x86 PC board (src/arch/x86/acpi.c), read back from
 * guest memory the way a kernel finds them: the RSDP by scanning
 * 0xe0000..0xfffff on 16-byte boundaries (and through boot_params /
 * hvm_start_info after a full x86_boot_setup()), every checksum, the
 * RSDT/XSDT entries, the FADT fields Linux uses for hardware-reduced ACPI
 * (flags, reset register, sleep control/status registers, X_DSDT), the
 * DSDT's AML walked structurally (\_S5_, the ISA devices, the PCI root
 * bridge: its _HID, _UID, _CRS (bus range, the 0xcf8 ports, the memory
 * window of boot.h) and every _PRT entry against the PCI swizzle and the
 * INTx GSIs), and the MADT for several CPU counts. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "core/log.h"
#include "core/memory.h"

#include "unit.h"
#include "x86_guest_mem.h"

#define MiB (1ull << 20)

/* Guest addresses spelled out on purpose (boot.h, acpi.h). */
#define BIOS_START 0xe0000ull
#define BIOS_END 0x100000ull
#define ZP 0x7000
#define MPF 0x9fc00

/* ------------------------------------------------------------------ */
/* Guest memory                                                         */


static uint16_t r16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t r32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t r64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void w16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void w32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void w64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* ------------------------------------------------------------------ */
/* Finding and checking the tables                                      */

struct tables {
    uint64_t rsdp, rsdt, xsdt, fadt, madt, dsdt;
    uint32_t rsdt_len, xsdt_len, fadt_len, madt_len, dsdt_len;
};

/* Linux's legacy scan: "RSD PTR " with a valid 20-byte checksum on a
 * 16-byte boundary in the BIOS area.  Returns how many there are. */
static unsigned scan_rsdp(const struct gmem *m, uint64_t *first)
{
    const uint8_t *bios = G(m, BIOS_START, BIOS_END - BIOS_START);
    unsigned n = 0;
    for (uint64_t off = 0; off + 20 <= BIOS_END - BIOS_START; off += 16) {
        if (memcmp(bios + off, "RSD PTR ", 8) || sum8(bios + off, 20))
            continue;
        if (n++ == 0)
            *first = BIOS_START + off;
    }
    return n;
}

/* Header of the table at addr: signature, length inside the BIOS area,
 * checksum, revision, OEM and creator ids.  Returns the length, 0 if it
 * is unusable. */
static uint32_t check_header(const struct gmem *m, uint64_t addr, const char *sig, uint8_t rev)
{
    CHECK(addr >= BIOS_START && addr + 36 <= BIOS_END, "%s at 0x%llx outside the BIOS area",
          sig, (unsigned long long)addr);
    if (addr < BIOS_START || addr + 36 > BIOS_END)
        return 0;
    const uint8_t *h = G(m, addr, 36);
    uint32_t len = r32(h + 4);
    CHECK(!memcmp(h, sig, 4), "signature %.4s, want %s", (const char *)h, sig);
    CHECK(len >= 36 && addr + len <= BIOS_END, "%s length %u", sig, len);
    if (len < 36 || addr + len > BIOS_END)
        return 0;
    EQ(sum8(G(m, addr, len), len), 0);
    EQ(h[8], rev);
    CHECK(!memcmp(h + 10, "PETREL", 6), "%s OEM id %.6s", sig, (const char *)h + 10);
    CHECK(!memcmp(h + 16, "PETRELVM", 8), "%s OEM table id %.8s", sig, (const char *)h + 16);
    EQ(r32(h + 24), 1);
    CHECK(!memcmp(h + 28, "PTRL", 4), "%s creator %.4s", sig, (const char *)h + 28);
    return len;
}

/* Follows RSDP -> XSDT/RSDT -> FADT, MADT -> DSDT; 0 if all were found. */
static int find_tables(const struct gmem *m, struct tables *t)
{
    memset(t, 0, sizeof(*t));
    uint64_t rsdp = 0;
    EQ(scan_rsdp(m, &rsdp), 1);
    EQ(rsdp, BIOS_START);
    if (!rsdp)
        return -1;
    t->rsdp = rsdp;
    const uint8_t *r = G(m, rsdp, 36);
    EQ(sum8(r, 20), 0);
    EQ(sum8(r, 36), 0);                         /* extended checksum */
    CHECK(!memcmp(r + 9, "PETREL", 6), "RSDP OEM id %.6s", (const char *)r + 9);
    EQ(r[15], 2);                               /* revision */
    EQ(r32(r + 20), 36);                        /* length */
    EQ(r[33] | r[34] | r[35], 0);               /* reserved */
    t->rsdt = r32(r + 16);
    t->xsdt = r64(r + 24);

    t->xsdt_len = check_header(m, t->xsdt, "XSDT", 1);
    t->rsdt_len = check_header(m, t->rsdt, "RSDT", 1);
    if (!t->xsdt_len || !t->rsdt_len)
        return -1;
    EQ(t->xsdt % 8, 0);
    EQ((t->xsdt_len - 36) % 8, 0);
    EQ((t->rsdt_len - 36) % 4, 0);
    unsigned nx = (t->xsdt_len - 36) / 8, nr = (t->rsdt_len - 36) / 4;
    EQ(nx, 2);
    EQ(nr, nx);
    unsigned nfadt = 0, nmadt = 0;
    for (unsigned i = 0; i < nx; i++) {
        uint64_t a = r64(G(m, t->xsdt + 36 + 8 * i, 8));
        /* The RSDT lists the same tables in the same order. */
        if (i < nr)
            EQ(r32(G(m, t->rsdt + 36 + 4 * i, 4)), a);
        if (a < BIOS_START || a + 36 > BIOS_END) {
            CHECK(0, "XSDT entry %u at 0x%llx outside the BIOS area", i, (unsigned long long)a);
            continue;
        }
        const uint8_t *sig = G(m, a, 4);
        if (!memcmp(sig, "FACP", 4)) {
            nfadt++;
            t->fadt = a;
        } else if (!memcmp(sig, "APIC", 4)) {
            nmadt++;
            t->madt = a;
        } else {
            CHECK(0, "unexpected table %.4s in the XSDT", (const char *)sig);
        }
    }
    EQ(nfadt, 1);
    EQ(nmadt, 1);
    if (nfadt != 1 || nmadt != 1)
        return -1;
    t->fadt_len = check_header(m, t->fadt, "FACP", 6);
    t->madt_len = check_header(m, t->madt, "APIC", 5);
    if (t->fadt_len < 276)
        return -1;
    const uint8_t *f = G(m, t->fadt, 276);
    t->dsdt = r64(f + 140);                     /* X_DSDT */
    EQ(r32(f + 40), t->dsdt);                   /* DSDT: the same address */
    t->dsdt_len = check_header(m, t->dsdt, "DSDT", 2);
    return t->madt_len && t->dsdt_len ? 0 : -1;
}

/* No two tables overlap. */
static void check_disjoint(const struct tables *t)
{
    uint64_t a[6] = { t->rsdp, t->rsdt, t->xsdt, t->fadt, t->madt, t->dsdt };
    uint64_t l[6] = { 36, t->rsdt_len, t->xsdt_len, t->fadt_len, t->madt_len, t->dsdt_len };
    int ok = 1;
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            if (a[i] < a[j] + l[j] && a[j] < a[i] + l[i])
                ok = 0;
    CHECK(ok, "ACPI tables overlap");
}

/* Generic Address Structure: system I/O, 8 bits at bit 0, byte access. */
static void check_gas_io8(const uint8_t *g, uint64_t port)
{
    EQ(g[0], 1);            /* SystemIO */
    EQ(g[1], 8);            /* bit width */
    EQ(g[2], 0);            /* bit offset */
    EQ(g[3], 1);            /* byte access */
    EQ(r64(g + 4), port);
}

static void check_fadt(const struct gmem *m, const struct tables *t)
{
    EQ(t->fadt_len, 276);
    const uint8_t *f = G(m, t->fadt, 276);
    uint32_t flags = r32(f + 112);
    EQ(flags & (1u << 20), 1u << 20);           /* HW_REDUCED_ACPI */
    EQ(flags & (1u << 10), 1u << 10);           /* RESET_REG_SUP */
    EQ(flags & ~((1u << 20) | (1u << 10) | (1u << 4) | (1u << 5)), 0);
    uint16_t boot_arch = r16(f + 109);
    EQ(boot_arch & (1u << 1), 1u << 1);         /* an 8042 */
    EQ(boot_arch & (1u << 5), 0);               /* the CMOS RTC is present */
    EQ(boot_arch & (1u << 0), 0);               /* no other legacy devices */
    EQ(f[108], 0x32);                           /* CMOS century register */
    EQ(r32(f + 36), 0);                         /* FIRMWARE_CTRL: no FACS */
    EQ(r64(f + 132), 0);                        /* X_FIRMWARE_CTRL */
    EQ(r16(f + 46), 0);                         /* SCI_INT: none */
    EQ(r32(f + 48), 0);                         /* SMI_CMD: none */
    /* No fixed hardware: PM1, PM2, PM timer and GPE blocks, old and new. */
    int zero = 1;
    for (unsigned off = 56; off < 96; off++)
        zero &= f[off] == 0;
    for (unsigned off = 148; off < 244; off++)
        zero &= f[off] == 0;
    EQ(zero, 1);
    check_gas_io8(f + 116, 0x64);               /* RESET_REG */
    EQ(f[128], 0xfe);                           /* RESET_VALUE */
    check_gas_io8(f + 244, 0x604);              /* SLEEP_CONTROL_REG */
    check_gas_io8(f + 256, 0x605);              /* SLEEP_STATUS_REG */
    EQ(X86_ACPI_SLEEP_CTL_PORT, 0x604);
    EQ(X86_ACPI_SLEEP_STS_PORT, 0x605);
    CHECK(!memcmp(f + 268, "PETRELVM", 8), "hypervisor id %.8s", (const char *)f + 268);
    EQ(t->dsdt, r64(f + 140));
}

/* ------------------------------------------------------------------ */
/* DSDT: a structural walk of the AML                                   */

/* PkgLength at p (at most avail bytes): its value (which counts its own
 * bytes), *n the number of bytes; 0 if malformed. */
static size_t pkg_length(const uint8_t *p, size_t avail, size_t *n)
{
    if (avail < 1)
        return 0;
    unsigned follow = p[0] >> 6;
    if (avail < 1 + follow)
        return 0;
    *n = 1 + follow;
    if (follow == 0)
        return p[0] & 0x3f;
    if (p[0] & 0x30)
        return 0;       /* bits 5:4 must be 0 when bytes follow */
    size_t v = p[0] & 0x0f;
    for (unsigned i = 0; i < follow; i++)
        v |= (size_t)p[1 + i] << (4 + 8 * i);
    return v;
}

/* EisaId back to its 7 characters. */
static void eisa_str(const uint8_t b[4], char out[8])
{
    unsigned v = (unsigned)b[0] << 8 | b[1];
    static const char hex[] = "0123456789ABCDEF";
    out[0] = (char)('@' + ((v >> 10) & 0x1f));
    out[1] = (char)('@' + ((v >> 5) & 0x1f));
    out[2] = (char)('@' + (v & 0x1f));
    out[3] = hex[b[2] >> 4];
    out[4] = hex[b[2] & 0xf];
    out[5] = hex[b[3] >> 4];
    out[6] = hex[b[3] & 0xf];
    out[7] = 0;
}

struct isa_dev {
    const char *name, *hid;
    uint8_t crs[32];
    size_t crs_len;
};

static const struct isa_dev want_devs[] = {
    /* IO (Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags () {4} */
    { "COM1", "PNP0501", { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
                           0x22, 0x10, 0x00, 0x79, 0x00 }, 13 },
    /* IO (Decode16, 0x70, 0x70, 1, 2), IRQNoFlags () {8} */
    { "RTC_", "PNP0B00", { 0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02,
                           0x22, 0x00, 0x01, 0x79, 0x00 }, 13 },
    /* IO (Decode16, 0x60, 0x60, 1, 1), IO (Decode16, 0x64, 0x64, 1, 1),
     * IRQNoFlags () {1} */
    { "PS2K", "PNP0303", { 0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
                           0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
                           0x22, 0x02, 0x00, 0x79, 0x00 }, 21 },
};
#define NDEVS (sizeof(want_devs) / sizeof(want_devs[0]))

/* One Device (XXXX) { Name (_HID, EisaId ()) Name (_CRS, Buffer ()) } at
 * p; returns its length or 0. */
static size_t walk_device(const uint8_t *p, size_t avail, unsigned idx)
{
    const struct isa_dev *w = &want_devs[idx];
    size_t n, len;
    CHECK(avail >= 2 && p[0] == 0x5b && p[1] == 0x82, "device %u: no DeviceOp", idx);
    if (avail < 2 || p[0] != 0x5b || p[1] != 0x82)
        return 0;
    len = pkg_length(p + 2, avail - 2, &n);
    CHECK(len >= n && 2 + len <= avail, "device %u: PkgLength %zu of %zu bytes", idx, len, avail);
    if (len < n || 2 + len > avail)
        return 0;
    const uint8_t *b = p + 2 + n, *end = p + 2 + len;
    /* NameSeg, NameOp _HID DWordPrefix EisaId, NameOp _CRS BufferOp */
    if (end - b < 4 + 10 + 6 + 2) {
        CHECK(0, "device %u: too short", idx);
        return 0;
    }
    CHECK(!memcmp(b, w->name, 4), "device %u named %.4s, want %s", idx, (const char *)b, w->name);
    b += 4;
    CHECK(!memcmp(b, "\x08_HID\x0c", 6), "device %s: no Name (_HID, EisaId)", w->name);
    char hid[8];
    eisa_str(b + 6, hid);
    CHECK(!strcmp(hid, w->hid), "device %s: _HID %s, want %s", w->name, hid, w->hid);
    b += 10;
    CHECK(!memcmp(b, "\x08_CRS\x11", 6), "device %s: no Name (_CRS, Buffer)", w->name);
    b += 6;
    size_t blen = pkg_length(b, (size_t)(end - b), &n);
    CHECK(b + blen == end, "device %s: _CRS buffer ends at %td, device at %td", w->name,
          b + blen - p, end - p);
    if (b + blen != end || blen < n + 2)
        return 0;
    const uint8_t *data = b + n;
    EQ(data[0], 0x0a);                          /* BufferSize: ByteConst */
    size_t size = data[1];
    EQ(size, (size_t)(end - (data + 2)));
    EQ(size, w->crs_len);
    if (size == w->crs_len)
        CHECK(!memcmp(data + 2, w->crs, size), "device %s: _CRS bytes differ", w->name);
    /* An end tag closes the template. */
    CHECK(size >= 2 && data[2 + size - 2] == 0x79, "device %s: no end tag", w->name);
    return 2 + len;
}

/* An AML integer constant at p (ZeroOp, OneOp, Byte/Word/DWordPrefix):
 * its length, 0 if it is none. */
static size_t aml_int(const uint8_t *p, size_t avail, uint32_t *v)
{
    if (avail >= 1 && (p[0] == 0x00 || p[0] == 0x01)) {
        *v = p[0];
        return 1;
    }
    if (avail >= 2 && p[0] == 0x0a) {
        *v = p[1];
        return 2;
    }
    if (avail >= 3 && p[0] == 0x0b) {
        *v = r16(p + 1);
        return 3;
    }
    if (avail >= 5 && p[0] == 0x0c) {
        *v = r32(p + 1);
        return 5;
    }
    return 0;
}

/* The PCI root bridge: Device (PCI0) { _HID PNP0A03, _UID 0, _CRS, _PRT }.
 * Returns its length or 0. */
static size_t walk_pci_root(const uint8_t *p, size_t avail)
{
    size_t n, len;
    CHECK(avail >= 2 && p[0] == 0x5b && p[1] == 0x82, "PCI0: no DeviceOp");
    if (avail < 2 || p[0] != 0x5b || p[1] != 0x82)
        return 0;
    len = pkg_length(p + 2, avail - 2, &n);
    CHECK(len >= n && 2 + len <= avail, "PCI0: PkgLength %zu of %zu bytes", len, avail);
    if (len < n || 2 + len > avail)
        return 0;
    const uint8_t *b = p + 2 + n, *end = p + 2 + len;
    if (end - b < 4 + 10 + 6 + 6) {
        CHECK(0, "PCI0 too short");
        return 0;
    }
    CHECK(!memcmp(b, "PCI0", 4), "device named %.4s, want PCI0", (const char *)b);
    b += 4;
    CHECK(!memcmp(b, "\x08_HID\x0c", 6), "PCI0: no Name (_HID, EisaId)");
    char hid[8];
    eisa_str(b + 6, hid);
    CHECK(!strcmp(hid, "PNP0A03"), "PCI0: _HID %s", hid);
    b += 10;
    CHECK(!memcmp(b, "\x08_UID\x00", 6), "PCI0: no Name (_UID, Zero)");
    b += 6;
    /* _CRS: WordBusNumber 0-255, IO 0xcf8 x 8, DWordMemory window, end */
    static const uint8_t crs[] = {
        0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00,
        0x00, 0x00, 0x00, 0x01,
        0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,
        0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xc0, 0xff, 0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xc0, 0x3e,
        0x79, 0x00,
    };
    EQ(X86_PCI_MMIO_BASE, 0xc0000000);
    EQ(X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE, X86_IOAPIC_BASE);
    CHECK(!memcmp(b, "\x08_CRS\x11", 6), "PCI0: no Name (_CRS, Buffer)");
    b += 6;
    size_t blen = pkg_length(b, (size_t)(end - b), &n);
    if (blen < n + 2 || b + blen > end) {
        CHECK(0, "PCI0: _CRS buffer length %zu", blen);
        return 0;
    }
    const uint8_t *data = b + n;
    EQ(data[0], 0x0a);
    EQ(data[1], sizeof(crs));
    EQ(blen - n - 2, sizeof(crs));
    if (blen - n - 2 == sizeof(crs))
        CHECK(!memcmp(data + 2, crs, sizeof(crs)), "PCI0: _CRS bytes differ");
    b += blen;
    /* _PRT: Package (128) { Package (4) { slot << 16 | 0xffff, pin, 0, GSI } } */
    CHECK(end - b >= 8 && !memcmp(b, "\x08_PRT\x12", 6), "PCI0: no Name (_PRT, Package)");
    if (end - b < 8)
        return 0;
    b += 6;
    size_t plen = pkg_length(b, (size_t)(end - b), &n);
    CHECK(b + plen == end, "PCI0: _PRT ends at %td, the device at %td", b + plen - p, end - p);
    if (b + plen != end)
        return 0;
    const uint8_t *q = b + n;
    EQ(*q, 128);
    q++;
    uint8_t seen[32][4] = { { 0 } };
    unsigned entries = 0, bad = 0;
    while (q < end) {
        if (q[0] != 0x12) {
            CHECK(0, "_PRT entry %u: not a package", entries);
            return 0;
        }
        size_t el = pkg_length(q + 1, (size_t)(end - q - 1), &n);
        const uint8_t *e = q + 1 + n, *eend = q + 1 + el;
        if (eend > end || e >= eend || *e != 4) {
            CHECK(0, "_PRT entry %u malformed", entries);
            return 0;
        }
        e++;
        uint32_t v[4];
        for (unsigned i = 0; i < 4; i++) {
            size_t il = aml_int(e, (size_t)(eend - e), &v[i]);
            if (!il) {
                CHECK(0, "_PRT entry %u: element %u is not an integer", entries, i);
                return 0;
            }
            e += il;
        }
        EQ(e, eend);
        unsigned slot = v[0] >> 16, pin = v[1];
        bad += (v[0] & 0xffff) != 0xffff || slot >= 32 || pin >= 4 || v[2] != 0 ||
               v[3] != 16 + (slot + pin) % 4;
        if (slot < 32 && pin < 4)
            seen[slot][pin]++;
        entries++;
        q = eend;
    }
    EQ(entries, 128);
    EQ(bad, 0);
    unsigned once = 0;
    for (unsigned sl = 0; sl < 32; sl++)
        for (unsigned pn = 0; pn < 4; pn++)
            once += seen[sl][pn] == 1;
    EQ(once, 128);
    return 2 + len;
}

static void check_dsdt(const struct gmem *m, const struct tables *t)
{
    const uint8_t *d = G(m, t->dsdt, t->dsdt_len);
    const uint8_t *aml = d + 36;
    size_t len = t->dsdt_len - 36, n;

    /* Name (_S5, Package () { 5, 0 }): NameOp, NameSeg, PackageOp,
     * PkgLength 5, NumElements 2, BytePrefix 5, ZeroOp. */
    static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00 };
    CHECK(len >= sizeof(s5) && !memcmp(aml, s5, sizeof(s5)), "DSDT does not start with \\_S5_");
    /* Only once in the table. */
    unsigned found = 0;
    for (size_t i = 0; i + 4 <= len; i++)
        found += !memcmp(aml + i, "_S5_", 4);
    EQ(found, 1);
    /* What Linux's acpi_hw_extended_sleep() writes for S5: SLP_TYP from
     * the package's first element, in bits 4:2, and SLP_EN. */
    uint8_t slp_typ = aml[9];
    uint8_t ctl = (uint8_t)(((slp_typ << 2) & 0x1c) | 0x20);
    EQ(ctl, 0x34);
    EQ(ctl, X86_ACPI_SLP_EN | (X86_ACPI_S5_SLP_TYP << X86_ACPI_SLP_TYP_SHIFT));
    EQ((ctl & X86_ACPI_SLP_TYP_MASK) >> X86_ACPI_SLP_TYP_SHIFT, 5);
    if (len < sizeof(s5) + 2)
        return;

    /* Scope (\_SB) { three ISA devices, PCI0 }, ending exactly at the
     * table's end. */
    const uint8_t *p = aml + sizeof(s5), *end = aml + len;
    EQ(p[0], 0x10);                             /* ScopeOp */
    size_t slen = pkg_length(p + 1, (size_t)(end - p - 1), &n);
    CHECK(p + 1 + slen == end, "Scope ends at %td of %zu", p + 1 + slen - aml, len);
    if (p[0] != 0x10 || p + 1 + slen != end || slen < n + 4)
        return;
    const uint8_t *q = p + 1 + n;
    CHECK(!memcmp(q, "_SB_", 4), "scope %.4s", (const char *)q);
    q += 4;
    unsigned ndev = 0;
    while (q < end && ndev < NDEVS) {
        size_t dl = walk_device(q, (size_t)(end - q), ndev);
        if (!dl)
            return;
        q += dl;
        ndev++;
    }
    EQ(ndev, NDEVS);
    size_t pl = walk_pci_root(q, (size_t)(end - q));
    if (!pl)
        return;
    q += pl;
    CHECK(q == end, "%td bytes after the devices", end - q);
}

/* ------------------------------------------------------------------ */
/* MADT                                                                 */

static void check_madt(const struct gmem *m, const struct tables *t, unsigned ncpus)
{
    const uint8_t *a = G(m, t->madt, t->madt_len);
    EQ(t->madt_len, 44 + 8 * ncpus + 12 + 10 + 6);
    EQ(r32(a + 36), 0xfee00000);                /* local APIC address */
    EQ(r32(a + 40), 1);                         /* PCAT_COMPAT */
    unsigned nlapic = 0, nioapic = 0, niso = 0, nnmi = 0, bad_lapic = 0, unknown = 0;
    size_t off = 44;
    while (off + 2 <= t->madt_len) {
        const uint8_t *e = a + off;
        uint8_t type = e[0], len = e[1];
        if (len < 2 || off + len > t->madt_len) {
            CHECK(0, "MADT entry at %zu: length %u", off, len);
            return;
        }
        switch (type) {
        case 0:                                 /* Processor Local APIC */
            EQ(len, 8);
            /* In order: UID = APIC ID = index, enabled. */
            if (e[2] != nlapic || e[3] != nlapic || r32(e + 4) != 1)
                bad_lapic++;
            nlapic++;
            break;
        case 1:                                 /* I/O APIC */
            EQ(len, 12);
            EQ(e[2], ncpus);                    /* its ID follows the CPUs' */
            EQ(r32(e + 4), 0xfec00000);
            EQ(r32(e + 8), 0);                  /* GSI base */
            nioapic++;
            break;
        case 2:                                 /* Interrupt Source Override */
            EQ(len, 10);
            EQ(e[2], 0);                        /* ISA */
            EQ(e[3], 0);                        /* IRQ0 ... */
            EQ(r32(e + 4), 2);                  /* ... is GSI 2 */
            EQ(r16(e + 8), 0);                  /* conforming polarity and trigger */
            niso++;
            break;
        case 4:                                 /* Local APIC NMI */
            EQ(len, 6);
            EQ(e[2], 0xff);                     /* all processors */
            EQ(r16(e + 3), 0);
            EQ(e[5], 1);                        /* LINT1 */
            nnmi++;
            break;
        default:
            unknown++;
        }
        off += len;
    }
    EQ(off, t->madt_len);
    EQ(nlapic, ncpus);
    EQ(bad_lapic, 0);
    EQ(nioapic, 1);
    EQ(niso, 1);
    EQ(nnmi, 1);
    EQ(unknown, 0);
}

static void check_acpi(const struct gmem *m, unsigned ncpus)
{
    struct tables t;
    if (find_tables(m, &t) < 0) {
        CHECK(0, "ACPI tables not found (%u CPUs)", ncpus);
        return;
    }
    check_disjoint(&t);
    check_fadt(m, &t);
    check_dsdt(m, &t);
    check_madt(m, &t, ncpus);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_direct(unsigned ncpus)
{
    struct gmem m;
    struct err e = { "" };
    if (mem_new(&m, 4 * MiB) < 0) {
        unit_fail++;
        return;
    }
    int ret = x86_acpi_write(&m, ncpus, &e);
    CHECK(ret == 0, "%u CPUs: %s", ncpus, e.msg);
    if (ret == 0)
        check_acpi(&m, ncpus);
    gmem_free(&m);
}

/* Old contents of the BIOS area, including a stale RSDP, are gone. */
static void test_stale(void)
{
    struct gmem m;
    struct err e = { "" };
    if (mem_new(&m, 4 * MiB) < 0) {
        unit_fail++;
        return;
    }
    uint8_t *bios = gmem_ptr(&m, BIOS_START, BIOS_END - BIOS_START);
    memset(bios, 0xa5, BIOS_END - BIOS_START);
    uint8_t *old = bios + 0x10000;
    memset(old, 0, 20);
    memcpy(old, "RSD PTR ", 8);
    old[8] = (uint8_t)-sum8(old, 20);
    EQ(x86_acpi_write(&m, 8, &e), 0);
    check_acpi(&m, 8);
    EQ(old[0], 0);
    EQ(bios[BIOS_END - BIOS_START - 1], 0);
    gmem_free(&m);
}

static void test_errors(void)
{
    struct gmem m;
    struct err e = { "" };
    if (mem_new(&m, 4 * MiB) < 0) {
        unit_fail++;
        return;
    }
    EQ(x86_acpi_write(&m, 0, &e), -EINVAL);
    CHECK(strstr(e.msg, "CPUs") != NULL, "message: %s", e.msg);
    EQ(x86_acpi_write(&m, 256, &e), -EINVAL);
    gmem_free(&m);
    /* RAM that stops below the BIOS area. */
    memset(&m, 0, sizeof(m));
    if (gmem_add_ram(&m, 0, 0x80000, &e) < 0) {
        unit_fail++;
        return;
    }
    EQ(x86_acpi_write(&m, 1, &e), -EFAULT);
    CHECK(strstr(e.msg, "ACPI") != NULL, "message: %s", e.msg);
    gmem_free(&m);
}

/* A bzImage with a 2.15 header (enough for x86_boot_setup()). */
static uint8_t *bz_new(size_t *size)
{
    const size_t setup = 5 * 512, payload = 4096;
    *size = setup + payload;
    uint8_t *k = calloc(1, *size);
    k[0x1f1] = 4;                           /* setup_sects */
    w16(k + 0x1fe, 0xaa55);
    k[0x200] = 0xeb;
    k[0x201] = 0x6a;
    memcpy(k + 0x202, "HdrS", 4);
    w16(k + 0x206, 0x020f);
    k[0x211] = 0x01;                        /* LOADED_HIGH */
    w32(k + 0x22c, 0x7fffffff);             /* initrd_addr_max */
    w16(k + 0x236, 0x3);                    /* XLF_KERNEL_64 */
    w32(k + 0x238, 2047);                   /* cmdline_size */
    w64(k + 0x258, 0x1000000);              /* pref_address */
    w32(k + 0x260, 8 * MiB);                /* init_size */
    return k;
}

/* An ELF64 with one PT_LOAD at 16 MiB and the Xen PVH entry note. */
static uint8_t *pvh_new(size_t *size)
{
    const size_t note_off = 0x100, data_off = 0x1000, data = 4096;
    *size = data_off + data;
    uint8_t *f = calloc(1, *size);
    Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                      .e_entry = 0x1000000, .e_phoff = sizeof(Elf64_Ehdr),
                      .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
                      .e_phnum = 2 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    Elf64_Phdr ph[2] = {
        { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = data_off,
          .p_paddr = 0x1000000, .p_filesz = data, .p_memsz = data, .p_align = 4096 },
        { .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = 20, .p_memsz = 20,
          .p_align = 4 },
    };
    memcpy(f, &eh, sizeof(eh));
    memcpy(f + sizeof(eh), ph, sizeof(ph));
    uint8_t *n = f + note_off;
    w32(n, 4);                              /* namesz */
    w32(n + 4, 4);                          /* descsz */
    w32(n + 8, 18);                         /* XEN_ELFNOTE_PHYS32_ENTRY */
    memcpy(n + 12, "Xen", 4);
    w32(n + 16, 0x1000000);
    return f;
}

/* e820 or PVH memory map: [BIOS_START, BIOS_END) is inside a reserved
 * (type 2) range. */
static int bios_reserved(const uint8_t *map, unsigned n, size_t stride)
{
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *ent = map + stride * i;
        uint64_t a = r64(ent), s = r64(ent + 8);
        if (r32(ent + 16) == 2 && a <= BIOS_START && BIOS_END <= a + s)
            return 1;
    }
    return 0;
}

static void test_boot(int pvh, unsigned ncpus)
{
    struct gmem m;
    struct err e = { "" };
    struct x86_entry en;
    const uint64_t mem_size = 64 * MiB;
    if (mem_new(&m, mem_size) < 0) {
        unit_fail++;
        return;
    }
    size_t ksize;
    uint8_t *k = pvh ? pvh_new(&ksize) : bz_new(&ksize);
    struct x86_boot_config cfg = {
        .kernel = k, .kernel_size = ksize, .kernel_name = pvh ? "pvh" : "bzImage",
        .cmdline = "console=ttyS0", .mem_size = mem_size, .ncpus = ncpus,
    };
    int ret = x86_boot_setup(&m, &cfg, &en, &e);
    CHECK(ret == 0, "%s boot: %s", cfg.kernel_name, e.msg);
    if (ret == 0) {
        if (pvh) {
            EQ(r64(G(&m, ZP + 0x20, 8)), BIOS_START);           /* rsdp_paddr */
            uint64_t mm = r64(G(&m, ZP + 0x28, 8));
            uint32_t nmm = r32(G(&m, ZP + 0x30, 4));
            CHECK(bios_reserved(G(&m, mm, 24 * nmm), nmm, 24), "PVH map: BIOS not reserved");
        } else {
            EQ(r64(G(&m, ZP + 0x070, 8)), BIOS_START);          /* acpi_rsdp_addr */
            uint8_t n = *G(&m, ZP + 0x1e8, 1);
            CHECK(bios_reserved(G(&m, ZP + 0x2d0, 20 * n), n, 20), "e820: BIOS not reserved");
        }
        check_acpi(&m, ncpus);
        /* The MP table stays, for kernels that do not use ACPI. */
        CHECK(!memcmp(G(&m, MPF, 4), "_MP_", 4), "no MP table");
    }
    free(k);
    gmem_free(&m);
}

int main(void)
{
    static const unsigned counts[] = { 1, 2, 4, 64, 255 };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        test_direct(counts[i]);
    test_stale();
    test_errors();
    test_boot(0, 1);
    test_boot(0, 4);
    test_boot(1, 1);
    test_boot(1, 4);
    return unit_done("test_x86_acpi");
}
